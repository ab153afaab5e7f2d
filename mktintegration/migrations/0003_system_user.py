"""The ``system`` service account: the actor of changes made by Celery tasks (change history).

It cannot log in (inactive, unusable password) and holds no permission.
"""

from django.db import migrations


def create_system_user(apps, schema_editor):
    User = apps.get_model("mktintegration", "User")
    User.objects.get_or_create(
        username="system",
        defaults={
            "is_active": False,
            "is_service_account": True,
            "password": "!system-actor-never-logs-in",
            "first_name": "System",
            "last_name": "(tasks)",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("mktintegration", "0002_apitoken")]

    operations = [migrations.RunPython(create_system_user, migrations.RunPython.noop)]
