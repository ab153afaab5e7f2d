"""Browser journeys, one per role, in Chromium against a live server (make browser).

Each step of a journey is a page a person reads: checked by axe-core and saved as a screenshot
(conftest.Journey.step)."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm

from exports.backbone.models import CompanyMetrics
from integrations.models import Connection, DeadLetter, Sync
from mktintegration import roles
from tests.factories import CompanyFactory
from tests.integrations.conftest import make_connection, make_sync

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RULE = "hq_country must be a two-letter country code (the account's validation rule)"


def expect():
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect


def _wait_for_run(page, *, timeout: float = 45) -> str:
    """Reload the run page until the run no longer refreshes itself (finished); its status."""
    deadline = time.monotonic() + timeout
    refresh = page.locator("[data-refresh-seconds]")
    if refresh.count():  # while it runs, the page reloads itself; a user can pause that
        refresh.get_by_role("button", name="Pause updates").click()
        expect()(refresh.get_by_role("status")).to_have_text("Updates paused.")
    while refresh.count():
        assert time.monotonic() < deadline, f"the run did not finish in {timeout:.0f} s"
        page.wait_for_timeout(500)
        page.reload()
    return page.locator(".mkt-run-facts dd").first.inner_text()


def _run_now(journey) -> None:
    """Run now on the sync's page, then the "run N queued" link to the run page."""
    page = journey.page
    page.get_by_role("button", name="Run now").click()
    link = page.locator(".messagelist a", has_text=re.compile(r"^run \d+$"))
    expect()(link).to_be_visible()
    link.click()
    expect()(page.locator("h2", has_text=re.compile(r"^Run \d+ of "))).to_be_visible()


def _save_and_continue(page) -> None:
    page.get_by_role("button", name="Save and continue editing").click()
    expect()(page.locator(".messagelist .success")).to_be_visible()


def test_marketing_manager_builds_runs_breaks_fixes_and_replays_a_sync(
    journey, user_with_role, hubspot, celery_worker
):
    manager = user_with_role(roles.MARKETING_MANAGER, username="manny")
    connection = make_connection("hubspot", hubspot, name="HubSpot (marketing)")
    assign_perm("integrations.view_connection", manager, connection)
    companies = CompanyFactory.create_batch(3, city="Berlin", country="DE")
    # The HubSpot account has a custom property with a validation rule HubSpot enforces.
    hubspot.add_property("companies", "hq_country", label="HQ country")
    hubspot.reject_values("companies", "hq_country", "Berlin", RULE)
    journey.login(manager)
    page = journey.page
    sync_url = "/admin/integrations/sync/"

    # 1. A new sync: connection, dataset and destination chosen (the page re-opens for each
    # choice, keeping the name), every name picked from a list, none typed.
    page.goto(journey.url(sync_url + "add/"))
    page.get_by_label("Name").fill("German companies to HubSpot")
    with page.expect_navigation():
        page.get_by_label("Connection").select_option(label="HubSpot (marketing) (hubspot)")
    with page.expect_navigation():
        page.get_by_label("Dataset").select_option(value="clients")
    with page.expect_navigation():
        page.locator("#id_destination_object").select_option(value="companies")
    expect()(page.get_by_label("Name")).to_have_value("German companies to HubSpot")
    page.locator("#id_match_source_field").select_option(value="external_id")
    # HubSpot companies match on any unique property: the portal's are offered.
    page.locator("#id_match_destination_field").select_option(value="external_id")
    # 2. The mappings, picked from the dataset's fields and HubSpot's properties.
    page.locator("#id_mappings-0-source_field").select_option(value="name")
    page.locator("#id_mappings-0-destination_field").select_option(value="name")
    journey.step("new sync")
    _save_and_continue(page)
    sync = Sync.objects.get()
    sync_page = journey.url(f"{sync_url}{sync.pk}/change/")

    page.locator("#id_mappings-0-source_field").select_option(value="name")
    page.locator("#id_mappings-0-destination_field").select_option(value="name")
    page.get_by_role("button", name=re.compile("Add another")).click()
    page.locator("#id_mappings-1-source_field").select_option(value="country")
    page.locator("#id_mappings-1-destination_field").select_option(value="hq_country")
    journey.step("mappings picked")
    _save_and_continue(page)
    assert sorted(sync.mappings.values_list("source_field", "destination_field")) == [
        ("country", "hq_country"),
        ("name", "name"),
    ]
    journey.step("sync saved")

    # 3. Test on one record: the payload a run would send, nothing written.
    page.get_by_role("link", name="Test on one record").click()
    page.get_by_label(re.compile("Record")).first.fill(str(companies[0].pk))
    page.get_by_role("button", name=re.compile("Test")).click()
    expect()(page.locator("#content")).to_contain_text(companies[0].name)
    expect()(page.locator("#content")).to_contain_text("would create")
    journey.step("test on one record")
    assert hubspot.objects("companies") == []

    # 4. Preview: the plan, nothing sent.
    page.goto(sync_page)
    page.get_by_role("button", name="Preview").click()
    expect()(page.locator("#content")).to_contain_text(companies[1].name)
    journey.step("preview")
    assert hubspot.objects("companies") == []

    # 5. Run now, then the run page until the run is done.
    page.goto(sync_page)
    _run_now(journey)
    journey.step("run queued")
    status = _wait_for_run(page)
    journey.step("first run finished")
    stored = {o["properties"]["name"]: o["properties"] for o in hubspot.objects("companies")}
    assert sorted(stored) == sorted(c.name for c in companies), status
    assert {p["hq_country"] for p in stored.values()} == {"DE"}

    # 6. The mapping broken (city into the country code), run: HubSpot refuses every record.
    page.goto(sync_page)
    page.locator("#id_mappings-1-source_field").select_option(value="city")
    _save_and_continue(page)
    _run_now(journey)
    _wait_for_run(page)
    reasons = page.locator(".field-reasons")
    expect()(reasons).to_contain_text(RULE)
    times = "\N{MULTIPLICATION SIGN}"
    expect()(reasons).to_contain_text(re.compile(f"3 {times} .*hq_country: {re.escape(RULE)}"))
    journey.step("failure reason on the run page")
    assert DeadLetter.objects.filter(sync=sync, status="open").count() == 3
    # Replaying is the Integration Admins'; a creator may replay once granted it on the sync.
    expect()(page.get_by_role("button", name=re.compile("^Replay"))).to_have_count(0)
    assign_perm("integrations.replay_deadletters", manager, sync)

    # 7. Fixed back, then the failed records replayed from the run page: delivered.
    failed_run = page.url
    page.goto(sync_page)
    page.locator("#id_mappings-1-source_field").select_option(value="country")
    _save_and_continue(page)
    journey.step("mapping fixed")
    page.goto(failed_run)
    page.get_by_role("button", name="Replay 3 dead letters").click()
    expect()(page.locator(".messagelist")).to_contain_text("3 dead letters replayed")
    _wait_for_run(page)
    journey.step("replay delivered")
    assert DeadLetter.objects.filter(sync=sync, status="open").count() == 0
    assert {o["properties"]["hq_country"] for o in hubspot.objects("companies")} == {"DE"}
    assert len(hubspot.objects("companies")) == 3


