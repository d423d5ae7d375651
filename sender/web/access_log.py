"""Request logs without credentials: token paths masked in every access line.

The path of an action or unsubscribe link *is* its credential (a signed
token), so an access log that keeps it would let anyone who reads the log act
or unsubscribe as that supporter. `TokenMaskFilter` rewrites every string a
record carries, before any handler sees it, on the loggers that write request
lines: gunicorn's access log (its default format included, whatever
``--access-logfile`` says), Werkzeug's development server, and the Flask
app's logger (its "Exception on /a/<token>" error lines). Addresses are
masked too (``?email=`` in a query string), as sender.ops.logs does for
application records.

`TOKEN_PATH` covers every route with a ``<token>`` in sender.web (a test walks
the URL map, so a new token route without a pattern here fails).
"""

from __future__ import annotations

import logging
import re

from sender.ops.logs import mask_emails

# /a/<token>, /a/<token>/x, /a/<token>/sent, /unsubscribe/<token>
TOKEN_PATH = re.compile(r"(/(?:a|unsubscribe)/)[^/\s?#\"']+")
MASK = r"\1<token>"
# gunicorn's and Werkzeug's request lines, and Flask's own "Exception on <path>".
REQUEST_LOGGERS = ("gunicorn.access", "werkzeug", "sender.web")


def mask_tokens(text: str) -> str:
    return mask_emails(TOKEN_PATH.sub(MASK, text))


class TokenMaskFilter(logging.Filter):
    """Masks token paths in the message and in its arguments (gunicorn passes a dict)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_tokens(record.msg)
        args = record.args
        if isinstance(args, dict):
            # gunicorn's SafeAtoms: change it in place, it answers unknown keys itself.
            for key, value in list(args.items()):
                if isinstance(value, str):
                    args[key] = mask_tokens(value)
        elif isinstance(args, tuple):
            record.args = tuple(mask_tokens(a) if isinstance(a, str) else a for a in args)
        return True


def install() -> None:
    """Once per process (create_app calls it); safe to call again."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenMaskFilter) for f in logger.filters):
            logger.addFilter(TokenMaskFilter())
