"""The SQL guard: SQL text from an admin endpoint in, its statements out — or a refusal.

In:  SQL text and the endpoint's mode (``strict`` raw SQL, ``relaxed`` raw SQL, ``migration``,
     ``import``).
Out: ``check`` returns the statements, each as written (``split_statements``), once every rule of
     the mode passed (``admit`` also says whether the catalog must reload and which tables are
     created or inserted into); otherwise a GatewayError — 403 FORBIDDEN with the reason, 400 for
     text that does not parse (and, in migrations and imports, for transaction control, which
     the endpoint itself provides).

The text is parsed with PostgreSQL's own grammar (pglast, libpg_query) and the whole tree is
walked generically, so a table, function or schema name is found wherever it sits: FROM, JOIN,
CTEs, subqueries, DML targets, table functions, EXPLAIN, view and function bodies, DDL object
lists. The only textual rule is the literal ``set_config`` check, kept from the real server
because that function changes the role and the claims; the tree walk refuses the function again
by its decoded name (``U&"set\\005fconfig"``, ``"set_config"``), whatever the text looked like.
Names are always judged as PostgreSQL decodes them, never as written. The guard is the first
wall: the SQL runs as ``project_admin``, so PostgreSQL itself refuses server files and programs,
role changes and writes to auth/system whatever gets past it.

Statements are parsed once, from libpg_query's JSON (fast even for a multi-megabyte import).
An INSERT of constant rows — what an export is made of — names nothing but its table, so it is
judged from the JSON alone; every other statement is rebuilt as a pglast tree and walked by
``sqlrules.check_tree``.

Modes (one row per rule in ``sqlrules.STATEMENT_RULES`` and ``sqlrules.SESSION_SETTINGS``):

* every mode refuses role and session changes, role management, database-level DDL, COPY to or
  from files or programs, LOAD, prepared statements, DISCARD, transaction control, C functions,
  and functions that reach the server's files, programs or other sessions (``SERVER_FUNCTIONS``);
* strict refuses any reference to the protected schemas (auth, system, pg_catalog and every
  ``pg_*`` schema, information_schema) in any position, unqualified ``pg_*`` relations and
  functions, functions that run SQL given as text (``query_to_xml``...), DO blocks, procedural
  function bodies (SQL-language bodies are parsed and checked like the query itself), CALL,
  COPY, extensions and foreign data wrappers. Types may still come from pg_catalog (the parser
  itself writes ``integer`` as ``pg_catalog.int4``), and the RLS helpers ``auth.uid()``,
  ``auth.role()``, ``auth.email()`` and ``auth.jwt()`` may be called: they only read the
  caller's own claims and policies need them;
* relaxed, migration and import may read and insert into protected tables but refuse UPDATE,
  DELETE, MERGE, upserts, TRUNCATE, LOCK and DDL whose target is in a protected schema.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from pglast import ast, parse_sql
from pglast.parser import ParseError, parse_sql_json, split

from ..errors import GatewayError
from .sqlrules import ROW_STATEMENTS, SESSION_CONFIG, Mode, check_tree, protected, refuse

__all__ = ["Checked", "Mode", "Statement", "admit", "changes_schema", "check", "parse", "protected",
           "split_statements", "statement_tables"]


@dataclass(frozen=True)
class Statement:
    text: str  # as written, without the ``;`` and the comments between statements
    kind: str  # the statement node's name, e.g. "InsertStmt"
    tree: ast.Node | None  # the pglast tree; None for an INSERT of constant rows (judged from the JSON)
    relation: tuple[str | None, str] | None  # the (schema, table) a CREATE TABLE or INSERT names
    changes_schema: bool  # DDL, DO, CALL or SELECT INTO: the catalog must reload afterwards


@dataclass(frozen=True)
class Checked:
    statements: tuple[str, ...]  # as written, in order
    changes_schema: bool  # some statement may change the catalog
    tables: tuple[tuple[str | None, str], ...]  # (schema, table) created or inserted into, first seen first


def _syntax_error(exc: ParseError) -> GatewayError:
    return GatewayError(400, "DATABASE_VALIDATION_ERROR", f"Syntax error: {exc.args[0]}", code="42601",
                        next_actions="Fix the SQL syntax and retry")


def parse(sql: str) -> list[Statement]:
    """The statements of ``sql``; a syntax error -> 400 with PostgreSQL's message."""
    with _no_cyclic_gc():
        try:
            parsed = orjson.loads(parse_sql_json(sql))["stmts"]
            slices = split(sql, with_parser=True, only_slices=True)
        except ParseError as exc:
            raise _syntax_error(exc) from exc
        if len(slices) != len(parsed):  # both come from the same parser; a mismatch would be a pglast bug
            raise GatewayError(400, "INVALID_INPUT", "The SQL could not be split into statements")
        return [_statement(item["stmt"], sql[where]) for item, where in zip(parsed, slices, strict=True)]


