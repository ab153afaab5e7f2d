"""FakeReceiver and the TLS helpers: real HTTPS requests against 127.0.0.1."""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from tests.fakes.receiver import FakeReceiver, hmac_signature, verify_hmac
from tests.fakes.tls import create_tls_files

BODY = b'{"id": 1, "email": "a@example.com"}\n'


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[FakeReceiver]:
    with FakeReceiver(tls_dir=tmp_path / "tls") as receiver:
        yield receiver


def post(receiver: FakeReceiver, path: str = "/hook", **kwargs) -> requests.Response:
    kwargs.setdefault("verify", receiver.ca_path)
    timeout = kwargs.pop("timeout", 5)
    return requests.post(receiver.url + path, timeout=timeout, **kwargs)


# -- TLS material ----------------------------------------------------------------------


def test_create_tls_files(tmp_path):
    files = create_tls_files(tmp_path / "tls")
    assert [p.name for p in files] == ["ca.pem", "server.pem", "server.key"]
    ca = x509.load_pem_x509_certificate(files.ca_path.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    assert cert.issuer == ca.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert files.key_path.stat().st_mode & 0o077 == 0
    ssl.create_default_context().load_cert_chain(files.cert_path, files.key_path)


# -- HTTPS -----------------------------------------------------------------------------


def test_https_post_verified_with_the_ca_is_recorded(receiver):
    assert receiver.url.startswith("https://127.0.0.1:")
    response = post(
        receiver,
        "/hooks/export?run=7&tag=a&tag=b",
        data=BODY,
        headers={"Content-Type": "application/x-ndjson", "X-Run": "7"},
    )
    assert response.status_code == 200
    assert response.json() == {"status": 200, "received_bytes": len(BODY)}

    [request] = receiver.received
    assert request.method == "POST"
    assert request.path == "/hooks/export"
    assert request.query == {"run": ["7"], "tag": ["a", "b"]}
    assert request.body == BODY
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.header("X-RUN") == "7"
    assert request.header("X-Missing") is None
    assert request.status == 200
    assert abs(request.time - time.time()) < 5
    assert request.json() == {"id": 1, "email": "a@example.com"}


def test_https_without_the_ca_fails_verification(receiver):
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(receiver.url + "/hook", data=BODY, timeout=5)
    assert receiver.received == []
    # The aborted handshake does not disturb the server.
    assert post(receiver, data=BODY).status_code == 200


def test_certificate_is_valid_for_localhost_too(receiver):
    context = ssl.create_default_context(cafile=receiver.ca_path)
    request = urllib.request.Request(
        f"https://localhost:{receiver.port}/x", data=BODY, method="PUT"
    )
    with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310 - fixed https URL to the local test server
        assert response.status == 200
    assert receiver.received[0].method == "PUT"


def test_plain_http_without_tls_dir():
    with FakeReceiver() as receiver:
        assert receiver.url.startswith("http://127.0.0.1:")
        assert receiver.ca_path is None
        assert requests.get(receiver.url + "/ping", timeout=5).status_code == 200
        assert receiver.received[0].method == "GET"


def test_chunked_body_is_reassembled(receiver):
    response = post(receiver, data=(part for part in [b"a,b\n", b"1,2\n", b"3,4\n"]))
    assert response.status_code == 200
    request = receiver.received[0]
    assert request.header("Transfer-Encoding") == "chunked"
    assert request.body == b"a,b\n1,2\n3,4\n"


# -- scripting -------------------------------------------------------------------------


def test_status_queue_then_default(receiver):
    receiver.respond_with(503, 503)
    receiver.respond_with(429)
    statuses = [post(receiver, data=BODY).status_code for _ in range(5)]
    assert statuses == [503, 503, 429, 200, 200]
    assert [r.status for r in receiver.received] == statuses


def test_default_status(tmp_path):
    with FakeReceiver(tls_dir=tmp_path, default_status=202) as receiver:
        assert post(receiver, data=BODY).status_code == 202


def test_delay_next_makes_a_client_time_out(receiver):
    receiver.delay_next(3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(receiver, data=BODY, timeout=0.3)
    assert len(receiver.received) == 1  # recorded before the delay
    started = time.monotonic()
    assert post(receiver, data=BODY).status_code == 200
    assert time.monotonic() - started < 2  # the delay applied to one request only


def test_reset_and_wait_for_requests(receiver):
    receiver.respond_with(500)
    post(receiver, data=BODY)
    receiver.reset()
    assert receiver.received == []
    later = threading.Timer(0.1, lambda: post(receiver, data=b"later"))
    later.start()
    [request] = receiver.wait_for_requests(1, timeout=5)
    later.join(5)
    assert request.body == b"later" and request.status == 200
    with pytest.raises(TimeoutError):
        receiver.wait_for_requests(2, timeout=0.1)


# -- HMAC ------------------------------------------------------------------------------


def test_verify_hmac(receiver):
    secret = "whsec-test"
    post(receiver, data=BODY, headers={"X-Mkt-Signature": hmac_signature(BODY, secret)})
    post(receiver, data=BODY, headers={"X-Mkt-Signature": hmac_signature(BODY, "other")})
    post(receiver, data=BODY)
    post(receiver, data=BODY, headers={"X-Mkt-Signature": hmac_signature(BODY, secret)[7:]})
    post(receiver, data=BODY + b"x", headers={"X-Mkt-Signature": hmac_signature(BODY, secret)})
    post(receiver, data=BODY, headers={"X-Sig": hmac_signature(BODY, secret.encode())})

    good, wrong_secret, missing, no_prefix, tampered, other_header = receiver.received
    assert verify_hmac(good, secret)
    assert receiver.verify_hmac(good, secret.encode())
    assert good.header("X-Mkt-Signature").startswith("sha256=")
    assert not verify_hmac(wrong_secret, secret)
    assert not verify_hmac(missing, secret)
    assert not verify_hmac(no_prefix, secret)
    assert not verify_hmac(tampered, secret)
    assert not verify_hmac(other_header, secret)
    assert verify_hmac(other_header, secret, header="X-Sig")


def test_hmac_signature_matches_a_known_vector():
    # RFC 4231 test case 2.
    body = b"what do ya want for nothing?"
    assert hmac_signature(body, "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


# -- shutdown --------------------------------------------------------------------------


def test_stop_is_prompt_and_leaves_no_threads(tmp_path):
    baseline = set(threading.enumerate())
    receiver = FakeReceiver(tls_dir=tmp_path).start()
    post(receiver, data=BODY)
    receiver.delay_next(30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        post(receiver, data=BODY, timeout=0.3)
    started = time.monotonic()
    receiver.stop()
    assert time.monotonic() - started < 5  # stop() cuts the 30 s delay short
    leftover = {t for t in threading.enumerate() if t not in baseline and t.is_alive()}
    assert leftover == set()
    with pytest.raises(RuntimeError):
        _ = receiver.port
