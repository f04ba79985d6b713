"""The error table and the SQLSTATE table: each error value has the statuses that fit its name and
advice for every front end; each PostgreSQL error class maps to one status and one error value.
The table walk also reads the package's source, so an error raised anywhere must be in the table."""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path

import pytest
from support import app_with, assert_error

from gateway import errors

PACKAGE = Path(errors.__file__).parent


@pytest.mark.parametrize(("sqlstate", "anonymous", "status", "error"), [
    ("23505", False, 409, "DATABASE_DUPLICATE"),
    ("23503", False, 409, "DATABASE_CONSTRAINT_VIOLATION"),
    ("23502", False, 400, "VALIDATION_ERROR"),
    ("23514", False, 400, "VALIDATION_ERROR"),
    ("22P02", False, 400, "VALIDATION_ERROR"),
    ("22007", False, 400, "VALIDATION_ERROR"),
    ("42501", False, 403, "FORBIDDEN"),
    ("42501", True, 401, "FORBIDDEN"),
    ("42P01", False, 404, "TABLE_NOT_FOUND"),
    ("42883", False, 404, "DATABASE_NOT_FOUND"),
    ("42703", False, 400, "INVALID_QUERY"),
    ("25006", False, 405, "METHOD_NOT_ALLOWED"),
    ("P0001", False, 400, "VALIDATION_ERROR"),
    ("PT402", False, 402, "PAYMENT_REQUIRED"),
    ("PT400", False, 400, "VALIDATION_ERROR"),
    ("08006", False, 503, "SERVICE_UNAVAILABLE"),
    ("53300", False, 503, "SERVICE_UNAVAILABLE"),
    ("XX000", False, 500, "INTERNAL_ERROR"),
])
def test_a_sqlstate_maps_to_its_status_and_error(sqlstate: str, anonymous: bool, status: int, error: str) -> None:
    err = errors.from_sqlstate(sqlstate, "message", anonymous=anonymous)
    assert (err.status, err.error, err.code) == (status, error, sqlstate)


def test_anonymous_permission_errors_ask_for_credentials() -> None:
    assert errors.from_sqlstate("42501", "denied", anonymous=True).headers["WWW-Authenticate"] == "Bearer"


def test_a_statement_timeout_says_so() -> None:
    err = errors.from_sqlstate("57014", "canceling statement due to statement timeout")
    assert err.message.startswith("Query timeout:")


@pytest.mark.parametrize(("sqlstate", "status", "error"), [
    ("23505", 409, "DATABASE_DUPLICATE"),
    ("23503", 400, "DATABASE_CONSTRAINT_VIOLATION"),
    ("23502", 400, "MISSING_FIELD"),
    ("42P01", 400, "DATABASE_VALIDATION_ERROR"),
    ("42501", 403, "FORBIDDEN"),
])
def test_admin_paths_use_insforges_mapping(sqlstate: str, status: int, error: str) -> None:
    err = errors.from_sqlstate(sqlstate, "m", rules=errors.ADMIN_SQLSTATE_RULES)
    assert (err.status, err.error) == (status, error)


def test_every_error_body_carries_the_four_spec_keys() -> None:
    body = errors.table_not_found("nope").body()
    assert body["error"] == "TABLE_NOT_FOUND"
    assert body["message"] == "Table 'nope' does not exist"
    assert body["statusCode"] == 404
    assert body["nextActions"] == "Check table name and try again"
    assert body["code"] == "42P01"


# --------------------------------------------------------------------------- the error table