def _statement(node: dict[str, Any], text: str) -> Statement:
    ((kind, body),) = node.items()
    tree = None
    if not _constant_rows(kind, body):
        try:
            tree = parse_sql(text)[0].stmt
        except ParseError as exc:
            raise _syntax_error(exc) from exc
    rel = body.get("relation") if kind in ("InsertStmt", "CreateStmt") else None
    relation = (rel.get("schemaname"), rel["relname"]) if isinstance(rel, dict) and "relname" in rel else None
    schema_change = kind not in ROW_STATEMENTS or kind == "CallStmt" or (kind == "SelectStmt" and "intoClause" in body)
    return Statement(text, kind, tree, relation, schema_change)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A big import parses into millions of small dicts (no cycles: reference counting frees them);
    the cyclic collector would rescan them again and again while they are created (several times
    slower), so it pauses meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _constant_rows(kind: str, body: dict[str, Any]) -> bool:
    """INSERT INTO t (cols) [OVERRIDING ...] VALUES (constants), ...: nothing but its table to judge."""
    if kind != "InsertStmt" or set(body) - {"relation", "cols", "selectStmt", "override"}:
        return False
    select = body.get("selectStmt", {}).get("SelectStmt")
    if not isinstance(select, dict) or set(select) - {"valuesLists", "limitOption", "op"} \
            or select.get("op") != "SETOP_NONE":
        return False
    if any(set(c) != {"ResTarget"} or set(c["ResTarget"]) - {"name", "location"} for c in body.get("cols", ())):
        return False
    return all(len(item) == 1 and "A_Const" in item
               for row in select.get("valuesLists", ()) for item in row["List"]["items"])


def admit(sql: str, mode: Mode) -> Checked:
    """Every rule of ``mode`` over ``sql``; what the caller needs to run it, or a GatewayError."""
    if "set_config" in sql.lower():
        raise refuse(SESSION_CONFIG)
    statements = parse(sql)
    if not statements:
        raise GatewayError(400, "INVALID_INPUT", "The SQL contains no statement")
    for stmt in statements:
        if stmt.tree is not None:
            check_tree(stmt.tree, mode)
        elif mode == "strict" and stmt.relation is not None and protected(
                stmt.relation[0] or ("pg_catalog" if stmt.relation[1].startswith("pg_") else None)):
            raise refuse(f"Access to {'.'.join(p for p in stmt.relation if p)} is not allowed in strict mode: "
                         "system schemas and auth.users are off limits.")
    tables = tuple(dict.fromkeys(s.relation for s in statements if s.relation is not None))
    return Checked(tuple(s.text for s in statements), any(s.changes_schema for s in statements), tables)


def check(sql: str, mode: Mode) -> list[str]:
    """Every rule of ``mode`` over ``sql``; the statements as written, or a GatewayError."""
    return list(admit(sql, mode).statements)


def split_statements(sql: str) -> list[str]:
    """Each statement as written (comments between statements and the ``;`` left out)."""
    return [s.text for s in parse(sql)]


def changes_schema(sql: str) -> bool:
    """True when a statement may change the catalog (DDL, DO, CALL, SELECT INTO)."""
    return any(s.changes_schema for s in parse(sql))


def statement_tables(sql: str) -> list[tuple[str | None, str]]:
    """(schema, table) created by CREATE TABLE or written by INSERT, in first-seen order (imports)."""
    return list(dict.fromkeys(s.relation for s in parse(sql) if s.relation is not None))
