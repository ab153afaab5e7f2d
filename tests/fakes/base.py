"""``FakeVendor``: a real HTTP server on 127.0.0.1 that emulates a marketing vendor's API.

The server runs in a daemon thread of the test process, so a Celery worker in another process
can call it over HTTP while the test inspects it in-process. Every request goes through one
pipeline (``_serve``):

1. route lookup: unknown endpoint -> a violation and the vendor's 404/405;
2. auth: missing or malformed credentials -> a violation and the vendor's 401; a wrong
   credential -> the 401 only (a stale token is a legitimate client state);
3. shape checks (content type, JSON, query names, the route's own validator) -> violations;
4. limits: concurrency cap, then the sliding window -> the vendor's 429, not applied; then the
   daily limit (``set_daily_limit``; public endpoints such as OAuth's are not counted);
5. any violation -> the vendor's 400, not applied;
6. injected faults (``fail_next`` / ``delay_next`` / ``drop_next``), consumed by write requests;
7. the route handler, which reads and changes the store under the state lock, so each write
   is atomic per request.

Subclasses register routes in ``register_routes`` and build the store in ``reset_store``; they
supply the vendor's error bodies through the ``*_response`` hooks.
"""

from __future__ import annotations

import re
import threading
import time
import traceback
from typing import Any, Self

from tests.fakes import wire
from tests.fakes.limits import DailyLimit, Fault, FaultQueue, RateStatus, SlidingWindow
from tests.fakes.routing import Auth, Handler, Route, Validator, match_route, shape_problems
from tests.fakes.vendor_http import HttpServerThread
from tests.fakes.wire import RecordedRequest, Request, Response


