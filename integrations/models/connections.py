"""Connections: one vendor account, its (encrypted) credentials and its rate budget."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from exports.backbone.models import regions_validate
from mktintegration import bounds
from mktintegration.crypto import decrypt_secrets, encrypt_secrets, register_encrypted_field
from mktintegration.fields import BoundedJSONField


class ConnectionStatus(models.TextChoices):
    UNTESTED = "untested", "Not tested yet"
    HEALTHY = "healthy", "Healthy"
    FAILING = "failing", "Failing"
    AUTH_FAILED = "auth_failed", "Credentials rejected"


class Connection(models.Model):
    name = models.CharField(max_length=100, unique=True)
    vendor = models.CharField(
        max_length=32, help_text="A registered connector: hubspot, mailchimp, ..."
    )
    auth_kind = models.CharField(max_length=32)
    credentials_ciphertext = models.TextField(blank=True, editable=False)
    config = BoundedJSONField(default=dict, blank=True, help_text="Vendor settings (no secrets).")
    base_url = models.URLField(
        blank=True, help_text="Override the vendor's API address (allowed hosts only)."
    )
    allowed_regions = BoundedJSONField(
        default=list,
        blank=True,
        help_text="Data-residency regions whose records may be sent here; empty allows all.",
    )
    rate_limit_requests = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=bounds.RATE_LIMIT_REQUESTS.validators(),
        help_text="Requests allowed per window (default: the vendor's).",
    )
    rate_limit_seconds = models.FloatField(
        null=True, blank=True, validators=bounds.RATE_LIMIT_SECONDS.validators()
    )
    daily_quota_requests = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=bounds.DAILY_QUOTA_REQUESTS.validators(),
        help_text="Requests the vendor account allows per day (default: the vendor's usual "
        "allowance; only for vendors with a daily quota).",
    )
    status = models.CharField(
        max_length=16, choices=ConnectionStatus.choices, default=ConnectionStatus.UNTESTED
    )
    last_error = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("test_connection", "Can test a connection"),
            ("connect_connection", "Can connect a connection to its vendor account (OAuth)"),
            ("disconnect_connection", "Can disconnect a connection from its vendor account"),
        ]

    def __str__(self):
        return f"{self.name} ({self.vendor})"

    # Secrets: ciphertext only; plaintext on explicit request.
    def get_credentials(self) -> dict[str, str]:
        return decrypt_secrets(self.credentials_ciphertext)

    def set_credentials(self, values: dict[str, str]) -> None:
        self.credentials_ciphertext = encrypt_secrets({k: v for k, v in values.items() if v})

    def clean(self):
        from integrations.connectors import REGISTRY
        from mktintegration.errors import ConnectorError
        from mktintegration.http import check_url

        errors = {}
        connector = REGISTRY.get(self.vendor)
        if connector is None:
            errors["vendor"] = (
                f"Unknown vendor {self.vendor!r}. Known vendors: {', '.join(sorted(REGISTRY))}."
            )
        else:
            if self.auth_kind not in connector.auth_kinds:
                errors["auth_kind"] = (
                    f"{connector.label} supports {', '.join(connector.auth_kinds)}, "
                    f"not {self.auth_kind!r}."
                )
            try:
                connector.config_class.from_dict(self.config or {})
            except (TypeError, ValueError) as exc:
                errors["config"] = f"Invalid {connector.label} settings: {exc}"
            if self.base_url:
                try:
                    check_url(self.base_url, allowed_hosts=connector.allowed_hosts)
                except ConnectorError as exc:
                    errors["base_url"] = str(exc)
        try:
            regions_validate(self.allowed_regions or [], field="allowed_regions")
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if (self.rate_limit_requests is None) != (self.rate_limit_seconds is None):
            errors["rate_limit_seconds"] = "Give both the request count and the window, or neither."
        if errors:
            raise ValidationError(errors)


register_encrypted_field("integrations.Connection", "credentials_ciphertext")


class ConnectionCheck(models.Model):
    """One periodic or manual test of a connection (the uptime figures come from these)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="checks")
    checked_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    duration_ms = models.IntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["connection", "checked_at"], name="conncheck_time_idx")]

    def __str__(self):
        return f"{self.connection_id} {'ok' if self.ok else 'failed'} at {self.checked_at}"
