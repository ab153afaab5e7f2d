"""The sync editor: filters as fields with the matching records counted, and the connector's
destination settings (Mailchimp's audience) as a choice of what the vendor offers."""

import pytest
from django.test import Client
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.models import AccessLog
from exports.backbone.models import CompanyMetrics
from exports.datasets import CLIENTS
from exports.query import export_query_parse
from integrations.models import Sync
from mktintegration import roles
from tests.factories import CompanyFactory, ContactFactory
from tests.integrations.conftest import make_connection, make_sync
from tests.integrations.contract.profiles.salesforce import connected

ADD = "/admin/integrations/sync/add/"
COUNT = "/admin/integrations/sync/filter-count/"
pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def manager(user_with_role):
    return user_with_role(roles.MARKETING_MANAGER, username="manny")


@pytest.fixture
def connection(hubspot, manager):
    connection = make_connection("hubspot", hubspot)
    assign_perm("integrations.view_connection", manager, connection)
    return connection


@pytest.fixture
def companies():
    """Four companies: three in Germany (health 20, 60, 90), one in France (health 80)."""
    made = []
    for country, health, stage in (("DE", 20, "lead"), ("DE", 60, "customer"), ("DE", 90, "mql")):
        made.append(CompanyFactory(country=country, lifecycle_stage=stage))
        CompanyMetrics.objects.create(
            company=made[-1], health_score=health, updated_at=timezone.now()
        )
    made.append(CompanyFactory(country="FR", lifecycle_stage="customer"))
    CompanyMetrics.objects.create(company=made[-1], health_score=80, updated_at=timezone.now())
    return made


def _post(connection, **overrides):
    data = {
        "name": "German customers to HubSpot",
        "connection": connection.pk,
        "dataset": "clients",
        "filters_for": "clients",
        "filters": "{}",
        "destination_object": "companies",
        "destination_config": "{}",
        "config_for": "",
        "mode": "upsert",
        "match_source_field": "external_id",
        "match_destination_field": "external_id",
        "consent_purpose": "",
        "cron": "",
        "every_minutes": "",
        "enabled": "on",
        "mirror_max_delete_share": "0.1",
        "lookback_minutes": "15",
        "mappings-TOTAL_FORMS": "1",
        "mappings-INITIAL_FORMS": "0",
        "mappings-MIN_NUM_FORMS": "0",
        "mappings-MAX_NUM_FORMS": "1000",
        "mappings-0-source_field": "name",
        "mappings-0-template": "",
        "mappings-0-destination_field": "name",
        "mappings-0-transform": "",
        "mappings-0-position": "0",
    }
    data.update(overrides)
    return data


def _form(response):
    return response.context["adminform"].form


# --- filters as fields -------------------------------------------------------------------


def test_the_sync_form_shows_the_clients_filters_as_fields(manager, connection):
    response = _client(manager).get(ADD, {"dataset": "clients"})

    form = _form(response)
    text = response.content.decode()
    names = [name for name in form.fields if name.startswith("filter_")]
    assert names == [f"filter_{name}" for name in CLIENTS.filter_names]
    stages = [value for value, _ in form.fields["filter_lifecycle_stage"].choices]
    assert stages[:3] == ["subscriber", "lead", "mql"] and "churned" in stages
    assert 'type="checkbox" name="filter_region" value="eu"' in text
    assert 'name="filter_country"' in text  # free text: countries are not enumerated
    health = form.fields["filter_min_health_score"].widget.attrs
    assert (health["min"], health["max"]) == (0, 100)
    assert 'type="datetime-local" name="filter_updated_since"' in text
    assert [v for v, _ in form.fields["filter_is_customer"].choices] == ["", "true", "false"]
    assert '<textarea name="filters"' not in text  # no JSON box
    assert "mktintegration/sync_filters.js" in text


def test_the_dataset_decides_which_filters_show(manager, connection):
    form = _form(_client(manager).get(ADD, {"dataset": "contacts"}))

    assert "filter_company_external_id" in form.fields
    assert "filter_is_customer" not in form.fields and "filter_min_health_score" not in form.fields


