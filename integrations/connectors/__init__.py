"""The connector registry. A vendor exists here, explicitly, or not at all."""

from __future__ import annotations

from integrations.connectors.base import Connector

REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    if cls.slug in REGISTRY:
        raise RuntimeError(f"connector {cls.slug!r} registered twice")
    REGISTRY[cls.slug] = cls
    return cls


def connector_class(vendor: str) -> type[Connector]:
    try:
        return REGISTRY[vendor]
    except KeyError:
        raise KeyError(
            f"unknown vendor {vendor!r}; known vendors: {', '.join(sorted(REGISTRY))}"
        ) from None


def _load() -> None:
    # Explicit imports: each module registers its class with @register.
    from integrations.connectors import (  # noqa: F401
        constantcontact,
        hubspot,
        mailchimp,
        marketo,
        pardot,
        salesforce,
    )


_load()
