"""X-Total-Count over HTTP: exact when cheap, the planner's estimate (and a header saying so) when not.

``big`` has more rows than the default ``GATEWAY_EXACT_COUNT_LIMIT`` and is analyzed, so the
planner's estimates are known; ``notes`` has the same size behind an owner policy, so what a
caller may see decides both the count and the estimate. Estimates are compared with EXPLAIN
run as the same caller.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from support import Running, app_with, running_app

from gateway import settings

ROWS = 25_000  # above the default limit of 10,000
ALICE_ROWS = 50


def uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))  # what Running.user signs for ``name``


FIXTURE = f"""
drop schema if exists rest_count cascade;
create schema rest_count;
set search_path = rest_count;
create table big(id int primary key, grp int not null, a int not null, b int not null, "50% o'clock" text);
insert into big select g, g % 10, g % 2, g % 2, 'x' from generate_series(1, {ROWS}) g;
create table kids(id int primary key, big_id int not null references big(id));
insert into kids select g, g from generate_series(1, 20000) g;
create table notes(id int primary key, owner uuid not null);
insert into notes select g, case when g <= {ALICE_ROWS} then '{uid("alice")}'::uuid else '{uid("bob")}'::uuid end
  from generate_series(1, {ROWS}) g;
alter table notes enable row level security;
create policy own_notes on notes for select to authenticated using (owner = auth.uid());
-- a policy that fails on any row past the first 1,000: only a full count reaches one
create function tripwire(id int) returns boolean language plpgsql volatile as $$
begin
  if id > 1000 then raise exception 'a full count ran'; end if;
  return true;
end $$;
create table tripwire(id int primary key);
insert into tripwire select generate_series(1, {ROWS});
alter table tripwire enable row level security;
create policy trip on tripwire for select to authenticated using (rest_count.tripwire(id));
grant usage on schema rest_count to anon, authenticated, project_admin;
grant select on all tables in schema rest_count to anon, authenticated, project_admin;
analyze big, kids, notes, tripwire;
"""

ESTIMATED = "x-total-count-estimated"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, ("rest_count",), teardown_sql="drop schema rest_count cascade") as running:
        yield running


async def get(app: Running, path: str, headers: dict[str, str] | None = None, method: str = "GET",
              who: str = "alice") -> httpx.Response:
    creds = {"anon": app.anon, "admin": app.admin}.get(who) or app.user(who)
    r = await app.client.request(method, f"/api/database/records/{path}", headers={**creds, **(headers or {})})
    assert r.status_code in (200, 206), r.text
    return r


def total(r: httpx.Response) -> tuple[int, bool]:
    """(X-Total-Count, whether it is flagged as an estimate); Content-Range carries the same total."""
    count = r.headers["x-total-count"]
    assert r.headers["content-range"].rsplit("/", 1)[1] == count
    flag = r.headers.get(ESTIMATED)
    assert flag in (None, "true")
    return int(count), flag == "true"


async def planner_rows(pg: asyncpg.Connection, query: str, role: str = "authenticated",
                       claims: dict[str, str] | None = None) -> int:
    """EXPLAIN's estimate of ``query``, planned as ``role`` with ``claims`` (RLS included)."""
    async with pg.transaction():
        await pg.execute("SELECT set_config('request.jwt.claims', $1, true)", json.dumps(claims or {}))
        await pg.execute(f"SET LOCAL ROLE {role}")
        plan = await pg.fetchval(f"EXPLAIN (FORMAT JSON) {query}")
    return int(json.loads(plan)[0]["Plan"]["Plan Rows"])


# --------------------------------------------------------------------------- exact when cheap


