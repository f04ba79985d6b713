"""Each role is shown only what it holds privileges on (gateway/grants.py, catalog.py, graphql/schema.py, openapi.py).

Over HTTP against the real database: the GraphQL schema (introspection) and the OpenAPI
document that anon, a signed-in user and the admin get for one schema whose tables,
columns and functions carry different grants; a hidden name is refused as unknown; and a
GRANT shows up after the reload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from support import Running, app_with

from gateway import openapi
from gateway.catalog import Catalog, Column, ForeignKey, Table
from gateway.graphql.roles import build_schemas
from gateway.identity import ROLES
from gateway.reflect import load_catalog
from gateway.settings import Settings

SCHEMA = "vis"
FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.open_t (id int PRIMARY KEY, title text);
CREATE TABLE {SCHEMA}.members_t (id int PRIMARY KEY, open_id int REFERENCES {SCHEMA}.open_t(id), note text);
CREATE TABLE {SCHEMA}.secret_t (id int PRIMARY KEY, token text);
CREATE TABLE {SCHEMA}.partial_t (id int PRIMARY KEY, name text, salary numeric);
CREATE FUNCTION {SCHEMA}.open_fn() RETURNS int LANGUAGE sql STABLE AS 'select 1';
CREATE FUNCTION {SCHEMA}.members_fn() RETURNS int LANGUAGE sql STABLE AS 'select 2';
CREATE FUNCTION {SCHEMA}.secret_fn() RETURNS int LANGUAGE sql STABLE AS 'select 3';
REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM PUBLIC, anon, authenticated, project_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {SCHEMA} FROM PUBLIC, anon, authenticated, project_admin;
GRANT SELECT ON {SCHEMA}.open_t TO anon;
GRANT SELECT, INSERT, UPDATE, DELETE ON {SCHEMA}.open_t, {SCHEMA}.members_t TO authenticated, project_admin;
GRANT SELECT (id, name), UPDATE (name) ON {SCHEMA}.partial_t TO authenticated;
GRANT SELECT ON {SCHEMA}.partial_t TO project_admin;
GRANT EXECUTE ON FUNCTION {SCHEMA}.open_fn() TO anon, authenticated, project_admin;
GRANT EXECUTE ON FUNCTION {SCHEMA}.members_fn() TO authenticated, project_admin;
"""
TEARDOWN = f"DROP SCHEMA {SCHEMA} CASCADE"

INTROSPECT = """{ __schema { queryType { fields { name } } mutationType { fields { name } } }
  partial: __type(name: "PartialT") { fields { name } }  open: __type(name: "OpenT") { fields { name } } }"""

# role -> (tables and functions on Query, (verb, table) on Mutation, PartialT fields or None when absent)
WRITES = {(verb, table) for verb in ("insert", "update", "delete") for table in ("open_t", "members_t")}
EXPECTED: dict[str, tuple[set[str], set[tuple[str, str]], set[str] | None]] = {
    "anon": ({"open_t", "open_fn"}, set(), None),
    "authenticated": ({"open_t", "members_t", "partial_t", "open_fn", "members_fn"},
                      WRITES | {("update", "partial_t")}, {"id", "name"}),
    "project_admin": ({"open_t", "members_t", "partial_t", "open_fn", "members_fn"}, WRITES,
                      {"id", "name", "salary"}),
}
VERBS = ("insert_", "update_", "delete_")
SUFFIXES = ("_count", "_by_pk", "_connection", "_one", "_aggregate", "_groups")
ADMIN_FIELDS = {"admin", "migrate"}


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), teardown_sql=TEARDOWN) as running:
        yield running


def headers_for(gw: Running, role: str) -> dict[str, str]:
    return {"anon": gw.anon, "authenticated": gw.user(), "project_admin": gw.admin}[role]


async def introspect(gw: Running, role: str) -> dict[str, Any]:
    r = await gw.client.post("/graphql", json={"query": INTROSPECT}, headers=headers_for(gw, role))
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def names(fields: list[dict[str, str]] | None) -> set[str]:
    return {f["name"] for f in fields or ()}


