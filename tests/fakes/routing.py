"""Routes of the vendor emulators and the checks that do not depend on a vendor.

``match_route`` finds the endpoint for a request; ``shape_problems`` collects the generic
violations (query parameter names, content type, unparsable JSON) plus the route's own
validator's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from tests.fakes.wire import Request, Response

Handler = Callable[[Request], Response]
Validator = Callable[[Request], list[str]]


class Auth(Enum):
    """The result of checking a request's credentials."""

    OK = "ok"
    MISSING = "missing"  # no Authorization header: a violation
    MALFORMED = "malformed"  # not the vendor's scheme: a violation
    WRONG = "wrong"  # the right scheme, the wrong secret: a 401 only


def bearer_auth(req: Request, valid: Callable[[str], bool]) -> Auth:
    """``Authorization: Bearer <token>``, the token checked by ``valid``."""
    header = req.header("authorization")
    if header is None:
        return Auth.MISSING
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Auth.MALFORMED
    return Auth.OK if valid(token.strip()) else Auth.WRONG


@dataclass(frozen=True)
class Route:
    """One endpoint: ``pattern`` is matched against the whole unquoted path.

    ``write`` marks requests that change vendor state (they consume injected faults).
    ``query`` lists the allowed query parameter names (``None``: anything goes).
    ``json_body`` says the endpoint takes a JSON body.
    ``public`` endpoints take no Authorization header (an OAuth authorization page a browser
    opens, a token endpoint that checks the client credentials in its body).
    """

    method: str
    pattern: re.Pattern[str]
    handle: Handler
    validate: Validator | None = None
    write: bool = False
    query: frozenset[str] | None = frozenset()
    json_body: bool = False
    public: bool = False


def match_route(routes: Sequence[Route], req: Request) -> tuple[Route | None, bool]:
    """The route for ``req`` (setting ``req.params``), and whether any route has its path.

    ``(None, True)`` means the path exists with other methods (a 405).
    """
    path_known = False
    for route in routes:
        match = route.pattern.fullmatch(req.path)
        if match is None:
            continue
        path_known = True
        if route.method == req.method:
            req.params = match.groupdict()
            return route, True
    return None, path_known


def shape_problems(route: Route, req: Request) -> list[str]:
    """Violations of the route's documented request shape."""
    problems = []
    if route.query is not None:
        unexpected = [name for name in req.query if name not in route.query]
        problems += [f"unexpected query parameter {name!r}" for name in unexpected]
    if route.json_body and req.raw_body and req.content_type != "application/json":
        shown = req.header("content-type") or "none"
        problems.append(f"Content-Type must be application/json, got {shown}")
    if req.body_error:
        problems.append(req.body_error)
    elif route.validate is not None:
        problems += route.validate(req)
    return problems
