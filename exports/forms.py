"""Admin forms for destinations (write-only secrets) and schedules (fields as a list)."""

from __future__ import annotations

from django import forms

from exports.datasets import DATASETS
from exports.models import ExportDestination, ExportSchedule
from exports.services import destination_secrets_check
from mktintegration.crypto import SecretsUnreadable, decrypt_secrets
from mktintegration.fields import BoundedJSONFormField

KEEP = "Leave blank to keep the current value."
SECRET_FIELDS = ("password", "private_key", "hmac_secret")


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value: not the stored secret, not what was typed."""

    def format_value(self, value):
        return None


def _password_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class ExportDestinationForm(forms.ModelForm):
    url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text=ExportDestination._meta.get_field("url").help_text,
    )
    password = forms.CharField(
        label="SFTP password", required=False, strip=False, widget=_password_input(), help_text=KEEP
    )
    private_key = forms.CharField(
        label="SFTP private key",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text="An unencrypted OpenSSH or PEM private key, used instead of the password. "
        + KEEP,
    )
    hmac_secret = forms.CharField(
        label="HTTPS HMAC secret",
        required=False,
        strip=False,
        widget=_password_input(),
        help_text="Signs every file (see docs/exports.md). " + KEEP,
    )
    clear_secrets = forms.BooleanField(
        label="Clear the stored secrets",
        required=False,
        help_text="Removes every stored secret first; any entered above are then stored.",
    )

    class Meta:
        model = ExportDestination
        fields = [
            "name",
            "kind",
            "subdirectory",
            "retention_days",
            "host",
            "port",
            "username",
            "remote_dir",
            "host_key_fingerprint",
            "url",
            "signature_header",
            "allowed_regions",
        ]

    def new_secrets(self) -> dict[str, str]:
        return {name: self.cleaned_data.get(name) or "" for name in SECRET_FIELDS}

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        clear = bool(cleaned.get("clear_secrets"))
        stored: dict[str, str] = {}
        if not clear:
            try:
                stored = decrypt_secrets(self.instance.secret_ciphertext)
            except SecretsUnreadable:
                self.add_error(
                    "clear_secrets",
                    "The stored secrets cannot be decrypted with the current "
                    "MKT_ENCRYPTION_KEYS: tick this box and enter them again.",
                )
        if kind:
            errors = destination_secrets_check(
                kind=kind, stored=stored, new=self.new_secrets(), clear=clear
            )
            for field, message in errors.items():
                self.add_error(field, message)
        return cleaned


class FieldListField(forms.CharField):
    """Field names typed as 'id, name, country', kept as a JSON list."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(name) for name in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        return list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))


def _by_dataset(attribute: str) -> str:
    return "; ".join(
        f"{name}: {', '.join(getattr(dataset, attribute))}" for name, dataset in DATASETS.items()
    )


class ExportScheduleForm(forms.ModelForm):
    # Set by the admin to the requesting user: a new schedule's owner, whose permissions and
    # row limit the validation applies.
    user = None

    dataset = forms.ChoiceField(choices=[(name, d.label) for name, d in DATASETS.items()])
    fields = FieldListField(
        required=False,
        help_text="Comma-separated; empty for the dataset's default fields. "
        + _by_dataset("field_names"),
    )
    filters = BoundedJSONFormField(
        required=False,
        help_text='A JSON object of the export API\'s filters, e.g. {"country": "DE,FR", '
        '"lifecycle_stage": "customer"}. ' + _by_dataset("filter_names"),
    )

    class Meta:
        model = ExportSchedule
        fields = [
            "name",
            "enabled",
            "dataset",
            "fields",
            "filters",
            "format",
            "incremental",
            "max_rows",
            "destination",
            "cron",
            "every_minutes",
            "min_interval_minutes",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.owner_id is None and self.user is not None:
            self.instance.owner = self.user

    def clean_filters(self):
        return self.cleaned_data.get("filters") or {}
