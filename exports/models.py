from django.db import models


class DatasetAccess(models.Model):
    """Holds the per-dataset export permissions (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("export_clients", "Can export the clients dataset"),
            ("export_metrics", "Can export the metrics dataset"),
            ("export_contacts", "Can export the contacts dataset (personal data)"),
            ("override_export_limits", "Can export more rows than the role's limit"),
        ]

    def __str__(self):
        return "dataset access"
