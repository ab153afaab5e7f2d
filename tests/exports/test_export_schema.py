"""The OpenAPI schema of the export API: each dataset's operation describes that dataset."""

from __future__ import annotations

import jsonschema
import pytest

from exports.backbone.metrics import refresh_company_metrics
from exports.datasets import DATASETS, FilterKind
from mktintegration import roles
from tests.factories import CompanyFactory, ContactFactory

SCOPES = ["export:clients", "export:metrics", "export:contacts"]


@pytest.fixture
def schema(client_for):
    client = client_for(roles.INTEGRATION_ADMIN)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def _operation(schema, name):
    return schema["paths"][f"/marketing/export/{name}"]["get"]


def _parameters(operation):
    return {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}


def _resolve(schema, node):
    if "$ref" in node:
        return schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _json_schema(schema, node):
    """An OpenAPI 3.0 schema (refs resolved, ``nullable``) as plain JSON Schema."""
    node = dict(_resolve(schema, node))
    if node.pop("nullable", False):
        node["type"] = [node["type"], "null"]
    for key in ("properties",):
        if key in node:
            node[key] = {k: _json_schema(schema, v) for k, v in node[key].items()}
    if "items" in node:
        node["items"] = _json_schema(schema, node["items"])
    return node


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_each_export_operation_describes_its_own_dataset(schema, name):
    dataset = DATASETS[name]
    operation = _operation(schema, name)
    parameters = _parameters(operation)

    assert f"`{dataset.permission}`" in operation["description"]
    assert f"`{dataset.scope}`" in operation["description"]
    assert operation["x-permission"] == dataset.permission
    assert operation["x-token-scope"] == dataset.scope
    assert parameters["fields"]["schema"]["items"]["enum"] == dataset.field_names
    assert set(parameters) == {"format", "fields", "limit", "cursor", *dataset.filter_names}
    page = _resolve(schema, operation["responses"]["200"]["content"]["application/json"]["schema"])
    row = _resolve(schema, page["properties"]["data"]["items"])
    assert list(row["properties"]) == dataset.field_names


@pytest.mark.django_db
def test_export_filters_carry_their_types(schema):
    clients = _parameters(_operation(schema, "clients"))
    metrics = _parameters(_operation(schema, "metrics"))

    region = clients["region"]
    assert (region["style"], region["explode"]) == ("form", False)  # comma-separated
    assert region["schema"]["type"] == "array"
    assert region["schema"]["items"]["enum"] == ["us", "eu", "uk", "apac", "latam"]
    assert clients["country"]["schema"]["items"] == {"type": "string", "minLength": 1}
    assert clients["updated_since"]["schema"] == {"type": "string", "format": "date-time"}
    assert clients["is_customer"]["schema"] == {"type": "boolean"}
    for name in ("min_health_score", "max_health_score"):
        bounds = metrics[name]["schema"]
        assert bounds["type"] == "integer"
        assert bounds["minimum"] <= 0 and bounds["maximum"] >= 100
    for name, spec in ((s.name, s) for s in DATASETS["contacts"].filters):
        if spec.kind == FilterKind.IN:
            assert _parameters(_operation(schema, "contacts"))[name]["schema"]["type"] == "array"


@pytest.mark.django_db
def test_export_limit_and_media_types_and_errors_are_documented(schema):
    operation = _operation(schema, "contacts")

    assert _parameters(operation)["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10_000,
    }
    assert "row limit" in _parameters(operation)["limit"]["description"]
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "text/csv",
        "application/x-ndjson",
    }
    assert {"400", "401", "403", "429"} <= set(operation["responses"])
    assert "Retry-After" in operation["responses"]["429"]["headers"]
    for code in ("400", "401", "403", "429"):
        assert "application/json" in operation["responses"][code]["content"], code


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_real_json_page_matches_its_documented_schema(client, api_token, schema, name):
    CompanyFactory(name="Alpha GmbH", country="DE", is_customer=True)
    company = CompanyFactory(name="Beta SARL", country="FR")
    ContactFactory(company=company)
    refresh_company_metrics()
    _, raw = api_token(roles.INTEGRATION_ADMIN, SCOPES)
    fields = ",".join(DATASETS[name].field_names)

    response = client.get(
        f"/marketing/export/{name}?fields={fields}", HTTP_AUTHORIZATION=f"Bearer {raw}"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] >= 1
    documented = _operation(schema, name)["responses"]["200"]["content"]["application/json"]
    jsonschema.validate(body, _json_schema(schema, documented["schema"]))
