"""Known secret values never appear anywhere they could be read back: admin pages (lists,
change pages, history, the change history and its CSV), API responses, log records (DEBUG),
auditlog entries, the access and outbound logs, or any text column of the database."""

from __future__ import annotations

import json
import logging

import pytest
from auditlog.models import LogEntry
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.apps import apps
from django.db import connection as db_connection
from django.test import Client

from audit.models import AccessLog, OutboundLog
from exports.models import ExportDestination
from integrations.models import Connection
from mktintegration import roles
from mktintegration.models import ApiToken
from tests.factories import UserFactory
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.sftp import fingerprint_sha256, generate_ed25519_key

HUBSPOT_TOKEN = "pat-na1-LEAKCHECK-hubspot-0001"
ROTATED_TOKEN = "pat-na1-LEAKCHECK-rotated-0004"
WRONG_TOKEN = "pat-na1-LEAKCHECK-wrong-0005"
CONFIGURE_TOKEN = "pat-na1-LEAKCHECK-configure-0006"
SFTP_PASSWORD = "sftp-LEAKCHECK-password-0002"
HMAC_SECRET = "hmac-LEAKCHECK-secret-0003"
OAUTH_CLIENT_SECRET = "hs-LEAKCHECK-oauth-app-secret-0007"


def _private_key() -> tuple[str, str]:
    """An OpenSSH private key, and a distinctive piece of its body to look for."""
    text = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        .decode()
    )
    body = text.splitlines()[2]
    return text, body[10:50]


class LeakCheck:
    def __init__(self):
        self.secrets: dict[str, str] = {}
        self.checked: list[str] = []

    def add(self, name: str, value: str) -> None:
        assert len(value) >= 12, name
        self.secrets[name] = value

    def check(self, where: str, text: str) -> None:
        self.checked.append(where)
        for name, value in self.secrets.items():
            assert value not in text, f"{name} leaked in {where}"


def _oauth_tokens_issued(ida, hubspot, settings) -> None:
    """An OAuth connection connected through the admin (tokens, the app's secret in the token
    and introspection requests), its token renewed, then disconnected (revoked) and connected
    again; and a configure document seeding another refresh token."""

    from django.utils import timezone

    from integrations.models import OAuthGrant
    from tests.integrations.oauth.conftest import connect

    settings.MKT_OAUTH_CLIENTS = {
        "hubspot": {"client_id": hubspot.oauth.client_id, "client_secret": OAUTH_CLIENT_SECRET}
    }
    settings.MKT_BASE_URL = "http://testserver"
    added = ida.post(
        "/admin/integrations/connection/add/",
        {
            "name": "HubSpot by OAuth",
            "vendor": "hubspot",
            "auth_kind": "oauth2",
            "config": "{}",
            "base_url": hubspot.url,
            "allowed_regions": "[]",
        },
    )
    assert added.status_code == 302, _text(added)[:3000]
    connection = Connection.objects.get(name="HubSpot by OAuth")
    assert connect(ida, connection).status_code == 200
    OAuthGrant.objects.filter(pk=connection.pk).update(token_expires_at=timezone.now())
    test_action = {"action": "test_connections", "_selected_action": [connection.pk]}
    ida.post("/admin/integrations/connection/", test_action, follow=True)  # renews the token
    ida.post(f"/admin/integrations/connection/{connection.pk}/disconnect/")
    assert connect(ida, connection).status_code == 200
    seeded = hubspot.oauth.store.issue_grant(["oauth"])
    configure = ida.post(
        "/marketing/integrations/configure",
        json.dumps(
            {
                "connection": {
                    "name": "HubSpot by configure",
                    "vendor": "hubspot",
                    "auth_kind": "oauth2",
                    "base_url": hubspot.url,
                    "credentials": {"refresh_token": seeded["refresh_token"]},
                },
            }
        ),
        content_type="application/json",
    )
    assert configure.status_code == 200, _text(configure)[:2000]
    assert len(hubspot.oauth.store.access) >= 4