def test_a_manager_saves_country_and_health_filters_in_the_api_shape(manager, connection):
    response = _client(manager).post(
        ADD,
        _post(
            connection,
            filter_country="DE, FR",
            filter_min_health_score="50",
            filter_lifecycle_stage=["customer", "mql"],
            filter_is_customer="false",
            filter_updated_since="2026-01-31T09:00",
        ),
    )

    assert response.status_code == 302, _form(response).errors
    sync = Sync.objects.get()
    assert sync.filters == {
        "updated_since": "2026-01-31T09:00:00Z",
        "lifecycle_stage": "customer,mql",
        "country": "DE,FR",
        "is_customer": False,
        "min_health_score": 50,
    }
    # What the export API reads from the same filters written by hand.
    by_hand = export_query_parse(
        CLIENTS,
        {
            "updated_since": "2026-01-31T09:00:00Z",
            "lifecycle_stage": "customer,mql",
            "country": "DE,FR",
            "is_customer": "false",
            "min_health_score": "50",
        },
    )
    assert export_query_parse(CLIENTS, sync.filters).filters == by_hand.filters


def test_a_saved_sync_shows_its_filters_and_count_without_script(manager, connection, companies):
    sync = make_sync(connection, filters={"country": "DE", "min_health_score": 50})
    assign_perm("integrations.change_sync", manager, sync)

    response = _client(manager).get(f"/admin/integrations/sync/{sync.pk}/change/")

    form = _form(response)
    assert form["filter_country"].value() == "DE"
    assert form["filter_min_health_score"].value() == "50"
    assert "2 records match" in response.content.decode()


def test_a_manager_changes_the_filters_of_a_saved_sync(manager, connection):
    sync = make_sync(connection, mappings=[], filters={"country": "DE", "is_customer": True})
    assign_perm("integrations.change_sync", manager, sync)
    edited = _post(connection, name=sync.name, filter_country="", filter_region=["eu", "uk"])

    response = _client(manager).post(f"/admin/integrations/sync/{sync.pk}/change/", edited)

    assert response.status_code == 302, _form(response).errors
    sync.refresh_from_db()
    assert sync.filters == {"region": "eu,uk"}  # the cleared country and flag are gone


def test_the_editor_needs_nothing_the_content_security_policy_forbids(manager, connection):
    from tests.mktintegration.test_csp import _inline

    sync = make_sync(connection, filters={"country": "DE"})
    assign_perm("integrations.change_sync", manager, sync)
    client = _client(manager)
    for url in (ADD, f"/admin/integrations/sync/{sync.pk}/change/"):
        response = client.get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert _inline(response.content.decode()).found == [], url


def test_an_out_of_range_number_is_the_fields_error_with_the_allowed_range(manager, connection):
    response = _client(manager).post(ADD, _post(connection, filter_min_health_score="150"))

    assert response.status_code == 200
    errors = _form(response).errors
    assert "from 0 to 100" in str(errors["filter_min_health_score"])
    assert "filters" not in errors
    assert not Sync.objects.exists()


def test_an_unknown_choice_value_and_a_bad_date_are_errors_of_their_fields(manager, connection):
    response = _client(manager).post(
        ADD, _post(connection, filter_updated_since="31/01/2026", filter_region=["mars"])
    )

    errors = _form(response).errors
    assert "not an ISO 8601 date" in str(errors["filter_updated_since"])
    assert "filter_region" in errors
    assert not Sync.objects.exists()


@pytest.mark.parametrize("shown", [{"filter_country": "DE"}, {"filter_is_customer": "true"}])
def test_filters_shown_for_another_dataset_are_not_saved_unseen(manager, connection, shown):
    # The page showed the clients filters; the dataset was changed to metrics before saving.
    response = _client(manager).post(ADD, _post(connection, dataset="metrics", **shown))

    form = _form(response)
    assert "now those of Company metrics" in str(form.errors["dataset"])
    assert "filter_max_health_score" in form.fields  # the metrics filters are shown now
    assert not Sync.objects.exists()


