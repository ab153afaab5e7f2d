"""The sync editor: a sync's filters and destination settings as form fields, and the number
of records the filters match.

- One field per filter the sync's dataset declares (``exports.datasets.DatasetFilter``): a
  choice of values for a list with declared choices, else comma-separated text; a number with
  the filter's range for a minimum or maximum; a date-time for "since"; yes/no/any for a flag.
  The values are checked by the one filter validator, ``exports.query.export_query_parse``
  (as the export API and ``sync_validate`` check them), filter by filter so that each error
  is shown at its field; the sync's ``filters`` JSON keeps the export API's shape.
- One field per ``destination_config`` key the connector declares (``Connector.config_fields``):
  a choice of what the vendor offers (Mailchimp's audiences), or a text input saying why the
  vendor could not be asked. The values are checked when the sync is saved (``sync_validate``).
- ``filter_count_view``: the matching records as JSON, for the editor's script
  (``mktintegration/static/mktintegration/sync_filters.js``); a saved sync's count is also on
  the page as rendered. A count over a personal dataset is access-logged.

Each request builds its form class once (``editor_form``): the fields follow the dataset and
the destination posted, else the sync's, else the add page's query string (``?dataset=``).
The page says which dataset and destination its fields were for (``filters_for``,
``config_for``): values posted for fields the page did not show are not saved unseen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from django import forms
from django.http import HttpResponseNotAllowed, JsonResponse
from django.urls import reverse
from django.utils.html import format_html

from audit.models import Outcome
from audit.pages import admin_actor
from audit.services import access_log_write
from exports.datasets import DATASETS, Dataset, DatasetFilter, FilterKind
from exports.query import ExportInputError, export_query_parse
from integrations.connectors import REGISTRY
from integrations.connectors.base import ConfigField
from integrations.engine.source import SourceReader
from integrations.models import Connection, Sync
from integrations.selectors import connector_for
from integrations.sync_pickers import sync_pickers
from mktintegration import bounds
from mktintegration.errors import ConnectorError

FILTER_PREFIX = "filter_"
CONFIG_PREFIX = "config_"
FILTERS_FOR = "filters_for"
CONFIG_FOR = "config_for"
_BOOL_CHOICES = [("", "any"), ("true", "yes"), ("false", "no")]
_DATETIME_INPUT = "%Y-%m-%dT%H:%M:%S"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


# --- filters -----------------------------------------------------------------------------


def filter_field(spec: DatasetFilter) -> forms.Field:
    """The form field of one dataset filter (the values are checked by the filter validator)."""
    label = spec.name.replace("_", " ").capitalize()
    if spec.kind == FilterKind.SEGMENT:
        from exports.backbone.segments import segment_keys

        return forms.MultipleChoiceField(
            label=label,
            required=False,
            choices=[(key, f"{name} ({key})") for key, name in segment_keys(spec.subject)],
            widget=forms.CheckboxSelectMultiple,
            help_text=f"Only the {spec.subject}s in every segment ticked (none ticked: any); "
            "a record that joins or leaves one is planned again (docs/segments.md).",
        )
    if spec.kind == FilterKind.IN and spec.choices:
        return forms.MultipleChoiceField(
            label=label,
            required=False,
            choices=[(c, c) for c in spec.choices],
            widget=forms.CheckboxSelectMultiple,
            help_text=f"{_sentence(spec.description.split(',')[0])}: any of those ticked "
            "(none ticked: any).",
        )
    if spec.kind == FilterKind.IN:
        return forms.CharField(
            label=label,
            required=False,
            max_length=bounds.PARAM_CHARS,
            help_text=f"{_sentence(spec.description)} (empty: any).",
        )
    if spec.kind in (FilterKind.MIN, FilterKind.MAX):
        allowed = spec.range or bounds.INTEGER
        return forms.CharField(
            label=label,
            required=False,
            max_length=40,
            widget=forms.NumberInput(
                attrs={"min": int(allowed.minimum), "max": int(allowed.maximum), "step": 1}
            ),
            help_text=f"{_sentence(spec.description)}: a whole number {allowed.describe()} "
            "(empty: no limit).",
        )
    if spec.kind == FilterKind.SINCE:
        return forms.CharField(
            label=label,
            required=False,
            max_length=64,
            widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": 1}),
            help_text=f"{_sentence(spec.description)}, in UTC (empty: any time).",
        )
    return forms.ChoiceField(
        label=label, required=False, choices=_BOOL_CHOICES, help_text="Yes, no or any."
    )


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value or "").strip()


def _stored(spec: DatasetFilter, value: Any) -> Any:
    """A parsed filter value as the sync's JSON keeps it (the export API's parameters)."""
    if spec.kind == FilterKind.IN:
        return ",".join(value)
    if spec.kind == FilterKind.SEGMENT:
        return ",".join(segment.key for segment in value)
    if spec.kind == FilterKind.SINCE:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value  # a whole number, or true/false


def filters_from_values(
    dataset: Dataset, values: dict[str, Any], errors: dict[str, str]
) -> dict[str, Any]:
    """The filters JSON from the editor's values (by filter name); each filter is checked by
    the filter validator, its message kept in ``errors`` under the filter's name."""
    filters: dict[str, Any] = {}
    for spec in dataset.filters:
        text = _as_text(values.get(spec.name))
        if not text:
            continue
        try:
            query = export_query_parse(dataset, {spec.name: text}, allow_cursor=False)
        except ExportInputError as exc:
            errors[spec.name] = exc.message
            continue
        filters[spec.name] = _stored(spec, query.filters[spec.name])
    return filters


