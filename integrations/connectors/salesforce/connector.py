"""Salesforce: Accounts, Contacts, Leads and custom objects, upserted by an external id field.

Facts from ../shared/VENDORS.md §4: OAuth web server flow, ``instance_url`` from the token
answer [S2][S3]; sObject Collections upsert ``PATCH .../composite/sobjects/{SObject}/{ExtId}``
of at most 200 records, each with ``attributes.type``, ``allOrNone: false``, one UpsertResult
per record in order with ``created`` [S1]; update by Id ``PATCH .../composite/sobjects`` and
delete ``DELETE .../composite/sobjects?ids=`` (200 Ids, to the recycle bin) [S16]; Bulk API 2.0
for runs above MKT_SALESFORCE_BULK_THRESHOLD records (``bulk.py``); describe for the fields;
limits and errors in ``api.py``.

People can be routed (Lead with ``destination_config: {"contacts_first": true}``): a person
whose e-mail address is already a Contact's is updated as that Contact (by its Id); everyone
else is upserted as a Lead. The Preview says which, per record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.utils.dateparse import parse_datetime

from integrations.connectors import register
from integrations.connectors.base import (
    ConfigField,
    ConnectorConfig,
    DestinationField,
    DestinationObject,
    JobTicket,
    Outcome,
    OutRecord,
    RateSpec,
    RecordResult,
)
from integrations.connectors.feedback import FeedbackEvent, InboundWebhook
from integrations.connectors.salesforce.api import API, QUERY_CHUNK, SalesforceApi
from integrations.connectors.salesforce.bulk import BulkJobs, record_outcome
from integrations.connectors.salesforce.fields import (
    describe_fields,
    record_body,
    references,
    relationship_fields,
)
from integrations.connectors.salesforce.oauth import (
    PRODUCTION_LOGIN,
    login_host_problem,
    salesforce_flow,
)
from integrations.connectors.salesforce.outbound import ACK, parse_outbound
from mktintegration.errors import ConnectorError, ErrorKind

MAX_BATCH = 200  # sObject Collections [S1][S16]
JOB_REQUESTS = 9  # a Bulk 2.0 job: create, upload, close, ~3 polls, 3 result files [S12]-[S15]
STANDARD = ("Account", "Contact", "Lead")
CUSTOM = "custom"
_CUSTOM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*__c$")
OPT_OUT = "HasOptedOutOfEmail"


@dataclass(frozen=True)
class SalesforceConfig(ConnectorConfig):
    # Where Connect signs in: login.salesforce.com, test.salesforce.com for a sandbox, or the
    # org's My Domain host.
    login_host: str = PRODUCTION_LOGIN

    def __post_init__(self):
        problem = login_host_problem(self.login_host)
        if problem:
            raise ValueError(problem)


def sobject_of(object_name: str, destination_config: dict) -> str:
    """The sObject's API name: the object itself, or a custom object's from the sync."""
    if object_name != CUSTOM:
        return object_name
    name = str((destination_config or {}).get("sobject") or "")
    if not _CUSTOM_NAME.match(name):
        raise ConnectorError(
            f"Salesforce custom object: destination_config sobject {name!r} is not a custom "
            "object's API name (it ends in __c, e.g. Invoice__c)",
            kind=ErrorKind.CONFIG,
        )
    return name


def _routes(object_name: str, destination_config: dict) -> bool:
    return object_name == "Lead" and bool((destination_config or {}).get("contacts_first"))


def _sobject_of_id(record_id: str, object_name: str) -> str:
    """The sObject of a record Id by its key prefix (003 Contact, 00Q Lead) [S16]."""
    return {"003": "Contact", "00Q": "Lead"}.get(record_id[:3], object_name)


def _record_error(key: str, item: dict) -> RecordResult:
    errors = item.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode") or "UNKNOWN")
    message = "; ".join(str(e.get("message") or "") for e in errors if isinstance(e, dict))
    return record_outcome(key, f"{code}:{message}")


@register
class Salesforce(SalesforceApi):
    slug = "salesforce"
    label = "Salesforce"
    auth_kinds = ("oauth2",)
    secret_fields = {"oauth2": ()}
    token_flows = {"oauth2": salesforce_flow(("api", "refresh_token"))}
    config_class = SalesforceConfig
    objects = {
        "Account": DestinationObject("Account", "Accounts", MAX_BATCH),
        "Contact": DestinationObject(
            "Contact",
            "Contacts",
            MAX_BATCH,
            personal_data=True,
            opt_out_field=OPT_OUT,
            suppressible=True,
        ),
        "Lead": DestinationObject(
            "Lead",
            "Leads",
            MAX_BATCH,
            personal_data=True,
            opt_out_field=OPT_OUT,
            suppressible=True,
        ),
        CUSTOM: DestinationObject(CUSTOM, "Custom object", MAX_BATCH, requires=("sobject",)),
    }
    # Salesforce has no per-second limit, only the daily allowance [S17]; 25/s keeps one sync
    # from spending a developer org's 15,000 daily requests in under a quarter of an hour.
    default_rate = RateSpec(requests=25, per_seconds=1)
    allowed_hosts = ("*.salesforce.com", "*.force.com")
    # Outbound Messages: no signature; our secret in the URL and the organisation checked [S25].
    webhook_auth = "url_secret"

    @classmethod
    def config_fields(cls, object_name: str) -> list[ConfigField]:
        if object_name == CUSTOM:
            return [
                ConfigField(
                    "sobject",
                    "Custom object",
                    "The org's custom object the records are written to (its API name ends "
                    "in __c).",
                    required=True,
                    choices=lambda connector: connector.custom_objects(),
                )
            ]
        if object_name == "Lead":
            return [
                ConfigField(
                    "contacts_first",
                    "Update existing Contacts",
                    "A person whose e-mail address is already a Contact's is updated as that "
                    "Contact; everyone else is written as a Lead (map Email).",
                    flag=True,
                )
            ]
        return []

    # --- feedback (docs/webhooks.md) ---------------------------------------------------------
    @classmethod
    def parse_webhook(cls, request: InboundWebhook, *, connection) -> list[FeedbackEvent]:
        grant = getattr(connection, "oauth_grant", None)
        return parse_outbound(request, org_id=grant.account_id if grant else "")

    @classmethod
    def webhook_answer(cls, events: list[FeedbackEvent]) -> tuple[int, str, bytes]:
        return 200, "text/xml; charset=utf-8", ACK

    def feedback_emails(self, subject_ids: list[str]) -> dict[str, str]:
        """Contact and Lead Ids a message named without an address: their e-mail addresses."""
        found: dict[str, str] = {}
        for sobject, prefix in (("Contact", "003"), ("Lead", "00Q")):
            ids = [i for i in subject_ids if i.startswith(prefix)]
            for item in self.find(sobject, "Id", ids, what=f"{sobject} look-up", extra=("Email",)):
                if item.get("Email"):
                    found[str(item["Id"])] = str(item["Email"])
        return found

    # --- the engine's job path (Bulk API 2.0) -----------------------------------------------
    @classmethod
    def job_size(cls, object_name: str, *, mode: str, destination_config: dict) -> int:
        # Create-only and update-only look every record up first: they stay on Collections.
        if mode in ("create_only", "update_only"):
            return 0
        return settings.MKT_SALESFORCE_BULK_JOB_RECORDS

    @classmethod
    def job_threshold(cls, object_name: str) -> int:
        return settings.MKT_SALESFORCE_BULK_THRESHOLD

    def quota_requests(self, object_name: str, mode: str, records: int) -> int:
        """What a run of ``records`` costs of the org's daily allowance. Bulk 2.0 (a run over
        the threshold): per job a create, the upload, the close, about three polls and the
        three result files. Collections: a write per 200, and a look-up per 100 for the
        create- and update-only modes and for Leads (which may be routed to Contacts). Not
        counted: the look-up of creation dates after a crash. The budget never lets a request
        over the allowance: a batch that meets it is deferred like the records the plan cut."""
        size = self.job_size(object_name, mode=mode, destination_config={})
        if size and records >= self.job_threshold(object_name):
            return -(-records // size) * JOB_REQUESTS
        lookups = -(-records // QUERY_CHUNK)
        looks = mode in ("create_only", "update_only") or object_name == "Lead"
        return -(-records // MAX_BATCH) + (lookups if looks else 0)

    # --- fields --------------------------------------------------------------------------
    def test_connection(self) -> str:
        limits = self.call("GET", f"{API}/limits", what="test").json()
        daily = limits.get("DailyApiRequests") or {}
        return (
            f"Connected: {daily.get('Remaining', 0):,} of {daily.get('Max', 0):,} daily API "
            "requests left"
        )

    def _describe(self, sobject: str) -> dict:
        try:
            return self.call("GET", f"{API}/sobjects/{sobject}/describe", what="describe").json()
        except ConnectorError as exc:
            if exc.status == 404:
                raise ConnectorError(
                    f"Salesforce has no object {sobject} (or this user may not see it)",
                    kind=ErrorKind.CONFIG,
                    status=404,
                ) from None
            raise

    def list_fields(self, object_name: str, destination_config: dict) -> list[DestinationField]:
        describe = self._describe(sobject_of(object_name, destination_config))
        fields = describe_fields(describe)
        targets: dict[str, dict] = {}
        for spec, target in references(describe):
            if target not in targets:
                try:
                    targets[target] = self._describe(target)
                except ConnectorError as exc:
                    if exc.kind != ErrorKind.CONFIG:
                        raise
                    targets[target] = {}
            fields += relationship_fields(spec, targets[target])
        return fields

    def _fields(self, object_name: str, destination_config: dict) -> dict[str, DestinationField]:
        from integrations.selectors import destination_fields  # cached per connection

        return {
            f.name: f
            for f in destination_fields(
                connection=self.connection,
                object_name=object_name,
                destination_config=destination_config or {},
            )
        }

    def match_key(self, object_name: str, match_field: str, value: str) -> str:
        # Unique external ids match whatever their case unless the field is made case-sensitive,
        # which is not the default [S1]; e-mail addresses likewise.
        return value.lower()

    def match_key_sql(self, object_name: str, match_field: str, match_sql: str) -> str | None:
        return f"LOWER({match_sql})"

    # --- writes --------------------------------------------------------------------------
    def lookup(
        self,
        object_name: str,
        match_values: list[str],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        sobject = sobject_of(object_name, destination_config)
        found: dict[str, str] = {}
        for item in self.find(sobject, match_field, match_values, what="look-up"):
            if item.get(match_field) is not None:
                found.setdefault(str(item[match_field]).lower(), str(item["Id"]))
        return {v: found[v.lower()] for v in match_values if v.lower() in found}

    def upsert(
        self,
        object_name: str,
        records: list[OutRecord],
        *,
        mode: str,
        match_field: str,
        destination_config: dict,
        idempotency_key: str,
    ) -> list[RecordResult]:
        sobject = sobject_of(object_name, destination_config)
        fields = self._fields(object_name, destination_config)
        results: dict[str, RecordResult] = {}
        to_write = records
        if _routes(object_name, destination_config):
            routed, to_write = self._route(records, match_field)
            results.update(routed)
        left, to_write = self.by_mode(
            object_name,
            to_write,
            mode=mode,
            match_field=match_field,
            destination_config=destination_config,
        )
        results.update(left)
        if to_write:
            results.update(self._collections_upsert(sobject, to_write, match_field, fields))
        return [results[r.key] for r in records]

    def _collections_upsert(self, sobject, records, match_field, fields):
        items = [
            {"attributes": {"type": sobject}, **record_body(r.payload, fields)} for r in records
        ]
        for item, record in zip(items, records, strict=True):
            item[match_field] = record.match_value
        answer = self.call(
            "PATCH",
            f"{API}/composite/sobjects/{sobject}/{match_field}",
            what="upsert",
            records=len(records),
            json={"allOrNone": False, "records": items},
        ).json()
        results: dict[str, RecordResult] = {}
        unconfirmed = []
        for record, item in zip(records, answer if isinstance(answer, list) else [], strict=False):
            if not item.get("success"):
                results[record.key] = _record_error(record.key, item)
                continue
            created = bool(item.get("created"))
            outcome = Outcome.CREATED if created else Outcome.UPDATED
            results[record.key] = RecordResult(record.key, outcome, str(item.get("id") or ""))
            if not created and not record.known_at_destination:
                unconfirmed.append(results[record.key])
        if unconfirmed:
            self._created_dates(sobject, unconfirmed)
        for record in records:
            results.setdefault(
                record.key,
                RecordResult(record.key, Outcome.RETRY, "", "Salesforce did not report it"),
            )
        return results

    def _created_dates(self, sobject: str, results: list[RecordResult]) -> None:
        """An "updated" record this sync never had confirmed may be one its own lost first
        write created (a crash between the write and its answer): its CreatedDate tells."""
        ids = [r.destination_id for r in results if r.destination_id]
        dates = {
            str(item["Id"]): parse_datetime(
                str(item.get("CreatedDate") or "").replace("+0000", "+00:00")
            )
            for item in self.find(sobject, "Id", ids, what="creation dates", extra=("CreatedDate",))
        }
        for result in results:
            result.created_at = dates.get(result.destination_id)

    def _route(self, records: list[OutRecord], match_field: str):
        """Contacts first: people whose e-mail address is a Contact's are updated as that
        Contact; the others are left for the Lead upsert. (results, records left)"""
        if any("Email" not in record.payload for record in records):
            raise ConnectorError(
                "Salesforce Lead with contacts_first: map Email (the address people are found "
                "by among the Contacts)",
                kind=ErrorKind.CONFIG,
            )
        contacts = self.contacts_by_email([str(r.payload["Email"] or "") for r in records])
        results: dict[str, RecordResult] = {}
        updates, rest = [], []
        for record in records:
            ids = contacts.get(str(record.payload["Email"] or "").strip().lower(), [])
            if len(ids) == 1:
                updates.append((record, ids[0]))
            elif ids:
                results[record.key] = RecordResult(
                    record.key,
                    Outcome.REJECTED,
                    "",
                    f"{len(ids)} Contacts have this e-mail address ({', '.join(ids[:3])}): "
                    "merge them in Salesforce",
                    "DUPLICATE_CONTACTS",
                )
            else:
                rest.append(record)
        if updates:
            results.update(self._update_contacts(updates, match_field))
        return results, rest

    def contacts_by_email(self, emails: list[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        wanted = [e.strip() for e in emails if e and e.strip()]
        for item in self.find("Contact", "Email", wanted, what="Contact look-up"):
            found.setdefault(str(item.get("Email") or "").lower(), []).append(str(item["Id"]))
        return found

    def _update_contacts(self, updates, match_field: str) -> dict[str, RecordResult]:
        """The routed people, as updates of their Contacts by Id: the fields a Contact has (the
        Lead's external id and Lead-only fields such as Company stay out)."""
        fields = self._fields("Contact", {})
        writable = {name for name, f in fields.items() if not f.read_only}
        results = {}
        for start in range(0, len(updates), MAX_BATCH):
            chunk = updates[start : start + MAX_BATCH]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Contact"},
                        "id": contact_id,
                        **record_body(
                            {
                                k: v
                                for k, v in record.payload.items()
                                if k in writable and k != match_field
                            },
                            fields,
                        ),
                    }
                    for record, contact_id in chunk
                ],
            }
            answer = self.call(
                "PATCH",
                f"{API}/composite/sobjects",
                what="Contact update",
                records=len(chunk),
                json=body,
            ).json()
            for (record, contact_id), item in zip(chunk, answer, strict=False):
                results[record.key] = (
                    RecordResult(record.key, Outcome.UPDATED, contact_id, "updated as a Contact")
                    if item.get("success")
                    else _record_error(record.key, item)
                )
        return results

    def delete(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """To the recycle bin, by Id [S16]."""
        with_ids = [r for r in records if r.destination_id]
        results: dict[str, RecordResult] = {
            r.key: RecordResult(r.key, Outcome.REJECTED, "", "no Salesforce Id known to delete")
            for r in records
            if not r.destination_id
        }
        for start in range(0, len(with_ids), MAX_BATCH):
            chunk = with_ids[start : start + MAX_BATCH]
            ids = ",".join(r.destination_id for r in chunk)
            answer = self.call(
                "DELETE",
                f"{API}/composite/sobjects?ids={ids}&allOrNone=false",
                what="delete",
                records=len(chunk),
            ).json()
            by_id = {str(item.get("id")): item for item in answer if isinstance(item, dict)}
            for record in chunk:
                item = by_id.get(record.destination_id, {})
                codes = {e.get("statusCode") for e in item.get("errors") or ()}
                if item.get("success") or "ENTITY_IS_DELETED" in codes:
                    results[record.key] = RecordResult(
                        record.key, Outcome.DELETED, record.destination_id
                    )
                else:
                    results[record.key] = _record_error(record.key, item)
        return [results[r.key] for r in records]

    def suppress(
        self, object_name: str, records: list[OutRecord], *, destination_config: dict
    ) -> list[RecordResult]:
        """Consent withdrawn elsewhere: ``HasOptedOutOfEmail = true`` on the record we hold, by
        its Id (a routed person's may be a Contact's), in one Collections update; never a
        delete. Our upserts send the flag only as true (the planner's opt-out), so a later sync
        does not opt them back in."""
        if object_name not in ("Contact", "Lead"):
            raise ConnectorError(
                f"Salesforce {object_name} are not people: nothing to opt out",
                kind=ErrorKind.CONFIG,
            )
        results = {
            r.key: RecordResult(r.key, Outcome.REJECTED, "", "no Salesforce Id known to opt out")
            for r in records
            if not r.destination_id
        }
        with_ids = [r for r in records if r.destination_id]
        for start in range(0, len(with_ids), MAX_BATCH):
            chunk = with_ids[start : start + MAX_BATCH]
            body = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": _sobject_of_id(r.destination_id, object_name)},
                        "id": r.destination_id,
                        OPT_OUT: True,
                    }
                    for r in chunk
                ],
            }
            answer = self.call(
                "PATCH",
                f"{API}/composite/sobjects",
                what="opt-out",
                records=len(chunk),
                json=body,
            ).json()
            for record, item in zip(chunk, answer, strict=False):
                results[record.key] = (
                    RecordResult(record.key, Outcome.UPDATED, record.destination_id)
                    if isinstance(item, dict) and item.get("success")
                    else _record_error(record.key, item if isinstance(item, dict) else {})
                )
        return [
            results.get(r.key)
            or RecordResult(r.key, Outcome.RETRY, "", "Salesforce did not answer for it")
            for r in records
        ]

    # --- Bulk API 2.0 ------------------------------------------------------------------------
    def submit_job(
        self,
        object_name: str,
        records: list[OutRecord],
        *,
        mode: str,
        match_field: str,
        destination_config: dict,
        ticket: JobTicket,
    ) -> list[RecordResult]:
        sobject = sobject_of(object_name, destination_config)
        results: dict[str, RecordResult] = {}
        if ticket.stage != JobTicket.LOADED and _routes(object_name, destination_config):
            routed, records = self._route(records, match_field)
            results.update(routed)
        if records:
            job = BulkJobs(self).submit(
                sobject,
                records,
                match_field=match_field,
                fields=self._fields(object_name, destination_config),
                ticket=ticket,
            )
            results.update(
                {r.key: RecordResult(r.key, Outcome.ACCEPTED, job_ref=job) for r in records}
            )
        return list(results.values())

    def poll(self, job_ref: str, records: list[OutRecord]) -> list[RecordResult] | None:
        return BulkJobs(self).poll(job_ref, records)

    # --- preview -----------------------------------------------------------------------------
    def preview_writes(
        self,
        object_name: str,
        records: list[OutRecord],
        *,
        match_field: str,
        destination_config: dict,
    ) -> dict[str, str]:
        sobject = sobject_of(object_name, destination_config)
        said: dict[str, str] = {}
        rest = records
        if _routes(object_name, destination_config):
            contacts = self.contacts_by_email([str(r.payload.get("Email") or "") for r in records])
            rest = []
            for record in records:
                ids = contacts.get(str(record.payload.get("Email") or "").strip().lower(), [])
                if len(ids) == 1:
                    said[record.key] = f"would update Contact {ids[0]}"
                elif ids:
                    said[record.key] = f"would be refused: {len(ids)} Contacts have this e-mail"
                else:
                    rest.append(record)
        existing = self.lookup(
            object_name,
            [r.match_value for r in rest],
            match_field=match_field,
            destination_config=destination_config,
        )
        for record in rest:
            found = existing.get(record.match_value)
            said[record.key] = (
                f"would update {sobject} {found}" if found else f"would create {sobject}"
            )
        return said
