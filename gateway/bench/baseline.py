"""The Python stack's ceiling: the smallest Starlette + asyncpg endpoints for the benchmark's calls.

In:  ``GET /posts`` (the list), ``GET /posts/{id}`` (the point read), ``POST /bench_posts``
     with a one-row JSON array (the insert); the database URL in ``BENCH_DSN`` (uvicorn starts
     each worker from an import string, so the environment is the only way to hand it over).
Out: PostgreSQL's ``json_agg`` text, unchanged: the list's ten rows, the post's row as a
     one-element array, the inserted row as a one-element array (201).

One prepared statement per request on a pooled connection, no auth, no
transaction, no planning: what is left is uvicorn, Starlette and asyncpg. Run as
``uvicorn gateway.bench.baseline:app --loop uvloop --http httptools --workers N``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .scenarios import INSERT_SQL, LIST_SQL, SINGLE_SQL

POOL_MIN = 2  # the gateway's default pool bounds, so both sides get the same connections
POOL_MAX = 10


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Pool release hook: nothing to undo (asyncpg's default RESET ALL would add a round trip)."""


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["BENCH_DSN"], min_size=POOL_MIN, max_size=POOL_MAX,
                                     reset=_no_reset)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


async def posts(request: Request) -> Response:
    async with request.app.state.pool.acquire() as conn:
        body = await conn.fetchval(LIST_SQL, "published")  # asyncpg's statement cache keeps it prepared
    return Response(body, media_type="application/json")


async def post(request: Request) -> Response:
    async with request.app.state.pool.acquire() as conn:
        body = await conn.fetchval(SINGLE_SQL, int(request.path_params["id"]))
    return Response(body, media_type="application/json")


async def insert(request: Request) -> Response:
    payload = (await request.body()).decode()
    async with request.app.state.pool.acquire() as conn:
        body = await conn.fetchval(INSERT_SQL, payload)
    return Response(body, status_code=201, media_type="application/json")


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(routes=[Route("/posts", posts), Route("/posts/{id:int}", post),
                        Route("/bench_posts", insert, methods=["POST"]), Route("/health", health)],
                lifespan=lifespan)
