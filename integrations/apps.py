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
        auditlog.register(
            self.get_model("Sync"), exclude_fields=["source_watermark", "planned_config_version"]
        )
        auditlog.register(self.get_model("FieldMapping"))
