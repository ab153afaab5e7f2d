from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mktintegration.tokens import token_create


class Command(BaseCommand):
    help = (
        "Create an API token for a user. The token is printed once, on the last line; only a "
        "hash is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated, e.g. export:clients")
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args, username, scopes, name, expires_days, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        try:
            token, secret = token_create(
                user=user,
                name=name or f"token for {username}",
                scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                expires_days=expires_days,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "no expiry"
        )
        self.stderr.write(
            f"Token mkt_{token.public_id} for {username}, scopes {', '.join(token.scopes)}, "
            f"{expiry}. Store it now: it cannot be shown again."
        )
        self.stdout.write(secret)
