"""SFTP destinations get the outbound address guard: no internal host is saved, connected to,
or probed (a refused host answers the same whether a port is open there or not)."""

import socket

import pytest
from django.core.exceptions import ValidationError

from exports.models import ExportDestination, RunStatus
from tests.exports.helpers import SFTP_PASSWORD as PASSWORD

DESTINATIONS = "/admin/exports/exportdestination/"


def _form(server_fingerprint: str, **overrides) -> dict:
    return {
        "name": "Agency SFTP",
        "kind": "sftp",
        "subdirectory": "",
        "retention_days": "30",
        "host": "files.agency.example",
        "port": "22",
        "username": "exporter",
        "remote_dir": "out",
        "host_key_fingerprint": server_fingerprint,
        "url": "",
        "signature_header": "X-Mkt-Signature",
        "password": PASSWORD,
        "private_key": "",
        "hmac_secret": "",
        **overrides,
    }


@pytest.fixture
def resolver(monkeypatch):
    """DNS for names under .example (the one thing not on this machine): name -> addresses.
    Every other name goes to the system resolver."""
    answers: dict[str, list[str]] = {}
    system = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in answers:
            return system(host, port, family, type, proto, flags)
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port),
            )
            for address in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("host", "addresses"),
    [
        ("127.0.0.1", {"127.0.0.1"}),
        ("169.254.169.254", {"169.254.169.254"}),
        ("10.0.0.1", {"10.0.0.1"}),
        ("[::1]", {"::1"}),
        ("localhost", {"127.0.0.1", "::1"}),  # a name resolving to an internal address
    ],
)
def test_sftp_host_on_an_internal_address_is_refused_when_saved(
    client, integration_admin, settings, server, host, addresses
):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []  # 127.0.0.1 and localhost are not allow-listed
    client.force_login(integration_admin)

    response = client.post(
        f"{DESTINATIONS}add/", _form(server.fingerprint_sha256, host=host, port=str(server.port))
    )

    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["host"]
    named = error.split("(", 1)[1].split(")", 1)[0]
    assert error.startswith(f"{host} resolves to an internal address (")
    assert named in addresses and "internal addresses are refused" in error
    assert not ExportDestination.objects.exists()
    assert server.connections == 0  # saving probes nothing


@pytest.mark.django_db
def test_the_save_service_refuses_an_internal_sftp_host_too(make_destination, settings, server):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []

    with pytest.raises(ValidationError) as error:
        make_destination(
            "sftp",
            host="10.0.0.1",
            username="exporter",
            host_key_fingerprint=server.fingerprint_sha256,
            secrets={"password": PASSWORD},
        )

    assert error.value.message_dict["host"] == [
        "10.0.0.1 resolves to an internal address (10.0.0.1); connections to internal "
        "addresses are refused"
    ]


@pytest.fixture
def sftp_to(make_destination):
    def make(*, host, port, fingerprint):
        return make_destination(
            "sftp",
            host=host,
            port=port,
            username="exporter",
            remote_dir="out",
            host_key_fingerprint=fingerprint,
            secrets={"password": PASSWORD},
        )

    return make


@pytest.mark.django_db
def test_a_refused_sftp_host_says_the_same_for_an_open_and_a_closed_port(
    server, sftp_to, make_schedule, run_schedule, companies, settings
):
    port = server.port
    # Saved while 127.0.0.1 was allow-listed; then the allow-list was emptied.
    destination = sftp_to(host="127.0.0.1", port=port, fingerprint=server.fingerprint_sha256)
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []

    port_open = run_schedule(make_schedule(destination=destination))
    server.stop()
    port_closed = run_schedule(make_schedule(destination=destination))

    expected = (
        "sftp: 127.0.0.1 resolves to an internal address (127.0.0.1); connections to internal "
        f"addresses are refused; nothing was sent to 127.0.0.1:{port}"
    )
    assert (port_open.status, port_open.error) == (RunStatus.FAILED, expected)
    assert (port_closed.status, port_closed.error) == (RunStatus.FAILED, expected)
    assert port_open.attempt == port_closed.attempt == 1  # a refusal is not retried
    assert server.connections == 0 and server.files() == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "rebound", [["127.0.0.1"], ["127.0.0.1", "93.184.216.34"]], ids=["inside", "partly inside"]
)
def test_a_name_rebound_to_an_internal_address_after_saving_is_not_connected_to(
    server, sftp_to, make_schedule, run_schedule, companies, resolver, rebound
):
    resolver["files.agency.example"] = ["93.184.216.34"]  # public when saved
    destination = sftp_to(
        host="files.agency.example", port=server.port, fingerprint=server.fingerprint_sha256
    )
    resolver["files.agency.example"] = rebound  # then pointed at the test server's address

    run = run_schedule(make_schedule(destination=destination))

    assert run.status == RunStatus.FAILED
    assert run.error.startswith(
        "sftp: files.agency.example resolves to an internal address (127.0.0.1)"
    )
    assert server.connections == 0 and server.files() == {}
