"""The ``admin`` Query field and the ``migrate`` mutation: the REST admin endpoints in GraphQL.

In:  the operation (``resolve.Operation``): its catalog snapshot, identity and gateway.
Out: ``admin { tables views functions indexes policies triggers migrations advisor }`` — lists
     keyed like the REST bodies (``tableName``, ``isUnique``, ``withCheck``...), built by the same
     code (``admin/introspect.py``, ``admin/migrations.py``, ``admin/advisor.py``); each table and
     view also carries its own ``indexes``, ``policies`` and ``triggers`` (matched on schema and
     name) and ``referencedBy``, the foreign keys pointing at it — and
     ``migrate(version, name, sql)``, which applies a migration exactly as
     ``POST /api/database/migrations`` does (its own transaction as ``project_admin``, then
     a catalog reload) and returns the record with its ``message``.

Only admins (API key or ``project_admin`` token) may use either; anyone else gets an
error with ``extensions.error = "FORBIDDEN"`` (status 403).
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLField,
    GraphQLFloat,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLString,
)

from .. import errors
from ..admin import advisor, introspect, migrations, rawsql
from ..catalog import Catalog, Table
from ..execute import RequestContext

_S, _B = GraphQLNonNull(GraphQLString), GraphQLNonNull(GraphQLBoolean)
_STRINGS = GraphQLNonNull(GraphQLList(_S))


def _obj(name: str, fields: dict[str, Any]) -> GraphQLObjectType:
    return GraphQLObjectType(name, {k: v if isinstance(v, GraphQLField) else GraphQLField(v)
                                    for k, v in fields.items()})


def _list(t: GraphQLObjectType) -> Any:
    return GraphQLNonNull(GraphQLList(GraphQLNonNull(t)))


ADMIN_COLUMN = _obj("AdminColumn", {"name": _S, "type": _S, "nullable": _B, "default": GraphQLString,
                                    "isPrimaryKey": _B, "isIdentity": _B, "isGenerated": _B})
ADMIN_FOREIGN_KEY = _obj("AdminForeignKey", {"name": _S, "columns": _STRINGS, "referencedSchema": _S,
                                             "referencedTable": _S, "referencedColumns": _STRINGS})
ADMIN_REFERENCE = _obj("AdminReference", {"name": _S, "schema": _S, "table": _S, "columns": _STRINGS,
                                          "referencedColumns": _STRINGS})
ADMIN_FUNCTION = _obj("AdminFunction", {"name": _S, "schema": _S, "language": _S, "returnType": _S,
                                        "arguments": _S, "definition": _S})
ADMIN_INDEX = _obj("AdminIndex", {"name": _S, "tableName": _S, "columns": _STRINGS, "isUnique": _B,
                                  "isPrimary": _B, "definition": _S})
ADMIN_POLICY = _obj("AdminPolicy", {"name": _S, "tableName": _S, "command": _S, "roles": _STRINGS,
                                    "using": GraphQLString, "withCheck": GraphQLString})
ADMIN_TRIGGER = _obj("AdminTrigger", {"name": _S, "tableName": _S, "timing": _S, "events": _STRINGS,
                                      "functionName": _S, "enabled": _B})


def _referenced_by(table: dict[str, Any], info: Any) -> list[dict[str, Any]]:
    """Incoming foreign keys: every FK of an exposed table whose target is this table."""
    key = (table["schema"], table["name"])
    return [{"name": fk.name, "schema": other.schema, "table": other.name, "columns": list(fk.columns),
             "referencedColumns": list(fk.ref_columns)}
            for _, other in sorted(info.context.catalog.tables.items()) for fk in other.foreign_keys
            if (fk.ref_schema, fk.ref_table) == key]


def _parts(kind: str, row: Any) -> Any:
    """Resolver for the table's own indexes, policies or triggers, matched on schema and name."""
    def resolve(table: dict[str, Any], info: Any) -> list[dict[str, Any]]:
        key = (table["schema"], table["name"])
        return [row(x) for x in getattr(info.context.catalog, kind) if (x.schema, x.table) == key]
    return resolve


ADMIN_TABLE = _obj("AdminTable", {
    "name": _S, "schema": _S, "kind": _S, "columns": _list(ADMIN_COLUMN), "foreignKeys": _list(ADMIN_FOREIGN_KEY),
    "referencedBy": GraphQLField(_list(ADMIN_REFERENCE), resolve=_referenced_by,
                                 description="Foreign keys of other tables pointing here."),
    "indexes": GraphQLField(_list(ADMIN_INDEX), resolve=_parts("indexes", introspect.index_row)),
    "policies": GraphQLField(_list(ADMIN_POLICY), resolve=_parts("policies", introspect.policy_row)),
    "triggers": GraphQLField(_list(ADMIN_TRIGGER), resolve=_parts("triggers", introspect.trigger_row)),
    "uniqueKeys": GraphQLNonNull(GraphQLList(_STRINGS)),
    "rlsEnabled": _B, "rowEstimate": GraphQLNonNull(GraphQLFloat)})
