"""The mail providers, one registry keyed by name; one module per provider beside it.

Each provider module defines its event lookup table, translator, signature check
and one `PROVIDER` value (see `base.Provider`); this registry is the only place
that lists them. Adapters resolve a provider from a URL or a stored row with `get`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sender.core.errors import NotFound
from sender.track.providers import sendgrid
from sender.track.providers.base import Provider

_REGISTRY: Mapping[str, Provider] = MappingProxyType(
    {provider.name: provider for provider in (sendgrid.PROVIDER,)}
)


def get(name: str) -> Provider:
    """The provider registered under `name`; NotFound for any other name."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NotFound(f"no mail provider is registered as {name!r}") from None


def registered() -> tuple[Provider, ...]:
    """Every registered provider, in name order."""
    return tuple(_REGISTRY[name] for name in sorted(_REGISTRY))
