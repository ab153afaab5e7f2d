"""The HTTP transport of the vendor emulators: a ``ThreadingHTTPServer`` in a daemon thread.

``HttpServerThread`` parses each request into a ``wire.Request``, hands it to a ``serve``
callback (the vendor pipeline) in the connection's own thread, and writes the ``Response`` it
returns, or closes the socket unanswered when it returns ``None``. HTTP/1.1 keep-alive is
supported (``requests.Session`` reuses connections); ``stop()`` cuts idle ones.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes import wire
from tests.fakes.wire import Request, Response

Serve = Callable[[Request], Response | None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], owner: HttpServerThread):
        self.owner = owner
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log; tests read ``FakeVendor.requests`` instead."""

    def do_GET(self) -> None:
        response = self.server.owner.serve(parse_request(self))
        if response is None:
            self.close_connection = True  # the socket closes without an answer
        else:
            write_response(self, response)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET


class HttpServerThread:
    """Serve ``serve`` on ``host:port`` from a daemon thread; restartable on the same port."""

    def __init__(self, serve: Serve, *, host: str = "127.0.0.1", port: int = 0, name: str = ""):
        self.serve = serve
        self.host = host
        self.port = port
        self.name = name or "fake-vendor"
        #: Set while stopping, so that injected delays end early.
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Bind (port 0: any free port, remembered for a restart) and serve in a thread."""
        if self._server is not None:
            return
        self.stopping.clear()
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut open keep-alive connections and wake delayed answers."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        """Remember open connections so ``stop()`` can cut them."""
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


def parse_request(handler: BaseHTTPRequestHandler) -> Request:
    """The handler's request as a ``wire.Request`` (body read and parsed by content type)."""
    split = urlsplit(handler.path)
    headers = dict(handler.headers.items())
    raw = read_body(handler)
    content_type = wire.media_type(handler.headers.get("Content-Type"))
    body, error = wire.parse_body(content_type, raw)
    return Request(
        method=handler.command,
        path=unquote(split.path),
        query=wire.parse_query(split.query),
        headers={name.lower(): value for name, value in headers.items()},
        raw_body=raw,
        content_type=content_type,
        body=body,
        body_error=error,
        sent_headers=headers,
    )


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by Content-Length or chunked transfer coding."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def write_response(handler: BaseHTTPRequestHandler, response: Response) -> None:
    """Send ``response``; a client that already gave up (timeout) is not an error."""
    bodiless = response.status in (204, 304)
    payload = b"" if bodiless else response.encode()
    try:
        handler.send_response(response.status)
        if not bodiless:
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if payload:
            handler.wfile.write(payload)
        handler.wfile.flush()
    except OSError:
        handler.close_connection = True
