"""``FakeHubSpot``: an HTTP emulator of HubSpot CRM v3 objects (companies, contacts).

Citations in brackets point to the HubSpot source list in /work/shared/VENDORS.md (section 3).
Behaviour the document does not settle is marked "emulator choice".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from tests.fakes import hubspot_errors as errors
from tests.fakes.base import FakeVendor
from tests.fakes.hubspot_oauth import CLIENT_ID, CLIENT_SECRET, HubSpotOAuth
from tests.fakes.hubspot_store import (
    FIELD_TYPES,
    OBJECT_TYPES,
    CrmObject,
    ObjectStore,
    PropertyDef,
    RecordError,
    iso_now,
)
from tests.fakes.limits import RateStatus
from tests.fakes.routing import Auth
from tests.fakes.shapes import check_list, check_object, check_value
from tests.fakes.wire import Request, Response

MAX_BATCH = 100  # [H13] at most 100 records per batch call (archive too [H11][H13])
_TYPES = "(?P<type>" + "|".join(OBJECT_TYPES) + ")"
_OBJECTS = f"/crm/v3/objects/{_TYPES}"
#: Communication Preferences v4 [H11]: unsubscribe addresses from all e-mail, in a batch.
UNSUBSCRIBE_ALL = "/communication-preferences/v4/statuses/batch/unsubscribe-all"
#: The account's subscription types (emulator choice: two; HubSpot accounts define their own).
SUBSCRIPTIONS = ((1, "Marketing Information"), (2, "One to One"))


class FakeHubSpot(FakeVendor):
    """HubSpot CRM v3: batch upsert/read/archive and the properties list, over real HTTP, and
    the OAuth endpoints (``oauth``: ``tests.fakes.hubspot_oauth``)."""

    name = "hubspot"
    #: Reported in the rate headers until ``set_rate_limit``: 190 per 10 s (private app) [H18].
    nominal_rate_limit = (190, 10.0)
    auth_hint = "expected 'Authorization: Bearer <token>' [H5]"

    def __init__(
        self,
        *,
        token: str = "hs-test-token",  # noqa: S107 - a fixed test-only credential
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
    ):
        self.token = token
        self.oauth = HubSpotOAuth(self, client_id=client_id, client_secret=client_secret)
        super().__init__(host=host, port=port)

    @property
    def credential(self) -> str:
        """The private-app / OAuth bearer token the fake accepts."""
        return self.token

    # -- test helpers ---------------------------------------------------------------------

    def add_property(
        self,
        object_type: str,
        name: str,
        unique: bool = False,
        type_: str = "string",
        *,
        label: str | None = None,
        options: tuple[str, ...] = (),
        read_only: bool = False,
    ) -> None:
        """Define a custom property (``type_`` per [H25]; ``options`` for enumerations)."""
        prop = PropertyDef(
            name,
            label or name.replace("_", " ").title(),
            type_,
            FIELD_TYPES.get(type_, "text"),
            unique=unique,
            read_only=read_only,
            custom=True,
            options=options,
        )
        with self._lock:
            self._store(object_type).add_property(prop)

    def reject_values(
        self, object_type: str, property: str, value: str, message: str | None = None
    ) -> None:
        """Make any input carrying ``property == value`` fail validation (a 207 record error)."""
        message = message or f'Property "{property}" has a value HubSpot rejects: {value!r}'
        with self._lock:
            self._store(object_type).rejections.append((property, value, message))

    def clear_rejections(self, object_type: str) -> None:
        """Accept again the values ``reject_values`` made HubSpot refuse."""
        with self._lock:
            self._store(object_type).rejections.clear()

    def add_object(self, object_type: str, properties: dict[str, str]) -> str:
        """Seed an existing record (no validation); returns its HubSpot id."""
        with self._lock:
            return self._store(object_type).create(dict(properties)).id

    def objects(self, object_type: str, include_archived: bool = True) -> list[dict[str, Any]]:
        """Stored records as ``{id, properties, archived, created_count, createdAt, updatedAt}``.

        ``created_count`` counts creations sharing a unique value with the record: above 1 means
        a duplicate was created for the same key.
        """
        with self._lock:
            store = self._store(object_type)
            return [
                {
                    "id": obj.id,
                    "properties": dict(obj.properties),
                    "archived": obj.archived,
                    "created_count": store.created_count(obj),
                    "createdAt": obj.created_at,
                    "updatedAt": obj.updated_at,
                }
                for obj in store.objects.values()
                if include_archived or not obj.archived
            ]

    def find(self, object_type: str, property: str, value: str) -> dict[str, Any] | None:
        """The live record whose unique ``property`` (or ``hs_object_id``) is ``value``."""
        with self._lock:
            obj = self._store(object_type).lookup(property, value)
            return None if obj is None else obj.to_json()

    def create_count(self, object_type: str, unique_property: str, value: str) -> int:
        """How many times a record with that unique value was created (1 = no duplicates)."""
        with self._lock:
            return self._store(object_type).create_count(unique_property, value)

    def unsubscribed_from_all(self, email: str) -> bool:
        """Whether the address was unsubscribed from all e-mail (Communication Preferences)."""
        with self._lock:
            return email.lower() in self._unsubscribed

    # -- HubSpot as the sender of webhooks ----------------------------------------------

    @staticmethod
    def webhook_event(
        object_id: str | int,
        property_name: str,
        property_value: str,
        *,
        event_id: int,
        subscription: str = "contact.propertyChange",
        occurred_at_ms: int | None = None,
        portal_id: int = 62515,
    ) -> dict[str, Any]:
        """One event of a webhook request, shaped as [H21]."""
        return {
            "eventId": event_id,
            "subscriptionId": 4242,
            "portalId": portal_id,
            "appId": 1160452,
            "occurredAt": occurred_at_ms or int(time.time() * 1000),
            "subscriptionType": subscription,
            "attemptNumber": 0,
            "objectId": int(object_id),
            "propertyName": property_name,
            "propertyValue": property_value,
            "changeSource": "CRM_UI",
            "sourceId": "userId:1234",
        }

    @staticmethod
    def signed_webhook(
        url: str,
        events: list[dict[str, Any]],
        *,
        secret: str,
        timestamp_ms: int | None = None,
        raw_body: bytes | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers HubSpot sends to ``url``: a JSON array signed with
        ``X-HubSpot-Signature-v3`` (base64 HMAC-SHA256 of POST + URI + body + timestamp with
        the app's client secret) and ``X-HubSpot-Request-Timestamp`` in ms [H22][H23].
        ``raw_body`` signs those bytes instead (a malformed body, properly signed)."""
        body = raw_body if raw_body is not None else json.dumps(events).encode()
        stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        message = b"POST" + url.encode() + body + stamp.encode()
        signature = base64.b64encode(
            hmac.new(secret.encode(), message, hashlib.sha256).digest()
        ).decode()
        headers = {
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": stamp,
        }
        return body, headers

    # -- FakeVendor hooks -----------------------------------------------------------------

    def reset_store(self) -> None:
        ids = itertools.count(1001)
        self._stores = {object_type: ObjectStore(object_type, ids) for object_type in OBJECT_TYPES}
        self._unsubscribed: dict[str, str] = {}  # address -> when, unsubscribed from all
        self.oauth.reset()

    def _store(self, object_type: str) -> ObjectStore:
        if object_type not in self._stores:
            raise ValueError(f"FakeHubSpot emulates {OBJECT_TYPES}, not {object_type!r}")
        return self._stores[object_type]

    def register_routes(self) -> None:
        self.oauth.register()
        self.add_route(
            "POST",
            f"{_OBJECTS}/batch/upsert",
            self._upsert,
            validate=self._check_upsert,
            write=True,
            json_body=True,
        )
        self.add_route(
            "POST",
            f"{_OBJECTS}/batch/read",
            self._read,
            validate=self._check_read,
            query=frozenset({"archived"}),
            json_body=True,
        )
        self.add_route(
            "POST",
            f"{_OBJECTS}/batch/archive",
            self._archive,
            validate=self._check_archive,
            write=True,
            json_body=True,
        )
        self.add_route(
            "POST",
            UNSUBSCRIBE_ALL,
            self._unsubscribe_all,
            validate=self._check_unsubscribe_all,
            write=True,
            query=frozenset({"channel", "businessUnitId", "verbose"}),
            json_body=True,
        )
        self.add_route(
            "GET",
            f"/crm/v3/properties/{_TYPES}",
            self._properties,
            query=frozenset({"archived", "properties", "dataSensitivity", "locale"}),
        )

    def authenticate(self, req: Request) -> Auth:
        """``Authorization: Bearer <token>``: the private app token or an OAuth access token
        that has not expired [H5][H6]; the old ``hapikey`` is gone [H5]."""
        header = req.header("authorization")
        if header is None:
            return Auth.MISSING
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Auth.MALFORMED
        token = token.strip()
        return Auth.OK if token == self.token or self.oauth.store.valid(token) else Auth.WRONG

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        return errors.unauthorized()

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        return errors.not_found(req.method, req.path, method_not_allowed)

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        return errors.invalid(problems)

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        return errors.too_many_requests(rate.retry_after_header)

    def fault_response(self, status: int) -> Response:
        return errors.fault(status)

    def daily_limited_response(self, req: Request) -> Response:
        return errors.daily_limit_reached()

    def decorate(self, response: Response, rate: RateStatus) -> Response:
        """``X-HubSpot-RateLimit-Interval-Milliseconds``, ``-Max``, ``-Remaining`` [H18]; with a
        daily limit set, ``-Daily`` and ``-Daily-Remaining`` too (HubSpot sends those on
        private-app requests only; emulator choice: on every answer)."""
        response.headers.update(
            {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(rate.window_seconds * 1000)),
                "X-HubSpot-RateLimit-Max": str(rate.limit),
                "X-HubSpot-RateLimit-Remaining": str(rate.remaining),
            }
        )
        if self._daily is not None:
            limit = self._daily.max_requests
            remaining = max(limit - self._daily.used_today(time.time()), 0)
            response.headers["X-HubSpot-RateLimit-Daily"] = str(limit)
            response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(remaining)
        return response

    # -- validators (violations) ----------------------------------------------------------

    @staticmethod
    def _inputs(req: Request) -> list[Any] | None:
        """The ``inputs`` list when the body is well-formed enough to look inside."""
        body = req.body
        inputs = body.get("inputs") if isinstance(body, dict) else None
        return inputs if isinstance(inputs, list) and len(inputs) <= MAX_BATCH else None

    def _check_inputs(
        self,
        req: Request,
        item_shape: dict[str, Any],
        body_required: dict[str, Any] | None = None,
        body_optional: dict[str, Any] | None = None,
    ) -> list[str]:
        """The body and each ``inputs[]`` item against their shapes; at most 100 inputs [H13]."""
        required = {"inputs": list, **(body_required or {})}
        problems = check_object(req.body, "body", required=required, optional=body_optional)
        if isinstance(req.body, dict) and isinstance(req.body.get("inputs"), list):
            inputs = req.body["inputs"]
            problems += check_list(inputs, "inputs", max_items=MAX_BATCH, source="[H13]")
        for i, item in enumerate(self._inputs(req) or []):
            problems += check_object(item, f"inputs[{i}]", **item_shape)
        return problems

    def _check_upsert(self, req: Request) -> list[str]:
        """``{"inputs":[{idProperty, id, properties}]}``, at most 100, string values [H11][H13]."""
        shape = {
            "required": {"idProperty": str, "id": str, "properties": dict},
            "optional": {"objectWriteTraceId": str},
        }
        problems = self._check_inputs(req, shape)
        store = self._store(req.params["type"])
        seen: set[tuple[str, str]] = set()
        for i, item in enumerate(self._inputs(req) or []):
            if not isinstance(item, dict):
                continue
            where = f"inputs[{i}]"
            properties = item.get("properties")
            for name, value in properties.items() if isinstance(properties, dict) else ():
                for problem in check_value(value, str, f"{where}.properties.{name}"):
                    problems.append(f"{problem} (property values are strings [H11])")
            id_property, id_value = item.get("idProperty"), item.get("id")
            if not isinstance(id_property, str) or not isinstance(id_value, str):
                continue
            if id_property not in store.key_properties():
                problems.append(
                    f"{where}: Unable to perform update/upsert by non-unique {id_property} "
                    "property (idProperty must have hasUniqueValue, or be email for contacts "
                    "[H13][H15])"
                )
            if not id_value:
                problems.append(f"{where}.id: must not be empty")
            key = (id_property, id_value.lower() if id_property == "email" else id_value)
            if key in seen:  # emulator choice: HubSpot rejects duplicate ids in one batch
                problems.append(f"{where}: Duplicate IDs found in batch input: [{id_value}]")
            seen.add(key)
        return problems

    def _check_read(self, req: Request) -> list[str]:
        """``{idProperty?, inputs:[{id}], properties:[...]}``, at most 100 inputs [H11][H13]."""
        optional = {"idProperty": str, "propertiesWithHistory": list}
        problems = self._check_inputs(
            req, {"required": {"id": str}}, {"properties": list}, optional
        )
        body = req.body if isinstance(req.body, dict) else {}
        names = body.get("properties")
        for i, name in enumerate(names if isinstance(names, list) else []):
            problems += check_value(name, str, f"properties[{i}]")
        id_property = body.get("idProperty", "hs_object_id")
        store = self._store(req.params["type"])
        if id_property != "hs_object_id" and id_property not in store.key_properties():
            problems.append(f"idProperty: {id_property} is not a unique-value property [H13]")
        return problems

    def _check_unsubscribe_all(self, req: Request) -> list[str]:
        """``?channel=EMAIL`` (the only channel) and ``{"inputs": ["a@x.com", ...]}`` [H11];
        at most 100 inputs (emulator choice: HubSpot's usual batch limit)."""
        problems = []
        if req.query.get("channel") != "EMAIL":
            problems.append("channel=EMAIL is required (the only channel type) [H11]")
        problems += check_object(req.body, "body", required={"inputs": list})
        inputs = req.body.get("inputs") if isinstance(req.body, dict) else None
        if isinstance(inputs, list):
            problems += check_list(inputs, "inputs", max_items=MAX_BATCH, source="[H11]")
            for i, value in enumerate(inputs):
                problems += check_value(value, str, f"inputs[{i}]")
        return problems

    def _check_archive(self, req: Request) -> list[str]:
        """``{"inputs":[{"id":"123"}]}``, at most 100 [H11][H13]."""
        return self._check_inputs(req, {"required": {"id": str}})

    # -- handlers (under the state lock) --------------------------------------------------

    def _upsert(self, req: Request) -> Response:
        """200 ``{status, results[{..., new}], startedAt, completedAt}``.

        Multi-status only when every input carries its own ``objectWriteTraceId`` [H17]: then
        the valid inputs are applied and the others come back as 207 ``errors`` naming their
        trace id (``context.objectWriteTraceId``, and the input's ``id``). Without trace ids an
        invalid input fails the whole batch with a 400 and nothing is applied (emulator
        choice: HubSpot documents no partial write in that mode).
        """
        store = self._store(req.params["type"])
        inputs = req.body["inputs"]
        traces = [item.get("objectWriteTraceId") for item in inputs]
        multi_status = all(traces) and len(set(traces)) == len(traces)
        if not multi_status:
            problems = [
                f"{item['id']}: {problem['message']}"
                for item in inputs
                for problem in store.upsert_problems(
                    item["idProperty"], item["id"], item["properties"]
                )
            ]
            if problems:
                return errors.invalid(problems)
        started = iso_now()
        results, failures = [], []
        for item, trace in zip(inputs, traces, strict=True):
            try:
                obj, created = store.upsert(item["idProperty"], item["id"], item["properties"])
            except RecordError as exc:
                failures.append(errors.record_error(item["id"], exc.problems, trace=trace))
                continue
            result = {**obj.to_json(), "new": created}
            if trace:
                result["objectWriteTraceId"] = trace
            results.append(result)
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if failures:
            body.update(numErrors=len(failures), errors=failures)
        body.update(startedAt=started, completedAt=iso_now())
        return Response(207 if failures else 200, body)

    def _read(self, req: Request) -> Response:
        """200 with found records; 207 with an ``OBJECT_NOT_FOUND`` error for the rest."""
        store = self._store(req.params["type"])
        id_property = req.body.get("idProperty", "hs_object_id")
        archived = req.query.get("archived", "false").lower() == "true"
        names = req.body.get("properties", [])
        started = iso_now()
        results, missing = [], []
        for item in req.body["inputs"]:
            obj: CrmObject | None
            if archived:
                obj = store.objects.get(item["id"])
                obj = obj if obj is not None and obj.archived else None
            else:
                obj = store.lookup(id_property, item["id"])
            if obj is None:
                missing.append(item["id"])
            else:
                results.append(obj.to_json(names))
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if missing:
            not_found = errors.objects_not_found(req.params["type"], missing)
            body.update(numErrors=1, errors=[not_found])
        body.update(startedAt=started, completedAt=iso_now())
        return Response(207 if missing else 200, body)

    def _archive(self, req: Request) -> Response:
        """204; archived records keep their data, flagged ``archived`` [H11]."""
        store = self._store(req.params["type"])
        for item in req.body["inputs"]:
            store.archive(item["id"])
        return Response(204)

    def _unsubscribe_all(self, req: Request) -> Response:
        """200; with ``verbose=true`` a result per address listing every subscription as
        ``UNSUBSCRIBED``, else no results [H11]. Emulator choice: any address is accepted
        (HubSpot keeps subscription statuses by address)."""
        now = iso_now()
        results = []
        for email in req.body["inputs"]:
            self._unsubscribed.setdefault(email.lower(), now)
            statuses = [
                {
                    "channel": "EMAIL",
                    "source": "Public API",
                    "status": "UNSUBSCRIBED",
                    "subscriberIdString": email,
                    "subscriptionId": subscription_id,
                    "subscriptionName": name,
                    "timestamp": now,
                    "setStatusSuccessReason": "UNSUBSCRIBE_FROM_ALL_OCCURRED",
                }
                for subscription_id, name in SUBSCRIPTIONS
            ]
            results.append({"subscriberIdString": email, "statuses": statuses})
        verbose = req.query.get("verbose", "").lower() == "true"
        body = {
            "status": "COMPLETE",
            "results": results if verbose else [],
            "requestedAt": now,
            "startedAt": now,
            "completedAt": iso_now(),
        }
        return Response(200, body)

    def _properties(self, req: Request) -> Response:
        """``{"results":[{name, label, type, fieldType, hasUniqueValue, ...}]}`` [H25]."""
        store = self._store(req.params["type"])
        return Response(200, {"results": [p.to_json() for p in store.properties.values()]})
