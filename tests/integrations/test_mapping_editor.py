"""The mapping editor in the sync admin: sources picked from the dataset's fields (type and an
example value), destinations from the vendor's writable fields (label, type, required,
unique), the transform the two types suggest, and the one validator's reasons on the row."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.forms import CheckboxInput, MultipleChoiceField
from guardian.shortcuts import assign_perm

from audit.models import AccessLog
from exports.datasets import CLIENTS, DATASETS
from integrations.connectors.base import DestinationField
from integrations.mapping_rules import (
    _TAKES,
    _TRANSFORMED,
    mapping_problems,
    suggested_transforms,
)
from integrations.mapping_widgets import destination_label
from integrations.models import FieldMapping
from mktintegration import roles
from tests.factories import CompanyFactory, ContactFactory
from tests.integrations.conftest import make_sync

EDITOR_READ = "example values in the sync's mapping editor"
CONTACT_MAPPINGS = [("email", "email"), ("first_name", "firstname"), ("country", "country")]


def _page(client, sync):
    return client.get(f"/admin/integrations/sync/{sync.pk}/change/")


def _rows(response):
    (formset,) = [f.formset for f in response.context["inline_admin_formsets"]]
    return formset


def _labels(field) -> dict[str, str]:
    return {value: str(label) for value, label in field.choices}


def _post_data(response) -> dict:
    """What the browser sends back for the page as rendered (every form's current values)."""
    data: dict = {}
    formset = _rows(response)
    for form in [response.context["adminform"].form, formset.management_form, *formset.forms]:
        for bound in form:
            value = bound.value()
            if isinstance(bound.field.widget, CheckboxInput):
                if value:
                    data[bound.html_name] = "on"
                continue
            if isinstance(bound.field, MultipleChoiceField):  # one value each, if any
                if value:
                    data[bound.html_name] = [str(v) for v in value]
                continue
            data[bound.html_name] = "" if value is None else str(value)
    return data


@pytest.fixture
def manager(user_with_role, company_sync):
    user = user_with_role(roles.MARKETING_MANAGER)
    for perm in ("view_sync", "change_sync"):
        assign_perm(f"integrations.{perm}", user, company_sync)
    assign_perm("integrations.view_connection", user, company_sync.connection)
    return user


@pytest.mark.django_db
def test_a_manager_picks_dataset_fields_and_hubspot_properties(client, manager, company_sync):
    CompanyFactory(name="Acme Robotics GmbH", employees=250)
    client.force_login(manager)

    response = _page(client, company_sync)

    assert response.status_code == 200
    row = _rows(response).forms[0]
    sources = _labels(row.fields["source_field"])
    assert sources["employees"] == "employees (int), e.g. 250"
    assert sources["name"] == "name (text), e.g. Acme Robotics GmbH"
    assert set(sources) == {"", *CLIENTS.field_names}
    targets = _labels(row.fields["destination_field"])
    assert targets["external_id"] == "External ID [external_id] (string, unique)"
    assert targets["numberofemployees"] == "Number of Employees [numberofemployees] (number)"
    assert "hs_object_id" not in targets  # read-only at HubSpot: not offered
    html = response.content.decode()
    assert '<select name="mappings-0-source_field"' in html
    assert '<option value="numberofemployees" selected data-kind="number">' in html
    assert '<option value="employees" selected data-type="int" title="number of employees">' in html
    # "Add another" copies the empty row: it has the same lists.
    assert '<select name="mappings-__prefix__-destination_field"' in html
    assert "mktintegration/mapping_editor.js" in html
    assert "{first_name}" not in html and "{lifecycle_stage}" in html  # the template's help


@pytest.mark.django_db
def test_a_required_vendor_field_says_so_in_its_choice():
    spec = DestinationField("LastName", "Last Name", type="string", required=True)

    assert destination_label(spec) == "Last Name [LastName] (string, required)"


@pytest.mark.django_db
def test_a_mapping_chosen_from_the_lists_is_saved(client, manager, company_sync):
    client.force_login(manager)
    data = _post_data(_page(client, company_sync))
    new = len(company_sync.mappings.all())  # the empty row after the saved ones
    data.update(
        {
            f"mappings-{new}-source_field": "annual_revenue",
            f"mappings-{new}-destination_field": "annualrevenue",
            f"mappings-{new}-position": str(new),
        }
    )

    response = client.post(f"/admin/integrations/sync/{company_sync.pk}/change/", data)

    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        _rows(response).non_form_errors(),
    )
    assert FieldMapping.objects.filter(
        sync=company_sync, source_field="annual_revenue", destination_field="annualrevenue"
    ).exists()


@pytest.mark.django_db
def test_an_incompatible_pair_is_refused_on_its_row_with_the_reason(client, manager, company_sync):
    client.force_login(manager)
    data = _post_data(_page(client, company_sync))
    data["mappings-0-source_field"] = "city"  # row 0 maps to "name"; row 3 takes a number
    data["mappings-3-source_field"] = "city"

    response = client.post(f"/admin/integrations/sync/{company_sync.pk}/change/", data)

    assert response.status_code == 200
    rows = _rows(response).forms
    assert rows[0].errors == {}
    assert "numberofemployees at HubSpot takes a number; city (text) is not one" in str(
        rows[3].errors["destination_field"]
    )
    assert FieldMapping.objects.get(sync=company_sync, position=3).source_field == "employees"


