"""gunicorn settings for the internal APIs over mutual TLS (docs/mtls.md):

    gunicorn -c python:mktintegration.gunicorn_mtls mktintegration.wsgi

Read from the environment (the only configuration, as for the rest of the product):

- ``MKT_TLS_CERT_FILE``, ``MKT_TLS_KEY_FILE``: the server's certificate (chain) and key;
- ``MKT_TLS_CLIENT_CA_FILE``: the CA(s) whose client certificates are accepted;
- ``MKT_TLS_CLIENT_CERT``: ``required`` (default: a client without a verified certificate
  fails the handshake) or ``optional`` (such a client may still use an API token);
- ``MKT_TLS_BIND`` (default ``0.0.0.0:8443``) and ``WEB_CONCURRENCY`` (default 2 workers).
"""

from __future__ import annotations

import os
import ssl
import sys

_MODES = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL}


def _file(name: str) -> str:
    path = os.environ.get(name, "")
    if not path or not os.path.isfile(path):
        sys.exit(f"{name} must name a readable file (docs/mtls.md), not {path!r}")
    return path


certfile = _file("MKT_TLS_CERT_FILE")
keyfile = _file("MKT_TLS_KEY_FILE")
ca_certs = _file("MKT_TLS_CLIENT_CA_FILE")
_mode = os.environ.get("MKT_TLS_CLIENT_CERT", "required")
if _mode not in _MODES:
    sys.exit(f"MKT_TLS_CLIENT_CERT must be required or optional, not {_mode!r}")
cert_reqs = _MODES[_mode]
bind = [os.environ.get("MKT_TLS_BIND", "0.0.0.0:8443")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "mktintegration.mtls.MTLSWorker"
