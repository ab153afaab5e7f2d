from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mktintegration.demo import demo_integrations_create


class Command(BaseCommand):
    help = (
        "Create demo connections (to the vendor emulators `make run` starts), two syncs and an "
        "export schedule, granted to the demo manager (demo mode only; idempotent)."
    )

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            raise CommandError("Demo integrations exist only in demo mode (DEBUG=1, MKT_DEMO=1).")
        created = demo_integrations_create()
        for line in created:
            self.stdout.write(f"  created {line}")
        if not created:
            self.stdout.write("Demo integrations already exist.")
