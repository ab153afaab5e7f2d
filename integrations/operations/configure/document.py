"""The configure document's shape (DRF serializers, also the OpenAPI schema) and its errors
as JSON paths (``syncs[0].mappings[2].destination_field``).

Every listed field has a default: the document states the whole configuration of the objects
it lists, so leaving a field out sets it to its default. Credentials are the exception:
leaving a secret out keeps the stored one.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from integrations.models.syncs import SyncMode, Transform
from mktintegration import bounds


def _json_object(**kwargs) -> serializers.DictField:
    """A JSON object stored as it is (config, filters): nesting and size bounded."""
    return serializers.DictField(validators=[bounds.validate_json], **kwargs)


class MappingDocument(serializers.Serializer):
    source_field = serializers.CharField(
        max_length=64, required=False, default="", allow_blank=True
    )
    template = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
    destination_field = serializers.CharField(max_length=100)
    transform = serializers.ChoiceField(
        choices=[value for value, _ in Transform.choices],
        required=False,
        default="",
        allow_blank=True,
    )
    value_map = serializers.DictField(
        child=serializers.CharField(max_length=bounds.TEXT_VALUE_CHARS, allow_blank=True),
        required=False,
        default=dict,
        validators=[bounds.validate_json],
        help_text='Source value -> destination value, e.g. {"mql": "marketingqualifiedlead"}.',
    )


class SyncDocument(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    dataset = serializers.CharField(max_length=32)
    filters = _json_object(required=False, default=dict)
    destination_object = serializers.CharField(max_length=64)
    destination_config = _json_object(required=False, default=dict)
    mode = serializers.ChoiceField(choices=SyncMode.values, required=False, default=SyncMode.UPSERT)
    match_source_field = serializers.CharField(max_length=64)
    match_destination_field = serializers.CharField(max_length=64)
    consent_purpose = serializers.CharField(
        max_length=32, required=False, default="", allow_blank=True
    )
    cron = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    every_minutes = serializers.IntegerField(
        **bounds.EVERY_MINUTES.serializer_kwargs(), required=False, default=None, allow_null=True
    )
    realtime = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Also send each record within seconds of its change (docs/realtime.md).",
    )
    enabled = serializers.BooleanField(required=False, default=True)
    mirror_max_delete_share = serializers.FloatField(
        **bounds.SHARE.serializer_kwargs(), required=False, default=0.1
    )
    lookback_minutes = serializers.IntegerField(
        **bounds.LOOKBACK_MINUTES.serializer_kwargs(), required=False, default=15
    )
    mappings = MappingDocument(many=True, max_length=bounds.MAPPINGS_PER_SYNC)
    alert_emails = serializers.ListField(
        child=serializers.EmailField(), required=False, default=list, max_length=bounds.ALERT_EMAILS
    )


class ConnectionDocument(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    vendor = serializers.CharField(max_length=32)
    auth_kind = serializers.CharField(
        max_length=32,
        required=False,
        default="",
        allow_blank=True,
        help_text="Default: the vendor's first auth kind.",
    )
    credentials = serializers.DictField(
        child=serializers.CharField(
            allow_blank=True, trim_whitespace=True, max_length=bounds.SECRET_CHARS
        ),
        required=False,
        default=dict,
        write_only=True,
        help_text='Write-only secrets, e.g. {"token": "..."}; a secret left out is kept.',
    )
    config = _json_object(required=False, default=dict)
    base_url = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    allowed_regions = serializers.ListField(
        child=serializers.CharField(max_length=16), required=False, default=list, max_length=16
    )
    rate_limit_requests = serializers.IntegerField(
        **bounds.RATE_LIMIT_REQUESTS.serializer_kwargs(),
        required=False,
        default=None,
        allow_null=True,
    )
    rate_limit_seconds = serializers.FloatField(
        **bounds.RATE_LIMIT_SECONDS.serializer_kwargs(),
        required=False,
        default=None,
        allow_null=True,
    )
    daily_quota_requests = serializers.IntegerField(
        **bounds.DAILY_QUOTA_REQUESTS.serializer_kwargs(),
        required=False,
        default=None,
        allow_null=True,
        help_text="Requests the vendor account allows per day (default: the vendor's).",
    )
    alert_emails = serializers.ListField(
        child=serializers.EmailField(), required=False, default=list, max_length=bounds.ALERT_EMAILS
    )


class ConfigureDocument(serializers.Serializer):
    connection = ConnectionDocument()
    syncs = SyncDocument(
        many=True, required=False, default=list, max_length=bounds.SYNCS_PER_DOCUMENT
    )
    dry_run = serializers.BooleanField(required=False, default=False)
    prune_syncs = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Delete the connection's syncs the document does not list.",
    )


Errors = list[tuple[str, str]]


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def flatten(detail: Any, path: str = "") -> Errors:
    """DRF's nested error structure as (path, message) pairs."""
    if isinstance(detail, dict):
        found: Errors = []
        for key, value in detail.items():
            found += flatten(value, path if key == "non_field_errors" else join(path, key))
        return found
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [(path or "document", str(item)) for item in detail]
        found = []
        for index, item in enumerate(detail):
            found += flatten(item, join(path, index))
        return found
    return [(path or "document", str(detail))]


def unknown_keys(serializer: serializers.Serializer, data: Any, path: str = "") -> Errors:
    """Keys the document's shape does not have, everywhere in it (DRF ignores them)."""
    if not isinstance(data, dict):
        return []
    fields = serializer.fields
    found: Errors = []
    for key in data:
        if key not in fields:
            allowed = ", ".join(fields)
            found.append((join(path, key), f"unknown field {key!r}; allowed here: {allowed}"))
            continue
        field = fields[key]
        value = data[key]
        if isinstance(field, serializers.ListSerializer) and isinstance(value, list):
            for index, item in enumerate(value):
                found += unknown_keys(field.child, item, join(join(path, key), index))
        elif isinstance(field, serializers.Serializer):
            found += unknown_keys(field, value, join(path, key))
    return found
