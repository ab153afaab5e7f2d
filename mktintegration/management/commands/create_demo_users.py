import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mktintegration.demo import DEMO_USERS, reset_demo_users


class Command(BaseCommand):
    help = "Create one demo user per role with a fresh password and print them (demo mode only)."

    def handle(self, *args, **options):
        if not settings.DEMO_MODE:
            raise CommandError("Demo users exist only in demo mode (DEBUG=1, MKT_DEMO=1).")
        passwords = reset_demo_users(password_factory=lambda: secrets.token_urlsafe(9))
        self.stdout.write("Demo users (passwords change on every `make run`):")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username:<18} {passwords[username]:<14} {role}")
