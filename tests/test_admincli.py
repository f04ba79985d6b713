"""``gateway export``, ``gateway import`` and ``gateway bulk-upsert`` (gateway.admincli) end to end.

The commands run in-process through ``cli.main`` on a thread of their own (each makes its own
event loop, as the console script does) against the session's PostgreSQL through
``DATABASE_URL``; one test leaves it unset and lets the command start and stop the embedded
PostgreSQL. Tables live in ``public`` under names starting with ``acli_`` and are dropped at the end.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import unittest.mock
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from support import API_KEY, running_app

from gateway import cli, embedded, settings
from gateway.admin import sqlguard

# made as project_admin, as a migration makes them: an import over them needs ownership
TABLES_SQL = r"""
DROP TABLE IF EXISTS acli_child, acli_parent CASCADE;
SET ROLE project_admin;
CREATE TABLE acli_parent (id serial PRIMARY KEY, name text NOT NULL UNIQUE, tags text[], doc jsonb,
                          at timestamptz, price numeric(10,2) CHECK (price >= 0));
CREATE TABLE acli_child (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                         parent_id int REFERENCES acli_parent (id), body text);
CREATE INDEX acli_child_body ON acli_child (lower(body));
INSERT INTO acli_parent (name, tags, doc, at, price)
  SELECT 'p' || g, ARRAY['x', 'y ' || g], jsonb_build_object('g', g),
         '2024-01-01'::timestamptz + g * interval '1 hour', g / 3.0 FROM generate_series(1, 30) g;
INSERT INTO acli_parent (name, tags, doc) VALUES (E'quote '' and\nnewline \u00fc ;', '{}', 'null');
INSERT INTO acli_child (parent_id, body) SELECT 1 + g % 31, 'row ' || g FROM generate_series(1, 1200) g;
RESET ROLE;
"""
ROWS = 31 + 1200
BULK_SQL = """
DROP TABLE IF EXISTS acli_bulk;
CREATE TABLE acli_bulk (id int PRIMARY KEY, name text NOT NULL, score numeric, tags text[], note text DEFAULT 'none');
"""


@dataclass(frozen=True)
class Outcome:
    status: int  # the exit status
    out: str  # stdout
    err: str  # stderr: the progress bar, then the error body on failure

    @property
    def error(self) -> dict[str, Any]:
        """The error body: the last line of stderr."""
        return dict(orjson.loads(self.err.strip().splitlines()[-1]))

    def reached(self, total: int) -> bool:
        """The progress bar was drawn at ``total`` of ``total``."""
        return f"| {total}/{total} [" in self.err


async def gateway(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """Run ``gateway ARGV`` as the console script would (its own event loop, here on a thread)."""
    capsys.readouterr()
    # as on a terminal: the progress bar is drawn only there
    with unittest.mock.patch.object(sys.stderr, "isatty", return_value=True):
        status = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return Outcome(status, out, err)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> pytest.MonkeyPatch:
    """Only DATABASE_URL set: the session's database, every other setting at its default."""
    for setting in settings.SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    return monkeypatch


@pytest_asyncio.fixture(scope="module", loop_scope="session", autouse=True)
async def _drop_tables(pg_url: str) -> AsyncIterator[None]:
    yield
    conn = await asyncpg.connect(pg_url)
    try:
        for t in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                  "AND tablename LIKE 'acli\\_%'"):
            await conn.execute(f'DROP TABLE IF EXISTS public."{t["tablename"]}" CASCADE')
    finally:
        await conn.close()


async def snapshot(pg: asyncpg.Connection) -> tuple[list[str], list[str], list[str]]:
    """Every row in PostgreSQL's text form, and the indexes."""
    parents = await pg.fetch("SELECT r::text FROM acli_parent AS r ORDER BY id")
    children = await pg.fetch("SELECT r::text FROM acli_child AS r ORDER BY id")
    indexes = await pg.fetch("SELECT indexdef FROM pg_indexes WHERE tablename LIKE 'acli%' ORDER BY 1")
    return [r[0] for r in parents], [r[0] for r in children], [r[0] for r in indexes]


# --------------------------------------------------------------------------- export and import


async def test_export_drop_import_restores_every_row_with_progress_to_the_total(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path) -> None:
    await pg.execute(TABLES_SQL)
    before = await snapshot(pg)

    exported = await gateway(capsys, "export", "--tables", "acli_child,acli_parent")
    assert exported.status == 0, exported.err
    assert exported.out.index("CREATE TABLE IF NOT EXISTS \"public\".\"acli_parent\"") < exported.out.index(
        "CREATE TABLE IF NOT EXISTS \"public\".\"acli_child\"")  # dependency order
    assert exported.reached(ROWS)

    dump = tmp_path / "dump.sql"
    dump.write_bytes(exported.out.encode())
    await pg.execute("DROP TABLE acli_child, acli_parent")
    imported = await gateway(capsys, "import", str(dump))
    assert imported.status == 0, imported.err
    result = orjson.loads(imported.out)
    assert result["tables"] == ["acli_parent", "acli_child"] and result["rowsImported"] == ROWS
    assert result["fileSize"] == dump.stat().st_size
    assert imported.reached(len(sqlguard.split_statements(exported.out)))
    assert await snapshot(pg) == before
    assert await pg.fetchval("INSERT INTO acli_child (body) VALUES ('new') RETURNING id") == 1201


