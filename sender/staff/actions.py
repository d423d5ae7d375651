"""Every audited kind of change, and the one table of which role each needs.

The CLI, the web app and docs/SECURITY.md's role table all read `NEEDED`;
a test checks that every action has an entry. None means no role is needed:
sign-in events, and what only the system does.
"""

from __future__ import annotations

from enum import StrEnum

from sender.staff.roles import Role


class What(StrEnum):
    # Sign-in
    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOCKOUT = "login.locked"
    LOGOUT = "logout"
    TOTP_ENROL = "2fa.enrol"
    TOTP_FAILED = "2fa.failed"
    RECOVERY_CODE_USED = "2fa.recovery"
    BOOTSTRAP_LOGIN = "login.bootstrap"
    # Staff
    STAFF_ADD = "staff.add"
    STAFF_DISABLE = "staff.disable"
    STAFF_ENABLE = "staff.enable"
    STAFF_PASSWORD = "staff.passwd"  # noqa: S105 (an action name)
    STAFF_RESET_2FA = "staff.reset-2fa"
    STAFF_ROLE = "staff.role"
    # Campaigns and cases
    CAMPAIGN_CREATE = "campaign.create"
    CAMPAIGN_CLOSE = "campaign.close"
    CASES_LOAD = "cases.load"
    CASE_PAUSE = "case.pause"
    CASE_RESUME = "case.resume"
    CASE_RESOLVE = "case.resolve"
    CASE_EDIT = "case.edit"  # one language's texts, from the workspace
    # Supporters
    IMPORT = "supporters.import"
    ASSIGN = "assign"
    FORGET = "supporters.forget"
    SUPPRESS = "suppression.add"
    UNSUPPRESS = "suppression.remove"
    SUPPRESSION_LOOKUP = "suppression.lookup"  # reads one person's state: recorded, not a change
    SUPPORTER_LOOKUP = "supporters.lookup"  # reads one person's record: recorded, not a change
    # Waves
    PLAN_APPLY = "plan.apply"
    WAVE_CREATE = "wave.create"
    WAVE_EDIT = "wave.edit"  # a draft's fields, from the workspace form
    WAVE_LAUNCH = "wave.launch"
    WAVE_PAUSE = "wave.pause"
    WAVE_RESUME = "wave.resume"
    WAVE_CANCEL = "wave.cancel"
    WAVE_RETRY = "wave.retry-failed"
    WAVE_PROOF = "wave.test"
    WAVE_AUTO_PAUSE = "wave.auto-pause"  # 401, quota, account status: the system pauses
    WAVE_MISSED = "wave.missed"  # its end passed before it could start
    WAVE_DONE = "wave.done"  # nothing left to send
    WAVE_PICK = "wave.pick"  # staff pick a subject test's winner
    WAVE_DECIDED = "wave.decided"  # the subject test's rule picks the winner
    # Replies
    REPLY_REVIEW = "reply.review"
    REPLY_PARSE = "reply.parse"
    REPLY_ASSIGN = "reply.assign"  # a review reply counted as a supporter's
    REPLY_DISMISS = "reply.dismiss"
    REPLY_UNSUBSCRIBE = "reply.unsubscribe"  # its sender, at their own request
    REPLY_DELIVERED = "reply.delivered"  # solidarity messages handed to the case team
    # The database
    DB_APP_ROLE = "db.app-role"
    # The audit log itself
    AUDIT_VIEW = "audit.view"  # only refusals are recorded: reading changes nothing
    # Reports
    REPORT_VIEW = "report.view"  # a campaign's figures; only refusals (a campaign limit) recorded


NEEDED: dict[What, Role | None] = {
    What.LOGIN: None,
    What.LOGIN_FAILED: None,
    What.LOCKOUT: None,
    What.LOGOUT: None,
    What.TOTP_ENROL: None,
    What.TOTP_FAILED: None,
    What.RECOVERY_CODE_USED: None,
    What.BOOTSTRAP_LOGIN: None,
    What.STAFF_ADD: Role.ADMIN,
    What.STAFF_DISABLE: Role.ADMIN,
    What.STAFF_ENABLE: Role.ADMIN,
    What.STAFF_PASSWORD: Role.ADMIN,
    What.STAFF_RESET_2FA: Role.ADMIN,
    What.STAFF_ROLE: Role.ADMIN,
    What.CAMPAIGN_CREATE: Role.ADMIN,
    What.CAMPAIGN_CLOSE: Role.ADMIN,
    What.CASES_LOAD: Role.CAMPAIGNER,
    What.CASE_PAUSE: Role.CAMPAIGNER,
    What.CASE_RESUME: Role.CAMPAIGNER,
    What.CASE_RESOLVE: Role.CAMPAIGNER,
    What.CASE_EDIT: Role.CAMPAIGNER,
    What.IMPORT: Role.CAMPAIGNER,
    What.ASSIGN: Role.CAMPAIGNER,
    What.FORGET: Role.ADMIN,
    What.SUPPRESS: Role.ADMIN,
    What.UNSUPPRESS: Role.ADMIN,
    What.SUPPRESSION_LOOKUP: Role.CAMPAIGNER,
    What.SUPPORTER_LOOKUP: Role.CAMPAIGNER,
    What.PLAN_APPLY: Role.CAMPAIGNER,
    What.WAVE_CREATE: Role.CAMPAIGNER,
    What.WAVE_EDIT: Role.CAMPAIGNER,
    What.WAVE_LAUNCH: Role.CAMPAIGNER,
    What.WAVE_PAUSE: Role.CAMPAIGNER,
    What.WAVE_RESUME: Role.CAMPAIGNER,
    What.WAVE_CANCEL: Role.CAMPAIGNER,
    What.WAVE_RETRY: Role.CAMPAIGNER,
    What.WAVE_PROOF: Role.CAMPAIGNER,
    What.WAVE_AUTO_PAUSE: Role.ADMIN,  # these three only the system does
    What.WAVE_MISSED: Role.ADMIN,
    What.WAVE_DONE: Role.ADMIN,
    What.WAVE_DECIDED: Role.ADMIN,  # the system's, like the three above
    What.WAVE_PICK: Role.CAMPAIGNER,
    What.REPLY_REVIEW: Role.CAMPAIGNER,
    What.REPLY_PARSE: Role.CAMPAIGNER,
    What.REPLY_ASSIGN: Role.CAMPAIGNER,
    What.REPLY_DISMISS: Role.CAMPAIGNER,
    What.REPLY_UNSUBSCRIBE: Role.CAMPAIGNER,
    What.REPLY_DELIVERED: Role.CAMPAIGNER,
    What.DB_APP_ROLE: Role.ADMIN,
    What.AUDIT_VIEW: Role.ADMIN,
    What.REPORT_VIEW: Role.VIEWER,
}

# What only the scheduler, the workers and the webhooks do; no person is ever allowed it.
SYSTEM_ONLY = frozenset({What.WAVE_AUTO_PAUSE, What.WAVE_MISSED, What.WAVE_DONE, What.WAVE_DECIDED})