def test_marketing_analyst_downloads_a_csv_export(journey, user_with_role):
    from playwright.sync_api import Error as PlaywrightError

    analyst = user_with_role(roles.MARKETING_ANALYST, username="anna")
    german = CompanyFactory.create_batch(2, country="DE")
    CompanyFactory(country="FR")
    for company in german:
        CompanyMetrics.objects.create(
            company=company, health_score=70, updated_at=company.updated_at
        )
    journey.login(analyst)
    page = journey.page
    page.goto(journey.url("/admin/"))
    journey.step("signed in")

    # The README's tour: the export's address opened in the browser, the file saved.
    url = journey.url(
        "/marketing/export/clients?format=csv&country=DE&fields=external_id,name,health_score"
    )
    with page.expect_download() as download_info:
        try:
            page.goto(url)
        except PlaywrightError as exc:  # a download is not a page: goto says so
            assert "Download is starting" in exc.message or "ERR_ABORTED" in exc.message
    download = download_info.value
    saved = journey.folder / download.suggested_filename
    download.save_as(saved)

    assert download.suggested_filename == "clients.csv"
    lines = saved.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "external_id,name,health_score"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(c.external_id for c in german)
    page.goto(journey.url("/admin/"))
    journey.step("after the download")


def test_auditor_finds_who_changed_the_mapping_and_who_read_the_data(
    journey, user_with_role, hubspot
):
    manager = user_with_role(roles.MARKETING_MANAGER, username="manny")
    analyst = user_with_role(roles.MARKETING_ANALYST, username="anna")
    auditor = user_with_role(roles.AUDITOR, username="audrey")
    CompanyFactory.create_batch(2)
    sync = make_sync(make_connection("hubspot", hubspot), name="Companies to HubSpot")
    for perm in ("view_sync", "change_sync"):
        assign_perm(f"integrations.{perm}", manager, sync)
    assign_perm("integrations.view_connection", manager, sync.connection)
    sync_page = f"/admin/integrations/sync/{sync.pk}/change/"

    # The manager changes a mapping in the editor: industry now goes to the city property.
    journey.login(manager)
    page = journey.page
    page.goto(journey.url(sync_page))
    row = page.locator(
        "select[name$='-source_field']", has=page.locator("option[value='industry'][selected]")
    )
    prefix = row.get_attribute("name").removesuffix("-source_field")
    page.locator(f"select[name='{prefix}-destination_field']").select_option(value="city")
    _save_and_continue(page)
    journey.step("manager changed a mapping")

    # The analyst reads the clients (an export, as the README's tour does).
    reader = Client()
    reader.force_login(analyst)
    export = reader.get("/marketing/export/clients", {"format": "csv"})
    assert export.status_code == 200
    assert b"".join(export.streaming_content).count(b"\n") == 3  # header and two companies

    # The auditor: the sync's history, then the field-by-field change history.
    journey.login(auditor)
    page = journey.page
    page.goto(journey.url(sync_page))
    page.get_by_role("link", name="History", exact=True).click()
    history = page.locator("#change-history")
    expect()(history).to_contain_text("manny")
    expect()(history).to_contain_text("field mapping “industry -> city”")
    journey.step("sync history names the manager")
    # The field-by-field record of that change: the audit log searched for the mapping.
    page.get_by_role("link", name="Log entries").click()
    page.locator("#searchbar").fill("industry -> city")
    page.locator("#searchbar").press("Enter")
    changes = page.locator("#result_list tbody tr")
    expect()(changes).to_have_count(1)
    expect()(changes).to_contain_text("manny")
    expect()(changes).to_contain_text("destination_field")
    journey.step("field by field change")

    # ...and the access log: who read the clients.
    page.goto(journey.url("/admin/"))
    page.get_by_role("link", name=re.compile("Access log")).first.click()
    journey.step("access log")
    page.get_by_role("link", name="clients").first.click()
    rows = page.locator("#result_list tbody tr")
    expect()(rows.filter(has_text="anna")).to_have_count(1)
    journey.step("access log names the analyst")


