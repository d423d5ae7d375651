"""`Renderer.recipients`: a whole batch in one call, as the send pipeline builds it."""

from __future__ import annotations

import gc

import pytest
import render_fixtures as fx

from sender.core.mail import Address
from sender.core.tokens import MessageRef
from sender.core.vocabulary import WaveKind
from sender.render.renderer import RecipientData, Renderer, Variant, batch_args


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(fx.settings())


@pytest.fixture(scope="module")
def variant(renderer: Renderer) -> Variant:
    return renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "es")


def _row(n: int, first: str | None = "Ana", last: str | None = None) -> RecipientData:
    return RecipientData(n, f"s{n}@example.org", first, last, 500 + n, 7, 3)


def test_each_row_gets_its_own_values(renderer: Renderer, variant: Variant) -> None:
    rows = [_row(1, "Zoë", "O'Hara & Co"), _row(2, None, None), _row(3, " Li\tWei ", None)]
    made = renderer.recipients(variant, rows, 7, 3)
    assert [r.to for r in made] == [
        Address("s1@example.org", "Zoë O'Hara & Co"),
        Address("s2@example.org", None),
        Address("s3@example.org", "Li Wei"),
    ]
    assert [r.custom_args for r in made] == [
        {"supporter_id": str(n), "message_id": str(500 + n)} for n in (1, 2, 3)
    ]
    assert made[1].substitutions["-first_name_text-"] == variant.greeting
    for n, recipient in enumerate(made, start=1):
        token = recipient.substitutions["-unsubscribe_url_text-"].rsplit("/", 1)[1]
        assert renderer.signer.read_unsubscribe(token) == MessageRef(n, 500 + n, 7, 3)


def test_a_batch_is_what_one_by_one_would_make(renderer: Renderer, variant: Variant) -> None:
    rows = [_row(n, "Maya" if n % 2 else None, "Okafor" if n % 3 else None) for n in range(9)]
    one_by_one = [renderer.recipient(variant, r) for r in rows]
    assert renderer.recipients(variant, rows, 7, 3) == one_by_one


def test_a_row_without_an_address_gets_an_empty_one(renderer: Renderer, variant: Variant) -> None:
    row = RecipientData(2, None, "Ana", None, 1, 7, 3)  # type: ignore[arg-type]
    assert renderer.recipients(variant, [row], 7, 3)[0].to.email == ""


def test_shared_args_go_once_in_the_batch_and_a_recipient_s_own_win(
    renderer: Renderer, variant: Variant
) -> None:
    made = renderer.recipients(variant, [_row(1)], 7, 3)
    batch = renderer.batch(variant, made, "k", ("w4r",), batch_args(7, 3, send_key="k"))
    assert batch.custom_args == {
        "installation_id": renderer.settings.installation,  # events for others are refused
        "case_id": "7",
        "wave_id": "3",
        "send_key": "k",
    }
    assert batch.headers == {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    clash = renderer.batch(variant, made, "k", ("w4r",), {"message_id": "shared"})
    assert clash.custom_args_for(made[0])["message_id"] == "501"  # as SendGrid merges them
    preview = renderer.recipients(
        variant, [RecipientData(1, "a@example.org", "A", None, None, 7, None)], 7, None
    )
    assert preview[0].custom_args == {"supporter_id": "1"}


def test_a_row_with_text_ids_fails_the_batch(renderer: Renderer, variant: Variant) -> None:
    with pytest.raises(TypeError):
        renderer.recipients(variant, [_row(1), RecipientData("2", None, None, None, 1, 7, 3)], 7, 3)  # type: ignore[arg-type]


def test_rendering_leaves_the_collector_to_the_process(renderer: Renderer) -> None:
    # Collector control belongs to whoever runs the process (sender.celery_app).
    enabled, frozen = gc.isenabled(), gc.get_freeze_count()
    fresh = renderer.variant(WaveKind.CASE_EMAIL, fx.case(), "fr")
    renderer.recipients(fresh, [_row(1), _row(2)], 7, 3)
    assert (gc.isenabled(), gc.get_freeze_count()) == (enabled, frozen)
