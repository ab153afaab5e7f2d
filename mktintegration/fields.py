"""Model and form fields that carry their bounds (mktintegration.bounds)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from mktintegration import bounds


class BoundedJSONFormField(forms.JSONField):
    """The admin's JSON text box: a document nested too deeply or too big is a form error,
    not a RecursionError."""

    def to_python(self, value):
        if isinstance(value, str) and len(value.encode()) > bounds.JSON_BYTES:
            raise ValidationError(
                f"At most {bounds.JSON_BYTES:,} bytes of JSON (got {len(value.encode()):,}).",
                code="too_big",
            )
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(
                f"Nested too deeply: at most {bounds.JSON_DEPTH} levels.", code="too_deep"
            ) from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)


class BoundedJSONField(models.JSONField):
    """A JSONField nested at most bounds.JSON_DEPTH levels and at most bounds.JSON_BYTES."""

    default_validators = [bounds.validate_json]

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": BoundedJSONFormField, **kwargs})
