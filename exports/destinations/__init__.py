"""Destinations of scheduled files: one module per kind, registered explicitly here."""

# Importing a kind's module registers it (the @register decorator); this is the list.
from exports.destinations import https, local, sftp  # noqa: F401
from exports.destinations.base import DESTINATION_TYPES, DestinationType, ExportFile

__all__ = ["DESTINATION_TYPES", "DestinationType", "ExportFile", "destination_type"]


def destination_type(kind: str) -> DestinationType:
    try:
        return DESTINATION_TYPES[kind]
    except KeyError:
        raise KeyError(
            f"unknown destination kind {kind!r}; known: {', '.join(sorted(DESTINATION_TYPES))}"
        ) from None
