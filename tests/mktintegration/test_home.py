"""``/`` is a landing page for staff (issue 13): the dashboard when signed in, the sign-in page
(and back) when not; never a 404."""

from __future__ import annotations

import pytest

from mktintegration import roles

pytestmark = pytest.mark.django_db


def test_signed_in_staff_land_on_the_dashboard(client_for):
    response = client_for(roles.INTEGRATION_ADMIN).get("/")

    assert (response.status_code, response["Location"]) == (302, "/admin/operations/dashboard/")


def test_a_visitor_is_sent_to_sign_in_and_back(client):
    response = client.get("/")

    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/")
    assert client.get(response["Location"]).status_code == 200
