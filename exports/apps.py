from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.registry import auditlog

        from mktintegration.crypto import register_encrypted_field

        register_encrypted_field("exports.ExportDestination", "secret_ciphertext")
        # Change history of the configuration; the ciphertext never enters a diff.
        auditlog.register(self.get_model("ExportDestination"), exclude_fields=["secret_ciphertext"])
        auditlog.register(self.get_model("ExportSchedule"))
