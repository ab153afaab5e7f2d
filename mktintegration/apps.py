from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _apply_roles_after_last_app(sender, using="default", **kwargs):
    # Permissions are created app by app in post_migrate; the roles matrix can be applied
    # once the last app has its permissions.
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if sender is with_models[-1] and using == "default":
        from mktintegration.roles import apply_roles

        apply_roles()


class MktIntegrationConfig(AppConfig):
    name = "mktintegration"
    verbose_name = "Users and system"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        post_migrate.connect(_apply_roles_after_last_app, dispatch_uid="mkt-apply-roles")