async def test_import_with_truncate_replaces_the_rows_of_existing_tables(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path) -> None:
    await pg.execute(TABLES_SQL)
    before = await snapshot(pg)
    dump = tmp_path / "dump.sql"
    dump.write_bytes((await gateway(capsys, "export", "--tables", "acli_parent,acli_child")).out.encode())
    await pg.execute("DELETE FROM acli_child WHERE id > 600; UPDATE acli_parent SET name = 'changed' WHERE id = 1")

    without = await gateway(capsys, "import", str(dump))
    assert without.status == 1 and without.error["code"] == "23505"  # the rows are still there
    replaced = await gateway(capsys, "import", "--truncate", str(dump))
    assert replaced.status == 0, replaced.err
    assert await snapshot(pg) == before


async def test_import_with_truncate_of_a_referenced_table_exits_non_zero_and_changes_nothing(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path) -> None:
    await pg.execute(TABLES_SQL)
    before = await snapshot(pg)
    dump = tmp_path / "parents.sql"  # acli_child, which references acli_parent, is not in the file
    dump.write_bytes((await gateway(capsys, "export", "--tables", "acli_parent")).out.encode())
    refused = await gateway(capsys, "import", "--truncate", str(dump))
    assert refused.status == 1
    assert (refused.error["statusCode"], refused.error["code"]) == (409, "23503")
    assert "public.acli_child" in refused.error["message"]
    assert await snapshot(pg) == before


@pytest.mark.parametrize(("flags", "body"), [
    ([], {}),
    (["--format", "json"], {"format": "json"}),
    (["--no-data", "--sequences"], {"includeData": False, "includeSequences": True}),
    (["--row-limit", "7", "--format", "json"], {"rowLimit": 7, "format": "json"}),
])
async def test_the_export_is_the_export_endpoints_content(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, pg_url: str,
        flags: list[str], body: dict[str, Any]) -> None:
    await pg.execute(TABLES_SQL)
    exported = await gateway(capsys, "export", "--tables", "acli_parent,acli_child", *flags)
    assert exported.status == 0, exported.err
    async with running_app(pg_url) as app:
        response = await app.client.post("/api/database/advance/export", headers={"X-API-Key": API_KEY},
                                          json={"tables": ["acli_parent", "acli_child"], **body})
    content = response.json()["content"]
    assert (orjson.loads(exported.out) if body.get("format") == "json" else exported.out) == content
    if body.get("includeData") is False:
        assert exported.err == ""  # no rows, no bar
    else:
        limit = body.get("rowLimit", ROWS)
        assert exported.reached(min(31, limit) + min(1200, limit))


async def test_an_import_tells_running_gateways_to_reload_when_it_commits(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path) -> None:
    await pg.execute("DROP TABLE IF EXISTS acli_notify; CREATE TABLE acli_notify (id int)")
    heard: asyncio.Queue[str] = asyncio.Queue()
    await pg.add_listener("pgrst", lambda _c, _pid, _channel, payload: heard.put_nowait(payload))
    rows = tmp_path / "rows.sql"
    rows.write_text("INSERT INTO acli_notify VALUES (1), (2);\n")  # no DDL: no event trigger fires
    assert (await gateway(capsys, "import", str(rows))).status == 0
    assert await asyncio.wait_for(heard.get(), 30) == "reload schema"


# --------------------------------------------------------------------------- bulk upsert


async def test_a_csv_file_is_upserted_with_progress_to_the_total(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path) -> None:
    await pg.execute(BULK_SQL)
    data = tmp_path / "people.csv"
    data.write_text("id,name,score,tags\n" + "".join(f'{i},"Name, {i}",{i / 4},"{{a,b{i}}}"\n'
                                                     for i in range(1, 2501)) + "2501,last,,\n")
    done = await gateway(capsys, "bulk-upsert", "--table", "acli_bulk", str(data))
    assert done.status == 0, done.err
    assert orjson.loads(done.out) | {"message": None} == {
        "rowsAffected": 2501, "totalRecords": 2501, "table": "acli_bulk", "success": True,
        "filename": "people.csv", "message": None}
    assert done.reached(2501)
    assert tuple(await pg.fetchrow("SELECT name, score::text, tags FROM acli_bulk WHERE id = 2")) == (
        "Name, 2", "0.5", ["a", "b2"])
    assert tuple(await pg.fetchrow("SELECT name, score, tags, note FROM acli_bulk WHERE id = 2501")) == (
        "last", None, None, "none")