def _test_connection(page, name: str):
    """The connection list's "Test connection" action on one connection: its message."""
    page.get_by_role("row", name=re.compile(re.escape(name))).get_by_role("checkbox").check()
    page.locator("select[name='action']").select_option(value="test_connections")
    page.get_by_role("button", name="Go").click()
    return page.locator(".messagelist li", has_text=name)


def test_integration_admin_rotates_a_connections_token(journey, user_with_role, hubspot):
    admin = user_with_role(roles.INTEGRATION_ADMIN, username="ira")
    old_token = hubspot.token
    token_conn = make_connection("hubspot", hubspot, name="HubSpot private app")
    journey.login(admin)
    page = journey.page
    connections = journey.url("/admin/integrations/connection/")

    # HubSpot rotated the private app's token: the stored one is refused.
    hubspot.token = "pat-na1-rotated-0001"
    page.goto(connections)
    expect()(_test_connection(page, "HubSpot private app")).to_contain_text("401")
    journey.step("old token refused")

    # The new token typed into the write-only credential field, saved, tested.
    page.goto(journey.url(f"/admin/integrations/connection/{token_conn.pk}/change/"))
    secret = page.locator("input[name='token']")
    expect()(secret).to_have_value("")  # never shown again
    secret.fill("pat-na1-rotated-0001")
    journey.step("new token typed")
    page.get_by_role("button", name="Save", exact=True).click()
    expect()(page.locator(".messagelist .success")).to_be_visible()
    expect()(page.locator("#content")).not_to_contain_text("pat-na1-rotated-0001")
    expect()(_test_connection(page, "HubSpot private app")).not_to_contain_text("401")
    journey.step("new token works")
    token_conn.refresh_from_db()
    assert token_conn.get_credentials() == {"token": "pat-na1-rotated-0001"} != old_token


def test_integration_admin_connects_a_tool_by_oauth(
    journey, user_with_role, hubspot, settings, live_server
):
    from tests.fakes.hubspot_oauth import CLIENT_ID, CLIENT_SECRET

    settings.MKT_OAUTH_CLIENTS = {
        **settings.MKT_OAUTH_CLIENTS,
        "hubspot": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    }
    settings.MKT_BASE_URL = live_server.url  # HubSpot sends the browser back here
    journey.login(user_with_role(roles.INTEGRATION_ADMIN, username="ira"))
    page = journey.page

    # A connection by OAuth: Connect with HubSpot, HubSpot's consent page, back here.
    page.goto(journey.url("/admin/integrations/connection/add/"))
    page.get_by_label("Name").fill("HubSpot by OAuth")
    page.get_by_label("Vendor").select_option(value="hubspot")
    page.get_by_label("Auth kind").select_option(value="oauth2")
    page.get_by_label("Base URL").fill(hubspot.url)
    journey.step("oauth connection")
    page.get_by_role("button", name="Save and continue editing").click()
    expect()(page.locator(".messagelist .success")).to_be_visible()
    page.get_by_role("button", name="Connect with HubSpot").click()
    try:
        expect()(page.locator(".messagelist")).to_contain_text("connected to")
    except AssertionError as exc:  # say what the browser refused, where it did
        raise AssertionError("\n".join([str(exc).splitlines()[0], *journey.problems])) from None
    journey.step("connected by oauth")
    connected = Connection.objects.get(name="HubSpot by OAuth")
    assert set(connected.get_credentials()) == {"access_token", "refresh_token"}
    expect()(page.get_by_role("button", name="Reconnect")).to_be_visible()
