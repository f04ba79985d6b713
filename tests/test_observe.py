"""Observability: X-Request-Id, the JSON access log and the Prometheus metrics at /metrics.

The app is ``create_app`` with ``observe.Observer`` (and ``guard.Guard``) mounted the way
gateway/app.py mounts them, over schema ``obs``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from support import Running, running_app, settings_for

from gateway import observe

SCHEMA = "obs"
FIXTURE = f"""
drop schema if exists {SCHEMA} cascade; create schema {SCHEMA};
create table {SCHEMA}.notes(id int primary key, body text);
insert into {SCHEMA}.notes values (1, 'one');
grant usage on schema {SCHEMA} to anon, authenticated, project_admin;
grant all on all tables in schema {SCHEMA} to authenticated, project_admin;
grant select on all tables in schema {SCHEMA} to anon;
"""


@contextlib.asynccontextmanager
async def serving(pg_url: str, schemas: tuple[str, ...], **overrides: Any) -> AsyncIterator[Running]:
    """The app as app.py mounts it, seen from a fixed client address."""
    async with running_app(pg_url, schemas, client=("203.0.113.7", 50000), **overrides) as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(FIXTURE)
        async with serving(pg_url, (SCHEMA,)) as running:
            yield running
        await conn.execute(f"drop schema {SCHEMA} cascade")
    finally:
        await conn.close()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, keyed by (name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(app: Running) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await app.client.get("/metrics", headers=app.admin)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(("sent", "kept"), [
    (b"3f2b9c1e-8a4d-4c3e-9f10-2b7a6c5d4e3f", True),
    (b"trace:abc/123+x=", True),
    (b"a" * 128, True),
    (b"a" * 129, False),
    (b"has space", False),
    (b"line\nbreak", False),
    (b"", False),
    (None, False),
])
def test_a_sane_client_request_id_is_kept_and_anything_else_is_replaced(sent: bytes | None, kept: bool) -> None:
    headers = [] if sent is None else [(b"x-request-id", sent)]
    rid = observe.request_id({"headers": headers})
    if kept:
        assert sent is not None and rid == sent.decode()
    else:
        assert len(rid) == 32 and int(rid, 16) >= 0


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"code": "23505"}', "23"),
    (b'{"code": "57014"}', "57"),
    (b'{"code": "42P01"}', "42"),
    (b'{"code": "PGRST003"}', "unavailable"),
    (b'{"code": "PGRST116"}', None),
    (b'{"code": "INVALID_QUERY"}', None),
    (b'{"code": null}', None),
    (b'[1, 2]', None),
    (b"not json", None),
])
def test_error_bodies_are_counted_by_the_class_of_their_sqlstate(body: bytes, expected: str | None) -> None:
    assert observe.error_class(body) == expected


def test_the_json_formatter_passes_access_lines_through_and_encodes_other_records() -> None:
    formatter = observe.JsonFormatter()
    access = logging.makeLogRecord({"msg": '{"status": 200}', "access": {"status": 200}})
    assert formatter.format(access) == '{"status": 200}'
    token = observe.current_request_id.set("rid-1")
    try:
        other = logging.makeLogRecord({"msg": "catalog %s", "args": ("loaded",), "name": "gateway",
                                       "levelname": "INFO", "version": 3})
        line = json.loads(formatter.format(other))
    finally:
        observe.current_request_id.reset(token)
    assert line["message"] == "catalog loaded"
    assert (line["level"], line["logger"], line["version"], line["request_id"]) == ("info", "gateway", 3, "rid-1")


def test_configure_logging_sets_the_level_and_installs_one_json_handler() -> None:
    logger = logging.getLogger("gateway")
    saved = (logger.level, list(logger.handlers), logger.propagate)
    try:
        for _ in range(2):
            observe.configure_logging(settings_for("postgresql://unused", log_level="warning"))
        assert logger.level == logging.WARNING
        assert sum(isinstance(h.formatter, observe.JsonFormatter) for h in logger.handlers) == 1
    finally:
        logger.setLevel(saved[0])
        logger.handlers[:] = saved[1]
        logger.propagate = saved[2]


# --------------------------------------------------------------------------- request ids and access log


async def test_the_clients_request_id_comes_back_on_the_response(app: Running) -> None:
    r = await app.client.get("/health", headers={"X-Request-Id": "client-chosen-42"})
    assert r.headers["x-request-id"] == "client-chosen-42"


async def test_every_response_gets_a_fresh_request_id_when_the_client_sends_none(app: Running) -> None:
    seen = {(await app.client.get("/health")).headers["x-request-id"] for _ in range(5)}
    assert len(seen) == 5


async def test_error_responses_carry_the_request_id_too(app: Running) -> None:
    r = await app.client.get("/api/database/records/notes")
    assert r.status_code == 401
    assert r.headers["x-request-id"]


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "gateway.access"]


@pytest.mark.parametrize(("who", "status", "role"), [
    ("user", 200, "authenticated"),
    ("admin", 200, "project_admin"),
    ("anon", 200, "anon"),
    ("nobody", 401, None),
])
async def test_each_request_writes_one_json_access_line_with_the_callers_role(
        app: Running, caplog: pytest.LogCaptureFixture, who: str, status: int, role: str | None) -> None:
    creds = {"user": app.user(), "admin": app.admin, "anon": app.anon, "nobody": {}}[who]
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        r = await app.client.get("/api/database/records/notes?id=eq.1",
                                 headers={**creds, "X-Request-Id": f"log-{who}"})
    assert r.status_code == status
    [line] = access_lines(caplog)
    assert line["method"] == "GET"
    assert line["path"] == "/api/database/records/notes"
    assert (line["status"], line["role"], line["request_id"]) == (status, role, f"log-{who}")
    assert line["client"] == "203.0.113.7"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["bytes"] == len(r.content)


async def test_no_access_line_is_written_below_the_configured_level(
        app: Running, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway.access"):
        await app.client.get("/health")
    assert access_lines(caplog) == []


async def test_server_errors_are_logged_at_warning(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with serving(pg_url, (SCHEMA,), pool_min=1, pool_max=1, pool_timeout=0.2) as small:
        with caplog.at_level(logging.WARNING, logger="gateway.access"):
            async with small.gateway.pool.acquire():  # the only connection: the request finds none free
                r = await small.client.get("/api/database/records/notes", headers=small.user())
    assert r.status_code == 503
    assert [line["status"] for line in access_lines(caplog)] == [503]


async def test_access_log_off_writes_nothing_but_metrics_still_count(
        pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    async with serving(pg_url, (SCHEMA,), access_log=False) as quiet:
        with caplog.at_level(logging.INFO, logger="gateway.access"):
            await quiet.client.get("/health")
        assert access_lines(caplog) == []
        found = await scrape(quiet)
        assert value(found, "gateway_http_requests_total", method="GET", route="/health", status="200") == 1


# --------------------------------------------------------------------------- metrics


async def test_requests_are_counted_and_timed_by_route_template_and_status(app: Running) -> None:
    before = await scrape(app)
    for path in ("notes?id=eq.1", "notes?id=eq.2", "notes?id=bogus"):
        await app.client.get(f"/api/database/records/{path}", headers=app.user())
    await app.client.get("/no/such/route", headers=app.user())
    after = await scrape(app)
    route = "/api/database/records/{table}"
    ok = {"method": "GET", "route": route, "status": "200"}
    assert value(after, "gateway_http_requests_total", **ok) - value(before, "gateway_http_requests_total", **ok) == 2
    bad = {"method": "GET", "route": route, "status": "400"}
    assert value(after, "gateway_http_requests_total", **bad) - value(before, "gateway_http_requests_total", **bad) == 1
    await app.client.get("/api/database/indexes", headers=app.admin)  # a route inside the /api/database Mount
    admin = {"method": "GET", "route": "/api/database/indexes", "status": "200"}
    assert value(await scrape(app), "gateway_http_requests_total", **admin) >= 1
    lost = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "gateway_http_requests_total", **lost) >= 1
    assert value(after, "gateway_http_request_duration_seconds_count", **ok) >= 2
    assert value(after, "gateway_http_request_duration_seconds_bucket", **ok, le="+Inf") >= 2
    assert not any("notes" in str(labels) for _, labels in after)  # raw paths never become labels


async def test_pool_usage_is_reported_per_state(app: Running) -> None:
    found = await scrape(app)
    opened = value(found, "gateway_db_pool_connections", pool="primary", state="open")
    idle = value(found, "gateway_db_pool_connections", pool="primary", state="idle")
    assert value(found, "gateway_db_pool_connections", pool="primary", state="max") == app.settings.pool_max
    assert opened >= 1 and 0 <= idle <= opened
    assert value(found, "gateway_db_pool_connections", pool="primary", state="in_use") == opened - idle
    async with app.gateway.pool.acquire():
        busy = await scrape(app)
    assert value(busy, "gateway_db_pool_connections", pool="primary", state="in_use") >= 1


async def test_catalog_reloads_are_counted_and_the_version_is_reported(app: Running) -> None:
    before = await scrape(app)
    await app.gateway.reload_catalog()
    after = await scrape(app)
    # DDL elsewhere in the database may add reloads of its own (NOTIFY), never fewer than the one asked for
    reloads = value(after, "gateway_catalog_reloads_total")
    assert value(before, "gateway_catalog_reloads_total") + 1 <= reloads <= app.gateway.reloads
    assert value(after, "gateway_catalog_version") == app.gateway.catalogs.get().version


async def test_database_errors_are_counted_by_sqlstate_class(app: Running) -> None:
    before = await scrape(app)
    r = await app.client.post("/api/database/records/notes", json=[{"id": 1, "body": "again"}], headers=app.user())
    assert r.status_code == 409
    after = await scrape(app)
    assert value(after, "gateway_db_errors_total", sqlstate_class="23") == \
        value(before, "gateway_db_errors_total", sqlstate_class="23") + 1


WORKER = """
import sys
from gateway import observe
metrics = observe.Metrics()
assert metrics.multiprocess
for _ in range(int(sys.argv[1])):
    metrics.record("GET", "/health", 200, 0.01)
if sys.argv[2] == "scrape":
    sys.stdout.write(metrics.exposition().decode())
"""


def test_with_a_multiprocess_dir_metrics_add_up_across_worker_processes(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    script = textwrap.dedent(WORKER)

    def worker(count: int, mode: str) -> str:
        return subprocess.run([sys.executable, "-c", script, str(count), mode], env=env, check=True,
                              capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent).stdout

    worker(3, "record")
    worker(4, "record")
    found = samples(worker(0, "scrape"))
    assert value(found, "gateway_http_requests_total", method="GET", route="/health", status="200") == 7
