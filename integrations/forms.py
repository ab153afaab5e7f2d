"""Admin forms: write-only credentials, and sync validation as field errors."""

from __future__ import annotations

import json
from functools import cached_property

from django import forms
from django.core.exceptions import ValidationError
from django.forms.utils import pretty_name

from exports.datasets import DATASETS
from integrations.connectors import REGISTRY
from integrations.credentials import connection_credentials_save, credentials_plan
from integrations.mapping_rules import mapping_problems, suggested_transform
from integrations.mapping_widgets import (
    MappingEditor,
    OpenChoiceField,
    OptionDataSelect,
    mapping_editor,
    with_current,
)
from integrations.models import Connection, FieldMapping, Sync
from integrations.services import sync_destination_fields, sync_validate
from integrations.sync_editor import add_page_sync
from mktintegration.admin_base import secrets_status
from mktintegration.errors import ConnectorError


def _secret_names() -> list[str]:
    names = []
    for connector in REGISTRY.values():
        for fields in connector.secret_fields.values():
            names += [f for f in fields if f not in names]
    return names


def credentials_status(connection: Connection | None) -> str:
    """Whether each secret the connection's auth kind declares is stored ("Token: stored
    (hidden)"), for who may see the connection but not edit its credentials."""
    connector = REGISTRY.get(connection.vendor) if connection else None
    names = connector.secret_fields.get(connection.auth_kind, ()) if connector else ()
    return secrets_status(
        declared=[(name, pretty_name(name)) for name in names],
        stored=connection.get_credentials if connection else dict,
    )


class ConnectionForm(forms.ModelForm):
    """Credentials are write-only: never rendered back, blank keeps what is stored. What is
    stored is worked out and written by integrations.credentials (as for the configure API
    and Connect); OAuth tokens come by Connect, not through this form."""

    vendor = forms.ChoiceField()
    auth_kind = forms.ChoiceField()
    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="Override the vendor's API address (allowed hosts only).",
    )
    clear_credentials = forms.BooleanField(
        required=False, help_text="Remove the stored credentials."
    )

    class Meta:
        model = Connection
        fields = [
            "name",
            "vendor",
            "auth_kind",
            "config",
            "base_url",
            "allowed_regions",
            "rate_limit_requests",
            "rate_limit_seconds",
            "daily_quota_requests",
        ]

    def __init__(self, *args, can_edit_credentials: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vendor"].choices = [(slug, c.label) for slug, c in sorted(REGISTRY.items())]
        kinds = sorted({k for c in REGISTRY.values() for k in c.auth_kinds})
        self.fields["auth_kind"].choices = [(k, k.replace("_", " ")) for k in kinds]
        self.can_edit_credentials = can_edit_credentials
        stored = bool(self.instance.pk and self.instance.credentials_ciphertext)
        for name in _secret_names():
            self.fields[name] = forms.CharField(
                required=False,
                strip=True,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
                help_text=(
                    "Stored. Leave blank to keep it." if stored else "Needed for this auth kind."
                )
                if can_edit_credentials
                else "Managed by an Integration Admin.",
                disabled=not can_edit_credentials,
            )
        if not can_edit_credentials:
            self.fields["clear_credentials"].disabled = True

    def clean(self):
        cleaned = super().clean()
        self.credentials = None
        connector = REGISTRY.get(cleaned.get("vendor"))
        if connector and self.can_edit_credentials and cleaned.get("auth_kind"):
            typed = connector.secret_fields.get(cleaned["auth_kind"], ())
            self.credentials = credentials_plan(
                connection=Connection(
                    pk=self.instance.pk, vendor=cleaned["vendor"], auth_kind=cleaned["auth_kind"]
                ),
                given={name: cleaned.get(name) or "" for name in typed},
                clear=bool(cleaned.get("clear_credentials")),
            )
            for name, message in self.credentials.problems:
                self.add_error(name if name in self.fields else None, message)
        return cleaned

    def save(self, commit=True):
        """The connection; with ``commit`` saved, its credentials through the one service
        (the admin saves with commit=False, then ``save_credentials``)."""
        connection = super().save(commit=False)
        if commit:
            self.save_credentials(connection)
        return connection

    def save_credentials(self, connection, *, user=None) -> None:
        if self.credentials is None:  # may not edit credentials: the stored ones stay
            connection.save()
            return
        connection_credentials_save(
            connection=connection, values=self.credentials.values, user=user
        )


def _secret_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


# One write-only field per secret any connector declares (token, api_key, ...).
for _name in _secret_names():
    ConnectionForm.declared_fields[_name] = ConnectionForm.base_fields[_name] = _secret_field()


class SyncForm(forms.ModelForm):
    dataset = forms.ChoiceField(choices=[(name, d.label) for name, d in DATASETS.items()])
    # The admin's sync editor (integrations.sync_editor) subclasses this form per request: the
    # dataset's filters and the connector's destination settings as fields (its EditorState).
    editor = None

    class Meta:
        model = Sync
        fields = [
            "name",
            "connection",
            "dataset",
            "filters",
            "destination_object",
            "destination_config",
            "mode",
            "match_source_field",
            "match_destination_field",
            "consent_purpose",
            "cron",
            "every_minutes",
            "realtime",
            "enabled",
            "mirror_max_delete_share",
            "lookback_minutes",
        ]

    def clean(self):
        cleaned = super().clean()
        if self.editor is not None:
            self.editor.resolve(self, cleaned)
        if self.errors:
            return cleaned
        sync = self.instance
        model_fields = {f.name for f in sync._meta.fields}
        for name, value in cleaned.items():
            if name in model_fields:
                setattr(sync, name, value)
        try:
            sync_validate(sync, [])  # the mappings are checked by their formset
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    if field == "mappings":
                        continue
                    target = field if field in self.fields else None
                    if self.editor is not None:
                        target = self.editor.error_target(field, message, default=target)
                    if target is None:
                        message = f"{field}: {message}"
                    self.add_error(target, message)
        return cleaned


class MappingFormSet(forms.BaseInlineFormSet):
    """The mapping rows, checked by the one mapping validator (integrations.mapping_rules).

    With ``editor_request`` (set per request by the admin's inline) every row, the empty one
    that "add another" copies included, picks from the editor's lists (mapping_widgets)."""

    editor_request = None
    editor_may_change = False

    @cached_property
    def editor(self) -> MappingEditor | None:
        """Built when the rows are, after the sync form has put its values on the sync."""
        request = self.editor_request
        if request is None:
            return None
        sync = self.instance
        if sync.pk is None and request.method == "GET":
            sync = add_page_sync(request)
        return mapping_editor(sync=sync, request=request, may_change=self.editor_may_change)

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "editor": self.editor}

    def _destination_fields(self, sync):
        """The destination's fields, as the editor read them (one request to the vendor)."""
        editor = self.editor
        if editor is not None and editor.destination_error is not None:
            raise editor.destination_error
        if editor is not None and editor.destination is not None:
            return editor.destination
        return sync_destination_fields(sync)

    def clean(self):
        super().clean()
        sync = self.instance
        dataset = DATASETS.get(sync.dataset)
        if dataset is None:
            return  # the sync form says so
        connector = REGISTRY.get(sync.connection.vendor) if sync.connection_id else None
        known = None
        if connector is not None and sync.destination_object in connector.objects:
            try:
                known = self._destination_fields(sync)
            except ConnectorError as exc:
                raise ValidationError(
                    f"Could not read the destination's fields to check the mapping: {exc}"
                ) from None
        rows = [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE")
        ]
        for problem in mapping_problems(
            [form.instance for form in rows],
            dataset=dataset,
            fields=known,
            label=connector.label if connector else "the destination",
            object_name=sync.destination_object,
            match_field=sync.match_destination_field,
        ):
            if problem.index is None:
                raise ValidationError(problem.message)
            form = rows[problem.index]
            field = problem.field if problem.field in form.fields else None
            form.add_error(field, problem.message)


