"""Mutual TLS for the internal APIs (docs/mtls.md): real TLS on loopback, gunicorn with
``mktintegration.gunicorn_mtls`` and certificates made here. A registered certificate acts as
its service account with its scopes; anything else is refused, at the handshake or by a 401."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
import requests
from django.core.management import CommandError, call_command

from exports.backbone.changes import ChangeEvent
from mktintegration import roles
from mktintegration.models import ServiceCertificate
from mktintegration.mtls import pem_identity
from mktintegration.service_certs import service_certificate_revoke
from tests.factories import UserFactory
from tests.fakes.tls import create_client_certificate, create_tls_files
from tests.worker import ROOT, WorkerProcess

EVENTS = "/marketing/events"
STATUS = "/marketing/integrations/status"
BODY = {"events": [{"subject": "company", "id": 5}]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Our CA (server and clients), and a foreign CA whose clients we do not trust."""
    ours = create_tls_files(tmp_path_factory.mktemp("tls"))
    foreign = create_tls_files(tmp_path_factory.mktemp("foreign"))
    return ours, foreign


@pytest.fixture(scope="module")
def server(pki, django_db_setup, django_db_blocker, tmp_path_factory):
    """gunicorn over mutual TLS on the test database, as docs/mtls.md runs it."""
    ours, _ = pki
    port = _free_port()
    env = WorkerProcess().env()
    env.update(
        MKT_TLS_CERT_FILE=str(ours.cert_path),
        MKT_TLS_KEY_FILE=str(ours.key_path),
        MKT_TLS_CLIENT_CA_FILE=str(ours.ca_path),
        MKT_TLS_BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="1",
    )
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:mktintegration.gunicorn_mtls",
                "mktintegration.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + log.read_text()) from None
                time.sleep(0.2)
        yield f"https://localhost:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def service(pki, transactional_db):
    """A service account in the API client role, and a certificate for it from our CA."""

    def make(name: str, scopes: str, **options):
        ours, _ = pki
        user = UserFactory(role=roles.API_CLIENT, username=name, is_service_account=True)
        cert, key = create_client_certificate(ours, name)
        call_command(
            "register_service_certificate",
            username=user.username,
            cert=cert,
            scopes=scopes,
            **options,
        )
        return user, (str(cert), str(key))

    return make


def _call(server, pki, method, path, cert=None, **kwargs):
    ours, _ = pki
    return requests.request(
        method, server + path, cert=cert, verify=str(ours.ca_path), timeout=10, **kwargs
    )


def test_a_registered_certificate_acts_as_its_service_with_its_scopes(server, pki, service):
    user, cert = service("segments-service", "events:write")

    response = _call(server, pki, "POST", EVENTS, cert, json=BODY)

    assert response.status_code == 202, response.text
    assert list(ChangeEvent.objects.values_list("subject", "subject_id", "source")) == [
        ("company", 5, "api")
    ]
    registration = ServiceCertificate.objects.get(user=user)
    assert registration.subject == "CN=segments-service,O=mktintegration tests"
    assert registration.last_used_at is not None
    assert registration.last_used_address == "127.0.0.1"


def test_a_certificate_may_only_do_what_its_scopes_allow(server, pki, service):
    _, cert = service("status-reader", "integrations:read")

    assert _call(server, pki, "GET", STATUS, cert).status_code == 200
    refused = _call(
        server,
        pki,
        "POST",
        EVENTS,
        cert,
        json=BODY,
        # A header cannot pose as another certificate: only the handshake's counts.
        headers={"Mkt.Tls-Client-Subject": "CN=segments-service,O=mktintegration tests"},
    )
    assert refused.status_code == 403
    assert "client certificate lacks the scope 'events:write'" in refused.text
    assert not ChangeEvent.objects.exists()


def test_an_unregistered_revoked_or_other_pinned_certificate_is_a_401(server, pki, service):
    ours, _ = pki
    stranger = create_client_certificate(ours, "stranger")
    unknown = _call(server, pki, "POST", EVENTS, tuple(map(str, stranger)), json=BODY)
    assert unknown.status_code == 401
    assert "is not registered for any service" in unknown.text

    user, cert = service("events-service", "events:write")
    service_certificate_revoke(certificate=ServiceCertificate.objects.get(user=user))
    revoked = _call(server, pki, "POST", EVENTS, cert, json=BODY)
    assert revoked.status_code == 401 and "revoked" in revoked.text

    # Pinned to one certificate: another one with the same subject (a stolen CA key, a
    # re-issue nobody asked for) is refused.
    _, pinned = service("pinned-service", "events:write", pin=True)
    create_client_certificate(ours, "pinned-service")  # same subject, new key
    assert _call(server, pki, "POST", EVENTS, pinned, json=BODY).status_code == 401
    assert not ChangeEvent.objects.exists()


def test_no_certificate_or_one_of_a_foreign_ca_fails_the_handshake(server, pki, service):
    _, foreign = pki
    outsider = create_client_certificate(foreign, "outsider")

    with pytest.raises(requests.exceptions.ConnectionError):
        _call(server, pki, "POST", EVENTS, json=BODY)
    with pytest.raises(requests.exceptions.ConnectionError):
        _call(server, pki, "POST", EVENTS, tuple(map(str, outsider)), json=BODY)


@pytest.mark.django_db
def test_registering_refuses_bad_input_with_the_reason(pki, tmp_path):
    ours, _ = pki
    user = UserFactory(role=roles.API_CLIENT, username="svc", is_service_account=True)
    cert, _ = create_client_certificate(ours, "svc")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")

    cases = [
        ({"cert": not_pem, "scopes": "events:write"}, "not a readable PEM certificate"),
        ({"cert": cert, "scopes": "events:rule"}, "unknown scope(s): events:rule"),
        ({"subject": "just a name", "scopes": "events:write"}, "is not a distinguished name"),
        ({"subject": "CN=" + "x" * 600, "scopes": "events:write"}, "1 to 500 characters"),
        ({"subject": "CN=a", "fingerprint": "abc", "scopes": "events:write"}, "64 hex digits"),
        ({"subject": "CN=a", "pin": True, "scopes": "events:write"}, "--pin needs --cert"),
    ]
    for options, says in cases:
        with pytest.raises(CommandError, match=says.replace("(", r"\(").replace(")", r"\)")):
            call_command("register_service_certificate", username=user.username, **options)
    assert not ServiceCertificate.objects.exists()

    call_command("register_service_certificate", username="svc", cert=cert, scopes="events:write")
    with pytest.raises(CommandError, match="registered already"):
        call_command(
            "register_service_certificate", username="svc", cert=cert, scopes="events:write"
        )
    assert ServiceCertificate.objects.get().subject == pem_identity(cert.read_bytes())[0]


@pytest.mark.django_db
def test_create_user_makes_a_service_account_only_when_the_registration_is_made(pki):
    from django.contrib.auth import get_user_model

    ours, _ = pki
    cert, _ = create_client_certificate(ours, "new-service")
    User = get_user_model()

    with pytest.raises(CommandError, match="unknown scope"):
        call_command(
            "register_service_certificate",
            username="new-service",
            create_user=True,
            cert=cert,
            scopes="nope",
        )
    assert not User.objects.filter(username="new-service").exists()

    call_command(
        "register_service_certificate",
        username="new-service",
        create_user=True,
        cert=cert,
        scopes="events:write",
    )
    user = User.objects.get(username="new-service")
    assert user.is_service_account and not user.has_usable_password()
    assert list(user.groups.values_list("name", flat=True)) == [roles.API_CLIENT]
    assert user.has_perm("integrations.announce_changes")
