"""The project's small exception tree.

Library errors are wrapped at the boundary with context, so that the CLI can
print one clear line and the web app can pick a status code.
"""


class CampaignError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(CampaignError):
    """A setting is missing or wrong."""


class SchemaOutOfDate(CampaignError):
    """The database needs `campaign db upgrade`."""


class NotFound(CampaignError):
    """A named campaign, case, wave or supporter does not exist."""


class InvalidInput(CampaignError):
    """Input from outside (a file, a form, a command line) cannot be used."""


class TemplateProblem(CampaignError):
    """A template cannot be rendered; the message names template and line."""


class TransportError(CampaignError):
    """Base for provider failures; see sender.send.transport.base for the kinds."""


class Forbidden(CampaignError):
    """The actor's role or campaign limit does not allow this change (web: 403)."""
