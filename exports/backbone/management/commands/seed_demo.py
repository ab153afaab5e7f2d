"""``python manage.py seed_demo --companies N [--seed S]``: deterministic demo data."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from exports.backbone.metrics import refresh_company_metrics
from exports.backbone.seed import (
    SeedResult,
    reset_backbone,
    seed_backbone,
    seed_demo_segments,
)


def _whole_number(name: str, raw: str, *, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise CommandError(f"{name} must be a whole number, not {raw!r}.", returncode=2) from None
    if value < minimum:
        raise CommandError(f"{name} must be at least {minimum}, not {value}.", returncode=2)
    return value


class Command(BaseCommand):
    help = (
        "Fill the backbone with realistic, deterministic demo data: companies with their "
        "contacts, activity events and consent records, then refresh the metrics."
    )

    def add_arguments(self, parser):
        # Parsed as text and checked in handle(), so bad input is one line and exit code 2.
        parser.add_argument("--companies", default="10000", metavar="N")
        parser.add_argument("--seed", default="1", metavar="S")
        parser.add_argument(
            "--anchor", metavar="YYYY-MM-DD", help="'now' of the generated history (default: today)"
        )
        parser.add_argument("--jobs", default=None, metavar="J", help="parallel loaders")
        parser.add_argument("--reset", action="store_true", help="delete the backbone first")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if companies already exist"
        )

    def handle(self, *args, **options):
        companies = _whole_number("--companies", options["companies"], minimum=1)
        seed = _whole_number("--seed", options["seed"], minimum=0)
        jobs = _whole_number("--jobs", options["jobs"], minimum=1) if options["jobs"] else None
        anchor = self._anchor(options["anchor"])

        from exports.backbone.models import Company

        if options["if_empty"] and Company.objects.exists():
            self.stdout.write(f"Backbone already has {Company.objects.count():,} companies.")
            return
        if options["reset"]:
            reset_backbone()

        def progress(result: SeedResult, total: int) -> None:
            self.stdout.write(
                f"  {result.companies:>11,}/{total:,} companies  {result.rows:>12,} rows  "
                f"{result.rows_per_second:>10,.0f} rows/s"
            )
            self.stdout.flush()

        self.stdout.write(
            f"Seeding {companies:,} companies (seed {seed}, anchor {anchor:%Y-%m-%d})"
        )
        result = seed_backbone(
            companies=companies,
            seed=seed,
            anchor=anchor,
            jobs=jobs,
            progress=progress,
            note=lambda text: self.stdout.write(f"  {text}"),
        )
        refresh = refresh_company_metrics(now=anchor)
        metrics_seconds = (refresh.finished_at - refresh.started_at).total_seconds()
        self.stdout.write(
            f"  Metrics refreshed for {refresh.companies:,} companies in {metrics_seconds:.1f} s"
        )
        seconds = result.seconds + metrics_seconds
        for line in seed_demo_segments():
            self.stdout.write(f"  {line}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.companies:,} companies, {result.contacts:,} contacts, "
                f"{result.events:,} events, {result.consents:,} consent records: "
                f"{result.rows:,} rows in {seconds:.1f} s (metrics included) = "
                f"{result.rows / seconds:,.0f} rows/s"
            )
        )

    @staticmethod
    def _anchor(raw: str | None) -> datetime:
        if raw is None:
            today = datetime.now(UTC).date()
            return datetime(today.year, today.month, today.day, tzinfo=UTC)
        try:
            return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise CommandError(f"--anchor must be YYYY-MM-DD, not {raw!r}.", returncode=2) from None
