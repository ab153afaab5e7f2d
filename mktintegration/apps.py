from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _apply_roles_after_last_app(sender, using="default", **kwargs):
    # Permissions are created app by app in post_migrate; the roles matrix can be applied
    # once the last app has its permissions.
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if sender is with_models[-1] and using == "default":
        from mktintegration.roles import apply_roles

        apply_roles()


def _register_change_history() -> None:
    """django-auditlog on the project-level configuration: users' roles, object grants, beat's
    schedules and API tokens. Secrets are excluded (never masked: not even their length)."""
    from auditlog.registry import auditlog
    from django.contrib.auth.models import Group
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )
    from guardian.models import GroupObjectPermission, UserObjectPermission

    from mktintegration.models import ApiToken, User

    # Group membership and direct permissions; the password hash never; last_login is noise.
    auditlog.register(
        User,
        exclude_fields=["password", "last_login"],
        m2m_fields={"groups", "user_permissions"},
    )
    auditlog.register(Group, m2m_fields={"permissions"})
    auditlog.register(UserObjectPermission)
    auditlog.register(GroupObjectPermission)
    # Beat rewrites last_run_at/total_run_count (and so date_changed) on every run.
    auditlog.register(
        PeriodicTask, exclude_fields=["last_run_at", "total_run_count", "date_changed"]
    )
    for schedule in (CrontabSchedule, IntervalSchedule, ClockedSchedule, SolarSchedule):
        auditlog.register(schedule)
    # last_used_* is bookkeeping written by every authenticated request (a queryset update).
    auditlog.register(ApiToken, exclude_fields=["secret_hash", "last_used_at", "last_used_address"])


class MktIntegrationConfig(AppConfig):
    name = "mktintegration"
    verbose_name = "Users and system"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.core import checks

        from mktintegration import login_throttle, sso, system_actor

        post_migrate.connect(_apply_roles_after_last_app, dispatch_uid="mkt-apply-roles")
        _register_change_history()
        system_actor.connect()
        login_throttle.connect()
        checks.register(sso.check_role_map)
