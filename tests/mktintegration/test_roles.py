import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from mktintegration import roles
from mktintegration.demo import DEMO_USERS


def _group_permissions(name):
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=name).permissions.select_related("content_type")
    }


@pytest.mark.django_db
def test_migrate_leaves_every_role_group_with_exactly_its_matrix_permissions():
    for role in roles.ROLES.values():
        assert _group_permissions(role.name) == set(role.permissions)


@pytest.mark.django_db
def test_second_setup_roles_changes_nothing(capsys):
    call_command("setup_roles")
    before = {name: _group_permissions(name) for name in roles.ROLES}

    call_command("setup_roles")

    out = capsys.readouterr().out.splitlines()[-len(roles.ROLES) :]
    assert out == [f"{name}: unchanged" for name in roles.ROLES]
    assert {name: _group_permissions(name) for name in roles.ROLES} == before


@pytest.mark.django_db
def test_setup_roles_removes_a_permission_granted_by_hand():
    group = Group.objects.get(name=roles.AUDITOR)
    stray = Group.objects.get(name=roles.MARKETING_MANAGER).permissions.first()
    group.permissions.add(stray)

    call_command("setup_roles")

    assert _group_permissions(roles.AUDITOR) == set(roles.ROLES[roles.AUDITOR].permissions)


@pytest.mark.django_db
def test_a_misspelt_permission_in_the_matrix_is_an_error(monkeypatch):
    broken = roles.Role("Broken", "", frozenset({"backbone.view_compnay"}))
    monkeypatch.setitem(roles.ROLES, "Broken", broken)

    with pytest.raises(CommandError, match=r"backbone\.view_compnay"):
        call_command("setup_roles")


@pytest.mark.django_db
def test_auditor_role_cannot_read_or_change_backbone_data():
    perms = roles.ROLES[roles.AUDITOR].permissions
    assert not {p for p in perms if p.startswith("backbone.")}


@pytest.mark.django_db
def test_no_role_may_change_backbone_data():
    for role in roles.ROLES.values():
        assert not {
            p
            for p in role.permissions
            if p.startswith("backbone.") and not p.startswith("backbone.view_")
        }, role.name


@pytest.mark.django_db
def test_demo_users_are_refused_outside_demo_mode(settings):
    settings.DEMO_MODE = False

    with pytest.raises(CommandError, match="demo mode"):
        call_command("create_demo_users")


@pytest.mark.django_db
def test_demo_users_get_one_role_each_and_a_fresh_password(settings, capsys, client):
    settings.DEMO_MODE = True

    call_command("create_demo_users")
    first = capsys.readouterr().out
    call_command("create_demo_users")
    second = capsys.readouterr().out

    for username, role in DEMO_USERS:
        line = next(line for line in second.splitlines() if line.split()[:1] == [username])
        password = line.split()[1]
        assert role in line
        assert client.login(username=username, password=password)
        assert password not in first  # a new password each start
