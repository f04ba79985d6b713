"""One GraphQL schema per API role, built with the catalog.

In:  a ``Catalog`` (privileges reflected) and the ``Settings``.
Out: ``build_schemas`` -> {role: CatalogSchema}: each role's schema shows only the tables,
     columns and functions it holds privileges on (``Catalog.visible_to``); roles that see
     the same objects share one schema, so a reload builds as few as it must (for 200 tables,
     ``python -m gateway.bench.roles``).
"""

from __future__ import annotations

from typing import Any

from ..catalog import Catalog
from ..identity import ROLES
from ..settings import Settings
from .schema import CatalogSchema, build_shown


def build_schemas(catalog: Catalog, settings: Settings) -> dict[str, CatalogSchema]:
    """One schema per API role (what each role may touch), built together with the catalog.

    Roles that see the same objects share one schema (authenticated and project_admin
    usually do), so a reload builds as few as it must.
    """
    built: dict[tuple[Any, ...], CatalogSchema] = {}
    out: dict[str, CatalogSchema] = {}
    for role in ROLES:
        shown = catalog.visible_to(role)
        key = shown_objects(shown)
        if key not in built:
            built[key] = build_shown(catalog, shown, settings)
        out[role] = built[key]
    return out


def shown_objects(shown: Catalog) -> tuple[Any, ...]:
    """Everything about a role's view of the catalog that the generated schema depends on."""
    tables = tuple(sorted((key, tuple(c.name for c in t.columns), t.insertable, t.updatable, t.deletable,
                           tuple(fk.name for fk in t.foreign_keys)) for key, t in shown.tables.items()))
    return tables, tuple(sorted(f.oid for overloads in shown.functions.values() for f in overloads))
