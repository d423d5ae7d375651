"""Proof sends: every variant of a wave to staff addresses, recorded nowhere.

Staff see exactly what supporters will get (one email per case and language)
before launching. The links carry no message id, so a click on a proof is
never counted as a supporter's action.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product

from sqlalchemy import Engine

from sender.core.addresses import normalise_email
from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.errors import CampaignError, InvalidInput
from sender.core.subject_test import SubjectTestSpec
from sender.render.identity import sender_identity
from sender.render.renderer import CaseContent, RecipientData, Renderer, WaveContent, batch_args
from sender.render.variants import variant_content
from sender.send import store as repo
from sender.send.transport.base import Transport


@dataclass(frozen=True)
class ProofSent:
    case: str
    language: str
    to: tuple[str, ...]
    variant: str = ""  # a subject test's variant; "" for a wave without a test

    @property
    def label(self) -> str:
        return "/".join(p for p in (self.case, self.language, self.variant) if p)


# Told of each variant as it goes: the proof, and why it failed (None once sent).
ProofProgress = Callable[[ProofSent, str | None], None]


def send_proofs(
    engine: Engine,
    settings: Settings,
    campaign_slug: str,
    name: str,
    to: Sequence[str],
    transport: Transport,
    progress: ProofProgress | None = None,
) -> list[ProofSent]:
    """Send one email per variant; with `progress`, a failing variant is reported and skipped."""
    addresses = tuple(normalise_email(a) for a in to)
    if not addresses:
        raise InvalidInput("give at least one staff address with --to")
    with session_scope(engine) as session:
        supporters = repo.supporter_addresses(session, addresses)
        if supporters:
            raise InvalidInput(
                f"{', '.join(supporters)}: a supporter's address; proofs go to staff only"
            )
        campaign = repo.campaign_by_slug(session, campaign_slug)
        wave = repo.wave_by_name(session, campaign.id, name)
        cases = [CaseContent.from_row(c) for c in repo.active_cases(session, campaign.id)]
        wave_content = WaveContent.from_row(wave)
        test = SubjectTestSpec.from_json(wave.subject_test)
        # A subject test's staff proof every variant: each is what some supporters read.
        contents = (
            [(v.name, variant_content(wave_content, v)) for v in test.variants]
            if test
            else [("", wave_content)]
        )
        identity = sender_identity(settings, campaign)
        kind, kinds = wave.kind, dict(campaign.kinds or {})
        languages = sorted(wave.subjects or {"en": ""})
    renderer = Renderer(settings, identity, kinds=kinds)
    sent: list[ProofSent] = []
    for case, language, (name, content) in product(cases, languages, contents):
        variant = renderer.variant(kind, case, language, content)
        key = "proof-" + secrets.token_hex(12)
        recipients = [
            renderer.recipient(
                variant, RecipientData(0, address, "Staff", "Proof", None, case.id, None)
            )
            for address in addresses
        ]
        shared = batch_args(case.id, None, send_key=key, proof="1")
        proof = ProofSent(case.slug, language, addresses, name)
        try:
            transport.send(renderer.batch(variant, recipients, key, ("proof",), shared))
        except CampaignError as error:  # a provider failure or a template problem
            if progress is None:
                raise
            progress(proof, str(error) or type(error).__name__)  # the rest still go
            continue
        sent.append(proof)
        if progress is not None:
            progress(proof, None)
    return sent
