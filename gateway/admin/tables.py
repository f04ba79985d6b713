"""Table introspection the official Python SDK reads: ``list_tables()`` and ``get_table_schema()``.

In:  ``GET /api/database/tables`` and ``GET /api/database/tables/{table}/schema`` (admin only).
Out: a bare JSON array of table names; and ``{tableName, columns: [{columnName, type, isNullable,
     isUnique, defaultValue, isPrimaryKey, foreignKey}], recordCount}`` — the shapes the
     ``insforge`` SDK validates. Served from the catalog; ``recordCount`` is the planner's
     estimate (``reltuples``), so the call never scans the table.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors
from ..catalog import Table
from .routes import admin, respond


def _schema_of(request: Request) -> str | None:
    return request.query_params.get("schema") or None


async def list_tables(request: Request) -> Response:
    gw, _identity = await admin(request)
    catalog = gw.catalogs.get()
    schema = _schema_of(request) or catalog.default_schema
    return respond(sorted(t.name for t in catalog.tables.values() if t.schema == schema))


def table_schema(table: Table) -> dict[str, Any]:
    single_unique = {u[0] for u in table.unique if len(u) == 1}
    fks = {fk.columns[0]: fk for fk in table.foreign_keys if len(fk.columns) == 1}
    columns = []
    for c in table.columns:
        fk = fks.get(c.name)
        columns.append({
            "columnName": c.name,
            "type": c.type,
            "isNullable": c.nullable,
            "isUnique": c.name in single_unique or table.primary_key == (c.name,),
            "defaultValue": c.default,
            "isPrimaryKey": c.name in table.primary_key,
            "foreignKey": None if fk is None else {
                "constraint_name": fk.name, "referenceTable": fk.ref_table,
                "referenceColumn": fk.ref_columns[0]},
        })
    return {"tableName": table.name, "columns": columns, "recordCount": max(table.row_estimate, 0)}


async def get_table_schema(request: Request) -> Response:
    gw, _identity = await admin(request)
    name = request.path_params["table"]
    table = gw.catalogs.get().table(name, _schema_of(request))
    if table is None:
        raise errors.table_not_found(name)
    return respond(table_schema(table))


ROUTES = [
    Route("/tables", list_tables, methods=["GET"]),
    Route("/tables/{table}/schema", get_table_schema, methods=["GET"]),
]
