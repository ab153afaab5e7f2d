import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from integrations.models import Connection


@pytest.mark.django_db
def test_rotation_re_encrypts_every_secret_under_the_new_key(settings, capsys):
    old = settings.MKT_ENCRYPTION_KEYS[0]
    connection = Connection(name="c", vendor="hubspot", auth_kind="private_app_token")
    connection.set_credentials({"token": "pat-secret-1"})
    connection.save()
    before = connection.credentials_ciphertext

    new = Fernet.generate_key().decode()
    settings.MKT_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_keys")

    connection.refresh_from_db()
    assert connection.credentials_ciphertext != before
    assert "integrations.Connection: 1 secret(s) re-encrypted" in capsys.readouterr().out
    settings.MKT_ENCRYPTION_KEYS = [new]  # the old key can now be dropped
    assert connection.get_credentials() == {"token": "pat-secret-1"}


@pytest.mark.django_db
def test_rotation_without_the_old_key_changes_nothing_and_says_so(settings):
    connection = Connection(name="c", vendor="hubspot", auth_kind="private_app_token")
    connection.set_credentials({"token": "pat-secret-1"})
    connection.save()
    before = connection.credentials_ciphertext

    settings.MKT_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_encryption_keys")

    connection.refresh_from_db()
    assert connection.credentials_ciphertext == before