@pytest.mark.parametrize(("path", "expected"), [
    ("big?id=lte.500&limit=10", 500),
    ("big?grp=eq.3&limit=10", ROWS // 10),
    ("big?id=gt.24990&limit=100", 10),  # a short page proves the total
    ("big?id=gt.100000", 0),
    ("big?select=id,kids!inner(id)&id=lte.300&limit=10", 300),
])
async def test_a_total_the_planner_expects_within_the_limit_is_exact(app: Running, path: str,
                                                                    expected: int) -> None:
    assert total(await get(app, path)) == (expected, False)


# --------------------------------------------------------------------------- the estimate above it


@pytest.mark.parametrize(("path", "query"), [
    ("big?limit=10", "SELECT 1 FROM rest_count.big"),
    ("big?grp=neq.3&limit=10", "SELECT 1 FROM rest_count.big WHERE grp <> 3"),
    ("big?select=id,kids!inner(id)&limit=10",
     "SELECT 1 FROM rest_count.big t WHERE EXISTS (SELECT 1 FROM rest_count.kids k WHERE k.big_id = t.id)"),
    ("big?%2250%25%20o'clock%22=eq.x&limit=10", "SELECT 1 FROM rest_count.big WHERE \"50% o'clock\" = 'x'"),
])
async def test_above_the_limit_the_total_is_the_planners_estimate_and_says_so(
        app: Running, pg: asyncpg.Connection, path: str, query: str) -> None:
    r = await get(app, path)
    expected = await planner_rows(pg, query)
    assert expected > app.settings.exact_count_limit
    assert total(r) == (expected, True)
    assert r.status_code == 200  # 206/416 follow an explicit Prefer: count only
    assert len(r.json()) == 10


async def test_an_estimate_never_falls_below_the_rows_the_page_proves(app: Running, pg: asyncpg.Connection,
                                                                     pg_url: str) -> None:
    # a = b on every row, but the planner takes them as independent: it expects a quarter
    estimate = await planner_rows(pg, "SELECT 1 FROM rest_count.big WHERE a = 1 AND b = 1")
    assert estimate == ROWS // 4
    async with running_app(pg_url, ("rest_count",), exact_count_limit=1000) as small:
        r = await get(small, f"big?a=eq.1&b=eq.1&order=id&offset={ROWS // 2 - 20}&limit=10")
        assert total(r) == (ROWS // 2 - 10, True)
        r = await get(small, "big?a=eq.1&b=eq.1&limit=10")
        assert total(r) == (estimate, True)


async def test_above_the_limit_no_row_is_counted(pg_url: str, app: Running) -> None:
    async with running_app(pg_url, ("rest_count",), exact_count_limit=1000) as small:
        r = await get(small, "tripwire?limit=10")
        assert total(r)[1] is True and len(r.json()) == 10
        r = await small.client.get("/api/database/records/tripwire?limit=10",
                                   headers={**small.user(), "Prefer": "count=exact"})
        assert r.status_code >= 400 and "a full count ran" in r.text  # the wire the estimate never trips


async def test_head_gives_the_same_totals_without_a_body(app: Running, pg: asyncpg.Connection) -> None:
    r = await get(app, "big?limit=10", method="HEAD")
    assert r.content == b""
    assert total(r) == (await planner_rows(pg, "SELECT 1 FROM rest_count.big"), True)
    r = await get(app, "big?id=lte.500&limit=10", method="HEAD")
    assert (r.content, total(r)) == (b"", (500, False))


# --------------------------------------------------------------------------- Prefer and settings


async def test_prefer_count_exact_counts_every_row_above_the_limit(app: Running) -> None:
    r = await get(app, "big?limit=10", {"Prefer": "count=exact"})
    assert (r.status_code, total(r)) == (206, (ROWS, False))
    r = await get(app, "big?limit=10", {"Prefer": "count=exact"}, method="HEAD")
    assert (r.status_code, total(r)) == (206, (ROWS, False))


async def test_prefer_count_planned_is_the_estimate_even_within_the_limit(app: Running,
                                                                         pg: asyncpg.Connection) -> None:
    r = await get(app, "big?id=lte.500&limit=10", {"Prefer": "count=planned"})
    expected = await planner_rows(pg, "SELECT 1 FROM rest_count.big WHERE id <= 500")
    assert (r.status_code, total(r)) == (206, (expected, True))


@pytest.mark.parametrize(("path", "expected"), [
    ("big?id=lte.500&limit=10", (500, False)),  # within max rows (1000): counted
    ("big?limit=10", (ROWS, True)),  # beyond: the planner's estimate
])
async def test_prefer_count_estimated_counts_up_to_max_rows(app: Running, path: str,
                                                           expected: tuple[int, bool]) -> None:
    r = await get(app, path, {"Prefer": "count=estimated"})
    assert (r.status_code, total(r)) == (206, expected)


async def test_gateway_count_exact_counts_every_read_exactly(pg_url: str, app: Running) -> None:
    async with running_app(pg_url, ("rest_count",), count="exact") as exact:
        assert total(await get(exact, "big?limit=10")) == (ROWS, False)
        assert total(await get(exact, "big?limit=10", method="HEAD")) == (ROWS, False)
        assert total(await get(exact, "notes?limit=10", who="bob")) == (ROWS - ALICE_ROWS, False)
        r = await get(exact, "big?limit=10", {"Prefer": "count=planned"})
        assert total(r)[1] is True  # an explicit Prefer still wins


async def test_the_exact_count_limit_is_a_setting(pg_url: str, app: Running) -> None:
    async with running_app(pg_url, ("rest_count",), exact_count_limit=ROWS * 2) as generous:
        assert total(await get(generous, "big?limit=10")) == (ROWS, False)
    async with running_app(pg_url, ("rest_count",), exact_count_limit=100) as strict:
        assert total(await get(strict, "big?id=lte.500&limit=10"))[1] is True


# --------------------------------------------------------------------------- RLS


async def test_counts_and_estimates_are_taken_as_the_caller(app: Running, pg: asyncpg.Connection) -> None:
    # alice sees 50 rows: her estimate is small, so her total is exact; planned without her
    # policy, the table's 25,000 rows would have given an estimate
    assert total(await get(app, "notes?limit=10", who="alice")) == (ALICE_ROWS, False)
    bob = await planner_rows(pg, "SELECT 1 FROM rest_count.notes",
                             claims={"sub": uid("bob"), "role": "authenticated"})
    assert ROWS - ALICE_ROWS - 100 <= bob < ROWS  # the policy's estimate, not the table's
    assert total(await get(app, "notes?limit=10", who="bob")) == (bob, True)
    r = await get(app, "notes?limit=10", {"Prefer": "count=exact"}, who="bob")
    assert total(r) == (ROWS - ALICE_ROWS, False)
    admin = await planner_rows(pg, "SELECT 1 FROM rest_count.notes", role="project_admin")
    assert total(await get(app, "notes?limit=10", who="admin")) == (admin, True)
    assert total(await get(app, "notes?limit=10", who="anon")) == (0, False)  # no policy for anon
    anon = await planner_rows(pg, "SELECT 1 FROM rest_count.big", role="anon")
    assert total(await get(app, "big?limit=10", who="anon")) == (anon, True)


async def test_cors_exposes_the_estimate_header(app: Running) -> None:
    r = await app.client.get("/api/database/records/big?limit=1",
                             headers={**app.user(), "Origin": "http://example.com"})
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"x-total-count", ESTIMATED} <= exposed


@pytest.mark.parametrize(("environ", "count", "limit"), [
    ({}, "auto", 10000),
    ({"GATEWAY_COUNT": "EXACT", "GATEWAY_EXACT_COUNT_LIMIT": "500"}, "exact", 500),
])
def test_the_count_settings_are_read_from_the_environment(environ: dict[str, str], count: str, limit: int) -> None:
    loaded = settings.load(environ)
    assert (loaded.count, loaded.exact_count_limit) == (count, limit)


def test_an_unknown_count_mode_is_refused_with_the_modes_it_takes() -> None:
    with pytest.raises(ValueError, match="GATEWAY_COUNT must be one of auto, exact"):
        settings.load({"GATEWAY_COUNT": "sometimes"})
