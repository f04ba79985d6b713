"""Observability: request ids, JSON access logs and Prometheus metrics.

In:  every ASGI ``http`` request (scope, receive, send) and, when it ends, the app's
     ``Gateway`` state (pool, catalog, reload count).
Out: an ``X-Request-Id`` on every response (the client's own when it sent a sane one, else a
     new uuid), one JSON access log line per request on logger ``gateway.access``
     (method, path, status, duration_ms, role, request_id, client, bytes), and the metrics
     served at ``GET /metrics`` to admins (the API key as ``Authorization: Bearer ik_...`` or
     ``X-API-Key``, or a ``project_admin`` token; 401 without, 403 for anon and users):

    gateway_http_requests_total{method,route,status}               counter
    gateway_http_request_duration_seconds{method,route,status}     histogram
    gateway_http_requests_in_progress                              gauge
    gateway_db_pool_connections{pool,state}                        gauge (open, idle, in_use, max)
    gateway_catalog_reloads_total                                  counter
    gateway_catalog_version                                        gauge
    gateway_db_errors_total{sqlstate_class}                        counter

``route`` is the route template (``/api/database/records/{table}``), never the raw path, so
the number of series stays bounded whatever clients send; unrouted requests share
``unmatched``. DB errors are counted from the error bodies the gateway answers with (their
``code`` is the SQLSTATE; ``PGRST003``, no connection, counts as ``unavailable``).

Under ``uvicorn --workers N`` each worker is a process of its own. When
``PROMETHEUS_MULTIPROC_DIR`` is set (prometheus_client reads it at import), values live in
files there and ``/metrics`` adds up every worker's; otherwise each process reports its own.

Mount: ``observer = Observer(settings)``; ``observer.middleware`` outermost in the middleware
list, ``*observer.routes`` among the routes.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import Settings

access_log = logging.getLogger("gateway.access")

REQUEST_ID_HEADER = b"x-request-id"
# A client's id is kept when it is a plain token (uuids, trace ids); anything else could forge log lines.
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:/+=-]{1,128}")
UNMATCHED = "unmatched"  # route label of requests no route took (404s, guard refusals)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SQLSTATE = re.compile(r"[0-9A-Z]{5}")
ERROR_CODE_CLASSES = {"PGRST003": "unavailable"}  # gateway codes that stand for a database failure
ERROR_BODY_MAX = 8192  # bytes of an error body kept to read its code
# access log level by status class: a failing request is worth more attention
LOG_LEVELS = {1: logging.INFO, 2: logging.INFO, 3: logging.INFO, 4: logging.INFO, 5: logging.WARNING}

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def is_multiprocess() -> bool:
    """prometheus_client stores values in PROMETHEUS_MULTIPROC_DIR (it decided so at import)."""
    return bool(getattr(prometheus_values.ValueClass, "_multiprocess", False))


def request_id(scope: Scope) -> str:
    """The client's ``X-Request-Id`` when it is a sane token, else a new one."""
    for name, value in scope.get("headers") or []:
        if name == REQUEST_ID_HEADER and SANE_REQUEST_ID.fullmatch(value):
            return value.decode()
    return os.urandom(16).hex()  # a uuid4's 32 hex digits of randomness, without building a UUID


def route_label(scope: Scope) -> str:
    """The template of the route that took the request, with the prefix of the Mount it sits in."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path or isinstance(route, Mount):  # a Mount left here means nothing inside it matched
        return UNMATCHED
    if "app_root_path" in scope:  # set by a Mount: root_path grew by the Mount's prefix
        return scope.get("root_path", "")[len(scope["app_root_path"]):] + path
    return str(path)


def error_class(body: bytes) -> str | None:
    """The SQLSTATE class (``23``) of an error body's ``code``, ``unavailable``, or None."""
    try:
        code = orjson.loads(body).get("code")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(code, str):
        return None
    if code in ERROR_CODE_CLASSES:
        return ERROR_CODE_CLASSES[code]
    return code[:2] if SQLSTATE.fullmatch(code) else None