class FieldMappingForm(forms.ModelForm):
    """One mapping row. With the editor (the admin's), the source is picked from the
    dataset's fields and the destination from the vendor's writable fields (a text input
    when they cannot be read, saying why); the transform the two types suggest is marked."""

    class Meta:
        model = FieldMapping
        fields = [
            "source_field",
            "template",
            "destination_field",
            "transform",
            "value_map",
            "position",
        ]

    def __init__(self, *args, editor: MappingEditor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if editor is not None:
            self._editor_fields(editor)

    def _value(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(self.add_prefix(name)) or "").strip()
        return str(self.initial.get(name) or "")

    def _editor_fields(self, editor: MappingEditor) -> None:
        source, target = self._value("source_field"), self._value("destination_field")
        self.fields["source_field"] = OpenChoiceField(
            max_length=FieldMapping._meta.get_field("source_field").max_length,
            required=False,
            label="source field",
            choices=with_current(editor.source_choices, source, "not a field of the dataset"),
            widget=OptionDataSelect(
                option_attrs={
                    name: {"data-type": editor.source_type(name), "title": title}
                    for name, title in editor.source_titles.items()
                },
                attrs={"data-mapping-filter": ""},
            ),
            help_text="A field of the sync's dataset (its type, an example value), or a template.",
        )
        template = self.fields["template"]
        template.help_text = editor.template_help
        template.widget.attrs["title"] = editor.template_help
        if editor.destination is None:
            field = self.fields["destination_field"]
            field.help_text = editor.reason
            field.widget.attrs.update({"title": editor.reason, "placeholder": "field name"})
        else:
            kinds = {
                name: {"data-kind": str(spec.kind)} for name, spec in editor.destination.items()
            }
            self.fields["destination_field"] = OpenChoiceField(
                max_length=FieldMapping._meta.get_field("destination_field").max_length,
                label="destination field",
                choices=with_current(
                    editor.destination_choices, target, "not a writable field there"
                ),
                widget=OptionDataSelect(option_attrs=kinds, attrs={"data-mapping-filter": ""}),
                help_text="A writable field of the destination: label [name] (type, whether "
                "it is required or unique).",
            )
        transform = self.fields["transform"]
        transform.widget.attrs["data-suggest"] = json.dumps(editor.suggestions)
        sent = "text" if self._value("template") else editor.source_type(source)
        suggestion = suggested_transform(sent, editor.destination_kind(target)) if sent else ""
        if suggestion:
            transform.choices = [
                (value, f"{label} (suggested)" if value == suggestion else label)
                for value, label in transform.choices
            ]
            transform.widget.attrs["data-suggested"] = suggestion
