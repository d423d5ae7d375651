"""The words on supporter-facing pages (action, thanks, unsubscribe), per language.

A handful of short strings, so a dict per language reads better than a
gettext catalogue; the email catalogue is separate and much larger. A
language the pages do not speak (a campaign's German, say) gets the English
words around the case's own text, which keeps its language: the page says so
with `lang`/`dir` on each part. Adding the pages' words for a language is one
entry here.
"""

from __future__ import annotations

from collections.abc import Mapping

from sender.core import languages
from sender.core.languages import FALLBACK_LANGUAGE, primary

FALLBACK = FALLBACK_LANGUAGE

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "action_heading": "Take action",
        "write_to": "Write to",
        "suggested_letter": "A letter you can send",
        "letter_help": "Copy it, make it your own, and post or email it to the address above.",
        "sent_button": "I have sent my letter",
        "thanks_heading": "Thank you",
        "thanks_body": "Your letter joins many others. Together they are hard to ignore.",
        "unsubscribe_heading": "Unsubscribe",
        "unsubscribe_body": "Stop receiving campaign emails from us at this address?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_heading": "You are unsubscribed",
        "unsubscribed_body": "We will not send campaign emails to this address again.",
        "invalid_heading": "This link does not work",
        "invalid_body": "It may have been copied incompletely. Please use the link in your email.",
    },
    "es": {
        "action_heading": "Actúa",
        "write_to": "Escribe a",
        "suggested_letter": "Una carta que puedes enviar",
        "letter_help": "Cópiala, hazla tuya y envíala a la dirección de arriba.",
        "sent_button": "He enviado mi carta",
        "thanks_heading": "Gracias",
        "thanks_body": "Tu carta se suma a muchas otras. Juntas son difíciles de ignorar.",
        "unsubscribe_heading": "Darse de baja",
        "unsubscribe_body": "¿Dejar de recibir nuestros correos de campaña en esta dirección?",
        "unsubscribe_button": "Darme de baja",
        "unsubscribed_heading": "Te has dado de baja",
        "unsubscribed_body": "No volveremos a enviar correos de campaña a esta dirección.",
        "invalid_heading": "Este enlace no funciona",
        "invalid_body": "Quizá se copió de forma incompleta. Usa el enlace de tu correo.",
    },
    "fr": {
        "action_heading": "Agissez",
        "write_to": "Écrivez à",
        "suggested_letter": "Une lettre que vous pouvez envoyer",
        "letter_help": "Copiez-la, personnalisez-la, puis envoyez-la à l'adresse ci-dessus.",
        "sent_button": "J'ai envoyé ma lettre",
        "thanks_heading": "Merci",
        "thanks_body": "Votre lettre rejoint beaucoup d'autres. Ensemble, on ne peut les ignorer.",
        "unsubscribe_heading": "Se désabonner",
        "unsubscribe_body": "Ne plus recevoir nos e-mails de campagne à cette adresse ?",
        "unsubscribe_button": "Me désabonner",
        "unsubscribed_heading": "Vous êtes désabonné·e",
        "unsubscribed_body": "Nous n'enverrons plus d'e-mails de campagne à cette adresse.",
        "invalid_heading": "Ce lien ne fonctionne pas",
        "invalid_body": "Il a peut-être été mal copié. Utilisez le lien de votre e-mail.",
    },
    "ar": {
        "action_heading": "تحرّك الآن",
        "write_to": "اكتب إلى",
        "suggested_letter": "رسالة يمكنك إرسالها",
        "letter_help": "انسخها وأضف إليها كلماتك، ثم أرسلها بالبريد إلى العنوان أعلاه.",
        "sent_button": "لقد أرسلت رسالتي",
        "thanks_heading": "شكرًا لك",
        "thanks_body": "رسالتك تنضم إلى رسائل كثيرة غيرها، ومعًا يصعب تجاهلها.",
        "unsubscribe_heading": "إلغاء الاشتراك",
        "unsubscribe_body": "هل تريد التوقف عن تلقي رسائل الحملات منا على هذا العنوان؟",
        "unsubscribe_button": "إلغاء الاشتراك",
        "unsubscribed_heading": "تم إلغاء اشتراكك",
        "unsubscribed_body": "لن نرسل رسائل الحملات إلى هذا العنوان بعد الآن.",
        "invalid_heading": "هذا الرابط لا يعمل",
        "invalid_body": "ربما نُسخ بشكل غير كامل. يُرجى استخدام الرابط الموجود في رسالتك.",
    },
}

LANGUAGES = tuple(_TEXT)


def language_of(requested: str | None) -> str:
    """A language the pages speak: the requested one or its bare language, else English."""
    if not requested:
        return FALLBACK
    if requested in _TEXT:
        return requested
    return base if (base := primary(requested)) in _TEXT else FALLBACK


def page_text(language: str) -> Mapping[str, str]:
    return _TEXT[language_of(language)]


def html_lang(language: str) -> str:
    """The `lang` attribute: BCP 47 ("pt-BR"), not gettext's "pt_BR"."""
    return language.replace("_", "-")


def direction(language: str) -> str:
    """Which way a text in `language` runs (CLDR), for its `dir` attribute."""
    return languages.direction(language)
