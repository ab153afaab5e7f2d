#!/usr/bin/env python
import os
import sys
from pathlib import Path


def _demo_settings() -> None:
    """After `make run`, the README's other commands use the demo's settings: `make run`
    leaves them in data/demo.env (KEY=VALUE lines). Anything set in the environment wins."""
    data_dir = Path(os.environ.get("MKT_DATA_DIR") or Path(__file__).resolve().parent / "data")
    path = data_dir / "demo.env"
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.lstrip().startswith("#"):
            os.environ.setdefault(key.strip(), value.strip())


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mktintegration.settings")
    _demo_settings()
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - load the settings now, to report what is missing
    except ImproperlyConfigured as exc:
        sys.exit(f"manage.py: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
