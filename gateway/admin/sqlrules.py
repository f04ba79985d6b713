"""SQL guard rules: one parsed statement in, nothing out — or a refusal (GatewayError).

In:  a pglast statement tree and the mode (see ``sqlguard`` for what each mode allows).
Out: ``check_tree`` returns quietly or raises 403 FORBIDDEN (400 for malformed input).

The rules are tables — statements refused by node type (``STATEMENT_RULES``), settings that may
not change (``SESSION_SETTINGS``), function names (``STRICT_FUNCTION_PREFIXES``,
``SERVER_FUNCTIONS``) — applied while ``walk`` visits every node and every list of the tree.
Strict mode refuses any reference to a protected schema wherever it appears; the other modes
refuse only statements whose target (what is updated, deleted, truncated, created, altered,
dropped, granted on) is in one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pglast import ast, enums, parse_sql
from pglast.parser import ParseError

from ..errors import GatewayError

Mode = Literal["strict", "relaxed", "migration", "import"]
ALL_MODES: frozenset[str] = frozenset({"strict", "relaxed", "migration", "import"})

PROTECTED_SCHEMAS = frozenset({"auth", "system", "information_schema"})  # plus every pg_* schema
AUTH_HELPERS = frozenset({("auth", "uid"), ("auth", "role"), ("auth", "email"), ("auth", "jwt")})
# functions the parser itself writes as pg_catalog.<name> with an explicit-call format
PARSER_FUNCTIONS = frozenset({"similar_to_escape"})

# Function name prefixes refused in strict mode: catalog functions, large objects (lo_import reads
# server files), and every function that runs SQL passed as text, which no parser can see into.
STRICT_FUNCTION_PREFIXES = (
    "pg_", "lo_", "dblink", "query_to_xml", "table_to_xml", "cursor_to_xml", "schema_to_xml",
    "database_to_xml", "ts_stat", "ts_rewrite", "binary_upgrade_", "crosstab", "connectby",
)
# Refused in every mode: the server's files and programs, other sessions, and session-level
# advisory locks (they would outlive the request on a pooled connection).
SERVER_FUNCTIONS = (
    "pg_read_file", "pg_read_binary_file", "pg_ls_", "pg_stat_file", "pg_file_", "pg_logdir_ls",
    "lo_import", "lo_export", "dblink", "pg_terminate_backend", "pg_cancel_backend",
    "pg_signal_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_promote",
    "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
)

RESTRICTED = "Query contains restricted operations"
ROLES = "Managing database roles is not allowed."
TRANSACTION = "Transaction control statements are not allowed."
TRANSACTION_400 = ("Transaction control statements (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...) are not "
                   "allowed here: the statements already run in one transaction, all or nothing.")
STRICT_ONLY = frozenset({"strict"})


@dataclass(frozen=True)
class Rule:
    message: str  # the refusal's message
    modes: frozenset[str] = ALL_MODES  # the modes that refuse it
    status: int = 403  # 403 FORBIDDEN; 400 INVALID_INPUT for what is malformed rather than unsafe


# Statement node -> rule. Everything not listed is allowed, subject to the reference checks.
STATEMENT_RULES: dict[str, tuple[Rule, ...]] = {
    **{name: (Rule(RESTRICTED),) for name in (
        "CreatedbStmt", "DropdbStmt", "AlterDatabaseStmt", "AlterDatabaseSetStmt",
        "AlterDatabaseRefreshCollStmt", "AlterSystemStmt", "CreateTableSpaceStmt", "DropTableSpaceStmt",
        "AlterTableSpaceOptionsStmt", "AlterTableMoveAllStmt", "CreateSubscriptionStmt",
        "AlterSubscriptionStmt", "DropSubscriptionStmt", "CreateEventTrigStmt", "AlterEventTrigStmt",
        "CreatePLangStmt", "LoadStmt", "CheckPointStmt")},
    **{name: (Rule(ROLES),) for name in (
        "CreateRoleStmt", "AlterRoleStmt", "AlterRoleSetStmt", "DropRoleStmt", "GrantRoleStmt",
        "ReassignOwnedStmt", "DropOwnedStmt")},
    "TransactionStmt": (Rule(TRANSACTION, frozenset({"strict", "relaxed"})),
                        Rule(TRANSACTION_400, frozenset({"migration", "import"}), 400)),
    **{name: (Rule("Prepared statements (PREPARE, EXECUTE, DEALLOCATE) are not allowed; "
                   "send the values as params instead."),)
       for name in ("PrepareStmt", "ExecuteStmt", "DeallocateStmt")},
    "DiscardStmt": (Rule("DISCARD is not allowed: the connection is shared."),),
    "DoStmt": (Rule("DO blocks are not allowed in strict mode; use the unrestricted endpoint or a "
                    "migration.", STRICT_ONLY),),
    "CallStmt": (Rule("CALL is not allowed in strict mode.", STRICT_ONLY),),
    # aggregates, operators and casts name the functions they call as types, out of the checks' sight
    **{name: (Rule("Creating aggregates, operators, casts and similar objects is not allowed in strict mode.",
                   STRICT_ONLY),)
       for name in ("DefineStmt", "CreateCastStmt", "CreateOpClassStmt", "CreateOpFamilyStmt",
                    "AlterOpFamilyStmt", "AlterOperatorStmt", "CreateConversionStmt", "CreateTransformStmt")},
    **{name: (Rule("Extensions and foreign data are not allowed in strict mode.", STRICT_ONLY),)
       for name in (
        "CreateExtensionStmt", "AlterExtensionStmt", "AlterExtensionContentsStmt", "CreateFdwStmt",
        "AlterFdwStmt", "CreateForeignServerStmt", "AlterForeignServerStmt", "CreateUserMappingStmt",
        "AlterUserMappingStmt", "DropUserMappingStmt", "ImportForeignSchemaStmt",
        "CreateForeignTableStmt", "CreatePublicationStmt", "AlterPublicationStmt")},
}

ROLE_CHANGE = "Changing SQL execution role or session authorization is not allowed."
# SET/RESET of these settings, by lower-cased name -> message. ``anywhere``: also inside a
# function's SET clause (role would switch on every call; standard_conforming_strings changes how
# the body's string literals are read, so the text PostgreSQL runs would differ from what was checked).
SESSION_SETTINGS: dict[str, tuple[str, bool]] = {
    "role": (ROLE_CHANGE, True),
    "session_authorization": (ROLE_CHANGE, True),
    "standard_conforming_strings": ("Changing standard_conforming_strings is not allowed.", True),
    "backslash_quote": ("Changing backslash_quote is not allowed.", True),
    "search_path": ("Changing SQL search_path is not allowed.", False),
    "statement_timeout": ("Changing SQL statement_timeout is not allowed.", False),
    "client_encoding": ("Changing client_encoding is not allowed.", False),
    "session_replication_role": ("Changing session_replication_role is not allowed.", False),
}

# (node, attribute) pairs whose String lists are column names, labels or arguments, never a
# qualified object name; every other list of two or more identifiers is read as schema.name.
NOT_NAMES = frozenset({
    ("ColumnRef", "fields"), ("Constraint", "keys"), ("Constraint", "including"),
    ("Constraint", "fk_attrs"), ("Constraint", "pk_attrs"), ("Constraint", "fk_del_set_cols"),
    ("Alias", "colnames"), ("CommonTableExpr", "aliascolnames"), ("CopyStmt", "attlist"),
    ("VacuumRelation", "va_cols"), ("CreateTrigStmt", "columns"), ("CreateTrigStmt", "args"),
    ("JoinExpr", "usingClause"), ("ViewStmt", "aliases"), ("IntoClause", "colNames"),
    ("CTESearchClause", "search_col_list"), ("CTECycleClause", "cycle_col_list"),
    ("ResTarget", "indirection"), ("A_Indirection", "indirection"), ("RowExpr", "colnames"),
    ("PublicationTable", "columns"), ("CreateStatsStmt", "stat_types"), ("CreateEnumStmt", "vals"),
    ("DefElem", "arg"),
})
# Attributes naming what a DDL statement creates, changes or drops (relaxed-mode target check).
TARGET_ATTRS = frozenset({
    "relation", "relations", "table", "view", "sequence", "into", "rel", "typevar", "objects",
    "object", "func", "defnames", "domainname", "typeName", "inhRelations", "collname",
    "conversion_name", "opclassname", "opfamilyname",
})
# Statements that read or write rows; any other statement is DDL (or a utility command).
ROW_STATEMENTS = frozenset({
    "SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "ExplainStmt",
    "DeclareCursorStmt", "FetchStmt", "ClosePortalStmt", "VariableSetStmt", "VariableShowStmt",
    "NotifyStmt", "ListenStmt", "UnlistenStmt", "CallStmt", "CopyStmt", "TransactionStmt",
    "PrepareStmt", "ExecuteStmt", "DeallocateStmt", "DiscardStmt",
})
SCHEMA_OBJECT = enums.ObjectType.OBJECT_SCHEMA


def refuse(message: str, status: int = 403) -> GatewayError:
    if status == 400:
        return GatewayError(400, "INVALID_INPUT", message)
    return GatewayError(403, "FORBIDDEN", message, next_actions="Remove the refused statement and retry")

# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Step:
    node: Any  # an ast.Node, or a tuple of them
    parent: ast.Node | None  # the node holding it
    attr: str  # the parent's attribute it sits in
    in_function_options: bool  # inside CREATE/ALTER FUNCTION's options (SET clauses)


def walk(root: ast.Node) -> Iterator[Step]:
    """Every node and every list under ``root`` (literals are not descended into)."""
    stack = [Step(root, None, "", False)]
    while stack:
        step = stack.pop()
        yield step
        node = step.node
        if isinstance(node, tuple):
            stack.extend(Step(item, step.parent, step.attr, step.in_function_options)
                         for item in node if isinstance(item, ast.Node | tuple))
            continue
        if isinstance(node, ast.A_Const):
            continue
        name = type(node).__name__
        for attr in node:
            value = getattr(node, attr)
            if isinstance(value, ast.Node | tuple):
                in_options = step.in_function_options or (
                    attr in ("options", "actions") and name in ("CreateFunctionStmt", "AlterFunctionStmt"))
                stack.append(Step(value, node, attr, in_options))


def check_tree(root: ast.Node, mode: Mode) -> None:
    for step in walk(root):
        node = step.node
        if isinstance(node, tuple):
            _check_name_list(node, step, mode)
            continue
        for rule in STATEMENT_RULES.get(type(node).__name__, ()):
            if mode in rule.modes:
                raise refuse(rule.message, rule.status)
        if isinstance(node, ast.VariableSetStmt):
            _check_setting(node, step.in_function_options)
        elif isinstance(node, ast.CopyStmt):
            _check_copy(node, mode)
        elif isinstance(node, ast.CreateFunctionStmt):
            _check_function(node, mode)
        elif isinstance(node, ast.FuncCall):
            _check_call(node, mode)
        elif isinstance(node, ast.RenameStmt) and node.renameType in (
                enums.ObjectType.OBJECT_ROLE, enums.ObjectType.OBJECT_DATABASE,
                enums.ObjectType.OBJECT_TABLESPACE):
            raise refuse(ROLES if node.renameType == enums.ObjectType.OBJECT_ROLE else RESTRICTED)
        elif isinstance(node, ast.GrantStmt) and node.objtype in (
                enums.ObjectType.OBJECT_DATABASE, enums.ObjectType.OBJECT_TABLESPACE):
            raise refuse(RESTRICTED)
        if mode == "strict":
            for schema, what in _references(node, step):
                if _protected(schema) and not _allowed_in_strict(node, schema, what):
                    raise refuse(f"Access to {what} is not allowed in strict mode: system schemas "
                                 "and auth.users are off limits.")
        else:
            _check_target(node, step)


def _check_name_list(names: tuple[Any, ...], step: Step, mode: Mode) -> None:
    if mode != "strict" or step.parent is None:
        return
    if (type(step.parent).__name__, step.attr) in NOT_NAMES:
        return
    if len(names) >= 2 and all(isinstance(n, ast.String) for n in names):
        # TypeName and FuncCall lists are judged by their own nodes (pg_catalog types are fine)
        if isinstance(step.parent, ast.TypeName | ast.FuncCall):
            return
        if any(_protected(q) for q in _svals(names[:-1])):
            raise refuse(f"Access to {'.'.join(_svals(names))} is not allowed in strict mode: "
                         "system schemas and auth.users are off limits.")


def _check_setting(node: ast.VariableSetStmt, in_function_options: bool) -> None:
    if node.kind == enums.VariableSetKind.VAR_RESET_ALL:
        raise refuse("RESET ALL is not allowed.")
    name = (node.name or "").lower()
    if name in SESSION_SETTINGS:
        message, anywhere = SESSION_SETTINGS[name]
        if anywhere or not in_function_options:
            raise refuse(message)


def _check_copy(node: ast.CopyStmt, mode: Mode) -> None:
    if node.is_program or node.filename:
        raise refuse("COPY to or from files or programs is not allowed.")
    if mode == "strict":
        raise refuse("COPY is not allowed in strict mode.")
    raise refuse("COPY FROM STDIN / TO STDOUT cannot run here; use the bulk-upsert or export endpoints.",
                 400)


def _option(node: ast.CreateFunctionStmt, name: str) -> Any:
    return next((o.arg for o in node.options or () if isinstance(o, ast.DefElem) and o.defname == name),
                None)


def _check_function(node: ast.CreateFunctionStmt, mode: Mode) -> None:
    language = _option(node, "language")
    lang = (language.sval or "").lower() if isinstance(language, ast.String) else "sql"
    if lang in ("c", "internal"):
        raise refuse("Functions in C or internal languages are not allowed.")
    if mode == "strict" and lang != "sql":
        raise refuse(f"LANGUAGE {lang} function bodies cannot be checked, so strict mode refuses them; "
                     "use a migration or the unrestricted endpoint.")
    body = _option(node, "as")
    text = _svals(body)[0] if isinstance(body, tuple) and _svals(body) else None
    if lang == "sql" and text is not None:
        if "set_config" in text.lower():
            raise refuse("Changing SQL session configuration is not allowed.")
        try:
            trees = parse_sql(text)
        except ParseError as exc:
            if mode == "strict":
                raise refuse(f"The function body does not parse: {exc.args[0]}", 400) from exc
            return  # PostgreSQL reports it when it validates the body
        for raw in trees:
            if raw.stmt is not None:
                check_tree(raw.stmt, mode)


def _svals(names: tuple[Any, ...] | None) -> list[str]:
    return [n.sval or "" for n in names or () if isinstance(n, ast.String)]


def _function_name(node: ast.FuncCall) -> tuple[str | None, str]:
    parts = _svals(node.funcname)
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


SESSION_CONFIG = "Changing SQL session configuration is not allowed."


def _check_call(node: ast.FuncCall, mode: Mode) -> None:
    # ``name`` is the identifier as PostgreSQL decodes it (quotes and U&"\0073..." escapes undone),
    # so no spelling of set_config gets past the textual check in ``sqlguard.admit`` unseen
    schema, name = _function_name(node)
    lowered = name.lower()
    if lowered == "set_config":
        raise refuse(SESSION_CONFIG)
    if lowered.startswith(SERVER_FUNCTIONS):  # in any schema: extensions install where they are told
        raise refuse(f"Function {name}() reaches the server's files, programs or sessions and is not allowed.")
    if mode == "strict" and schema is None and lowered.startswith(STRICT_FUNCTION_PREFIXES):
        raise refuse(f"Function {name}() is not allowed in strict mode.")


def protected(schema: str | None) -> bool:
    """auth, system, information_schema or any pg_* schema."""
    return _protected(schema)


def _protected(schema: str | None) -> bool:
    return schema is not None and (schema.lower() in PROTECTED_SCHEMAS or schema.lower().startswith("pg_"))


def relation_schema(rel: ast.RangeVar) -> str | None:
    """The schema a relation resolves to; unqualified pg_* names are pg_catalog's."""
    if rel.schemaname:
        return rel.schemaname
    return "pg_catalog" if (rel.relname or "").lower().startswith("pg_") else None


