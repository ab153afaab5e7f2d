from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from mktintegration.admin_base import ReadOnlyAdmin
from mktintegration.forms import ApiTokenCreateForm, ServiceCertificateForm
from mktintegration.login_throttle import ThrottledAdminAuthenticationForm
from mktintegration.models import ApiToken, ServiceCertificate, User, WorkerHeartbeat
from mktintegration.service_certs import service_certificate_register, service_certificate_revoke
from mktintegration.tokens import token_create, token_revoke

admin.site.site_header = "mktintegration"
admin.site.site_title = "mktintegration"
admin.site.index_title = "Marketing integration hub"
# Password sign-in waits progressively after failures (mktintegration/login_throttle.py).
admin.site.login_form = ThrottledAdminAuthenticationForm


@admin.register(User)
class MktUserAdmin(UserAdmin):
    fieldsets = (
        *UserAdmin.fieldsets,
        ("Service account", {"fields": ("is_service_account",)}),
        ("Data residency", {"fields": ("allowed_regions",)}),
    )
    list_display = (*UserAdmin.list_display, "is_service_account")
    list_filter = (*UserAdmin.list_filter, "is_service_account")


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("hostname", "seen_at")
    ordering = ("-seen_at",)


class TokenStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).filter(
                Q(expires_at__isnull=True) | Q(expires_at__gt=now)
            )
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: create (the token is shown once), list, revoke. Nothing is edited: a token
    with other scopes or another expiry is a new token. Only the hash of the secret is stored,
    so no page can show it again."""

    list_display = (
        "name",
        "token_id",
        "user",
        "scopes_text",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (TokenStateFilter, ("user", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user",)
    search_fields = ("name", "=public_id", "user__username")
    ordering = ("-created_at",)
    actions = ["revoke"]
    add_fieldsets = ((None, {"fields": ("user", "name", "scopes", "expires_days")}),)
    fieldsets = (
        (None, {"fields": ("name", "token_id", "user", "scopes_text")}),
        (
            "Life",
            {
                "fields": (
                    "created_at",
                    "created_by",
                    "expires_at",
                    "revoked_at",
                    "last_used_at",
                    "last_used_address",
                )
            },
        ),
    )
    readonly_fields = (
        "name",
        "token_id",
        "user",
        "scopes_text",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "last_used_address",
    )

    @admin.display(description="token")
    def token_id(self, obj):
        return format_html("<code>mkt_{}_…</code>", obj.public_id)

    @admin.display(description="scopes")
    def scopes_text(self, obj):
        return ", ".join(obj.scopes) or "-"

    def has_change_permission(self, request, obj=None):
        # Revoking (a list action) needs the change permission; no token's fields are edited.
        return obj is None and super().has_change_permission(request)

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenCreateForm
        form = super().get_form(request, obj, change, **kwargs)
        form.request_user = request.user  # a class made for this request
        return form

    def save_model(self, request, obj, form, change):
        token, raw = token_create(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_days=form.cleaned_data["expires_days"],
            created_by=request.user,
        )
        # The admin goes on with the saved token (its log entry, its redirect).
        for field in token._meta.concrete_fields:
            setattr(obj, field.attname, getattr(token, field.attname))
        obj._state.adding, obj._state.db = False, token._state.db
        self.message_user(
            request,
            f"API token for {token.user.get_username()}: {raw} — copy it now. It is shown "
            "only this once: only a hash of it is kept.",
            messages.SUCCESS,
        )

    def response_add(self, request, obj, post_url_continue=None):
        # Skip Django's own "was added successfully" message, which links to the token.
        return self.response_post_save_add(request, obj)

    @admin.action(description="Revoke", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token)
            revoked += 1
        self.message_user(request, f"{revoked} token(s) revoked; they stop working at once.")


@admin.register(ServiceCertificate)
class ServiceCertificateAdmin(admin.ModelAdmin):
    """Services that authenticate by TLS client certificate (docs/mtls.md): register, list,
    revoke. Nothing is edited: other scopes or another pin is a new registration."""

    form = ServiceCertificateForm
    list_display = (
        "name",
        "subject",
        "user",
        "scopes_text",
        "pinned",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (("user", admin.RelatedOnlyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("name", "subject", "user__username")
    ordering = ("-created_at",)
    actions = ["revoke"]
    readonly_fields = (
        "name",
        "subject",
        "fingerprint_sha256",
        "user",
        "scopes_text",
        "created_at",
        "created_by",
        "revoked_at",
        "last_used_at",
        "last_used_address",
    )

    @admin.display(description="scopes")
    def scopes_text(self, obj):
        return ", ".join(obj.scopes) or "-"

    @admin.display(description="pinned", boolean=True)
    def pinned(self, obj):
        return bool(obj.fingerprint_sha256)

    def has_change_permission(self, request, obj=None):
        # Revoking (a list action) needs the change permission; no field is edited.
        return obj is None and super().has_change_permission(request)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name", "subject", "fingerprint_sha256", "scopes")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        # The form checked every rule (the subject's uniqueness too, as the model's).
        saved = service_certificate_register(
            user=form.cleaned_data["user"],
            name=form.cleaned_data["name"],
            subject=form.cleaned_data["subject"],
            scopes=form.cleaned_data["scopes"],
            fingerprint=form.cleaned_data["fingerprint_sha256"],
            created_by=request.user,
        )
        for field in saved._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding, obj._state.db = False, saved._state.db

    @admin.action(description="Revoke", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for registration in queryset.filter(revoked_at__isnull=True):
            service_certificate_revoke(certificate=registration)
            revoked += 1
        self.message_user(
            request, f"{revoked} certificate registration(s) revoked; they stop working at once."
        )


# django-celery-beat's list actions (enable, disable, toggle, run now) ask for no permission:
# anyone who may view periodic tasks could run them. Here they need the change permission.
admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class GuardedPeriodicTaskAdmin(PeriodicTaskAdmin):
    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            for name in ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"):
                actions.pop(name, None)
        return actions