def test_a_dataset_changed_before_any_filter_was_set_saves(manager, connection):
    response = _client(manager).post(ADD, _post(connection, dataset="metrics"))

    assert response.status_code == 302, _form(response).errors
    assert Sync.objects.get().filters == {}


# --- the count -----------------------------------------------------------------------------


def test_the_count_view_counts_the_seeded_companies(manager, connection, companies):
    client = _client(manager)

    def count(**params):
        response = client.get(COUNT, {"dataset": "clients", **params})
        assert response.status_code == 200, response.content
        return response.json()

    assert count()["count"] == 4
    assert count(filter_country="DE")["count"] == 3
    assert count(filter_country="DE,FR", filter_min_health_score="70")["count"] == 2
    assert count(filter_lifecycle_stage=["customer", "mql"])["count"] == 3
    assert count(filter_country="DE", filter_lifecycle_stage="lead")["text"] == "1 record matches"


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"filter_min_health_score": "150"}, "filter_min_health_score", "from 0 to 100"),
        ({"filter_min_health_score": "lots"}, "filter_min_health_score", "not a whole number"),
        ({"filter_region": "mars"}, "filter_region", "mars"),
        ({"filter_updated_since": "yesterday"}, "filter_updated_since", "ISO 8601"),
        ({"filter_country": "D" * 5000}, "filter_country", "at most"),
        ({"dataset": "planets"}, "dataset", "clients"),
        ({"sync": "first"}, "sync", "id of a sync"),
    ],
)
def test_bad_count_input_is_a_400_naming_the_field(manager, connection, params, field, says):
    response = _client(manager).get(COUNT, {"dataset": "clients", **params})

    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and says in body["error"], body


def test_the_count_is_for_who_may_add_or_change_syncs(
    manager, connection, user_with_role, companies
):
    mine = make_sync(connection, name="mine")
    theirs = make_sync(connection, name="theirs")
    seen = make_sync(connection, name="seen")
    assign_perm("integrations.change_sync", manager, mine)
    assign_perm("integrations.view_sync", manager, seen)
    client = _client(manager)

    assert client.get(COUNT, {"dataset": "clients", "sync": mine.pk}).status_code == 200
    assert client.get(COUNT, {"dataset": "clients", "sync": theirs.pk}).status_code == 404
    assert client.get(COUNT, {"dataset": "clients", "sync": seen.pk}).status_code == 403
    # An auditor sees every sync and changes none; an analyst sees none.
    for role, on_sync in ((roles.AUDITOR, 403), (roles.MARKETING_ANALYST, 404)):
        other = _client(user_with_role(role))
        assert other.get(COUNT, {"dataset": "clients"}).status_code == 403
        assert other.get(COUNT, {"dataset": "clients", "sync": mine.pk}).status_code == on_sync


def test_a_count_of_contacts_is_access_logged(manager, connection):
    ContactFactory(country="DE")
    ContactFactory(country="FR")

    response = _client(manager).get(COUNT, {"dataset": "contacts", "filter_country": "FR"})

    assert response.json()["count"] == 1
    (row,) = AccessLog.objects.filter(dataset="contacts")
    assert (row.channel, row.actor, row.filters) == ("admin", "user:manny", {"country": "FR"})
    assert "1 matching records counted" in row.detail
    _client(manager).get(COUNT, {"dataset": "clients"})
    assert not AccessLog.objects.filter(dataset="clients").exists()  # no personal data


# --- destination settings ------------------------------------------------------------------


def _members_post(connection, **overrides):
    return _post(
        connection,
        name="Newsletter",
        dataset="contacts",
        filters_for="contacts",
        destination_object="members",
        config_for=f"{connection.pk}:members",
        match_source_field="email",
        match_destination_field="email_address",
        consent_purpose="email_marketing",
        **{"mappings-0-source_field": "first_name", "mappings-0-destination_field": "FNAME"},
        **overrides,
    )


@pytest.fixture
def admin_client(client_for):
    return client_for(roles.INTEGRATION_ADMIN)


