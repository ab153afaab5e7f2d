"""What a new user reads on the export admin pages: runs named after their schedule, and which
destination secrets are stored (never their values)."""

import pytest

from mktintegration import roles
from tests.page_text import page_text, page_title

RUNS = "/admin/exports/exportrun/"
SCHEDULES = "/admin/exports/exportschedule/"
DESTINATIONS = "/admin/exports/exportdestination/"
SECRET = "pw-SUPER-secret-4711"


@pytest.mark.django_db
def test_an_export_run_page_names_its_schedule(client_for, make_schedule, run_schedule):
    run = run_schedule(make_schedule(name="Weekly clients"))

    page = client_for(roles.INTEGRATION_ADMIN).get(f"{RUNS}{run.pk}/change/").content.decode()

    assert page_title(page).startswith(f"Run {run.pk} of Weekly clients |"), page_title(page)


@pytest.mark.django_db
@pytest.mark.parametrize("role", [roles.AUDITOR, roles.MARKETING_MANAGER])
def test_read_only_destination_page_says_which_secrets_are_stored(
    client_for, make_destination, role
):
    destination = make_destination(
        "sftp",
        host="sftp.example.com",
        username="exporter",
        host_key_fingerprint="SHA256:" + "A" * 43,
        secrets={"password": SECRET},
    )

    page = client_for(role).get(f"{DESTINATIONS}{destination.pk}/change/").content.decode()

    text = page_text(page)
    assert "SFTP password: stored (hidden)" in text, text
    assert "SFTP private key: not set" in text
    assert "HTTPS HMAC secret" not in text  # not a secret an SFTP destination holds
    assert SECRET not in page and destination.secret_ciphertext not in page


@pytest.mark.django_db
def test_a_schedule_page_offers_object_permissions_only_to_who_may_manage_grants(
    client, client_for, make_schedule, manager
):
    schedule = make_schedule()
    client.force_login(manager)  # granted the schedule as its creator
    page = client.get(f"{SCHEDULES}{schedule.pk}/change/").content.decode()
    assert "Run now" in page and "Object permissions" not in page
    assert client.get(f"{SCHEDULES}{schedule.pk}/permissions/").status_code == 403

    page = client_for(roles.INTEGRATION_ADMIN).get(f"{SCHEDULES}{schedule.pk}/change/")
    assert "Object permissions" in page.content.decode()
