from django.core.management.base import BaseCommand, CommandError

from audit.selectors import CHAINS, ChainCheck
from audit.services import chain_reanchor


class Command(BaseCommand):
    help = (
        "Check the audit chains (access log, outbound log, change history) against their signed "
        "heads. Exits non-zero naming the chain and the first broken row, or how many rows were "
        "removed from the end."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reanchor",
            action="store_true",
            help=(
                "Sign each chain's head as it is now, after you have investigated what this "
                "command reported about an anchor (a lost key, an anchor removed or altered). "
                "Truncation is then measured from the new heads."
            ),
        )

    def handle(self, *args, reanchor=False, **options):
        if reanchor:
            for model in CHAINS:
                head, old = chain_reanchor(model=model)
                before = f"was {old.length:,} rows up to row {old.last_id}" if old else "was none"
                self.stdout.write(
                    f"{model.chain}: head signed at {head.length:,} rows, row {head.last_id} "
                    f"({head.last_hash}); the anchor {before}"
                )
            return
        for model in CHAINS:
            check = ChainCheck(model)
            broken = next(check.breaks(), None)
            if broken:
                raise CommandError(f"Audit chain broken: {broken}")
            head = f", head row {check.head[0]} {check.head[1]}" if check.head else ""
            self.stdout.write(f"{check.name}: {check.length:,} rows, chain intact{head}")
        self.stdout.write(self.style.SUCCESS("Audit logs verified."))