def base(name: str) -> str:
    """The table or function a root field serves: ``open_t_count`` -> ``open_t``."""
    for suffix in SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def queried(fields: list[dict[str, str]]) -> set[str]:
    return {base(n) for n in names(fields) - ADMIN_FIELDS}


def written(fields: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(n.split("_", 1)[0], base(n.split("_", 1)[1])) for n in names(fields) - ADMIN_FIELDS
            if n.startswith(VERBS)}


@pytest.mark.parametrize("role", ROLES)
async def test_the_graphql_schema_shows_a_role_only_what_it_holds_privileges_on(gw: Running, role: str) -> None:
    data = await introspect(gw, role)
    query, mutation, partial = EXPECTED[role]
    assert queried(data["__schema"]["queryType"]["fields"]) == query
    assert written(data["__schema"]["mutationType"]["fields"]) == mutation
    assert (names(data["partial"]["fields"]) if data["partial"] else None) == partial


async def test_a_relation_to_a_hidden_table_is_not_in_the_schema(gw: Running) -> None:
    anon = await introspect(gw, "anon")
    user = await introspect(gw, "authenticated")
    assert "members_t" not in names(anon["open"]["fields"])  # the reverse relation: anon cannot read members_t
    assert "members_t" in names(user["open"]["fields"])


@pytest.mark.parametrize(("role", "query"), [
    ("anon", "{ members_t { id } }"), ("anon", "{ secret_t { id } }"), ("authenticated", "{ secret_t { id } }"),
    ("authenticated", "{ partial_t { salary } }"), ("anon", "{ members_fn }"),
    ("anon", 'mutation { insert_open_t(objects: [{id: 9}]) { id } }'),
])
async def test_a_hidden_name_is_refused_as_unknown_without_touching_the_database(
        gw: Running, role: str, query: str) -> None:
    r = await gw.client.post("/graphql", json={"query": query}, headers=headers_for(gw, role))
    assert r.status_code == 400, r.text
    assert "Cannot query field" in r.json()["errors"][0]["message"]


async def test_every_role_schema_is_built_with_the_catalog_on_reload(gw: Running) -> None:
    await gw.gateway.reload_catalog()
    stored = gw.gateway.graphql_schema
    assert set(stored) == set(ROLES)
    assert all(s.catalog is gw.gateway.catalogs.get() for s in stored.values())


async def openapi_doc(gw: Running, role: str) -> dict[str, Any]:
    r = await gw.client.get(openapi.PATH, headers=headers_for(gw, role))
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


@pytest.mark.parametrize("role", ROLES)
async def test_the_openapi_document_shows_a_role_only_what_it_holds_privileges_on(gw: Running, role: str) -> None:
    doc = await openapi_doc(gw, role)
    query, _, partial = EXPECTED[role]
    paths = {p.rsplit("/", 1)[1] for p in doc["paths"] if p.startswith(("/api/database/records/",
                                                                         "/api/database/rpc/"))}
    assert paths == query
    assert set(doc["paths"]["/api/database/records/open_t"]) - {"parameters"} == (
        {"get"} if role == "anon" else {"get", "post", "patch", "delete"})
    components = doc["components"]["schemas"]
    partial_schema = components.get(f"{SCHEMA}.partial_t")
    assert (set(partial_schema["properties"]) if partial_schema else None) == partial


async def test_a_grant_shows_the_table_after_the_reload(gw: Running, pg: asyncpg.Connection) -> None:
    await pg.execute(f"GRANT SELECT ON {SCHEMA}.members_t TO anon")
    try:
        await gw.gateway.reload_catalog()
        assert "members_t" in names((await introspect(gw, "anon"))["__schema"]["queryType"]["fields"])
        assert "/api/database/records/members_t" in (await openapi_doc(gw, "anon"))["paths"]
    finally:
        await pg.execute(f"REVOKE SELECT ON {SCHEMA}.members_t FROM anon")
        await gw.gateway.reload_catalog()
    assert "members_t" not in names((await introspect(gw, "anon"))["__schema"]["queryType"]["fields"])


