from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.registry import auditlog

        from audit.secrets import secret_changes_track
        from mktintegration.crypto import decrypt_secrets, register_encrypted_field

        register_encrypted_field("exports.ExportDestination", "secret_ciphertext")
        # Change history of the configuration; the ciphertext never enters a diff.
        auditlog.register(self.get_model("ExportDestination"), exclude_fields=["secret_ciphertext"])
        secret_changes_track(
            self.get_model("ExportDestination"),
            field="secret_ciphertext",
            label="secrets",
            decode=decrypt_secrets,
        )
        auditlog.register(self.get_model("ExportSchedule"))
