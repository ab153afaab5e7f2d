"""The sync form's names are picked from lists: the destination object, the dataset's match
field and the object's declared match field; what is posted is still judged by the one sync
validator."""

import re

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm

from mktintegration import roles
from tests.integrations.conftest import make_connection, make_sync
from tests.integrations.test_sync_editor import _post

ADD = "/admin/integrations/sync/add/"
pytestmark = pytest.mark.django_db


def _options(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select, f"{name} is not a list to pick from"
    return re.findall(r'<option value="([^"]*)"', select.group(1))


@pytest.fixture
def manager(user_with_role):
    user = user_with_role(roles.MARKETING_MANAGER, username="manny")
    client = Client()
    client.force_login(user)
    client.user = user
    return client


def test_a_new_sync_picks_its_object_and_source_match_field_from_lists(manager):
    page = manager.get(ADD).content.decode()

    objects = _options(page, "destination_object")
    assert {"companies", "contacts", "members", "leads"} <= set(objects)
    # The dataset shown first (clients): its fields.
    assert {"external_id", "domain", "id"} <= set(_options(page, "match_source_field"))


def test_a_saved_sync_offers_its_objects_match_fields(manager, mailchimp):
    connection = make_connection("mailchimp", mailchimp)
    sync = make_sync(
        connection,
        dataset="contacts",
        obj="members",
        mappings=[("first_name", "FNAME")],
        match=("email", "email_address"),
        destination_config={"list_id": "list0001"},
    )
    assign_perm("integrations.view_connection", manager.user, connection)
    assign_perm("integrations.change_sync", manager.user, sync)
    assign_perm("integrations.view_sync", manager.user, sync)

    page = manager.get(f"/admin/integrations/sync/{sync.pk}/change/").content.decode()

    assert _options(page, "destination_object") == ["", "members"]
    assert _options(page, "match_destination_field") == ["", "email_address"]
    assert "email" in _options(page, "match_source_field")
    assert "company_name" in _options(page, "match_source_field")  # the contacts dataset's


def test_an_object_the_tool_does_not_have_is_refused_by_the_validator(manager, hubspot):
    connection = make_connection("hubspot", hubspot)
    assign_perm("integrations.view_connection", manager.user, connection)

    response = manager.post(ADD, _post(connection, destination_object="audiences"))

    assert response.status_code == 200  # the form again, with the reason on the field
    assert "HubSpot has no object &#x27;audiences&#x27;; objects: companies, contacts." in (
        response.content.decode()
    )


def test_an_add_page_opened_for_a_connection_and_object_offers_that_objects_choices(
    manager, mailchimp
):
    connection = make_connection("mailchimp", mailchimp)
    assign_perm("integrations.view_connection", manager.user, connection)

    page = manager.get(f"{ADD}?connection={connection.pk}&destination_object=members")

    text = page.content.decode()
    assert _options(text, "destination_object") == ["", "members"]
    assert _options(text, "match_destination_field") == ["", "email_address"]
    assert "Audience" in text  # Mailchimp's declared setting, as a field


# --- objects that match on any unique field ------------------------------------------------


def test_hubspot_companies_match_on_a_unique_property_picked_from_the_portals(manager, hubspot):
    hubspot.add_property("companies", "crm_code", unique=True, label="CRM code")
    connection = make_connection("hubspot", hubspot)
    assign_perm("integrations.view_connection", manager.user, connection)

    page = manager.get(f"{ADD}?connection={connection.pk}&destination_object=companies")

    text = page.content.decode()
    # The portal's unique properties only: name and domain are not unique there.
    assert _options(text, "match_destination_field") == ["", "external_id", "crm_code"]
    assert "CRM code [crm_code]" in text


def test_a_unique_field_the_portal_no_longer_has_stays_selected_and_marked(manager, hubspot):
    connection = make_connection("hubspot", hubspot)
    sync = make_sync(connection, mappings=[("name", "name")], match=("domain", "domain"))
    assign_perm("integrations.view_connection", manager.user, connection)
    assign_perm("integrations.change_sync", manager.user, sync)
    assign_perm("integrations.view_sync", manager.user, sync)

    text = manager.get(f"/admin/integrations/sync/{sync.pk}/change/").content.decode()

    assert _options(text, "match_destination_field") == ["", "external_id", "domain"]
    assert "not a match field of this object" in text


def test_an_unreachable_vendor_leaves_the_match_field_a_text_input_saying_why(manager, hubspot):
    connection = make_connection("hubspot", hubspot)
    assign_perm("integrations.view_connection", manager.user, connection)
    hubspot.stop()

    page = manager.get(f"{ADD}?connection={connection.pk}&destination_object=companies")

    assert page.status_code == 200
    text = page.content.decode()
    assert re.search(r'<input type="text" name="match_destination_field"', text)
    assert "could not be read" in text and "type its name" in text


def test_an_add_page_opened_for_a_connection_and_object_offers_its_mapping_fields(manager, hubspot):
    connection = make_connection("hubspot", hubspot)
    assign_perm("integrations.view_connection", manager.user, connection)

    page = manager.get(
        f"{ADD}?connection={connection.pk}&dataset=clients&destination_object=companies"
        "&name=Companies"
    ).content.decode()

    assert {"name", "domain", "numberofemployees"} <= set(
        _options(page, "mappings-0-destination_field")
    )
    assert "name" in _options(page, "mappings-0-source_field")
    assert 'value="Companies"' in page  # what the page re-opened with is kept


def test_an_add_page_does_not_read_the_fields_of_a_connection_not_granted(manager, hubspot):
    connection = make_connection("hubspot", hubspot)

    page = manager.get(
        f"{ADD}?connection={connection.pk}&dataset=clients&destination_object=companies"
    ).content.decode()

    assert 'name="mappings-0-destination_field"' in page
    assert not re.search(r'<select name="mappings-0-destination_field"', page)
    assert not [r for r in hubspot.requests if "properties" in r.path]
