"""The one outbound HTTP client. Nothing else in the product imports ``requests``.

Every request gets: a timeout; no redirect to another host; the address guard of
``mktintegration/netguard.py`` (no private, loopback, link-local or other internal address
unless the host is allow-listed in ``MKT_HTTP_ALLOW_PRIVATE_HOSTS``; the name is resolved and
checked once and the socket connected to a checked address, so DNS rebinding cannot slip
past); TLS verification; and one
OutboundLog row with no personal data (no body, no query string, e-mail-like path segments
redacted).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from audit.services import outbound_log_write
from mktintegration import netguard
from mktintegration.errors import ConnectorError, ErrorKind

Response = requests.Response
# An error response as an exception, for libraries that expect requests' (social-core).
HTTPError = requests.HTTPError
DEFAULT_TIMEOUT = (5.0, 60.0)  # connect, read
MAX_REDIRECTS = 3
_EMAILISH = re.compile(r"[^/]*@[^/]*")


def _refused(exc: netguard.AddressRefused) -> ConnectorError:
    return ConnectorError(exc.message, kind=ErrorKind.CONFIG)


def check_url(url: str, *, allowed_hosts: tuple[str, ...] = ()) -> str:
    """Validate a destination URL at save time: https (or an allow-listed test host), a host
    matching ``allowed_hosts`` patterns if any are given, and a public address."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        raise ConnectorError(f"{url!r} has no host", kind=ErrorKind.CONFIG)
    test_host = netguard.host_is_allow_listed(host)
    if parts.scheme != "https" and not (parts.scheme == "http" and test_host):
        raise ConnectorError(f"{url!r} must use https", kind=ErrorKind.CONFIG)
    if parts.username or parts.password:
        raise ConnectorError(
            "put credentials in the secret fields, not in the URL", kind=ErrorKind.CONFIG
        )
    if allowed_hosts and not test_host and not any(fnmatch(host, p) for p in allowed_hosts):
        raise ConnectorError(
            f"host {host} is not allowed here (allowed: {', '.join(allowed_hosts)})",
            kind=ErrorKind.CONFIG,
        )
    try:
        netguard.resolve_checked(host, parts.port or 443)
    except socket.gaierror as exc:
        raise ConnectorError(f"{host} does not resolve: {exc}", kind=ErrorKind.CONFIG) from None
    except netguard.AddressRefused as exc:
        raise _refused(exc) from None
    return url


class Throttle(Protocol):
    """A shared rate budget: ``acquire()`` before each request, ``block(seconds)`` after a 429."""

    def acquire(self) -> None: ...

    def block(self, seconds: float) -> None: ...


if TYPE_CHECKING:  # the mixin is only ever mixed into urllib3's HTTPConnection
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class _GuardedConnectionMixin(_ConnectionBase):
    """urllib3's connect, through the address guard: the name is resolved and checked once and
    the socket connected to a checked address, so no internal address is ever connected to."""

    def _new_conn(self):
        timeout = socket.getdefaulttimeout() if self.timeout is _DEFAULT_TIMEOUT else self.timeout
        try:
            sock = netguard.connect_checked(
                self.host, self.port, timeout=timeout, socket_options=self.socket_options or ()
            )
        except netguard.AddressRefused as exc:
            raise _refused(exc) from None
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to establish a new connection: {exc}") from exc
        return sock


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }


_local = threading.local()


