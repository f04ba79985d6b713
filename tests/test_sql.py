"""The SQL builder (the gateway.sql package: reads, expressions, writes): plans compiled with the postgresql dialect.

No database: the main statement shapes are compared with their full SQL text, and the
builder's promises are checked directly: one compilation per shape, values only in
parameters, identifiers quoted, one operator table.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway import plan, sql
from gateway import request as rq
from gateway.catalog import Catalog, Column, ForeignKey, Function, FunctionArg, Table
from gateway.plan.nodes import ColExpr, P, Pred, ReadPlan, Rel
from gateway.settings import Settings
from gateway.sql.expr import DIALECT, OPERATORS, predicate

INT = ("integer", "int4", "int")
TEXT = ("text", "text", "text")


def col(name: str, type_: tuple[str, str, str] = INT, **kw: Any) -> Column:
    return Column(name, type_[0], type_[1], type_[2], **kw)  # type: ignore[arg-type]


TABLES = [
    Table("public", "clients", "table", (col("id"), col("name", TEXT)), primary_key=("id",)),
    Table("public", "projects", "table", (col("id"), col("name", TEXT), col("client_id")), primary_key=("id",),
          foreign_keys=(ForeignKey("projects_client_id_fkey", ("client_id",), "public", "clients", ("id",)),)),
    Table("public", "tasks", "table", (col("id"), col("project_id")), primary_key=("id",),
          foreign_keys=(ForeignKey("tasks_project_id_fkey", ("project_id",), "public", "projects", ("id",)),)),
    Table("public", "users", "table", (col("id"), col("name", TEXT)), primary_key=("id",)),
    Table("public", "users_tasks", "table", (col("user_id"), col("task_id")), primary_key=("user_id", "task_id"),
          foreign_keys=(ForeignKey("ut_user", ("user_id",), "public", "users", ("id",)),
                        ForeignKey("ut_task", ("task_id",), "public", "tasks", ("id",)))),
    Table("my schema", "Odd Table", "table", (col("createdAt"), col('we"ird', TEXT), col("select")),
          primary_key=("createdAt",)),
]
FUNCTIONS = {
    ("public", "add_them"): (Function("public", "add_them", 1, (FunctionArg("a", *INT), FunctionArg("b", *INT)),  # type: ignore[arg-type]
                                      "integer", False, "scalar", "int4"),),
    ("public", "get_projects"): (Function("public", "get_projects", 2, (FunctionArg("cid", *INT),),  # type: ignore[arg-type]
                                          "SETOF projects", True, "composite", "projects",
                                          return_table=("public", "projects")),),
}
CATALOG = Catalog(("public", "my schema"), {t.key: t for t in TABLES}, FUNCTIONS)
SETTINGS = Settings()


def compiled(req: rq.Request) -> tuple[str, tuple[Any, ...]]:
    stmt = sql.statement(plan.plan(req, CATALOG, SETTINGS))
    return " ".join(stmt.sql.split()), stmt.params


def f(name: str, op: str, value: Any, **kw: Any) -> rq.Filter:
    return rq.Filter(rq.FieldRef(name), op, value, **kw)  # type: ignore[arg-type]


def cols(*names: str) -> tuple[rq.SelectItem, ...]:
    return tuple(rq.SelectColumn(rq.FieldRef(n)) for n in names)


PAGE_TOTAL = ("SELECT CASE WHEN (count(*) < CAST($1 AS bigint) AND (count(*) > 0 OR CAST($2 AS bigint) = 0)) "
              "THEN CAST($2 AS bigint) + count(*) ELSE (SELECT count(*) AS count_1 FROM public.{table} AS t0{where}) "
              "END AS total, count(*) AS page_rows, ")
JSON_BODY = "CAST(coalesce(json_agg(pgrst_source), '[]'::json) AS text) AS body, CAST(NULL AS bigint) AS inserted "

SHAPES: list[tuple[str, rq.Request, str, tuple[Any, ...]]] = [
    ("a filtered read",
     rq.Read(rq.Target("projects"), select=cols("id", "name"), where=(f("name", "eq", "x"), f("id", "in", ("1", "2"))),
             order=(rq.Order(rq.FieldRef("id"), "desc", "last"),), limit=10, offset=5),
     PAGE_TOTAL.format(table="projects", where=' WHERE t0."name" = CAST($3 AS text) AND t0."id" = ANY '
                       '(CAST(CAST($4 AS text[]) AS integer[]))') + JSON_BODY
     + 'FROM (SELECT t0."id" AS id, t0."name" AS name FROM public.projects AS t0 WHERE t0."name" = CAST($3 AS text) '
       'AND t0."id" = ANY (CAST(CAST($4 AS text[]) AS integer[])) ORDER BY t0."id" DESC NULLS LAST '
       'LIMIT 10 OFFSET 5) AS pgrst_source',
     (10, 5, "x", ["1", "2"])),
    ("an embed of each cardinality",
     rq.Read(rq.Target("projects"), select=(*cols("id"), rq.SelectEmbed("clients", cols("name")),
                                           rq.SelectEmbed("tasks", cols("id")))),
     PAGE_TOTAL.format(table="projects", where="") + JSON_BODY
     + 'FROM (SELECT t0."id" AS id, e2.obj AS clients, coalesce(e4.arr, \'[]\'::json) AS tasks '
       'FROM (SELECT t0.* FROM public.projects AS t0 LIMIT 100 OFFSET 0) AS t0 '
       'LEFT OUTER JOIN LATERAL (SELECT row_to_json(pgrst_r) AS obj FROM (SELECT t1."name" AS name '
       'FROM public.clients AS t1 WHERE t1."id" = t0."client_id") AS pgrst_r LIMIT 1) AS e2 ON true '
       'LEFT OUTER JOIN LATERAL (SELECT json_agg(pgrst_r) AS arr FROM (SELECT t3."id" AS id FROM public.tasks AS t3 '
       'WHERE t3."project_id" = t0."id") AS pgrst_r) AS e4 ON true) AS pgrst_source',
     (100, 0)),
    ("a many-to-many embed",
     rq.Read(rq.Target("tasks"), select=(*cols("id"), rq.SelectEmbed("users", cols("name")))),
     PAGE_TOTAL.format(table="tasks", where="") + JSON_BODY
     + 'FROM (SELECT t0."id" AS id, coalesce(e3.arr, \'[]\'::json) AS users FROM (SELECT t0.* FROM public.tasks AS t0 '
       'LIMIT 100 OFFSET 0) AS t0 LEFT OUTER JOIN LATERAL (SELECT json_agg(pgrst_r) '
       'AS arr FROM (SELECT t1."name" AS name FROM public.users AS t1 JOIN public.users_tasks AS j2 '
       'ON j2."user_id" = t1."id" WHERE j2."task_id" = t0."id") AS pgrst_r) AS e3 ON true) AS pgrst_source',
     (100, 0)),
    ("a counted HEAD",
     rq.Read(rq.Target("projects"), select=cols("id"), where=(f("client_id", "eq", "1"),), count="exact", head=True),
     PAGE_TOTAL.format(table="projects", where=' WHERE t0."client_id" = CAST(CAST($3 AS text) AS integer)')
     + "CAST(NULL AS text) AS body, CAST(NULL AS bigint) AS inserted "
       'FROM (SELECT t0."id" AS id FROM public.projects AS t0 WHERE t0."client_id" = CAST(CAST($3 AS text) AS integer) '
       "LIMIT 100 OFFSET 0) AS pgrst_source",
     (100, 0, "1")),
    ("an insert returning rows",
     rq.Insert(rq.Target("projects"), ({"id": 1, "name": "x"},), returning=cols("id")),
     "WITH pgrst_written AS (INSERT INTO public.projects (id, name) SELECT pgrst_body.id AS id, pgrst_body.name "
     'AS name FROM json_populate_recordset(NULL::"public"."projects", CAST($1 AS json)) AS pgrst_body RETURNING *) '
     "SELECT CAST(NULL AS bigint) AS total, count(*) AS page_rows, " + JSON_BODY
     + 'FROM (SELECT t0."id" AS id FROM pgrst_written AS t0) AS pgrst_source',
     ('[{"id":1,"name":"x"}]',)),
    ("an upsert",
     rq.Insert(rq.Target("projects"), ({"id": 1, "name": "x"},), resolution="merge-duplicates", return_rows=False),
     "WITH pgrst_written AS (INSERT INTO public.projects (id, name) SELECT pgrst_body.id AS id, pgrst_body.name "
     'AS name FROM json_populate_recordset(NULL::"public"."projects", CAST($1 AS json)) AS pgrst_body '
     'ON CONFLICT (id) DO UPDATE SET name = excluded."name" RETURNING *, (xmax = 0) AS pgrst_inserted) '
     "SELECT CAST(NULL AS bigint) AS total, count(*) AS page_rows, CAST(NULL AS text) AS body, "
     "(SELECT count(*) AS count_1 FROM pgrst_written WHERE pgrst_inserted) AS inserted "
     "FROM (SELECT 1 AS one FROM pgrst_written) AS pgrst_source",
     ('[{"id":1,"name":"x"}]',)),
    ("an update",
     rq.Update(rq.Target("projects"), {"name": "y"}, where=(f("id", "eq", "1"),), return_rows=False),
     "WITH pgrst_written AS (UPDATE public.projects AS t0 SET name=pgrst_body.name FROM "
     'json_populate_record(NULL::"public"."projects", CAST($1 AS json)) AS pgrst_body '
     'WHERE t0."id" = CAST(CAST($2 AS text) AS integer) RETURNING t0.*) '
     "SELECT CAST(NULL AS bigint) AS total, count(*) AS page_rows, CAST(NULL AS text) AS body, "
     "CAST(NULL AS bigint) AS inserted FROM (SELECT 1 AS one FROM pgrst_written) AS pgrst_source",
     ('{"name":"y"}', "1")),
    ("a delete returning rows",
     rq.Delete(rq.Target("projects"), where=(f("id", "eq", "1"),), returning=cols("id")),
     'WITH pgrst_written AS (DELETE FROM public.projects AS t0 WHERE t0."id" = CAST(CAST($1 AS text) AS integer) '
     "RETURNING t0.*) SELECT CAST(NULL AS bigint) AS total, count(*) AS page_rows, " + JSON_BODY
     + 'FROM (SELECT t0."id" AS id FROM pgrst_written AS t0) AS pgrst_source',
     ("1",)),
    ("a scalar RPC call",
     rq.Call(rq.Target("add_them"), {"a": 1, "b": 2}, read_only=False),
     "SELECT CAST(NULL AS bigint) AS total, count(*) AS page_rows, min(CAST(to_json(pgrst_one.pgrst_value) AS text)) "
     'AS body, CAST(NULL AS bigint) AS inserted FROM (SELECT public."add_them"("a" := pgrst_args."a", '
     '"b" := pgrst_args."b") AS pgrst_value FROM json_to_record(CAST($1 AS json)) AS pgrst_args(a integer, b integer)'
     ") AS pgrst_one",
     ('{"a":1,"b":2}',)),
    ("a row-returning RPC call with a filter",
     rq.Call(rq.Target("get_projects"), {"cid": 1}, read_only=True, select=cols("name"),
             where=(f("id", "gt", "1"),)),
     "WITH pgrst_called AS (SELECT pgrst_call.* FROM json_to_record(CAST($1 AS json)) AS pgrst_args(cid integer), "
     'LATERAL public."get_projects"("cid" := pgrst_args."cid") AS pgrst_call) '
     "SELECT CAST(NULL AS bigint) AS total, count(*) AS page_rows, " + JSON_BODY
     + 'FROM (SELECT t0."name" AS name FROM pgrst_called AS t0 WHERE t0."id" > CAST(CAST($2 AS text) AS integer) '
       "LIMIT ALL OFFSET 0) AS pgrst_source",
     ('{"cid":1}', "1")),
]


@pytest.mark.parametrize(("name", "req", "expected", "params"), SHAPES, ids=[s[0] for s in SHAPES])
def test_each_main_shape_compiles_to_its_statement(name: str, req: rq.Request, expected: str,
                                                   params: tuple[Any, ...]) -> None:
    text, values = compiled(req)
    assert text == expected
    assert values == params


def test_the_same_shape_is_compiled_once() -> None:
    sql.compile_shape.cache_clear()
    first = plan.plan(rq.Read(rq.Target("projects"), where=(f("name", "eq", "a"),), limit=3), CATALOG, SETTINGS)
    second = plan.plan(rq.Read(rq.Target("projects"), where=(f("name", "eq", "b"),), limit=3), CATALOG, SETTINGS)
    assert sql.compile_shape(first.shape) is sql.compile_shape(second.shape)
    info = sql.compile_shape.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    assert sql.statement(first).params != sql.statement(second).params


MARKER = "zz'; drop table x; --"

VALUE_REQUESTS: list[rq.Request] = [
    rq.Read(rq.Target("projects"), where=(f("name", "eq", MARKER), f("name", "like", MARKER),
                                          f("name", "in", (MARKER, "b")), f("name", "fts", MARKER, language=MARKER),
                                          f("name", "eq", (MARKER,), modifier="any"),
                                          rq.BoolExpr("or", (f("name", "neq", MARKER), f("name", "imatch", MARKER)))),
            limit=987, offset=654),
    rq.Read(rq.Target("projects"), select=(rq.SelectColumn(rq.FieldRef("name", (rq.JsonStep(MARKER, True),)),
                                                           alias="key"),),
            order=(rq.Order(rq.FieldRef("name", (rq.JsonStep(MARKER, False),))),)),
    rq.Read(rq.Target("projects"), select=(rq.SelectEmbed("tasks", cols("id"), where=(f("id", "eq", "987"),),
                                                          limit=987, offset=654),)),
    rq.Insert(rq.Target("projects"), ({"id": 987, "name": MARKER},), resolution="merge-duplicates"),
    rq.Insert(rq.Target("projects"), ({"name": MARKER},), columns=("id", "name"), missing_default=True),
    rq.Update(rq.Target("projects"), {"name": MARKER}, where=(f("name", "eq", MARKER),)),
    rq.Delete(rq.Target("projects"), where=(f("name", "isdistinct", MARKER),)),
    rq.Call(rq.Target("add_them"), {"a": 987, "b": 654}, read_only=True),
]


def test_a_page_is_written_into_the_statement_as_validated_integers() -> None:
    """So that one prepared plan fits it: PostgreSQL cannot plan "LIMIT $1" for ten rows."""
    text, _ = compiled(rq.Read(rq.Target("projects"), select=(*cols("id"), rq.SelectEmbed("tasks", cols("id"), limit=3,
                                                                                          offset=2)),
                               limit=10, offset=20))
    assert "LIMIT 10 OFFSET 20" in text and "LIMIT 3 OFFSET 2" in text
    sql.compile_shape.cache_clear()
    ten, twenty = (plan.plan(rq.Read(rq.Target("projects"), limit=n), CATALOG, SETTINGS) for n in (10, 20))
    assert sql.compile_shape(ten.shape) is not sql.compile_shape(twenty.shape)


@pytest.mark.parametrize("req", VALUE_REQUESTS)
def test_values_reach_the_database_only_as_parameters(req: rq.Request) -> None:
    """Filter values, JSON keys, languages, bodies and arguments; output names (aliases, a JSON
    path's last key) are identifiers and are quoted instead; a page's integers alone are written."""
    text, values = compiled(req)
    text = re.sub(r"LIMIT \d+ OFFSET \d+|LIMIT \d+|OFFSET \d+", "", text)
    assert "zz" not in text and "987" not in text and "654" not in text
    assert any(MARKER in str(v) or "987" in str(v) for v in values)
    assert max(int(n) for n in re.findall(r"\$(\d+)", text)) == len(values)


def test_identifiers_are_quoted_by_the_preparer() -> None:
    req = rq.Insert(rq.Target("Odd Table", "my schema"), ({"createdAt": 1, 'we"ird': "x", "select": 2},),
                    returning=cols("createdAt", 'we"ird', "select"))
    text, _ = compiled(req)
    assert 'INSERT INTO "my schema"."Odd Table" ("createdAt", "we""ird", "select")' in text
    assert 'NULL::"my schema"."Odd Table"' in text
    assert 't0."createdAt" AS "createdAt", t0."we""ird" AS "we""ird", t0."select" AS "select"' in text


@pytest.mark.parametrize(("op", "sql_op"), [
    ("eq", "="), ("neq", "!="), ("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="), ("like", "LIKE"),
    ("ilike", "ILIKE"), ("match", "~"), ("imatch", "~*"), ("isdistinct", "IS DISTINCT FROM"), ("cs", "@>"),
    ("cd", "<@"), ("ov", "&&"), ("sl", "<<"), ("sr", ">>"), ("nxr", "&<"), ("nxl", "&>"), ("adj", "-|-"),
    ("has_key", "?"), ("has_any_keys", "?|"), ("has_all_keys", "?&"),
])
def test_the_operator_table_maps_each_name_to_its_sql_operator(op: str, sql_op: str) -> None:
    assert op in OPERATORS
    pred = Pred(ColExpr("t0", "c"), op, P(0), "integer")
    text = str(predicate(pred, Rel("public", "t", "t0", ())).compile(dialect=DIALECT))
    assert text == f't0."c" {sql_op} CAST(CAST($1 AS text) AS integer)'


def test_every_operator_of_the_table_is_covered() -> None:
    covered = {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "isdistinct", "cs", "cd",
               "ov", "sl", "sr", "nxr", "nxl", "adj", "has_key", "has_any_keys", "has_all_keys"}
    assert set(OPERATORS) == covered


@pytest.mark.parametrize(("pred", "expected"), [
    (Pred(ColExpr("t0", "c"), "is", None, "", is_value="not_null"), 't0."c" IS NOT NULL'),
    (Pred(ColExpr("t0", "c"), "is", None, "", negate=True, is_value="true"), 't0."c" IS NOT true'),
    (Pred(ColExpr("t0", "c"), "in", P(0), "integer[]", list_arg=True),
     't0."c" = ANY (CAST(CAST($1 AS text[]) AS integer[]))'),
    (Pred(ColExpr("t0", "c"), "like", P(0), "text[]", modifier="all", list_arg=True, text_compare=True),
     'CAST(t0."c" AS text) LIKE ALL (CAST(CAST($1 AS text[]) AS text[]))'),
    (Pred(ColExpr("t0", "c"), "fts", P(0), "text", language=P(1)),
     't0."c" @@ to_tsquery(CAST(CAST($1 AS text) AS regconfig), CAST($2 AS text))'),
    (Pred(ColExpr("t0", "c"), "wfts", P(0), "text", tsvector=False),
     'to_tsvector(t0."c") @@ websearch_to_tsquery(CAST($1 AS text))'),
])
def test_is_in_quantified_and_full_text_predicates(pred: Pred, expected: str) -> None:
    text = str(predicate(pred, Rel("public", "t", "t0", ())).compile(dialect=DIALECT))
    assert " ".join(text.split()) == expected


ESTIMATE = ("auth.estimate_rows(E'SELECT 1 FROM public.projects AS t0 "
            "WHERE t0.\"id\" > CAST(CAST($1[3] AS text) AS integer)', $1)")


def run_form(req: rq.Read, settings: Settings = SETTINGS) -> str:
    return " ".join(sql.compile_for_run(plan.plan(req, CATALOG, settings).shape).split())


def test_planned_counts_estimate_the_filtered_rows_in_the_same_statement() -> None:
    text = run_form(rq.Read(rq.Target("projects"), where=(f("id", "gt", "1"),), count="planned"))
    assert f"ELSE -{ESTIMATE} END AS total" in text


def test_the_default_total_counts_only_when_the_estimate_is_within_the_limit() -> None:
    text = run_form(rq.Read(rq.Target("projects"), where=(f("id", "gt", "1"),)))
    assert ("ELSE (SELECT CASE WHEN (pgrst_estimate.rows <= CAST($1[4] AS bigint)) THEN (SELECT count(*) AS "
            "count_1 FROM public.projects AS t0 WHERE t0.\"id\" > CAST(CAST($1[3] AS text) AS integer)) "
            f"ELSE -pgrst_estimate.rows END AS anon_1 FROM (SELECT {ESTIMATE} AS rows LIMIT ALL OFFSET 0) "
            "AS pgrst_estimate) END AS total") in text


@pytest.mark.parametrize("req", [
    rq.Read(rq.Target("projects"), count="exact"),
    rq.Read(rq.Target("projects"), count="planned"),
    rq.Read(rq.Target("projects")),
])
def test_the_transaction_form_counts_exactly(req: rq.Read) -> None:
    text, _ = compiled(req)
    assert "estimate_rows" not in text
    assert "ELSE (SELECT count(*) AS count_1 FROM public.projects AS t0) END AS total" in text


def test_the_estimated_query_is_one_string_literal_whatever_its_names_hold() -> None:
    odd = Pred(ColExpr("t0", "50% o'clock\\"), "eq", P(0), "text")
    shape = ReadPlan(Rel("my schema", "it's", "t0", (), (odd,)), "planned", True, False, None, None)
    text = " ".join(sql.compile_for_run(shape).split())
    assert ("-auth.estimate_rows(E'SELECT 1 FROM \"my schema\".\"it''s\" AS t0 "
            "WHERE t0.\"50% o''clock\\\\\" = CAST($1[1] AS text)', $1)") in text
