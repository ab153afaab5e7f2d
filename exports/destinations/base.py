"""The small base every destination kind implements, and the registry of kinds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError

if TYPE_CHECKING:
    from exports.models import ExportDestination


@dataclass(frozen=True)
class ExportFile:
    """A finished file waiting on local disk to be delivered."""

    path: Path
    name: str  # the name it gets at the destination
    size: int
    rows: int
    sha256: str
    format: str
    run_id: int
    schedule_slug: str  # files of one schedule are named "<slug>-<UTC timestamp>.<ext>"


class DestinationType:
    """One kind of destination. Subclasses validate their config and deliver files.

    ``deliver`` raises ``mktintegration.errors.ConnectorError`` whose ``kind`` says whether a
    retry may help (TRANSIENT, RATE_LIMITED) or not (PERMANENT, AUTH, CONFIG); its message
    never holds a secret.
    """

    kind: ClassVar[str]
    # Names of the secrets this kind may hold (stored encrypted, never shown).
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def clean(self, destination: ExportDestination) -> None:
        """Normalise the destination's fields; ValidationError keyed by field otherwise."""

    def describe(self, destination: ExportDestination) -> str:
        """Where files go, without any secret (list displays, logs)."""
        raise NotImplementedError

    def deliver(
        self, destination: ExportDestination, file: ExportFile, secrets: dict[str, str]
    ) -> dict[str, Any]:
        """Put the file at the destination; a JSON-safe summary of what happened."""
        raise NotImplementedError


DESTINATION_TYPES: dict[str, DestinationType] = {}


def register(cls: type[DestinationType]) -> type[DestinationType]:
    DESTINATION_TYPES[cls.kind] = cls()
    return cls


def raise_if(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError(errors)