# What an error value's name promises about its status (first matching rule wins).
NAME_STATUSES: tuple[tuple[str, set[int]], ...] = (
    (r"^PGRST", {300, 400, 405, 406, 416}),  # PostgREST's own codes: PostgREST's statuses
    (r"^FORBIDDEN$", {401, 403}),  # 401 for anon: the spec's (and PostgREST's) answer to 42501
    (r"^AUTH_", {401}),
    (r"NOT_FOUND$", {404}),
    (r"^METHOD_NOT_ALLOWED$", {405}),
    (r"(DUPLICATE|ALREADY_EXISTS)$", {409}),
    (r"^DATABASE_CONSTRAINT_VIOLATION$", {400, 409}),
    (r"^PAYLOAD_TOO_LARGE$", {413}),
    (r"^URI_TOO_LONG$", {414}),
    (r"^REQUEST_HEADER_FIELDS_TOO_LARGE$", {431}),
    (r"^SERVICE_UNAVAILABLE$", {503}),
    (r"^QUERY_TIMEOUT$", {504}),
    (r"^INTERNAL_ERROR$", {500}),
    (r"(^INVALID_|_ERROR$|^MISSING_)", {400}),
)


def _promised(name: str) -> set[int]:
    return next(statuses for pattern, statuses in NAME_STATUSES if re.search(pattern, name))


@pytest.mark.parametrize("name", sorted(errors.ERRORS))
def test_every_error_value_has_statuses_fitting_its_name_and_advice_for_each_front_end(name: str) -> None:
    kind = errors.ERRORS[name]
    assert kind.statuses and set(kind.statuses) <= _promised(name), (name, kind.statuses)
    for front in errors.FRONTS:
        advice = kind.advice(front)
        assert advice.strip() and advice[0].isupper(), (name, front)
    assert "PostgREST" not in kind.advice("graphql")  # GraphQL clients never see PostgREST's syntax
    assert "RLS" not in kind.advice("admin")  # the admin bypasses RLS


def _raised_in_source() -> set[tuple[int, str, str]]:
    """(status, error value, file) for every literal status/error pair the package constructs."""
    patterns = (r'GatewayError\(\s*(\d{3}),\s*"([A-Z0-9_]+)"', r'postgrest\(\s*(\d{3}),\s*"([A-Z0-9]+)"',
                r'SqlstateRule\("[^"]*",\s*(\d{3}),\s*"([A-Z_]+)"')
    found = set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for pattern in patterns:
            found |= {(int(status), error, path.name) for status, error in re.findall(pattern, text)}
    return found


def test_every_error_the_package_raises_is_in_the_table_with_that_status() -> None:
    raised = _raised_in_source()
    assert len(raised) > 30  # the scan found the package's errors, not nothing
    wrong = {(status, error, where) for status, error, where in raised
             if error not in errors.ERRORS or status not in errors.ERRORS[error].statuses}
    assert not wrong


@pytest.mark.parametrize("rules", [errors.SQLSTATE_RULES, errors.ADMIN_SQLSTATE_RULES])
def test_every_sqlstate_rule_sends_an_error_value_of_the_table_with_a_status_it_allows(
        rules: tuple[errors.SqlstateRule, ...]) -> None:
    for rule in rules:
        allowed = errors.ERRORS[rule.error].statuses
        assert rule.status in allowed and (rule.anon_status or rule.status) in allowed, rule


def test_an_error_raised_with_a_status_of_its_own_is_named_after_the_status_and_says_where_to_look() -> None:
    body = errors.from_sqlstate("PT418", "no coffee here").body()
    assert (body["statusCode"], body["error"]) == (418, HTTPStatus(418).name)
    assert body["nextActions"] == errors.RAISED


def test_the_spec_wording_of_the_records_advice_is_kept() -> None:
    assert errors.advice("TABLE_NOT_FOUND") == "Check table name and try again"
    assert errors.advice("INVALID_QUERY") == "Check PostgREST filter documentation"
    assert errors.advice("VALIDATION_ERROR") == "Ensure field types match the table schema"


# --------------------------------------------------------------------------- over HTTP

SETUP = """
CREATE SCHEMA err_hints;
CREATE TABLE err_hints.counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
GRANT USAGE ON SCHEMA err_hints TO anon, authenticated;
GRANT ALL ON err_hints.counters TO authenticated;
CREATE FUNCTION err_hints.bump() RETURNS int LANGUAGE sql VOLATILE AS
  $$ INSERT INTO err_hints.counters VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = counters.n + 1 RETURNING n $$;
GRANT EXECUTE ON FUNCTION err_hints.bump() TO authenticated;
"""
TEARDOWN = "DROP SCHEMA err_hints CASCADE"


