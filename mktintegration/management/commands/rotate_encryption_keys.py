from django.core.management.base import BaseCommand, CommandError

from mktintegration.crypto import SecretsUnreadable, encrypted_fields_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret under the first key of MKT_ENCRYPTION_KEYS. Rotate by "
        "putting a new key first (keeping the old ones after it), running this, then removing "
        "the old keys."
    )

    def handle(self, *args, **options):
        try:
            counts = encrypted_fields_rotate()
        except SecretsUnreadable as exc:
            raise CommandError(f"{exc}. Nothing was changed.") from exc
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} secret(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS("All secrets now use the newest key."))