MIGRATION_FIELDS = {"version": _S, "name": _S, "statements": _STRINGS, "createdAt": _S}
ADMIN_MIGRATION = _obj("AdminMigration", MIGRATION_FIELDS)
APPLIED_MIGRATION = _obj("AppliedMigration", {**MIGRATION_FIELDS, "message": _S})
ADVISOR_OBJECT = _obj("AdvisorObject", {"schema": _S, "name": _S, "kind": _S})
ADVISOR_FINDING = _obj("AdvisorFinding", {"check": _S, "level": _S, "title": _S,
                                          "object": GraphQLNonNull(ADVISOR_OBJECT), "detail": _S, "why": _S,
                                          "fix": _S})


def _table(t: Table) -> dict[str, Any]:
    return {
        "name": t.name, "schema": t.schema, "kind": t.kind, "rlsEnabled": t.rls_enabled,
        "rowEstimate": t.row_estimate, "uniqueKeys": [list(u) for u in t.unique],
        "columns": [{"name": c.name, "type": c.type, "nullable": c.nullable, "default": c.default,
                     "isPrimaryKey": c.name in t.primary_key, "isIdentity": c.is_identity,
                     "isGenerated": c.is_generated} for c in t.columns],
        "foreignKeys": [{"name": fk.name, "columns": list(fk.columns), "referencedSchema": fk.ref_schema,
                         "referencedTable": fk.ref_table, "referencedColumns": list(fk.ref_columns)}
                        for fk in t.foreign_keys],
    }


def tables(catalog: Catalog) -> list[dict[str, Any]]:
    """Tables (not views) of the exposed schemas, by (schema, name)."""
    return [_table(t) for _, t in sorted(catalog.tables.items())
            if t.kind in ("table", "partitioned_table", "foreign_table")]


def views(catalog: Catalog) -> list[dict[str, Any]]:
    """Views and materialized views of the exposed schemas, by (schema, name)."""
    return [_table(t) for _, t in sorted(catalog.tables.items())
            if t.kind in ("view", "materialized_view")]


def _admin_op(info: Any) -> Any:
    op = info.context
    if not op.identity.is_admin:
        raise errors.forbidden()
    return op


def _from_catalog(lister: Any) -> Any:
    def resolve(op: Any, _info: Any) -> Any:
        return lister(op.catalog)
    return resolve


async def _migrations(op: Any, info: Any) -> Any:
    ctx = RequestContext(op.method, "/graphql", read_only=True)
    async with op.gw.executor.transaction(op.identity, ctx, rawsql.USER_SQL_RULES) as tx:
        return await migrations.list_all(tx.conn)


async def _advisor(op: Any, info: Any, schema: str | None = None) -> Any:
    chosen = introspect.schema_filter({"schema": schema} if schema is not None else {})
    ctx = RequestContext(op.method, "/graphql", read_only=True)
    async with op.gw.executor.transaction(op.identity, ctx, rawsql.USER_SQL_RULES) as tx:  # as project_admin
        return await advisor.findings(tx, (chosen,) if chosen else op.settings.schemas)


ADMIN = GraphQLObjectType("Admin", {
    "tables": GraphQLField(_list(ADMIN_TABLE), resolve=_from_catalog(tables)),
    "views": GraphQLField(_list(ADMIN_TABLE), resolve=_from_catalog(views)),
    "functions": GraphQLField(_list(ADMIN_FUNCTION), resolve=_from_catalog(introspect.functions)),
    "indexes": GraphQLField(_list(ADMIN_INDEX), resolve=_from_catalog(introspect.indexes)),
    "policies": GraphQLField(_list(ADMIN_POLICY), resolve=_from_catalog(introspect.policies)),
    "triggers": GraphQLField(_list(ADMIN_TRIGGER), resolve=_from_catalog(introspect.triggers)),
    "migrations": GraphQLField(_list(ADMIN_MIGRATION), resolve=_migrations),
    "advisor": GraphQLField(_list(ADVISOR_FINDING), {"schema": GraphQLArgument(GraphQLString)}, _advisor,
                            description="Security findings with the SQL that fixes each, as "
                                        "GET /api/database/advisor."),
}, description="Database introspection, as the REST admin endpoints (admins only).")


def resolve_admin(_root: Any, info: Any) -> Any:
    """The operation itself is the Admin object: its fields read its catalog and executor."""
    return _admin_op(info)


async def resolve_migrate(_root: Any, info: Any, **args: Any) -> Any:
    op = _admin_op(info)
    migration = migrations.read_body(args)
    ctx = RequestContext(op.method, "/graphql")
    async with op.gw.executor.transaction(op.identity, ctx, rawsql.USER_SQL_RULES) as tx:
        created = await migrations.apply(tx.conn, migration, op.identity, op.settings.default_schema)
    await op.gw.reload_catalog()  # the next operation sees the new schema
    return created


ADMIN_FIELD = GraphQLField(ADMIN, resolve=resolve_admin)
MIGRATE_FIELD = GraphQLField(
    GraphQLNonNull(APPLIED_MIGRATION),
    {"version": GraphQLArgument(_S), "name": GraphQLArgument(_S), "sql": GraphQLArgument(_S)},
    resolve_migrate, description="Apply and record a migration, as POST /api/database/migrations (admins only). "
    "It runs in a transaction of its own.")
