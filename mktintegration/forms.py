"""Admin forms of the users-and-system app."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from mktintegration.models import ApiToken
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
