"""Local folder: files land in MKT_EXPORT_DIR/<subdirectory>, old ones are pruned."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.utils import timezone

from exports.destinations.base import DestinationType, ExportFile, raise_if, register
from mktintegration.errors import ConnectorError, ErrorKind

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class LocalConfig:
    subdirectory: str
    retention_days: int

    @classmethod
    def of(cls, destination) -> LocalConfig:
        return cls(destination.subdirectory, destination.retention_days)


def export_root() -> Path:
    return Path(settings.MKT_EXPORT_DIR).resolve()


def folder_path(subdirectory: str) -> Path:
    """The destination's folder; ConnectorError(CONFIG) if it would leave MKT_EXPORT_DIR."""
    root = export_root()
    folder = (root / subdirectory).resolve()
    if not folder.is_relative_to(root):
        raise ConnectorError(
            f"the folder {subdirectory!r} resolves outside MKT_EXPORT_DIR", kind=ErrorKind.CONFIG
        )
    return folder


def file_path(relative: str) -> Path | None:
    """A delivered file's path from its path relative to MKT_EXPORT_DIR; None if it is gone
    or the path would leave MKT_EXPORT_DIR."""
    root = export_root()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _file_pattern(slug: str) -> re.Pattern[str]:
    return re.compile(rf"^\.?{re.escape(slug)}-(\d{{8}}T\d{{6}}Z)\.(?:csv|ndjson)(?:\.part)?$")


@register
class LocalFolder(DestinationType):
    kind = "local"

    def clean(self, destination) -> None:
        raw = (destination.subdirectory or "").strip().replace("\\", "/")
        errors = {}
        path = PurePosixPath(raw)
        if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
            errors["subdirectory"] = (
                "give a folder relative to MKT_EXPORT_DIR, not an absolute path"
            )
        elif ".." in path.parts:
            errors["subdirectory"] = "'..' is not allowed: the folder must stay in MKT_EXPORT_DIR"
        elif any(ord(ch) < 32 for ch in raw):
            errors["subdirectory"] = "the folder name holds control characters"
        else:
            destination.subdirectory = "/".join(p for p in path.parts if p not in ("", "."))
        if destination.retention_days is not None and destination.retention_days < 1:
            errors["retention_days"] = "keep files at least 1 day"
        raise_if(errors)

    def describe(self, destination) -> str:
        return f"MKT_EXPORT_DIR/{destination.subdirectory}".rstrip("/")

    def deliver(self, destination, file: ExportFile, secrets: dict[str, str]) -> dict[str, Any]:
        config = LocalConfig.of(destination)
        folder = folder_path(config.subdirectory)
        part = folder / f".{file.name}.part"
        final = folder / file.name
        try:
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file.path, part)
            os.replace(part, final)  # atomic: readers see the whole file or none
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise ConnectorError(
                f"cannot write {file.name} into {self.describe(destination)}: "
                f"{exc.strerror or type(exc).__name__}",
                kind=ErrorKind.TRANSIENT,
            ) from None
        size = final.stat().st_size
        if size != file.size:
            final.unlink(missing_ok=True)
            raise ConnectorError(
                f"{file.name} was written with {size} of {file.size} bytes",
                kind=ErrorKind.TRANSIENT,
            )
        pruned = prune(
            folder,
            slug=file.schedule_slug,
            keep_days=config.retention_days,
            keep={file.name},
            now=timezone.now(),
        )
        return {
            "path": final.relative_to(export_root()).as_posix(),
            "size": size,
            "pruned": pruned,
        }


def prune(folder: Path, *, slug: str, keep_days: int, keep: set[str], now: datetime) -> list[str]:
    """Delete this schedule's files (and leftover .part files) older than ``keep_days``,
    judged by the UTC timestamp in their names. Returns the names deleted."""
    cutoff = now - timedelta(days=keep_days)
    pattern = _file_pattern(slug)
    deleted = []
    for entry in sorted(folder.iterdir()):
        match = pattern.match(entry.name)
        if not match or entry.name in keep or not entry.is_file():
            continue
        stamp = datetime.strptime(match.group(1), TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        if stamp < cutoff:
            entry.unlink(missing_ok=True)
            deleted.append(entry.name)
    return deleted
