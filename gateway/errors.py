"""The error model: every failure a client can see, and the one SQLSTATE table.

In:  a condition found by a pipeline stage, or a PostgreSQL error (SQLSTATE,
     message, detail, hint) handed over by the executor.
Out: a ``GatewayError`` that both front ends render the same way — REST as the
     spec's body ``{error, message, statusCode, nextActions}`` (plus PostgREST's
     ``code``, ``details``, ``hint``), GraphQL as ``errors[].extensions``.

    GatewayError (status, error, message, next_actions, code, details, hint, headers)
    ├── 400 INVALID_QUERY        query string: filter/order/select/limit/embed syntax, unknown column
    ├── 400 VALIDATION_ERROR     body: not JSON, wrong type, unknown field; 22xxx/23502/23514
    ├── 400 INVALID_INPUT        admin bodies (migrations, raw SQL, import, bulk upsert)
    ├── 401 AUTH_*               no/invalid credential; 42501 for anon
    ├── 403 FORBIDDEN            42501 for a signed-in role, admin-only endpoints, refused SQL
    ├── 404 TABLE_NOT_FOUND      unknown table or view (code 42P01)
    ├── 404 DATABASE_NOT_FOUND   unknown function (PGRST202 / 42883)
    ├── 409 DATABASE_DUPLICATE / DATABASE_CONSTRAINT_VIOLATION   23505 / 23503
    ├── 405 METHOD_NOT_ALLOWED   a write over GET/HEAD (25006), a mutation over GET
    ├── 300/405/406/416 PGRSTnnn PostgREST's own cases, error = the PostgREST code
    ├── 503 SERVICE_UNAVAILABLE  pool exhausted, database down (Retry-After)
    └── 500 INTERNAL_ERROR       everything else; never the result of user input

``ERRORS`` lists every error value with the statuses it is sent with and its ``nextActions`` per
front end (records/RPC, GraphQL, admin), so advice never points a GraphQL client at PostgREST's
documentation. The SQLSTATE mapping is a table (``SQLSTATE_RULES``), read top to bottom; the
first rule whose prefix matches wins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

import orjson

FRONTS = ("rest", "graphql", "admin")  # records/RPC, /graphql, the admin endpoints and commands


@dataclass(frozen=True)
class ErrorKind:
    """One ``error`` value: the statuses it is sent with and what to do next, per front end."""

    statuses: tuple[int, ...]  # the first is the usual one
    rest: str  # nextActions under /api/database/records and /rpc
    graphql: str | None = None  # under /graphql; None: as rest
    admin: str | None = None  # the admin endpoints and the gateway command; None: as rest

    def advice(self, front: str) -> str:
        return {"graphql": self.graphql, "admin": self.admin}.get(front) or self.rest


_FIX_DOCUMENT = "Check the GraphQL document against the schema (GraphiQL at /graphql shows it)"
_RETRY = "Retry after a moment (see Retry-After)"

# Every error value the gateway sends. The REST texts of the first three are the spec's own.
ERRORS: dict[str, ErrorKind] = {
    "TABLE_NOT_FOUND": ErrorKind((404,), "Check table name and try again", graphql=_FIX_DOCUMENT,
                                 admin="Check the table name; GET /api/database/tables lists them"),
    "INVALID_QUERY": ErrorKind((400,), "Check PostgREST filter documentation", graphql=_FIX_DOCUMENT,
                               admin="Check the request's query parameters"),
    "VALIDATION_ERROR": ErrorKind((400,), "Ensure field types match the table schema",
                                  graphql="Send values of the types the schema declares for these fields"),
    "INVALID_INPUT": ErrorKind((400,), "Check the request body and try again",
                               admin="Fix the field the message names and send the request again"),
    "MISSING_FIELD": ErrorKind((400,), "Provide a value for every NOT NULL column"),
    "DATABASE_VALIDATION_ERROR": ErrorKind((400,), "Check the SQL and the names it uses"),
    "DATABASE_DUPLICATE": ErrorKind((409,), "Use a different value for the unique field, or upsert",
                                    graphql="Use a different value for the unique field, or on_conflict"),
    # 409 on records and RPC (PostgREST), 400 on the admin paths (as InsForge answers there)
    "DATABASE_CONSTRAINT_VIOLATION": ErrorKind((409, 400), "Check that the referenced row exists"),
    "DATABASE_NOT_FOUND": ErrorKind((404,), "Check the function name and arguments (GET /api/database/openapi.json "
                                    "lists them)", graphql=_FIX_DOCUMENT),
    "DATABASE_MIGRATION_ALREADY_EXISTS": ErrorKind((409,), "Use a version newer than the latest applied migration"),
    # 401 for the anonymous role, 403 for a signed-in one: the spec and PostgREST answer so for 42501
    "FORBIDDEN": ErrorKind((403, 401), "Check your role's grants and the table's RLS policies",
                           admin="The statement is refused for every caller; the message says which rule"),
    "AUTH_INVALID_CREDENTIALS": ErrorKind((401,), "Send a valid token or API key in the Authorization header"),
    "AUTH_UNAUTHORIZED": ErrorKind((401,), "Sign in again to get a fresh token"),
    "AUTH_INVALID_API_KEY": ErrorKind((401,), "Use the API key `gateway serve` printed at start (or API_KEY)"),
    "NOT_FOUND": ErrorKind((404,), "Check the URL and method; the README lists the endpoints"),
    "METHOD_NOT_ALLOWED": ErrorKind((405,), "Use POST: GET and HEAD run read-only, and this call writes "
                                    "(a VOLATILE function, or a function or trigger that writes)",
                                    graphql="Send mutations with POST", admin="Check the method the endpoint takes"),
    "PAYLOAD_TOO_LARGE": ErrorKind((413,), "Send a smaller request body (GATEWAY_MAX_BODY_BYTES)",
                                   admin="Send a smaller file (GATEWAY_MAX_UPLOAD_BYTES), or use the gateway "
                                         "command, which has no upload limit"),
    "URI_TOO_LONG": ErrorKind((414,), "Shorten the URL: move long filters into an RPC function's POST body",
                              graphql="Send the document with POST"),
    "REQUEST_HEADER_FIELDS_TOO_LARGE": ErrorKind((431,), "Send fewer or smaller headers"),
    "QUERY_TIMEOUT": ErrorKind((504,), "Narrow the query (filters, limit) or raise GATEWAY_STATEMENT_TIMEOUT_MS"),
    "SERVICE_UNAVAILABLE": ErrorKind((503,), _RETRY),
    "INTERNAL_ERROR": ErrorKind((500,), "Try again; if it persists, check the gateway logs"),
    # PostgREST's own cases: the error value is the PostgREST code
    "PGRST101": ErrorKind((405,), "Use GET, HEAD or POST for functions"),
    "PGRST103": ErrorKind((416,), "Request a range within the result"),
    "PGRST105": ErrorKind((405,), "Filter on every primary key column with eq"),
    "PGRST106": ErrorKind((406,), "Use one of the exposed schemas (GATEWAY_SCHEMAS)"),
    "PGRST107": ErrorKind((406,), "Ask for application/json"),
    "PGRST115": ErrorKind((400,), "Make the body's primary key match the URL's eq filters"),
    "PGRST116": ErrorKind((406,), "Make the filters match exactly one row, or drop the single-object Accept header"),
    "PGRST117": ErrorKind((405,), "Use a method the resource supports (a view may not be writable)"),
    "PGRST201": ErrorKind((300,), "Pick one relationship with a hint: relation!fk_name(...)"),
    "PGRST203": ErrorKind((300,), "Make the arguments match exactly one function"),
}

# A RAISE with SQLSTATE 'PTnnn' answers status nnn (PostgREST's convention); its error value is
# the status's name (PT402 -> PAYMENT_REQUIRED) and the function's message says what to do.
RAISED = "The function that raised this error says why in the message"

# Kept for callers that read advice by error value (the REST wording).
NEXT_ACTIONS: dict[str, str] = {name: kind.rest for name, kind in ERRORS.items()}

# Situations whose advice differs from their error value's usual one.
ADMIN_REQUIRED = "Send the admin API key (Authorization: Bearer ik_... or X-API-Key), printed by `gateway serve`"
ANON_REFUSED = "Sign in: send a user's JWT (anon may not do this), or grant the privilege to anon"


def advice(error: str, front: str = "rest", status: int | None = None) -> str:
    """nextActions for ``error`` on ``front``; a status-named error (PT402) gets ``RAISED``."""
    kind = ERRORS.get(error)
    if kind is not None:
        return kind.advice(front)
    return RAISED if status is not None and _status_name(status) == error else ERRORS["INTERNAL_ERROR"].rest


def _status_name(status: int) -> str:
    try:
        return HTTPStatus(status).name
    except ValueError:
        return f"HTTP_{status}"


def front_for(path: str) -> str:
    """Which front end a request path belongs to, for its error advice."""
    if path.startswith("/graphql"):
        return "graphql"
    if path.startswith(("/api/database/records", "/api/database/rpc")):
        return "rest"
    return "admin"


@dataclass
class GatewayError(Exception):
    """A failure with everything needed to render it to a client."""

    status: int  # HTTP status
    error: str  # the spec's ``error`` value (e.g. INVALID_QUERY)
    message: str  # human-readable, safe to show
    code: str | None = None  # PostgREST code or SQLSTATE (``PGRST116``, ``23505``)
    details: str | None = None
    hint: str | None = None
    next_actions: str | None = None  # None: the default for ``error``
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self, front: str = "rest") -> dict[str, Any]:
        """The spec's error body plus PostgREST's extra keys; ``front`` picks the advice."""
        return {
            "error": self.error,
            "message": self.message,
            "statusCode": self.status,
            "nextActions": self.next_actions or advice(self.error, front, self.status),
            "code": self.code or self.error,
            "details": self.details,
            "hint": self.hint,
        }

    def to_json(self, front: str = "rest") -> bytes:
        return orjson.dumps(self.body(front))


# --------------------------------------------------------------------------- constructors
# Named constructors keep the status/error pairs in one place.


def invalid_query(message: str, code: str = "PGRST100", details: str | None = None,
                  hint: str | None = None) -> GatewayError:
    return GatewayError(400, "INVALID_QUERY", message, code=code, details=details, hint=hint)


def validation_error(message: str, code: str = "PGRST102", details: str | None = None) -> GatewayError:
    return GatewayError(400, "VALIDATION_ERROR", message, code=code, details=details)


def invalid_input(message: str) -> GatewayError:
    return GatewayError(400, "INVALID_INPUT", message)


def table_not_found(name: str) -> GatewayError:
    return GatewayError(404, "TABLE_NOT_FOUND", f"Table '{name}' does not exist", code="42P01")


def function_not_found(name: str, details: str | None = None) -> GatewayError:
    return GatewayError(404, "DATABASE_NOT_FOUND", f"Function '{name}' does not exist",
                        code="PGRST202", details=details)


def postgrest(status: int, code: str, message: str, details: str | None = None,
              hint: str | None = None, headers: dict[str, str] | None = None) -> GatewayError:
    """PostgREST's own 300/405/406/416 cases: the ``error`` value is the PostgREST code."""
    return GatewayError(status, code, message, code=code, details=details, hint=hint, headers=headers or {})


