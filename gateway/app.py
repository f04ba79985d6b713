"""The ASGI application: wiring of settings, pool, catalog, front ends and admin routes.

In:  ``Settings`` (``create_app``) or the environment (``create_app_from_env``, the
     uvicorn factory used by ``gateway serve``).
Out: a Starlette app. Its lifespan applies the bootstrap SQL as the ``DATABASE_URL`` role and
     checks the login role (``login.prepare``), then opens the pool, loads the catalog and starts
     the NOTIFY listener — all three through the login role, never the bootstrap role — and tears
     all of it down on shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from . import errors, guard, keys, login, observe, openapi, pgversion
from . import settings as settings_mod
from .admin.routes import ROUTES as ADMIN_ROUTES
from .admin.tables import ROUTES as TABLE_ROUTES
from .auth import Authenticator
from .catalog import CatalogHolder
from .cors import Cors
from .dashboard.routes import ROUTES as DASHBOARD_ROUTES
from .errors import GatewayError
from .execute import Executor, create_pool
from .graphql.operations import AllowList, PersistedQueries
from .graphql.roles import build_schemas
from .graphql.view import ROUTES as GRAPHQL_ROUTES
from .graphql.ws import ROUTES as GRAPHQL_WS_ROUTES
from .reload import Reloader
from .rest import render
from .rest.routes import ROUTES as REST_ROUTES
from .settings import Settings
from .state import Gateway

log = logging.getLogger("gateway")

EXPOSED_HEADERS = ["Content-Range", "X-Total-Count", "Preference-Applied", "Location", "X-Request-Id",
                   "Content-Profile", "X-Total-Count-Estimated"]


async def health(request: Request) -> Response:
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    if gw is None or not gw.catalogs.ready:
        return JSONResponse({"status": "starting"}, 503)
    catalog = gw.catalogs.get()
    return JSONResponse({"status": "ok", "catalogVersion": catalog.version, "tables": len(catalog.tables),
                         **_server_fields(gw)})


def _server_fields(gw: Gateway) -> dict[str, Any]:
    """The PostgreSQL version, as /health and /ready report it."""
    if gw.server is None:
        return {}
    return {"postgresVersion": gw.server.text, "postgresVersionNum": gw.server.num}


async def ready(request: Request) -> Response:
    """Readiness: the catalog is loaded and the database answers now."""
    gw: Gateway | None = getattr(request.app.state, "gateway", None)
    if gw is None or not gw.catalogs.ready:
        return JSONResponse({"status": "starting", "database": "unknown"}, 503)
    try:
        async with gw.pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, 503,
                            headers={"Retry-After": "1"})
    return JSONResponse({"status": "ok", "database": "ok", "catalogVersion": gw.catalogs.get().version,
                         **_server_fields(gw)})


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return render.error(exc, errors.front_for(request.url.path))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err = errors.GatewayError(404, "NOT_FOUND", f"Route {request.method} {request.url.path} not found",
                                  code="PGRST125")
    elif exc.status_code == 405:
        err = errors.GatewayError(405, "METHOD_NOT_ALLOWED", f"Method {request.method} is not allowed here",
                                  code="PGRST117")
    else:
        err = errors.status_error(exc.status_code, str(exc.detail))
    return render.error(err, errors.front_for(request.url.path))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return render.error(errors.internal())


def create_app(settings: Settings) -> Starlette:
    """The gateway app for ``settings`` (database_url, jwt_secret and api_key must be set or resolvable)."""
    settings = keys.ensure_keys(settings)
    if not settings.database_url:
        raise ValueError("DATABASE_URL is not set; `gateway serve` starts an embedded PostgreSQL for you")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        dsn = await login.prepare(settings)  # the bootstrap role's last use: from here on, the login role
        pool = await create_pool(dsn, settings)
        try:
            async with pool.acquire() as conn:
                server = await pgversion.require_supported(conn)
        except pgversion.UnsupportedServer:
            await pool.close()
            raise
        replica = login.replica_url(settings)
        read_pool = await create_pool(replica, settings) if replica else None
        if read_pool is not None:
            async with read_pool.acquire() as conn:
                await login.check(conn)
        allow = AllowList.load(settings.graphql_allowlist)
        gw = Gateway(settings, Executor(settings, pool, read_pool), CatalogHolder(),
                     Authenticator(settings), pool, dsn, server=server, persisted=PersistedQueries(allow),
                     allow_list=allow, schema_builder=build_schemas)
        # listen before the first load, so DDL committed in between is not missed
        reloader = Reloader(dsn, gw.reload_catalog, settings.reload_debounce_ms)
        await reloader.start()
        await gw.reload_catalog()
        app.state.gateway = gw
        app.state.reloader = reloader
        try:
            yield
        finally:
            await reloader.stop()
            if gw.change_feed is not None:  # started by the first subscription
                await gw.change_feed.stop()
            await pool.close()
            if read_pool is not None:
                await read_pool.close()

    observer = observe.Observer(settings)
    # the busiest routes first (Starlette tries them in order; no two of these match one path);
    # openapi before the /api/database mount, which would otherwise take every path under it
    routes: list[Any] = [*REST_ROUTES, *GRAPHQL_ROUTES, *GRAPHQL_WS_ROUTES, Route("/health", health),
                         Route("/ready", ready), *observer.routes, *openapi.routes(),
                         Mount("/api/database", routes=[*ADMIN_ROUTES, *TABLE_ROUTES]), *DASHBOARD_ROUTES]
    # outermost first: the observer logs and counts everything, the guard's refusals included;
    # CORS sits outside the guard so refusals still carry CORS headers
    middleware = [observer.middleware,
                  Middleware(Cors, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                             allow_headers=["*"], expose_headers=EXPOSED_HEADERS, max_age=600),
                  Middleware(guard.Guard, settings=settings)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers={
        GatewayError: on_gateway_error, HTTPException: on_http_error, Exception: on_unexpected})


def create_app_from_env() -> Starlette:
    """uvicorn factory: settings from the environment."""
    settings = settings_mod.load()
    observe.configure_logging(settings)
    return create_app(settings)
