"""Admin building blocks shared by the apps."""

import hashlib
from collections.abc import Callable, Iterable, Sequence

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.http import Http404
from django.utils.functional import cached_property
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from guardian.admin import ReinforcedGuardedModelAdminMixin
from guardian.shortcuts import get_objects_for_user

from mktintegration.crypto import SecretsUnreadable
from mktintegration.grants import creator_grant

# The "Object permissions" page lists every user's and every group's grants on an object, so
# opening it takes both view permissions (as guardian's ReinforcedGuardedModelAdminMixin asks);
# its user and group pages change grants.
GRANTS_VIEW = ("guardian.view_userobjectpermission", "guardian.view_groupobjectpermission")
GRANTS_CHANGE_USER = ("guardian.change_userobjectpermission",)
GRANTS_CHANGE_GROUP = ("guardian.change_groupobjectpermission",)

# Below this many rows an exact COUNT(*) is cheap; above it PostgreSQL's estimate is used
# for an unfiltered list (filters and searches still count exactly).
EXACT_COUNT_BELOW = 200_000


class EstimatedCountPaginator(Paginator):
    """Paginate big unfiltered tables with PostgreSQL's row estimate instead of COUNT(*)."""

    @cached_property
    def count(self):
        query = self.object_list.query
        connection = connections[self.object_list.db]
        if connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [self.object_list.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] >= EXACT_COUNT_BELOW:
                return row[0]
        return super().count


class CachedValuesListFilter(admin.AllValuesFieldListFilter):
    """A filter listing a free-text column's values (country, industry, ...), cached.

    Django finds the values with ``SELECT DISTINCT`` over the whole table on every page view:
    0.15-0.5 s on the backbone's 1M companies and 3M contacts. Those value sets change
    rarely, so they are kept for ``cache_seconds`` (per query, so a narrowed queryset gets
    its own list). Filtering itself is unchanged.
    """

    cache_seconds = 600

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        values = self.lookup_choices
        digest = hashlib.sha256(f"{values.db}:{values.query}".encode()).hexdigest()
        self.lookup_choices = cache.get_or_set(
            f"admin-filter-values:{digest}", lambda: list(values), self.cache_seconds
        )


def secrets_status(
    *, declared: Sequence[tuple[str, str]], stored: Callable[[], Iterable[str]]
) -> str:
    """Whether each declared secret (name, label) is stored, one a line: "Token: stored
    (hidden)" or "Token: not set". Never a value; ``stored`` gives the stored names."""
    if not declared:
        return "none"
    try:
        names = set(stored())
    except SecretsUnreadable:
        return "unreadable with the current MKT_ENCRYPTION_KEYS"
    return format_html_join(
        mark_safe("<br>"),
        "{}: {}",
        ((label, "stored (hidden)" if name in names else "not set") for name, label in declared),
    )


class HiddenIs404Mixin:
    """An id outside the admin's queryset (not granted, or not there) answers 404.

    Django redirects to the index with "doesn't exist"; a 404 tells nothing more, and the
    same for an object one may not see as for one that does not exist.
    """

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404(f"No {opts.verbose_name} with id {object_id} is visible to you.")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only: nobody, superusers included, adds, changes or deletes through the admin."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ObjectPermissionAdmin(HiddenIs404Mixin, ReinforcedGuardedModelAdminMixin, admin.ModelAdmin):
    """Admin for objects granted one by one (Connection, Sync, ExportSchedule).

    A user with the model-level permission (Integration Admin) sees and changes every object;
    anyone else sees only the objects they hold an object grant on (django-guardian), and
    opening any other by id answers 404, so ids do not leak. Whoever creates an object is
    granted it (``mktintegration.grants``). The "Object permissions" page grants and revokes
    per user or group; its button is shown to who may use it, and anyone else opening it gets a 403
    saying so (guardian would send them to the index without a word).
    """

    change_form_template = "admin/object_permission_change_form.html"

    user_can_access_permitted_objects_only = True
    permitted_objects_any_perm = True
    permitted_objects_accept_global_perms = True

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        self.permitted_objects_perms = [self._perm("view"), self._perm("change")]

    def _perm(self, action: str) -> str:
        return f"{self.opts.app_label}.{action}_{self.opts.model_name}"

    def _has_any_grant(self, user, actions) -> bool:
        return get_objects_for_user(
            user,
            [self._perm(action) for action in actions],
            klass=self.model,
            any_perm=True,
            accept_global_perms=False,
        ).exists()

    def _allowed(self, request, actions, obj) -> bool:
        user = request.user
        if not (user.is_authenticated and user.is_active):
            return False  # e.g. the login page lists apps for an anonymous visitor
        if any(user.has_perm(self._perm(action)) for action in actions):
            return True
        if obj is None:
            return self._has_any_grant(user, actions)
        return any(user.has_perm(self._perm(action), obj) for action in actions)

    def has_view_permission(self, request, obj=None):
        # Who may create objects sees the list (only what is granted to them, maybe nothing
        # yet) rather than a 403 before their first object.
        if obj is None and self.has_add_permission(request):
            return True
        return self._allowed(request, ("view", "change"), obj)

    def has_granted_permission(self, request, codename: str) -> bool:
        """``app_label.codename`` at model level, or granted on at least one object: whether
        a list action is offered (the action checks each selected object again)."""
        user = request.user
        if not (user.is_authenticated and user.is_active):
            return False
        perm = f"{self.opts.app_label}.{codename}"
        if user.has_perm(perm):
            return True
        return get_objects_for_user(
            user, perm, klass=self.model, accept_global_perms=False
        ).exists()

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, ("change",), obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, ("delete",), obj)

    def has_module_permission(self, request):
        return self.has_view_permission(request) or self.has_add_permission(request)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            creator_grant(obj=obj, user=request.user)

    # --- the "Object permissions" pages ---------------------------------------------------------
    def has_grants_permission(self, request, obj, perms=GRANTS_VIEW) -> bool:
        """Whether the user may manage who is granted ``obj``: change it, and hold ``perms``."""
        user = request.user
        return all(user.has_perm(perm) for perm in perms) and self.has_change_permission(
            request, obj
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["may_manage_grants"] = obj is not None and self.has_grants_permission(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _grants_check(self, request, object_pk, perms) -> None:
        obj = self.get_object(request, unquote(object_pk))  # an id one may not see: 404
        if not self.has_grants_permission(request, obj, perms):
            raise PermissionDenied(
                f"You may not manage who is granted {self.opts.verbose_name} “{obj}”: that "
                "takes the permissions to view and change object permissions (Integration "
                "Admins hold them)."
            )

    def obj_perms_manage_view(self, request, object_pk):
        self._grants_check(request, object_pk, GRANTS_VIEW)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._grants_check(request, object_pk, GRANTS_CHANGE_USER)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._grants_check(request, object_pk, GRANTS_CHANGE_GROUP)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    def get_object(self, request, object_id, from_field=None):
        # An id one may not see answers 404 before any permission check: a 403 would tell
        # it apart from an id that does not exist (for users holding no grant at all, too).
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} with id {object_id} is visible to you.")
        return obj
