from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from auditlog.models import LogEntry
        from django.db.models.signals import post_save

        # django-auditlog writes its entries itself (LogEntry.objects.create): its post_save is
        # the one place every entry passes, whoever wrote it (docs/adr/0006).
        post_save.connect(
            _chain_entry, sender=LogEntry, dispatch_uid="audit-change-history-link", weak=False
        )


def _chain_entry(sender, instance, created, **kwargs):
    if created:
        from audit.services import change_history_link

        change_history_link(entry=instance)
