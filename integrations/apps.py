from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.registry import auditlog

        from audit.secrets import secret_changes_track
        from mktintegration.crypto import decrypt_secrets

        # Change history of the configuration; the credentials' ciphertext never enters a diff.
        # Connection status and Sync watermarks are run-time state, not configuration.
        auditlog.register(
            self.get_model("Connection"),
            exclude_fields=["credentials_ciphertext", "status", "last_error", "last_checked_at"],
        )
        secret_changes_track(
            self.get_model("Connection"),
            field="credentials_ciphertext",
            label="credentials",
            decode=decrypt_secrets,
        )
        # Connect, Reconnect, Disconnect and a lost grant are history; token renewals are not.
        auditlog.register(
            self.get_model("OAuthGrant"),
            exclude_fields=[
                "token_expires_at",
                "expires_at",
                "refreshed_at",
                "version",
                "lease_owner",
                "lease_until",
            ],
        )
        auditlog.register(
            self.get_model("Sync"), exclude_fields=["source_watermark", "planned_config_version"]
        )
        auditlog.register(self.get_model("FieldMapping"))
