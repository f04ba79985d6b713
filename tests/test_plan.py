"""The planner (the gateway.plan package: read, write and call planners) on hand-made catalogs.

No database: every test builds request-model values, plans them against a small ``Catalog``
and looks at the plan shape, the parameters, or the GatewayError.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway import plan
from gateway import request as rq
from gateway.catalog import Catalog, Column, ForeignKey, Function, FunctionArg, Table
from gateway.errors import GatewayError
from gateway.plan.nodes import CallPlan, OutColumn, OutEmbed, Pred, ReadPlan, WritePlan
from gateway.settings import Settings

SETTINGS = Settings(default_limit=100, max_rows=1000)

INT = ("integer", "int4", "int")
TEXT = ("text", "text", "text")


def col(name: str, type_: tuple[str, str, str] = INT, **kw: Any) -> Column:
    return Column(name, type_[0], type_[1], type_[2], **kw)  # type: ignore[arg-type]


def fk(name: str, columns: tuple[str, ...], table: str, ref: tuple[str, ...] = ("id",)) -> ForeignKey:
    return ForeignKey(name, columns, "public", table, ref)


def tbl(name: str, *columns: Column, pk: tuple[str, ...] = ("id",), **kw: Any) -> Table:
    return Table("public", name, "table", columns, primary_key=pk, **kw)


TABLES = [
    tbl("clients", col("id"), col("name", TEXT)),
    tbl("projects", col("id"), col("name", TEXT), col("client_id"),
        foreign_keys=(fk("projects_client_id_fkey", ("client_id",), "clients"),)),
    tbl("tasks", col("id"), col("name", TEXT), col("project_id"),
        foreign_keys=(fk("tasks_project_id_fkey", ("project_id",), "projects"),)),
    tbl("users", col("id"), col("name", TEXT)),
    tbl("users_tasks", col("user_id"), col("task_id"), pk=("user_id", "task_id"),
        foreign_keys=(fk("ut_user", ("user_id",), "users"), fk("ut_task", ("task_id",), "tasks"))),
    tbl("messages", col("id"), col("sender_id"), col("receiver_id"),
        foreign_keys=(fk("message_sender", ("sender_id",), "users"),
                      fk("message_receiver", ("receiver_id",), "users"))),
    tbl("user_settings", col("id", ("uuid", "uuid", "uuid"), default="gen_random_uuid()"),
        col("user_id", ("uuid", "uuid", "uuid"), nullable=False), col("theme", TEXT), unique=(("user_id",),)),
    tbl("kinds", col("id"), col("flag", ("boolean", "bool", "bool")), col("big", ("bigint", "int8", "bigint")),
        col("small", ("smallint", "int2", "int")), col("price", ("numeric", "numeric", "numeric")),
        col("uid", ("uuid", "uuid", "uuid")), col("data", ("jsonb", "jsonb", "json")),
        col("meta", ("json", "json", "json")), col("tags", ("text[]", "text", "text"), is_array=True),
        col("mood", ("mood", "mood", "enum"), enum_values=("sad", "happy")),
        col("born", ("timestamp with time zone", "timestamptz", "timestamptz")),
        col("during", ("int4range", "int4range", "range")), col("doc", ("tsvector", "tsvector", "tsvector")),
        col("label", ("character varying(5)", "varchar", "text")),
        col("twice", INT, is_generated=True, default="id * 2"), col("n", INT, default="7")),
    tbl("counters", col("id", is_identity=True), col("label", TEXT, default="'none'::text")),
    tbl("no_key", col("a"), col("b"), pk=()),
    Table("public", "totals", "view", (col("total"),), insertable=False, updatable=False, deletable=False),
]


def fn(name: str, *args: FunctionArg, returns: str = "integer", kind: str = "scalar", returns_set: bool = False,
       oid: int = 1, **kw: Any) -> Function:
    return Function("public", name, oid, args, returns, returns_set, kind, returns, **kw)  # type: ignore[arg-type]


def arg(name: str, type_: tuple[str, str, str] = INT, default: bool = False) -> FunctionArg:
    return FunctionArg(name, type_[0], type_[1], type_[2], has_default=default)  # type: ignore[arg-type]


FUNCTIONS = {
    ("public", "add_them"): (fn("add_them", arg("a"), arg("b")),),
    ("public", "over"): (fn("over", arg("a"), oid=2), fn("over", arg("a"), arg("b"), oid=3)),
    ("public", "tie"): (fn("tie", arg("a"), oid=4), fn("tie", arg("a", TEXT), oid=5)),
    ("public", "greet"): (fn("greet", arg("name", TEXT, default=True), returns="text"),),
    ("public", "echo"): (fn("echo", arg("", ("jsonb", "jsonb", "json")), returns="jsonb"),),
    ("public", "ints"): (fn("ints", returns="SETOF integer", returns_set=True),),
    ("public", "nothing"): (fn("nothing", returns="void", kind="void"),),
    ("public", "get_projects"): (fn("get_projects", arg("cid"), returns="SETOF projects", kind="composite",
                                    returns_set=True, return_table=("public", "projects")),),
}

CATALOG = Catalog(("public", "other"), {t.key: t for t in TABLES}, FUNCTIONS)


def planned(req: rq.Request, settings: Settings = SETTINGS) -> plan.Planned:
    return plan.plan(req, CATALOG, settings)


def fails(req: rq.Request, status: int, error: str, code: str | None = None) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        planned(req)
    err = info.value
    assert (err.status, err.error) == (status, error), err.body()
    if code is not None:
        assert err.code == code, err.body()
    return err


def read(table: str = "projects", **kw: Any) -> rq.Read:
    return rq.Read(rq.Target(table), **kw)


def f(name: str, op: str, value: Any, **kw: Any) -> rq.Filter:
    return rq.Filter(rq.FieldRef(name), op, value, **kw)  # type: ignore[arg-type]


def embed(relation: str, *items: rq.SelectItem, **kw: Any) -> rq.SelectEmbed:
    return rq.SelectEmbed(relation, items or (rq.SelectStar(),), **kw)


def out_embed(p: plan.Planned, index: int = 1) -> OutEmbed:
    assert isinstance(p.shape, ReadPlan)
    found = p.shape.rel.outputs[index]
    assert isinstance(found, OutEmbed)
    return found


# --------------------------------------------------------------------------- names


def test_an_unknown_table_is_table_not_found_with_the_spec_message() -> None:
    err = fails(read("nosuch"), 404, "TABLE_NOT_FOUND", "42P01")
    assert err.message == "Table 'nosuch' does not exist"


def test_a_schema_that_is_not_exposed_is_406() -> None:
    fails(rq.Read(rq.Target("projects", "secret")), 406, "PGRST106", "PGRST106")
    fails(rq.Call(rq.Target("add_them", "secret"), {}, read_only=True), 406, "PGRST106", "PGRST106")


@pytest.mark.parametrize("req", [
    read(select=(rq.SelectColumn(rq.FieldRef("nme")),)),
    read(where=(f("nme", "eq", "x"),)),
    read(order=(rq.Order(rq.FieldRef("nme")),)),
    read(where=(rq.BoolExpr("or", (f("id", "eq", "1"), f("nme", "eq", "x"))),)),
    read(select=(embed("clients", rq.SelectColumn(rq.FieldRef("nme"))),)),
])
def test_an_unknown_column_is_invalid_query_with_a_did_you_mean(req: rq.Read) -> None:
    err = fails(req, 400, "INVALID_QUERY", "42703")
    assert "Did you mean 'name'?" in err.message
    assert err.hint and "name" in err.hint


def test_a_column_with_no_close_name_gets_no_suggestion() -> None:
    err = fails(read(where=(f("zzzzzz", "eq", "1"),)), 400, "INVALID_QUERY", "42703")
    assert "Did you mean" not in err.message and err.hint is None


def test_star_expands_to_the_columns_in_table_order() -> None:
    p = planned(read())
    assert isinstance(p.shape, ReadPlan)
    assert [o.key for o in p.shape.rel.outputs if isinstance(o, OutColumn)] == ["id", "name", "client_id"]


def test_json_paths_are_named_after_their_last_key_and_convert_json_to_jsonb() -> None:
    path = (rq.JsonStep("a", False), rq.JsonStep("b", True))
    p = planned(read("kinds", select=(rq.SelectColumn(rq.FieldRef("meta", path)),
                                      rq.SelectColumn(rq.FieldRef("data", path), alias="x", cast="int"))))
    assert isinstance(p.shape, ReadPlan)
    first, second = p.shape.rel.outputs
    assert isinstance(first, OutColumn) and isinstance(second, OutColumn)
    assert (first.key, first.expr.wrap_jsonb, second.key, second.expr.wrap_jsonb, second.expr.cast) == (
        "b", True, "x", False, "int")


@pytest.mark.parametrize("cast", ["int; drop table x", "text)", "int--", "'text'"])
def test_a_cast_that_is_not_a_type_name_is_invalid_query(cast: str) -> None:
    fails(read(select=(rq.SelectColumn(rq.FieldRef("id"), cast=cast),)), 400, "INVALID_QUERY", "PGRST100")


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(("limit", "offset", "expected"), [
    (None, 0, (100, 0)), (0, 0, (0, 0)), (1000, 5, (1000, 5)), (10, -3, (10, 0)),
])
def test_the_root_page_gets_the_default_and_keeps_valid_values(limit: int | None, offset: int,
                                                               expected: tuple[int, int]) -> None:
    p = planned(read(limit=limit, offset=offset))
    assert isinstance(p.shape, ReadPlan) and p.shape.limit_value and p.shape.offset_value
    assert (p.params[p.shape.limit_value.index], p.params[p.shape.offset_value.index]) == expected


def test_a_limit_above_the_maximum_is_invalid_query() -> None:
    err = fails(read(limit=1001), 400, "INVALID_QUERY")
    assert "1000" in err.message


def test_a_negative_limit_is_416() -> None:
    fails(read(limit=-1), 416, "PGRST103", "PGRST103")


def test_settings_choose_the_default_and_maximum() -> None:
    p = planned(read(), Settings(default_limit=7, max_rows=8))
    assert 7 in p.params
    with pytest.raises(GatewayError):
        planned(read(limit=9), Settings(default_limit=7, max_rows=8))


def test_embeds_and_rpc_have_no_default_limit() -> None:
    p = planned(read(select=(embed("tasks"),)))
    assert out_embed(p, 0).rel.limit is None
    call = planned(rq.Call(rq.Target("get_projects"), {"cid": 1}, read_only=True))
    assert isinstance(call.shape, CallPlan) and call.shape.limit_value is None


@pytest.mark.parametrize(("count", "settings", "total", "count_limit"), [
    (None, Settings(), "estimated", 10000),
    (None, Settings(exact_count_limit=50), "estimated", 50),
    (None, Settings(count="exact"), "auto", None),
    ("exact", Settings(), "auto", None),
    ("planned", Settings(), "planned", None),
    ("estimated", Settings(max_rows=500), "estimated", 500),
    ("estimated", Settings(count="exact"), "estimated", 1000),
])
def test_count_kinds_choose_how_the_total_is_found(count: Any, settings: Settings, total: str,
                                                   count_limit: int | None) -> None:
    p = planned(read(count=count), settings)
    assert isinstance(p.shape, ReadPlan)
    assert p.shape.total == total
    limit = p.shape.count_limit
    assert (None if limit is None else p.params[limit.index]) == count_limit


def test_a_read_that_wants_no_total_plans_none_whatever_the_count_setting() -> None:
    p = planned(read(want_total=False), Settings(count="exact"))
    assert isinstance(p.shape, ReadPlan) and (p.shape.total, p.shape.count_limit) == ("none", None)


# --------------------------------------------------------------------------- relationships


@pytest.mark.parametrize(("table", "item", "to_one", "target"), [
    ("projects", embed("clients"), True, "clients"),
    ("clients", embed("projects"), False, "projects"),
    ("tasks", embed("users"), False, "users"),
    ("users", embed("tasks"), False, "tasks"),
    ("tasks", embed("users", hint="users_tasks"), False, "users"),
    ("messages", embed("users", hint="message_sender"), True, "users"),
    ("messages", embed("users", hint="receiver_id"), True, "users"),
    ("users", embed("messages", hint="sender_id"), False, "messages"),
    ("messages", embed("sender_id"), True, "users"),
    ("projects", embed("client_id"), True, "clients"),
    ("projects", embed("clients", alias="owner"), True, "clients"),
])
def test_the_relationship_decides_the_embed_shape(table: str, item: rq.SelectEmbed, to_one: bool,
                                                  target: str) -> None:
    emb = out_embed(planned(read(table, select=(rq.SelectColumn(rq.FieldRef("id")), item))))
    assert (emb.to_one, emb.rel.name, emb.key) == (to_one, target, item.key)


def test_a_many_to_many_embed_joins_through_the_junction() -> None:
    emb = out_embed(planned(read("tasks", select=(rq.SelectColumn(rq.FieldRef("id")), embed("users")))))
    assert emb.join.junction == ("public", "users_tasks")
    assert emb.join.pairs == (("id", "task_id"),) and emb.join.junction_pairs == (("user_id", "id"),)


def test_two_foreign_keys_to_one_table_are_ambiguous_300_listing_both() -> None:
    err = fails(read("messages", select=(embed("users"),)), 300, "PGRST201", "PGRST201")
    assert err.details and "message_sender" in err.details and "message_receiver" in err.details
    assert err.hint and "users!message_sender" in err.hint


@pytest.mark.parametrize(("table", "item", "suggestion"), [
    ("projects", embed("client"), "clients"),
    ("projects", embed("users"), None),
    ("projects", embed("clients", hint="nope"), None),
])
def test_a_missing_relationship_is_400_pgrst200(table: str, item: rq.SelectEmbed, suggestion: str | None) -> None:
    err = fails(read(table, select=(item,)), 400, "INVALID_QUERY", "PGRST200")
    assert err.hint
    if suggestion:
        assert suggestion in err.hint


def test_a_to_many_spread_is_planned_as_a_spread_of_arrays() -> None:
    p = planned(read("clients", select=(embed("projects", spread=True),)))
    assert isinstance(p.shape, ReadPlan)
    out = p.shape.rel.outputs[0]
    assert isinstance(out, OutEmbed) and out.spread and not out.to_one


def test_an_embed_null_test_needs_the_embed_in_select() -> None:
    fails(read(where=(rq.EmbedNull("clients", True),)), 400, "INVALID_QUERY", "PGRST108")
    p = planned(read(select=(embed("clients", alias="c"),), where=(rq.EmbedNull("clients", True),)))
    assert isinstance(p.shape, ReadPlan) and p.shape.rel.where


def test_an_empty_embed_adds_no_key_and_inner_adds_an_exists_filter() -> None:
    p = planned(read(select=(rq.SelectColumn(rq.FieldRef("id")), rq.SelectEmbed("clients", ()),
                             embed("tasks", inner=True))))
    assert isinstance(p.shape, ReadPlan)
    assert out_embed(p, 1).key is None
    assert [type(w).__name__ for w in p.shape.rel.where] == ["EmbedPred"]


def test_ordering_by_a_to_many_embed_is_pgrst118_and_by_a_to_one_a_subquery() -> None:
    fails(read("clients", order=(rq.Order(rq.FieldRef("name"), relation="projects"),)), 400, "INVALID_QUERY",
          "PGRST118")
    p = planned(read(order=(rq.Order(rq.FieldRef("name"), "desc", relation="clients"),)))
    assert isinstance(p.shape, ReadPlan) and p.shape.rel.order[0].via is not None


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(("column", "op", "value", "code"), [
    ("id", "eq", "abc", "22P02"),
    ("id", "in", (" ", "3"), "22P02"),
    ("flag", "eq", "maybe", "22P02"),
    ("uid", "eq", "zzz", "22P02"),
    ("price", "gt", "ten", "22P02"),
])
def test_malformed_filter_values_are_refused_naming_the_column(column: str, op: str, value: Any, code: str) -> None:
    err = fails(read("kinds", where=(f(column, op, value),)), 400, "VALIDATION_ERROR", code)
    assert column in err.message


@pytest.mark.parametrize(("column", "op"), [
    ("id", "cs"), ("price", "ov"), ("name", "adj"), ("data", "ov"), ("tags", "sl"), ("flag", "cd"),
])
def test_an_operator_that_cannot_apply_to_the_column_type_is_invalid_query(column: str, op: str) -> None:
    table = "kinds" if column != "name" else "projects"
    err = fails(read(table, where=(f(column, op, "{1}"),)), 400, "INVALID_QUERY", "PGRST100")
    assert op in err.message and column in err.message


@pytest.mark.parametrize(("column", "op", "text_compare", "tsvector"), [
    ("id", "like", True, True), ("label", "like", False, True), ("doc", "fts", False, True),
    ("label", "fts", False, False), ("id", "fts", True, False), ("data", "wfts", False, False),
])
def test_pattern_and_full_text_operators_choose_text_or_tsvector(column: str, op: str, text_compare: bool,
                                                                 tsvector: bool) -> None:
    p = planned(read("kinds", where=(f(column, op, "x"),)))
    assert isinstance(p.shape, ReadPlan)
    pred = p.shape.rel.where[0]
    assert isinstance(pred, Pred) and (pred.text_compare, pred.tsvector) == (text_compare, tsvector)


def test_lists_are_one_array_parameter_whatever_their_length() -> None:
    short = planned(read(where=(f("id", "in", ("1",)),)))
    long = planned(read(where=(f("id", "in", tuple(str(i) for i in range(50))),)))
    assert short.shape == long.shape
    assert ["1"] in short.params and [str(i) for i in range(50)] in long.params


def test_a_json_column_is_compared_as_jsonb() -> None:
    p = planned(read("kinds", where=(f("meta", "eq", '{"a":1}'),)))
    assert isinstance(p.shape, ReadPlan)
    pred = p.shape.rel.where[0]
    assert isinstance(pred, Pred) and (pred.expr.cast, pred.arg_type) == ("jsonb", "jsonb")


def test_equal_requests_with_different_values_share_one_shape_and_values_stay_out_of_it() -> None:
    """Filter values are parameters; the page (an integer the planner checked) is part of the shape."""
    a = planned(read(where=(f("name", "eq", "value-one"),), limit=5, order=(rq.Order(rq.FieldRef("id")),)))
    b = planned(read(where=(f("name", "eq", "value-two"),), limit=5, order=(rq.Order(rq.FieldRef("id")),)))
    assert a.shape == b.shape and hash(a.shape) == hash(b.shape)
    assert a.params != b.params
    assert "value-one" not in repr(a.shape) and "value-one" in a.params


# --------------------------------------------------------------------------- bodies


def insert(table: str, *rows: dict[str, Any], **kw: Any) -> rq.Insert:
    return rq.Insert(rq.Target(table), tuple(rows), **kw)


@pytest.mark.parametrize(("column", "value"), [
    ("flag", "maybe"), ("flag", 3), ("id", "x"), ("id", 1.5), ("id", True), ("small", 40000), ("big", 2**64),
    ("price", "ten"), ("uid", "nope"), ("mood", "angry"), ("tags", "x"), ("tags", 3), ("label", {"a": 1}),
    ("born", 5), ("id", [1]),
])
def test_a_body_value_of_the_wrong_type_is_a_validation_error_naming_the_field(column: str, value: Any) -> None:
    err = fails(insert("kinds", {column: value}), 400, "VALIDATION_ERROR")
    assert f"'{column}'" in err.message
    err = fails(rq.Update(rq.Target("kinds"), {column: value}), 400, "VALIDATION_ERROR")
    assert f"'{column}'" in err.message


@pytest.mark.parametrize(("column", "value"), [
    ("flag", True), ("flag", "true"), ("id", 5), ("id", "5"), ("id", 2.0), ("big", 2**62), ("price", "1e3"),
    ("price", 1.25), ("uid", "123e4567-e89b-12d3-a456-426614174000"), ("mood", "sad"), ("tags", ["a", "b"]),
    ("tags", "{a,b}"), ("label", 5), ("data", {"a": [1]}), ("born", "2024-01-01T00:00:00Z"), ("id", None),
])
def test_a_body_value_that_fits_its_column_is_accepted(column: str, value: Any) -> None:
    p = planned(insert("kinds", {column: value}))
    assert isinstance(p.shape, WritePlan) and p.shape.columns == (column,)


def test_an_unknown_body_key_is_a_validation_error_and_an_unknown_columns_name_invalid_query() -> None:
    err = fails(insert("projects", {"nmae": "x"}), 400, "VALIDATION_ERROR", "PGRST204")
    assert "'nmae'" in err.message and "Did you mean 'name'?" in err.message
    fails(insert("projects", {"name": "x"}, columns=("nosuch",)), 400, "INVALID_QUERY", "PGRST204")
    fails(rq.Update(rq.Target("projects"), {"nmae": "x"}), 400, "VALIDATION_ERROR", "PGRST204")


def test_empty_strings_are_dropped_except_for_text_like_columns() -> None:
    p = planned(insert("kinds", {"id": "", "label": "", "flag": "", "tags": "", "mood": "", "data": ""}))
    assert isinstance(p.shape, WritePlan) and p.shape.columns == ("label",)
    assert p.params[p.shape.payload.index if p.shape.payload else 0] == '[{"label":""}]'


def test_generated_columns_cannot_be_written() -> None:
    err = fails(insert("kinds", {"twice": 4}), 400, "VALIDATION_ERROR")
    assert "twice" in err.message


def test_a_row_of_defaults_writes_one_column_from_its_default() -> None:
    p = planned(insert("kinds", {}))
    assert isinstance(p.shape, WritePlan) and p.shape.columns == ("n",) and p.shape.defaults == (("n", "7"),)
    p = planned(insert("counters", {}))
    assert isinstance(p.shape, WritePlan) and p.shape.defaults == (("label", "'none'::text"),)


def test_missing_default_uses_each_column_default_and_identity_sequences() -> None:
    p = planned(insert("counters", {"id": 1}, {"label": "a"}, columns=("id", "label"), missing_default=True))
    assert isinstance(p.shape, WritePlan)
    defaults = dict(p.shape.defaults)
    assert defaults["label"] == "'none'::text" and "pg_get_serial_sequence" in defaults["id"]


def test_views_that_cannot_be_written_are_405() -> None:
    fails(insert("totals", {"total": 1}), 405, "PGRST117", "PGRST117")
    fails(rq.Delete(rq.Target("totals")), 405, "PGRST117", "PGRST117")


# --------------------------------------------------------------------------- upserts and PUT


@pytest.mark.parametrize(("table", "rows", "on_conflict", "target"), [
    ("projects", ({"id": 1, "name": "x"},), None, ("id",)),
    ("projects", ({"name": "x"},), None, ("id",)),
    ("projects", ({"id": 1, "name": "x"},), ("name",), ("name",)),
    ("user_settings", ({"user_id": "123e4567-e89b-12d3-a456-426614174000", "theme": "dark"},), None, ("user_id",)),
    ("user_settings", ({"id": "123e4567-e89b-12d3-a456-426614174000",
                        "user_id": "123e4567-e89b-12d3-a456-426614174000"},), None, ("id",)),
    ("users_tasks", ({"user_id": 1, "task_id": 2},), None, ("user_id", "task_id")),
])
def test_an_upsert_picks_its_conflict_target(table: str, rows: tuple[dict[str, Any], ...],
                                             on_conflict: tuple[str, ...] | None, target: tuple[str, ...]) -> None:
    p = planned(insert(table, *rows, on_conflict=on_conflict, resolution="merge-duplicates"))
    assert isinstance(p.shape, WritePlan)
    assert p.shape.on_conflict == target and p.shape.conflict_action == "update"
    assert not set(p.shape.update_columns) & set(target) or p.shape.update_columns == target[:1]


def test_an_upsert_without_any_usable_key_is_invalid_query() -> None:
    fails(insert("no_key", {"a": 1}, resolution="merge-duplicates"), 400, "INVALID_QUERY")
    fails(insert("projects", {"id": 1}, on_conflict=("nosuch",), resolution="merge-duplicates"), 400,
          "INVALID_QUERY", "42703")


def test_ignore_duplicates_does_nothing_on_conflict_and_no_resolution_means_no_conflict_clause() -> None:
    p = planned(insert("projects", {"id": 1}, resolution="ignore-duplicates"))
    assert isinstance(p.shape, WritePlan) and p.shape.conflict_action == "nothing" and p.shape.count_inserted
    p = planned(insert("projects", {"id": 1}, on_conflict=("id",)))
    assert isinstance(p.shape, WritePlan) and p.shape.on_conflict is None and p.shape.conflict_action is None


@pytest.mark.parametrize(("filters", "row", "status", "code"), [
    ((f("name", "eq", "x"),), {"id": 1, "name": "x"}, 405, "PGRST105"),
    ((f("id", "gt", "1"),), {"id": 1}, 405, "PGRST105"),
    ((f("id", "eq", "1"), f("name", "eq", "x")), {"id": 1}, 405, "PGRST105"),
    ((f("id", "eq", "1", negate=True),), {"id": 1}, 405, "PGRST105"),
    ((f("id", "eq", "1"),), {"id": 2}, 400, "PGRST115"),
    ((f("id", "eq", "1"),), {"name": "x"}, 400, "PGRST115"),
])
def test_put_needs_eq_on_exactly_the_primary_key_and_a_matching_body(filters: tuple[rq.Condition, ...],
                                                                      row: dict[str, Any], status: int,
                                                                      code: str) -> None:
    req = insert("projects", row, resolution="merge-duplicates", put=True, put_filters=filters)
    fails(req, status, code, code)


def test_put_on_a_table_without_a_primary_key_is_405() -> None:
    req = insert("no_key", {"a": 1}, resolution="merge-duplicates", put=True, put_filters=(f("a", "eq", "1"),))
    fails(req, 405, "PGRST105", "PGRST105")


def test_a_matching_put_is_an_upsert_on_the_primary_key() -> None:
    p = planned(insert("projects", {"id": 1, "name": "x"}, resolution="merge-duplicates", put=True,
                       put_filters=(f("id", "eq", "1"),)))
    assert isinstance(p.shape, WritePlan) and p.shape.on_conflict == ("id",)


# --------------------------------------------------------------------------- functions


def call(name: str, args: dict[str, Any], **kw: Any) -> rq.Call:
    return rq.Call(rq.Target(name), args, read_only=kw.pop("read_only", False), **kw)


@pytest.mark.parametrize(("name", "args", "oid", "kind"), [
    ("add_them", {"a": 1, "b": 2}, 1, "scalar"),
    ("over", {"a": 1}, 2, "scalar"),
    ("over", {"a": 1, "b": 2}, 3, "scalar"),
    ("greet", {}, 1, "scalar"),
    ("greet", {"name": "x"}, 1, "scalar"),
    ("ints", {}, 1, "setof_scalar"),
    ("nothing", {}, 1, "void"),
    ("get_projects", {"cid": 1}, 1, "setof_row"),
])
def test_overloads_are_resolved_by_argument_names(name: str, args: dict[str, Any], oid: int, kind: str) -> None:
    p = planned(call(name, args))
    assert isinstance(p.shape, CallPlan) and p.shape.kind == kind
    chosen = next(f for f in FUNCTIONS[("public", name)] if f.oid == oid)
    assert [a for a, _t, _v in p.shape.args] == [a.name for a in chosen.args if a.name in args]


@pytest.mark.parametrize(("name", "args"), [
    ("nosuch", {}), ("add_them", {"a": 1, "b": 2, "c": 3}), ("add_them", {"a": 1}), ("over", {"b": 1}),
])
def test_no_matching_function_is_404(name: str, args: dict[str, Any]) -> None:
    fails(call(name, args), 404, "DATABASE_NOT_FOUND", "PGRST202")


def test_an_unknown_function_suggests_a_close_name() -> None:
    err = fails(call("add_then", {}), 404, "DATABASE_NOT_FOUND", "PGRST202")
    assert err.details == "Did you mean 'add_them'?"


def test_two_equally_good_overloads_are_300() -> None:
    err = fails(call("tie", {"a": "1"}, args_from_query=True), 300, "PGRST203", "PGRST203")
    assert err.details and err.details.count("tie(") == 2


@pytest.mark.parametrize(("value", "type_"), [(1, "integer"), ("one", "text")])
def test_overloads_with_the_same_names_are_told_apart_by_the_json_value_type(value: Any, type_: str) -> None:
    p = planned(call("tie", {"a": value}))
    assert isinstance(p.shape, CallPlan) and p.shape.args == (("a", type_, False),)


def test_a_function_with_one_unnamed_json_parameter_takes_the_whole_body() -> None:
    body = {"anything": [1, 2]}
    p = planned(call("echo", body, raw_body=body))
    assert isinstance(p.shape, CallPlan) and p.shape.args == (("", "jsonb", False),)
    assert p.params[p.shape.payload.index] == '{"anything":[1,2]}'


def test_json_argument_values_are_checked_against_parameter_types() -> None:
    err = fails(call("add_them", {"a": "x", "b": 1}), 400, "VALIDATION_ERROR")
    assert "'a'" in err.message
    p = planned(call("add_them", {"a": "x", "b": "1"}, args_from_query=True))
    assert isinstance(p.shape, CallPlan)  # query-string values are cast by PostgreSQL


def test_filters_apply_only_to_row_returning_functions() -> None:
    fails(call("add_them", {"a": 1, "b": 2}, where=(f("x", "eq", "1"),)), 400, "INVALID_QUERY")
    p = planned(call("get_projects", {"cid": 1}, where=(f("id", "gt", "1"),), select=(embed("clients"),)))
    assert isinstance(p.shape, CallPlan) and p.shape.returning is not None
    assert p.shape.returning.where and isinstance(p.shape.returning.outputs[0], OutEmbed)


# --------------------------------------------------------------------------- writes without a filter

EVERYTHING = rq.Filter(rq.FieldRef("id"), "is", "not_null", negate=True)


@pytest.mark.parametrize("req", [rq.Update(rq.Target("projects"), {"name": "x"}), rq.Delete(rq.Target("projects")),
                                 rq.Delete(rq.Target("projects"), single=True, max_affected=5)])
def test_an_update_or_delete_without_a_filter_is_refused_naming_a_filter_that_matches_every_row(
        req: rq.Request) -> None:
    err = fails(req, 400, "INVALID_QUERY", "21000")
    verb = "UPDATE" if isinstance(req, rq.Update) else "DELETE"
    assert err.message == f"{verb} requires a filter: without one it would affect every row of 'projects'"
    assert err.hint and "?id=not.is.null (REST)" in err.hint and "filter: {id: {is: NOT_NULL}} (GraphQL)" in err.hint
    assert err.next_actions and "?id=not.is.null" in err.next_actions


def test_without_a_key_the_advice_is_a_null_or_not_null_test_on_a_column() -> None:
    err = fails(rq.Delete(rq.Target("no_key")), 400, "INVALID_QUERY", "21000")
    assert err.hint and "?or=(a.is.null,a.not.is.null)" in err.hint


@pytest.mark.parametrize("req", [rq.Update(rq.Target("projects"), {"name": "x"}, where=(EVERYTHING,)),
                                 rq.Delete(rq.Target("projects"), where=(EVERYTHING,))])
def test_an_explicit_filter_that_matches_every_row_is_planned(req: rq.Request) -> None:
    shape = planned(req).shape
    assert isinstance(shape, WritePlan) and len(shape.where) == 1
