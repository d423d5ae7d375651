"""What every capability stands on: settings, the database and its tables, the shared
vocabulary, errors, time, addresses, signed tokens and the values of one outgoing batch.

Nothing here imports another package of `sender`; every package may import this one.
"""
