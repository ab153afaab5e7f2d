"""``{% sso_login_url as url %}``: where "Sign in with SSO" posts; empty when SSO is off."""

from django import template

from mktintegration.sso import sso_login_url as _sso_login_url

register = template.Library()


@register.simple_tag
def sso_login_url() -> str:
    return _sso_login_url()
