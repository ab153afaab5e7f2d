from django.apps import AppConfig


class BackboneConfig(AppConfig):
    """The company's own data (companies, contacts, activity, consent) and derived metrics.

    Read-only to the rest of the system; reached through the ``backbone`` database alias.
    """

    name = "exports.backbone"
    label = "backbone"
    verbose_name = "Backbone data"
    default_auto_field = "django.db.models.BigAutoField"
