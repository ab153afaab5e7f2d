"""The one base for API views over objects granted one by one (Connection, Sync,
ExportSchedule): the same rules as ObjectPermissionAdmin.

A caller with the model-level permission sees every object; anyone else sees only objects they
hold an object grant on, and any other id answers 404 (never 403), so ids do not leak. Token
requests also need the view's scope (``HasScope``), and the token's user's permissions.

``AuditActorMixin`` (part of the base) records the authenticated user as the actor of any
configuration change the request makes: DRF checks tokens after auditlog's middleware ran.
"""

from __future__ import annotations

from contextlib import ExitStack

from django.http import Http404
from guardian.shortcuts import get_objects_for_user
from rest_framework import exceptions, permissions
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from audit.context import audit_actor
from mktintegration.api_auth import HasScope, client_address


def objects_for(user, model, actions: tuple[str, ...] = ("view", "change")):
    """The objects of ``model`` the user may act on with any of ``actions``."""
    opts = model._meta
    perms = [f"{opts.app_label}.{action}_{opts.model_name}" for action in actions]
    return get_objects_for_user(user, perms, klass=model, any_perm=True, accept_global_perms=True)


def may(user, perm: str, obj) -> bool:
    """A model-level permission, or an object grant on ``obj``."""
    return user.has_perm(perm) or user.has_perm(perm, obj)


class AuditActorMixin:
    """For DRF views: changes made while handling the request are recorded in the change
    history with the authenticated user (session or API token) as the actor."""

    def dispatch(self, request, *args, **kwargs):
        with ExitStack() as stack:
            self._audit_actor_stack = stack
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authenticates and checks permissions
        user = request.user
        if user is not None and user.is_authenticated:
            self._audit_actor_stack.enter_context(
                audit_actor(user, remote_addr=client_address(request))
            )


def json_parsers() -> list:
    """The configured parsers that read JSON, for views whose body is a JSON document only
    (any other media type is a 415, and the schema lists application/json alone)."""
    return [p for p in api_settings.DEFAULT_PARSER_CLASSES if p.media_type == "application/json"]


class GrantedObjectsAPIView(AuditActorMixin, APIView):
    """Subclasses set ``model`` and ``scope`` (or override ``required_scope``)."""

    model = None
    scope = ""
    permission_classes = [permissions.IsAuthenticated, HasScope]

    def required_scope(self, request) -> str:
        return self.scope

    def visible(self, actions: tuple[str, ...] = ("view", "change")):
        return objects_for(self.request.user, self.model, actions)

    def get_granted(self, pk, *, perm: str | None = None):
        """The object with this id: 404 if the user may not see it, 403 if they may see it but
        do not hold ``perm`` on it."""
        obj = self.visible().filter(pk=pk).first()
        if obj is None:
            raise Http404(f"No {self.model._meta.verbose_name} {pk} is visible to you.")
        if perm and not may(self.request.user, perm, obj):
            raise exceptions.PermissionDenied(
                f"You may see this {self.model._meta.verbose_name} "
                f"but not {perm.split('.')[1].replace('_', ' ')} it."
            )
        return obj
