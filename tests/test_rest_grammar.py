"""The REST query grammars: select, filters, logic trees, order (gateway/rest/grammar.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError
from gateway.request import (
    STAR,
    BoolExpr,
    FieldRef,
    Filter,
    JsonStep,
    Order,
    SelectColumn,
    SelectEmbed,
    SelectStar,
)
from gateway.rest.grammar import (
    MAX_DEPTH,
    OPERATORS,
    parse_field,
    parse_filter,
    parse_logic,
    parse_names,
    parse_order,
    parse_select,
    parse_tree_path,
)


def col(name: str, *path: tuple[str, bool]) -> FieldRef:
    return FieldRef(name, tuple(JsonStep(k, t) for k, t in path))


def flt(name: str, op: str, value: object, **kw: object) -> Filter:
    return Filter(col(name), op, value, **kw)  # type: ignore[arg-type]


def assert_invalid(fn: object, *args: str, code: str = "PGRST100") -> GatewayError:
    with pytest.raises(GatewayError) as info:
        fn(*args)  # type: ignore[operator]
    assert (info.value.status, info.value.error, info.value.code) == (400, "INVALID_QUERY", code)
    return info.value


# --------------------------------------------------------------------------- filters

FILTERS = [
    ("id", "eq.5", flt("id", "eq", "5")),
    ("age", "gte.18", flt("age", "gte", "18")),
    ("name", "eq.a,b", flt("name", "eq", "a,b")),  # plain values are verbatim
    ("name", "eq.", flt("name", "eq", "")),
    ("name", "eq.x.y (z)", flt("name", "eq", "x.y (z)")),
    ("name", "ilike.*john*", flt("name", "ilike", "%john%")),
    ("k", "like.*yx", flt("k", "like", "%yx")),
    ("title", "ilike.%x%", flt("title", "ilike", "%x%")),  # the JS SDK sends % itself
    ("k", "match.^x*y", flt("k", "match", "^x*y")),  # no * rewrite for regexes
    ("a", "not.is.null", flt("a", "is", "null", negate=True)),
    ("a", "is.not_null", flt("a", "is", "not_null")),
    ("done", "is.NULL", flt("done", "is", "null")),
    ("done", "is.Unknown", flt("done", "is", "unknown")),
    ("done", "is.TRUE", flt("done", "is", "true")),
    ("a", "isdistinct.2", flt("a", "isdistinct", "2")),
    ("id", "in.(1,2)", flt("id", "in", ("1", "2"))),
    ("id", "not.in.(2,4,6)", flt("id", "in", ("2", "4", "6"), negate=True)),
    ("name", 'in.("Hebdon, John","Williams, Mary")', flt("name", "in", ("Hebdon, John", "Williams, Mary"))),
    ("name", 'in.(David White,"Hebdon, John")', flt("name", "in", ("David White", "Hebdon, John"))),
    ("name", 'in.("Double\\"Quote")', flt("name", "in", ('Double"Quote',))),
    ("name", 'in.("back\\\\slash")', flt("name", "in", ("back\\slash",))),
    ("id", "in.()", flt("id", "in", ())),
    ("id", "not.in.()", flt("id", "in", (), negate=True)),
    ("id", "in.( ,3,4)", flt("id", "in", ("", "3", "4"))),
    ("id", "in.(a, b )", flt("id", "in", ("a", " b "))),  # raw elements are not trimmed
    ("id", 'in.("")', flt("id", "in", ("",))),
    ("id", 'in.("a"b,c)', flt("id", "in", ('"a"b', "c"))),  # a quote not closing an element is raw
    ("id", "eq(any).{3,4,5}", flt("id", "eq", ("3", "4", "5"), modifier="any")),
    ("id", "gt(all).{4,3}", flt("id", "gt", ("4", "3"), modifier="all")),
    ("t", "like(all).{O*,*n}", flt("t", "like", ("O%", "%n"), modifier="all")),
    ("t", 'ilike(any).{"a,*", b , "x\\"y"}', flt("t", "ilike", ("a,%", "b", 'x"y'), modifier="any")),
    ("id", "eq(any).{}", flt("id", "eq", (), modifier="any")),
    ("id", "not.eq(any).{1}", flt("id", "eq", ("1",), modifier="any", negate=True)),
    ("body", "fts.fat", flt("body", "fts", "fat")),
    ("body", "wfts.fat cat", flt("body", "wfts", "fat cat")),
    ("body", "fts(french).amusant", flt("body", "fts", "amusant", language="french")),
    ("body", "plfts(english).a b", flt("body", "plfts", "a b", language="english")),
    ("body", "not.phfts(simple).x", flt("body", "phfts", "x", language="simple", negate=True)),
    ("tags", "cs.{a,b}", flt("tags", "cs", "{a,b}")),
    ("tags", "cd.{a}", flt("tags", "cd", "{a}")),
    ("tags", "ov.{a,b}", flt("tags", "ov", "{a,b}")),
    ("r", "adj.(3,10]", flt("r", "adj", "(3,10]")),
    ("r", "sl.[1,2)", flt("r", "sl", "[1,2)")),
    ("r", "sr.[1,2)", flt("r", "sr", "[1,2)")),
    ("r", "nxr.[1,2)", flt("r", "nxr", "[1,2)")),
    ("r", "nxl.[1,2)", flt("r", "nxl", "[1,2)")),
    ("id", "neq.1", flt("id", "neq", "1")),
    ("k", "imatch.^X", flt("k", "imatch", "^X")),
    ("data->foo->>bar", "eq.baz", Filter(col("data", ("foo", False), ("bar", True)), "eq", "baz")),
    ("data->age", "gt.20", Filter(col("data", ("age", False)), "gt", "20")),
    ("arr->0->>-1", "eq.x", Filter(col("arr", ("0", False), ("-1", True)), "eq", "x")),
    ('"a.b"', "eq.1", flt("a.b", "eq", "1")),
    ("first name", "eq.x", flt("first name", "eq", "x")),
    ("kebab-case", "eq.x", flt("kebab-case", "eq", "x")),
    ("$weird_1", "eq.x", flt("$weird_1", "eq", "x")),
    ("données", "eq.x", flt("données", "eq", "x")),
]


@pytest.mark.parametrize(("key", "value", "expected"), FILTERS)
def test_a_filter_parses_into_the_request_model(key: str, value: str, expected: Filter) -> None:
    assert parse_filter(key, value) == expected


def test_every_operator_of_the_model_is_accepted() -> None:
    for op in OPERATORS:
        value = {"in": "in.(1)", "is": "is.null"}.get(op, f"{op}.1")
        assert parse_filter("c", value).op == op


BAD_FILTERS = [
    ("id", "0", "missing operator"),
    ("id", "foo.1", "unknown operator 'foo'"),
    ("id", "EQ.1", "unknown operator 'EQ'"),
    ("id", "", "empty filter value"),
    ("id", "eq", "'.'"),
    ("done", "is.nil", "'is' accepts only"),
    ("done", "is.nullx", "'is' accepts only"),
    ("id", "in.1,2", "'('"),
    ("id", "in.(1,2", "')'"),
    ("id", "in.(1,2)x", "unexpected text"),
    ("id", "neq(any).{1}", "does not take"),
    ("id", "in(any).(1)", "does not take"),
    ("id", "eq(some).{1}", "does not take"),
    ("id", "cs(any).{1}", "does not take"),
    ("body", "fts().x", "does not take"),
    ("id", "eq(any).1,2", "array value"),
    ("id", "eq(any).{1,,2}", "malformed array"),
    ("id", "eq(any).{{1},{2}}", "malformed array"),
    ("id", 'eq(any).{"1}', "malformed array"),
    ("id", "not.not.eq.1", "unknown operator 'not'"),
    ("", "eq.1", "column name"),
    ("a->", "eq.1", "column name"),
    ('"unterminated', "eq.1", "unterminated"),
    ('""', "eq.1", "column name"),
    ("a.b", "eq.1", "unexpected text"),  # an embed prefix is not part of a column
]


@pytest.mark.parametrize(("key", "value", "problem"), BAD_FILTERS)
def test_a_malformed_filter_is_rejected_with_invalid_query_naming_the_key(key: str, value: str,
                                                                          problem: str) -> None:
    error = assert_invalid(parse_filter, key, value)
    assert problem in error.message
    assert f"'{key}=" in error.message


# --------------------------------------------------------------------------- names and paths

FIELDS = [
    ("id", col("id")),
    ("  id  ", col("id")),
    ("settings->foo->>bar", col("settings", ("foo", False), ("bar", True))),
    ("data->a-b", col("data", ("a-b", False))),
    ('data->"x.y"->>0', col("data", ("x.y", False), ("0", True))),
    ("my-col->>k", col("my-col", ("k", True))),
]


@pytest.mark.parametrize(("text", "expected"), FIELDS)
def test_a_column_reference_keeps_its_json_path(text: str, expected: FieldRef) -> None:
    assert parse_field(text) == expected


@pytest.mark.parametrize(("key", "path", "field"), [
    ("name", (), col("name")),
    ("tasks.name", ("tasks",), col("name")),
    ("a.b.c->>d", ("a", "b"), col("c", ("d", True))),
    ('"x.y".id', ("x.y",), col("id")),
])
def test_a_filter_key_splits_into_embed_path_and_column(key: str, path: tuple[str, ...],
                                                        field: FieldRef) -> None:
    assert parse_tree_path(key, "filter") == (path, field)


@pytest.mark.parametrize(("text", "names"), [
    ("id", ("id",)),
    ("title,body", ("title", "body")),
    ('"title","body"', ("title", "body")),
    (' a , "b,c" ', ("a", "b,c")),
])
def test_a_name_list_accepts_quoted_names(text: str, names: tuple[str, ...]) -> None:
    assert parse_names(text, "columns") == names


@pytest.mark.parametrize("text", ["", " ", "a,", ",a", "a,,b", "a b,(c)"])
def test_a_malformed_name_list_is_rejected(text: str) -> None:
    assert_invalid(parse_names, text, "columns")


# --------------------------------------------------------------------------- logic trees

LOGIC = [
    ("or", "(id.eq.1,id.eq.2)", BoolExpr("or", (flt("id", "eq", "1"), flt("id", "eq", "2")))),
    ("not.or", "(id.eq.1,id.eq.2)",
     BoolExpr("or", (flt("id", "eq", "1"), flt("id", "eq", "2")), negate=True)),
    ("and", "(id.eq.1,not.or(id.eq.2,id.eq.3),id.in.(1,4))", BoolExpr("and", (
        flt("id", "eq", "1"),
        BoolExpr("or", (flt("id", "eq", "2"), flt("id", "eq", "3")), negate=True),
        flt("id", "in", ("1", "4"))))),
    ("and", "(id.eq.1,not.or(id.eq.2,id.eq.3),or(id.eq.1,id.eq.4))", BoolExpr("and", (
        flt("id", "eq", "1"),
        BoolExpr("or", (flt("id", "eq", "2"), flt("id", "eq", "3")), negate=True),
        BoolExpr("or", (flt("id", "eq", "1"), flt("id", "eq", "4")))))),
    ("or", '(name.eq."a,b",data->>c.eq.bar)', BoolExpr("or", (
        flt("name", "eq", "a,b"), Filter(col("data", ("c", True)), "eq", "bar")))),
    ("or", "( id.eq.1 ,  id.eq.2 )", BoolExpr("or", (flt("id", "eq", "1 "), flt("id", "eq", "2 ")))),
    ("or", "(tags.cs.{a,b},tags.ov.{c})", BoolExpr("or", (flt("tags", "cs", "{a,b}"), flt("tags", "ov", "{c}")))),
    ("or", "(id.eq(any).{1,2},t.like(all).{a*})", BoolExpr("or", (
        flt("id", "eq", ("1", "2"), modifier="any"), flt("t", "like", ("a%",), modifier="all")))),
    ("or", "(a.not.is.null,b.is.TRUE,c.is.unknown)", BoolExpr("or", (
        flt("a", "is", "null", negate=True), flt("b", "is", "true"), flt("c", "is", "unknown")))),
    ("or", "(name.ilike.*x*,body.fts(english).cat)", BoolExpr("or", (
        flt("name", "ilike", "%x%"), flt("body", "fts", "cat", language="english")))),
    ("and", "(clients.is.null)", BoolExpr("and", (flt("clients", "is", "null"),))),
    ("or", "(a.eq.,b.in.())", BoolExpr("or", (flt("a", "eq", ""), flt("b", "in", ())))),
    ("or", "(or.eq.1,and.gt.2)", BoolExpr("or", (flt("or", "eq", "1"), flt("and", "gt", "2")))),
]


@pytest.mark.parametrize(("key", "value", "expected"), LOGIC)
def test_a_logic_tree_parses_with_nesting_and_quoting(key: str, value: str, expected: BoolExpr) -> None:
    assert parse_logic(key, value) == expected


BAD_LOGIC = [
    ("or", "()"),
    ("or", "( )"),
    ("or", "id.eq.1"),
    ("or", "(id.eq.1"),
    ("or", "(id.eq.1,)"),
    ("or", "(id.eq.1)x"),
    ("or", "(id.foo.1)"),
    ("or", "(id.1)"),
    ("or", "(id)"),
    ("and", "(not.xor(a.eq.1))"),
    ("xor", "(a.eq.1)"),
    ("or", "(a.b.eq.1)"),
    ("or", "(a.is.nil)"),
]


@pytest.mark.parametrize(("key", "value"), BAD_LOGIC)
def test_a_malformed_logic_tree_is_rejected_with_invalid_query(key: str, value: str) -> None:
    assert_invalid(parse_logic, key, value)


def test_a_logic_tree_nested_too_deeply_is_rejected_not_overflowing() -> None:
    deep = "(" + "or(" * (MAX_DEPTH + 5) + "a.eq.1" + ")" * (MAX_DEPTH + 6)
    assert_invalid(parse_logic, "or", deep)
    assert parse_logic("or", "(" + "or(" * 10 + "a.eq.1" + ")" * 11).op == "or"


# --------------------------------------------------------------------------- select

SELECTS = [
    ("", STAR),
    ("  ", STAR),
    ("*", (SelectStar(),)),
    ("id,title", (SelectColumn(col("id")), SelectColumn(col("title")))),
    (" id , title ", (SelectColumn(col("id")), SelectColumn(col("title")))),
    ("myId:id::text", (SelectColumn(col("id"), alias="myId", cast="text"),)),
    ("id::nosuchtype", (SelectColumn(col("id"), cast="nosuchtype"),)),
    ("t::timestamp with time zone", (SelectColumn(col("t"), cast="timestamp with time zone"),)),
    ("a::int[]", (SelectColumn(col("a"), cast="int[]"),)),
    ("settings->foo->>bar", (SelectColumn(col("settings", ("foo", False), ("bar", True))),)),
    ("n:settings->foo->>int::integer",
     (SelectColumn(col("settings", ("foo", False), ("int", True)), alias="n", cast="integer"),)),
    ('"a.b",x:"c d"', (SelectColumn(col("a.b")), SelectColumn(col("c d"), alias="x"))),
    ("clients(*)", (SelectEmbed("clients", (SelectStar(),)),)),
    ("id,clients(*),tasks(id,name)", (SelectColumn(col("id")), SelectEmbed("clients", (SelectStar(),)),
                                      SelectEmbed("tasks", (SelectColumn(col("id")), SelectColumn(col("name")))))),
    ("author:users(name)", (SelectEmbed("users", (SelectColumn(col("name")),), alias="author"),)),
    ("users!author_id(name)", (SelectEmbed("users", (SelectColumn(col("name")),), hint="author_id"),)),
    ("clients!inner(id)", (SelectEmbed("clients", (SelectColumn(col("id")),), inner=True),)),
    ("clients!left(id)", (SelectEmbed("clients", (SelectColumn(col("id")),)),)),
    ("c:clients!client_fk!inner(id)",
     (SelectEmbed("clients", (SelectColumn(col("id")),), alias="c", hint="client_fk", inner=True),)),
    ("clients!inner!client_fk(id)",
     (SelectEmbed("clients", (SelectColumn(col("id")),), hint="client_fk", inner=True),)),
    ('clients!"inner"(id)', (SelectEmbed("clients", (SelectColumn(col("id")),), hint="inner"),)),
    ("...clients(client_name:name)",
     (SelectEmbed("clients", (SelectColumn(col("name"), alias="client_name"),), spread=True),)),
    ("...clients!fk(name)", (SelectEmbed("clients", (SelectColumn(col("name")),), hint="fk", spread=True),)),
    ("name,clients()", (SelectColumn(col("name")), SelectEmbed("clients", ()))),
    ("clients( )", (SelectEmbed("clients", ()),)),
    ("clients ( id , name )", (SelectEmbed("clients", (SelectColumn(col("id")), SelectColumn(col("name")))),)),
    ("a(b(c(d)))", (SelectEmbed("a", (SelectEmbed("b", (SelectEmbed("c", (SelectColumn(col("d")),)),)),)),)),
    ("id,theUsers:users(id)", (SelectColumn(col("id")), SelectEmbed("users", (SelectColumn(col("id")),),
                                                                      alias="theUsers"))),
    ("count", (SelectColumn(col("count")),)),
]


@pytest.mark.parametrize(("text", "expected"), SELECTS)
def test_a_select_parses_into_columns_and_embeds(text: str, expected: tuple[object, ...]) -> None:
    assert parse_select(text) == expected


BAD_SELECTS = [
    "id,", ",id", "id,,name", "clients(id", "clients(id))", "clients id)", "id::", "a:", ":a",
    "clients!(id)", "clients!inner!left(id)", "clients!a!b(id)", "...clients", "...(id)", "x:*",
    "id name)", "a->", '"open', "id!inner",
]


@pytest.mark.parametrize("text", BAD_SELECTS)
def test_a_malformed_select_is_rejected_with_invalid_query(text: str) -> None:
    assert_invalid(parse_select, text)


@pytest.mark.parametrize(("text", "expected"), [
    ("amount.sum()", SelectColumn(FieldRef("amount"), aggregate="sum")),
    ("count()", SelectColumn(FieldRef("*"), aggregate="count")),
    ("x.avg( )", SelectColumn(FieldRef("x"), aggregate="avg")),
    ("total:amount.max()::int", SelectColumn(FieldRef("amount"), "total", aggregate="max", aggregate_cast="int")),
    ("doc->>n::numeric.min()", SelectColumn(FieldRef("doc", (JsonStep("n", True),)), cast="numeric",
                                            aggregate="min")),
])
def test_an_aggregate_in_select_parses_with_its_casts(text: str, expected: SelectColumn) -> None:
    assert parse_select(text) == (expected,)


def test_a_select_nested_too_deeply_is_rejected_not_overflowing() -> None:
    assert_invalid(parse_select, "a(" * (MAX_DEPTH + 5) + "id" + ")" * (MAX_DEPTH + 5))


# --------------------------------------------------------------------------- order

ORDERS = [
    ("id", (Order(col("id")),)),
    ("id.desc", (Order(col("id"), "desc"),)),
    ("client_id.desc.nullslast,id.desc", (Order(col("client_id"), "desc", "last"), Order(col("id"), "desc"))),
    ("name.asc.nullsfirst", (Order(col("name"), "asc", "first"),)),
    ("name.nullsfirst", (Order(col("name"), None, "first"),)),
    ("data->>age.desc", (Order(col("data", ("age", True)), "desc"),)),
    ("clients(name).desc", (Order(col("name"), "desc", relation="clients"),)),
    ("clients(data->>x)", (Order(col("data", ("x", True)), relation="clients"),)),
    (" a.asc , b ", (Order(col("a"), "asc"), Order(col("b")))),
    ('"a.b".desc', (Order(col("a.b"), "desc"),)),
]


@pytest.mark.parametrize(("text", "expected"), ORDERS)
def test_an_order_parses_into_terms(text: str, expected: tuple[Order, ...]) -> None:
    assert parse_order(text) == expected


@pytest.mark.parametrize("text", [
    "", "id.asc.nullslasttt", "id.up", "id.desc.asc", "id.nullslast.desc", "id.nullsfirst.nullslast",
    "id,", "id.", "clients(name", "clients().desc", "a b(c",
])
def test_a_malformed_order_is_rejected_with_invalid_query(text: str) -> None:
    assert_invalid(parse_order, text)


# --------------------------------------------------------------------------- robustness

_GRAMMAR_TEXT = st.text(alphabet="abi.,()\"\\*:!->{}[] 01_$not.or.and.eq.in.is.null", max_size=50)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(_GRAMMAR_TEXT, st.text(max_size=50)))
def test_any_text_parses_or_raises_invalid_query(text: str) -> None:
    for parse, args in ((parse_select, (text,)), (parse_order, (text,)), (parse_filter, ("c", text)),
                        (parse_filter, (text, "eq.1")), (parse_logic, ("or", text)), (parse_field, (text,))):
        try:
            parse(*args)
        except GatewayError as error:
            assert (error.status, error.error) == (400, "INVALID_QUERY")
