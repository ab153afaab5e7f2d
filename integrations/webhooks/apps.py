from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Feedback from vendors: webhook receivers, polls, what the events do (docs/webhooks.md)."""

    name = "integrations.webhooks"
    label = "webhooks"
    verbose_name = "Feedback from vendors"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.registry import auditlog

        # Who generated or rotated a receiver secret, and when (never the hash).
        auditlog.register(self.get_model("WebhookEndpoint"), exclude_fields=["secret_hash"])
