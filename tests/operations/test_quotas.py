"""Daily quotas in operations: the dashboard shows each vendor account's quota used and left
(one row for the connections sharing an account), a sync whose records wait for the next
window says when they go, and an account that used the alert share of its quota alerts once
per window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.models import Sync
from integrations.operations.evaluate import evaluate_all
from integrations.operations.models import Alert, AlertKind
from integrations.selectors import connection_quota, connector_for
from mktintegration import roles
from tests.integrations.conftest import make_marketo_connection, make_sync
from tests.integrations.contract.profiles.salesforce import ORG_ID, connected

URL = "/admin/operations/dashboard/"
NOON = datetime(2026, 3, 11, 18, tzinfo=UTC)  # 12:00 CST


def _spend(connection, n):
    budget = connector_for(connection).http.throttle
    for _ in range(n):
        budget.acquire()


@pytest.fixture
def instance(db, marketo, clock):
    clock.now = NOON.timestamp()
    first = make_marketo_connection(marketo, name="Marketo EU", daily_quota_requests=10)
    second = make_marketo_connection(marketo, name="Marketo US", daily_quota_requests=10)
    return first, second


def test_the_dashboard_shows_each_accounts_daily_quota_used_and_left(client_for, instance):
    first, second = instance
    _spend(first, 3)
    _spend(second, 5)
    sync = make_sync(first, obj="companies", match=("external_id", "externalCompanyId"))
    Sync.objects.filter(pk=sync.pk).update(quota_resume_at=datetime(2026, 3, 12, 6, tzinfo=UTC))

    html = client_for(roles.INTEGRATION_ADMIN).get(URL).content.decode()

    assert "<h2>Daily quotas</h2>" in html
    row = html.split("<td>Marketo 284-RPR-133</td>")[1].split("</tr>")[0]
    assert "<td>Marketo EU, Marketo US</td>" in row  # one account, both connections
    assert "<td>8 (80%)</td><td>2</td><td>10</td><td>2026-03-12 06:00</td>" in row
    assert 'class="mkt-quota-high"' in html
    assert "Deferred by the daily quota: they go at 2026-03-12 06:00" in html


def test_an_account_that_used_the_alert_share_alerts_once_per_window(
    smtp, instance, integration_admin, clock
):
    first, second = instance
    _spend(first, 7)
    evaluate_all()
    assert not Alert.objects.filter(kind=AlertKind.QUOTA_HIGH).exists()  # 70%: below 80%

    _spend(second, 1)
    evaluate_all()
    evaluate_all()  # still high: no second mail

    [mail] = smtp.wait_for(1)
    assert mail["Subject"] == (
        "[mktintegration] Marketo account 284-RPR-133: 80% of its daily quota used"
    )
    body = mail.get_content()
    assert "has used 8 of its 10 requests for the day (80%; the alert is set at 80%)" in body
    assert "deferred (not failed)" in body and "2026-03-12 06:00 UTC" in body
    smtp.clear()
    clock.now = datetime(2026, 3, 12, 6, tzinfo=UTC).timestamp()  # Marketo's next day
    evaluate_all()  # ok again
    _spend(first, 9)
    evaluate_all()
    assert len(smtp.wait_for(1)) == 1


def test_the_alert_goes_at_the_share_the_setting_sets(smtp, instance, integration_admin, settings):
    settings.MKT_ALERT_QUOTA_SHARE = 0.5
    first, _ = instance
    _spend(first, 4)
    evaluate_all()
    assert not Alert.objects.filter(kind=AlertKind.QUOTA_HIGH).exists()  # 40%

    _spend(first, 1)
    evaluate_all()

    [mail] = smtp.wait_for(1)
    assert "50% of its daily quota used" in mail["Subject"]
    assert "(50%; the alert is set at 50%)" in mail.get_content()


def test_a_salesforce_orgs_quota_is_the_count_salesforce_reports(client_for, salesforce, settings):
    settings.MKT_SALESFORCE_DAILY_API_SHARE = 0.5  # syncs may use half of the org's allowance
    salesforce.set_daily_limit(20_000, used=4_000)  # the org's other integrations spent 4,000
    first = connected("salesforce", salesforce, name="Sales EU")
    second = connected("salesforce", salesforce, name="Sales US")  # the same org
    connector_for(first).test_connection()

    html = client_for(roles.INTEGRATION_ADMIN).get(URL).content.decode()

    row = html.split(f"<td>Salesforce {ORG_ID}</td>")[1].split("</tr>")[0]
    assert "<td>Sales EU, Sales US</td>" in row
    assert "<td>4,001 (40%)</td><td>5,999</td><td>10,000</td>" in row, row
    status = connection_quota(second)
    assert (status.used, status.left) == (4_001, 5_999)
