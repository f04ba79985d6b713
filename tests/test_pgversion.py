"""Version-specific SQL (gateway.pgversion and the choices made with it) against the session's server.

Both of bulk upsert's input checks run here on whatever major the session uses: the pre-16
fallback on every server, ``pg_input_is_valid`` where the server has it, and where both run
they must agree value for value, message for message. Objects live in schema ``pgversion_checks``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from support import running_app

from gateway import pgversion, startup
from gateway.admin import bulk

SCHEMA = "pgversion_checks"
FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};
CREATE TYPE {SCHEMA}.mood AS ENUM ('happy', 'sad');
CREATE DOMAIN {SCHEMA}.positive AS int CHECK (VALUE > 0);
CREATE TABLE {SCHEMA}.everything (
  i int, n numeric(5,2), v varchar(3), c char(2), b bit(3), t text[], vs varchar(3)[], ints int[],
  flag boolean, u uuid, j jsonb, d date, at timestamptz, m {SCHEMA}.mood, p {SCHEMA}.positive, r int4range);
"""

# (column, text value, None when valid or the start of PostgreSQL's message)
CASES = [
    ("i", "12", None), ("i", "abc", 'invalid input syntax for type integer: "abc"'),
    ("i", "99999999999", 'value "99999999999" is out of range for type integer'),
    ("n", "123.456", None), ("n", "1234.5", "numeric field overflow"),
    ("v", "abc", None), ("v", "abcd", "value too long for type character varying(3)"),
    ("c", "abc", "value too long for type character(2)"),
    ("b", "101", None), ("b", "1010", "bit string length 4 does not match type bit(3)"),
    ("t", '{a,"b c",NULL}', None), ("t", "not-an-array", 'malformed array literal: "not-an-array"'),
    ("vs", "{abc}", None), ("vs", "{abcd}", "value too long for type character varying(3)"),
    ("ints", "{1,x}", 'invalid input syntax for type integer: "x"'),
    ("flag", "t", None), ("flag", "maybe", 'invalid input syntax for type boolean: "maybe"'),
    ("u", "nope", 'invalid input syntax for type uuid: "nope"'),
    ("j", '{"a": 1}', None), ("j", "{bad", "invalid input syntax for type json"),
    ("d", "2024-02-29", None), ("d", "2023-02-29", 'date/time field value out of range: "2023-02-29"'),
    ("at", "2024-01-01 00:00:00+02", None),
    ("m", "happy", None), ("m", "angry", f'invalid input value for enum {SCHEMA}.mood: "angry"'),
    ("p", "3", None), ("p", "-1", f'value for domain {SCHEMA}.positive violates check constraint "positive_check"'),
    ("r", "[1,5)", None), ("r", "[5,1)", "range lower bound must be less than or equal to range upper bound"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def checks_table(pg_url: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(FIXTURE)
        yield f"{SCHEMA}.everything"
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()


async def _verdicts(pg: asyncpg.Connection, table: str, check: bulk.InputCheck) -> list[tuple[bool, str | None]]:
    """(valid, message) per case, with ``check``'s SQL, in a transaction that is rolled back."""
    results = []
    tx = pg.transaction()
    await tx.start()
    try:
        for statement in check.setup:
            await pg.execute(statement)
        for column, value, _ in CASES:
            args = tuple(await pg.fetchrow(bulk.TYPE_ARGS.format(columns=check.type_args), table, [column]) or ())
            placeholders = ", ".join(f"${n}" for n in range(2, len(args) + 2))
            valid = await pg.fetchval(f"SELECT {check.valid.format(value='$1::text', args=placeholders)}",
                                      value, *args)
            results.append((valid, None if valid else await pg.fetchval(check.reason, value, *args)))
    finally:
        await tx.rollback()
    return results


def _expected() -> list[tuple[bool, str | None]]:
    return [(message is None, message) for _, _, message in CASES]


def _agree(verdicts: list[tuple[bool, str | None]]) -> None:
    for (column, value, _), (valid, message), (want_valid, want) in zip(CASES, verdicts, _expected(), strict=True):
        assert valid is want_valid, (column, value, message)
        assert want is None or (message or "").startswith(want), (column, value, message)


async def test_the_pre_16_input_check_judges_every_type_as_postgresql_input_functions_do(
        pg: asyncpg.Connection, checks_table: str) -> None:
    _agree(await _verdicts(pg, checks_table, bulk.INPUT_CHECKS[False]))


async def test_pg_input_is_valid_on_16_and_later_gives_the_same_verdicts_and_messages_as_the_fallback(
        pg: asyncpg.Connection, checks_table: str, server_version_num: int) -> None:
    if not pgversion.supports(server_version_num, "pg_input_is_valid"):
        pytest.skip(f"pg_input_is_valid needs PostgreSQL 16; this server is {server_version_num}")
    native = await _verdicts(pg, checks_table, bulk.INPUT_CHECKS[True])
    _agree(native)
    assert native == await _verdicts(pg, checks_table, bulk.INPUT_CHECKS[False])


async def test_the_pre_16_first_pass_accepts_exactly_the_values_input_functions_accept(
        pg: asyncpg.Connection, checks_table: str) -> None:
    """The set-based pass that spares a valid file the per-value checks: True only when every value
    parses, and a False leaves the upload's transaction usable."""
    async with pg.transaction():
        for column, value, message in CASES:
            await pg.execute(f"CREATE TEMP TABLE {bulk.STAGING} (rn int, grp int, c0 text) ON COMMIT DROP")
            await pg.execute(f"INSERT INTO {bulk.STAGING} VALUES (1, 0, $1), (2, 0, NULL)", value)
            upload = SimpleNamespace(columns=(SimpleNamespace(name=column),))
            assert await bulk._inputs_parse(pg, upload, checks_table) is (message is None), (column, value)
            assert await pg.fetchval(f"SELECT count(*) FROM {bulk.STAGING}") == 2  # still usable
            await pg.execute(f"DROP TABLE {bulk.STAGING}")


async def test_the_fallback_function_is_gone_after_a_clean_check(pg: asyncpg.Connection) -> None:
    check = bulk.INPUT_CHECKS[False]
    async with pg.transaction():
        for statement in (*check.setup, *check.teardown):
            await pg.execute(statement)
        assert await pg.fetchval("SELECT to_regprocedure('pg_temp.gateway_input_error(text, oid, int)')") is None


async def test_the_connect_time_version_is_the_servers_server_version_num(pg: asyncpg.Connection) -> None:
    assert pgversion.of(pg) == int(await pg.fetchval("SHOW server_version_num"))
    version = await pgversion.require_supported(pg)
    assert version.num == pgversion.of(pg) and version.major >= 14
    assert version.text == (await pg.fetchval("SHOW server_version")).split(" ")[0]


@pytest.mark.parametrize(("num", "text", "refused"), [
    (90624, "9.6.24", True), (130022, "13.22", True), (140000, "14.0", False), (150018, "15.18", False),
    (180006, "18.6", False), (190000, "19devel", False),
])
def test_servers_older_than_14_are_refused_with_one_line(num: int, text: str, refused: bool) -> None:
    version = pgversion.ServerVersion(num, text)
    if not refused:
        assert pgversion.check(version) is version
        return
    with pytest.raises(pgversion.UnsupportedServer) as caught:
        pgversion.check(version)
    assert "\n" not in str(caught.value) and str(caught.value).startswith(f"PostgreSQL {text} is not supported")


async def test_require_supported_url_is_none_for_a_server_that_cannot_be_reached(tmp_path: Any) -> None:
    assert await pgversion.require_supported_url(f"postgresql://postgres@/postgres?host={tmp_path}") is None


@pytest.mark.parametrize(("num", "has"), [(140013, False), (150018, False), (160000, True), (180006, True)])
def test_pg_input_is_valid_is_chosen_from_16_on(num: int, has: bool) -> None:
    assert pgversion.supports(num, "pg_input_is_valid") is has


async def test_health_and_ready_report_the_servers_version(pg: asyncpg.Connection, pg_url: str) -> None:
    expected = {"postgresVersion": (await pg.fetchval("SHOW server_version")).split(" ")[0],
                "postgresVersionNum": int(await pg.fetchval("SHOW server_version_num"))}
    async with running_app(pg_url) as app:
        for path in ("/health", "/ready"):
            response = await app.client.get(path)
            assert response.status_code == 200
            assert response.json().items() >= expected.items(), path


async def test_the_app_does_not_start_on_a_server_older_than_the_minimum(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgversion, "MINIMUM", 10**9)  # every real server is "too old" now
    with pytest.raises(pgversion.UnsupportedServer, match="is not supported"):
        async with running_app(pg_url):
            pass


async def test_the_start_up_check_refuses_a_server_older_than_the_minimum_in_one_line(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgversion, "MINIMUM", 10**9)
    with pytest.raises(startup.Failure) as caught:
        await startup._check("DATABASE_URL", pg_url, embedded=False)
    assert caught.value.code == startup.Exit.DATABASE
    assert "is not supported" in str(caught.value) and "\n" not in str(caught.value)
    monkeypatch.undo()
    await startup._check("DATABASE_URL", pg_url, embedded=False)  # the real minimum: this server is fine
