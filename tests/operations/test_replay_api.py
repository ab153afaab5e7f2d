"""POST /marketing/integrations/syncs/<id>/dead-letters/replay: what the admin's Replay does."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from integrations.models import DeadLetter, DeadLetterStatus
from mktintegration import roles
from mktintegration.tokens import token_create
from tests.factories import CompanyFactory
from tests.integrations.conftest import drive, make_connection, make_sync, start_and_drive


def url(sync_id) -> str:
    return f"/marketing/integrations/syncs/{sync_id}/dead-letters/replay"


@pytest.fixture
def poisoned(db, hubspot):
    """A sync with two dead letters (HubSpot refuses their names)."""
    sync = make_sync(make_connection("hubspot", hubspot))
    CompanyFactory.create_batch(3)
    for _ in range(2):
        CompanyFactory(name="POISON")
    hubspot.reject_values("companies", "name", "POISON", "name rejected")
    run = start_and_drive(sync)
    assert run.dead_lettered == 2
    return sync


def _bearer(user, scopes=("integrations:run",)) -> dict:
    _, raw = token_create(user=user, name="automation", scopes=list(scopes))
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.mark.django_db
def test_replay_sends_the_dead_letters_again_in_a_new_run(
    client, poisoned, hubspot, integration_admin
):
    hubspot.clear_rejections("companies")

    response = client.post(
        url(poisoned.pk), {}, content_type="application/json", **_bearer(integration_admin)
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["replayed"] == 2 and body["url"].endswith(f"/runs/{body['run_id']}")
    assert not DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).exists()
    run = drive(poisoned.runs.get(pk=body["run_id"]))
    assert run.created == 2


@pytest.mark.django_db
def test_replay_of_chosen_ids_replays_only_those(client, poisoned, integration_admin):
    first = DeadLetter.objects.order_by("pk").first()

    response = client.post(
        url(poisoned.pk),
        {"ids": [first.pk]},
        content_type="application/json",
        **_bearer(integration_admin),
    )

    assert response.json()["replayed"] == 1
    assert DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).count() == 1


@pytest.mark.django_db
def test_replay_needs_the_replay_grant_and_the_run_scope(
    client, poisoned, user_with_role, integration_admin
):
    manager = user_with_role(roles.MARKETING_MANAGER)
    assign_perm("integrations.view_sync", manager, poisoned)
    assign_perm("integrations.run_sync", manager, poisoned)

    no_grant = client.post(
        url(poisoned.pk), {}, content_type="application/json", **_bearer(manager)
    )
    no_scope = client.post(
        url(poisoned.pk),
        {},
        content_type="application/json",
        **_bearer(integration_admin, scopes=["integrations:read"]),
    )
    unseen = client.post(
        url(poisoned.pk + 1000), {}, content_type="application/json", **_bearer(integration_admin)
    )

    assert (no_grant.status_code, no_scope.status_code, unseen.status_code) == (403, 403, 404)
    assert DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("ids", [[], ["x"], [0], [2**63], list(range(1, 502))])
def test_bad_ids_are_a_400_naming_the_path(client, poisoned, integration_admin, ids):
    response = client.post(
        url(poisoned.pk),
        {"ids": ids},
        content_type="application/json",
        **_bearer(integration_admin),
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"].startswith("ids")
    assert DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).count() == 2
