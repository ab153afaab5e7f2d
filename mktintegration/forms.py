"""Admin forms of the users-and-system app."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from mktintegration.models import ApiToken, ServiceCertificate
from mktintegration.scopes import SCOPES


class ApiTokenCreateForm(forms.ModelForm):
    """Create a token: the full token is shown once, after saving; only its hash is stored.

    A token acts as its user, so it may be made for a service account or for yourself, never
    for another person (superusers excepted): no one acts in someone else's name.
    """

    scopes = forms.MultipleChoiceField(
        choices=list(SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="A token may do what both its scopes and its user's permissions allow.",
    )
    expires_days = forms.IntegerField(
        label="Expires in (days)",
        min_value=1,
        max_value=3650,
        required=False,
        initial=90,
        help_text="Leave blank for a token that never expires (not recommended).",
    )

    # Set by the admin for each request (the user creating the token).
    request_user = None

    class Meta:
        model = ApiToken
        fields = ["user", "name"]
        help_texts = {"name": "What the token is for, e.g. 'BI nightly export'."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        creator = self.request_user
        if creator is not None and not creator.is_superuser:
            users = users.filter(is_service_account=True) | users.filter(pk=creator.pk)
        self.fields["user"].queryset = users
        self.fields[
            "user"
        ].help_text = (
            "The account the token acts as: usually a service account in the API client role."
        )


class ServiceCertificateForm(forms.ModelForm):
    """Register a client certificate's subject for a service account (docs/mtls.md); checked
    by the same rules as ``manage.py register_service_certificate``."""

    scopes = forms.MultipleChoiceField(
        choices=list(SCOPES.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="A request with the certificate may do what both its scopes and its user's "
        "permissions allow.",
    )

    class Meta:
        model = ServiceCertificate
        fields = ["user", "name", "subject", "fingerprint_sha256"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            get_user_model()
            .objects.filter(is_active=True, is_service_account=True)
            .order_by("username")
        )
        self.fields["user"].help_text = "The service account the certificate acts as."

    def clean_subject(self):
        from mktintegration.service_certs import subject_check

        try:
            return subject_check(self.cleaned_data["subject"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_fingerprint_sha256(self):
        from mktintegration.service_certs import fingerprint_check

        try:
            return fingerprint_check(self.cleaned_data["fingerprint_sha256"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
