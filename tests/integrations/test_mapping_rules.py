"""One mapping validator: the admin, the configure API and the services refuse the same
mappings (type compatibility, required destination fields, mirror without archive) before
anything is sent."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from integrations.models import FieldMapping, Sync
from integrations.services import sync_save
from mktintegration import roles
from tests.integrations.conftest import make_connection
from tests.integrations.test_admin import _sync_post
from tests.operations.test_configure_api import URL as CONFIGURE
from tests.operations.test_configure_api import document

CITY_TO_EMPLOYEES = "numberofemployees at HubSpot takes a number; city (text) is not one"


def _sync(connection, **fields) -> Sync:
    values = {
        "name": "Companies",
        "connection": connection,
        "dataset": "clients",
        "destination_object": "companies",
        "match_source_field": "external_id",
        "match_destination_field": "external_id",
        **fields,
    }
    return Sync(**values)


@pytest.mark.django_db
def test_a_text_source_into_a_number_field_is_refused_by_the_services(hubspot):
    sync = _sync(make_connection("hubspot", hubspot))

    with pytest.raises(ValidationError) as refused:
        sync_save(
            sync=sync,
            mappings=[FieldMapping(source_field="city", destination_field="numberofemployees")],
        )

    assert CITY_TO_EMPLOYEES in str(refused.value)
    assert not Sync.objects.exists()


@pytest.mark.django_db
def test_the_admin_refuses_the_same_mapping_with_the_same_words(client_for, hubspot):
    connection = make_connection("hubspot", hubspot)
    client = client_for(roles.INTEGRATION_ADMIN)

    response = client.post(
        "/admin/integrations/sync/add/",
        _sync_post(
            connection,
            **{
                "mappings-0-source_field": "city",
                "mappings-0-destination_field": "numberofemployees",
            },
        ),
    )

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert CITY_TO_EMPLOYEES in str(errors["destination_field"])
    assert not Sync.objects.exists()


@pytest.mark.django_db
def test_the_configure_api_refuses_it_by_path(api, user_with_role, hubspot):
    integration_admin = user_with_role(roles.INTEGRATION_ADMIN)
    doc = document(hubspot)
    doc["syncs"][0]["mappings"] = [
        {"source_field": "city", "destination_field": "numberofemployees"}
    ]

    response = api(integration_admin).post(CONFIGURE, doc, format="json")

    assert response.status_code == 400
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert CITY_TO_EMPLOYEES in errors["syncs[0].mappings[0].destination_field"], errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source", "transform", "target"),
    [
        ("employees", "", "numberofemployees"),  # a number into a number
        ("city", "number", "numberofemployees"),  # the user says the text holds numbers
        ("updated_at", "epoch_ms", "numberofemployees"),
        ("city", "", "name"),  # anything into text
    ],
)
def test_compatible_mappings_are_accepted(hubspot, source, transform, target):
    sync = _sync(make_connection("hubspot", hubspot))

    sync_save(
        sync=sync,
        mappings=[FieldMapping(source_field=source, transform=transform, destination_field=target)],
    )

    assert Sync.objects.filter(pk=sync.pk).exists()


@pytest.mark.django_db
def test_a_required_destination_field_must_be_mapped(mailchimp):
    mailchimp.add_merge_field("list0001", "REGION", "text", required=True)
    sync = _sync(
        make_connection("mailchimp", mailchimp),
        dataset="contacts",
        destination_object="members",
        match_source_field="email",
        match_destination_field="email_address",
        destination_config={"list_id": "list0001"},
        consent_purpose="email_marketing",
    )

    with pytest.raises(ValidationError) as refused:
        sync_save(
            sync=sync, mappings=[FieldMapping(source_field="first_name", destination_field="FNAME")]
        )

    assert "Mailchimp requires REGION: map them" in str(refused.value)
