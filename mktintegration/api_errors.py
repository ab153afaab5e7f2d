"""API error bodies: the exception handler every DRF view uses, and their OpenAPI shapes.

Errors about the request body as a whole (not JSON, a media type the view does not read,
larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE``) answer the configure API's error shape,
``{"detail": ..., "errors": [{"path": ..., "message": ...}]}``, as JSON, on every API: Django
would otherwise answer an oversized body with its HTML "Bad Request" page. A view names its
body with ``body_path`` (the configure API calls it ``document``).

Everything else is DRF's default: ``{"detail": ...}``, or ``{field: [messages]}`` for
validation errors.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler

BODY_PATH = "body"


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "body_too_large"


def body_limit_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return (
        f"The request body is larger than {limit:,} bytes ({limit / 1024 / 1024:.1f} MiB), "
        "the most this API accepts."
    )


def errors_body(errors, detail: str) -> dict:
    """The error shape of whole-document APIs: ``errors`` is [(path, message), ...]."""
    return {"detail": detail, "errors": [{"path": p, "message": m} for p, m in errors]}


def api_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = BodyTooLarge(body_limit_message())
    response = exception_handler(exc, context)
    if response is not None and isinstance(
        exc, exceptions.ParseError | exceptions.UnsupportedMediaType | BodyTooLarge
    ):
        path = getattr(context.get("view"), "body_path", BODY_PATH)
        message = str(exc.detail)
        response.data = errors_body([(path, message)], message)
    return response


@csrf_exempt  # answers every method with the 404; it changes nothing
def api_not_found(request, *args, **kwargs):
    """Any path under an API prefix that no operation matches (a path parameter of the wrong
    form, say): a JSON 404 like the operations' own, not Django's HTML page."""
    return JsonResponse({"detail": "Not found: no API operation has this path."}, status=404)


# --- OpenAPI shapes -----------------------------------------------------------------------


class ErrorItemSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="JSON path, e.g. syncs[0].mappings[2].destination_field")
    message = serializers.CharField()


class ErrorsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = ErrorItemSerializer(many=True)


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


# ValidationError bodies: each parameter or field at fault, with its messages.
FIELD_ERRORS = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "example": {"limit": ["limit must be at least 1"]},
}

UNAUTHENTICATED = OpenApiResponse(
    DetailSerializer,
    description="no credentials, or a token that is unknown, expired or revoked",
)
BODY_TOO_LARGE = OpenApiResponse(
    ErrorsSerializer,
    description="the body is larger than the most the API accepts (the message names it)",
)
UNSUPPORTED_MEDIA_TYPE = OpenApiResponse(
    ErrorsSerializer, description="the body is not application/json"
)


URL_TOO_LONG = OpenApiResponse(
    description="The URL is longer than the web server accepts (gunicorn: a 4,094-byte request "
    "line by default); its own page, not JSON. Send fewer or shorter values."
)


def detail_response(description: str) -> OpenApiResponse:
    """A ``{"detail": ...}`` answer (403, 404, 429, ...)."""
    return OpenApiResponse(DetailSerializer, description=description)
