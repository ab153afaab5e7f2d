from django.apps import AppConfig


class EventsOutConfig(AppConfig):
    """Events out to the analytics pipeline: the outbox and its sink (docs/events-out.md)."""

    name = "integrations.events_out"
    label = "events_out"
    verbose_name = "Events out"
    default_auto_field = "django.db.models.BigAutoField"