def _references(node: ast.Node, step: Step) -> Iterator[tuple[str | None, str]]:
    """(schema, description) for each object or schema ``node`` itself names."""
    if isinstance(node, ast.RangeVar):
        yield relation_schema(node), f"{relation_schema(node) or ''}.{node.relname}".lstrip(".")
    elif isinstance(node, ast.FuncCall):
        schema, name = _function_name(node)
        if schema is None and name.lower().startswith("pg_"):
            schema = "pg_catalog"
        yield schema, f"{schema + '.' if schema else ''}{name}()"
    elif isinstance(node, ast.ObjectWithArgs):
        parts = _svals(node.objname)
        if parts:
            schema = parts[-2] if len(parts) > 1 else ("pg_catalog" if parts[-1].startswith("pg_") else None)
            yield schema, ".".join(parts)
    elif isinstance(node, ast.TypeName):
        parts = _svals(node.names)
        if len(parts) > 1:
            yield parts[-2], ".".join(parts)
    elif isinstance(node, ast.DefElem) and node.defname in ("schema", "schemas"):
        for item in node.arg if isinstance(node.arg, tuple) else (node.arg,):
            if isinstance(item, ast.String):
                yield item.sval, f"schema {item.sval}"
    yield from _schema_names(node)


def _schema_names(node: ast.Node) -> Iterator[tuple[str | None, str]]:
    """Schemas named as such: CREATE/ALTER/DROP/GRANT/COMMENT ON SCHEMA, SET SCHEMA, IN SCHEMA."""
    for attr in ("newschema", "local_schema"):
        value = getattr(node, attr, None) if attr in node else None
        if isinstance(value, str):
            yield value, f"schema {value}"
    if isinstance(node, ast.CreateSchemaStmt) and node.schemaname:
        yield node.schemaname, f"schema {node.schemaname}"
    kind = next((getattr(node, a) for a in ("objtype", "removeType", "renameType", "objectType")
                 if a in node), None)
    in_schema = isinstance(node, ast.GrantStmt) and node.targtype == enums.GrantTargetType.ACL_TARGET_ALL_IN_SCHEMA
    if kind == SCHEMA_OBJECT or in_schema:
        if isinstance(node, ast.RenameStmt) and node.subname:
            yield node.subname, f"schema {node.subname}"
        for attr in ("objects", "object"):
            value = getattr(node, attr, None) if attr in node else None
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, ast.String):
                    yield item.sval, f"schema {item.sval}"