@pytest.mark.django_db
def test_a_name_not_among_the_choices_is_refused_by_the_validator(client, manager, company_sync):
    client.force_login(manager)
    data = _post_data(_page(client, company_sync))
    data["mappings-1-destination_field"] = "hs_object_id"

    response = client.post(f"/admin/integrations/sync/{company_sync.pk}/change/", data)

    assert _rows(response).forms[1].errors["destination_field"] == [
        "'hs_object_id' is read-only at the destination"
    ]


@pytest.mark.django_db
def test_the_suggested_transform_is_marked_on_the_row(client, manager, company_sync):
    FieldMapping.objects.filter(sync=company_sync, position=3).update(source_field="city")
    client.force_login(manager)

    response = _page(client, company_sync)

    transform = _rows(response).forms[3].fields["transform"]
    assert _labels(transform)["number"] == "number (suggested)"
    assert transform.widget.attrs["data-suggested"] == "number"
    assert "data-suggested" not in _rows(response).forms[0].fields["transform"].widget.attrs


def test_every_suggested_transform_passes_the_validator():
    for pair, transform in suggested_transforms().items():
        kind = pair.split(":")[1]
        assert kind not in _TAKES or _TRANSFORMED[transform] in _TAKES[kind], pair


@pytest.mark.django_db
def test_a_personal_example_is_shown_only_with_the_dataset_permission(
    client, user_with_role, hubspot_connection
):
    ContactFactory(email="grace@example.com", first_name="Grace", country="GB")
    sync = make_sync(
        hubspot_connection,
        dataset="contacts",
        obj="contacts",
        mappings=CONTACT_MAPPINGS,
        match=("email", "email"),
    )
    manager = user_with_role(roles.MARKETING_MANAGER)  # no exports.export_contacts
    for perm in ("view_sync", "change_sync"):
        assign_perm(f"integrations.{perm}", manager, sync)
    client.force_login(manager)

    sources = _labels(_rows(_page(client, sync)).forms[0].fields["source_field"])

    assert sources["email"] == "email (text)"
    assert sources["first_name"] == "first_name (text)"
    assert sources["country"].endswith("e.g. GB")
    assert not AccessLog.objects.filter(dataset="contacts", detail=EDITOR_READ).exists()

    manager.user_permissions.add(Permission.objects.get(codename="export_contacts"))
    manager = type(manager).objects.get(pk=manager.pk)  # a fresh permission cache
    client.force_login(manager)
    sources = _labels(_rows(_page(client, sync)).forms[0].fields["source_field"])

    assert sources["email"] == "email (text), e.g. grace@example.com"
    logged = AccessLog.objects.get(dataset="contacts", detail=EDITOR_READ)
    assert (logged.user_id, logged.fields) == (
        manager.pk,
        ["email", "first_name", "last_name", "title"],
    )


@pytest.mark.django_db
def test_an_auditor_sees_no_examples(client, user_with_role, company_sync):
    CompanyFactory(name="Acme Robotics GmbH")
    auditor = user_with_role(roles.AUDITOR)
    client.force_login(auditor)

    response = _page(client, company_sync)

    assert response.status_code == 200
    assert "Acme Robotics" not in response.content.decode()


@pytest.mark.django_db
def test_an_unreachable_vendor_leaves_a_text_input_that_says_why(
    client, manager, company_sync, hubspot
):
    hubspot.fail_next(20, 503, writes_only=False, path_contains="/properties")
    client.force_login(manager)

    response = _page(client, company_sync)

    assert response.status_code == 200
    field = _rows(response).forms[0].fields["destination_field"]
    assert field.help_text.startswith("Type the field's name: HubSpot's fields could not be read")
    assert "503" in field.help_text
    assert '<input type="text" name="mappings-0-destination_field"' in response.content.decode()

    saved = client.post(f"/admin/integrations/sync/{company_sync.pk}/change/", _post_data(response))

    assert saved.status_code == 200  # not saved unchecked, and not a server error
    assert "Could not read the destination's fields to check the mapping" in " ".join(
        _rows(saved).non_form_errors()
    )


@pytest.mark.django_db
def test_a_new_sync_types_the_destination_and_says_why(client_for):
    client = client_for(roles.MARKETING_MANAGER)

    response = client.get("/admin/integrations/sync/add/")

    assert response.status_code == 200
    row = _rows(response).forms[0]
    assert "choose and save the connection" in row.fields["destination_field"].help_text
    groups = [group for group, _ in row.fields["source_field"].choices[1:]]
    assert [str(label) for label in groups] == [d.label for d in DATASETS.values()]


@pytest.mark.django_db
def test_a_user_without_view_on_the_sync_gets_404(client, user_with_role, company_sync):
    client.force_login(user_with_role(roles.MARKETING_MANAGER))

    assert _page(client, company_sync).status_code == 404


def test_a_number_into_an_e_mail_field_is_refused_with_the_reason():
    email = DestinationField("email", "Email", kind="email", unique=True)
    mapping = FieldMapping(source_field="id", destination_field="email")

    (problem,) = mapping_problems(
        [mapping], dataset=DATASETS["contacts"], fields={"email": email}, label="HubSpot"
    )

    assert (problem.index, problem.field) == (0, "destination_field")
    assert problem.message == (
        "email at HubSpot takes an e-mail address; id (int) is not one: "
        "map a text field holding e-mail addresses"
    )
