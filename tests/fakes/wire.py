"""Wire-level types shared by the fake vendors: parsed requests, responses, recorded calls.

Nothing here knows about a particular vendor; ``base.FakeVendor`` turns HTTP into a
:class:`Request`, a vendor route turns it into a :class:`Response`, and every exchange is kept
as a :class:`RecordedRequest`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"

# Outcomes of a recorded request (``RecordedRequest.outcome``).
HANDLED = "handled"  # the route ran (writes were applied) and the answer was sent
HANDLED_DROPPED = "handled_dropped"  # the route ran, then the socket was closed unanswered
DROPPED = "dropped"  # the socket was closed unanswered; nothing was applied
FAULT = "fault"  # an injected error status was answered; nothing was applied
RATE_LIMITED = "rate_limited"  # the vendor's 429; nothing was applied
UNAUTHORIZED = "unauthorized"  # the vendor's 401; nothing was applied
INVALID = "invalid"  # the request broke the documented shape: 400; nothing was applied
UNKNOWN_ENDPOINT = "unknown_endpoint"  # no such route: 404/405; nothing was applied


@dataclass
class Request:
    """A parsed HTTP request as a vendor route sees it.

    ``headers`` has lower-cased names. ``body`` is the parsed JSON, a form dict, the raw text,
    or ``None`` for an empty body; ``body_error`` says why a JSON body could not be parsed.
    ``params`` holds the named groups of the matched route pattern; ``sent_headers`` keeps the
    header names as the client spelled them (for the record).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes
    content_type: str
    body: Any = None
    body_error: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    sent_headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        return self.headers.get(name.lower())


@dataclass
class Response:
    """What a route answers. ``body`` may be JSON-able data, text, bytes or ``None``."""

    status: int
    body: Any = None
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The body as bytes (empty for ``None``)."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it, for inspection by tests.

    ``headers`` keeps the names as sent, with the ``Authorization`` value replaced by ``***``.
    ``status`` is ``None`` when the connection was dropped. ``timestamp`` is ``time.time()``
    at arrival; ``delay`` is the injected delay in seconds. ``outcome`` is one of the module
    constants (``"handled"``, ``"rate_limited"``, ...).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int | None
    timestamp: float
    outcome: str
    response_body: Any = None
    delay: float = 0.0

    @property
    def applied(self) -> bool:
        """True when the route ran (for a write: the store changed), whatever the client saw."""
        return self.outcome in (HANDLED, HANDLED_DROPPED)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


def media_type(content_type: str | None) -> str:
    """``"application/json"`` for ``"Application/JSON; charset=utf-8"``; ``""`` for none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_query(query_string: str) -> dict[str, str]:
    """The query string as a flat dict (the last value wins for a repeated name)."""
    return {name: values[-1] for name, values in parse_qs(query_string, True).items()}


def parse_body(content_type: str, raw: bytes) -> tuple[Any, str | None]:
    """Parse ``raw`` by its media type: JSON, a form (flat dict) or text. Returns (body, error)."""
    if not raw:
        return None, None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(raw), None
        except ValueError as exc:
            return None, f"body is not valid JSON ({exc})"
    text = raw.decode("utf-8", errors="replace")
    if content_type == "application/x-www-form-urlencoded":
        return parse_query(text), None
    return text, None


def decode_response_body(response: Response) -> Any:
    """The response body as data for the record (JSON parsed back when it is JSON)."""
    if isinstance(response.body, bytes):
        return response.body.decode("utf-8", errors="replace")
    return response.body