@pytest.fixture
async def hints(pg_url: str):  # type: ignore[no-untyped-def]
    async with app_with(pg_url, SETUP, ("err_hints",), TEARDOWN) as running:
        yield running


async def test_an_admin_only_endpoint_asks_for_the_api_key_not_for_rls_policies(hints) -> None:  # type: ignore[no-untyped-def]
    body = assert_error(await hints.client.get("/api/database/tables", headers=hints.user()), 403, "FORBIDDEN")
    assert "API key" in body["nextActions"] and "RLS" not in body["nextActions"]


@pytest.mark.parametrize("query", ["{ counters { nope } }", "{ counters(limit: 100000) { id } }"])
async def test_graphql_errors_give_graphql_advice(hints, query: str) -> None:  # type: ignore[no-untyped-def]
    r = await hints.client.post("/graphql", json={"query": query}, headers=hints.user())
    extensions = r.json()["errors"][0]["extensions"]
    assert extensions["error"] == "INVALID_QUERY"
    assert "PostgREST" not in extensions["nextActions"] and "schema" in extensions["nextActions"]


async def test_a_graphql_mutation_over_get_says_to_use_post(hints) -> None:  # type: ignore[no-untyped-def]
    r = await hints.client.get("/graphql", params={"query": "mutation { bump }"}, headers=hints.user())
    extensions = r.json()["errors"][0]["extensions"]
    assert (r.status_code, extensions["error"], extensions["statusCode"]) == (405, "METHOD_NOT_ALLOWED", 405)
    assert "POST" in extensions["nextActions"]


async def test_a_volatile_function_over_get_is_a_405_method_not_allowed_that_says_to_use_post(hints) -> None:  # type: ignore[no-untyped-def]
    body = assert_error(await hints.client.get("/api/database/rpc/bump", headers=hints.user()),
                        405, "METHOD_NOT_ALLOWED")
    assert "POST" in body["nextActions"]


async def test_an_out_of_range_integer_says_out_of_range_and_names_the_value(hints) -> None:  # type: ignore[no-untyped-def]
    huge = "99999999999999999999"
    body = assert_error(await hints.client.get(f"/api/database/records/counters?limit={huge}",
                                               headers=hints.user()), 400, "INVALID_QUERY")
    assert "out of range" in body["message"] and huge in body["message"]
    body = assert_error(await hints.client.get("/api/database/records/counters?n=eq.99999999999",
                                               headers=hints.user()), 400, "VALIDATION_ERROR")
    assert "out of range" in body["message"] and "99999999999" in body["message"]
    body = assert_error(await hints.client.post("/api/database/records/counters", json=[{"id": 1, "n": 2**40}],
                                                headers=hints.user()), 400, "VALIDATION_ERROR")
    assert body["message"] == f"Value {2**40} for 'n' is out of range for int4 (-2147483648 to 2147483647)"


async def test_a_body_value_of_the_wrong_type_names_the_value(hints) -> None:  # type: ignore[no-untyped-def]
    body = assert_error(await hints.client.post("/api/database/records/counters", json=[{"id": 1, "n": "many"}],
                                                headers=hints.user()), 400, "VALIDATION_ERROR")
    assert body["message"] == "Invalid field type: expected integer for 'n', got \"many\""
    assert body["nextActions"] == "Ensure field types match the table schema"


def test_an_anonymous_permission_error_says_to_sign_in() -> None:
    assert errors.from_sqlstate("42501", "denied", anonymous=True).body()["nextActions"] == errors.ANON_REFUSED


def test_an_http_level_error_is_named_after_its_status_and_says_what_to_check() -> None:
    body = errors.status_error(409, "Conflict").body()
    assert (body["error"], body["statusCode"]) == ("CONFLICT", 409) and "method" in body["nextActions"]