class FakeVendor:
    """Base class of the vendor emulators: server lifecycle, recording, limits and faults."""

    name = "vendor"
    #: Reported (not enforced) until ``set_rate_limit`` is called: (max requests, per seconds).
    nominal_rate_limit: tuple[int, float] = (100, 10.0)
    #: Enforce ``nominal_rate_limit`` from the start (and after ``reset()``).
    enforce_nominal_rate_limit = False
    #: The concurrency cap after construction and ``reset()`` (``None``: no cap).
    default_max_concurrency: int | None = None
    #: How the credential is sent, for violation messages.
    auth_hint = "send the vendor's Authorization header"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._http = HttpServerThread(self._serve, host=host, port=port, name=f"fake-{self.name}")
        self._in_flight = 0
        self._routes: list[Route] = []
        self.register_routes()
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind ``host:port`` (port 0: a free one; a restart reuses it) and serve in a thread."""
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open keep-alive connections and wake delayed answers."""
        self._http.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._http.running

    @property
    def port(self) -> int:
        """The bound port (0 before the first ``start()`` when none was given)."""
        return self._http.port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return self._http.url

    # -- state and inspection -------------------------------------------------------------

    def reset(self) -> None:
        """Back to the state after construction: store, log, violations, limits and faults."""
        with self._lock:
            self._requests: list[RecordedRequest] = []
            self._violations: list[str] = []
            self._rate_limited = 0
            self._faults = FaultQueue()
            self._window = SlidingWindow(
                *self.nominal_rate_limit, enforced=self.enforce_nominal_rate_limit
            )
            self._max_concurrency = self.default_max_concurrency
            self._daily: DailyLimit | None = None
            self.reset_store()

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        """A snapshot of every departure from the documented request shapes (tests want [])."""
        with self._lock:
            return list(self._violations)

    @property
    def rate_limited_count(self) -> int:
        """How many requests got the vendor's 429 from a limit (not from ``fail_next``)."""
        with self._lock:
            return self._rate_limited

    def calls(
        self, path_contains: str | None = None, method: str | None = None
    ) -> list[RecordedRequest]:
        """The recorded requests whose path contains ``path_contains`` and method is ``method``."""
        return [
            call
            for call in self.requests
            if (path_contains is None or path_contains in call.path)
            and (method is None or call.method == method.upper())
        ]

    def wait_for_calls(
        self,
        count: int,
        path_contains: str | None = None,
        method: str | None = None,
        timeout: float = 10.0,
    ) -> list[RecordedRequest]:
        """Block until at least ``count`` matching requests were recorded; raise on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(found := self.calls(path_contains, method)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{self.name}: {len(found)} of {count} calls to "
                        f"{method or '*'} {path_contains or '*'} after {timeout}s"
                    )
                self._changed.wait(left)
            return found

    # -- limits and faults ----------------------------------------------------------------

    def set_rate_limit(self, max_requests: int, per_seconds: float) -> None:
        """Enforce at most ``max_requests`` accepted requests per rolling ``per_seconds``."""
        with self._lock:
            self._window = SlidingWindow(max_requests, per_seconds, enforced=True)

    def clear_rate_limit(self) -> None:
        """Stop enforcing the sliding window (the default)."""
        with self._lock:
            self._window = SlidingWindow(*self.nominal_rate_limit, enforced=False)

    def set_daily_limit(
        self, max_requests: int, *, utc_offset_hours: float = 0.0, used: int = 0
    ) -> None:
        """Accept at most ``max_requests`` requests per calendar day (the vendor's day starts at
        midnight ``utc_offset_hours`` from UTC); more get ``daily_limited_response``. ``used``:
        requests other clients of the account made today already."""
        with self._lock:
            self._daily = DailyLimit(max_requests, utc_offset_hours)
            self._daily.spend(used, time.time())

    @property
    def daily_used(self) -> int:
        """Requests counted against today's limit (0 without one)."""
        with self._lock:
            return self._daily.used_today(time.time()) if self._daily else 0

    @property
    def daily_refused(self) -> int:
        """Requests answered as over the daily limit (a client that plans to fit: 0)."""
        with self._lock:
            return self._daily.refused if self._daily else 0

    def fail_next(
        self,
        n: int,
        status: int = 500,
        body: Any = None,
        *,
        path_contains: str | None = None,
        writes_only: bool = True,
        headers: dict[str, str] | None = None,
        after: int = 0,
    ) -> None:
        """The next ``n`` write requests (after letting ``after`` through) get ``status`` (with
        ``headers``) without being applied.

        ``path_contains`` narrows which requests consume the fault; ``writes_only=False`` lets
        reads consume it too (the same holds for ``delay_next`` and ``drop_next``).

        ``body=None`` uses the vendor's error body; a dict/list is sent as JSON, a str/bytes as
        text (``""`` for the bodiless 403/429 some vendors send under load).
        """
        scope = {"path_contains": path_contains, "writes_only": writes_only}
        self._inject(
            Fault("fail", n, status=status, body=body, headers=headers, skip=after, **scope)
        )

    def delay_next(
        self,
        n: int,
        seconds: float,
        *,
        apply_first: bool = True,
        path_contains: str | None = None,
        writes_only: bool = True,
    ) -> None:
        """The next ``n`` write requests are answered ``seconds`` late (to provoke timeouts).

        With ``apply_first`` (the default) the write lands at once and only the answer is late,
        the case that catches non-idempotent retries; otherwise the write lands after the wait.
        """
        scope = {"path_contains": path_contains, "writes_only": writes_only}
        self._inject(Fault("delay", n, seconds=seconds, apply_first=apply_first, **scope))

    def drop_next(
        self,
        n: int,
        *,
        apply_first: bool = False,
        path_contains: str | None = None,
        writes_only: bool = True,
    ) -> None:
        """The next ``n`` write requests get their socket closed without an answer.

        With ``apply_first`` the write lands before the connection is cut.
        """
        scope = {"path_contains": path_contains, "writes_only": writes_only}
        self._inject(Fault("drop", n, apply_first=apply_first, **scope))

    def _inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.add(fault)

    @property
    def pending_faults(self) -> int:
        """How many injected faults are not consumed yet."""
        with self._lock:
            return self._faults.pending()

    # -- hooks for subclasses -------------------------------------------------------------

    @property
    def credential(self) -> str:
        """The credential the fake accepts (token or API key)."""
        raise NotImplementedError

    def register_routes(self) -> None:
        """Call ``add_route`` for every emulated endpoint."""

    def reset_store(self) -> None:
        """(Re)build the in-memory vendor data; called under the lock."""

    def authenticate(self, req: Request) -> Auth:
        """Check the request's credentials."""
        raise NotImplementedError

    def unauthorized_response(self, req: Request, auth: Auth) -> Response:
        """The vendor's 401."""
        raise NotImplementedError

    def not_found_response(self, req: Request, method_not_allowed: bool) -> Response:
        """The vendor's 404 (or 405 when the path exists with another method)."""
        raise NotImplementedError

    def invalid_response(self, req: Request, problems: list[str]) -> Response:
        """The vendor's 400 for a request that breaks the documented shape."""
        raise NotImplementedError

    def rate_limited_response(self, req: Request, rate: RateStatus, concurrency: bool) -> Response:
        """The vendor's 429 (``concurrency``: the simultaneous-connection cap was hit)."""
        raise NotImplementedError

    def daily_limited_response(self, req: Request) -> Response:
        """The vendor's answer to a request over its daily limit."""
        raise NotImplementedError

    def fault_response(self, status: int) -> Response:
        """The vendor's error body for an injected ``status``."""
        raise NotImplementedError

    def decorate(self, response: Response, rate: RateStatus) -> Response:
        """Add headers every response carries (e.g. rate-limit headers). Default: none."""
        return response

    # -- helpers for subclasses -----------------------------------------------------------

    def add_route(
        self,
        method: str,
        pattern: str,
        handle: Handler,
        *,
        validate: Validator | None = None,
        write: bool = False,
        query: frozenset[str] | None = frozenset(),
        json_body: bool = False,
        public: bool = False,
    ) -> None:
        """Register an endpoint; ``pattern`` is a regex for the whole path."""
        self._routes.append(
            Route(method, re.compile(pattern), handle, validate, write, query, json_body, public)
        )

    def violate(self, req: Request, problem: str) -> None:
        """Record a violation for ``req`` (routes may call this for state-dependent misuse)."""
        with self._changed:
            self._violations.append(f"{req.method} {req.path}: {problem}")
            self._changed.notify_all()

    # -- the pipeline ---------------------------------------------------------------------

    def _check_limits(self, req: Request, route: Route) -> Response | None:
        now = time.monotonic()
        over_cap = self._max_concurrency is not None and self._in_flight > self._max_concurrency
        if over_cap or not self._window.try_acquire(now):
            self._rate_limited += 1
            return self.rate_limited_response(req, self._window.status(now), over_cap)
        if (
            self._daily is not None
            and not route.public
            and not self._daily.try_acquire(time.time())
        ):
            return self.daily_limited_response(req)
        return None

    def _gate(self, req: Request) -> tuple[Route | None, Response | None, str | None]:
        """Steps 1-5 of the pipeline: an early (unapplied) answer, or ``None`` to go on."""
        route, path_known = match_route(self._routes, req)
        if route is None:
            what = "method not allowed" if path_known else "unknown endpoint"
            self.violate(req, what)
            return None, self.not_found_response(req, path_known), wire.UNKNOWN_ENDPOINT
        auth = Auth.OK if route.public else self.authenticate(req)
        if auth in (Auth.MISSING, Auth.MALFORMED):
            self.violate(req, f"{auth.value} Authorization header; {self.auth_hint}")
        if auth is not Auth.OK:
            return route, self.unauthorized_response(req, auth), wire.UNAUTHORIZED
        problems = shape_problems(route, req)
        for problem in problems:
            self.violate(req, problem)
        limited = self._check_limits(req, route)
        if limited is not None:
            return route, limited, wire.RATE_LIMITED
        if problems:
            return route, self.invalid_response(req, problems), wire.INVALID
        return route, None, None

    def _run(self, route: Route, req: Request) -> Response:
        try:
            return route.handle(req)
        except Exception:  # a bug in the fake: make it loud, not a hung client
            self.violate(req, "the fake crashed:\n" + traceback.format_exc())
            return Response(500, "fake vendor crashed", wire.TEXT_CONTENT_TYPE)

    def _finish(self, response: Response) -> Response:
        return self.decorate(response, self._window.status(time.monotonic()))

    def _record(
        self,
        req: Request,
        arrived: float,
        response: Response | None,
        outcome: str,
        delay: float = 0.0,
    ) -> None:
        headers = {
            name: ("***" if name.lower() == "authorization" else value)
            for name, value in req.sent_headers.items()
        }
        body = req.raw_body.decode("utf-8", "replace") if req.body_error else req.body
        dropped = outcome in (wire.DROPPED, wire.HANDLED_DROPPED)
        record = RecordedRequest(
            method=req.method,
            path=req.path,
            query=dict(req.query),
            headers=headers,
            body=body,
            status=None if dropped or response is None else response.status,
            timestamp=arrived,
            outcome=outcome,
            response_body=None if response is None else wire.decode_response_body(response),
            delay=delay,
        )
        with self._changed:
            self._requests.append(record)
            self._changed.notify_all()

    def _serve(self, req: Request) -> Response | None:
        """The pipeline for one request (in its connection's thread); ``None`` drops it."""
        arrived = time.time()
        with self._lock:
            self._in_flight += 1
        try:
            return self._serve_counted(req, arrived)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _serve_counted(self, req: Request, arrived: float) -> Response | None:
        fault: Fault | None = None
        with self._lock:
            route, response, outcome = self._gate(req)
            if response is None and route is not None:
                fault = self._faults.take(req.path, route.write)
                kind = fault.kind if fault else None
                if fault is not None and kind == "fail":
                    response, outcome = self._fault(fault), wire.FAULT
                elif fault is not None and not fault.apply_first:
                    outcome = wire.DROPPED if kind == "drop" else None  # delay: apply later
                else:
                    response = self._run(route, req)
                    outcome = wire.HANDLED_DROPPED if kind == "drop" else wire.HANDLED
            if response is not None:
                response = self._finish(response)
            delay = fault.seconds if fault is not None and fault.kind == "delay" else 0.0
            if outcome is not None:
                self._record(req, arrived, response, outcome, delay)
        if fault is not None and fault.kind == "delay":
            self._http.stopping.wait(delay)
            if response is None and route is not None:
                with self._lock:
                    response = self._finish(self._run(route, req))
                    self._record(req, arrived, response, wire.HANDLED, delay)
        if outcome in (wire.DROPPED, wire.HANDLED_DROPPED):
            return None
        return response

    def _fault(self, fault: Fault) -> Response:
        if fault.body is None:
            response = self.fault_response(fault.status)
        elif isinstance(fault.body, str | bytes):
            response = Response(fault.status, fault.body, wire.TEXT_CONTENT_TYPE)
        else:
            response = Response(fault.status, fault.body)
        response.headers.update(fault.headers or {})
        return response