class Metrics:
    """The gateway's Prometheus metrics, in a registry of their own (several apps may share a process)."""

    def __init__(self) -> None:
        self.multiprocess = is_multiprocess()
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        reg = self.registry
        self.requests = Counter("gateway_http_requests", "HTTP requests answered", labels, registry=reg)
        self.latency = Histogram("gateway_http_request_duration_seconds", "Time to answer an HTTP request",
                                 labels, buckets=LATENCY_BUCKETS, registry=reg)
        self.in_progress = Gauge("gateway_http_requests_in_progress", "HTTP requests being answered",
                                 registry=reg, multiprocess_mode="livesum")
        self.pool = Gauge("gateway_db_pool_connections", "Database pool connections by state",
                          ("pool", "state"), registry=reg, multiprocess_mode="livesum")
        self.reloads = Counter("gateway_catalog_reloads", "Catalog reloads since start", registry=reg)
        self.catalog_version = Gauge("gateway_catalog_version", "Version of the catalog in use",
                                     registry=reg, multiprocess_mode="livemax")
        self.db_errors = Counter("gateway_db_errors", "Error responses caused by the database, by SQLSTATE class",
                                 ("sqlstate_class",), registry=reg)
        self._reloads_seen = 0  # Gateway.reloads already added to the counter
        # each label set's two series, looked up once: prometheus_client's labels() costs more than
        # the increment (the set is bounded: methods x route templates x statuses)
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        series = self._series.get((method, route, status))
        if series is None:
            labels = (method, route, str(status))
            series = self._series[(method, route, status)] = (self.requests.labels(*labels),
                                                              self.latency.labels(*labels))
        series[0].inc()
        series[1].observe(seconds)

    def sync(self, gw: Any) -> None:
        """Copy the gateway's pool sizes, catalog version and reload count into the metrics."""
        if gw is None:
            return
        executor = getattr(gw, "executor", None)
        for name, pool in (("primary", getattr(executor, "pool", None)),
                           ("replica", getattr(executor, "read_pool", None))):
            if pool is None:
                continue
            size, idle = pool.get_size(), pool.get_idle_size()
            for state, value in (("open", size), ("idle", idle), ("in_use", size - idle),
                                 ("max", pool.get_max_size())):
                self.pool.labels(name, state).set(value)
        reloads = int(getattr(gw, "reloads", 0))
        if reloads > self._reloads_seen:
            self.reloads.inc(reloads - self._reloads_seen)
            self._reloads_seen = reloads
        catalogs = getattr(gw, "catalogs", None)
        if catalogs is not None and catalogs.ready:
            self.catalog_version.set(catalogs.get().version)

    def exposition(self) -> bytes:
        """The text format of every metric (of every worker, in multiprocess mode)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)


class Observer:
    """The metrics and settings one app's middleware and ``/metrics`` route share."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()

    @property
    def middleware(self) -> Middleware:
        return Middleware(Observe, observer=self)

    @property
    def routes(self) -> list[Route]:
        return [Route("/metrics", self.metrics_endpoint, methods=["GET"])]

    async def metrics_endpoint(self, request: Request) -> Response:
        """The exposition, for admins only: route names, pool sizes and error rates describe the deployment."""
        gw = getattr(request.app.state, "gateway", None)
        if gw is None:
            return Response(b"starting\n", 503, headers={"Retry-After": "1"})
        await gw.auth.identify_admin(request.headers)  # 401 without a credential, 403 for users and anon
        self.metrics.sync(gw)
        return Response(self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


class Observe:
    """ASGI middleware: request id, metrics and the access log line of every HTTP request."""

    def __init__(self, app: ASGIApp, observer: Observer) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Exchange(self.observer, scope).run(self.app, receive, send)

    def _lifespan_send(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            # a stopping worker's live gauges must leave the sum (prometheus_client's bookkeeping)
            if message["type"] == "lifespan.shutdown.complete" and self.observer.metrics.multiprocess:
                mark_process_dead(os.getpid())
            await send(message)
        return wrapped


class _Exchange:
    """One HTTP request and its response, as observed."""

    def __init__(self, observer: Observer, scope: Scope) -> None:
        self.observer = observer
        self.scope = scope
        self.request_id = request_id(scope)  # echoed to the client and logged
        self.status = 500  # until the app starts a response
        self.sent = 0  # response body bytes
        self.error_body: bytearray | None = None  # kept for an error response, to read its code

    async def run(self, app: ASGIApp, receive: Receive, send: Send) -> None:
        metrics = self.observer.metrics
        self.scope.setdefault("state", {})["request_id"] = self.request_id
        token = current_request_id.set(self.request_id)
        started = time.perf_counter()
        metrics.in_progress.inc()
        try:
            await app(self.scope, receive, self._send(send))
        finally:
            seconds = time.perf_counter() - started
            metrics.in_progress.dec()
            metrics.record(self.scope["method"], route_label(self.scope), self.status, seconds)
            if self.error_body:
                failed = error_class(bytes(self.error_body))
                if failed is not None:
                    metrics.db_errors.labels(failed).inc()
            gw = getattr(getattr(self.scope.get("app"), "state", None), "gateway", None)
            try:
                if metrics.multiprocess:  # the scraping worker cannot read the others' pools: each keeps its own fresh
                    metrics.sync(gw)
                if self.observer.settings.access_log:
                    await self._log(gw, seconds)
            finally:
                current_request_id.reset(token)

    def _send(self, send: Send) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                headers = list(message.get("headers", []))
                if not any(k.lower() == REQUEST_ID_HEADER for k, _ in headers):
                    headers.append((REQUEST_ID_HEADER, self.request_id.encode()))
                message = {**message, "headers": headers}
                if self.status >= 400:
                    self.error_body = bytearray()
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                self.sent += len(body)
                if self.error_body is not None and len(self.error_body) < ERROR_BODY_MAX:
                    self.error_body += body[: ERROR_BODY_MAX - len(self.error_body)]
            await send(message)
        return wrapped

    async def _log(self, gw: Any, seconds: float) -> None:
        level = LOG_LEVELS.get(self.status // 100, logging.WARNING)
        if not access_log.isEnabledFor(level):
            return
        client = self.scope.get("client")
        line = {
            "method": self.scope["method"],
            "path": self.scope.get("path", ""),
            "status": self.status,
            "duration_ms": round(seconds * 1000, 2),
            "role": await self._role(gw),
            "request_id": self.request_id,
            "client": client[0] if client else None,
            "bytes": self.sent,
        }
        access_log.log(level, orjson.dumps(line).decode(), extra={"access": line})

    async def _role(self, gw: Any) -> str | None:
        """The caller's role: as the handler recorded it, else as the credential says (verified, cached)."""
        state = self.scope.get("state") or {}
        if state.get("role"):
            return str(state["role"])
        if gw is None:
            return None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.scope.get("headers") or []}
        try:
            identity = await gw.auth.identify(headers)
        except Exception:  # no or bad credential: the request ran as nobody
            return None
        return str(identity.role)


# attributes every LogRecord has; anything else came in through ``extra=`` and is logged as a field
STANDARD_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; access lines are already JSON and pass through."""

    def format(self, record: logging.LogRecord) -> str:
        if hasattr(record, "access"):
            return record.getMessage()
        out: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in STANDARD_RECORD_FIELDS})
        rid = current_request_id.get()
        if rid:
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_logging(settings: Settings) -> None:
    """JSON lines on stderr at ``settings.log_level`` for the gateway's loggers (idempotent)."""
    logger = logging.getLogger("gateway")
    logger.setLevel(settings.log_level.upper())
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = False  # the root logger would print every line a second time