def unfiltered_write(verb: str, table: str, rest: str, graphql: str) -> GatewayError:
    """An UPDATE or DELETE with no filter at all (pg-safeupdate's rule), refused before any SQL runs.
    ``rest`` and ``graphql`` are filters, in each front end's syntax, that match every row on purpose."""
    return GatewayError(
        400, "INVALID_QUERY", f"{verb} requires a filter: without one it would affect every row of '{table}'",
        code="21000", hint=f"To {verb.lower()} every row on purpose, send a filter every row meets: "
                           f"{rest} (REST) or {graphql} (GraphQL)",
        next_actions=f"Add a filter that selects the rows to {verb.lower()}; to {verb.lower()} all of them "
                     f"on purpose, filter on a condition every row meets ({rest})")


# PostgreSQL's "permission denied for <kind> <name>" (42501); RLS refusals say something else
_DENIED = re.compile(r"permission denied for (table|view|materialized view|sequence|schema|function) (\S+)")
_GRANT_ON = {"table": "", "view": "", "materialized view": "", "sequence": "SEQUENCE ", "schema": "SCHEMA ",
             "function": "FUNCTION "}


def grant_advice(err: GatewayError, role: str, privilege: str, schema: str) -> GatewayError:
    """``err`` with nextActions naming the GRANT that would open what a missing privilege closed.

    ``privilege`` is what the request needed of a table (SELECT, INSERT, UPDATE, DELETE); a schema
    needs USAGE, a sequence USAGE and a function EXECUTE. Errors that are not such a refusal (an
    RLS policy's, say) come back unchanged.
    """
    found = _DENIED.search(err.message) if err.code == "42501" else None
    if found is None:
        return err
    kind, name = found.groups()
    if kind == "schema":
        target, privilege = f"SCHEMA {_ident(name)}", "USAGE"
    else:
        target = f"{_GRANT_ON[kind]}{_ident(schema)}.{_ident(name)}"
        privilege = {"sequence": "USAGE", "function": "EXECUTE"}.get(kind, privilege)
    return replace(err, next_actions=f"The {role} role lacks {privilege} on {name}; an admin can open it with: "
                                     f"GRANT {privilege} ON {target} TO {role};")


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def forbidden(message: str = "Admin access required") -> GatewayError:
    """403 for an endpoint or field only the admin may use."""
    return GatewayError(403, "FORBIDDEN", message, next_actions=ADMIN_REQUIRED)


