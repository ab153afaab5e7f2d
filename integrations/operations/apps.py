from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "integrations.operations"
    label = "operations"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.registry import auditlog

        from integrations.models import Connection, FieldMapping, Sync
        from integrations.operations.models import AlertRecipients

        # The configure API answers with the change-history version of what it wrote, so the
        # integration config models need a history. Registered here unless something else
        # (the audit app) already did; the credentials' ciphertext never enters a diff.
        tracked = {
            Connection: ["credentials_ciphertext", "status", "last_error", "last_checked_at"],
            Sync: ["source_watermark", "planned_config_version"],
            FieldMapping: [],
            AlertRecipients: [],
        }
        for model, excluded in tracked.items():
            if not auditlog.contains(model):
                auditlog.register(model, exclude_fields=excluded)
