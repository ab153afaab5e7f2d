"""What the emulators' OAuth endpoints share: form-body checks, the consent page's redirect,
and the standard error body (RFC 6749 §5.2). Vendor shapes live in each vendor's module."""

from __future__ import annotations

from tests.fakes.oauth_store import OAuthError, OAuthStore
from tests.fakes.wire import TEXT_CONTENT_TYPE, Request, Response

FORM = "application/x-www-form-urlencoded"


def form_problems(
    req: Request, *, required: set[str], optional: set[str] = frozenset(), source: str
) -> list[str]:
    """A form-encoded body with exactly these parameters (and none in the query string,
    which the route's empty ``query`` already checks)."""
    if req.content_type != FORM:
        shown = req.header("content-type") or "none"
        return [f"the body must be {FORM} {source}, got {shown}"]
    body = req.body if isinstance(req.body, dict) else {}
    problems = [
        f"missing {name!r} in the form body {source}" for name in sorted(required - set(body))
    ]
    problems += [
        f"unexpected {name!r} in the form body {source}"
        for name in sorted(set(body) - required - optional)
    ]
    return problems


def consent(store: OAuthStore, req: Request, *, scopes: list[str]) -> Response:
    """The consent page: the person agrees at once (emulator choice), so the browser goes back
    to the redirect URI with a code, or with the error ``store.deny_next`` names; a bad client
    or redirect URI gets a page of its own and no redirect (RFC 6749 §4.1.2.1)."""
    query = req.query
    try:
        location = store.authorize(
            client_id=query.get("client_id", ""),
            redirect_uri=query.get("redirect_uri", ""),
            scopes=scopes,
            state=query.get("state", ""),
            challenge=query.get("code_challenge", ""),
            method=query.get("code_challenge_method", ""),
        )
    except OAuthError as exc:
        return Response(400, f"{exc.code}: {exc.description}", TEXT_CONTENT_TYPE)
    return Response(302, None, headers={"Location": location})


def standard_error(exc: OAuthError) -> Response:
    return Response(exc.status, {"error": exc.code, "error_description": exc.description})
