"""The Constant Contact connector (``connector.py``), its import activities
(``activities.py``) and OAuth with PKCE and rotating refresh tokens (``oauth.py``).
Docs: docs/connectors/constantcontact.md."""

from integrations.connectors.constantcontact.connector import ConstantContact

__all__ = ["ConstantContact"]