def filter_initial(dataset: Dataset, stored: dict) -> dict[str, Any]:
    """The editor's initial values (by field name) for a sync's stored filters."""
    initial: dict[str, Any] = {}
    for spec in dataset.filters:
        if spec.name not in (stored or {}):
            continue
        name = FILTER_PREFIX + spec.name
        try:
            value = export_query_parse(dataset, {spec.name: stored[spec.name]}).filters[spec.name]
        except ExportInputError:
            initial[name] = _as_text(stored[spec.name])  # shown as it is, refused on save
            continue
        if spec.kind == FilterKind.SEGMENT:
            initial[name] = [segment.key for segment in value]
        elif spec.kind == FilterKind.IN:
            initial[name] = value if spec.choices else ",".join(value)
        elif spec.kind == FilterKind.SINCE:
            initial[name] = value.astimezone(UTC).strftime(_DATETIME_INPUT)
        elif spec.kind == FilterKind.BOOL:
            initial[name] = "true" if value else "false"
        else:
            initial[name] = str(value)
    return initial


def _posted(data, prefix: str) -> bool:
    """Whether any value was posted for a field named ``prefix...`` (shown on the page, if
    perhaps not one of this request's fields)."""
    for name in data:
        if name.startswith(prefix):
            values = data.getlist(name) if hasattr(data, "getlist") else [data[name]]
            if any(str(v).strip() for v in values):
                return True
    return False


def count_matching(*, dataset: Dataset, filters: dict) -> int:
    """The records of ``dataset`` the filters match: one COUNT on the backbone."""
    query = export_query_parse(dataset, filters, allow_cursor=False)
    return SourceReader(query, []).count_changed(None)


def count_text(count: int) -> str:
    return f"{count:,} record matches" if count == 1 else f"{count:,} records match"


def _count_logged(request, *, dataset: Dataset, filters: dict, sync: Sync | None) -> int:
    """Count, and access-log the count when the dataset holds personal data."""
    started = time.monotonic()
    count = count_matching(dataset=dataset, filters=filters)
    if dataset.personal_data:
        where = f"sync {sync.pk} ({sync.name})" if sync is not None else "a new sync"
        access_log_write(
            **admin_actor(request),
            dataset=dataset.name,
            filters=filters,
            rows=0,
            duration_ms=int((time.monotonic() - started) * 1000),
            outcome=Outcome.OK,
            status_code=200,
            detail=f"sync editor, {where}: {count:,} matching records counted (none read)",
        )
    return count


