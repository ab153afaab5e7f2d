"""Secrets at rest: Fernet tokens under MKT_ENCRYPTION_KEYS (newest key first).

Models keep only ciphertext (a ``*_ciphertext`` text field, not editable in forms) and
decrypt on explicit request, so plaintext never sits in an attribute that the admin, a
serializer, ``repr`` or the audit log could show. Register each such field in
``ENCRYPTED_FIELDS`` so ``rotate_encryption_keys`` re-encrypts it.
"""

from __future__ import annotations

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

# "app_label.Model" -> ciphertext field name
ENCRYPTED_FIELDS: dict[str, str] = {}


class SecretsUnreadable(Exception):
    """The ciphertext was made with a key that is no longer in MKT_ENCRYPTION_KEYS."""


def register_encrypted_field(model_label: str, field_name: str) -> None:
    ENCRYPTED_FIELDS[model_label] = field_name


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _fernet() -> MultiFernet:
    return _multifernet(tuple(settings.MKT_ENCRYPTION_KEYS))


def encrypt_secrets(values: dict[str, str]) -> str:
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt_secrets(ciphertext: str) -> dict[str, str]:
    if not ciphertext:
        return {}
    try:
        return json.loads(_fernet().decrypt(ciphertext.encode()))
    except InvalidToken as exc:
        raise SecretsUnreadable(
            "stored secrets cannot be decrypted with MKT_ENCRYPTION_KEYS (was a key removed?)"
        ) from exc


def rotate_ciphertext(ciphertext: str) -> str:
    """Re-encrypt under the newest key (what MultiFernet.rotate does)."""
    if not ciphertext:
        return ""
    try:
        return _fernet().rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretsUnreadable("a stored secret cannot be decrypted with any current key") from exc


def encrypted_fields_rotate() -> dict[str, int]:
    """Re-encrypt every registered ciphertext under the newest key, all or nothing."""
    from django.apps import apps
    from django.db import transaction

    counts = {}
    with transaction.atomic():
        for label, field_name in ENCRYPTED_FIELDS.items():
            model = apps.get_model(label)
            rows = model.objects.exclude(**{field_name: ""}).values_list("pk", field_name)
            for pk, ciphertext in rows:
                model.objects.filter(pk=pk).update(**{field_name: rotate_ciphertext(ciphertext)})
            counts[label] = len(rows)
    return counts
