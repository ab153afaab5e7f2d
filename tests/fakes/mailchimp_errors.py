"""Mailchimp's error bodies (``application/problem+json``), as ``FakeMailchimp`` answers them.

Citations in brackets point to the Mailchimp source list in /work/shared/VENDORS.md
(section 1). Error names follow [M2][M15].
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

from tests.fakes.wire import Response

PROBLEM_CONTENT_TYPE = "application/problem+json; charset=utf-8"
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """``{type, title, status, detail, instance}`` as ``application/problem+json`` [M2]."""
    body = {
        "type": ERRORS_DOC,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
        **extra,
    }
    return Response(status, body, PROBLEM_CONTENT_TYPE)


def unauthorized(missing: bool) -> Response:
    """401 ``APIKeyMissing`` or ``APIKeyInvalid``."""
    if missing:
        return problem(401, "API Key Missing", "Your request did not include an API key.")
    detail = "Your API key may be invalid, or you've attempted to access the wrong datacenter."
    return problem(401, "API Key Invalid", detail)


def not_found() -> Response:
    """404 ``ResourceNotFound``."""
    return problem(404, "Resource Not Found", "The requested resource could not be found.")


def method_not_allowed() -> Response:
    """405 ``MethodNotAllowed``."""
    detail = "The requested method and resource are not compatible."
    return problem(405, "Method Not Allowed", detail)


def invalid(problems: list[str], json_error: bool) -> Response:
    """400 ``JSONParseError``, or ``InvalidResource`` with an ``errors`` array."""
    if json_error:
        detail = "We encountered an unspecified JSON parsing error."
        return problem(400, "JSON Parse Error", detail)
    detail = (
        "The resource submitted could not be validated. For field-specific details, see "
        "the 'errors' array."
    )
    errors = [{"field": "", "message": message} for message in problems]
    return problem(400, "Invalid Resource", detail, errors=errors)


def too_many_requests(max_concurrency: int | None) -> Response:
    """429 ``TooManyRequests``; no rate headers and no ``Retry-After`` [M1][M14]."""
    if max_concurrency is not None:
        detail = f"You have exceeded the limit of {max_concurrency} simultaneous connections."
    else:
        detail = "You have exceeded the request limit. Please retry later."
    return problem(429, "Too Many Requests", detail)


def fault(status: int) -> Response:
    """The body for an injected ``status``."""
    if status == 429:
        return too_many_requests(None)
    if status == 500:
        detail = "An unexpected internal error has occurred. Please contact Support."
        return problem(500, "Internal Server Error", detail)
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return problem(status, title, f"Injected {status} {title}.")
