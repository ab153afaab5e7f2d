"""Reading configuration from environment variables.

Every setting the product reads comes through these helpers, so the rules are the same
everywhere: ``NAME_FILE`` may point to a file holding a secret (Docker/Kubernetes secrets),
booleans accept the usual spellings, and a missing required value names the variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    """The variable's value, or the content of the file named by ``NAME_FILE``."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_name} cannot be read: {exc}") from exc
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no).")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from exc


def env_float(
    name: str, default: float, *, low: float | None = None, high: float | None = None
) -> float:
    """A finite number; with ``low``/``high``, in ``(low, high]``: anything else names the
    variable (and the range)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if low is not None and high is not None:
        if not low < value <= high:  # NaN fails too
            raise ImproperlyConfigured(
                f"{name}={raw!r} must be a number more than {low:g} and at most {high:g}."
            )
    elif value != value or value in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = env_str(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, *, debug: bool, demo_file: Path, generate) -> str:
    """A required secret.

    In production (``debug`` off) a missing value refuses the start and names the variable.
    In the local demo it is generated once and kept in ``demo_file`` (mode 0600) so restarts
    keep sessions and encrypted credentials readable.
    """
    value = env_str(name)
    if value:
        return value
    if not debug:
        raise ImproperlyConfigured(
            f"{name} is not set. It is required when DEBUG is off "
            f"(set {name} or {name}_FILE; see .env.example)."
        )
    if demo_file.exists():
        return demo_file.read_text().strip()
    demo_file.parent.mkdir(parents=True, exist_ok=True)
    value = generate()
    fd = os.open(demo_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def random_secret_key() -> str:
    return secrets.token_urlsafe(64)
