"""Services that authenticate by TLS client certificate (docs/mtls.md): registering a
certificate's subject for a service account, revoking it, and recognising it on a request.

The web server verifies the certificate against its client CA during the TLS handshake
(``mktintegration.mtls``); what reaches the application is the verified certificate's
subject and SHA-256 fingerprint, read by ``mtls.certificate_identity``, the function the
registration command reads a PEM file with too.
"""

from __future__ import annotations

import re

from django.utils import timezone

from mktintegration.models import ServiceCertificate, User
from mktintegration.scopes import scope_validate
from mktintegration.tokens import LAST_USED_RESOLUTION, TokenError

SUBJECT_CHARS = 500
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def subject_check(subject: str) -> str:
    subject = subject.strip()
    if not subject or len(subject) > SUBJECT_CHARS or _CONTROL.search(subject):
        raise ValueError(
            f"subject: 1 to {SUBJECT_CHARS} characters without control characters, "
            "e.g. CN=segments,O=Example"
        )
    if "=" not in subject:
        raise ValueError(f"subject: {subject[:60]!r} is not a distinguished name (CN=...,O=...)")
    return subject


def fingerprint_check(fingerprint: str) -> str:
    """64 hex digits; the colons and upper case of ``openssl x509 -fingerprint`` are accepted."""
    value = fingerprint.strip().replace(":", "").lower()
    if value and not _FINGERPRINT.match(value):
        raise ValueError("fingerprint: the SHA-256 fingerprint is 64 hex digits (colons allowed)")
    return value


def service_certificate_register(
    *,
    user: User,
    name: str,
    subject: str,
    scopes: list[str],
    fingerprint: str = "",
    created_by: User | None = None,
) -> ServiceCertificate:
    """Let requests with a verified client certificate of ``subject`` act as ``user`` with
    ``scopes``. ValueError names what is wrong (nothing is saved)."""
    if not user.is_active:
        raise ValueError(f"user {user.username} is inactive")
    subject = subject_check(subject)
    if ServiceCertificate.objects.filter(subject=subject).exists():
        raise ValueError(f"subject: {subject!r} is registered already (revoke it first)")
    return ServiceCertificate.objects.create(
        user=user,
        name=name[:100] or subject[:100],
        subject=subject,
        fingerprint_sha256=fingerprint_check(fingerprint),
        scopes=scope_validate(scopes),
        created_by=created_by,
    )


def service_certificate_revoke(*, certificate: ServiceCertificate) -> None:
    """Requests with it are refused at once. The row stays (the access log names it); its
    subject can be registered again only after the revoked row is deleted."""
    if certificate.revoked_at is None:
        certificate.revoked_at = timezone.now()
        certificate.save(update_fields=["revoked_at"])


def service_certificate_authenticate(
    *, subject: str, fingerprint: str, address: str | None = None
) -> ServiceCertificate:
    """The registration a verified client certificate names; TokenError says why not."""
    found = ServiceCertificate.objects.select_related("user").filter(subject=subject).first()
    if found is None:
        raise TokenError(
            f"the client certificate {subject[:200]!r} is not registered for any service"
        )
    if found.revoked_at is not None:
        raise TokenError("this client certificate's registration was revoked")
    if found.fingerprint_sha256 and found.fingerprint_sha256 != fingerprint:
        raise TokenError("this client certificate is not the one registered for its subject")
    if not found.user.is_active:
        raise TokenError("this client certificate's service account is inactive")
    now = timezone.now()
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        ServiceCertificate.objects.filter(pk=found.pk).update(
            last_used_at=now, last_used_address=address
        )
    return found
