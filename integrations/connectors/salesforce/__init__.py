"""The Salesforce connector (``connector.py``), its REST and limit handling (``api.py``),
Bulk API 2.0 jobs (``bulk.py``), fields and values (``fields.py``) and OAuth (``oauth.py``,
shared with Account Engagement). Docs: docs/connectors/salesforce.md."""

from integrations.connectors.salesforce.connector import Salesforce

__all__ = ["Salesforce"]
