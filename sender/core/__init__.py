"""What every capability stands on: settings, the database and its tables, the shared
vocabulary, languages (codes, direction, the rule choosing a message's language),
errors, time, addresses, signed tokens, the values of one outgoing batch, and the
fast paths with their plain twins (speedups).

Nothing here imports another package of `sender`; every package may import this one.
"""
