"""Test support: a running gateway app over the session's PostgreSQL, and signed credentials.

In:  the session's superuser URL (fixture ``pg_url``), the schemas a test module exposes.
Out: ``running_app(...)`` — an async context manager yielding a ``Running`` with an httpx
     client bound to the app (its lifespan run), the Gateway state and ready-made headers
     for the admin key, anon, and signed-in users.

Each test module exposes its own schema(s) (``schemas=("mod_schema",)``), so modules never
see each other's tables through the API.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from gateway.app import create_app
from gateway.auth import anon_key, sign_token
from gateway.settings import Settings
from gateway.state import Gateway

JWT_SECRET = "test-secret-" + "s" * 40
API_KEY = "ik_" + "0123456789abcdef" * 4
# the login role's password: one for the whole session, since the role is cluster-wide
AUTHENTICATOR_PASSWORD = "test-login-" + "p" * 40


@dataclass
class Running:
    client: httpx.AsyncClient
    gateway: Gateway
    settings: Settings
    users: dict[str, str] = field(default_factory=dict)  # name -> uuid

    @property
    def admin(self) -> dict[str, str]:
        return {"X-API-Key": API_KEY}

    @property
    def anon(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {anon_key(JWT_SECRET)}"}

    def user(self, name: str = "alice", **claims: Any) -> dict[str, str]:
        """Headers with a signed user token; the same name always gets the same uuid."""
        sub = self.users.setdefault(name, str(uuid.uuid5(uuid.NAMESPACE_DNS, name)))
        token = sign_token(JWT_SECRET, {"sub": sub, "role": "authenticated",
                                        "email": f"{name}@example.com", **claims}, 3600)
        return {"Authorization": f"Bearer {token}"}

    def uid(self, name: str = "alice") -> str:
        return self.users.setdefault(name, str(uuid.uuid5(uuid.NAMESPACE_DNS, name)))


def settings_for(pg_url: str, schemas: tuple[str, ...] = ("public",), **overrides: Any) -> Settings:
    values: dict[str, Any] = {"authenticator_password": AUTHENTICATOR_PASSWORD, **overrides}
    return Settings(database_url=pg_url, jwt_secret=JWT_SECRET, api_key=API_KEY, schemas=schemas,
                    data_dir="/nonexistent-not-used", **values)


@contextlib.asynccontextmanager
async def running_app(pg_url: str, schemas: tuple[str, ...] = ("public",), *,
                      client: tuple[str, int] = ("127.0.0.1", 123), **overrides: Any,
                      ) -> AsyncIterator[Running]:
    """The full app (every route and middleware app.py mounts), its lifespan run, and a client."""
    settings = settings_for(pg_url, schemas, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Running(client, app.state.gateway, settings)


ERROR_KEYS = {"error", "message", "statusCode", "nextActions", "code", "details", "hint"}


def assert_error(r: httpx.Response, status: int, error: str, code: str | None = None) -> dict[str, Any]:
    """``r`` is the spec's error body with this status and error (and PostgREST code, when given)."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body.keys() >= ERROR_KEYS, body
    assert (body["statusCode"], body["error"]) == (status, error), body
    assert body["message"] and body["nextActions"]
    if code is not None:
        assert body["code"] == code, body
    return body


async def run_sql(pg_url: str, sql: str) -> None:
    """Run setup or teardown SQL as the superuser on a connection of its own."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def app_with(pg_url: str, setup_sql: str, schemas: tuple[str, ...], teardown_sql: str | None = None,
                   **overrides: Any) -> AsyncIterator[Running]:
    """``running_app`` over the objects ``setup_sql`` creates (before start, so the first catalog has them)."""
    await run_sql(pg_url, setup_sql)
    async with running_app(pg_url, schemas, **overrides) as running:
        yield running
    if teardown_sql:
        await run_sql(pg_url, teardown_sql)
