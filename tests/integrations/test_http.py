"""The outbound HTTP client: SSRF guard, redirects, timeouts, outbound log."""

import socket
from datetime import UTC, datetime, timedelta

import pytest

from audit.models import OutboundLog
from mktintegration.errors import ConnectorError, ErrorKind
from mktintegration.http import HttpClient, check_url, redact_path
from tests.fakes.receiver import FakeReceiver


@pytest.fixture
def receiver():
    with FakeReceiver() as server:
        yield server


@pytest.mark.django_db
def test_request_to_an_allow_listed_loopback_host_is_sent_and_logged(receiver):
    client = HttpClient(vendor="test", connection_id=7)

    response = client.request(
        "POST",
        f"{receiver.url}/hook/person@example.com?token=secret",
        json={"a": 1},
        records=3,
        idempotency_key="k1",
    )

    assert response.status_code == 200
    log = OutboundLog.objects.get()
    assert (log.vendor, log.connection_id, log.status, log.records) == ("test", 7, 200, 3)
    assert log.path == "/hook/{redacted}"  # no e-mail, no query string
    assert log.idempotency_key == "k1"


@pytest.mark.django_db
def test_internal_address_is_refused_on_connect_unless_allow_listed(receiver, settings):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []
    client = HttpClient(vendor="test")

    with pytest.raises(ConnectorError) as error:
        client.request("GET", f"{receiver.url}/")

    assert error.value.kind == ErrorKind.CONFIG
    assert "internal address" in str(error.value)
    assert receiver.received == []
    assert OutboundLog.objects.get().status is None


def _pending_connections(listener: socket.socket) -> int:
    """How many connections wait on a listening socket that never accepts by itself."""
    listener.setblocking(False)
    count = 0
    while True:
        try:
            listener.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


@pytest.mark.django_db
def test_a_refused_host_is_not_connected_to_so_open_and_closed_ports_look_alike(settings):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []
    client = HttpClient(vendor="test")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    with pytest.raises(ConnectorError) as port_open:
        client.request("GET", f"http://127.0.0.1:{port}/")
    assert _pending_connections(listener) == 0  # no TCP connection was made
    listener.close()
    with pytest.raises(ConnectorError) as port_closed:
        client.request("GET", f"http://127.0.0.1:{port}/")

    for error in (port_open.value, port_closed.value):
        assert (error.kind, error.message) == (
            ErrorKind.CONFIG,
            "127.0.0.1 resolves to an internal address (127.0.0.1); connections to internal "
            "addresses are refused",
        )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/",
        "https://localhost./",
    ],
)
def test_check_url_refuses_internal_destinations(settings, url):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []

    with pytest.raises(ConnectorError) as error:
        check_url(url)
    assert error.value.kind == ErrorKind.CONFIG


def test_check_url_refuses_plain_http_and_credentials_in_urls(settings):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []
    with pytest.raises(ConnectorError, match="https"):
        check_url("http://example.com/")
    with pytest.raises(ConnectorError, match="secret fields"):
        check_url("https://user:pw@example.com/")


def test_check_url_enforces_a_host_allow_list(settings):
    settings.MKT_HTTP_ALLOW_PRIVATE_HOSTS = []
    with pytest.raises(ConnectorError, match="not allowed"):
        check_url("https://evil.example/", allowed_hosts=("*.api.mailchimp.com",))


@pytest.mark.django_db
def test_redirect_to_another_host_is_refused(receiver):
    with FakeReceiver() as other:
        receiver.respond_with(302)
        receiver.redirect_location = f"{other.url}/stolen"  # see FakeReceiver
        client = HttpClient(vendor="test")
        with pytest.raises(ConnectorError, match="redirect to another host"):
            client.request("GET", f"{receiver.url}/start")
        assert other.received == []


@pytest.mark.django_db
def test_timeout_is_a_transient_error(receiver):
    receiver.delay_next(2)
    client = HttpClient(vendor="test", timeout=(1, 0.3))

    with pytest.raises(ConnectorError) as error:
        client.request("GET", f"{receiver.url}/slow")
    assert error.value.kind == ErrorKind.TRANSIENT


def test_redact_path_hides_emails():
    assert redact_path("/lists/x/members/a.b@c.com/notes") == "/lists/x/members/{redacted}/notes"


class RecordingThrottle:
    def __init__(self):
        self.blocked = []

    def acquire(self):
        pass

    def block(self, seconds):
        self.blocked.append(seconds)


@pytest.mark.django_db
def test_hubspot_spent_window_header_holds_the_budget(hubspot_connection, hubspot):
    from integrations.connectors.base import OutRecord
    from integrations.connectors.hubspot import HubSpot

    hubspot.set_rate_limit(2, 10)
    throttle = RecordingThrottle()
    connector = HubSpot(
        connection=hubspot_connection,
        secrets={"token": hubspot.credential},
        http=HttpClient(vendor="hubspot", throttle=throttle),
    )
    for n in range(2):
        connector.upsert(
            "companies",
            [OutRecord(str(n), f"X-{n}", {"name": "a"})],
            mode="upsert",
            match_field="external_id",
            destination_config={},
            idempotency_key="",
        )

    assert throttle.blocked == [pytest.approx(10 / 2)]  # after the second, the window is spent


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("999999999", 86_400.0),  # bounded to a day
        ("soon", None),
        ("nan", None),
        ("", None),
    ],
)
def test_retry_after_is_read_one_way_everywhere(header, seconds):
    from requests import Response

    from mktintegration.http import retry_after_seconds

    response = Response()
    if header:
        response.headers["Retry-After"] = header

    assert retry_after_seconds(response) == seconds


def test_retry_after_may_be_an_http_date():
    from email.utils import format_datetime

    from requests import Response

    from mktintegration.http import retry_after_seconds

    response = Response()
    when = datetime.now(UTC) + timedelta(seconds=120)
    response.headers["Retry-After"] = format_datetime(when, usegmt=True)

    assert 100 <= retry_after_seconds(response) <= 120