class _Marker(forms.HiddenInput):
    """A hidden input holding what this page's fields are for, whatever was posted."""

    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker

    def get_context(self, name, value, attrs):
        return super().get_context(name, self.marker, attrs)


class MatchCountWidget(forms.Widget):
    """The matching records, updated by the editor's script; carries which dataset the
    filter fields on the page are for (``filters_for``)."""

    def __init__(self, *, editor: EditorState):
        super().__init__()
        self.editor = editor

    def render(self, name, value, attrs=None, renderer=None):
        editor = self.editor
        dataset = editor.dataset
        assert dataset is not None
        return format_html(
            '<input type="hidden" name="{}" value="{}">'
            '<output id="{}" class="mkt-filter-count" aria-live="polite" data-count-url="{}" '
            'data-dataset="{}" data-dataset-label="{}" data-sync="{}" data-counted="{}">'
            "{}</output>",
            name,
            dataset.name,
            (attrs or {}).get("id", f"id_{name}"),
            editor.count_url,
            dataset.name,
            dataset.label,
            editor.sync.pk if editor.sync is not None else "",
            "1" if editor.sync is not None else "",
            editor.saved_count_text(),
        )


# --- destination settings ----------------------------------------------------------------


def config_form_field(spec: ConfigField, *, options: dict[str, str] | None, reason: str, stored):
    """A destination setting's field: a choice of the vendor's values, else text with the
    reason the vendor could not be asked; a yes/no setting is a tick box."""
    help_text = spec.help
    if spec.flag:
        return forms.BooleanField(label=spec.label, required=False, help_text=help_text)
    if options is None:
        if spec.choices is not None:
            help_text += f" The list could not be read ({reason}): type the id."
        if spec.many:
            help_text += " Several: comma-separated."
        return forms.CharField(
            label=spec.label, required=False, max_length=bounds.PARAM_CHARS, help_text=help_text
        )
    choices = sorted(((key, f"{name} ({key})") for key, name in options.items()), key=_by_name)
    known = set(options)
    for value in stored if isinstance(stored, list) else [stored] if stored else []:
        if str(value) not in known:  # kept selectable; the save says what is wrong with it
            choices.append((str(value), f"{value} (not in the account now)"))
    if spec.many:
        return forms.MultipleChoiceField(
            label=spec.label,
            required=False,
            choices=choices,
            widget=forms.CheckboxSelectMultiple,
            help_text=help_text,
        )
    return forms.ChoiceField(
        label=spec.label, required=False, choices=[("", "---------"), *choices], help_text=help_text
    )


def _by_name(choice: tuple[str, str]) -> str:
    return choice[1].lower()


def _config_value(spec: ConfigField, value: Any) -> Any:
    if spec.flag:
        return True if value else ""
    if spec.many:
        values = value if isinstance(value, list) else str(value or "").split(",")
        return [v.strip() for v in values if str(v).strip()]
    return str(value or "").strip()


def _config_initial(spec: ConfigField, stored: Any, *, options: dict | None) -> Any:
    if stored in (None, "", []):
        return None
    if spec.flag:
        return stored is True
    if spec.many and options is None:
        return ",".join(str(v) for v in stored) if isinstance(stored, list) else str(stored)
    if spec.many:
        return [str(v) for v in stored] if isinstance(stored, list) else [str(stored)]
    return str(stored)


# --- the editor --------------------------------------------------------------------------


