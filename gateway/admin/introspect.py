"""Introspection lists: the current ``Catalog`` in, the spec's admin JSON arrays out.

In:  ``gw.catalogs.get()`` (functions, indexes, policies and triggers of the exposed schemas, as
     ``reflect.py`` read them) and the optional ``?schema=`` query parameter.
Out: bare JSON arrays with the spec's field names (insforge-behavior §7 row 7): roles and events
     as arrays, ``withCheck`` null when absent. Served from the catalog, so no database round trip;
     the catalog reloads after every DDL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..catalog import Catalog, Function, Index, Policy, Trigger
from ..errors import GatewayError


def schema_filter(params: Mapping[str, str], multi: Callable[[str], list[str]] | None = None) -> str | None:
    """The ``?schema=`` value; blank, repeated, information_schema or pg_* -> 400 INVALID_INPUT."""
    values = multi("schema") if multi is not None else ([params["schema"]] if "schema" in params else [])
    if not values:
        return None
    if len(values) > 1:
        raise GatewayError(400, "INVALID_INPUT", "schema: give it once")
    value = values[0].strip()
    if not value or value == "information_schema" or value.startswith("pg_"):
        raise GatewayError(400, "INVALID_INPUT", f"schema: '{values[0]}' is not an exposed schema")
    return value


def function_row(f: Function) -> dict[str, Any]:
    return {"name": f.name, "schema": f.schema, "language": f.language, "returnType": f.return_type,
            "arguments": f.arguments_text, "definition": f.definition}


def index_row(i: Index) -> dict[str, Any]:
    return {"name": i.name, "tableName": i.table, "columns": list(i.columns), "isUnique": i.is_unique,
            "isPrimary": i.is_primary, "definition": i.definition}


def policy_row(p: Policy) -> dict[str, Any]:
    return {"name": p.name, "tableName": p.table, "command": p.command, "roles": list(p.roles),
            "using": p.using, "withCheck": p.with_check}


def trigger_row(t: Trigger) -> dict[str, Any]:
    return {"name": t.name, "tableName": t.table, "timing": t.timing, "events": list(t.events),
            "functionName": t.function_name, "enabled": t.enabled}


def functions(catalog: Catalog, schema: str | None = None) -> list[dict[str, Any]]:
    found = [f for overloads in catalog.functions.values() for f in overloads
             if schema is None or f.schema == schema]
    return [function_row(f) for f in sorted(found, key=lambda f: (f.schema, f.name, f.arguments_text))]


def indexes(catalog: Catalog, schema: str | None = None) -> list[dict[str, Any]]:
    found = [i for i in catalog.indexes if schema is None or i.schema == schema]
    return [index_row(i) for i in sorted(found, key=lambda i: (i.schema, i.table, i.name))]


def policies(catalog: Catalog, schema: str | None = None) -> list[dict[str, Any]]:
    found = [p for p in catalog.policies if schema is None or p.schema == schema]
    return [policy_row(p) for p in sorted(found, key=lambda p: (p.schema, p.table, p.name))]


def triggers(catalog: Catalog, schema: str | None = None) -> list[dict[str, Any]]:
    found = [t for t in catalog.triggers if schema is None or t.schema == schema]
    return [trigger_row(t) for t in sorted(found, key=lambda t: (t.schema, t.table, t.name))]


# path segment -> list builder, for the routes table
LISTS: dict[str, Callable[[Catalog, str | None], list[dict[str, Any]]]] = {
    "functions": functions,
    "indexes": indexes,
    "policies": policies,
    "triggers": triggers,
}
