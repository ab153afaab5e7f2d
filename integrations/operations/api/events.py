"""``POST /marketing/events``: other services announce changed companies and contacts to the
real-time syncs (docs/realtime.md). The changes go to the backbone's outbox, as the backbone's
own writes do, and the dispatcher is rung at once."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework import status as http
from rest_framework.response import Response
from rest_framework.views import APIView

from exports.backbone.changes import Change, ChangeSubject, change_events_record
from integrations.operations.configure.document import flatten, unknown_keys
from mktintegration import bounds
from mktintegration.api_auth import HasScope
from mktintegration.api_base import AuditActorMixin, json_parsers
from mktintegration.api_errors import (
    BODY_TOO_LARGE,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    ErrorsSerializer,
    errors_body,
)

SCOPE = "events:write"
PERMISSION = "integrations.announce_changes"


class ChangeSerializer(serializers.Serializer):
    subject = serializers.ChoiceField(choices=ChangeSubject.choices)
    id = serializers.IntegerField(**bounds.ID.serializer_kwargs())
    occurred_at = serializers.DateTimeField(
        required=False, help_text="When it changed (default: when we received it)."
    )

    def validate_occurred_at(self, value):
        try:
            moment = bounds.moment_check("occurred_at", value)
        except bounds.BoundError as exc:
            raise serializers.ValidationError(exc.message) from None
        ahead = bounds.CHANGE_EVENT_AHEAD_SECONDS
        if moment > timezone.now() + timedelta(seconds=ahead):
            raise serializers.ValidationError(
                f"occurred_at may be at most {ahead} seconds ahead of our clock (got {value})"
            )
        return moment


class ChangesDocument(serializers.Serializer):
    events = ChangeSerializer(many=True, min_length=1, max_length=bounds.CHANGE_EVENTS)


class MayAnnounce(permissions.BasePermission):
    message = "Announcing changes needs the permission integrations.announce_changes."

    def has_permission(self, request, view):
        return request.user.has_perm(PERMISSION)


class ChangeEventsView(AuditActorMixin, APIView):
    permission_classes = [permissions.IsAuthenticated, HasScope, MayAnnounce]
    parser_classes = json_parsers()
    body_path = "document"

    def required_scope(self, request) -> str:
        return SCOPE

    @extend_schema(
        summary="Announce changed companies and contacts to real-time syncs",
        description=(
            f"At most {bounds.CHANGE_EVENTS:,} events a request. Each names a subject "
            "(`company` or `contact`) by its backbone id; the real-time syncs whose records "
            "it reaches plan those records again within seconds (docs/realtime.md). An id "
            "that is not in the backbone is no error: the plan finds no row. Needs the "
            f"`{SCOPE}` scope and the permission `integrations.announce_changes` (API clients, "
            "Integration Admins)."
        ),
        request=ChangesDocument,
        responses={
            202: inline_serializer("ChangesAccepted", {"accepted": serializers.IntegerField()}),
            400: OpenApiResponse(ErrorsSerializer, description="every error by path; none kept"),
            401: UNAUTHENTICATED,
            403: OpenApiResponse(description=f"no `{SCOPE}` scope, or no permission"),
            413: BODY_TOO_LARGE,
            415: UNSUPPORTED_MEDIA_TYPE,
        },
    )
    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            errors = [(self.body_path, 'the body must be a JSON object: {"events": [...]}')]
            return Response(errors_body(errors, "invalid document"), status=400)
        unknown = unknown_keys(ChangesDocument(), data)
        document = ChangesDocument(data=data)
        valid = document.is_valid()
        if unknown or not valid:
            errors = unknown + flatten(document.errors)
            return Response(
                errors_body(errors, f"{len(errors)} error(s); no event was kept"),
                status=http.HTTP_400_BAD_REQUEST,
            )
        now = timezone.now()
        changes = [
            Change(e["subject"], e["id"], e.get("occurred_at") or now)
            for e in document.validated_data["events"]
        ]
        with transaction.atomic():
            accepted = change_events_record(changes)
            transaction.on_commit(_ring)
        return Response({"accepted": accepted}, status=http.HTTP_202_ACCEPTED)


def _ring() -> None:
    """The dispatcher looks now, not at its next tick."""
    from integrations.tasks import realtime_dispatch_task

    realtime_dispatch_task.apply_async(expires=5.0)