def unavailable(message: str, retry_after: int = 1) -> GatewayError:
    return GatewayError(503, "SERVICE_UNAVAILABLE", message, code="PGRST003",
                        headers={"Retry-After": str(retry_after)})


def status_error(status: int, message: str) -> GatewayError:
    """An HTTP-level failure with no error value of its own: named after its status (409 -> CONFLICT)."""
    return GatewayError(status, _status_name(status), message,
                        next_actions="Check the request's method, headers and body against the API's documentation")


def internal(message: str = "Internal server error") -> GatewayError:
    return GatewayError(500, "INTERNAL_ERROR", message)


# --------------------------------------------------------------------------- SQLSTATE table


@dataclass(frozen=True)
class SqlstateRule:
    prefix: str  # SQLSTATE or class prefix ("23505", "22", "")
    status: int
    error: str
    anon_status: int | None = None  # a different status for the anonymous role (42501 -> 401)


# Records/RPC mapping (postgrest-semantics §11.2, insforge-behavior §3). First match wins.
SQLSTATE_RULES: tuple[SqlstateRule, ...] = (
    SqlstateRule("23505", 409, "DATABASE_DUPLICATE"),
    SqlstateRule("23503", 409, "DATABASE_CONSTRAINT_VIOLATION"),
    SqlstateRule("23", 400, "VALIDATION_ERROR"),
    SqlstateRule("22", 400, "VALIDATION_ERROR"),
    SqlstateRule("42501", 403, "FORBIDDEN", anon_status=401),
    SqlstateRule("42P01", 404, "TABLE_NOT_FOUND"),
    SqlstateRule("42883", 404, "DATABASE_NOT_FOUND"),
    SqlstateRule("42P17", 500, "INTERNAL_ERROR"),
    SqlstateRule("42", 400, "INVALID_QUERY"),
    SqlstateRule("25006", 405, "METHOD_NOT_ALLOWED"),  # a write in a GET/HEAD (read-only transaction)
    SqlstateRule("P0001", 400, "VALIDATION_ERROR"),
    SqlstateRule("57014", 504, "QUERY_TIMEOUT"),
    SqlstateRule("53400", 500, "INTERNAL_ERROR"),
    SqlstateRule("08", 503, "SERVICE_UNAVAILABLE"),
    SqlstateRule("53", 503, "SERVICE_UNAVAILABLE"),
    SqlstateRule("57P01", 503, "SERVICE_UNAVAILABLE"),
    SqlstateRule("0L", 403, "FORBIDDEN"),
    SqlstateRule("0P", 403, "FORBIDDEN"),
    SqlstateRule("28", 403, "FORBIDDEN"),
    SqlstateRule("09", 500, "INTERNAL_ERROR"),
    SqlstateRule("25", 500, "INTERNAL_ERROR"),
    SqlstateRule("2D", 500, "INTERNAL_ERROR"),
    SqlstateRule("38", 500, "INTERNAL_ERROR"),
    SqlstateRule("39", 500, "INTERNAL_ERROR"),
    SqlstateRule("3B", 500, "INTERNAL_ERROR"),
    SqlstateRule("40", 500, "INTERNAL_ERROR"),
    SqlstateRule("54", 500, "INTERNAL_ERROR"),
    SqlstateRule("55", 500, "INTERNAL_ERROR"),
    SqlstateRule("57", 500, "INTERNAL_ERROR"),
    SqlstateRule("58", 500, "INTERNAL_ERROR"),
    SqlstateRule("F0", 500, "INTERNAL_ERROR"),
    SqlstateRule("HV", 500, "INTERNAL_ERROR"),
    SqlstateRule("XX", 500, "INTERNAL_ERROR"),
    SqlstateRule("P0", 500, "INTERNAL_ERROR"),
    SqlstateRule("", 400, "INVALID_QUERY"),
)

