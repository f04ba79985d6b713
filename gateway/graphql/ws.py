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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import strawberry
from starlette.datastructures import Headers
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from ..errors import GatewayError
from ..execute import RequestContext
from ..identity import Identity
from ..request import Request
from .limits import check_cost
from .sbcompat import strawberry_of

log = logging.getLogger("gateway.graphql")


class Session:
    """``info.context`` over WebSocket: the connection's caller; a transaction per statement."""

    def __init__(self, gw: Any) -> None:
        self.gw = gw
        self.settings = gw.settings
        self.identity: Identity | None = None  # set by connection_init
        self.connection_params: dict[str, Any] = {}  # connection_init's payload (Strawberry sets it)
        self.cost = 0

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


class GatewayGraphQL(GraphQL):
    """Strawberry's ASGI view for one WebSocket connection (cheap: it only holds settings)."""

    def __init__(self, gw: Any, session: Session) -> None:
        self.gw = gw
        super().__init__(schema=CallerSchema(session), graphql_ide=None,  # type: ignore[arg-type]
                         keep_alive=True, keep_alive_interval=15,
                         subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
                         max_subscriptions_per_connection=gw.settings.graphql_ws_max_operations)

    async def on_ws_connect(self, context: Session) -> None:  # type: ignore[override]
        try:
            context.identity = await self.gw.auth.identify(credentials(context.connection_params))
        except GatewayError as exc:
            log.info("GraphQL WebSocket refused: %s", exc.message)
            raise ConnectionRejectionError({"message": exc.message, "error": exc.error}) from None


async def graphql_websocket(websocket: WebSocket) -> None:
    gw = websocket.app.state.gateway
    session = Session(gw)
    await GatewayGraphQL(gw, session).run(websocket, context=session)  # type: ignore[call-overload]


ROUTES = [WebSocketRoute("/graphql", graphql_websocket)]
