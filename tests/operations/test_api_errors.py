"""Errors outside the operations' own checks answer JSON: bodies the APIs cannot read (not
JSON, too large, another media type) in the configure API's shape, and paths no operation
matches; the schema says so."""

from __future__ import annotations

import pytest

from integrations.models import Connection, SyncRun
from mktintegration import roles
from tests.integrations.conftest import make_connection, make_sync

CONFIGURE = "/marketing/integrations/configure"


@pytest.mark.django_db
def test_malformed_json_to_configure_answers_400_with_errors_by_path(api, integration_admin):
    response = api(integration_admin).post(
        CONFIGURE, '{"connection": {"name": "x",', content_type="application/json"
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["errors"] == [{"path": "document", "message": body["detail"]}]
    assert "JSON parse error" in body["detail"]
    assert not Connection.objects.exists()


@pytest.mark.django_db
def test_oversized_configure_body_answers_json_413_naming_the_limit(api, integration_admin):
    body = '{"connection": {"name": "' + "x" * 5_000_000 + '"}}'  # 5 MB; Django's limit is 2.5 MiB

    response = api(integration_admin).post(CONFIGURE, body, content_type="application/json")

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    error = response.json()
    assert "larger than 2,621,440 bytes (2.5 MiB)" in error["detail"]
    assert error["errors"] == [{"path": "document", "message": error["detail"]}]


@pytest.mark.django_db
def test_form_encoded_body_to_configure_answers_415_as_json(api, integration_admin):
    response = api(integration_admin).post(
        CONFIGURE, "connection=x", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["errors"][0]["path"] == "document"


@pytest.mark.django_db
def test_bad_sync_run_options_answer_errors_by_path(api, integration_admin, hubspot):
    sync = make_sync(make_connection("hubspot", hubspot))

    response = api(integration_admin).post(
        f"/marketing/integrations/syncs/{sync.pk}/run", {"full": "perhaps"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "full", "message": "Must be a valid boolean."}]
    assert not SyncRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/marketing/integrations/runs/null"),
        ("post", "/marketing/integrations/syncs/-1/run"),
        ("get", "/marketing/export/nothing"),
    ],
)
def test_a_path_no_operation_matches_answers_a_json_404(api, integration_admin, method, path):
    response = getattr(api(integration_admin), method)(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "no API operation" in response.json()["detail"]


@pytest.mark.django_db
def test_schema_documents_body_errors_and_json_only_bodies(client_for):
    schema = client_for(roles.INTEGRATION_ADMIN).get("/api/schema/?format=json").json()

    configure = schema["paths"][CONFIGURE]["post"]
    assert list(configure["requestBody"]["content"]) == ["application/json"]
    for code in ("400", "413", "415"):
        ref = configure["responses"][code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/Errors"), code
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert "401" in operation["responses"], (method, path)
            assert "403" in operation["responses"], (method, path)