# Admin paths (raw SQL, migrations, import, bulk upsert): insforge-behavior §3 "Other paths".
ADMIN_SQLSTATE_RULES: tuple[SqlstateRule, ...] = (
    SqlstateRule("23505", 409, "DATABASE_DUPLICATE"),
    SqlstateRule("23503", 400, "DATABASE_CONSTRAINT_VIOLATION"),
    SqlstateRule("23502", 400, "MISSING_FIELD"),
    SqlstateRule("23", 400, "DATABASE_VALIDATION_ERROR"),
    SqlstateRule("42501", 403, "FORBIDDEN"),
    SqlstateRule("42601", 400, "DATABASE_VALIDATION_ERROR"),
    SqlstateRule("57014", 504, "QUERY_TIMEOUT"),
    SqlstateRule("22", 400, "DATABASE_VALIDATION_ERROR"),
    SqlstateRule("42", 400, "DATABASE_VALIDATION_ERROR"),
    SqlstateRule("P0001", 400, "DATABASE_VALIDATION_ERROR"),
    SqlstateRule("08", 503, "SERVICE_UNAVAILABLE"),
    SqlstateRule("53", 503, "SERVICE_UNAVAILABLE"),
    SqlstateRule("57P01", 503, "SERVICE_UNAVAILABLE"),
    SqlstateRule("", 500, "INTERNAL_ERROR"),
)


