"""Quoted history cut from HTML-only replies, in the campaign's four languages.

Each HTML shape below is written for these tests after the markup the clients
put around a quoted message, as seen in public mailing-list archives of their
mail and in the quote rules of mail readers:
- Gmail: `div.gmail_quote` holding `div.gmail_attr` ("On ... wrote:") and a
  `blockquote.gmail_quote`;
- Apple Mail / iOS Mail: `blockquote type="cite"`, the attribution inside it
  (macOS) or just above it (iOS);
- Thunderbird: `div.moz-cite-prefix` then `blockquote type="cite" cite="mid:..."`;
- Outlook on the web: empty `div#appendonsend`, an `hr`, `div#divRplyFwdMsg`
  with bold From/Sent/To/Subject labels, the old message after it;
- Outlook for Windows: no marker, a `MsoNormal` paragraph of bold From/Sent
  labels under a top border.
"""

from __future__ import annotations

from typing import Any

import pytest
from replies_fixtures import NOW, Seeded, parse_fields, reply_address, seed, settings_for
from sqlalchemy import Engine

from sender.core.config import Settings
from sender.core.db import session_scope
from sender.core.models import Reply
from sender.core.vocabulary import ReplyStatus
from sender.track.inbound import parse_stored_reply
from sender.track.quoting import strip_quoted, strip_quoted_html

GMAIL_ES = (
    '<div dir="ltr">¡Mucho ánimo, Jani! Estamos contigo.</div><br>'
    '<div class="gmail_quote gmail_quote_container">'
    '<div dir="ltr" class="gmail_attr">El mié, 2 dic 2020 a las 10:00, Amnistía '
    '(&lt;<a href="mailto:campaigns@example.org">campaigns@example.org</a>&gt;) escribió:<br>'
    '</div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
    'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
    "Hola Ana,<br>Escribe una carta hoy.</blockquote></div>"
)
APPLE_FR = (
    '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
    '<body dir="auto"><div dir="ltr">Courage, Jani ! Nous sommes avec vous.</div>'
    '<div dir="ltr"><br><blockquote type="cite">Le 2 déc. 2020 à 10:00, Amnesty '
    "&lt;campaigns@example.org&gt; a écrit&nbsp;:<br><br></blockquote></div>"
    '<blockquote type="cite"><div dir="ltr">Bonjour Marie, écrivez une lettre.</div>'
    "</blockquote></body></html>"
)
IOS_EN = (
    '<html><body dir="auto"><div dir="ltr">Free Germain Rukuki!</div>'
    '<div dir="ltr"><br>On 2 Dec 2020, at 10:00, Amnesty &lt;campaigns@example.org&gt; '
    'wrote:<br><br></div><blockquote type="cite"><div dir="ltr">Hello Bob, write a letter.'
    "</div></blockquote></body></html>"
)
THUNDERBIRD_AR = (
    '<html><body><p dir="rtl">نحن معكم، لا تستسلموا.</p>'
    '<div class="moz-cite-prefix">في 02/12/2020 10:00، كتب منظمة العفو:<br></div>'
    '<blockquote type="cite" cite="mid:w4r-1@example.org">مرحبا سلمى، اكتبي رسالة.'
    "</blockquote></body></html>"
)
OUTLOOK_WEB_AR = (
    '<div dir="rtl" style="font-size:12pt">نحن معكم، لا تستسلموا.</div>'
    '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
    '<div id="divRplyFwdMsg" dir="rtl"><font face="Calibri, sans-serif" color="#000000">'
    "<b>من:</b> منظمة العفو &lt;campaigns@example.org&gt;<br>"
    "<b>تم الإرسال:</b> الأربعاء، 2 ديسمبر 2020 10:00 ص<br><b>إلى:</b> سلمى<br>"
    "<b>الموضوع:</b> اكتبوا من أجل الحقوق</font><div>&nbsp;</div></div>"
    "<div>مرحبا سلمى، اكتبي رسالة اليوم.</div>"
)
OUTLOOK_WINDOWS_ES = (
    '<div class="WordSection1"><p class="MsoNormal">¡Ánimo, Jani!<o:p></o:p></p>'
    '<p class="MsoNormal"><o:p>&nbsp;</o:p></p><div><div style="border:none;'
    'border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal">'
    "<b>De:</b> Amnistía &lt;campaigns@example.org&gt;<br>"
    "<b>Enviado el:</b> miércoles, 2 de diciembre de 2020 10:00<br><b>Para:</b> Ana<br>"
    "<b>Asunto:</b> Escribe por los derechos<o:p></o:p></p></div></div>"
    '<p class="MsoNormal">Hola Ana, escribe una carta hoy.</p></div>'
)
OUTLOOK_WEB_FR_REQUOTED = (
    "<div>Toujours avec Jani.</div>"
    '<div id="x_appendonsend"></div><hr>'
    '<div id="x_divRplyFwdMsg"><b>De :</b> Amnesty &lt;campaigns@example.org&gt;<br>'
    "<b>Envoyé :</b> mercredi 2 décembre 2020 10:00</div><div>Bonjour Marie</div>"
)
GMAIL_EN_NESTED = (
    '<div dir="ltr"><div>Free Germain!</div><div><br></div>-- <br>'
    '<div dir="ltr" class="gmail_signature">Bob</div></div><br>'
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Wed, Dec 2, 2020 at '
    "10:00 AM Amnesty &lt;campaigns@example.org&gt; wrote:<br></div>"
    '<blockquote class="gmail_quote">Hello Bob</blockquote></div>'
)

