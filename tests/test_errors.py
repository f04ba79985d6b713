"""The SQLSTATE table: each PostgreSQL error class maps to one status and one spec error value."""

from __future__ import annotations

import pytest

from gateway import errors


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
    ("25006", False, 405, "FORBIDDEN"),
    ("P0001", False, 400, "VALIDATION_ERROR"),
    ("PT402", False, 402, "VALIDATION_ERROR"),
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
