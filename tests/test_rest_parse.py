"""REST parsing: URL + headers + body -> request model (gateway/rest/parse.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from gateway.errors import GatewayError
from gateway.request import (
    STAR,
    BoolExpr,
    Call,
    Delete,
    EmbedNull,
    FieldRef,
    Filter,
    Insert,
    JsonStep,
    Order,
    Prefer,
    Read,
    SelectColumn,
    SelectEmbed,
    SelectStar,
    Target,
    Update,
)
from gateway.rest.parse import (
    ParsedRequest,
    negotiate,
    parse_prefer,
    parse_range,
    parse_records,
    parse_rpc,
    split_query,
)


def records(method: str, qs: str = "", headers: dict[str, str] | None = None, body: bytes = b"",
            **kw: Any) -> ParsedRequest:
    return parse_records(method, "items", qs, headers or {}, body, **kw)


def read(qs: str = "", headers: dict[str, str] | None = None) -> Read:
    request = records("GET", qs, headers).request
    assert isinstance(request, Read)
    return request


def rpc(method: str, qs: str = "", headers: dict[str, str] | None = None, body: bytes = b"") -> Call:
    request = parse_rpc(method, "fn", qs, headers or {}, body).request
    assert isinstance(request, Call)
    return request


def flt(name: str, op: str, value: object, **kw: Any) -> Filter:
    return Filter(FieldRef(name), op, value, **kw)  # type: ignore[arg-type]


def fails(status: int, error: str, code: str | None, fn: Any, *args: Any, **kw: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        fn(*args, **kw)
    assert (info.value.status, info.value.error, info.value.code) == (status, error, code)
    return info.value


# --------------------------------------------------------------------------- query string


@pytest.mark.parametrize(("qs", "pairs"), [
    ("select=%2A&or=%28a.eq.1%2Cb.eq.2%29", [("select", "*"), ("or", "(a.eq.1,b.eq.2)")]),
    ("body=wfts.fat+cat", [("body", "wfts.fat cat")]),
    ("a=1&a=2&b=3", [("a", "1"), ("a", "2"), ("b", "3")]),
    ("bare&name=", [("name", "")]),
    ("&&x=%ZZ", [("x", "%ZZ")]),
    ("k=a=b", [("k", "a=b")]),
])
def test_the_query_string_is_decoded_in_order_keeping_repeats(qs: str, pairs: list[tuple[str, str]]) -> None:
    assert split_query(qs) == pairs


def test_a_bare_key_is_ignored_but_an_empty_filter_value_is_rejected() -> None:
    assert read("id").where == ()
    error = fails(400, "INVALID_QUERY", "PGRST100", read, "name=")
    assert "'name='" in error.message


# --------------------------------------------------------------------------- acceptance facts (§16)

def sel(*names: str) -> tuple[SelectColumn, ...]:
    return tuple(SelectColumn(FieldRef(n)) for n in names)


P = pytest.param
# §16 acceptance facts about reads, by number, plus the read rules of §1-§5
READS = [
    P("id=eq.5", {"where": (flt("id", "eq", "5"),)}, id="16.1"),
    P("id=not.in.(2,4,6,7,8,9,10,11,12,13,14,15)",
      {"where": (flt("id", "in", ("2", "4", "6", *map(str, range(7, 16))), negate=True),)}, id="16.2"),
    P("a=is.null", {"where": (flt("a", "is", "null"),)}, id="16.3-null"),
    P("a=not.is.null", {"where": (flt("a", "is", "null", negate=True),)}, id="16.3-not-null"),
    P("a=is.not_null", {"where": (flt("a", "is", "not_null"),)}, id="16.3-not_null"),
    P("done=is.NULL", {"where": (flt("done", "is", "null"),)}, id="16.4-NULL"),
    P("done=is.unknown", {"where": (flt("done", "is", "unknown"),)}, id="16.4-unknown"),
    P("k=like.*yx", {"where": (flt("k", "like", "%yx"),)}, id="16.5-like"),
    P("k=ilike.xy*", {"where": (flt("k", "ilike", "xy%"),)}, id="16.5-ilike"),
    P("id=in.()", {"where": (flt("id", "in", ()),)}, id="16.6-in"),
    P("id=not.in.()", {"where": (flt("id", "in", (), negate=True),)}, id="16.6-not-in"),
    P("name=in.(%22Hebdon,%20John%22,%22Williams,%20Mary%22)",
      {"where": (flt("name", "in", ("Hebdon, John", "Williams, Mary")),)}, id="16.7-quoted"),
    P("id=in.(%20,3,4)", {"where": (flt("id", "in", ("", "3", "4")),)}, id="16.7-blank"),
    P("or=(id.eq.1,id.eq.2)&select=id",
      {"where": (BoolExpr("or", (flt("id", "eq", "1"), flt("id", "eq", "2"))),), "select": sel("id")}, id="16.8-or"),
    P("not.or=(id.eq.1,id.eq.2)&select=id",
      {"where": (BoolExpr("or", (flt("id", "eq", "1"), flt("id", "eq", "2")), negate=True),)}, id="16.8-not.or"),
    P("and=(id.eq.1,not.or(id.eq.2,id.eq.3),or(id.eq.1,id.eq.4))", {"where": (BoolExpr("and", (
        flt("id", "eq", "1"), BoolExpr("or", (flt("id", "eq", "2"), flt("id", "eq", "3")), negate=True),
        BoolExpr("or", (flt("id", "eq", "1"), flt("id", "eq", "4"))))),)}, id="16.9"),
    P("id=eq(any).{3,4,5}", {"where": (flt("id", "eq", ("3", "4", "5"), modifier="any"),)}, id="16.10-any"),
    P("id=gt(all).{4,3}", {"where": (flt("id", "gt", ("4", "3"), modifier="all"),)}, id="16.10-all"),
    P("data->foo->>bar=eq.baz", {"where": (Filter(FieldRef("data", (JsonStep("foo", False), JsonStep("bar", True))),
                                                  "eq", "baz"),)}, id="16.11-filter"),
    P("select=settings->foo->>bar", {"select": (SelectColumn(FieldRef("settings", (
        JsonStep("foo", False), JsonStep("bar", True)))),)}, id="16.11-select"),
    P("select=myId:id::text", {"select": (SelectColumn(FieldRef("id"), alias="myId", cast="text"),)}, id="16.13"),
    P("id=eq.1&select=id,clients(*),tasks(id,name)", {"select": (
        *sel("id"), SelectEmbed("clients", (SelectStar(),)), SelectEmbed("tasks", sel("id", "name")))}, id="16.14"),
    P("id=eq.1&select=id,theUsers:users(id)",
      {"select": (*sel("id"), SelectEmbed("users", sel("id"), alias="theUsers"))}, id="16.16"),
    P("select=id,clients!inner(id)&clients.id=eq.2", {"where": (), "select": (
        *sel("id"), SelectEmbed("clients", sel("id"), inner=True, where=(flt("id", "eq", "2"),)))}, id="16.17"),
    P("select=name,clients()&clients=is.null",
      {"where": (EmbedNull("clients", True),), "select": (*sel("name"), SelectEmbed("clients", ()))}, id="16.18"),
    P("select=id,tasks(id,name)&tasks.order=name.asc", {"select": (*sel("id"), SelectEmbed(
        "tasks", sel("id", "name"), order=(Order(FieldRef("name"), "asc"),)))}, id="16.19"),
    P("select=id&order=client_id.desc.nullslast,id.desc", {
        "order": (Order(FieldRef("client_id"), "desc", "last"), Order(FieldRef("id"), "desc"))}, id="16.21"),
    P("select=id&order=id&limit=3&offset=2",
      {"limit": 3, "offset": 2, "order": (Order(FieldRef("id")),)}, id="16.22"),
    P("age=gte.18&age=lte.65", {"where": (flt("age", "gte", "18"), flt("age", "lte", "65"))}, id="repeat-column"),
    P("not.and=(a.eq.1,b.eq.2)",
      {"where": (BoolExpr("and", (flt("a", "eq", "1"), flt("b", "eq", "2")), negate=True),)}, id="not.and"),
    P("limit=0", {"limit": 0}, id="limit-0"),
    P("limit=5000", {"limit": 5000}, id="limit-kept-raw"),  # the planner enforces 1..1000
    P("offset=-3", {"offset": 0}, id="negative-offset"),  # a negative offset does nothing
    P("", {"select": STAR, "limit": None, "offset": 0, "count": None, "single": False, "head": False}, id="empty"),
    P("select=", {"select": STAR}, id="empty-select"),
    P("select=a&select=b", {"select": sel("b")}, id="last-select"),
]


@pytest.mark.parametrize(("qs", "fields"), READS)
def test_a_get_becomes_a_read_with_filters_order_and_page(qs: str, fields: dict[str, Any]) -> None:
    request = read(qs)
    assert request.target == Target("items")
    for name, value in fields.items():
        assert getattr(request, name) == value, name


REJECTED = [
    P("id=0", {}, 400, "INVALID_QUERY", "PGRST100", id="16.12"),
    P("id=foo.1", {}, 400, "INVALID_QUERY", "PGRST100", id="unknown-operator"),
    P("done=is.nil", {}, 400, "INVALID_QUERY", "PGRST100", id="16.4"),
    P("or=()", {}, 400, "INVALID_QUERY", "PGRST100", id="16.9"),
    P("order=id.asc.nullslasttt", {}, 400, "INVALID_QUERY", "PGRST100", id="16.21"),
    P("limit=-1", {}, 416, "PGRST103", "PGRST103", id="16.23"),
    P("tasks.name=eq.x", {}, 400, "INVALID_QUERY", "PGRST108", id="16.20"),
    P("", {"Accept": "text/unknowntype"}, 406, "PGRST107", "PGRST107", id="16.28"),
    P("", {"Prefer": "handling=strict, bogus"}, 400, "INVALID_QUERY", "PGRST122", id="16.42"),
    P("select=id,", {}, 400, "INVALID_QUERY", "PGRST100", id="bad-select"),
    P("limit=ten", {}, 400, "INVALID_QUERY", "PGRST100", id="limit-word"),
    P("limit=1.5", {}, 400, "INVALID_QUERY", "PGRST100", id="limit-decimal"),
    P("offset=x", {}, 400, "INVALID_QUERY", "PGRST100", id="offset-word"),
    P("limit=99999999999999999999", {}, 400, "INVALID_QUERY", "PGRST100", id="limit-huge"),
    P("tasks.limit=x&select=tasks(id)", {}, 400, "INVALID_QUERY", "PGRST100", id="embed-limit-word"),
    P("select=data(id)&data->a.limit=1", {}, 400, "INVALID_QUERY", "PGRST100", id="json-path-prefix"),
    P("select=tasks(id)&tasks.limit=-1", {}, 416, "PGRST103", "PGRST103", id="embed-limit-negative"),
    P("", {"Range": "1-0"}, 416, "PGRST103", "PGRST103", id="range-reversed"),
    P("select=id,clients(id)&tasks.order=name", {}, 400, "INVALID_QUERY", "PGRST108", id="order-prefix"),
    P("select=clients(id)&clients.tasks.limit=1", {}, 400, "INVALID_QUERY", "PGRST108", id="nested-prefix"),
    P("x.or=(a.eq.1)", {}, 400, "INVALID_QUERY", "PGRST108", id="logic-prefix"),
]


@pytest.mark.parametrize(("qs", "headers", "status", "error", "code"), REJECTED)
def test_a_malformed_read_is_rejected_with_the_postgrest_status(qs: str, headers: dict[str, str], status: int,
                                                                error: str, code: str) -> None:
    fails(status, error, code, records, "GET", qs, headers)


def test_an_embed_prefix_missing_from_select_names_the_embed() -> None:
    error = fails(400, "INVALID_QUERY", "PGRST108", read, "select=id&tasks.name=eq.x")
    assert "'tasks'" in error.message and error.hint


def test_embed_parameters_are_attached_to_their_embed() -> None:
    request = read("select=id,clients!inner(id),tasks(id,name)&clients.id=eq.2&tasks.order=name.asc"
                   "&tasks.limit=1&tasks.offset=2&tasks.or=(id.eq.1,name.eq.x)")
    clients, tasks = request.select[1], request.select[2]
    assert clients == SelectEmbed("clients", (SelectColumn(FieldRef("id")),), inner=True,
                                  where=(flt("id", "eq", "2"),))
    assert isinstance(tasks, SelectEmbed)
    assert (tasks.order, tasks.limit, tasks.offset) == ((Order(FieldRef("name"), "asc"),), 1, 2)
    assert tasks.where == (BoolExpr("or", (flt("id", "eq", "1"), flt("name", "eq", "x"))),)
    assert request.where == () and request.limit is None


def test_nested_embed_parameters_reach_the_inner_embed_by_alias_or_relation() -> None:
    request = read("select=id,p:projects(id,tasks(id,u:users(id)))&p.tasks.u.limit=2&projects.tasks.name=eq.x"
                   "&p.tasks.u.not.or=(id.eq.1,id.eq.2)")
    projects = request.select[1]
    assert isinstance(projects, SelectEmbed)
    tasks = projects.select[1]
    assert isinstance(tasks, SelectEmbed) and tasks.where == (flt("name", "eq", "x"),)
    users = tasks.select[1]
    assert isinstance(users, SelectEmbed)
    assert users.limit == 2
    assert users.where == (BoolExpr("or", (flt("id", "eq", "1"), flt("id", "eq", "2")), negate=True),)


@pytest.mark.parametrize(("qs", "where"), [
    ("select=name,clients()&clients=is.null", (EmbedNull("clients", True),)),
    ("select=name,clients()&clients=not.is.null", (EmbedNull("clients", False),)),
    ("select=name,c:clients()&c=is.not_null", (EmbedNull("c", False),)),
    ("select=name,clients(id)&or=(clients.is.null,name.eq.x)",
     (BoolExpr("or", (EmbedNull("clients", True), flt("name", "eq", "x"))),)),
    ("select=name&clients=is.null", (flt("clients", "is", "null"),)),  # not an embed: a column test
    ("select=name,clients()&clients=eq.1", (flt("clients", "eq", "1"),)),
])
def test_an_is_null_test_on_an_embed_name_becomes_an_embed_null(qs: str, where: tuple[Any, ...]) -> None:
    assert read(qs).where == where


def test_an_embed_null_test_inside_an_embed_refers_to_its_children() -> None:
    request = read("select=id,projects(id,tasks())&projects.tasks=is.null")
    projects = request.select[1]
    assert isinstance(projects, SelectEmbed) and projects.where == (EmbedNull("tasks", True),)


# --------------------------------------------------------------------------- Range


@pytest.mark.parametrize(("qs", "range_", "offset", "limit"), [
    ("limit=3", "0-1", 0, 2),
    ("", "10-100", 10, 91),
    ("", "10-", 10, None),
    ("offset=5", "0-9", 5, 5),
    ("limit=10&offset=2", "4-6", 4, 3),
    ("offset=20", "0-9", 20, 0),
    ("limit=2", "nonsense", 0, 2),  # a malformed Range is ignored
    ("", "-5", 0, None),
    ("", "items=0-4", 0, 5),
])
def test_a_range_header_intersects_with_limit_and_offset(qs: str, range_: str, offset: int,
                                                         limit: int | None) -> None:
    request = read(qs, {"Range": range_})
    assert (request.offset, request.limit) == (offset, limit)


def test_a_range_header_counts_only_on_get_and_head() -> None:
    assert records("HEAD", "", {"Range": "0-1"}).request.limit == 2  # type: ignore[union-attr]
    assert rpc("GET", "", {"Range": "0-1"}).limit == 2
    assert rpc("POST", "", {"Range": "0-1"}, b"{}").limit is None
    assert isinstance(records("PATCH", "id=eq.1", {"Range": "1-0"}, b"{}").request, Update)


def test_a_range_with_another_unit_is_ignored() -> None:
    assert read("", {"Range": "0-1", "Range-Unit": "bytes"}).limit is None
    assert read("", {"Range": "0-1", "Range-Unit": "items"}).limit == 2


@pytest.mark.parametrize(("value", "expected"), [
    ("0-9", (0, 9)), ("5-", (5, None)), (" 3-3 ", (3, 3)), ("a-b", None), ("1-2-3", None), ("", None),
    ("٣-٤", None), ("-1", None),
])
def test_a_range_value_parses_or_is_ignored(value: str, expected: tuple[int, int | None] | None) -> None:
    assert parse_range(value) == expected


# --------------------------------------------------------------------------- Prefer

PREFERS: list[tuple[list[str], Prefer]] = [
    ([], Prefer()),
    (["return=representation"], Prefer(return_="representation")),
    (["return=minimal"], Prefer(return_="minimal")),
    (["return=headers-only"], Prefer(return_="headers-only")),
    (["count=exact"], Prefer(count="exact")),
    (["count=planned"], Prefer(count="planned")),
    (["count=estimated"], Prefer(count="estimated")),
    (["resolution=merge-duplicates,return=representation"],
     Prefer(resolution="merge-duplicates", return_="representation")),
    (["resolution=ignore-duplicates, missing=default"], Prefer(resolution="ignore-duplicates", missing_default=True)),
    (["missing=null"], Prefer()),
    (["return=representation", "count=exact"], Prefer(return_="representation", count="exact")),
    (["return=minimal, return=representation"], Prefer(return_="minimal")),  # first per family wins
    (["count=bogus, count=exact"], Prefer(count="exact")),  # an invalid token is skipped
    (["  count=exact  ,,return=representation "], Prefer(count="exact", return_="representation")),
    (["tx=rollback"], Prefer(tx_rollback=True)),
    (["tx=commit"], Prefer()),
    (["handling=strict, max-affected=5"], Prefer(strict=True, max_affected=5)),
    (["handling=lenient, bogus, params=single-object"], Prefer()),
    (["timezone=America/Los_Angeles"], Prefer(timezone="America/Los_Angeles")),
    (["max-affected=x"], Prefer()),
]


@pytest.mark.parametrize(("values", "expected"), PREFERS)
def test_prefer_tokens_are_read_from_every_header_first_per_family(values: list[str], expected: Prefer) -> None:
    assert parse_prefer(values) == expected


def test_prefer_tokens_keep_the_preference_applied_order() -> None:
    prefer = parse_prefer(["count=exact, return=representation"])
    assert prefer.applied() == "return=representation, count=exact"


@pytest.mark.parametrize("values", [["handling=strict, bogus"], ["bogus", "handling=strict"],
                                    ["handling=strict,count=bogus"], ["handling=strict,max-affected=-1"]])
def test_strict_handling_rejects_unknown_preferences(values: list[str]) -> None:
    error = fails(400, "INVALID_QUERY", "PGRST122", parse_prefer, values)
    assert error.message.startswith("Invalid preferences: ")


def test_several_prefer_headers_are_all_read() -> None:
    headers = Headers(raw=[(b"prefer", b"return=representation"), (b"prefer", b"count=exact")])
    parsed = parse_records("DELETE", "items", "id=eq.2", headers, b"")
    assert parsed.prefer == Prefer(return_="representation", count="exact")
    assert parsed.request == Delete(Target("items"), where=(flt("id", "eq", "2"),), count="exact")


# --------------------------------------------------------------------------- Accept

ACCEPTS = [
    ([], "json"),
    ([""], "json"),
    (["*/*"], "json"),
    (["application/json"], "json"),
    (["application/json; charset=utf-8"], "json"),
    (["APPLICATION/JSON"], "json"),
    (["application/*"], "json"),
    (["application/vnd.pgrst.object+json"], "object"),
    (["application/vnd.pgrst.object+json;nulls=stripped"], "object"),
    (["application/vnd.pgrst.object"], "object"),
    (["text/csv"], "csv"),
    (["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"], "json"),
    (["application/json;q=0.5, text/csv"], "csv"),
    (["text/csv;q=0.2, application/vnd.pgrst.object+json;q=0.9"], "object"),
    (["text/csv;q=0, application/json"], "json"),
    (["text/unknowntype, application/json;q=0.1"], "json"),
]


@pytest.mark.parametrize(("values", "expected"), ACCEPTS)
def test_the_accept_header_is_negotiated_by_quality(values: list[str], expected: str) -> None:
    assert negotiate(values) == expected


@pytest.mark.parametrize("value", ["text/unknowntype", "application/xml", "text/csv;q=0", "image/*"])
def test_an_unproducible_accept_is_rejected_with_406(value: str) -> None:
    error = fails(406, "PGRST107", "PGRST107", negotiate, [value])
    assert "None of these media types are available" in error.message


def test_the_object_accept_asks_for_a_single_row_on_every_method() -> None:
    accept = {"Accept": "application/vnd.pgrst.object+json"}
    assert records("GET", "id=eq.5", accept).request.single
    assert records("POST", "", accept, b"{}").request.single
    assert records("PATCH", "id=eq.1", accept, b"{}").request.single
    assert records("DELETE", "id=eq.1", accept).request.single
    assert parse_rpc("POST", "fn", "", accept, b"{}").request.single
    assert records("GET", "id=eq.5", accept).accept == "object"


# --------------------------------------------------------------------------- schema profiles

PROFILES: list[tuple[str, str, dict[str, str], str | None]] = [
    ("GET", "", {}, None),
    ("GET", "schema=analytics", {}, "analytics"),
    ("GET", "", {"Accept-Profile": "analytics"}, "analytics"),
    ("HEAD", "", {"accept-profile": "analytics"}, "analytics"),
    ("GET", "", {"Content-Profile": "analytics"}, None),  # reads use Accept-Profile
    ("POST", "", {"Content-Profile": "analytics"}, "analytics"),
    ("PATCH", "", {"Accept-Profile": "analytics"}, None),  # writes use Content-Profile
    ("DELETE", "", {"Content-Profile": "analytics"}, "analytics"),
    ("GET", "schema=a", {"Accept-Profile": "b"}, "a"),
]


@pytest.mark.parametrize(("method", "qs", "headers", "schema"), PROFILES)
def test_the_schema_comes_from_the_query_or_the_profile_header(method: str, qs: str, headers: dict[str, str],
                                                               schema: str | None) -> None:
    parsed = records(method, qs, headers, b"{}")
    assert parsed.schema == schema
    assert parsed.request.target == Target("items", schema)


def test_the_default_schema_header_is_used_when_nothing_names_a_schema() -> None:
    assert records("GET", "", {}, default_schema_header="app").schema == "app"
    assert records("GET", "", {"Accept-Profile": "x"}, default_schema_header="app").schema == "x"


@pytest.mark.parametrize(("qs", "headers"), [
    ("schema=", {}), ("schema=%20", {}), ("schema=pg_catalog", {}), ("schema=PG_toast", {}),
    ("schema=information_schema", {}), ("schema=a&schema=b", {}), ("", {"Accept-Profile": ""}),
    ("", {"Accept-Profile": "pg_temp"}),
])
def test_a_blank_system_or_repeated_schema_is_rejected_with_invalid_input(qs: str, headers: dict[str, str]) -> None:
    fails(400, "INVALID_INPUT", None, records, "GET", qs, headers)
    fails(400, "INVALID_INPUT", None, parse_rpc, "GET", "fn", qs, headers, b"")


# --------------------------------------------------------------------------- writes


def test_a_post_without_prefer_inserts_the_object_and_returns_no_rows() -> None:
    parsed = records("POST", "", {"Content-Type": "application/json"}, b'{"title":"a"}')
    assert parsed.request == Insert(Target("items"), ({"title": "a"},), return_rows=False)


def test_a_post_with_representation_count_and_select_shapes_the_returning() -> None:
    parsed = records("POST", "select=id,name,clients(id,name)",
                     {"Prefer": "return=representation, count=exact"}, b'[{"id":6,"name":"x","client_id":1}]')
    insert = parsed.request
    assert isinstance(insert, Insert)
    assert (insert.return_rows, insert.count) == (True, "exact")
    assert insert.returning[2] == SelectEmbed("clients", (SelectColumn(FieldRef("id")), SelectColumn(FieldRef("name"))))
    assert parsed.prefer.applied() == "return=representation, count=exact"


@pytest.mark.parametrize(("qs", "prefer", "fields"), [
    ("on_conflict=id&select=*", "resolution=merge-duplicates, return=representation",
     {"on_conflict": ("id",), "resolution": "merge-duplicates", "return_rows": True, "returning": (SelectStar(),)}),
    ("on_conflict=a,b", "resolution=ignore-duplicates", {"on_conflict": ("a", "b"), "resolution": "ignore-duplicates"}),
    ("on_conflict=%22a%22", "", {"on_conflict": ("a",), "resolution": None}),
    ("columns=%22title%22%2C%22body%22", "missing=default", {"columns": ("title", "body"), "missing_default": True}),
    ("", "tx=rollback", {"rollback": True}),
    ("", "return=headers-only", {"return_rows": False}),
    ("id=eq.1&limit=3", "", {"put": False, "put_filters": ()}),  # root filters on POST are ignored
])
def test_a_post_carries_upsert_and_column_options(qs: str, prefer: str, fields: dict[str, Any]) -> None:
    insert = records("POST", qs, {"Prefer": prefer}, b'[{"title":"a","body":"b"}]').request
    for name, value in fields.items():
        assert getattr(insert, name) == value, name


@pytest.mark.parametrize(("body", "rows"), [
    (b"{}", ({},)),
    (b"[]", ()),
    (b'[{"a":1,"b":{"nested":[1]}},{"b":null,"a":2}]', ({"a": 1, "b": {"nested": [1]}}, {"b": None, "a": 2})),
    (b' \n [{"a":1}] ', ({"a": 1},)),
])
def test_a_post_body_is_an_object_or_an_array_of_objects(body: bytes, rows: tuple[Any, ...]) -> None:
    assert records("POST", "", {}, body).request.rows == rows  # type: ignore[union-attr]


def test_objects_with_different_keys_need_columns() -> None:
    body = b'[{"title":"a"},{"body":"b"}]'
    fails(400, "VALIDATION_ERROR", "PGRST102", records, "POST", "", {}, body)
    assert records("POST", "columns=title,body", {}, body).request.rows == ({"title": "a"}, {"body": "b"})  # type: ignore[union-attr]


@pytest.mark.parametrize(("method", "body", "message"), [
    ("POST", b"", "Empty request body"),
    ("POST", b"  ", "Empty request body"),
    ("POST", b"{bad", "Invalid JSON body"),
    ("POST", b"\xff\xfe", "Invalid JSON body"),
    ("POST", b"5", "object or an array of objects"),
    ("POST", b'"text"', "object or an array of objects"),
    ("POST", b"null", "object or an array of objects"),
    ("POST", b"[1,2]", "object or an array of objects"),
    ("POST", b"[[]]", "object or an array of objects"),
    ("PATCH", b"", "Empty request body"),
    ("PATCH", b"[{}]", "must be an object"),
    ("PATCH", b"{", "Invalid JSON body"),
    ("PUT", b"[{},{}]", "exactly one"),
    ("PUT", b"", "Empty request body"),
])
def test_a_bad_write_body_is_rejected_with_validation_error(method: str, body: bytes, message: str) -> None:
    error = fails(400, "VALIDATION_ERROR", "PGRST102", records, method, "id=eq.1", {}, body)
    assert message in error.message


@pytest.mark.parametrize("qs", ["columns=", "columns=a,", "on_conflict=", "on_conflict=a,,b"])
def test_an_empty_or_malformed_name_list_is_rejected_with_invalid_query(qs: str) -> None:
    fails(400, "INVALID_QUERY", "PGRST100", records, "POST", qs, {}, b"{}")


def test_a_patch_becomes_an_update_of_the_filtered_rows() -> None:
    parsed = records("PATCH", "id=eq.1&select=id", {"Prefer": "return=representation"}, b'{"title":"b"}')
    assert parsed.request == Update(Target("items"), {"title": "b"}, where=(flt("id", "eq", "1"),),
                                    returning=(SelectColumn(FieldRef("id")),), return_rows=True)
    assert records("PATCH", "id=eq.2", {}, b"{}").request.return_rows is False  # type: ignore[union-attr]


def test_max_affected_is_enforced_only_with_strict_handling() -> None:
    strict = records("PATCH", "", {"Prefer": "handling=strict, max-affected=2"}, b"{}").request
    lenient = records("DELETE", "", {"Prefer": "max-affected=2"}).request
    assert (strict.max_affected, lenient.max_affected) == (2, None)  # type: ignore[union-attr]


@pytest.mark.parametrize("body", [b"", b"{}", b"not json"])
def test_a_delete_ignores_its_body(body: bytes) -> None:
    parsed = records("DELETE", "id=eq.1", {"Content-Type": "application/json"}, body)
    assert parsed.request == Delete(Target("items"), where=(flt("id", "eq", "1"),), return_rows=False)


@pytest.mark.parametrize(("method", "qs", "code"), [
    ("PATCH", "limit=1", "PGRST100"), ("DELETE", "offset=1", "PGRST100"),
    ("PUT", "k=eq.1&limit=1", "PGRST114"), ("PUT", "k=eq.1&offset=0", "PGRST114"),
])
def test_limit_and_offset_are_refused_on_writes(method: str, qs: str, code: str) -> None:
    fails(400, "INVALID_QUERY", code, records, method, qs, {}, b"{}")


def test_a_put_is_a_merge_upsert_of_one_row_carrying_its_url_filters() -> None:
    insert = records("PUT", "name=eq.Java", {"Prefer": "return=representation"}, b'{"name":"Java","rank":1}').request
    assert insert == Insert(Target("items"), ({"name": "Java", "rank": 1},), resolution="merge-duplicates",
                            return_rows=True, put=True, put_filters=(flt("name", "eq", "Java"),))
    # the planner checks that the filters are eq on the full primary key (405 PGRST105 otherwise)
    assert records("PUT", "rank=eq.19", {}, b"[{}]").request.put_filters == (flt("rank", "eq", "19"),)  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT"])
def test_an_unsupported_records_method_is_rejected_with_405(method: str) -> None:
    fails(405, "PGRST117", "PGRST117", records, method)


def test_the_method_name_is_case_insensitive_and_head_is_a_bodiless_read() -> None:
    request = records("head", "select=id", {"Prefer": "count=exact"}).request
    assert isinstance(request, Read) and request.head and request.count == "exact"


# --------------------------------------------------------------------------- RPC


def test_rpc_get_arguments_are_the_parameters_without_an_operator() -> None:
    call = rpc("GET", "a=3&b=4&id=gt.2&a=5&x=not.is.null&order=id.desc&limit=2&select=id")
    assert call.args == {"a": "5", "b": "4"}  # a repeated plain parameter keeps its last value
    assert call.where == (flt("id", "gt", "2"), flt("x", "is", "null", negate=True))
    assert (call.order, call.limit, call.select) == ((Order(FieldRef("id"), "desc"),), 2,
                                                     (SelectColumn(FieldRef("id")),))
    assert (call.read_only, call.args_from_query, call.positional_json, call.head) == (True, True, False, False)


@pytest.mark.parametrize("value", ["5", "eq", "hello world", "equal.x", "{1,2}", "in(1)", "a.b"])
def test_an_rpc_get_value_without_an_operator_is_an_argument(value: str) -> None:
    call = rpc("GET", f"p={quote(value)}")
    assert (call.args, call.where) == ({"p": value}, ())


@pytest.mark.parametrize("value", ["eq.5", "in.(1,2)", "eq(any).{1}", "fts(english).x", "not.eq.x"])
def test_an_rpc_get_value_that_reads_as_op_value_filters_the_result(value: str) -> None:
    call = rpc("GET", f"p={quote(value)}")
    assert call.args == {} and len(call.where) == 1


def test_an_rpc_get_value_starting_with_not_must_be_a_valid_filter() -> None:
    fails(400, "INVALID_QUERY", "PGRST100", rpc, "GET", "p=not.x")


@pytest.mark.parametrize(("method", "body", "args", "raw"), [
    ("POST", b'{"name":"world"}', {"name": "world"}, {"name": "world"}),
    ("POST", b"{}", {}, {}),
    ("POST", b'[{"a":1},{"a":2}]', {"a": 1}, [{"a": 1}, {"a": 2}]),
    ("POST", b"[]", {}, []),
    ("POST", b"[1,2]", {}, [1, 2]),
    ("POST", b"42", {}, 42),
    ("PUT", b'{"a":1}', {"a": 1}, {"a": 1}),
    ("PATCH", b'{"a":1}', {"a": 1}, {"a": 1}),
    ("DELETE", b'{"a":1}', {"a": 1}, {"a": 1}),
])
def test_rpc_arguments_come_from_the_json_body_on_other_methods(method: str, body: bytes, args: dict[str, Any],
                                                                raw: Any) -> None:
    call = rpc(method, "", {}, body)
    assert (call.args, call.raw_body, call.positional_json) == (args, raw, True)
    assert (call.read_only, call.args_from_query) == (False, False)


def test_an_rpc_call_without_a_body_takes_its_arguments_from_the_query() -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        call = rpc(method, "a=1&id=eq.2")
        assert (call.args, call.where, call.args_from_query, call.positional_json) == (
            {"a": "1"}, (flt("id", "eq", "2"),), True, False)
        assert call.read_only is False


def test_rpc_query_parameters_beside_a_body_are_filters() -> None:
    call = rpc("POST", "id=gt.1", {}, b'{"a":1}')
    assert call.where == (flt("id", "gt", "1"),)
    fails(400, "INVALID_QUERY", "PGRST100", rpc, "POST", "a=1", {}, b'{"a":1}')


def test_rpc_head_counts_and_single_object_come_from_headers() -> None:
    call = rpc("HEAD", "", {"Prefer": "count=exact", "Accept": "application/vnd.pgrst.object+json"})
    assert (call.head, call.count, call.single, call.read_only) == (True, "exact", True, True)


def test_a_bad_rpc_body_is_rejected_with_validation_error() -> None:
    fails(400, "VALIDATION_ERROR", "PGRST102", rpc, "POST", "", {}, b"{nope")


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
def test_an_unsupported_rpc_method_is_rejected_with_405(method: str) -> None:
    fails(405, "PGRST101", "PGRST101", rpc, method)


def test_an_rpc_call_names_its_function_and_schema() -> None:
    parsed = parse_rpc("POST", "get_user_stats", "", {"Content-Profile": "analytics"}, b'{"user_id":"u"}')
    assert parsed.request.target == Target("get_user_stats", "analytics") and parsed.schema == "analytics"
    assert rpc("GET", "", {"Accept-Profile": "x"}).target.schema == "x"


# --------------------------------------------------------------------------- what the SDKs send (behavior §2)


def test_the_js_sdk_list_query_parses() -> None:
    request = read("select=id%2Ctitle%2Cauthor%3Ausers%28name%29&status=eq.published&views=gt.10"
                   "&order=created_at.desc&limit=10")
    assert request.select == (SelectColumn(FieldRef("id")), SelectColumn(FieldRef("title")),
                              SelectEmbed("users", (SelectColumn(FieldRef("name")),), alias="author"))
    assert request.where == (flt("status", "eq", "published"), flt("views", "gt", "10"))
    assert (request.order, request.limit) == ((Order(FieldRef("created_at"), "desc"),), 10)


def test_the_js_sdk_filter_helpers_parse() -> None:
    request = read("or=%28status.eq.a%2Cstatus.eq.b%29&id=in.%281%2C2%29&deleted_at=is.null&title=ilike.%25x%25")
    assert request.where == (BoolExpr("or", (flt("status", "eq", "a"), flt("status", "eq", "b"))),
                             flt("id", "in", ("1", "2")), flt("deleted_at", "is", "null"),
                             flt("title", "ilike", "%x%"))


def test_the_js_sdk_count_head_and_single_requests_parse() -> None:
    ranged = records("GET", "select=*&offset=0&limit=10", {"Prefer": "count=exact"}).request
    assert (ranged.offset, ranged.limit, ranged.count) == (0, 10, "exact")  # type: ignore[union-attr]
    head = records("HEAD", "select=*", {"Prefer": "count=exact"}).request
    assert head.head and head.count == "exact"  # type: ignore[union-attr]
    single = records("GET", "select=*&id=eq.1", {"Accept": "application/vnd.pgrst.object+json"})
    assert single.accept == "object" and single.request.single


def test_the_python_sdk_requests_parse() -> None:
    request = read("select=id%2Ctitle&status=eq.published&order=created_at.desc&limit=10&offset=20")
    assert (request.limit, request.offset, len(request.where)) == (10, 20, 1)
    insert = records("POST", "", {"X-API-Key": "ik_x", "User-Agent": "InsForge-Python/0.1.0"}, b'[{"a":1}]')
    assert insert.request.rows == ({"a": 1},)  # type: ignore[union-attr]
    delete = records("DELETE", "id=eq.1", {}, b"")
    assert isinstance(delete.request, Delete)


# --------------------------------------------------------------------------- robustness

_QUERY_ALPHABET = "abcid.,()\"\\*:!->{}=&%+ 0129_$[]é\x00\t"
_KEYS = st.sampled_from(["select", "order", "limit", "offset", "or", "and", "not.or", "columns", "on_conflict",
                         "schema", "id", "tasks.id", "tasks.order", "a.b.limit", "clients", "data->a", ""])
_TEXT = st.text(alphabet=_QUERY_ALPHABET, max_size=40)
_VALUES = st.one_of(_TEXT, st.sampled_from(["eq.1", "in.(1,2)", "is.null", "eq(any).{1,2}", "(a.eq.1)",
                                            "id,tasks(id)", "id.desc", "-1", "3", "fts(x).y", "not.in.()"]))
_QUERY = st.lists(st.tuples(st.one_of(_KEYS, _TEXT), _VALUES), max_size=6).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
_HEADERS = st.dictionaries(
    st.sampled_from(["Prefer", "Accept", "Range", "Range-Unit", "Accept-Profile", "Content-Profile"]),
    st.one_of(st.text(max_size=30), st.sampled_from(["count=exact", "handling=strict,x", "0-1", "9-1",
                                                     "text/csv", "application/vnd.pgrst.object+json"])))
_BODY = st.one_of(st.binary(max_size=40), st.sampled_from([b"{}", b"[]", b'[{"a":1},{"b":2}]', b'{"a":1}']))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"]),
       query=st.one_of(_QUERY, st.text(max_size=60)), headers=_HEADERS, body=_BODY)
def test_any_input_yields_a_parsed_request_or_a_gateway_error(method: str, query: str, headers: dict[str, str],
                                                              body: bytes) -> None:
    for parse in (parse_records, parse_rpc):
        try:
            parsed = parse(method, "t", query, headers, body)
        except GatewayError as error:
            assert 300 <= error.status < 500
        else:
            assert isinstance(parsed, ParsedRequest)
