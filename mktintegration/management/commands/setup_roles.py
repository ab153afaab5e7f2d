from django.core.management.base import BaseCommand, CommandError

from mktintegration.roles import UnknownPermissionError, apply_roles


class Command(BaseCommand):
    help = (
        "Create the role groups and give each exactly the permissions in mktintegration/roles.py."
    )

    def handle(self, *args, **options):
        try:
            changes = apply_roles()
        except UnknownPermissionError as exc:
            raise CommandError(str(exc)) from exc
        for role, (added, removed) in changes.items():
            if not added and not removed:
                self.stdout.write(f"{role}: unchanged")
                continue
            self.stdout.write(f"{role}: +{len(added)} -{len(removed)}")
            for name in added:
                self.stdout.write(f"    + {name}")
            for name in removed:
                self.stdout.write(f"    - {name}")
