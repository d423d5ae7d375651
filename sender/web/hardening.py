"""What every response and request of the web app gets: security headers, the
real client address behind trusted proxies, and the checks of machine
credentials (bearer tokens, address allow-lists).

* Headers (docs/SECURITY.md): no page may be framed (CSP ``frame-ancestors
  'none'`` and, for older browsers, ``X-Frame-Options: DENY``), no response
  is content-sniffed, Referer stays on this site (token pages send none at
  all, sender.web.links), and HSTS is sent on https requests only (it would
  lock a plain-http development server out of the browser for a year).
* TRUSTED_PROXIES=N wraps the app in Werkzeug's ProxyFix trusting the last N
  X-Forwarded-For / -Proto hops. Without it those headers are ignored, so a
  client cannot pick its own address for the login brake.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from sender.core.config import Settings
from sender.core.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SECURITY_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: Flask-WTF checks the Referer of https form posts.
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def trust_proxies(app: Flask, hops: int) -> None:
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def allowed_networks(text: str | None) -> tuple[Network, ...]:
    """METRICS_ALLOW as networks; a typo is refused at start-up, never read as "allow all"."""
    if not text or not text.strip():
        return ()
    found: list[Network] = []
    for part in text.split(","):
        try:
            found.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError as error:
            raise ConfigError(
                f"METRICS_ALLOW: {part.strip()!r} is not an address or network"
            ) from error
    return tuple(found)


def address_in(address: str | None, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in networks)


def bearer_matches(expected: str | None) -> bool:
    """`Authorization: Bearer <expected>`, compared in constant time; never with no token set."""
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def init_hardening(app: Flask, settings: Settings) -> None:
    trust_proxies(app, settings.trusted_proxies)
    app.after_request(add_security_headers)
