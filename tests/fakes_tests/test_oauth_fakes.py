"""The emulators' OAuth endpoints over real HTTP: strict about where parameters go and what
each vendor's shapes are, and as unforgiving as a real server about codes and tokens."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.mailchimp import FakeMailchimp
from tests.fakes.oauth_server import FakeOAuthServer

REDIRECT = "https://mkt.example.com/callback/"


@pytest.fixture
def hubspot():
    with FakeHubSpot() as fake:
        yield fake


def _code(fake, path="/oauth/authorize", **extra) -> str:
    query = {"client_id": fake.oauth.client_id, "redirect_uri": REDIRECT, "state": "s1", **extra}
    answer = requests.get(fake.url + path, params=query, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert back["state"] == ["s1"]
    return back["code"][0]


def _form(fake, **fields) -> dict:
    return {"client_id": fake.oauth.client_id, "client_secret": fake.oauth.client_secret, **fields}


def test_hubspot_token_endpoint_wants_every_parameter_in_the_form_body(hubspot):
    code = _code(hubspot, scope="oauth")

    answer = requests.post(
        hubspot.url + "/oauth/v3/token",
        params=_form(hubspot, grant_type="authorization_code", code=code, redirect_uri=REDIRECT),
        timeout=5,
    )

    assert answer.status_code == 400
    assert any("unexpected query parameter 'client_secret'" in v for v in hubspot.violations)


def test_hubspot_code_exchange_answers_tokens_hub_id_and_scopes_once(hubspot):
    code = _code(hubspot, scope="oauth crm.objects.companies.read")
    form = _form(hubspot, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)

    first = requests.post(hubspot.url + "/oauth/v3/token", data=form, timeout=5)
    again = requests.post(hubspot.url + "/oauth/v3/token", data=form, timeout=5)

    body = first.json()
    assert body["expires_in"] == 1800 and body["hub_id"] == 62515
    assert body["scopes"] == ["oauth", "crm.objects.companies.read"]
    assert again.status_code == 400 and again.json()["status"] == "BAD_AUTH_CODE"
    companies = requests.get(
        hubspot.url + "/crm/v3/properties/companies",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=5,
    )
    assert companies.status_code == 200
    assert hubspot.violations == []


def test_hubspot_pkce_verifier_must_match_its_challenge(hubspot):
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    code = _code(
        hubspot,
        scope="oauth",
        code_challenge=challenge.decode().rstrip("="),
        code_challenge_method="S256",
    )
    form = _form(hubspot, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)

    wrong = requests.post(
        hubspot.url + "/oauth/v3/token", data={**form, "code_verifier": "w" * 43}, timeout=5
    )

    assert wrong.status_code == 400 and wrong.json()["status"] == "BAD_AUTH_CODE"


def test_hubspot_bad_refresh_token_is_bad_refresh_token(hubspot):
    answer = requests.post(
        hubspot.url + "/oauth/v3/token",
        data=_form(hubspot, grant_type="refresh_token", refresh_token="nope"),
        timeout=5,
    )

    assert answer.status_code == 400
    assert answer.json()["status"] == "BAD_REFRESH_TOKEN"


def test_mailchimp_metadata_takes_the_oauth_scheme_and_names_the_api_endpoint():
    with FakeMailchimp() as mailchimp:
        code = _code(mailchimp, path="/oauth2/authorize", response_type="code")
        token = requests.post(
            mailchimp.url + "/oauth2/token",
            data=_form(
                mailchimp, grant_type="authorization_code", code=code, redirect_uri=REDIRECT
            ),
            timeout=5,
        ).json()
        meta = requests.get(
            mailchimp.url + "/oauth2/metadata",
            headers={"Authorization": f"OAuth {token['access_token']}"},
            timeout=5,
        )
        bearer = requests.get(
            mailchimp.url + "/oauth2/metadata",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=5,
        )

        assert token["expires_in"] == 0 and "refresh_token" not in token
        assert meta.json()["api_endpoint"] == mailchimp.url and meta.json()["dc"] == "us14"
        assert bearer.status_code == 200  # answered, but noted:
        assert any("Authorization: OAuth <token>" in v for v in mailchimp.violations)


def test_a_rotating_refresh_token_works_once():
    with FakeOAuthServer(rotate_refresh_tokens=True) as server:
        first = server.store.issue_grant()
        form = {
            "grant_type": "refresh_token",
            "client_id": server.store.client_id,
            "client_secret": server.credential,
            "refresh_token": first["refresh_token"],
        }

        renewed = requests.post(server.url + "/oauth/token", data=form, timeout=5)
        reused = requests.post(server.url + "/oauth/token", data=form, timeout=5)

        assert renewed.json()["refresh_token"] != first["refresh_token"]
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        assert server.violations == []