def _tokens_of(hubspot) -> list[tuple[str, str]]:
    store = hubspot.oauth.store
    return [(f"oauth access token {i}", t) for i, t in enumerate(store.access)] + [
        (f"oauth refresh token {i}", t) for i, t in enumerate(store.refresh)
    ]


def _text(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def _database_text() -> str:
    """Every column of every table of ours and of the libraries', as text."""
    chunks = []
    tables = set(db_connection.introspection.table_names())
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed or model._meta.db_table not in tables:
            continue
        for row in model._base_manager.values_list():
            chunks.append(" ".join(str(value) for value in row))
    return "\n".join(chunks)


@pytest.mark.django_db
def test_no_secret_appears_anywhere(settings, tmp_path, caplog):
    settings.MKT_EXPORT_DIR = tmp_path / "exports"
    caplog.set_level(logging.DEBUG)
    private_key, private_key_piece = _private_key()
    leaks = LeakCheck()
    for name, value in {
        "hubspot token": HUBSPOT_TOKEN,
        "rotated token": ROTATED_TOKEN,
        "wrong token": WRONG_TOKEN,
        "configure token": CONFIGURE_TOKEN,
        "sftp password": SFTP_PASSWORD,
        "hmac secret": HMAC_SECRET,
        "oauth app's client secret": OAUTH_CLIENT_SECRET,
        "private key": private_key_piece,
    }.items():
        leaks.add(name, value)

    ida = Client()
    ida.force_login(UserFactory(username="ida", role=roles.INTEGRATION_ADMIN))
    auditor = Client()
    auditor.force_login(UserFactory(username="audrey", role=roles.AUDITOR))
    service = UserFactory(username="bi-tool", role=roles.API_CLIENT, is_service_account=True)

    with FakeHubSpot(token=HUBSPOT_TOKEN, client_secret=OAUTH_CLIENT_SECRET) as hubspot:
        settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = ["127.0.0.1"]
        connection_form = {
            "name": "HubSpot prod",
            "vendor": "hubspot",
            "auth_kind": "private_app_token",
            "config": "{}",
            "base_url": hubspot.url,
            "allowed_regions": "[]",
            "rate_limit_requests": "",
            "rate_limit_seconds": "",
        }
        added = ida.post(
            "/admin/integrations/connection/add/", {**connection_form, "token": HUBSPOT_TOKEN}
        )
        assert added.status_code == 302, _text(added)[:3000]
        connection = Connection.objects.get()
        conn_url = f"/admin/integrations/connection/{connection.pk}/"
        test_action = {"action": "test_connections", "_selected_action": [connection.pk]}
        leaks.check(
            "test connection (ok)",
            _text(ida.post("/admin/integrations/connection/", test_action, follow=True)),
        )
        ida.post(f"{conn_url}change/", {**connection_form, "name": "HubSpot EU", "token": ""})
        ida.post(f"{conn_url}change/", {**connection_form, "token": WRONG_TOKEN})
        leaks.check(
            "test connection (401)",
            _text(ida.post("/admin/integrations/connection/", test_action, follow=True)),
        )
        ida.post(f"{conn_url}change/", {**connection_form, "token": ROTATED_TOKEN})
        assert Connection.objects.get().get_credentials() == {"token": ROTATED_TOKEN}

        configure = ida.post(
            "/marketing/integrations/configure",
            json.dumps(
                {
                    "dry_run": True,
                    "connection": {
                        "name": "HubSpot prod",
                        "vendor": "hubspot",
                        "auth_kind": "private_app_token",
                        "base_url": hubspot.url,
                        "credentials": {"token": CONFIGURE_TOKEN},
                    },
                }
            ),
            content_type="application/json",
        )
        leaks.check("configure API", _text(configure))
        assert configure.status_code == 200, _text(configure)[:2000]
        _oauth_tokens_issued(ida, hubspot, settings)
        for name, token in _tokens_of(hubspot):
            leaks.add(name, token)

    sftp = ida.post(
        "/admin/exports/exportdestination/add/",
        {
            "name": "Agency SFTP",
            "kind": "sftp",
            "retention_days": "30",
            "host": "sftp.agency.example",
            "port": "22",
            "username": "exporter",
            "remote_dir": "in",
            "host_key_fingerprint": fingerprint_sha256(generate_ed25519_key()),
            "signature_header": "X-Mkt-Signature",
            "password": SFTP_PASSWORD,
            "private_key": private_key,
        },
    )
    assert sftp.status_code == 302, _text(sftp)[:3000]
    https = ida.post(
        "/admin/exports/exportdestination/add/",
        {
            "name": "Agency HTTPS",
            "kind": "https",
            "retention_days": "30",
            "port": "22",
            "url": "https://127.0.0.1:9/in",
            "signature_header": "X-Mkt-Signature",
            "hmac_secret": HMAC_SECRET,
        },
    )
    assert https.status_code == 302, _text(https)[:3000]

    created = ida.post(
        "/admin/mktintegration/apitoken/add/",
        {"user": service.pk, "name": "BI", "scopes": ["export:clients"], "expires_days": "30"},
    )
    assert created.status_code == 302
    shown_once = ida.get("/admin/mktintegration/apitoken/")  # the one page that shows it
    token = ApiToken.objects.get()
    raw = next(
        word.rstrip(".,")
        for word in _text(shown_once).split()
        if word.startswith(f"mkt_{token.public_id}_")
    )
    leaks.add("api token", raw)
    leaks.add("api token secret", raw.split("_", 2)[2])

    # --- read everything back ------------------------------------------------------------------
    for path in ("/marketing/export/clients", "/marketing/export/clients?format=csv"):
        leaks.check(path, _text(Client().get(path, HTTP_AUTHORIZATION=f"Bearer {raw}")))
    leaks.check("status API", _text(ida.get("/marketing/integrations/status")))
    leaks.check("schema", _text(ida.get("/api/schema/")))

    pages = [
        "/admin/integrations/connection/",
        f"{conn_url}change/",
        f"{conn_url}history/",
        "/admin/exports/exportdestination/",
        "/admin/mktintegration/apitoken/",
        f"/admin/mktintegration/apitoken/{token.pk}/change/",
        f"/admin/mktintegration/apitoken/{token.pk}/history/",
    ]
    for destination in ExportDestination.objects.all():
        pages += [
            f"/admin/exports/exportdestination/{destination.pk}/change/",
            f"/admin/exports/exportdestination/{destination.pk}/history/",
        ]
    for path in pages:
        for who, client in (("ida", ida), ("auditor", auditor)):
            response = client.get(path)
            leaks.check(f"{path} as {who}", _text(response))
    for path in (
        "/admin/auditlog/logentry/",
        "/admin/auditlog/logentry/download/",
        "/admin/audit/accesslog/",
        "/admin/audit/accesslog/download/",
        "/admin/audit/outboundlog/",
        "/admin/audit/outboundlog/download/",
    ):
        response = auditor.get(path)
        assert response.status_code == 200, path
        leaks.check(path, _text(response))
    for entry in LogEntry.objects.all():
        leaks.check(
            f"change history entry {entry.pk}",
            _text(auditor.get(f"/admin/auditlog/logentry/{entry.pk}/change/")),
        )
        leaks.check(
            f"LogEntry {entry.pk}",
            f"{entry.changes} {entry.changes_text} {entry.object_repr} {entry.serialized_data}"
            f" {entry.additional_data}",
        )

    assert LogEntry.objects.filter(content_type__model="connection").count() >= 4
    assert OutboundLog.objects.filter(vendor="hubspot").exists()
    assert AccessLog.objects.filter(token_id=f"mkt_{token.public_id}").count() == 2
    for row in [*AccessLog.objects.all(), *OutboundLog.objects.all()]:
        leaks.check(f"{type(row).__name__} {row.pk}", row.canonical())
    for record in caplog.records:
        leaks.check(
            f"log record {record.name}",
            f"{record.getMessage()} {record.args} {record.exc_text or ''} {record.__dict__}",
        )
    leaks.check("the database", _database_text())
    assert len(leaks.checked) > 50