@dataclass
class EditorState:
    """What one request's sync form shows: the dataset's filters, the destination's settings."""

    request: Any
    sync: Sync | None
    dataset: Dataset | None
    connection: Connection | None
    object_name: str
    count_url: str
    config: list[ConfigField] = field(default_factory=list)
    object_known: bool = False  # the connection's tool has the object: config is its settings
    options: dict[str, dict[str, str] | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    filters_applied: bool = False
    config_applied: bool = False

    @property
    def config_key(self) -> str:
        if not self.config or self.connection is None:
            return ""
        return f"{self.connection.pk}:{self.object_name}"

    def saved_count_text(self) -> str:
        if self.sync is None or self.dataset is None or self.sync.dataset != self.dataset.name:
            return "Counted as you edit the filters."
        try:
            count = _count_logged(
                self.request, dataset=self.dataset, filters=self.sync.filters or {}, sync=self.sync
            )
        except ExportInputError as exc:
            return f"The saved filters are not valid: {exc.message}"
        return count_text(count)

    def fields(self) -> dict[str, forms.Field]:
        made: dict[str, forms.Field] = {}
        stored_config = (self.sync.destination_config if self.sync else None) or {}
        if self.dataset is not None:
            made[FILTERS_FOR] = forms.CharField(
                label="Matching records",
                required=False,
                widget=MatchCountWidget(editor=self),
                initial=self.dataset.name,
                help_text="The records of the dataset these filters select today.",
            )
            initial = filter_initial(
                self.dataset,
                self.sync.filters or {}
                if self.sync and self.sync.dataset == self.dataset.name
                else {},
            )
            for spec in self.dataset.filters:
                made[FILTER_PREFIX + spec.name] = made_field = filter_field(spec)
                made_field.initial = initial.get(FILTER_PREFIX + spec.name)
        for setting in self.config:
            options = self.options.get(setting.name)
            made[CONFIG_PREFIX + setting.name] = config_form_field(
                setting,
                options=options,
                reason=self.reasons.get(setting.name, ""),
                stored=stored_config.get(setting.name),
            )
            made[CONFIG_PREFIX + setting.name].initial = _config_initial(
                setting, stored_config.get(setting.name), options=options
            )
        made[CONFIG_FOR] = forms.CharField(
            required=False, widget=_Marker(self.config_key), initial=self.config_key
        )
        return made

    # --- clean -----------------------------------------------------------------------------
    def resolve(self, form: forms.ModelForm, cleaned: dict) -> None:
        """Put the fields' values into ``filters`` and ``destination_config`` (the JSON the
        sync keeps), or say that the page showed other fields than those posted for."""
        data = form.data
        if FILTERS_FOR in data and self.dataset is not None:
            values = {s.name: cleaned.get(FILTER_PREFIX + s.name) for s in self.dataset.filters}
            if data.get(FILTERS_FOR) == self.dataset.name:
                errors: dict[str, str] = {}
                cleaned["filters"] = filters_from_values(self.dataset, values, errors)
                for name, message in errors.items():
                    form.add_error(FILTER_PREFIX + name, message)
                self.filters_applied = True
            elif _posted(data, FILTER_PREFIX):
                form.add_error(
                    "dataset",
                    f"The filters are now those of {self.dataset.label}: check them below "
                    "and save again.",
                )
            else:
                cleaned["filters"] = {}
        if CONFIG_FOR in data and self.config:
            values = {s.name: cleaned.get(CONFIG_PREFIX + s.name) for s in self.config}
            config = dict(cleaned.get("destination_config") or {})
            if data.get(CONFIG_FOR) == self.config_key:
                for spec in self.config:
                    value = _config_value(spec, values[spec.name])
                    if value in ("", []):
                        config.pop(spec.name, None)
                    else:
                        config[spec.name] = value
                self.config_applied = True
            elif _posted(data, CONFIG_PREFIX):
                form.add_error(
                    "destination_object",
                    "The destination's settings are now those of this connection and object: "
                    "choose them below and save again.",
                )
            cleaned["destination_config"] = config
            self.config_applied = True

    def error_target(self, field_name: str, message: str, *, default: str | None) -> str | None:
        """Where an error of ``sync_validate`` goes: the editor's field it is about."""
        if field_name == "filters" and self.filters_applied and self.dataset is not None:
            for spec in self.dataset.filters:
                if message.startswith(spec.name):
                    return FILTER_PREFIX + spec.name
            return None
        if field_name == "destination_config" and self.config_applied:
            named = [s for s in self.config if f"'{s.name}'" in message or s.name in message]
            return CONFIG_PREFIX + (named or self.config)[0].name
        return default


def _pk(raw: Any) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and len(text) <= 18 else None


def _usable_connection(user, pk: int | None, sync: Sync | None) -> Connection | None:
    """The connection, if the user may pick it (as the sync form's connection choice)."""
    if pk is None:
        return None
    connection = Connection.objects.filter(pk=pk).first()
    if connection is None:
        return None
    if sync is not None and sync.connection_id == pk:
        return connection
    for perm in ("integrations.view_connection", "integrations.change_connection"):
        if user.has_perm(perm) or user.has_perm(perm, connection):
            return connection
    return None


def add_page_sync(request) -> Sync:
    """The unsaved sync an add page's query string describes (``?connection=&dataset=&
    destination_object=``, as the page re-opens itself when they are chosen), so its mapping
    rows pick from the right lists; a connection the user may not use is left out."""
    query = request.GET
    sync = Sync(
        dataset=str(query.get("dataset") or "")[:32],
        destination_object=str(query.get("destination_object") or "")[:64],
    )
    connection = _usable_connection(request.user, _pk(query.get("connection")), None)
    if connection is not None:
        sync.connection = connection
    return sync


def editor_state(*, request, sync: Sync | None, count_url: str) -> EditorState:
    """The fields this request's form shows: posted values first, then the sync's, then the
    add page's query string."""
    posted = request.POST if request.method == "POST" else {}

    def pick(name: str, saved: Any) -> Any:
        if name in posted:
            return posted.get(name)
        if sync is not None:
            return saved
        return request.GET.get(name)

    dataset = DATASETS.get(str(pick("dataset", sync.dataset if sync else None) or ""))
    if dataset is None and sync is None and "dataset" not in posted:
        dataset = next(iter(DATASETS.values()))
    connection = _usable_connection(
        request.user, _pk(pick("connection", sync.connection_id if sync else None)), sync
    )
    object_name = str(pick("destination_object", sync.destination_object if sync else "") or "")
    state = EditorState(
        request=request,
        sync=sync,
        dataset=dataset,
        connection=connection,
        object_name=object_name[:64],
        count_url=count_url,
    )
    connector_cls = REGISTRY.get(connection.vendor) if connection else None
    if connection is None or connector_cls is None or object_name not in connector_cls.objects:
        return state
    state.config = connector_cls.config_fields(object_name)
    state.object_known = True
    _load_options(state, connection)
    return state


def _load_options(state: EditorState, connection: Connection) -> None:
    """Ask the vendor for each setting's values; a vendor that does not answer leaves the
    setting a text input saying why."""
    loaders = [spec for spec in state.config if spec.choices is not None]
    if not loaders:
        return
    try:
        connector = connector_for(connection)
    except (ConnectorError, ValueError, KeyError) as exc:
        for spec in loaders:
            state.options[spec.name], state.reasons[spec.name] = None, _reason(exc)
        return
    try:
        for spec in loaders:
            assert spec.choices is not None
            try:
                state.options[spec.name] = spec.choices(connector)
            except (ConnectorError, ValueError, KeyError, OSError) as exc:
                state.options[spec.name], state.reasons[spec.name] = None, _reason(exc)
    finally:
        connector.http.close()


def _reason(exc: Exception) -> str:
    text = exc.message if isinstance(exc, ConnectorError) else str(exc)
    return text[:300] or type(exc).__name__


def editor_form(base: type[forms.ModelForm], *, request, sync: Sync | None, admin_site):
    """This request's sync form: ``base`` with the editor's fields in their places (built once
    per request: choices may come from the vendor)."""
    cache = request.__dict__.setdefault("_sync_editor_forms", {})
    key = (base, sync.pk if sync else None)
    if key in cache:
        return cache[key]
    count_url = reverse(f"{admin_site.name}:integrations_sync_filter_count")
    state = editor_state(request=request, sync=sync, count_url=count_url)
    extra = state.fields()
    order: list[str] = []
    for name in base._meta.fields or ():
        order.append(name)
        if name == "dataset":
            order += [n for n in extra if n == FILTERS_FOR or n.startswith(FILTER_PREFIX)]
        if name == "destination_object":
            order += [n for n in extra if n.startswith(CONFIG_PREFIX)]
        if name == "destination_config":
            order.append(CONFIG_FOR)
    widgets = {"filters": forms.HiddenInput} if state.dataset is not None else {}
    # The JSON box only for what the fields do not cover: an object not known yet, or settings
    # stored (through the configure API) for an object that declares none.
    stored = (sync.destination_config if sync else None) or {}
    if state.config or (state.object_known and not stored):
        widgets["destination_config"] = forms.HiddenInput
    meta = type("Meta", (base.Meta,), {"fields": order, "widgets": widgets})  # type: ignore[attr-defined]
    dataset_field = base.base_fields["dataset"]
    dataset = forms.ChoiceField(
        choices=dataset_field.choices,  # type: ignore[attr-defined]
        help_text="Changing the dataset shows its filters when you save and continue editing.",
    )
    picks = sync_pickers(
        sync=sync, dataset=state.dataset, connection=state.connection, object_name=state.object_name
    )
    attrs = {**extra, **picks, "dataset": dataset, "Meta": meta, "editor": state, "Media": _Media}
    form = type(base.__name__, (base,), attrs)
    cache[key] = form
    return form


class _Media:
    js = ("mktintegration/sync_filters.js",)


# --- the count view ----------------------------------------------------------------------


def _refused(status: int, field_name: str, message: str) -> JsonResponse:
    return JsonResponse({"field": field_name, "error": message}, status=status)


def filter_count_view(request, *, model_admin):
    """GET ?dataset=...&filter_<name>=...[&sync=<id>]: {"count": N, "text": "N records
    match"}. For who may add syncs, or change the sync named."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    sync = None
    if "sync" in request.GET:
        pk = _pk(request.GET["sync"])
        if pk is None:
            return _refused(400, "sync", "sync: give the id of a sync")
        sync = Sync.objects.filter(pk=pk).first()
        if sync is None or not model_admin.has_view_permission(request, sync):
            return _refused(404, "sync", f"sync: no sync {pk} you may see")
        if not model_admin.has_change_permission(request, sync):
            return _refused(403, "sync", "You may not change this sync.")
    elif not model_admin.has_add_permission(request):
        return _refused(403, "dataset", "Counting matching records is for who may add syncs.")
    dataset = DATASETS.get(request.GET.get("dataset", ""))
    if dataset is None:
        return _refused(400, "dataset", f"dataset: one of {', '.join(DATASETS)}")
    fields = {FILTER_PREFIX + s.name: filter_field(s) for s in dataset.filters}
    form = type("FilterCountForm", (forms.Form,), dict(fields))(request.GET)
    if not form.is_valid():
        name, messages = next(iter(form.errors.items()))
        return _refused(400, name, f"{name.removeprefix(FILTER_PREFIX)}: {messages[0]}")
    errors: dict[str, str] = {}
    values = {s.name: form.cleaned_data.get(FILTER_PREFIX + s.name) for s in dataset.filters}
    filters = filters_from_values(dataset, values, errors)
    if errors:
        name, message = next(iter(errors.items()))
        return _refused(400, FILTER_PREFIX + name, message)
    count = _count_logged(request, dataset=dataset, filters=filters, sync=sync)
    return JsonResponse({"count": count, "text": count_text(count), "filters": filters})
