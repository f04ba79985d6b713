"""reflect.load_catalog against a real PostgreSQL: what each kind of object becomes in the Catalog."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.catalog import Catalog, Function
from gateway.reflect import load_catalog

S, S2 = "reflect_t1", "reflect_t2"

DDL = f"""
drop schema if exists {S} cascade;
drop schema if exists {S2} cascade;
create schema {S};
create schema {S2};
set search_path = {S};

create type mood as enum ('sad', 'ok', 'happy');
create domain positive as integer check (value > 0);
create domain tags as text[];
create type pair as (x int, y text);

create table authors (
  id bigint generated always as identity primary key,
  email text not null unique,
  email_lower text generated always as (lower(email)) stored,
  name varchar(80),
  mood mood default 'ok',
  moods mood[],
  score positive,
  labels tags,
  flag boolean not null default false,
  small smallint, big bigint, ratio real, exact float8, price numeric(10,2), cash money,
  code char(3),
  ext_id uuid default gen_random_uuid(), meta jsonb, raw json,
  born date, wakes time, wakes_tz timetz, seen timestamp, seen_tz timestamptz default now(), age interval,
  avatar bytea, doc tsvector, span int4range, spot point, counts int[]
);
comment on table authors is 'people who write';
comment on column authors.email is 'login address';

create table groups (
  id serial primary key,
  owner text not null,
  slug text not null,
  name text,
  unique (owner, slug)
);
create unique index groups_name_key on groups (name);
create unique index groups_lower_slug on groups (lower(slug));
create unique index groups_partial on groups (owner) where name is null;

create table memberships (
  author_id bigint references authors,
  group_id int references groups,
  primary key (author_id, group_id)
);
create table profiles (author_id bigint primary key references authors, bio text);
create table "Odd, Names" ("the, id" int primary key, "Author Ref" bigint references authors (id),
                           "back, ref" int references "Odd, Names" ("the, id"));
create table {S2}.posts (id int primary key, author_id bigint not null references {S}.authors (id));

create index authors_lower_email on authors (lower(email), id);

create view author_names as select id, name from authors;
create view author_count as select count(*) as n from authors;
create materialized view author_ids as select id from authors;

create function add(a int, b int default 1) returns int language sql immutable as 'select a + b';
create function add(a text, b text) returns text language sql immutable as 'select a || b';
create function numbers(n int) returns setof int language sql stable as 'select generate_series(1, n)';
create function all_authors() returns setof authors language sql stable as 'select * from authors';
create function make_pair() returns pair language sql as $$select 1, 'a'$$;
create function touch() returns void language plpgsql as $$begin end$$;
create function stats() returns table (total bigint, label text) language sql stable
  as $$select 1::bigint, 'x'$$;
create function minmax(vals int[], out lo int, out hi int) language sql immutable
  as 'select min(v), max(v) from unnest(vals) v';
create function concat_all(variadic parts text[]) returns text language sql immutable
  as $$select array_to_string(parts, '')$$;
create function stamp() returns trigger language plpgsql as $$begin return new; end$$;
comment on function touch() is 'does nothing';
create aggregate my_sum(int) (sfunc = int4pl, stype = int);
create procedure tidy() language sql as 'select 1';

alter table authors enable row level security;
create policy "read all" on authors for select to public using (true);
create policy "own rows" on authors as restrictive for update to current_user
  using (email = current_user) with check (flag);

