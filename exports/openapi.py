"""The OpenAPI description of ``GET /marketing/export/<dataset>``: one operation per dataset,
built from its registry declaration (fields and their types, filters, permission, scope).

``export_schema(dataset)`` decorates that dataset's own view class (``exports.api.export_view``),
so each operation carries its own description: decorating the shared ``get`` would give every
dataset the last one's.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers

from exports.backbone.segments import KEY as SEGMENT_KEY
from exports.datasets import Dataset, DatasetFilter, FieldType, FilterKind
from exports.guardrails import OVERRIDE_PERMISSION
from exports.query import MAX_IN_VALUES, MAX_SEGMENTS
from mktintegration import api_errors
from mktintegration.roles import ROLES

# Integer filters without a narrower declared range: what a 32-bit column holds.
_INTEGER_RANGE = (-(2**31), 2**31 - 1)

_ROW_FIELDS = {
    FieldType.TEXT: serializers.CharField,
    FieldType.INT: serializers.IntegerField,
    FieldType.DECIMAL: serializers.FloatField,  # a JSON number with two decimals
    FieldType.BOOL: serializers.BooleanField,
    FieldType.DATETIME: serializers.DateTimeField,  # 2026-01-31T09:00:00Z
}


def _camel(name: str) -> str:
    return name.title().replace("_", "")


def _row_serializer(dataset: Dataset):
    fields = {
        f.name: _ROW_FIELDS[f.type](
            required=False, allow_null=f.name != dataset.key, help_text=f.description
        )
        for f in dataset.fields
    }
    return inline_serializer(name=f"{_camel(dataset.name)}ExportRow", fields=fields)


def _page_serializer(dataset: Dataset):
    return inline_serializer(
        name=f"{_camel(dataset.name)}ExportPage",
        fields={
            "dataset": serializers.ChoiceField(choices=[dataset.name]),
            "count": serializers.IntegerField(help_text="Rows in this page."),
            "next": serializers.URLField(
                allow_null=True, help_text="The next page (null on the last page)."
            ),
            "data": serializers.ListField(
                child=_row_serializer(dataset),
                help_text="The rows, with the requested fields, in primary-key order.",
            ),
        },
    )


def _list_schema(choices: tuple[str, ...] | list[str], *, max_items: int = MAX_IN_VALUES) -> dict:
    items: dict = {"type": "string", "minLength": 1}
    if choices:
        items = {"type": "string", "enum": list(choices)}
    return {"type": "array", "items": items, "minItems": 1, "maxItems": max_items}


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _filter_parameter(spec: DatasetFilter) -> OpenApiParameter:
    if spec.kind == FilterKind.SEGMENT:
        return OpenApiParameter(
            spec.name,
            {
                "type": "array",
                "maxItems": MAX_SEGMENTS,
                "items": {"type": "string", "pattern": SEGMENT_KEY.pattern},
            },
            style="form",
            explode=False,
            description=f"Only records in every one of these segments ({spec.subject} "
            f"segments, by key; at most {MAX_SEGMENTS}). The access log keeps each segment's "
            "name and the version read.",
        )
    if spec.kind == FilterKind.IN:
        return OpenApiParameter(
            spec.name,
            _list_schema(spec.choices),
            style="form",
            explode=False,
            description=f"Any of these {spec.description} (a repeated parameter adds values).",
        )
    if spec.kind == FilterKind.SINCE:
        return OpenApiParameter(
            spec.name,
            {"type": "string", "format": "date-time"},
            description=f"{_sentence(spec.description)} (a date alone means its midnight UTC; "
            "no time zone means UTC).",
        )
    if spec.kind in (FilterKind.MIN, FilterKind.MAX):
        # DatasetFilter.range (declared with the input bounds) when the filter has one.
        declared = spec.range
        low, high = (declared.minimum, declared.maximum) if declared else _INTEGER_RANGE
        return OpenApiParameter(
            spec.name,
            {"type": "integer", "minimum": low, "maximum": high},
            description=f"{_sentence(spec.description)} (a whole number).",
        )
    return OpenApiParameter(spec.name, OpenApiTypes.BOOL, description=spec.description)


def _row_limits() -> str:
    return ", ".join(
        f"{role.name} {role.max_export_rows:,}" if role.max_export_rows else f"{role.name} no limit"
        for role in ROLES.values()
        if role.max_export_rows != 0
    )


def _parameters(dataset: Dataset, *, max_page: int, default_page: int) -> list[OpenApiParameter]:
    return [
        OpenApiParameter(
            "format",
            str,
            enum=["json", "csv", "ndjson"],
            description="Output format; without it the Accept header decides (text/csv, "
            "application/x-ndjson, application/json), else JSON.",
        ),
        OpenApiParameter(
            "fields",
            {
                **_list_schema(dataset.field_names, max_items=len(dataset.field_names)),
                "uniqueItems": True,
            },
            style="form",
            explode=False,
            description="The fields to return, in this order. Default: "
            + ", ".join(dataset.default_fields),
        ),
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": max_page},
            description=f"JSON: the page size (default {default_page:,}, at most "
            f"{max_page:,}). CSV/NDJSON: the most rows to stream; there the bound is your "
            f"role's row limit ({_row_limits()}; none with `{OVERRIDE_PERMISSION}`), and a "
            "larger limit is a 400.",
        ),
        OpenApiParameter(
            "cursor",
            str,
            description="JSON: continue after the previous page (the cursor in its `next` "
            "link; any other value is a 400).",
        ),
        *(_filter_parameter(spec) for spec in dataset.filters),
        OpenApiParameter(
            "Retry-After",
            int,
            location=OpenApiParameter.HEADER,
            response=[429],
            description="Seconds until the next request is accepted.",
        ),
    ]


_OK = (
    "JSON: one page of rows. CSV (RFC 4180, with a header line; a cell that a spreadsheet "
    "would run as a formula starts with ') and NDJSON (one JSON object per line): every "
    "selected row, streamed."
)


def export_schema(dataset: Dataset, *, max_page: int, default_page: int):
    """The extend_schema decorator for the view class of ``dataset``."""
    personal = " It holds personal data." if dataset.personal_data else ""
    return extend_schema(
        summary=f"Export {dataset.label}",
        description=(
            f"Rows of the {dataset.name} dataset in primary-key order: a JSON page (follow "
            "`next`), or the whole selection as one CSV or NDJSON stream. Needs the "
            f"`{dataset.permission}` permission; API tokens also need the `{dataset.scope}` "
            f"scope.{personal} Every request, answered or refused, is access-logged."
        ),
        tags=["exports"],
        parameters=_parameters(dataset, max_page=max_page, default_page=default_page),
        responses={
            (200, "application/json"): OpenApiResponse(_page_serializer(dataset), _OK),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, _OK),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, _OK),
            400: OpenApiResponse(
                api_errors.FIELD_ERRORS,
                description="A parameter is wrong, or the export is over your role's row "
                "limit: the key names the parameter, the message the allowed values.",
            ),
            401: api_errors.UNAUTHENTICATED,
            403: api_errors.detail_response(
                f"Not permitted: no `{dataset.permission}` permission, or a token without "
                f"the `{dataset.scope}` scope."
            ),
            414: api_errors.URL_TOO_LONG,
            429: api_errors.detail_response(
                "Too many export requests for this token or user (see Retry-After)."
            ),
        },
        extensions={"x-permission": dataset.permission, "x-token-scope": dataset.scope},
    )
