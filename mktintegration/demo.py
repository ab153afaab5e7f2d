"""Demo users for ``make run``: one per role, staff, with a fresh password each start."""

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from mktintegration import roles

DEMO_USERS = (
    ("manager", roles.MARKETING_MANAGER),
    ("analyst", roles.MARKETING_ANALYST),
    ("integration-admin", roles.INTEGRATION_ADMIN),
    ("auditor", roles.AUDITOR),
)


@transaction.atomic
def reset_demo_users(*, password_factory: Callable[[], str]) -> dict[str, str]:
    """Create or reset the demo users; returns username -> new password."""
    User = get_user_model()
    passwords = {}
    for username, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@demo.example"}
        )
        password = password_factory()
        user.set_password(password)
        user.is_staff = True
        user.is_superuser = False
        user.is_active = True
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        passwords[username] = password
    return passwords
