"""The generated schema merged with a user's Strawberry module (gateway/graphql/merge.py, extend.py).

Over HTTP against the real database: the README's example module, fields that run generated
reads and SQL functions as the caller (RLS applies), name clashes at start-up and on reload,
reloads keeping the module's fields, and replaced schemas being freed.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import re
import textwrap
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import strawberry
from support import Running, app_with, run_sql, settings_for

from gateway.app import create_app
from gateway.graphql import extend, sbcompat

SCHEMA = "gql_merge"
README = Path(__file__).resolve().parent.parent / "README.md"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.posts (id int PRIMARY KEY, title text NOT NULL, owner uuid NOT NULL DEFAULT auth.uid());
ALTER TABLE {SCHEMA}.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY posts_mine ON {SCHEMA}.posts FOR ALL TO authenticated
    USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
CREATE FUNCTION {SCHEMA}.whoami() RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT coalesce(auth.uid()::text, 'nobody') || ' as ' || current_user $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO authenticated, project_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""

_names = itertools.count()


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path


def write_module(directory: Path, source: str) -> str:
    """``source`` as a module with a name of its own (modules are loaded once per name)."""
    name = f"gql_ext_{next(_names)}"
    (directory / f"{name}.py").write_text(textwrap.dedent(source))
    return name


def readme_example() -> str:
    text = README.read_text()
    found = re.search(r"<!-- graphql-extensions-example -->\n```python\n(.*?)```", text, re.S)
    assert found, "the README lost its extensions example"
    return found.group(1)


async def gql(gw: Running, query: str, headers: dict[str, str], status: int = 200) -> dict[str, Any]:
    r = await gw.client.post("/graphql", json={"query": query}, headers=headers)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


async def seed(gw: Running, pg_url: str) -> None:
    await run_sql(pg_url, f"""TRUNCATE {SCHEMA}.posts;
        INSERT INTO {SCHEMA}.posts VALUES (1, 'a1', '{gw.uid("alice")}'), (2, 'b1', '{gw.uid("bob")}'),
                                          (3, 'a2', '{gw.uid("alice")}'), (4, 'a3', '{gw.uid("alice")}')""")


async def test_the_readme_example_serves_hello_and_the_callers_posts_beside_the_generated_fields(
        pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, readme_example())
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        await seed(gw, pg_url)
        body = await gql(gw, "{ hello latest_posts(limit: 2) { id title } posts_count }", gw.user("alice"))
        assert body == {"data": {"hello": "hello alice@example.com",
                                 "latest_posts": [{"id": 4, "title": "a3"}, {"id": 3, "title": "a2"}],
                                 "posts_count": 3}}
        body = await gql(gw, "{ latest_posts { title } }", gw.user("bob"))
        assert body == {"data": {"latest_posts": [{"title": "b1"}]}}  # RLS: only bob's row
        body = await gql(gw, "{ hello }", gw.anon)
        assert body == {"data": {"hello": "hello anon"}}


async def test_the_served_schema_is_a_strawberry_schema_over_the_merged_schema(
        pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, readme_example())
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        served = gw.gateway.graphql_schema["authenticated"].schema
        schema = sbcompat.strawberry_of(served)
        assert isinstance(schema, strawberry.Schema)
        assert sbcompat.graphql_schema(schema) is served
        printed = str(schema)
        assert "latest_posts(limit: Int! = 3): [Posts!]!" in printed
        assert "posts_by_pk(id: Int!): Posts" in printed
        assert "_generated" not in printed  # the stand-in never reaches the served schema


async def test_a_hand_written_field_runs_an_sql_function_as_the_caller(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, """
        import strawberry
        from gateway.graphql.extend import run_generated

        @strawberry.type
        class Query:
            @strawberry.field
            async def me(self, info: strawberry.Info) -> str:
                return await run_generated(info, "whoami")
        """)
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        body = await gql(gw, "{ me }", gw.user("alice"))
        assert body == {"data": {"me": f"{gw.uid('alice')} as authenticated"}}
        body = await gql(gw, "{ me }", gw.anon)
        assert body == {"data": {"me": "nobody as anon"}}


async def start_error(pg_url: str, module: str) -> str:
    app = create_app(settings_for(pg_url, (SCHEMA,), graphql_extensions=module))
    with pytest.raises(extend.ExtensionError) as caught:
        async with app.router.lifespan_context(app):
            pass
    return str(caught.value)


async def test_a_root_field_defined_by_the_module_and_the_generated_schema_stops_start_up_naming_both(
        pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, """
        import strawberry

        @strawberry.type
        class Query:
            posts: str = "mine"
        """)
    await run_sql(pg_url, FIXTURE)
    message = await start_error(pg_url, name)
    assert message == (f"Query.posts is defined twice: by the extensions module {name} and by the generated "
                       f"schema (table {SCHEMA}.posts)")


async def test_a_strawberry_type_named_like_a_generated_type_stops_start_up(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, """
        import strawberry

        @strawberry.type
        class Posts:
            x: int

        @strawberry.type
        class Query:
            @strawberry.field
            def one(self) -> Posts:
                return Posts(x=1)
        """)
    await run_sql(pg_url, FIXTURE)
    message = await start_error(pg_url, name)
    assert f"type Posts is defined twice: by the extensions module {name}" in message


async def test_a_module_that_cannot_be_imported_stops_start_up_with_its_name(pg_url: str) -> None:
    await run_sql(pg_url, FIXTURE)
    message = await start_error(pg_url, "no_such_module_for_the_gateway")
    assert message.startswith("GATEWAY_GRAPHQL_EXTENSIONS=no_such_module_for_the_gateway: cannot import it")


async def test_a_reload_keeps_the_module_fields_and_adds_the_new_table(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, readme_example())
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        await run_sql(pg_url, f"CREATE TABLE {SCHEMA}.tags (id int PRIMARY KEY, label text);"
                              f"GRANT SELECT ON {SCHEMA}.tags TO authenticated")
        await gw.gateway.reload_catalog()
        body = await gql(gw, "{ hello tags { id } }", gw.user("alice"))
        assert body == {"data": {"hello": "hello alice@example.com", "tags": []}}


async def test_a_reload_that_would_clash_keeps_the_previous_schema(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, readme_example())
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        before = gw.gateway.catalogs.get()
        await run_sql(pg_url, f"CREATE TABLE {SCHEMA}.hello (id int PRIMARY KEY); "
                              f"GRANT SELECT ON {SCHEMA}.hello TO authenticated")
        try:
            with pytest.raises(extend.ExtensionError, match=rf"Query.hello is defined twice.*table {SCHEMA}.hello"):
                await gw.gateway.reload_catalog()
            assert gw.gateway.catalogs.get() is before  # REST keeps the previous catalog too
            assert all(s.catalog is before for s in gw.gateway.graphql_schema.values())
            body = await gql(gw, "{ hello }", gw.user("alice"))
            assert body == {"data": {"hello": "hello alice@example.com"}}
        finally:
            await run_sql(pg_url, f"DROP TABLE {SCHEMA}.hello")


async def test_a_field_whose_generated_type_is_missing_is_left_out(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, """
        from __future__ import annotations
        import strawberry
        from gateway.graphql.extend import Generated

        Ghosts = Generated("Ghosts")

        @strawberry.type
        class Query:
            @strawberry.field
            def ghosts(self) -> list[Ghosts]:
                return []

            @strawberry.field
            def still_here(self) -> int:
                return 1
        """)
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        fields = gw.gateway.graphql_schema["authenticated"].schema.query_type.fields
        assert "still_here" in fields and "ghosts" not in fields


async def test_a_swap_leaves_no_replaced_schema_in_strawberry_caches(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, readme_example())
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        await gql(gw, "{ hello }", gw.user("alice"))
        old = sbcompat.strawberry_of(gw.gateway.graphql_schema["authenticated"].schema)
        assert old is not None
        old.get_type_by_name("Query")  # an lru_cache entry keyed by the schema object
        cache = strawberry.Schema.get_type_by_name.cache_info  # type: ignore[attr-defined]
        assert cache().currsize > 0
        await gw.gateway.reload_catalog()
        assert cache().currsize == 0


def test_the_graphql_extensions_flag_of_serve_reaches_the_workers(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import cli, settings

    monkeypatch.setenv("GATEWAY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GATEWAY_GRAPHQL_EXTENSIONS", raising=False)
    args = cli.parser().parse_args(["serve", "--graphql-extensions", "myapi"])
    resolved = cli.resolved_settings(graphql_extensions=args.graphql_extensions)
    assert resolved.graphql_extensions == "myapi"
    assert settings.load(cli.worker_environment(resolved)).graphql_extensions == "myapi"


async def test_a_graphql_request_during_a_reload_waits_for_the_new_schema(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, readme_example())
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        await run_sql(pg_url, f"CREATE TABLE {SCHEMA}.labels (id int PRIMARY KEY); "
                              f"GRANT SELECT ON {SCHEMA}.labels TO authenticated")
        try:
            reload = asyncio.create_task(gw.gateway.reload_catalog())
            await asyncio.sleep(0)  # the reload is under way
            body = await gql(gw, "{ hello }", gw.user("alice"))
            await reload
            assert body == {"data": {"hello": "hello alice@example.com"}}
            assert await gql(gw, "{ labels { id } }", gw.user("alice")) == {"data": {"labels": []}}
        finally:
            await run_sql(pg_url, f"DROP TABLE {SCHEMA}.labels")


class Cycle:
    """Garbage that only the cyclic collector frees, like an old snapshot's GraphQL types."""

    def __init__(self) -> None:
        self.me = self


async def test_what_a_reload_freezes_is_collected_by_the_next_reload(pg_url: str, module_dir: Path) -> None:
    name = write_module(module_dir, readme_example())
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_extensions=name) as gw:
        cycle = Cycle()
        gone = weakref.ref(cycle)
        await gw.gateway.reload_catalog()  # freezes everything alive, the cycle included
        assert gc.get_freeze_count() > 0
        del cycle
        gc.collect()
        assert gone() is not None  # frozen: out of the collector's sight, as the current snapshot is
        await gw.gateway.reload_catalog()  # unfreezes and collects before building
        assert gone() is None
        assert (await gql(gw, "{ hello }", gw.user("alice")))["data"] == {"hello": "hello alice@example.com"}
