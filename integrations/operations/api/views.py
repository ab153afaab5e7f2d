"""The operations APIs under /marketing/integrations/ (docs/operations.md, docs/configure-api.md).

All are ``GrantedObjectsAPIView``s: a caller sees only the objects granted to them (or all,
with the model-level permission), other ids answer 404, and tokens need the view's scope.
"""

from __future__ import annotations

from dataclasses import asdict

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from exports.models import ExportRun, ExportSchedule, RunTrigger
from exports.models import RunStatus as ExportRunStatus
from exports.services import export_run_start
from integrations.connectors import REGISTRY
from integrations.models import Connection, RunStatus, Sync, SyncRun, Trigger
from integrations.operations import status as selectors
from integrations.operations.api import serializers as out
from integrations.operations.configure.apply import (
    ConfigureForbidden,
    ConfigureInvalid,
    configure_apply,
)
from integrations.operations.configure.document import ConfigureDocument, flatten, unknown_keys
from integrations.operations.configure.plan import NotVisible
from integrations.operations.summaries import export_run_summary, sync_run_summary
from integrations.services import SyncBusy, deadletters_replay, sync_run_start
from mktintegration.api_base import GrantedObjectsAPIView, json_parsers, objects_for
from mktintegration.api_errors import (
    BODY_TOO_LARGE,
    FIELD_ERRORS,
    UNAUTHENTICATED,
    UNSUPPORTED_MEDIA_TYPE,
    URL_TOO_LONG,
    ErrorsSerializer,
    detail_response,
    errors_body,
)

READ, CONFIGURE, RUN = "integrations:read", "integrations:configure", "integrations:run"


def _filter_values(request, name: str, allowed) -> list[str]:
    values = [v.strip() for raw in request.query_params.getlist(name) for v in raw.split(",")]
    values = [v for v in values if v]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValidationError(
            {name: [f"unknown {name} {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"]}
        )
    return values


def _scope_refused(scope: str, also: str = "") -> OpenApiResponse:
    return detail_response(
        f"a token without the `{scope}` scope" + (f", or {also}" if also else "")
    )


def _list_parameter(name: str, choices, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "array", "items": {"type": "string", "enum": sorted(choices)}, "minItems": 1},
        style="form",
        explode=False,
        description=description,
    )


def _status_dict(status: selectors.ObjectStatus, request) -> dict:
    data = asdict(status)
    data["admin_url"] = request.build_absolute_uri(status.admin_path)
    return data


class StatusView(GrantedObjectsAPIView):
    model = Connection
    scope = READ
    FILTERS = ("vendor", "state")

    @extend_schema(
        summary="Integration status",
        description=(
            "State (healthy, degraded, failing, paused), last and active run, next scheduled "
            "run, time since the last success, error rate over 24 h, uptime over 24 h and 7 d "
            "and open dead letters of every connection, sync and export schedule you may see. "
            "The state rule is in docs/operations.md. Needs the `integrations:read` scope."
        ),
        parameters=[
            _list_parameter(
                "vendor",
                REGISTRY,
                "Only these vendors (export schedules have none and are left out when this is "
                "given).",
            ),
            _list_parameter("state", selectors.STATES, "Only objects in these states."),
        ],
        responses={
            200: out.StatusSerializer,
            400: OpenApiResponse(
                FIELD_ERRORS,
                description="an unknown parameter or value (the message lists the allowed ones)",
            ),
            401: UNAUTHENTICATED,
            403: _scope_refused(READ),
            414: URL_TOO_LONG,
        },
    )
    def get(self, request):
        unknown = sorted(set(request.query_params) - set(self.FILTERS))
        if unknown:
            raise ValidationError(
                {
                    name: [f"unknown parameter; allowed: {', '.join(self.FILTERS)}"]
                    for name in unknown
                }
            )
        vendors = _filter_values(request, "vendor", REGISTRY)
        states = _filter_values(request, "state", selectors.STATES)
        now = timezone.now()
        user = request.user
        connections = objects_for(user, Connection)
        syncs = objects_for(user, Sync)
        if vendors:
            connections = connections.filter(vendor__in=vendors)
            syncs = syncs.filter(connection__vendor__in=vendors)
        found = {
            "connections": selectors.connection_statuses(connections, now=now),
            "syncs": selectors.sync_statuses(syncs, now=now),
            "export_schedules": []
            if vendors
            else selectors.export_statuses(objects_for(user, ExportSchedule), now=now),
        }
        body = {"generated_at": now}
        for kind, items in found.items():
            body[kind] = [
                _status_dict(item, request) for item in items if not states or item.state in states
            ]
        return Response(out.StatusSerializer(body).data)