def test_the_mailchimp_audience_is_a_choice_of_the_accounts_lists(admin_client, mailchimp):
    mailchimp.add_list("news0002", "Newsletter")
    connection = make_connection("mailchimp", mailchimp)
    query = {"connection": connection.pk, "destination_object": "members", "dataset": "contacts"}

    page = admin_client.get(ADD, query)
    field = _form(page).fields["config_list_id"]
    assert list(field.choices) == [
        ("", "---------"),
        ("list0001", "Default list (list0001)"),
        ("news0002", "Newsletter (news0002)"),
    ]
    assert '<textarea name="destination_config"' not in page.content.decode()

    saved = admin_client.post(ADD, _members_post(connection, config_list_id="news0002"))

    assert saved.status_code == 302, _form(saved).errors
    assert Sync.objects.get().destination_config == {"list_id": "news0002"}


def test_no_audience_chosen_is_the_audience_fields_error(admin_client, mailchimp):
    connection = make_connection("mailchimp", mailchimp)

    response = admin_client.post(ADD, _members_post(connection, config_list_id=""))

    assert "needs 'list_id'" in _form(response).errors["config_list_id"][0]
    assert not Sync.objects.exists()


def test_a_saved_audience_is_selected_on_the_sync_page(admin_client, mailchimp):
    mailchimp.add_list("news0002", "Newsletter")
    connection = make_connection("mailchimp", mailchimp)
    sync = make_sync(
        connection,
        dataset="contacts",
        obj="members",
        match=("email", "email_address"),
        mappings=[("first_name", "FNAME")],
        destination_config={"list_id": "news0002"},
        consent_purpose="email_marketing",
    )

    form = _form(admin_client.get(f"/admin/integrations/sync/{sync.pk}/change/"))

    assert form["config_list_id"].value() == "news0002"


def test_an_unreachable_vendor_leaves_a_text_input_saying_why(admin_client, mailchimp):
    connection = make_connection("mailchimp", mailchimp)
    mailchimp.stop()
    query = {"connection": connection.pk, "destination_object": "members", "dataset": "contacts"}

    response = admin_client.get(ADD, query)

    assert response.status_code == 200
    field = _form(response).fields["config_list_id"]
    assert not hasattr(field, "choices")
    assert "could not be read" in field.help_text and "type the id" in field.help_text
    assert 'name="config_list_id"' in response.content.decode()


def test_an_object_without_settings_shows_no_json_box(manager, connection):
    query = {"connection": connection.pk, "destination_object": "companies"}

    response = _client(manager).get(ADD, query)

    assert '<textarea name="destination_config"' not in response.content.decode()
    saved = _client(manager).post(ADD, _post(connection))
    assert saved.status_code == 302, _form(saved).errors
    assert Sync.objects.get().destination_config == {}


def test_settings_stored_for_an_object_that_declares_none_stay_in_the_json_box(
    admin_client, connection
):
    sync = make_sync(connection, destination_config={"legacy": "kept"})

    text = admin_client.get(f"/admin/integrations/sync/{sync.pk}/change/").content.decode()

    assert '<textarea name="destination_config"' in text and "legacy" in text


def test_an_add_page_before_the_object_is_chosen_keeps_the_json_box(manager, connection):
    text = _client(manager).get(ADD).content.decode()

    assert '<textarea name="destination_config"' in text


def test_a_manager_is_not_shown_the_lists_of_a_connection_not_granted(manager, mailchimp):
    connection = make_connection("mailchimp", mailchimp)
    query = {"connection": connection.pk, "destination_object": "members", "dataset": "contacts"}

    form = _form(_client(manager).get(ADD, query))

    assert "config_list_id" not in form.fields
    assert not [r for r in mailchimp.requests if r.path.endswith("/lists")]


