"""The honeypot link (docs/TRACKING.md): in every HTML email, seen, reached and heard by nobody."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
import render_fixtures as fx

from sender.core.vocabulary import WaveKind
from sender.render.merge import personalise
from sender.render.preview import html_warnings
from sender.render.renderer import RecipientData, Renderer

_VOID = {"img", "br", "meta", "hr", "input", "link"}


class _Links(HTMLParser):
    """Each link with whether an ancestor (or itself) hides it from sight and from readers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[bool, bool]] = []  # (display:none, aria-hidden) per open element
        self.links: list[dict[str, object]] = []
        self._open: dict[str, object] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        style = (values.get("style") or "").replace(" ", "").lower()
        hidden = any(h for h, _ in self.stack) or "display:none" in style
        unheard = any(a for _, a in self.stack) or values.get("aria-hidden") == "true"
        if tag == "a":
            self._open = {
                "href": values.get("href") or "",
                "hidden": hidden,
                "unheard": unheard,
                "tabindex": values.get("tabindex"),
                "text": "",
            }
            self.links.append(self._open)
        if tag not in _VOID:
            self.stack.append((hidden, unheard))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._open = None
        if tag not in _VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] = str(self._open["text"]) + data


def _email(kind: WaveKind, language: str) -> tuple[str, str, str]:
    renderer = Renderer(fx.settings())
    variant = renderer.variant(kind, fx.case(), language)
    who = RecipientData(12, "ana@example.net", "Ana", None, 34, 7, 3)
    recipient = renderer.recipient(variant, who)
    html = personalise(variant.html, recipient.substitutions)
    text = personalise(variant.text, recipient.substitutions)
    action = recipient.substitutions["-action_url_text-"]
    return html, text, action


@pytest.mark.parametrize("kind", list(WaveKind))
@pytest.mark.parametrize("language", ["en", "es", "fr", "ar"])
def test_the_honeypot_is_hidden_from_people_and_screen_readers(
    kind: WaveKind, language: str
) -> None:
    html, text, action = _email(kind, language)
    scan = _Links()
    scan.feed(html)
    honeypots = [link for link in scan.links if link["href"] == f"{action}/x"]
    assert len(honeypots) == 1
    [trap] = honeypots
    assert trap["hidden"] and trap["unheard"] and trap["tabindex"] == "-1"
    assert str(trap["text"]).strip("\u200b \n") == ""  # nothing to read even if shown
    visible = [link for link in scan.links if not link["hidden"]]
    assert visible and all(not str(link["href"]).endswith("/x") for link in visible)
    assert any(link["href"] == action for link in visible)  # the real button is still there
    assert f"{action}/x" not in text and "/x" not in text.replace(action, "")
    assert html_warnings(html) == []  # the existing checks still pass
