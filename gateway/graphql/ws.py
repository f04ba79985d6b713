"""GraphQL over WebSocket at ``/graphql``: Strawberry's ASGI integration over the served schema.

In:  a WebSocket upgrade on ``/graphql`` speaking ``graphql-transport-ws`` (or the legacy
     ``graphql-ws``), credentials in ``connection_init``'s payload: ``{"Authorization":
     "Bearer <JWT | anon key | API key>"}``, ``{"X-API-Key": "ik_..."}`` or the same under
     ``{"headers": {...}}``.
Out: Strawberry's protocol handlers run the operations (subscriptions above all) against the
     current merged schema of the caller's role (``merge.py``, ``roles.py``) with a ``Session``
     as ``info.context``.

A missing or bad credential closes the socket with 4403 (``Forbidden``) before any operation
runs. A ``Session`` is the caller for the whole connection: every statement a resolver runs
(generated fields, ``extend.run_generated``) is one read-only transaction as that caller, so
RLS applies; writes are refused by PostgreSQL (send mutations with HTTP POST, where the
operation is one transaction).

A plain ``<table>_changes`` subscription skips Strawberry's and graphql-core's per-event work:
``streams.open_fast`` executes and encodes each event once for all the subscribers of the same
document and caller, and ``encode_json`` splices that text into each message.

Errors carry the same ``extensions`` (``code``, ``error``, ``statusCode``...) as over HTTP.

A slow consumer (a subscription whose queue overflowed: the client does not read fast enough)
is disconnected: its queue is freed at once, its operation's stream ends with the error (sent if
the client still reads), then the socket is closed with 1013 "Try Again Later" (graphql-ws
clients retry) — or, if even the close frame cannot be written within ``CLOSE_GRACE``, the
connection's handler ends and the socket is closed as soon as its (bounded) buffer drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from starlette.datastructures import Headers
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from ..errors import GatewayError
from ..execute import RequestContext
from ..identity import Identity
from ..request import Request
from .limits import check_cost
from .sbcompat import strawberry_of
from .streams import Encoded, open_fast

log = logging.getLogger("gateway.graphql")

SLOW_CONSUMER_CLOSE = 1013  # Try Again Later: graphql-ws clients reconnect after it
ERROR_GRACE = 1.0  # seconds the overflowing operation has to send its error before the close
CLOSE_GRACE = 5.0  # seconds the close frame may wait for a client that does not read


class Session:
    """``info.context`` over WebSocket: the connection's caller; a transaction per statement."""

    def __init__(self, gw: Any, websocket: WebSocket | None = None) -> None:
        self.gw = gw
        self.settings = gw.settings
        self.websocket = websocket
        self.identity: Identity | None = None  # set by connection_init
        self.connection_params: dict[str, Any] = {}  # connection_init's payload (Strawberry sets it)
        self.cost = 0
        self.closed = asyncio.Event()  # set once the connection must end (slow consumer)
        self._closing: asyncio.Task[None] | None = None

    def slow_consumer(self) -> None:
        """A subscription of this connection overflowed: disconnect the client (once)."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._disconnect())

    async def _disconnect(self) -> None:
        log.info("GraphQL WebSocket disconnected: slow consumer")
        await asyncio.sleep(ERROR_GRACE)
        if self.websocket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.websocket.close(SLOW_CONSUMER_CLOSE, "Slow consumer: fell too far behind"),
                                       CLOSE_GRACE)
        self.closed.set()

    @property
    def catalog(self) -> Any:
        return self.gw.catalogs.get()

    def charge(self, cost: int) -> None:
        """The cost limit applies per statement here (a subscription runs for as long as it likes)."""
        check_cost(cost, self.settings)

    async def run(self, request: Request) -> Any:
        from .. import pipeline  # the pipeline imports the app's modules; keep this import lazy

        if self.identity is None:
            raise GatewayError(401, "AUTH_INVALID_CREDENTIALS", "Send credentials in connection_init first")
        return await pipeline.run(self.gw, self.identity, request,
                                  RequestContext("POST", "/graphql", read_only=True))


def credentials(payload: Mapping[str, Any]) -> Headers:
    """connection_init's payload as request headers: top-level keys and ``headers`` alike."""
    raw: dict[str, str] = {}
    nested = payload.get("headers")
    for source in (payload, nested if isinstance(nested, Mapping) else {}):
        for key, value in source.items():
            if isinstance(value, str):
                raw[key.lower()] = value
    return Headers(headers=raw)


