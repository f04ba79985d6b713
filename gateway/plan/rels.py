"""Relationship resolution: an embed's name and hint -> the one catalog relationship it means.

In:  the catalog, the parent table, the name written in ``select`` (a table or view, a foreign-key
     constraint, or a column of the parent) and the optional ``!hint``.
Out: a ``catalog.Relationship``, or 400 PGRST200 (none) / 300 PGRST201 (more than one).

The rules are PostgREST's (resource embedding, "Disambiguation" and "Recursive relationships"):

* ordinary relationships: the name matches the target table; or, when the target is not a view,
  the FK constraint name or the parent's single FK column (for a to-many relationship, the
  parent's referenced column). A hint then narrows a table-name match: constraint name, a single
  column on either side, or the junction table of a many-to-many.
* self relationships (a table's FK to itself: one constraint, two relationships): the table name
  means the children (to-many side) and the FK column name means the parent (to-one side), as
  does the constraint name alone (the GraphQL schema names a self reference's to-one field so);
  a hint with the table name picks the children through that FK, by its column or constraint.

A computed relationship (a function ``f(parent_row)`` returning rows of a table) answers to the
function's name. A direct relationship beats a many-to-many route when both match (the junction is
then named by a hint if it is wanted).
"""

from __future__ import annotations

import difflib

from .. import errors
from ..catalog import Catalog, Relationship, Table


def _single(columns: tuple[str, ...]) -> str | None:
    return columns[0] if len(columns) == 1 else None


def _self_matches(r: Relationship, name: str, hint: str | None) -> bool:
    if hint is None:
        return (name == r.target[1] and r.reverse) or (name in (_single(r.source_columns), r.constraint)
                                                       and not r.reverse)
    return name == r.target[1] and r.reverse and hint in (_single(r.target_columns), r.constraint)


def _matches(r: Relationship, name: str, hint: str | None, target_is_view: bool) -> bool:
    """PostgREST's matching table for one relationship (see the module docstring)."""
    if r.function is not None:
        return name == r.function[1]  # a computed relationship answers to its function's name
    if r.is_self:
        return _self_matches(r, name, hint)
    direct = r.cardinality != "m2m"
    if hint is None:
        return name == r.target[1] or (direct and not target_is_view and name in (
            r.constraint, _single(r.source_columns)))
    if name != r.target[1]:
        return False
    if direct:
        return hint in (r.constraint, _single(r.source_columns), _single(r.target_columns))
    return hint in (r.junction[1] if r.junction else None, r.constraint, r.junction_constraint)


def find_relationship(catalog: Catalog, parent: Table, name: str, hint: str | None) -> Relationship:
    """The one relationship ``name`` (+ ``hint``) means from ``parent``, PostgREST's way."""
    rels = [r for r in (*catalog.relationships_of(parent), *catalog.view_relationships_of(parent),
                        *catalog.computed_relationships_of(parent)) if r.target[0] in catalog.schemas]
    candidates = [r for r in rels if _matches(r, name, hint, _is_view(catalog, r))]
    if not candidates:
        names = sorted({r.target[1] for r in rels})
        close = difflib.get_close_matches(name, names, n=1)
        raise errors.invalid_query(
            f"Could not find a relationship between '{parent.name}' and '{name}' in the schema cache",
            code="PGRST200", hint=f"Perhaps you meant '{close[0]}'" if close else
            f"Check that '{name}' is a table with a foreign key to or from '{parent.name}'")
    if len(candidates) == 1:
        return candidates[0]
    direct = [r for r in candidates if r.cardinality != "m2m"]
    if len(direct) == 1:
        return direct[0]
    details = "; ".join(f"{r.cardinality} via {r.constraint}" for r in candidates)
    raise errors.postgrest(
        300, "PGRST201",
        f"Could not embed because more than one relationship was found for '{parent.name}' and '{name}'",
        details=details, hint=f"Try changing '{name}' to one of: "
        + ", ".join(f"{name}!{r.constraint}" for r in candidates))


def _is_view(catalog: Catalog, r: Relationship) -> bool:
    target = catalog.tables.get(r.target)
    return target is not None and target.kind != "table" and target.kind != "partitioned_table"