def from_sqlstate(sqlstate: str, message: str, detail: str | None = None, hint: str | None = None,
                  *, anonymous: bool = False,
                  rules: tuple[SqlstateRule, ...] = SQLSTATE_RULES) -> GatewayError:
    """Translate a PostgreSQL error into a GatewayError using ``rules``."""
    rule = next(r for r in rules if sqlstate.startswith(r.prefix))
    status = rule.anon_status if (anonymous and rule.anon_status) else rule.status
    headers: dict[str, str] = {}
    if sqlstate.startswith("PT") and sqlstate[2:].isdigit():
        # RAISE SQLSTATE 'PT402' sets the HTTP status (PostgREST convention)
        status = int(sqlstate[2:])
        error = ("VALIDATION_ERROR" if status == 400 else "INTERNAL_ERROR" if status == 500
                 else _status_name(status))
        return GatewayError(status, error, message, code=sqlstate, details=detail, hint=hint)
    next_actions = None
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
        next_actions = ANON_REFUSED
    if status == 503:
        headers["Retry-After"] = "1"
    error = rule.error
    if sqlstate == "57014":
        message = f"Query timeout: {message}"
    return GatewayError(status, error, message, code=sqlstate, details=detail, hint=hint,
                        next_actions=next_actions, headers=headers)
