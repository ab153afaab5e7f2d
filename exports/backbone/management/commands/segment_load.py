"""``python manage.py segment_load KEY --name NAME --subject company|contact [--file F]``: set a
segment's members from ids, one per line (standard input without ``--file``)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from exports.backbone.models import SegmentSubject
from exports.backbone.segments import (
    MAX_MEMBERS,
    SegmentInputError,
    segment_define,
    segment_members_replace,
)


class Command(BaseCommand):
    help = (
        "Create or update a segment and make the ids read its members (one company or contact "
        "id per line; blank lines and lines starting with # are skipped). Members who are not "
        "in the list leave it. See docs/segments.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("key", help="the segment's key, as filters name it")
        parser.add_argument("--name", required=True)
        parser.add_argument("--subject", required=True, choices=SegmentSubject.values)
        parser.add_argument("--description", default="")
        parser.add_argument("--file", help="the ids (default: standard input)")

    def handle(self, *args, **options):
        ids = self._ids(options["file"])
        try:
            segment = segment_define(
                key=options["key"],
                name=options["name"],
                subject=options["subject"],
                description=options["description"],
            )
            change = segment_members_replace(segment=segment, subject_ids=ids)
        except SegmentInputError as exc:
            raise CommandError(exc.message, returncode=2) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Segment {segment.key}: {change.members:,} members ({change.joined:,} joined, "
                f"{change.left:,} left), version {change.version}"
            )
        )

    @staticmethod
    def _ids(path: str | None) -> list[int]:
        try:
            stream = open(path, encoding="utf-8") if path else sys.stdin  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"--file {path}: {exc.strerror}", returncode=2) from None
        ids = []
        with stream:
            for number, line in enumerate(stream, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                if not (text.isascii() and text.isdigit()) or len(text) > 19:
                    raise CommandError(
                        f"line {number}: {text[:40]!r} is not an id (a whole number)", returncode=2
                    )
                ids.append(int(text))
                if len(ids) > MAX_MEMBERS:
                    raise CommandError(f"at most {MAX_MEMBERS:,} members", returncode=2)
        return ids
