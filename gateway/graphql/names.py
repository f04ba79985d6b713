"""GraphQL names for catalog objects: PascalCase types, exact fields, deterministic mangling.

In:  table, column, relation, function, argument and enum-label names from the catalog.
Out: valid GraphQL names, unique within their namespace.

The naming contract (DESIGN.md): a table's type is its name in PascalCase
(``user_settings`` -> ``UserSettings``); fields, arguments and enum values keep
the catalog's names exactly. A name is changed only when GraphQL cannot carry
it, by these rules, applied in order:

1. every character outside ``[_0-9A-Za-z]`` becomes ``_`` (``first name`` -> ``first_name``);
2. a name that is empty or starts with a digit gets a leading ``_`` (``2fa`` -> ``_2fa``);
3. a name starting with ``__`` (reserved for introspection) gets a leading ``x`` (``__v`` -> ``x__v``);
4. a name that is reserved in its namespace, or already taken there, gets ``_2``,
   ``_3``, ... (the first free number). Claims happen in a fixed order, so the result
   does not depend on dictionary order: tables by (schema, name), columns by
   position, relations by constraint name, functions by name then argument count.

Reserved per namespace: type names of GraphQL's and the gateway's own types
(``String``, ``UUID``, ``Query``, ``OrderDirection``, ...); inside a table, the
filter's logical keys ``and``/``or``/``not`` and the enum-invalid ``true``/``false``/``null``
(so a column has one name in every type it appears in); enum values ``true``,
``false`` and ``null``.

A table claims a *family* of names at once (``Posts``, ``PostsFilter``,
``PostsOrderBy``, ... and ``posts``, ``posts_count``, ``posts_by_pk``, ``insert_posts``,
...), so a table called ``posts_filter`` can never take a name derived from ``posts``:
it becomes ``PostsFilter_2`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_VALID = re.compile(r"[_A-Za-z][_0-9A-Za-z]*")
_INVALID_CHAR = re.compile(r"[^_0-9A-Za-z]")

# Names GraphQL or the gateway's fixed types already use in the type namespace.
RESERVED_TYPES: frozenset[str] = frozenset({
    "String", "Int", "Float", "Boolean", "ID",
    "UUID", "BigInt", "Decimal", "JSON", "DateTime", "Date", "Time",
    "Query", "Mutation", "Subscription",
    "OrderDirection", "IsValue", "PageInfo",
    "Admin", "AdminTable", "AdminColumn", "AdminForeignKey", "AdminFunction", "AdminIndex",
    "AdminPolicy", "AdminTrigger", "AdminMigration", "AppliedMigration",
})
# Inside a table: the filter input's logical keys and the names an enum cannot have.
RESERVED_COLUMNS: frozenset[str] = frozenset({"and", "or", "not", "true", "false", "null"})
RESERVED_ENUM_VALUES: frozenset[str] = frozenset({"true", "false", "null"})
RESERVED_ROOT: frozenset[str] = frozenset({"admin", "migrate"})

# The names one table claims, as format patterns over its base name.
TYPE_FAMILY: tuple[str, ...] = (
    "{}", "{}Filter", "{}OrderBy", "{}Column", "{}InsertInput", "{}SetInput", "{}OnConflict", "{}IncInput",
    "{}AppendInput", "{}DeleteKeyInput", "{}Connection", "{}Edge",
    "{}ObjRelInsertInput", "{}ArrRelInsertInput", "{}Aggregate", "{}Group", "{}GroupKey", "{}SumFields",
    "{}AvgFields", "{}MinFields", "{}MaxFields",
)
ROOT_FAMILY: tuple[str, ...] = (
    "{}", "{}_count", "{}_by_pk", "insert_{}", "update_{}", "delete_{}", "insert_{}_one", "update_{}_by_pk",
    "delete_{}_by_pk", "{}_connection", "{}_aggregate", "{}_groups",
)


def is_valid(name: str) -> bool:
    """A GraphQL name that introspection does not reserve."""
    return bool(_VALID.fullmatch(name)) and not name.startswith("__")


def sanitize(name: str) -> str:
    """Rules 1-3: any string -> a valid GraphQL name (unchanged when already valid)."""
    if is_valid(name):
        return name
    out = _INVALID_CHAR.sub("_", name)
    if not out or out[0].isdigit():
        out = "_" + out
    if out.startswith("__"):
        out = "x" + out
    return out


def pascal(name: str) -> str:
    """``user_settings`` -> ``UserSettings``: each ``_``-separated part capitalised, the rest kept."""
    parts = [p for p in sanitize(name).split("_") if p]
    out = "".join(p[0].upper() + p[1:] for p in parts)
    return out if out and not out[0].isdigit() else "_" + out


class Namespace:
    """Names already given out in one GraphQL scope; ``claim`` applies rule 4."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken: set[str] = set(reserved)

    def claim(self, name: str, family: tuple[str, ...] = ("{}",)) -> str:
        """The first of ``base``, ``base_2``, ``base_3``, ... whose whole family is free; taken."""
        base = sanitize(name)
        candidate, n = base, 1
        while any(p.format(candidate) in self._taken for p in family):
            n += 1
            candidate = f"{base}_{n}"
        self._taken.update(p.format(candidate) for p in family)
        return candidate

    def __contains__(self, name: str) -> bool:
        return name in self._taken
