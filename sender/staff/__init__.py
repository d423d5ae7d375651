"""Staff: who may do what, and the record of what they did.

* `roles`: the three roles and the one table of which role each change needs.
* `passwords`: the password rule (length, common passwords) and argon2 hashing.
* `accounts`: staff accounts in the database (add, disable, password, role).
* `totp`: two-factor sign-in codes and one-time recovery codes.
* `audit`: the append-only audit log, who the actor is, and `audited`, the one
  wrapper every adapter puts around a change so that it is checked and recorded.

It stands on sender.core alone, so every layer may record to the audit log.
"""