class CallerSchema:
    """The schema a connection's handler holds: the current schema of its caller's role.

    Strawberry's protocol handlers take one schema when the connection opens, before
    ``connection_init`` says who the caller is; every attribute is looked up here at use
    (``subscribe``, ``execute``, ``config``...), on the role's schema of the current catalog.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def current(self) -> strawberry.Schema:
        from .view import current_schema

        identity = self._session.identity
        schema = strawberry_of(current_schema(self._session.gw, identity.role if identity else "anon").schema)
        assert schema is not None
        return schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)

    async def stream(self, query: str | None, variable_values: dict[str, Any] | None = None,
                     context_value: Any = None, root_value: Any = None, operation_name: str | None = None,
                     **kwargs: Any) -> AsyncIterator[ExecutionResult]:
        """Strawberry's ``stream``, a plain change stream served by ``streams.open_fast``; errors
        carry the gateway's extensions either way."""
        return await self._serve("stream", query, variable_values, context_value, root_value, operation_name,
                                 **kwargs)

    async def subscribe(self, query: str | None, variable_values: dict[str, Any] | None = None,
                        context_value: Any = None, root_value: Any = None, operation_name: str | None = None,
                        **kwargs: Any) -> AsyncIterator[ExecutionResult]:
        return await self._serve("subscribe", query, variable_values, context_value, root_value, operation_name,
                                 **kwargs)

    async def _serve(self, method: str, query: str | None, variables: dict[str, Any] | None, context: Any,
                     root_value: Any, operation_name: str | None, **kwargs: Any) -> AsyncIterator[ExecutionResult]:
        schema = self.current()
        if query is not None and not schema.extensions:  # the user's Strawberry extensions see every operation
            try:
                fast = await open_fast(self._session, schema._schema, query, variables, operation_name,
                                       self._session.slow_consumer)
            except GatewayError as exc:
                return _single(PreExecutionError(data=None, errors=[_error(exc)]))
            if fast is not None:
                return fast
        source = await getattr(schema, method)(query, variables, context, root_value, operation_name, **kwargs)
        return _with_extensions(source)


def _error(exc: GatewayError) -> GraphQLError:
    from .view import extensions

    return GraphQLError(exc.message, original_error=exc, extensions=extensions(exc))


def with_extensions(result: ExecutionResult) -> ExecutionResult:
    """``result`` with every error carrying the extensions the HTTP endpoint gives it."""
    from .view import BAD_VARIABLES, FIELD_FAILURE, INVALID_DOCUMENT, extensions, gateway_error

    if not result.errors:
        return result
    if isinstance(result, PreExecutionError):
        default = INVALID_DOCUMENT
    elif result.data is None and all(not e.path for e in result.errors):
        default = BAD_VARIABLES
    else:
        default = FIELD_FAILURE
    out = []
    for err in result.errors:
        exc = gateway_error(err, default)
        if exc is None:
            continue
        out.append(GraphQLError(exc.message, err.nodes, err.source, err.positions, err.path, err.original_error,
                                extensions=extensions(exc)))
    return dataclasses.replace(result, errors=out)


async def _with_extensions(source: Any) -> AsyncIterator[ExecutionResult]:
    if isinstance(source, ExecutionResult):
        yield with_extensions(source)
        return
    async with aclosing(source):
        async for result in source:
            yield with_extensions(result) if isinstance(result, ExecutionResult) else result


async def _single(result: ExecutionResult) -> AsyncIterator[ExecutionResult]:
    yield result


class GatewayGraphQL(GraphQL):
    """Strawberry's ASGI view for one WebSocket connection (cheap: it only holds settings)."""

    def __init__(self, gw: Any, session: Session) -> None:
        self.gw = gw
        super().__init__(schema=CallerSchema(session), graphql_ide=None,  # type: ignore[arg-type]
                         keep_alive=True, keep_alive_interval=15,
                         subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
                         max_subscriptions_per_connection=gw.settings.graphql_ws_max_operations)

    def encode_json(self, data: object) -> str:
        """Every message as JSON text; a ``next``/``data`` message whose data is ``streams.Encoded``
        is spliced together without encoding that data again (it is shared by many subscribers)."""
        payload = data.get("payload") if isinstance(data, dict) else None
        if isinstance(payload, dict) and isinstance(payload.get("data"), Encoded) and len(payload) == 1:
            assert isinstance(data, dict)
            head = orjson.dumps({"id": data["id"], "type": data["type"]})
            return f'{head[:-1].decode()},"payload":{{"data":{payload["data"]}}}}}'
        return orjson.dumps(data, default=str).decode()

    async def on_ws_connect(self, context: Session) -> None:  # type: ignore[override]
        try:
            context.identity = await self.gw.auth.identify(credentials(context.connection_params))
        except GatewayError as exc:
            log.info("GraphQL WebSocket refused: %s", exc.message)
            raise ConnectionRejectionError({"message": exc.message, "error": exc.error}) from None


async def graphql_websocket(websocket: WebSocket) -> None:
    gw = websocket.app.state.gateway
    session = Session(gw, websocket)
    handler = asyncio.ensure_future(GatewayGraphQL(gw, session).run(websocket, context=session))  # type: ignore[call-overload]
    closed = asyncio.ensure_future(session.closed.wait())
    try:
        await asyncio.wait((handler, closed), return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
        if not handler.done():  # disconnected (slow consumer): end the connection's operations and handler
            handler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handler


ROUTES = [WebSocketRoute("/graphql", graphql_websocket)]
