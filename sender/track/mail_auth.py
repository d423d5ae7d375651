"""Whether an inbound email provably comes from its From domain: SPF and DKIM as the
provider checked them.

SendGrid's Inbound Parse posts its own checks beside every email, in default and raw
mode alike (SendGrid's "Inbound Email Parse Webhook" reference; captures in public
test suites, e.g. django-anymail's):

- `SPF`: the SPF result for the SMTP envelope sender, one word: `pass`, `fail`,
  `softfail`, `neutral`, `none`, `temperror` or `permerror`;
- `dkim`: one result per signature, in SendGrid's not-quite-JSON
  `{@gmail.com : pass}`, several separated by commas (`{@a.com : pass, @b.com : fail}`);
  `none` when the email carries no signature, absent when the checks are off.

A From address is anyone's to write, so a reply that asks to stop counts as the
supporter's only when one of them passes *for the From address's domain*: SPF for
an envelope sender in that domain, or a DKIM signature by it (each aligned in
DMARC's relaxed sense: the same domain, or one a subdomain of the other).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr

SPF_FIELD = "SPF"
DKIM_FIELD = "dkim"
PASS = "pass"  # noqa: S105 - the SPF/DKIM result word, not a secret
_DKIM_RESULT = re.compile(r"@([^\s:,{}]+)\s*:\s*([A-Za-z]+)")
_MAX_FIELD = 2000  # a longer field is not SendGrid's


@dataclass(frozen=True)
class MailAuth:
    """The provider's SPF and DKIM results for one email, as posted."""

    spf: str | None  # lower case; None when the field was absent
    spf_domain: str | None  # the envelope sender's domain that SPF checked
    dkim: tuple[tuple[str, str], ...] = ()  # (signing domain, result), lower case

    def spf_passes_for(self, domain: str) -> bool:
        return self.spf == PASS and self.spf_domain is not None and aligned(self.spf_domain, domain)

    def dkim_passes_for(self, domain: str) -> bool:
        return any(result == PASS and aligned(signer, domain) for signer, result in self.dkim)

    def passes_for(self, domain: str | None) -> bool:
        """SPF or DKIM passes for `domain` (the From address's)."""
        return bool(domain) and (
            self.spf_passes_for(str(domain)) or self.dkim_passes_for(str(domain))
        )

    @property
    def spf_text(self) -> str:
        """For staff: `pass (example.org)`, `fail`, or `not checked`."""
        if self.spf is None:
            return "not checked"
        return f"{self.spf} ({self.spf_domain})" if self.spf_domain else self.spf

    @property
    def dkim_text(self) -> str:
        """For staff: `pass (gmail.com)`, several joined by commas, or `none`."""
        if not self.dkim:
            return "none"
        return ", ".join(f"{result} ({signer})" for signer, result in self.dkim)


def aligned(one: str, other: str) -> bool:
    """The same domain, or one a subdomain of the other (DMARC's relaxed alignment)."""
    a, b = one.lower().rstrip("."), other.lower().rstrip(".")
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def read_auth(fields: Mapping[str, str]) -> MailAuth:
    """The checks in a stored Inbound Parse form's fields; odd values read as not passing."""
    spf_raw = fields.get(SPF_FIELD)
    spf = spf_raw.strip().lower()[:32] if isinstance(spf_raw, str) else None
    dkim_raw = fields.get(DKIM_FIELD)
    dkim: tuple[tuple[str, str], ...] = ()
    if isinstance(dkim_raw, str) and len(dkim_raw) <= _MAX_FIELD:
        dkim = tuple(
            (signer.lower(), result.lower()) for signer, result in _DKIM_RESULT.findall(dkim_raw)
        )
    return MailAuth(spf or None, _envelope_domain(fields.get("envelope")), dkim)


def domain_of_address(value: str | None) -> str | None:
    address = parseaddr(value or "")[1]
    _, at, domain = address.rpartition("@")
    return domain.lower() if at and domain else None


def _envelope_domain(envelope: str | None) -> str | None:
    if not envelope or len(envelope) > _MAX_FIELD:
        return None
    try:
        parsed = json.loads(envelope)
    except json.JSONDecodeError:
        return None
    sender = parsed.get("from") if isinstance(parsed, dict) else None
    return domain_of_address(sender) if isinstance(sender, str) else None
