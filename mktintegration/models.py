from django.contrib.auth.models import AbstractUser
from django.db import models

from mktintegration.fields import BoundedJSONField


class User(AbstractUser):
    """A person, or an API service account (no password login, tokens only)."""

    is_service_account = models.BooleanField(
        default=False,
        help_text="A machine client of the API: authenticates with tokens, never logs in.",
    )
    allowed_regions = BoundedJSONField(
        default=list,
        blank=True,
        help_text="Data-residency regions whose records this user (and their tokens) may "
        'export, e.g. ["eu", "uk"]; empty allows all.',
    )

    def clean(self):
        from exports.backbone.models import regions_validate

        super().clean()
        regions_validate(self.allowed_regions, field="allowed_regions")

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the heartbeat task (written every 30 s by beat)."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self):
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"


class ApiToken(models.Model):
    """A scoped, expiring API credential. Only a keyed hash of the secret is stored.

    The full token (``mkt_<public_id>_<secret>``) is shown once, when it is created. A request
    with it may do what both the token's scopes and its user's permissions allow.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    public_id = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_address = models.GenericIPAddressField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API token"

    def __str__(self):
        return f"mkt_{self.public_id} ({self.name})"

    @property
    def credential_id(self) -> str:
        """How the access log and throttles name it."""
        return f"mkt_{self.public_id}"


class ServiceCertificate(models.Model):
    """A service that authenticates by its TLS client certificate (mutual TLS): the subject of
    a certificate the web server verified against its client CA maps to a service account
    and scopes (docs/mtls.md). Pinned to one certificate by its SHA-256 fingerprint, or any
    certificate with that subject from the trusted CA (so renewals need no change here)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="service_certificates")
    name = models.CharField(max_length=100)
    subject = models.CharField(
        max_length=500,
        unique=True,
        help_text="The certificate's subject as RFC 4514 writes it, e.g. CN=segments,O=Example",
    )
    fingerprint_sha256 = models.CharField(
        "SHA-256 fingerprint",
        max_length=64,
        blank=True,
        help_text="Only this certificate (64 hex digits); empty: any with the subject.",
    )
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_address = models.GenericIPAddressField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "service certificate"

    def __str__(self):
        return f"{self.subject} ({self.name})"

    @property
    def credential_id(self) -> str:
        """How the access log and throttles name it (as ``mkt_<id>`` names a token)."""
        return f"cert:{self.pk}"
