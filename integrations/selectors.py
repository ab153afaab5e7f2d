"""Reads about connections and their destinations: a connector to call, and the fields a
destination object declares (cached). The services, the admin, the configure API and the
engine's planner all read fields through here."""

from __future__ import annotations

import contextlib
import hashlib
import json

from django.core.cache import cache

from integrations.connectors import connector_class
from integrations.connectors.base import DestinationField, RateSpec
from integrations.engine.quota import QuotaPlan, QuotaStatus
from integrations.engine.ratelimit import RateBudget
from integrations.models import Connection, Sync
from mktintegration.errors import ConnectorError
from mktintegration.http import HttpClient

FIELDS_CACHE_SECONDS = 900


def connector_for(connection: Connection):
    """The connection's connector, its requests drawing from the connection's shared rate
    budget (the vendor's default, or the connection's own), as every request to the vendor
    does: deliveries, look-ups, field lists and tests alike; and, where the vendor has one,
    from its account's daily quota (shared by every connection to that account)."""
    cls = connector_class(connection.vendor)
    spec = cls.default_rate
    if connection.rate_limit_requests and connection.rate_limit_seconds:
        spec = RateSpec(connection.rate_limit_requests, connection.rate_limit_seconds)
    http = HttpClient(vendor=cls.slug, connection_id=connection.pk, allowed_hosts=cls.allowed_hosts)
    connector = cls(connection=connection, secrets=connection.get_credentials(), http=http)
    if connection.pk:
        http.throttle = RateBudget(
            connection_id=connection.pk, spec=spec, quota=quota_plan(connector)
        )
    return connector


def quota_plan(connector) -> QuotaPlan | None:
    """The daily quota a connector's requests count against (None: the vendor has none)."""
    quota = connector.daily_quota
    if quota is None:
        return None
    return QuotaPlan(
        account=f"{connector.slug}:{connector.quota_account()}",
        quota=quota,
        override=connector.connection.daily_quota_requests,
        label=connector.label,
        recheck=connector.quota_recheck_seconds(),
    )


def connection_quota(connection: Connection, *, look: bool = False) -> QuotaStatus | None:
    """The connection's vendor account's daily quota as of now (None: the vendor has none).
    ``look``: a reported quota counted as spent long enough ago is read from the vendor first
    (one request), so a plan does not defer everything on a count that has fallen since."""
    if not connection.pk or connector_class(connection.vendor).daily_quota is None:
        return None
    connector = connector_for(connection)
    try:
        status = connector.http.throttle.quota_status()
        if look and status.stale:
            # The vendor did not answer: the count stays as it was.
            with contextlib.suppress(ConnectorError):
                connector.quota_refresh()
            status = connector.http.throttle.quota_status()
        return status
    finally:
        connector.http.close()


def destination_fields(
    *, connection: Connection, object_name: str, destination_config: dict, refresh: bool = False
) -> list[DestinationField]:
    """The destination object's fields (cached for 15 minutes per connection and object)."""
    digest = hashlib.sha256(json.dumps(destination_config, sort_keys=True).encode()).hexdigest()[
        :12
    ]
    key = f"mkt:fields:{connection.pk}:{connection.updated_at.timestamp()}:{object_name}:{digest}"
    fields = None if refresh else cache.get(key)
    if fields is None:
        fields = connector_for(connection).list_fields(object_name, destination_config)
        cache.set(key, fields, FIELDS_CACHE_SECONDS)
    return fields


def sync_destination_fields(sync: Sync) -> dict[str, DestinationField]:
    """The fields of the sync's destination object by name (raises ConnectorError)."""
    return {
        f.name: f
        for f in destination_fields(
            connection=sync.connection,
            object_name=sync.destination_object,
            destination_config=sync.destination_config or {},
        )
    }
