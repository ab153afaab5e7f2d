"""The change history records *that* stored secrets changed, never what they are.

Secret fields are excluded from auditlog's diffs (not masked), so a change of credentials alone
would leave no entry at all. ``secret_changes_track(model, field=..., label=..., decode=...)``
adds one, naming only which secrets changed: ``{"credentials": ["(not recorded)", "token
replaced"]}``, with the actor and address of the change like any other entry. ``decode`` turns
the stored ciphertext into a name -> value mapping, compared in memory only (ciphertexts differ
on every save, even for the same secret). Called from each app's ``AppConfig.ready`` next to its
auditlog registration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from auditlog.models import LogEntry
from django.db.models.signals import post_save, pre_save

HIDDEN = "(not recorded)"


def secret_changes_describe(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    """'token replaced; api_key removed' (names only); '' when nothing changed."""
    parts = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            parts.append(f"{name} removed")
        elif name not in old:
            parts.append(f"{name} set")
        elif old[name] != new[name]:
            parts.append(f"{name} replaced")
    return "; ".join(parts)


def secret_changes_track(
    model, *, field: str, label: str, decode: Callable[[str], Mapping[str, str]]
) -> None:
    marker = f"_audit_{field}_change"

    def remember(sender, instance, raw=False, **kwargs):
        instance.__dict__.pop(marker, None)
        if raw or instance._state.adding or instance.pk is None:
            return
        stored = sender._base_manager.filter(pk=instance.pk).values_list(field, flat=True).first()
        new = getattr(instance, field)
        if stored is None or stored == new:
            return
        try:
            change = secret_changes_describe(decode(stored), decode(new))
        except Exception:  # unreadable with the current keys: say so, without detail
            change = "changed (not comparable)"
        if change:
            instance.__dict__[marker] = change

    def record(sender, instance, created, raw=False, **kwargs):
        change = instance.__dict__.pop(marker, None)
        if change and not created:
            LogEntry.objects.log_create(
                instance,
                force_log=True,
                action=LogEntry.Action.UPDATE,
                changes={label: [HIDDEN, change]},
            )

    uid = f"audit-secret-{model._meta.label_lower}-{field}"
    pre_save.connect(remember, sender=model, dispatch_uid=f"{uid}-pre", weak=False)
    post_save.connect(record, sender=model, dispatch_uid=f"{uid}-post", weak=False)
