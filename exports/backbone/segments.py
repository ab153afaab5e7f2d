"""Segments: named sets of companies or contacts that exports and syncs filter on.

The segmentation engine's output lives in the backbone's database (``Segment`` and
``SegmentMember``), so a filter on a segment is one ``EXISTS`` in the export's or the plan's
own SQL (exports.query.where_sql), on SQLite and PostgreSQL alike. This module is the one
write: ``segment_define`` creates or renames a segment, ``segment_members_replace`` sets its
membership (members who leave are kept with ``left_at``, so incremental sync plans see them
change) and adds one to its ``version``. ``manage.py segment_load`` and the demo seed use it.
See docs/segments.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from exports.backbone.models import Segment, SegmentMember, SegmentSubject
from exports.backbone.router import backbone_alias
from mktintegration import bounds

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
KEY_RULE = "1 to 64 of a-z 0-9 _ -, starting with a letter or digit"
MAX_MEMBERS = 10_000_000
_CHUNK = 5_000  # ids per statement (SQLite's parameter limit)


class SegmentInputError(ValueError):
    """A segment write with a bad value: ``field`` names it, the message the allowed values."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SegmentRef:
    """A segment as a filter read it: which one, and at which version."""

    id: int
    key: str
    name: str
    version: int

    def describe(self) -> dict:
        return {"key": self.key, "name": self.name, "version": self.version}


@dataclass(frozen=True)
class MembershipChange:
    joined: int
    left: int
    members: int
    version: int


def key_check(field: str, key: str) -> str:
    if not KEY.match(key):
        raise SegmentInputError(field, f"{field}: {key[:40]!r} is not a segment key ({KEY_RULE})")
    return key


def segment_define(*, key: str, name: str, subject: str, description: str = "") -> Segment:
    """Create the segment ``key``, or rename it; its subject (companies or contacts) is fixed
    once it exists."""
    key_check("key", key)
    try:
        bounds.text_check("name", name)
        bounds.text_check("description", description, max_chars=2_000)
    except bounds.BoundError as exc:
        raise SegmentInputError(exc.field, exc.message) from None
    if not name.strip():
        raise SegmentInputError("name", "name: give the segment a name")
    if subject not in SegmentSubject.values:
        raise SegmentInputError(
            "subject", f"subject: {subject[:20]!r} is not one of {', '.join(SegmentSubject.values)}"
        )
    with transaction.atomic(using=backbone_alias()):
        segment, created = Segment.objects.select_for_update().get_or_create(
            key=key, defaults={"name": name, "subject": subject, "description": description}
        )
        if not created:
            if segment.subject != subject:
                raise SegmentInputError(
                    "subject", f"subject: segment {key} holds {segment.subject}s, not {subject}s"
                )
            segment.name, segment.description = name, description
            segment.save(update_fields=["name", "description", "updated_at"])
    return segment


def segment_members_replace(*, segment: Segment, subject_ids: Iterable[int]) -> MembershipChange:
    """Make ``subject_ids`` the segment's members: the others leave (kept, with ``left_at``),
    the new ones join, former members who are back join again. One version more if anything
    changed."""
    wanted: set[int] = set()
    for value in subject_ids:
        if isinstance(value, bool) or not bounds.ID.contains(value):
            raise SegmentInputError(
                "subject_id", f"subject_id: {value!r} is not an id ({bounds.ID.describe()})"
            )
        wanted.add(int(value))
        if len(wanted) > MAX_MEMBERS:
            raise SegmentInputError("subject_id", f"at most {MAX_MEMBERS:,} members")
    alias = backbone_alias()
    now = timezone.now()
    with transaction.atomic(using=alias):
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        rows = SegmentMember.objects.filter(segment=segment).values_list("subject_id", "left_at")
        current = dict(rows.iterator(chunk_size=_CHUNK))
        new = sorted(i for i in wanted if i not in current)
        back = sorted(i for i in wanted if i in current and current[i] is not None)
        leaving = sorted(i for i, left in current.items() if left is None and i not in wanted)
        SegmentMember.objects.bulk_create(
            [SegmentMember(segment=segment, subject_id=i, joined_at=now) for i in new],
            batch_size=_CHUNK,
        )
        members = SegmentMember.objects.filter(segment=segment)
        for start in range(0, len(back), _CHUNK):
            members.filter(subject_id__in=back[start : start + _CHUNK]).update(
                joined_at=now, left_at=None
            )
        for start in range(0, len(leaving), _CHUNK):
            members.filter(subject_id__in=leaving[start : start + _CHUNK]).update(left_at=now)
        joined = len(new) + len(back)
        if joined or leaving:
            Segment.objects.filter(pk=segment.pk).update(version=F("version") + 1)
        segment.refresh_from_db(fields=["version"])
    return MembershipChange(joined, len(leaving), len(wanted), segment.version)


def segments_named(subject: str, keys: list[str]) -> dict[str, SegmentRef]:
    """The segments of ``subject`` with these keys, as they are now."""
    rows = Segment.objects.filter(subject=subject, key__in=keys).values_list(
        "pk", "key", "name", "version"
    )
    return {key: SegmentRef(pk, key, name, version) for pk, key, name, version in rows}


def segment_keys(subject: str, *, limit: int = 200) -> list[tuple[str, str]]:
    """(key, name) of the segments of ``subject``, for choices and messages."""
    return list(
        Segment.objects.filter(subject=subject).order_by("key").values_list("key", "name")[:limit]
    )
