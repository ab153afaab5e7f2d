"""A real HTTP(S) endpoint on 127.0.0.1 that records what export deliveries send it.

Usage::

    with FakeReceiver(tls_dir=tmp_path / "tls") as receiver:
        receiver.respond_with(503, 503)          # then the default, 200
        requests.post(receiver.url + "/hook", data=b"...", verify=receiver.ca_path)
        request = receiver.received[0]
        assert verify_hmac(request, "secret")

The server is a :class:`http.server.ThreadingHTTPServer` running in a background thread of
the test process; each connection is handled in its own thread, and the TLS handshake
happens in that thread too, so a client that aborts the handshake (for instance because it
does not trust the test CA) cannot stall the server. Responses are HTTP/1.0, so every
connection is closed after one request and :meth:`FakeReceiver.stop` never waits on an idle
keep-alive connection.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.tls import create_tls_files

__all__ = ["FakeReceiver", "ReceivedRequest", "hmac_signature", "verify_hmac"]

HOST = "127.0.0.1"
SIGNATURE_HEADER = "X-Mkt-Signature"
# A client that connects and then says nothing must not keep a handler thread alive forever.
_SOCKET_TIMEOUT = 10.0
_JOIN_TIMEOUT = 10.0


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it.

    ``headers`` is the parsed :class:`email.message.Message` of the request: look-ups are
    case-insensitive (``request.headers["content-type"]``) and repeated headers are kept
    (``request.headers.get_all("X-Foo")``). ``query`` maps each query parameter to all of
    its values. ``time`` is ``time.time()`` when the request body had been read.
    ``status`` is the status code the receiver answered (or tried to answer) with.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    time: float
    status: int

    def header(self, name: str, default: str | None = None) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``default``."""
        return self.headers.get(name, default)

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def hmac_signature(body: bytes, secret: str | bytes) -> str:
    """The signature header value for ``body``: ``"sha256=" + hex HMAC-SHA256``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_hmac(
    request: ReceivedRequest, secret: str | bytes, header: str = SIGNATURE_HEADER
) -> bool:
    """Whether ``request`` carries a valid ``sha256=<hex HMAC-SHA256 of the body>`` header.

    The comparison is constant-time. A missing header, another scheme than ``sha256=``
    or a malformed value all count as invalid.
    """
    value = request.headers.get(header)
    if value is None:
        return False
    expected = hmac_signature(request.body, secret).encode("ascii")
    provided = value.strip().lower().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(expected, provided)


class _Handler(BaseHTTPRequestHandler):
    """Records the request on the owning :class:`FakeReceiver` and answers it."""

    server: _ReceiverHTTPServer
    protocol_version = "HTTP/1.0"

    def _handle(self) -> None:
        body = self._read_body()
        receiver = self.server.receiver
        status, delay = receiver._next_response()
        split = urlsplit(self.path)
        receiver._record(
            ReceivedRequest(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers=self.headers,
                body=body,
                time=time.time(),
                status=status,
            )
        )
        if delay:
            receiver._stopping.wait(delay)
        payload = json.dumps({"status": status, "received_bytes": len(body)}).encode()
        self.send_response(status)
        if 300 <= status < 400 and receiver.redirect_location:
            self.send_header("Location", receiver.redirect_location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self.rfile.readline(65537)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Skip trailers up to the blank line that ends the message.
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(65537)  # the CRLF after each chunk

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests inspect ``FakeReceiver.received`` instead of a log."""


class _ReceiverHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does TLS per connection and joins its threads on close."""

    daemon_threads = False  # so server_close() joins every handler thread
    block_on_close = True

    def __init__(self, receiver: FakeReceiver, ssl_context: ssl.SSLContext | None) -> None:
        self.receiver = receiver
        self.ssl_context = ssl_context
        super().__init__((HOST, 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        sock.settimeout(_SOCKET_TIMEOUT)
        if self.ssl_context is not None:
            # The handshake is done later, in the connection's own thread.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except OSError:  # ssl.SSLError included: the client gave up or distrusts us
                return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away (timeouts, aborted connections); report the rest."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError | ssl.SSLError):
            return
        super().handle_error(request, client_address)


class FakeReceiver:
    """An HTTP(S) server on 127.0.0.1 that records requests and answers with chosen statuses.

    With ``tls_dir`` the server speaks HTTPS with a certificate from a throw-away CA written
    into that directory (see :mod:`tests.fakes.tls`); clients verify with :attr:`ca_path`.
    Without it the server speaks plain HTTP and :attr:`ca_path` is ``None``.
    """

    verify_hmac = staticmethod(verify_hmac)
    hmac_signature = staticmethod(hmac_signature)

    def __init__(self, tls_dir: Path | None = None, *, default_status: int = 200) -> None:
        self.default_status = default_status
        # Sent as the Location header of 3xx answers (redirect tests).
        self.redirect_location: str | None = None
        self._tls_dir = Path(tls_dir) if tls_dir is not None else None
        self._ca_path: str | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._statuses: collections.deque[int] = collections.deque()
        self._delays: collections.deque[float] = collections.deque()
        self._received: list[ReceivedRequest] = []
        self._stopping = threading.Event()
        self._httpd: _ReceiverHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeReceiver:
        """Bind 127.0.0.1 on a free port and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeReceiver already started")
        context = None
        if self._tls_dir is not None:
            files = create_tls_files(self._tls_dir)
            self._ca_path = str(files.ca_path)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(files.cert_path, files.key_path)
        self._stopping.clear()
        self._httpd = _ReceiverHTTPServer(self, context)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeReceiver:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for every handler thread to finish."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # cuts short any delay_next() sleep
        httpd.shutdown()
        if thread is not None:
            thread.join(_JOIN_TIMEOUT)
        httpd.server_close()
        self._httpd = self._thread = None

    def __enter__(self) -> FakeReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeReceiver not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``https://127.0.0.1:50123``."""
        scheme = "https" if self._tls_dir is not None else "http"
        return f"{scheme}://{HOST}:{self.port}"

    @property
    def ca_path(self) -> str | None:
        """The CA bundle clients verify the server with (``None`` for plain HTTP).

        A ``str`` on purpose: ``requests`` silently ignores a ``pathlib.Path`` as ``verify``
        and falls back to its default bundle.
        """
        return self._ca_path

    # -- scripting ---------------------------------------------------------------------

    def respond_with(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order, then ``default_status``.

        Calls add to the queue.
        """
        with self._lock:
            self._statuses.extend(statuses)

    def delay_next(self, seconds: float) -> None:
        """Wait ``seconds`` before answering the next request (calls add to the queue).

        The request is recorded before the wait, so it shows up in :attr:`received` even if
        the client times out. :meth:`stop` cuts the wait short.
        """
        with self._lock:
            self._delays.append(seconds)

    def reset(self) -> None:
        """Forget received requests and any queued statuses and delays."""
        with self._lock:
            self._statuses.clear()
            self._delays.clear()
            self._received.clear()

    # -- inspection --------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._received)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Block until at least ``count`` requests arrived; raise ``TimeoutError`` otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} request(s), got {len(self._received)} in {timeout}s"
                )
            return list(self._received)

    # -- used by the handler -----------------------------------------------------------

    def _next_response(self) -> tuple[int, float]:
        with self._lock:
            status = self._statuses.popleft() if self._statuses else self.default_status
            delay = self._delays.popleft() if self._delays else 0.0
        return status, delay

    def _record(self, request: ReceivedRequest) -> None:
        with self._changed:
            self._received.append(request)
            self._changed.notify_all()