CASES = {
    "gmail es": ("es", GMAIL_ES, "¡Mucho ánimo, Jani! Estamos contigo."),
    "apple mail fr": ("fr", APPLE_FR, "Courage, Jani ! Nous sommes avec vous."),
    "ios mail en": ("en", IOS_EN, "Free Germain Rukuki!"),
    "thunderbird ar": ("ar", THUNDERBIRD_AR, "نحن معكم، لا تستسلموا."),
    "outlook web ar": ("ar", OUTLOOK_WEB_AR, "نحن معكم، لا تستسلموا."),
    "outlook windows es": ("es", OUTLOOK_WINDOWS_ES, "¡Ánimo, Jani!"),
    "outlook web fr, quoted again": ("fr", OUTLOOK_WEB_FR_REQUOTED, "Toujours avec Jani."),
}
HISTORY_WORDS = ("Hola Ana", "Bonjour Marie", "Hello Bob", "مرحبا سلمى", "campaigns@example.org")


@pytest.fixture
def world(any_engine: Engine) -> tuple[Engine, Settings, Seeded]:
    settings = settings_for(any_engine)
    return any_engine, settings, seed(any_engine, settings)


def parsed_html(engine: Engine, settings: Settings, fields: dict[str, Any]) -> Reply:
    with session_scope(engine) as session:
        reply = Reply(raw_form={"fields": fields, "files": [], "undecoded": {}})
        session.add(reply)
        session.flush()
        reply_id = reply.id
    parse_stored_reply(engine, settings, reply_id, NOW)
    with session_scope(engine) as session:
        stored = session.get(Reply, reply_id)
        assert stored is not None
        return stored


SENDERS = {
    "es": "ana@example.com",
    "fr": "marie@example.fr",
    "en": "bob@example.org",
    "ar": "salma@example.net",
}


@pytest.mark.parametrize("name", list(CASES))
def test_html_only_replies_are_stored_without_their_history(
    world: tuple[Engine, Settings, Seeded], name: str
) -> None:
    engine, settings, seeded = world
    language, html, own_words = CASES[name]
    case_id = seeded.plain_case_id if language == "ar" else seeded.case_id  # what they got
    to = reply_address(seeded, language, case_id)
    fields = parse_fields(sender=SENDERS[language], to=to, text="")
    fields["html"] = html
    reply = parsed_html(engine, settings, fields)

    assert reply.body == own_words
    assert not any(word in (reply.body or "") for word in HISTORY_WORDS)
    # Still counted as the supporter's reply, and the HTML as it came is kept.
    assert reply.status == ReplyStatus.MATCHED
    assert reply.raw_form["fields"]["html"] == html


def test_a_signature_before_the_gmail_quote_is_cut_the_words_kept() -> None:
    assert strip_quoted_html(GMAIL_EN_NESTED, "en") == "Free Germain!"


@pytest.mark.parametrize(
    "text",
    [
        "On Monday I wrote to the minister.\nKeep going!",
        "Le président a écrit : non.\nNous continuons.",
        "From: all of us in Lyon\nwith love",
    ],
)
def test_words_that_look_like_a_quote_header_mid_reply_are_kept(text: str) -> None:
    assert strip_quoted(text, "fr") == text
    assert strip_quoted_html(f"<p>{text.replace(chr(10), '<br>')}</p>", "fr") == text


def test_an_html_reply_that_is_only_a_quote_has_no_words(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    fields = parse_fields(sender="bob@example.org", to=reply_address(seeded, "en"), text="")
    fields["html"] = '<div class="gmail_quote">On Wed, Amnesty wrote:<blockquote>Hi</blockquote>'
    reply = parsed_html(engine, settings, fields)
    assert reply.body == ""
    assert reply.status == ReplyStatus.REVIEW  # a person looks; nothing is counted
    assert reply.problem == "the reply has no text"


def test_a_blank_text_part_beside_html_reads_the_html(
    world: tuple[Engine, Settings, Seeded],
) -> None:
    engine, settings, seeded = world
    fields = parse_fields(sender="ana@example.com", to=reply_address(seeded, "es"), text="\r\n")
    fields["html"] = GMAIL_ES
    reply = parsed_html(engine, settings, fields)
    assert (reply.status, reply.body) == (
        ReplyStatus.MATCHED,
        "¡Mucho ánimo, Jani! Estamos contigo.",
    )