def _allowed_in_strict(node: ast.Node, schema: str | None, what: str) -> bool:
    if isinstance(node, ast.TypeName):
        return (schema or "").lower() == "pg_catalog"  # built-in types, often written by the parser
    if isinstance(node, ast.FuncCall):
        _, name = _function_name(node)
        if node.funcformat == enums.CoercionForm.COERCE_SQL_SYNTAX or (
                (schema or "").lower() == "pg_catalog" and name in PARSER_FUNCTIONS):
            return True  # EXTRACT, AT TIME ZONE, SIMILAR TO...: the grammar's own calls
        return ((schema or "").lower(), name) in AUTH_HELPERS
    return False


# --------------------------------------------------------------------------- relaxed targets


def _check_target(node: ast.Node, step: Step) -> None:
    """Relaxed rules: protected tables may be read and inserted into, nothing else."""
    targets: list[Any] = []
    upsert = isinstance(node, ast.InsertStmt) and node.onConflictClause is not None and \
        node.onConflictClause.action == enums.OnConflictAction.ONCONFLICT_UPDATE
    if upsert or isinstance(node, ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
        targets.append(getattr(node, "relation", None))
    elif (type(node).__name__.endswith("Stmt") and type(node).__name__ not in ROW_STATEMENTS) \
            or isinstance(node, ast.LockStmt):
        targets.extend(getattr(node, attr) for attr in node if attr in TARGET_ATTRS)
        if isinstance(node, ast.CreateFunctionStmt):  # elsewhere funcname is what a trigger calls
            targets.append(node.funcname)
        for schema, what in _schema_names(node):
            if _protected(schema):
                raise refuse(f"Changing {what} is not allowed.")
    for target in targets:
        for schema, what in _target_names(target):
            if _protected(schema):
                raise refuse(f"Changing {what} is not allowed: system tables may only be read "
                             "and inserted into.")


def _target_names(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, ast.IntoClause):
        yield from _target_names(value.rel)
    elif isinstance(value, ast.RangeVar):
        yield relation_schema(value), f"{relation_schema(value) or ''}.{value.relname}".lstrip(".")
    elif isinstance(value, ast.ObjectWithArgs):
        yield from _target_names(value.objname)
    elif isinstance(value, ast.TypeName):
        yield from _target_names(value.names)
    elif isinstance(value, str):
        yield value, f"schema {value}"
    elif isinstance(value, tuple):
        if len(value) >= 2 and all(isinstance(v, ast.String) for v in value):
            yield _svals(value)[-2], ".".join(_svals(value))
        else:
            for item in value:
                if not isinstance(item, ast.String):
                    yield from _target_names(item)
