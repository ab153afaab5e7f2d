"""The demo's settings (what `make run` uses: DEBUG on, demo mode), for the part of the suite
that runs a second time with them (`make test`; pytest with ``-o django_debug_mode=keep``,
since pytest-django otherwise turns DEBUG off). Worker processes inherit DEBUG=1."""

import os

os.environ["DEBUG"] = "1"

from tests import settings as _test_settings

globals().update({name: value for name, value in vars(_test_settings).items() if name.isupper()})