# --------------------------------------------------------------------------- the catalog view, without a database

def grants(*pairs: str) -> frozenset[tuple[str, str]]:
    return frozenset(tuple(p.split(":")) for p in pairs)  # type: ignore[misc]


def test_roles_that_see_the_same_objects_share_one_schema_and_the_others_get_their_own() -> None:
    everyone = grants("anon:SELECT", "authenticated:SELECT", "project_admin:SELECT")
    parent = Table("public", "parent", "table", (Column("id", "int4", "int4", "int", privileges=everyone),),
                   primary_key=("id",), privileges=everyone)
    hidden_fk = Column("parent_id", "int4", "int4", "int", privileges=grants("authenticated:SELECT",
                                                                            "project_admin:SELECT"))
    child = Table("public", "child", "table", (Column("id", "int4", "int4", "int", privileges=everyone), hidden_fk),
                  primary_key=("id",), privileges=everyone,
                  foreign_keys=(ForeignKey("child_parent_fkey", ("parent_id",), "public", "parent", ("id",)),))
    catalog = Catalog(("public",), {parent.key: parent, child.key: child}, {})
    anon_view = catalog.visible_to("anon")
    assert [c.name for c in anon_view.tables[child.key].columns] == ["id"]
    assert anon_view.tables[child.key].foreign_keys == () and anon_view.relationships[child.key] == ()
    assert not anon_view.tables[child.key].insertable  # SELECT only
    schemas = build_schemas(catalog, Settings())
    assert schemas["authenticated"] is schemas["project_admin"]
    assert schemas["anon"] is not schemas["authenticated"]
    assert "parent" not in schemas["anon"].schema.type_map["Child"].fields  # type: ignore[union-attr]
    assert "parent" in schemas["authenticated"].schema.type_map["Child"].fields  # type: ignore[union-attr]


async def test_reflection_records_each_roles_privileges_as_postgresql_reports_them(gw: Running, pg_url: str) -> None:
    catalog = await load_catalog(pg_url, (SCHEMA,))
    tables = {t.name: t for t in catalog.tables.values()}
    assert tables["open_t"].privileges == grants(
        "anon:SELECT", *(f"{r}:{p}" for r in ("authenticated", "project_admin")
                         for p in ("SELECT", "INSERT", "UPDATE", "DELETE")))
    assert tables["secret_t"].privileges == frozenset()
    assert tables["partial_t"].privileges == grants("project_admin:SELECT")  # column grants are not table grants
    partial = {c.name: c.privileges for c in tables["partial_t"].columns}
    assert partial == {"id": grants("authenticated:SELECT", "project_admin:SELECT"),
                       "name": grants("authenticated:SELECT", "authenticated:UPDATE", "project_admin:SELECT"),
                       "salary": grants("project_admin:SELECT")}
    executes = {k[1]: fs[0].privileges for k, fs in catalog.functions.items()}
    assert executes == {"open_fn": grants("anon:EXECUTE", "authenticated:EXECUTE", "project_admin:EXECUTE"),
                        "members_fn": grants("authenticated:EXECUTE", "project_admin:EXECUTE"),
                        "secret_fn": frozenset()}


async def test_without_usage_on_the_schema_a_role_holds_nothing_in_it(gw: Running, pg: asyncpg.Connection,
                                                                      pg_url: str) -> None:
    await pg.execute(f"REVOKE USAGE ON SCHEMA {SCHEMA} FROM anon")
    try:
        catalog = await load_catalog(pg_url, (SCHEMA,))
    finally:
        await pg.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO anon")
    assert catalog.visible_to("anon").tables == {} and catalog.visible_to("anon").functions == {}
    assert catalog.visible_to("authenticated").tables