class ConfigureView(GrantedObjectsAPIView):
    model = Connection
    scope = CONFIGURE
    body_path = "document"  # errors about the body as a whole name it so
    parser_classes = json_parsers()

    @extend_schema(
        summary="Create or update a connection, its syncs, mappings and schedules",
        description=(
            "One JSON document (docs/configure-api.md), validated as a whole and applied in "
            "one transaction. Idempotent: the same document again answers `changed: false`. "
            "`dry_run: true` answers the diff without applying it. Credentials are "
            "write-only. Needs the `integrations:configure` scope and the object grants."
        ),
        request=ConfigureDocument,
        responses={
            200: out.ConfigureResultSerializer,
            400: OpenApiResponse(
                ErrorsSerializer,
                description="every error by JSON path (a body that is not a JSON object: path "
                "`document`); nothing changed",
            ),
            401: UNAUTHENTICATED,
            403: OpenApiResponse(
                out.RefusalSerializer,
                description="changes you may not make, each by path, or a token without the "
                f"`{CONFIGURE}` scope; nothing changed",
            ),
            404: detail_response("the document names an object not visible to you"),
            413: BODY_TOO_LARGE,
            415: UNSUPPORTED_MEDIA_TYPE,
        },
    )
    def post(self, request):
        data = request.data
        if not isinstance(data, dict):
            return Response(
                errors_body(
                    [(self.body_path, "the document must be a JSON object")], "invalid document"
                ),
                status=http.HTTP_400_BAD_REQUEST,
            )
        unknown = unknown_keys(ConfigureDocument(), data)
        document = ConfigureDocument(data=data)
        if not document.is_valid():
            errors = unknown + flatten(document.errors)
            return Response(
                errors_body(errors, f"{len(errors)} error(s); nothing was changed"),
                status=http.HTTP_400_BAD_REQUEST,
            )
        try:
            result = configure_apply(
                document=document.validated_data, user=request.user, extra_errors=unknown
            )
        except NotVisible as exc:
            return Response({"detail": str(exc)}, status=http.HTTP_404_NOT_FOUND)
        except ConfigureInvalid as exc:
            return Response(
                errors_body(exc.errors, f"{len(exc.errors)} error(s); nothing was changed"),
                status=http.HTTP_400_BAD_REQUEST,
            )
        except ConfigureForbidden as exc:
            return Response(
                errors_body(exc.refusals, "you may not make these changes; nothing was changed"),
                status=http.HTTP_403_FORBIDDEN,
            )
        return Response(
            {
                "changed": result.changed,
                "dry_run": result.dry_run,
                "diff": result.diff,
                "config": result.config,
                "version": result.version,
            }
        )


def _sync_run_url(request, run_id: int) -> str:
    return request.build_absolute_uri(reverse("operations:sync-run", args=[run_id]))


def _export_run_url(request, run_id: int) -> str:
    return request.build_absolute_uri(reverse("operations:export-run", args=[run_id]))


def _run_started(request, run, run_url) -> Response:
    return Response(
        {"run_id": run.pk, "status": run.status, "url": run_url(request, run.pk)},
        status=http.HTTP_202_ACCEPTED,
    )


def _run_refused(request, detail: str, code: str, running_id=None, run_url=None) -> Response:
    """409: a run is already going (its id and URL), or the object may not run now."""
    return Response(
        {
            "detail": detail,
            "code": code,
            "running_run_id": running_id,
            "url": run_url(request, running_id) if running_id else None,
        },
        status=http.HTTP_409_CONFLICT,
    )


def _options(serializer_class, request, nothing_done: str):
    """The request body's options, or a 400 naming each fault by path."""
    options = serializer_class(data=request.data or {})
    if options.is_valid():
        return options.validated_data, None
    errors = flatten(options.errors)
    body = errors_body(errors, f"{len(errors)} error(s); {nothing_done}")
    return None, Response(body, status=http.HTTP_400_BAD_REQUEST)


class DeadLetterReplayView(GrantedObjectsAPIView):
    model = Sync
    scope = RUN

    @extend_schema(
        summary="Replay a sync's dead letters",
        description="Sends the open dead letters (or the ones listed) again, with the source's "
        "current data, in a new run: what the admin's Replay action does. Needs the sync's "
        "replay grant (`replay_deadletters`) and the `integrations:run` scope.",
        request={"application/json": out.ReplayRequestSerializer},
        responses={
            200: out.ReplayedSerializer,
            400: OpenApiResponse(ErrorsSerializer, description="the ids are wrong, by path"),
            401: UNAUTHENTICATED,
            403: _scope_refused(RUN, "you may see the sync but not replay its dead letters"),
            404: detail_response("no such sync visible to you"),
            413: BODY_TOO_LARGE,
        },
    )
    def post(self, request, pk: int):
        sync = self.get_granted(pk, perm="integrations.replay_deadletters")
        options, refused = _options(out.ReplayRequestSerializer, request, "nothing was replayed")
        if refused is not None:
            return refused
        count, run = deadletters_replay(sync=sync, user=request.user, ids=options.get("ids"))
        return Response(
            {
                "replayed": count,
                "run_id": run.pk if run else None,
                "url": _sync_run_url(request, run.pk) if run else None,
            }
        )