create trigger authors_audit after update or insert on authors for each row execute function stamp();
create trigger authors_before before update on authors for each row execute function stamp();
alter table authors disable trigger authors_before;
create trigger authors_truncate after truncate on authors for each statement execute function stamp();
create trigger names_insert instead of insert on author_names for each row execute function stamp();
"""


@pytest.fixture(scope="module")
async def catalog(pg_url: str) -> AsyncIterator[Catalog]:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(DDL)
        yield await load_catalog(pg_url, (S, S2), version=7)
    finally:
        await conn.execute(f"drop schema if exists {S} cascade; drop schema if exists {S2} cascade")
        await conn.close()


def only(functions: tuple[Function, ...]) -> Function:
    assert len(functions) == 1, functions
    return functions[0]


@pytest.mark.parametrize(("column", "rendering", "udt", "category", "is_array"), [
    ("id", "bigint", "int8", "bigint", False),
    ("email", "text", "text", "text", False),
    ("name", "character varying(80)", "varchar", "text", False),
    ("mood", f"{S}.mood", "mood", "enum", False),
    ("moods", f"{S}.mood[]", "mood", "enum", True),
    ("score", f"{S}.positive", "positive", "int", False),
    ("labels", f"{S}.tags", "tags", "text", True),
    ("flag", "boolean", "bool", "bool", False),
    ("small", "smallint", "int2", "int", False),
    ("big", "bigint", "int8", "bigint", False),
    ("ratio", "real", "float4", "float", False),
    ("exact", "double precision", "float8", "float", False),
    ("price", "numeric(10,2)", "numeric", "numeric", False),
    ("cash", "money", "money", "numeric", False),
    ("code", "character(3)", "bpchar", "text", False),
    ("ext_id", "uuid", "uuid", "uuid", False),
    ("meta", "jsonb", "jsonb", "json", False),
    ("raw", "json", "json", "json", False),
    ("born", "date", "date", "date", False),
    ("wakes", "time without time zone", "time", "time", False),
    ("wakes_tz", "time with time zone", "timetz", "time", False),
    ("seen", "timestamp without time zone", "timestamp", "timestamp", False),
    ("seen_tz", "timestamp with time zone", "timestamptz", "timestamptz", False),
    ("age", "interval", "interval", "interval", False),
    ("avatar", "bytea", "bytea", "bytea", False),
    ("doc", "tsvector", "tsvector", "tsvector", False),
    ("span", "int4range", "int4range", "range", False),
    ("spot", "point", "point", "other", False),
    ("counts", "integer[]", "int4", "int", True),
])
def test_a_column_gets_its_rendering_base_type_and_category(
        catalog: Catalog, column: str, rendering: str, udt: str, category: str, is_array: bool) -> None:
    table = catalog.table("authors", S)
    assert table is not None
    c = table.column(column)
    assert c is not None
    assert (c.type, c.udt, c.category, c.is_array) == (rendering, udt, category, is_array)


def test_enum_columns_carry_their_labels_in_declaration_order(catalog: Catalog) -> None:
    authors = catalog.tables[(S, "authors")]
    for name in ("mood", "moods"):
        assert authors.column_map[name].enum_values == ("sad", "ok", "happy")
    assert authors.column_map["email"].enum_values == ()


def test_identity_generated_defaults_and_nullability_are_reflected(catalog: Catalog) -> None:
    authors = catalog.tables[(S, "authors")]
    c = authors.column_map
    assert (c["id"].is_identity, c["id"].default, c["id"].nullable, c["id"].has_default) == (True, None, False, True)
    assert (c["email_lower"].is_generated, c["email_lower"].default) == (True, None)
    assert c["mood"].default == f"'ok'::{S}.mood"
    assert (c["flag"].default, c["flag"].nullable) == ("false", False)
    assert c["seen_tz"].default == "now()"
    assert (c["name"].default, c["name"].nullable, c["name"].has_default) == (None, True, False)
    assert catalog.tables[(S, "groups")].column_map["id"].default == f"nextval('{S}.groups_id_seq'::regclass)"
    assert [col.position for col in authors.columns[:3]] == [1, 2, 3]


def test_comments_on_tables_and_columns_are_kept(catalog: Catalog) -> None:
    authors = catalog.tables[(S, "authors")]
    assert authors.comment == "people who write"
    assert authors.column_map["email"].comment == "login address"
    assert authors.column_map["name"].comment is None


@pytest.mark.parametrize(("table", "primary_key", "unique"), [
    ("authors", ("id",), (("email",),)),
    ("groups", ("id",), (("owner", "slug"), ("name",))),  # expression and partial indexes are not keys
    ("memberships", ("author_id", "group_id"), ()),
    ("profiles", ("author_id",), ()),
    ("author_names", (), ()),
])
def test_primary_keys_and_unique_keys_come_from_constraints_and_unique_indexes(
        catalog: Catalog, table: str, primary_key: tuple[str, ...], unique: tuple[tuple[str, ...], ...]) -> None:
    t = catalog.tables[(S, table)]
    assert (t.primary_key, t.unique) == (primary_key, unique)


def test_foreign_keys_name_their_referenced_schema_table_and_columns(catalog: Catalog) -> None:
    fks = {fk.name: fk for fk in catalog.tables[(S, "memberships")].foreign_keys}
    assert set(fks) == {"memberships_author_id_fkey", "memberships_group_id_fkey"}
    fk = fks["memberships_group_id_fkey"]
    assert (fk.columns, fk.ref_schema, fk.ref_table, fk.ref_columns) == (("group_id",), S, "groups", ("id",))
    (cross,) = catalog.tables[(S2, "posts")].foreign_keys
    assert (cross.columns, cross.ref_schema, cross.ref_table) == (("author_id",), S, "authors")


def test_quoted_names_with_commas_and_spaces_survive_in_keys(catalog: Catalog) -> None:
    odd = catalog.tables[(S, "Odd, Names")]
    assert odd.primary_key == ("the, id",)
    assert {(fk.columns, fk.ref_table, fk.ref_columns) for fk in odd.foreign_keys} == {
        (("Author Ref",), "authors", ("id",)), (("back, ref",), "Odd, Names", ("the, id",))}


@pytest.mark.parametrize(("source", "target", "cardinality", "via"), [
    ((S, "memberships"), (S, "authors"), "m2o", None),
    ((S, "authors"), (S, "memberships"), "o2m", None),
    ((S, "authors"), (S2, "posts"), "o2m", None),
    ((S2, "posts"), (S, "authors"), "m2o", None),
    ((S, "profiles"), (S, "authors"), "o2o", None),
    ((S, "authors"), (S, "profiles"), "o2o", None),
    ((S, "authors"), (S, "groups"), "m2m", (S, "memberships")),
    ((S, "groups"), (S, "authors"), "m2m", (S, "memberships")),
])
def test_relationships_are_derived_in_both_directions(
        catalog: Catalog, source: tuple[str, str], target: tuple[str, str], cardinality: str,
        via: tuple[str, str] | None) -> None:
    found = [(r.cardinality, r.junction) for r in catalog.relationships_of(catalog.tables[source])
             if r.target == target]
    assert (cardinality, via) in found


@pytest.mark.parametrize(("name", "kind", "writable"), [
    ("authors", "table", (True, True, True)),
    ("author_names", "view", (True, True, True)),
    ("author_count", "view", (False, False, False)),
    ("author_ids", "materialized_view", (False, False, False)),
])
def test_relations_have_their_kind_and_writability(
        catalog: Catalog, name: str, kind: str, writable: tuple[bool, bool, bool]) -> None:
    t = catalog.tables[(S, name)]
    assert (t.kind, (t.insertable, t.updatable, t.deletable)) == (kind, writable)


def test_views_have_columns_and_rls_is_flagged_per_table(catalog: Catalog) -> None:
    assert [c.name for c in catalog.tables[(S, "author_names")].columns] == ["id", "name"]
    assert catalog.tables[(S, "author_count")].column_map["n"].category == "bigint"
    assert catalog.tables[(S, "authors")].rls_enabled
    assert not catalog.tables[(S, "groups")].rls_enabled


def test_only_the_listed_schemas_are_reflected(catalog: Catalog) -> None:
    assert {schema for schema, _ in catalog.tables} == {S, S2}
    assert {schema for schema, _ in catalog.functions} == {S}
    assert catalog.schemas == (S, S2) and catalog.default_schema == S and catalog.version == 7


@pytest.mark.parametrize(("name", "returns_set", "kind", "return_type", "udt", "category"), [
    ("numbers", True, "scalar", "SETOF integer", "int4", "int"),
    ("all_authors", True, "composite", f"SETOF {S}.authors", "authors", "other"),
    ("make_pair", False, "composite", f"{S}.pair", "pair", "other"),
    ("touch", False, "void", "void", "void", "other"),
    ("stats", True, "table", "TABLE(total bigint, label text)", "record", "other"),
    ("minmax", False, "composite", "record", "record", "other"),
    ("concat_all", False, "scalar", "text", "text", "text"),
])
def test_functions_report_their_return_shape(
        catalog: Catalog, name: str, returns_set: bool, kind: str, return_type: str, udt: str,
        category: str) -> None:
    f = only(catalog.function(name, S))
    assert (f.returns_set, f.return_kind, f.return_type, f.return_udt, f.return_category) == (
        returns_set, kind, return_type, udt, category)


@pytest.mark.parametrize(("name", "columns", "return_table"), [
    ("all_authors", ("id", "email", "email_lower"), (S, "authors")),
    ("make_pair", ("x", "y"), None),
    ("stats", ("total", "label"), None),
    ("minmax", ("lo", "hi"), None),
])
def test_row_returning_functions_list_their_columns(
        catalog: Catalog, name: str, columns: tuple[str, ...], return_table: tuple[str, str] | None) -> None:
    f = only(catalog.function(name, S))
    assert tuple(c.name for c in f.return_columns)[: len(columns)] == columns
    assert f.return_table == return_table


def test_overloads_share_a_name_and_defaults_belong_to_trailing_arguments(catalog: Catalog) -> None:
    overloads = catalog.function("add", S)
    shapes = {tuple((a.name, a.type, a.has_default) for a in f.args) for f in overloads}
    assert shapes == {(("a", "integer", False), ("b", "integer", True)), (("a", "text", False), ("b", "text", False))}
    ints = next(f for f in overloads if f.args[0].type == "integer")
    assert (ints.volatility, ints.language, ints.definition) == ("immutable", "sql", "select a + b")
    assert ints.arguments_text == "a integer, b integer DEFAULT 1"


@pytest.mark.parametrize(("name", "modes", "inputs"), [
    ("minmax", (("vals", "in"), ("lo", "out"), ("hi", "out")), ("vals",)),
    ("stats", (("total", "table"), ("label", "table")), ()),
    ("concat_all", (("parts", "variadic"),), ("parts",)),
    ("touch", (), ()),
])
def test_argument_modes_are_kept_and_input_args_filters_them(
        catalog: Catalog, name: str, modes: tuple[tuple[str, str], ...], inputs: tuple[str, ...]) -> None:
    f = only(catalog.function(name, S))
    assert tuple((a.name, a.mode) for a in f.args) == modes
    assert tuple(a.name for a in f.input_args) == inputs


def test_variadic_arguments_keep_their_array_type(catalog: Catalog) -> None:
    (arg,) = only(catalog.function("concat_all", S)).args
    assert (arg.type, arg.udt, arg.category) == ("text[]", "text", "text")


def test_volatility_language_and_comment_are_reflected(catalog: Catalog) -> None:
    touch = only(catalog.function("touch", S))
    assert (touch.volatility, touch.language, touch.comment) == ("volatile", "plpgsql", "does nothing")
    assert only(catalog.function("numbers", S)).volatility == "stable"


def test_aggregates_and_procedures_are_not_functions(catalog: Catalog) -> None:
    assert catalog.function("my_sum", S) == ()
    assert catalog.function("tidy", S) == ()


async def test_functions_that_belong_to_an_extension_are_left_out(pg: asyncpg.Connection, pg_url: str) -> None:
    schema = "reflect_ext"
    await pg.execute(f"""drop schema if exists {schema} cascade; create schema {schema};
        create function {schema}.member() returns int language sql as 'select 1';
        create function {schema}.own() returns int language sql as 'select 2';""")
    # plpgsql is always installed; adding our function to it makes it an extension member ('e' in pg_depend)
    await pg.execute(f"alter extension plpgsql add function {schema}.member()")
    try:
        cat = await load_catalog(pg_url, (schema,))
    finally:
        await pg.execute(f"alter extension plpgsql drop function {schema}.member()")
        await pg.execute(f"drop schema {schema} cascade")
    assert set(cat.functions) == {(schema, "own")}


@pytest.mark.parametrize(("name", "table", "columns", "unique", "primary"), [
    ("authors_pkey", "authors", ("id",), True, True),
    ("authors_email_key", "authors", ("email",), True, False),
    ("authors_lower_email", "authors", ("lower(email)", "id"), False, False),
    ("groups_lower_slug", "groups", ("lower(slug)",), True, False),
    ("memberships_pkey", "memberships", ("author_id", "group_id"), True, True),
])
def test_indexes_list_their_columns_in_index_order(
        catalog: Catalog, name: str, table: str, columns: tuple[str, ...], unique: bool, primary: bool) -> None:
    (ix,) = [i for i in catalog.indexes if i.name == name]
    assert (ix.schema, ix.table, ix.columns, ix.is_unique, ix.is_primary) == (S, table, columns, unique, primary)
    assert ix.definition.startswith(f"CREATE {'UNIQUE ' if unique else ''}INDEX {name} ON {S}.{table} USING btree")


async def test_policies_carry_command_roles_and_expressions(catalog: Catalog, pg: asyncpg.Connection) -> None:
    me = await pg.fetchval("select current_user")
    got = {p.name: (p.table, p.command, p.roles, p.using, p.with_check, p.permissive) for p in catalog.policies}
    assert got == {
        "read all": ("authors", "SELECT", ("public",), "true", None, True),
        "own rows": ("authors", "UPDATE", (me,), "(email = CURRENT_USER)", "flag", False),
    }


@pytest.mark.parametrize(("name", "table", "timing", "events", "enabled"), [
    ("authors_audit", "authors", "AFTER", ("INSERT", "UPDATE"), True),
    ("authors_before", "authors", "BEFORE", ("UPDATE",), False),
    ("authors_truncate", "authors", "AFTER", ("TRUNCATE",), True),
    ("names_insert", "author_names", "INSTEAD OF", ("INSERT",), True),
])
def test_triggers_merge_their_events_and_report_their_state(
        catalog: Catalog, name: str, table: str, timing: str, events: tuple[str, ...], enabled: bool) -> None:
    (t,) = [t for t in catalog.triggers if t.name == name]
    assert (t.schema, t.table, t.timing, t.events, t.function_name, t.enabled) == (
        S, table, timing, events, "stamp", enabled)
    assert t.definition.startswith(f"CREATE TRIGGER {name} ")


async def test_an_unknown_schema_gives_an_empty_catalog(pg_url: str) -> None:
    cat = await load_catalog(pg_url, ("reflect_no_such_schema",))
    assert (dict(cat.tables), dict(cat.functions), cat.indexes) == ({}, {}, ())


async def test_a_catalog_of_two_hundred_tables_loads(pg: asyncpg.Connection, pg_url: str) -> None:
    schema = "reflect_big"
    statements = [f"drop schema if exists {schema} cascade", f"create schema {schema}"]
    for i in range(200):
        refs = "".join(f", ref{j}_id int references {schema}.t{j}(id)" for j in {i - 1, i // 2} if 0 <= j < i)
        statements.append(f"""create table {schema}.t{i} (id serial primary key, name text not null,
            created_at timestamptz default now(), price numeric(10, 2), tags text[], data jsonb,
            flag boolean default false{refs})""")
        statements.append(f"create index t{i}_name on {schema}.t{i} (name)")
    await pg.execute(";\n".join(statements))
    try:
        started = time.perf_counter()
        cat = await load_catalog(pg_url, (schema,))
        print(f"\nload_catalog: 200 tables in {(time.perf_counter() - started) * 1000:.0f} ms")
    finally:
        await pg.execute(f"drop schema {schema} cascade")
    assert len(cat.tables) == 200
    assert len(cat.indexes) == 400
    assert len(cat.relationships_of(cat.tables[(schema, "t10")])) == 5  # m2o x2, o2m from t11, t20, t21
