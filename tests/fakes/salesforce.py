"""``FakeSalesforce``: Salesforce's REST API (sObject describe, SOQL, sObject Collections) and
Bulk API 2.0 ingest, with its OAuth endpoints, as a real HTTP server on 127.0.0.1.

Citations in brackets point to the Salesforce source list in /work/shared/VENDORS.md (section
4); Salesforce's Postman collections in ../shared/vendor-specs/salesforce/ are examples without
schemas, so the shapes follow VENDORS.md. Strict about what the connector sends: unknown
fields, missing external ids, more than 200 records, duplicate external ids in one request, a
second upload to one job, relationship columns that are not external ids, CRLF line endings.

- ``PATCH .../composite/sobjects/{SObject}/{ExternalIdField}``: upsert, at most 200 records,
  each with ``attributes.type``, answered 200 with one UpsertResult per record in order [S1];
- ``PATCH .../composite/sobjects``: update by ``id``; ``DELETE .../composite/sobjects?ids=``
  (at most 200, to the recycle bin) [S16];
- ``GET .../query?q=``: the one SOQL shape ``SELECT f, g FROM Obj WHERE f IN ('a', 'b')``;
- ``GET .../sobjects/{name}/describe``, ``GET .../limits`` [S20], and ``GET .../sobjects``
  (Describe Global: every object's name, label, ``custom`` and what may be done with it);
- Bulk API 2.0: ``tests/fakes/salesforce_bulk.py``;
- every answer carries ``Sforce-Limit-Info: api-usage=N/M``; past the daily allowance every
  API request is refused with 403 ``REQUEST_LIMIT_EXCEEDED`` and no ``Retry-After`` [S17][S19];
- an access token that expired (``oauth.store.expire_access_tokens()``) is a 401
  ``INVALID_SESSION_ID`` [S21].
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from tests.fakes import salesforce_errors as errors
from tests.fakes.base import FakeVendor
from tests.fakes.limits import RateStatus
from tests.fakes.routing import Auth, Route
from tests.fakes.salesforce_bulk import OPERATIONS, Jobs
from tests.fakes.salesforce_oauth import SalesforceOAuth
from tests.fakes.salesforce_store import (
    NUMBER_TYPES,
    FieldDef,
    ObjectStore,
    Org,
    QueryError,
    RecordError,
    parse_soql,
)
from tests.fakes.shapes import check_list, check_object, type_name
from tests.fakes.wire import Request, Response

API = r"/services/data/v(?P<version>\d+\.\d)"
MAX_RECORDS = 200  # sObject Collections [S1][S16]
MIN_COLLECTIONS_VERSION = 46.0  # upsert by external id in collections [S1]
MAX_URI = 16_384  # emulator choice: the request line Salesforce takes
DEMO_REFRESH_TOKEN = "sf-demo-refresh-token"


def _json_type_problem(spec: FieldDef, value: Any, where: str) -> str | None:
    """A JSON value of the wrong type for the field (Salesforce: JSON_PARSER_ERROR)."""
    if value is None:
        return None
    if spec.type == "boolean":
        ok = isinstance(value, bool)
    elif spec.type in NUMBER_TYPES:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:  # text, dates, ids
        ok = isinstance(value, str)
    if ok:
        return None
    return f"{where}: Cannot deserialize {type_name(value)} as {spec.type} ({spec.name})"


class FakeSalesforce(FakeVendor):
    name = "salesforce"
    auth_hint = "send 'Authorization: Bearer <access token>' [S1]"
    token_path = "/services/oauth2/token"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, rotate: bool = False):
        self.oauth = SalesforceOAuth(self, rotate=rotate)
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        """A refresh token the emulator always accepts (the demo's connection)."""
        return DEMO_REFRESH_TOKEN

    # -- test helpers ---------------------------------------------------------------------
    def object(self, name: str) -> ObjectStore:
        store = self.org.get(name)
        if store is None:
            raise ValueError(f"FakeSalesforce has no object {name!r}")
        return store

    def add_object(self, name: str, fields: list[FieldDef]) -> None:
        """A custom object (``Invoice__c``) with these fields besides the system ones."""
        from tests.fakes.salesforce_store import _system_fields

        with self._lock:
            self.org.add_object(name, [*_system_fields(), *fields])

    def add_field(self, obj: str, spec: FieldDef) -> None:
        with self._lock:
            self.object(obj).fields[spec.name] = spec

    def require_field(self, obj: str, name: str) -> None:
        """Make a field required on create (not nillable, no default)."""
        with self._lock:
            spec = self.object(obj).fields[name]
            spec.nillable, spec.defaulted = False, False

    def add_record(self, obj: str, fields: dict[str, Any]) -> str:
        """Seed a record created by someone else (no validation); returns its Id."""
        with self._lock:
            return self.org.create(self.object(obj), dict(fields), check=False)["Id"]

    def find(self, obj: str, field: str, value: str) -> dict[str, Any] | None:
        """The live record whose ``field`` equals ``value`` (case-insensitive)."""
        with self._lock:
            found = self.object(obj).matching(field, value)
            return dict(found[0]) if found else None

    def records(self, obj: str, include_deleted: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            return [
                dict(r)
                for r in self.object(obj).records.values()
                if include_deleted or not r["IsDeleted"]
            ]

    def record(self, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            for store in self.org.objects.values():
                if record_id in store.records:
                    return dict(store.records[record_id])
        return None

    def create_count(self, obj: str, field: str, value: str) -> int:
        with self._lock:
            return self.object(obj).created[(field, str(value).lower())]

    def reject_values(self, obj: str, field: str, value: str, message: str) -> None:
        """A validation rule: a write setting ``field`` to ``value`` fails with ``message``."""
        with self._lock:
            self.object(obj).rejections.append((field, value, message))

    def lock(self, record_id: str) -> None:
        """Someone else holds the row: writes to it fail UNABLE_TO_LOCK_ROW until unlocked."""
        with self._lock:
            for store in self.org.objects.values():
                if record_id in store.records:
                    store.locked.add(record_id)

    def unlock_all(self) -> None:
        with self._lock:
            for store in self.org.objects.values():
                store.locked.clear()

    def convert_lead(self, lead_id: str) -> str:
        """Convert a Lead (a salesperson's action): a Contact with its name and e-mail; the
        Lead is converted and can no longer be updated. Returns the Contact's Id."""
        with self._lock:
            lead = self.object("Lead").records[lead_id]
            contact = self.org.create(
                self.object("Contact"),
                {k: lead[k] for k in ("FirstName", "LastName", "Email", "Title")},
            )
            converted = {"IsConverted": True, "ConvertedContactId": contact["Id"]}
            self.object("Lead").reindex(lead, converted)
            lead.update(converted)
            return contact["Id"]

    def set_daily_limit(self, maximum: int, *, used: int | None = None) -> None:
        """The org's daily API request allowance (and what is used of it)."""
        with self._lock:
            self.daily_max = maximum
            if used is not None:
                self.usage = used

    def new_day(self) -> None:
        """The rolling 24 hours moved on: nothing of the allowance is used."""
        with self._lock:
            self.usage = 0

    # -- FakeVendor hooks -----------------------------------------------------------------
    def reset_store(self) -> None:
        self.org = Org()
        self.bulk = Jobs(self.org)
        self.usage = 0
        self.daily_max = 100_000  # 100,000 + per licence [S17]
        self.limit_refusals = 0
        self.oauth.reset()
        self.oauth.store.issue_grant(["api", "refresh_token"])
        from tests.fakes.oauth_store import _Refresh

        self.oauth.store.refresh[DEMO_REFRESH_TOKEN] = _Refresh(["api", "refresh_token"])

    def register_routes(self) -> None:
        self.oauth.register()
        add = self.add_route
        add("GET", f"{API}/limits", self._limits)
        add("GET", rf"{API}/sobjects/?", self._describe_global)
        add("GET", rf"{API}/sobjects/(?P<object>\w+)/describe", self._describe)
        add("GET", f"{API}/query", self._query, query=frozenset({"q"}))
        add(
            "PATCH",
            rf"{API}/composite/sobjects/(?P<object>\w+)/(?P<field>\w+)",
            self._upsert,
            validate=self._check_upsert,
            write=True,
            json_body=True,
        )
        add(
            "PATCH",
            f"{API}/composite/sobjects",
            self._update,
            validate=self._check_update,
            write=True,
            json_body=True,
        )
        add(
            "DELETE",
            f"{API}/composite/sobjects",
            self._delete,
            validate=self._check_delete,
            write=True,
            query=frozenset({"ids", "allOrNone"}),
        )
        jobs = f"{API}/jobs/ingest"
        add("POST", jobs, self._job_create, validate=self._check_job, write=True, json_body=True)
        add(
            "PUT",
            rf"{jobs}/(?P<job>\w+)/batches",
            self._job_upload,
            validate=self._check_upload,
            write=True,
        )
        add(
            "PATCH",
            rf"{jobs}/(?P<job>\w+)",
            self._job_state,
            validate=self._check_state,
            write=True,
            json_body=True,
        )
        add("GET", rf"{jobs}/(?P<job>\w+)", self._job_info)
        add(
            "GET",
            rf"{jobs}/(?P<job>\w+)/(?P<kind>successfulResults|failedResults|unprocessedrecords)/?",
            self._job_results,
        )

    def authenticate(self, req: Request) -> Auth:
        header = req.header("authorization")
        if header is None:
            return Auth.MISSING
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Auth.MALFORMED
        return Auth.OK if self.oauth.valid(token.strip()) else Auth.WRONG

    def _check_limits(self, req: Request, route: Route) -> Response | None:
        """The sliding window and concurrency cap, then the org's daily allowance: every API
        request counts; past the maximum each is refused [S17]."""
        limited = super()._check_limits(req, route)
        if limited is not None or not req.path.startswith("/services/data/"):
            return limited
        if self.usage >= self.daily_max:
            self.limit_refusals += 1
            return errors.request_limit(daily=True)
        self.usage += 1
        return None

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        return errors.invalid_session()

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        return errors.not_found(req.method, req.path, method_not_allowed)

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        if req.path.endswith("/query"):
            return errors.error(400, "MALFORMED_QUERY", "; ".join(problems)[:2000])
        return errors.invalid(problems)

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        return errors.request_limit(daily=False)

    def fault_response(self, status: int) -> Response:
        return errors.fault(status)

    def decorate(self, response: Response, rate: RateStatus) -> Response:
        """``Sforce-Limit-Info: api-usage=N/M`` on every answer [S19]."""
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.usage}/{self.daily_max}"
        return response

    # -- shapes ---------------------------------------------------------------------------
    def _record_problems(
        self, store: ObjectStore, item: Any, where: str, *, id_key: str = ""
    ) -> list[str]:
        if not isinstance(item, dict):
            return [f"{where}: expected an object, got {type_name(item)}"]
        problems = []
        attributes = item.get("attributes")
        if not isinstance(attributes, dict) or attributes.get("type") != store.name:
            problems.append(f"{where}.attributes.type must be {store.name!r} [S1]")
        for name, value in item.items():
            if name == "attributes" or name == id_key:
                continue
            if isinstance(value, dict):
                spec = next((f for f in store.fields.values() if f.relationship == name), None)
                target = self.org.get(spec.reference_to[0]) if spec else None
                keys = [k for k in value if k != "attributes"]
                ext = target.fields.get(keys[0]) if target and len(keys) == 1 else None
                if ext is None or not ext.external_id:
                    problems.append(
                        f"{where}.{name}: INVALID_FIELD: not a relationship by one external "
                        f"id of {store.name}"
                    )
                continue
            spec = store.fields.get(name)
            if spec is None:
                problems.append(
                    f"{where}: INVALID_FIELD: No such column '{name}' on sobject of type "
                    f"{store.name}"
                )
                continue
            problem = _json_type_problem(spec, value, f"{where}.{name}")
            if problem:
                problems.append(problem)
        return problems

    def _collection_problems(self, req: Request, store: ObjectStore | None, id_key: str = ""):
        version = float(req.params["version"])
        problems = []
        if version < MIN_COLLECTIONS_VERSION:
            problems.append(f"sObject Collections need API v46.0 or later [S1], got v{version}")
        problems += check_object(req.body, "body", required={"allOrNone": bool, "records": list})
        body = req.body if isinstance(req.body, dict) else {}
        if body.get("allOrNone") is not False:
            problems.append("allOrNone must be false: one bad record must not fail the others")
        records = body.get("records")
        if not isinstance(records, list):
            return problems
        problems += check_list(records, "records", max_items=MAX_RECORDS, source="[S1]")
        if store is None:
            return problems
        for i, item in enumerate(records[:MAX_RECORDS]):
            problems += self._record_problems(store, item, f"records[{i}]", id_key=id_key)
        return problems

    def _check_upsert(self, req: Request) -> list[str]:
        store = self.org.get(req.params["object"])
        problems = [] if store else [f"INVALID_TYPE: sObject type {req.params['object']}"]
        problems += self._collection_problems(req, store)
        if store is None:
            return problems
        ext = store.fields.get(req.params["field"])
        if ext is None or not ext.external_id:
            problems.append(
                f"{req.params['field']} is not an external id field of {store.name}: only "
                "external-ID fields can be used [S1]"
            )
            return problems
        seen: set[str] = set()
        for i, item in enumerate((req.body or {}).get("records") or []):
            if not isinstance(item, dict):
                continue
            value = item.get(ext.name)
            if value in (None, ""):
                problems.append(f"records[{i}]: no {ext.name} (the external id) [S1]")
            elif str(value).lower() in seen:
                problems.append(f"records[{i}]: external id {value!r} twice in one request")
            seen.add(str(value).lower())
        return problems

    def _check_update(self, req: Request) -> list[str]:
        records = (req.body or {}).get("records") if isinstance(req.body, dict) else None
        first = records[0] if isinstance(records, list) and records else {}
        name = (first.get("attributes") or {}).get("type", "") if isinstance(first, dict) else ""
        store = self.org.get(name)
        problems = self._collection_problems(req, store, id_key="id")
        for i, item in enumerate(records or []):
            if isinstance(item, dict) and not isinstance(item.get("id"), str):
                problems.append(f"records[{i}]: an update by Id needs 'id' [S1]")
        return problems

    def _check_delete(self, req: Request) -> list[str]:
        problems = []
        ids = [i for i in req.query.get("ids", "").split(",") if i]
        if not ids:
            problems.append("ids: give the record ids to delete [S16]")
        if len(ids) > MAX_RECORDS:
            problems.append(f"ids: {len(ids)} ids exceed the maximum of 200 [S16]")
        if req.query.get("allOrNone") != "false":
            problems.append("allOrNone must be false")
        return problems

    # -- REST handlers ------------------------------------------------------------------------
    def _limits(self, req: Request) -> Response:
        left = max(self.daily_max - self.usage, 0)
        return Response(200, {"DailyApiRequests": {"Max": self.daily_max, "Remaining": left}})

    def _describe_global(self, req: Request) -> Response:
        keys = ("name", "label", "custom", "createable", "updateable", "deletable", "keyPrefix")
        objects = [
            {**{k: v for k, v in store.describe().items() if k in keys}, "customSetting": False}
            for store in self.org.objects.values()
        ]
        return Response(200, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})

    def _describe(self, req: Request) -> Response:
        store = self.org.get(req.params["object"])
        if store is None:
            return errors.error(
                404, "NOT_FOUND", f"The requested resource does not exist: {req.params['object']}"
            )
        return Response(200, store.describe())

    def _query(self, req: Request) -> Response:
        q = req.query.get("q", "")
        uri = len(req.path) + len(urlencode({"q": q})) + 1
        if uri > MAX_URI:
            self.violate(req, f"the request URI is {uri} characters, over {MAX_URI}")
            return errors.error(414, "URI_TOO_LONG", "Request-URI Too Long")
        try:
            fields, name, where, values = parse_soql(q)
            store = self.org.get(name)
            if store is None:
                raise QueryError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
            for field_name in [*fields, where]:
                if field_name not in store.fields:
                    raise QueryError("INVALID_FIELD", f"No such column '{field_name}' on {name}")
        except QueryError as exc:
            self.violate(req, f"{exc.code}: {exc.message}")
            return errors.error(400, exc.code, exc.message)
        found = {r["Id"]: r for v in {v.lower() for v in values} for r in store.matching(where, v)}
        records = [
            {
                "attributes": {
                    "type": name,
                    "url": f"/services/data/v{req.params['version']}/sobjects/{name}/{r['Id']}",
                },
                **{f: r.get(f) for f in fields},
            }
            for _, r in sorted(found.items())
        ]
        return Response(200, {"totalSize": len(records), "done": True, "records": records})

    def _result(self, record: dict | None, created: bool | None, exc: RecordError | None):
        if exc is not None:
            return {"success": False, "errors": [exc.to_json()]}
        body = {"id": record["Id"], "success": True, "errors": []}
        if created is not None:
            body["created"] = created
        return body

    def _upsert(self, req: Request) -> Response:
        store = self.object(req.params["object"])
        results = []
        for item in req.body["records"]:
            data = {k: v for k, v in item.items() if k != "attributes"}
            try:
                record, created = self.org.upsert(store, req.params["field"], data)
            except RecordError as exc:
                results.append(self._result(None, None, exc))
                continue
            results.append(self._result(record, created, None))
        return Response(200, results)

    def _update(self, req: Request) -> Response:
        results = []
        for item in req.body["records"]:
            store = self.object(item["attributes"]["type"])
            record = store.records.get(item["id"])
            data = {k: v for k, v in item.items() if k not in ("attributes", "id")}
            try:
                if record is None or record["IsDeleted"]:
                    raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
                self.org.update(
                    store, record, self.org.values(store, data, csv=False, create=False)
                )
            except RecordError as exc:
                results.append(self._result(None, None, exc))
                continue
            results.append(self._result(record, None, None))
        return Response(200, results)

    def _delete(self, req: Request) -> Response:
        results = []
        for record_id in req.query["ids"].split(","):
            record = self.org.delete(record_id)
            if record is None:
                error = RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
                results.append({"id": record_id, **self._result(None, None, error)})
            else:
                results.append({"id": record_id, "success": True, "errors": []})
        return Response(200, results)

    # -- Bulk API 2.0 ---------------------------------------------------------------------
    def _job(self, req: Request):
        return self.bulk.jobs.get(req.params["job"])

    def _check_job(self, req: Request) -> list[str]:
        optional = {"externalIdFieldName": str, "contentType": frozenset({"CSV"})}
        optional.update(
            lineEnding=frozenset({"LF"}), columnDelimiter=frozenset({"COMMA"}),
            assignmentRuleId=str,
        )  # fmt: skip
        problems = check_object(
            req.body,
            "body",
            required={"object": str, "operation": frozenset(OPERATIONS)},
            optional=optional,
        )
        body = req.body if isinstance(req.body, dict) else {}
        store = self.org.get(str(body.get("object")))
        if store is None:
            problems.append(f"object {body.get('object')!r} does not exist")
        if body.get("operation") == "upsert":
            ext = store.fields.get(str(body.get("externalIdFieldName"))) if store else None
            if ext is None or not ext.external_id:
                problems.append("an upsert job needs externalIdFieldName, an external id field")
        return problems

    def _check_upload(self, req: Request) -> list[str]:
        if req.content_type != "text/csv":
            return [f"Content-Type must be text/csv [S12], got {req.header('content-type')}"]
        job = self._job(req)
        if job is not None and job.state != "Open":
            return [f"job {job.id} is {job.state}: data is uploaded to Open jobs only [S12]"]
        return []

    def _check_state(self, req: Request) -> list[str]:
        return check_object(
            req.body, "body", required={"state": frozenset({"UploadComplete", "Aborted"})}
        )

    def _job_create(self, req: Request) -> Response:
        job = self.bulk.create(req.body)
        return Response(200, job.info(f"v{req.params['version']}"))

    def _job_upload(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return errors.error(404, "NOT_FOUND", "The requested resource does not exist")
        text = req.raw_body.decode("utf-8")
        for problem in self.bulk.upload(job, text):
            self.violate(req, problem)
        return Response(201, None)

    def _job_state(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return errors.error(404, "NOT_FOUND", "The requested resource does not exist")
        wanted = req.body["state"]
        if wanted == "Aborted":
            if job.state in ("JobComplete", "Failed"):
                return errors.error(400, "INVALIDJOBSTATE", f"Job is {job.state}")
            job.state = "Aborted"
        else:
            if job.state != "Open":
                return errors.error(400, "INVALIDJOBSTATE", f"Job is {job.state}, not Open")
            if job.uploads != 1:
                return errors.error(
                    400,
                    "INVALIDJOB",
                    f"Found {job.uploads} contents for job: <{job.id}>; make sure you only do "
                    "'PUT' once on a given Job",
                )
            self.bulk.close(job)
        return Response(200, job.info(f"v{req.params['version']}"))

    def _job_info(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return errors.error(404, "NOT_FOUND", "The requested resource does not exist")
        self.bulk.advance(job)
        return Response(200, job.info(f"v{req.params['version']}"))

    def _job_results(self, req: Request) -> Response:
        job = self._job(req)
        if job is None:
            return errors.error(404, "NOT_FOUND", "The requested resource does not exist")
        if job.state not in ("JobComplete", "Failed", "Aborted"):
            self.violate(req, f"results of job {job.id} asked while it is {job.state}")
            return errors.error(400, "INVALIDJOBSTATE", f"Job is {job.state}")
        return Response(200, self.bulk.results(job, req.params["kind"]), "text/csv; charset=utf-8")

    # -- reading what a job was sent --------------------------------------------------------
    def uploaded(self, job_id: str) -> list[dict[str, str]]:
        """The rows uploaded to a job, as column -> value."""
        with self._lock:
            job = self.bulk.jobs[job_id]
            return [dict(zip(job.header, row, strict=True)) for row in job.rows]
