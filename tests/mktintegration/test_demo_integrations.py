import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from exports.models import ExportSchedule
from integrations.models import Connection, Sync
from mktintegration.demo import reset_demo_users


@pytest.mark.django_db
def test_demo_integrations_are_created_once_and_granted_to_the_manager(settings, capsys):
    settings.DEMO_MODE = True
    reset_demo_users(password_factory=lambda: "demo-password-123")

    call_command("seed_demo_integrations")
    call_command("seed_demo_integrations")

    assert "already exist" in capsys.readouterr().out
    assert Connection.objects.count() == 3 and Sync.objects.count() == 3
    assert ExportSchedule.objects.filter(name="Daily health scores").exists()
    from mktintegration.models import User

    manager = User.objects.get(username="manager")
    for sync in Sync.objects.all():
        assert manager.has_perm("integrations.run_sync", sync)
    for connection in Connection.objects.all():
        assert connection.base_url.startswith("http://127.0.0.1:81")
        assert connection.get_credentials()


@pytest.mark.django_db
def test_demo_integrations_are_refused_outside_demo_mode(settings):
    settings.DEMO_MODE = False

    with pytest.raises(CommandError, match="demo mode"):
        call_command("seed_demo_integrations")
