import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from mktintegration import roles
from mktintegration.models import ApiToken


@pytest.mark.django_db
def test_create_api_token_prints_the_token_once_and_stores_only_a_hash(
    capsys, user_with_role, client
):
    user = user_with_role(roles.API_CLIENT)

    call_command(
        "create_api_token",
        username=user.username,
        scopes="export:clients,export:metrics",
        expires_days=30,
    )

    raw = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get(user=user)
    assert raw.startswith(f"mkt_{token.public_id}_")
    secret = raw.split("_", 2)[2]
    assert secret not in token.secret_hash
    assert token.scopes == ["export:clients", "export:metrics"]
    assert token.expires_at is not None
    response = client.get("/marketing/export/clients", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"scopes": "export:everything"}, "unknown scope(s): export:everything"),
        ({"scopes": "export:clients", "expires_days": 0}, "at least 1"),
        ({"scopes": "export:clients", "username": "ghost"}, "no user named 'ghost'"),
    ],
)
def test_create_api_token_bad_input(user_with_role, kwargs, says):
    user = user_with_role(roles.API_CLIENT)
    kwargs = {"username": user.username, **kwargs}

    with pytest.raises(CommandError, match=says.replace("(", r"\(").replace(")", r"\)")):
        call_command("create_api_token", **kwargs)
    assert not ApiToken.objects.exists()
