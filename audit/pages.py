"""Admin pages that show personal data write one access-log row per page view (channel
``admin``): who, which list or object, the filters used, the fields shown, how many rows and
which ids, and how it ended (shown, refused, bad filters).

Search terms are never stored: a contact search is typed as an e-mail address or a name, and
the access log is kept for years and cannot be edited, so a term would be personal data no
erasure request could reach. The row records that a search was made (``"q": "(not
recorded: 17 characters)"``) and the ids of the rows it showed: "who looked at contact 4711?"
is answered by those ids. Values of the list's own filters (region, country, purpose...) are
kept; any other parameter's value is left out the same way as a search.

``audit`` imports no app: the mixin is configured by the admin that uses it.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from audit.context import client_address
from audit.models import Channel, Outcome
from audit.services import access_log_write

# Parameters of the admin's own pages (page, ordering, error flag, show all): no data in them.
_PAGE_PARAMS = {"p", "o", "e", "all"}
_MAX_IDS = 200


def admin_actor(request) -> dict:
    """The access-log fields naming who made an admin request, and from where."""
    return {
        "channel": Channel.ADMIN,
        "actor": f"user:{request.user.get_username()}",
        "user_id": request.user.pk,
        "client_address": client_address(request),
    }


def _not_recorded(value: str) -> str:
    return f"(not recorded: {len(value)} characters)"


class AccessLoggedAdminMixin:
    """Put before the ModelAdmin base. ``access_log_dataset`` names what the pages show
    (``backbone:contact``); ``access_log_changelist = False`` logs only the object pages."""

    access_log_dataset: str = ""
    access_log_changelist: bool = True

    def _access_filter_names(self) -> set[str]:
        names = set(_PAGE_PARAMS)
        for entry in self.list_filter:
            if isinstance(entry, str):
                names.add(entry.split("__")[0])
            elif isinstance(entry, tuple | list):
                names.add(entry[0].split("__")[0])
            elif isinstance(entry, type) and issubclass(entry, admin.SimpleListFilter):
                names.add(entry.parameter_name)
        return names

    def access_log_filters(self, request) -> dict:
        """The query parameters, with every value that could be personal data left out."""
        safe = self._access_filter_names()
        filters = {}
        for key in request.GET:
            if key.startswith("_"):  # the admin's own state (_changelist_filters, _popup)
                continue
            value = ",".join(request.GET.getlist(key))
            filters[key] = value if key.split("__")[0] in safe else _not_recorded(value)
        return filters

    def access_log_object(self, request, obj) -> dict:
        """Fields of the row for one object's page (override to say more)."""
        return {"fields": list(self.get_fields(request, obj)), "detail": f"ids: {obj.pk}"}

    def _access_write(self, request, **fields) -> None:
        access_log_write(
            **admin_actor(request),
            dataset=self.access_log_dataset,
            filters=self.access_log_filters(request),
            **fields,
        )

    def _access_refused(self, request, exc, object_id=None) -> None:
        """A refusal (403), or a 404 that is a refusal too when the object exists and is only
        hidden from this user (not granted): the log says denied, the answer stays a 404."""
        forbidden = isinstance(exc, PermissionDenied)
        denied = forbidden or (object_id is not None and self._exists(object_id))
        detail = f"ids: {object_id}" if object_id is not None else ""
        self._access_write(
            request,
            outcome=Outcome.DENIED if denied else Outcome.INVALID,
            status_code=403 if forbidden else 404,
            detail=detail,
        )

    def _exists(self, object_id) -> bool:
        try:
            return self.model._default_manager.filter(pk=object_id).exists()
        except (ValueError, TypeError, ValidationError):
            return False

    def changelist_view(self, request, extra_context=None):
        if not self.access_log_changelist:
            return super().changelist_view(request, extra_context)
        try:
            response = super().changelist_view(request, extra_context)
        except PermissionDenied as exc:
            self._access_refused(request, exc)
            raise
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is None:  # bad filters: redirected to the error page, nothing shown
            self._access_write(request, outcome=Outcome.INVALID, status_code=response.status_code)
            return response
        ids = [obj.pk for obj in changelist.result_list]
        shown = ", ".join(str(pk) for pk in ids[:_MAX_IDS])
        self._access_write(
            request,
            fields=list(self.get_list_display(request)),
            rows=len(ids),
            outcome=Outcome.OK,
            status_code=response.status_code,
            detail=f"ids: {shown}" + (" ..." if len(ids) > _MAX_IDS else ""),
        )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
        except (PermissionDenied, Http404) as exc:
            self._access_refused(request, exc, object_id)
            raise
        obj = (getattr(response, "context_data", None) or {}).get("original")
        if obj is None:  # no such object: redirected, nothing shown
            self._access_write(
                request,
                outcome=Outcome.INVALID,
                status_code=response.status_code,
                detail=f"ids: {object_id}",
            )
            return response
        self._access_write(
            request,
            rows=1,
            outcome=Outcome.OK,
            status_code=response.status_code,
            **self.access_log_object(request, obj),
        )
        return response
