"""What each role sees of the backbone in the admin."""

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from exports.backbone.router import backbone_alias
from mktintegration import roles
from tests.factories import CompanyFactory, ContactFactory

BACKBONE_PAGES = {
    "company": "/admin/backbone/company/",
    "contact": "/admin/backbone/contact/",
    "consentrecord": "/admin/backbone/consentrecord/",
    "companymetrics": "/admin/backbone/companymetrics/",
}
# role -> backbone pages it may browse (others answer 403)
EXPECTED = {
    roles.MARKETING_MANAGER: {"company", "contact", "consentrecord", "companymetrics"},
    roles.MARKETING_ANALYST: {"company", "contact", "companymetrics"},
    roles.INTEGRATION_ADMIN: {"company", "contact", "consentrecord", "companymetrics"},
    roles.AUDITOR: set(),
    roles.API_CLIENT: set(),
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(roles.ROLES))
def test_each_role_browses_only_the_backbone_it_may_read(client_for, role):
    client = client_for(role)
    ContactFactory()

    for page, url in BACKBONE_PAGES.items():
        status = client.get(url).status_code
        assert status == (200 if page in EXPECTED[role] else 403), (role, page, status)


@pytest.mark.django_db
@pytest.mark.parametrize("role", sorted(roles.ROLES))
def test_no_role_can_add_change_or_delete_backbone_data(client_for, role):
    client = client_for(role)
    company = CompanyFactory(name="Unchanged")

    assert client.get("/admin/backbone/company/add/").status_code == 403
    response = client.post(f"/admin/backbone/company/{company.pk}/change/", {"name": "Hacked"})
    assert response.status_code == 403
    assert (
        client.post(f"/admin/backbone/company/{company.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    company.refresh_from_db()
    assert company.name == "Unchanged"


@pytest.mark.django_db
def test_even_a_superuser_cannot_edit_backbone_data(admin_client):
    company = CompanyFactory(name="Unchanged")

    assert admin_client.get("/admin/backbone/company/add/").status_code == 403
    page = admin_client.get(f"/admin/backbone/company/{company.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


@pytest.mark.django_db
def test_analyst_can_search_and_filter_companies(client_for):
    client = client_for(roles.MARKETING_ANALYST)
    CompanyFactory(name="Needle Analytics", lifecycle_stage="customer", is_customer=True)
    CompanyFactory(name="Haystack Labs", lifecycle_stage="lead")

    found = client.get("/admin/backbone/company/", {"q": "Needle"}).content.decode()
    assert "Needle Analytics" in found and "Haystack Labs" not in found

    filtered = client.get("/admin/backbone/company/", {"lifecycle_stage__exact": "lead"})
    assert "Haystack Labs" in filtered.content.decode()
    assert "Needle Analytics" not in filtered.content.decode()


@pytest.mark.django_db
def test_country_filter_lists_the_countries_without_scanning_the_table_each_time(client_for):
    client = client_for(roles.MARKETING_ANALYST)
    CompanyFactory(name="Berlin Ltd", country="DE")
    CompanyFactory(name="Paris SA", country="FR")

    first = client.get("/admin/backbone/company/").content.decode()
    with CaptureQueriesContext(connections[backbone_alias()]) as queries:
        again = client.get("/admin/backbone/company/").content.decode()
    sql = [query["sql"] for query in queries]  # before the next request resets the log
    filtered = client.get("/admin/backbone/company/", {"country": "FR"}).content.decode()

    for page in (first, again):
        assert "?country=DE" in page and "?country=FR" in page
    assert any("COUNT(*)" in statement for statement in sql)
    assert not [statement for statement in sql if "DISTINCT" in statement]
    assert "Paris SA" in filtered and "Berlin Ltd" not in filtered


@pytest.mark.django_db
def test_admin_is_branded(client_for):
    page = client_for(roles.MARKETING_ANALYST).get("/admin/").content.decode()

    assert "mktintegration" in page
    assert "Django administration" not in page