class SyncRunStartView(GrantedObjectsAPIView):
    model = Sync
    scope = RUN

    @extend_schema(
        summary="Start a sync run now",
        description="Queues a run (as after an upstream job). Needs the sync's run grant and "
        "the `integrations:run` scope.",
        request={"application/json": out.SyncRunRequestSerializer},
        responses={
            202: out.RunStartedSerializer,
            400: OpenApiResponse(ErrorsSerializer, description="the options are wrong, by path"),
            401: UNAUTHENTICATED,
            403: _scope_refused(RUN, "you may see the sync but not run it"),
            404: detail_response("no such sync visible to you"),
            409: OpenApiResponse(
                out.RunConflictSerializer,
                description="a run is already going, or the sync is paused",
            ),
            413: BODY_TOO_LARGE,
        },
    )
    def post(self, request, pk: int):
        sync = self.get_granted(pk, perm="integrations.run_sync")
        options, refused = _options(out.SyncRunRequestSerializer, request, "no run was started")
        if refused is not None:
            return refused
        if sync.paused or not sync.enabled:
            reason = (sync.pause_reason or "paused") if sync.paused else "disabled"
            return _run_refused(request, f"sync is paused: {reason}", "paused")
        try:
            run = sync_run_start(
                sync=sync,
                trigger=Trigger.API,
                user=request.user,
                full=options["full"],
            )
        except SyncBusy as busy:
            running = busy.run.pk if busy.run else None
            return _run_refused(request, str(busy), "busy", running, _sync_run_url)
        return _run_started(request, run, _sync_run_url)


class ExportRunStartView(GrantedObjectsAPIView):
    model = ExportSchedule
    scope = RUN

    @extend_schema(
        summary="Start an export schedule's run now",
        description="Queues a run of the schedule (its file is delivered as on schedule). "
        f"Needs the schedule's run grant and the `{RUN}` scope. No body.",
        request=None,
        responses={
            202: out.RunStartedSerializer,
            401: UNAUTHENTICATED,
            403: _scope_refused(RUN, "you may see the schedule but not run it"),
            404: detail_response("no such export schedule visible to you"),
            409: OpenApiResponse(
                out.RunConflictSerializer, description="a run is already going, or too soon"
            ),
        },
    )
    def post(self, request, pk: int):
        schedule = self.get_granted(pk, perm="exports.run_exportschedule")
        run = export_run_start(schedule=schedule, trigger=RunTrigger.MANUAL, user=request.user)
        if run.status == ExportRunStatus.SKIPPED:
            active = (
                schedule.runs.filter(status__in=selectors.EXPORT_ACTIVE).exclude(pk=run.pk).first()
            )
            return _run_refused(
                request,
                run.error,
                "busy" if active else "too_soon",
                active.pk if active else None,
                _export_run_url,
            )
        return _run_started(request, run, _export_run_url)


class SyncRunDetailView(GrantedObjectsAPIView):
    model = Sync
    scope = READ

    @extend_schema(
        summary="A sync run: status, progress and counts per bucket",
        description=f"A run of a sync you may see. Needs the `{READ}` scope.",
        responses={
            200: out.SyncRunDetailSerializer,
            401: UNAUTHENTICATED,
            403: _scope_refused(READ),
            404: detail_response("no such run of a sync visible to you"),
        },
    )
    def get(self, request, pk: int):
        run = (
            SyncRun.objects.filter(pk=pk, sync__in=self.visible())
            .exclude(status=RunStatus.PREVIEW)
            .select_related("sync")
            .first()
        )
        if run is None:
            return Response(
                {"detail": f"No sync run {pk} is visible to you."}, status=http.HTTP_404_NOT_FOUND
            )
        body = {
            **sync_run_summary(run),
            "sync_id": run.sync_id,
            "sync_name": run.sync.name,
            "url": _sync_run_url(request, run.pk),
        }
        return Response(out.SyncRunDetailSerializer(body).data)


class ExportRunDetailView(GrantedObjectsAPIView):
    model = ExportSchedule
    scope = READ

    @extend_schema(
        summary="An export run: status, rows and bytes",
        description=f"A run of an export schedule you may see. Needs the `{READ}` scope.",
        responses={
            200: out.ExportRunDetailSerializer,
            401: UNAUTHENTICATED,
            403: _scope_refused(READ),
            404: detail_response("no such run of an export schedule visible to you"),
        },
    )
    def get(self, request, pk: int):
        run = (
            ExportRun.objects.filter(pk=pk, schedule__in=self.visible())
            .select_related("schedule")
            .first()
        )
        if run is None:
            return Response(
                {"detail": f"No export run {pk} is visible to you."}, status=http.HTTP_404_NOT_FOUND
            )
        body = {
            **export_run_summary(run),
            "schedule_id": run.schedule_id,
            "schedule_name": run.schedule.name,
            "url": _export_run_url(request, run.pk),
        }
        return Response(out.ExportRunDetailSerializer(body).data)
