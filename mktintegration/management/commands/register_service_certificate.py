from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from mktintegration import roles
from mktintegration.mtls import pem_identity
from mktintegration.service_certs import service_certificate_register


class Command(BaseCommand):
    help = (
        "Let a service authenticate by its TLS client certificate (docs/mtls.md): requests "
        "with a verified certificate of this subject act as the user, with these scopes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True, help="the service account")
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="create it (no password, API client role) if there is no such user",
        )
        parser.add_argument("--scopes", required=True, help="comma-separated, e.g. events:write")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--cert", type=Path, help="the client certificate (PEM): its subject")
        which.add_argument("--subject", help="the subject as RFC 4514 writes it: CN=x,O=y")
        parser.add_argument(
            "--pin",
            action="store_true",
            help="accept only this certificate (its SHA-256 fingerprint), not its renewals",
        )
        parser.add_argument("--fingerprint", default="", help="SHA-256 fingerprint to pin")
        parser.add_argument("--name", default="", help="what the service is")

    def handle(self, *args, username, scopes, cert, subject, pin, fingerprint, name, **options):
        if cert is not None:
            try:
                subject, cert_fingerprint = pem_identity(cert.read_bytes())
            except (OSError, ValueError) as exc:
                raise CommandError(
                    f"--cert {cert}: not a readable PEM certificate ({exc})"
                ) from None
            if pin:
                fingerprint = fingerprint or cert_fingerprint
        elif pin:
            raise CommandError("--pin needs --cert (or give --fingerprint)")
        User = get_user_model()
        try:
            with transaction.atomic():  # a user made here goes if the registration fails
                user = User.objects.filter(username=username).first()
                created = user is None and bool(options.get("create_user"))
                if created:
                    user = User(username=username[:150], is_service_account=True)
                    user.set_unusable_password()
                    user.save()
                    user.groups.add(Group.objects.get(name=roles.API_CLIENT))
                elif user is None:
                    raise CommandError(f"no user named {username!r} (--create-user makes one)")
                registration = service_certificate_register(
                    user=user,
                    name=name or f"certificate for {username}",
                    subject=subject,
                    scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                    fingerprint=fingerprint,
                )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if created:
            self.stdout.write(f"Service account {username} created (API client role).")
        pinned = (
            f"pinned to {registration.fingerprint_sha256[:16]}…"
            if registration.fingerprint_sha256
            else "any certificate with this subject from the trusted CA"
        )
        self.stdout.write(
            f"Service certificate {registration.subject} acts as {username}, scopes "
            f"{', '.join(registration.scopes)}; {pinned}."
        )
