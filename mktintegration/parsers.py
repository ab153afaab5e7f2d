"""The API's JSON parser: the body's nesting is bounded (mktintegration.bounds.BODY_DEPTH),
so a deeply nested document is a 400 naming the limit instead of a RecursionError."""

from __future__ import annotations

import codecs

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from mktintegration import bounds


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            return bounds.json_loads(text, field="body", depth=bounds.BODY_DEPTH)
        except bounds.BoundError as exc:
            raise ParseError(f"JSON parse error - {exc.message}") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