def _session(vendor: str, connection_id: int | None) -> requests.Session:
    """One session per vendor account and thread: delivery tasks reuse its open connections
    instead of connecting (and for HTTPS, handshaking) again for every task."""
    sessions = _local.__dict__.setdefault("sessions", {})
    key = (vendor, connection_id)
    if key not in sessions:
        session = requests.Session()
        session.trust_env = False  # no proxies or netrc from the environment
        adapter = _GuardedAdapter(pool_connections=4, pool_maxsize=8, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.headers["User-Agent"] = "mktintegration/1"
        sessions[key] = session
    return sessions[key]


def redact_path(path: str) -> str:
    return _EMAILISH.sub("{redacted}", path)[:500]


@dataclass
class HttpClient:
    """A session for one vendor account (connection) or destination."""

    vendor: str
    connection_id: int | None = None
    allowed_hosts: tuple[str, ...] = ()
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    ca_bundle: str | None = None
    throttle: Throttle | None = None
    calls: int = field(default=0, init=False)
    rate_limited: int = field(default=0, init=False)
    _session: requests.Session = field(init=False, repr=False)

    def __post_init__(self):
        self._session = _session(self.vendor, self.connection_id)

    def close(self) -> None:
        """Nothing to release: the session (and its kept-alive connections) is reused by the
        next client for the same vendor account in this thread."""

    def request(
        self,
        method: str,
        url: str,
        *,
        records: int = 0,
        idempotency_key: str = "",
        timeout: tuple[float, float] | None = None,
        **kwargs,
    ) -> Response:
        """Send one request (following same-host redirects); ConnectorError(TRANSIENT) on a
        network failure or timeout, ConnectorError(CONFIG) on a refused address or host."""
        self._check_host(url)
        if self.throttle is not None:
            self.throttle.acquire()
        self.calls += 1
        started = time.monotonic()
        status, error = None, ""
        try:
            response = self._send(method, url, timeout or self.timeout, kwargs)
            status = response.status_code
            if status == 429:
                self.rate_limited += 1
                if self.throttle is not None:
                    wait = retry_after_seconds(response)
                    self.throttle.block(10.0 if wait is None else wait)
            return response
        except requests.Timeout as exc:
            error = f"timeout: {type(exc).__name__}"
            raise ConnectorError(
                f"{self.vendor}: request timed out", kind=ErrorKind.TRANSIENT
            ) from None
        except requests.ConnectionError as exc:
            error = f"connection failed: {type(exc).__name__}"
            raise ConnectorError(
                f"{self.vendor}: connection failed", kind=ErrorKind.TRANSIENT
            ) from None
        except ConnectorError as exc:
            error = exc.message
            raise
        finally:
            parts = urlsplit(url)
            outbound_log_write(
                connection_id=self.connection_id,
                vendor=self.vendor,
                method=method.upper(),
                host=parts.hostname or "",
                path=redact_path(parts.path),
                status=status,
                duration_ms=int((time.monotonic() - started) * 1000),
                records=records,
                idempotency_key=idempotency_key[:128],
                error=error[:500],
            )

    def _check_host(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        if (
            self.allowed_hosts
            and not netguard.host_is_allow_listed(host)
            and not any(fnmatch(host, pattern) for pattern in self.allowed_hosts)
        ):
            raise ConnectorError(
                f"{self.vendor}: host {host} is not one of {', '.join(self.allowed_hosts)}",
                kind=ErrorKind.CONFIG,
            )

    def _send(self, method, url, timeout, kwargs) -> Response:
        verify = self.ca_bundle or True
        origin = urlsplit(url)[:2]
        for _ in range(MAX_REDIRECTS + 1):
            response = self._session.request(
                method, url, timeout=timeout, allow_redirects=False, verify=verify, **kwargs
            )
            if not response.is_redirect:
                return response
            location = requests.compat.urljoin(url, response.headers["Location"])
            if hasattr(kwargs.get("data"), "read"):
                # A streamed body was consumed by the first request and cannot be sent again:
                # hand the redirect back to the caller instead of re-sending nothing.
                return response
            if urlsplit(location)[:2] != origin:
                raise ConnectorError(
                    f"{self.vendor}: redirect to another host refused",
                    kind=ErrorKind.PERMANENT,
                    status=response.status_code,
                )
            url = location
        raise ConnectorError(f"{self.vendor}: too many redirects", kind=ErrorKind.PERMANENT)


MAX_RETRY_AFTER = 86_400.0  # a day: a longer wait asked for is taken as a day


def retry_after_seconds(response: Response) -> float | None:
    """The response's ``Retry-After`` in seconds (delta-seconds or an HTTP-date, RFC 9110
    §10.2.3), bounded to a day; None when absent or unreadable. The one parser of it."""
    raw = (response.headers.get("Retry-After") or "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = (moment - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