def test_constant_contact_lists_are_ticks_of_the_accounts_lists(admin_client, constantcontact):
    from tests.fakes.constantcontact import NEWSLETTER_LIST_ID
    from tests.integrations.contract.profiles.constantcontact import ConstantContactProfile

    sync = make_sync(
        ConstantContactProfile().connection(constantcontact),
        dataset="contacts",
        obj="contacts",
        mappings=[("first_name", "first_name")],
        match=("email", "email"),
        consent_purpose="email_marketing",
        destination_config={"list_ids": [NEWSLETTER_LIST_ID]},
    )

    form = _form(admin_client.get(f"/admin/integrations/sync/{sync.pk}/change/"))

    field = form.fields["config_list_ids"]
    assert (NEWSLETTER_LIST_ID, f"Newsletter ({NEWSLETTER_LIST_ID})") in list(field.choices)
    assert form["config_list_ids"].value() == [NEWSLETTER_LIST_ID]


def test_a_salesforce_custom_object_is_a_choice_of_the_orgs_custom_objects(
    admin_client, salesforce
):
    from tests.fakes.salesforce_store import FieldDef

    salesforce.add_object(
        "Invoice__c", [FieldDef("External_Id__c", external_id=True, unique=True, custom=True)]
    )
    connection = connected("salesforce", salesforce)
    query = {"connection": connection.pk, "destination_object": "custom"}

    field = _form(admin_client.get(ADD, query)).fields["config_sobject"]

    # Standard objects are objects of their own; only the org's custom ones are listed.
    assert list(field.choices) == [("", "---------"), ("Invoice__c", "Invoice (Invoice__c)")]


LEAD_MAPPINGS = [("email", "Email"), ("last_name", "LastName"), ("company_name", "Company")]


def _lead_post(connection, **overrides):
    return _post(
        connection,
        name="Leads",
        dataset="contacts",
        filters_for="contacts",
        destination_object="Lead",
        config_for=f"{connection.pk}:Lead",
        match_source_field="email",
        match_destination_field="External_Id__c",
        consent_purpose="email_marketing",
        **_mapping_rows(
            [("email", "Email"), ("last_name", "LastName"), ("company_name", "Company")]
        ),
        **overrides,
    )


def _mapping_rows(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The mapping formset's fields for these (source, destination) rows."""
    rows = {"mappings-TOTAL_FORMS": str(len(pairs))}
    for i, (source, target) in enumerate(pairs):
        rows |= {
            f"mappings-{i}-source_field": source,
            f"mappings-{i}-destination_field": target,
            f"mappings-{i}-template": "",
            f"mappings-{i}-transform": "",
            f"mappings-{i}-position": str(i),
        }
    return rows


def test_salesforce_lead_routing_is_a_tick_box_saved_as_true(admin_client, salesforce):
    connection = connected("salesforce", salesforce)
    query = {"connection": connection.pk, "destination_object": "Lead", "dataset": "contacts"}
    page = admin_client.get(ADD, query)
    assert 'type="checkbox" name="config_contacts_first"' in page.content.decode()

    saved = admin_client.post(ADD, _lead_post(connection, config_contacts_first="on"))

    assert saved.status_code == 302, _form(saved).errors
    sync = Sync.objects.get()
    assert sync.destination_config == {"contacts_first": True}
    change = f"/admin/integrations/sync/{sync.pk}/change/"
    assert _form(admin_client.get(change))["config_contacts_first"].value() is True

    data = _lead_post(connection, **{"mappings-INITIAL_FORMS": "3"})  # the box left unticked
    for i, mapping in enumerate(sync.mappings.order_by("position")):
        data[f"mappings-{i}-id"], data[f"mappings-{i}-sync"] = mapping.pk, sync.pk
    assert admin_client.post(change, data).status_code == 302

    sync.refresh_from_db()
    assert sync.destination_config == {}


def test_a_setting_of_the_wrong_type_is_refused_naming_it(salesforce):
    from django.core.exceptions import ValidationError

    from integrations.services import sync_validate

    sync = make_sync(
        connected("salesforce", salesforce),
        dataset="contacts",
        obj="Lead",
        mappings=[("email", "Email")],
        match=("email", "External_Id__c"),
        consent_purpose="email_marketing",
        destination_config={"contacts_first": "yes"},
    )

    with pytest.raises(ValidationError) as raised:
        sync_validate(sync, list(sync.mappings.all()))

    assert raised.value.message_dict["destination_config"] == [
        "'contacts_first' is true or false, not \"yes\"."
    ]
