"""``/``: where staff land. Signed in, the integrations dashboard (or the admin index for a
role without it); otherwise the sign-in page, coming back here afterwards."""

from __future__ import annotations

from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse


def home(request):
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return redirect_to_login("/", login_url=reverse("admin:login"))
    if user.has_perm("operations.view_dashboard"):
        return redirect("admin:operations_dashboard_changelist")
    return redirect("admin:index")