async def test_json_records_update_on_the_upsert_key_and_keep_what_they_leave_out(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path) -> None:
    await pg.execute(BULK_SQL + "INSERT INTO acli_bulk (id, name, score, note) VALUES (1, 'old', 1, 'kept');")
    data = tmp_path / "people.json"
    data.write_bytes(orjson.dumps([{"id": 1, "name": "new", "tags": ["x", "y z"]}, {"id": 2, "name": "two"}]))
    done = await gateway(capsys, "bulk-upsert", "--table", "acli_bulk", "--upsert-key", "id", str(data))
    assert done.status == 0, done.err
    assert orjson.loads(done.out)["rowsAffected"] == 2 and done.reached(2)
    rows = await pg.fetch("SELECT id, name, score::text, tags, note FROM acli_bulk ORDER BY id")
    assert [tuple(r) for r in rows] == [(1, "new", "1", ["x", "y z"], "kept"), (2, "two", None, None, "none")]


@pytest.mark.parametrize(("name", "content"), [
    ("bad.csv", b"id,name,score\n1,a,1\n2,b,abc\n3,c,3\n"),
    ("bad.json", orjson.dumps([{"id": 1, "name": "a"}, {"id": 2, "name": "b", "score": "abc"}])),
])
async def test_a_bad_value_exits_non_zero_with_the_error_body_and_writes_nothing(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path,
        name: str, content: bytes) -> None:
    await pg.execute(BULK_SQL)
    data = tmp_path / name
    data.write_bytes(content)
    failed = await gateway(capsys, "bulk-upsert", "--table", "acli_bulk", str(data))
    assert failed.status == 1 and failed.out == ""
    error = failed.error
    assert (error["statusCode"], error["error"]) == (400, "INVALID_INPUT")
    assert error["message"].startswith("Row 2, column 'score': invalid input syntax for type numeric")
    assert await pg.fetchval("SELECT count(*) FROM acli_bulk") == 0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("argv", "file", "status", "error"), [
    (["export", "--tables", "acli_nowhere"], None, 404, "TABLE_NOT_FOUND"),
    (["export", "--format", "xml"], None, 400, "INVALID_INPUT"),
    (["export", "--row-limit", "-1"], None, 400, "INVALID_INPUT"),
    (["import", "{file}"], ("dump.sql", "SET search_path = auth;"), 403, "FORBIDDEN"),
    (["import", "{file}"], ("dump.sql", "BEGIN; CREATE TABLE acli_tx (); COMMIT;"), 400, "INVALID_INPUT"),
    (["import", "{file}"], ("dump.csv", "CREATE TABLE acli_csv ();"), 400, "INVALID_INPUT"),
    (["import", "/nonexistent/dump.sql"], None, 400, "INVALID_INPUT"),
    (["bulk-upsert", "--table", "acli_nowhere", "{file}"], ("x.json", '[{"id": 1}]'), 404, "TABLE_NOT_FOUND"),
    (["bulk-upsert", "--table", "acli_bulk", "--upsert-key", "nope", "{file}"],
     ("x.json", '[{"id": 1, "name": "a"}]'), 400, "INVALID_INPUT"),
])
async def test_failures_print_the_endpoints_error_body_and_exit_non_zero(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], pg: asyncpg.Connection, tmp_path: Path,
        argv: list[str], file: tuple[str, str] | None, status: int, error: str) -> None:
    await pg.execute(BULK_SQL)
    if file is not None:
        (tmp_path / file[0]).write_text(file[1])
        argv = [str(tmp_path / file[0]) if a == "{file}" else a for a in argv]
    failed = await gateway(capsys, *argv)
    assert failed.status == 1
    body = failed.error
    assert (body["statusCode"], body["error"]) == (status, error), body
    assert set(body) >= {"error", "message", "statusCode", "nextActions"}


async def test_an_unreachable_database_is_a_503_body(env: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("DATABASE_URL", "postgresql://nobody@/nowhere?host=/nonexistent-socket-dir")
    failed = await gateway(capsys, "export")
    assert failed.status == 1 and failed.error["statusCode"] == 503


# --------------------------------------------------------------------------- the embedded PostgreSQL


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # not tmp_path: as root, postgres runs as another OS user, and pytest's directories are private
    path = Path(tempfile.mkdtemp(prefix="gateway-admincli-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_without_database_url_the_embedded_postgres_is_started_and_stopped_around_each_command(
        env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
    env.delenv("DATABASE_URL")
    env.setenv("GATEWAY_DATA_DIR", str(data_dir))
    embedded.start(data_dir).stop()  # a data dir a gateway has run on: the commands never make a new one
    script = data_dir / "seed.sql"
    script.write_text("CREATE TABLE acli_embedded (id int PRIMARY KEY, note text);\n"
                      "INSERT INTO acli_embedded VALUES (1, 'kept across starts');\n")
    imported = await gateway(capsys, "import", str(script))
    assert imported.status == 0, imported.err
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()  # stopped again

    exported = await gateway(capsys, "export", "--tables", "acli_embedded")
    assert exported.status == 0, exported.err
    assert "('1', 'kept across starts')" in exported.out and exported.reached(1)
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
