"""``{% change_history_url object as url %}``: the change history (auditlog) of one object, for
users who may read it; empty otherwise."""

from urllib.parse import urlencode

from django import template
from django.contrib.contenttypes.models import ContentType
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.simple_tag(takes_context=True)
def change_history_url(context, obj) -> str:
    request = context.get("request")
    if obj is None or request is None or not request.user.has_perm("auditlog.view_logentry"):
        return ""
    try:
        changelist = reverse("admin:auditlog_logentry_changelist")
    except NoReverseMatch:
        return ""
    content_type = ContentType.objects.get_for_model(obj)
    return f"{changelist}?{urlencode({'resource_type': content_type.pk, 'object_pk': obj.pk})}"
