"""The request model: what a caller asked for, independent of the front end.

In:  nothing; REST parsing (``rest/parse.py``) and GraphQL argument reading
     (``graphql/resolve.py``) both construct these values.
Out: frozen dataclasses — ``Read``, ``Insert``, ``Update``, ``Delete``, ``Call`` —
     that the planner (``plan``) resolves against the catalog.

Names here are still unresolved strings: nothing in this module knows whether a
table, column or relation exists. Values are still as the caller sent them
(strings from a URL, JSON values from a body); the planner coerces them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class JsonStep:
    """One step of a JSON path: ``->key`` (JSON) or ``->>key`` (text)."""

    key: str  # object key, or an integer index written as digits ("0", "-1")
    as_text: bool  # True for ``->>``


@dataclass(frozen=True)
class FieldRef:
    """A column, optionally followed by a JSON path (``meta->kind->>name``)."""

    name: str  # column name exactly as the caller wrote it (unquoted)
    json_path: tuple[JsonStep, ...] = ()  # empty for a plain column

    @property
    def output_name(self) -> str:
        """The key a JSON path yields in a result: its last key (PostgREST rule)."""
        return self.json_path[-1].key if self.json_path else self.name


@dataclass(frozen=True)
class Target:
    """The relation or function a request is about."""

    name: str  # table, view or function name
    schema: str | None = None  # None: the default exposed schema


# --------------------------------------------------------------------------- filters

FilterOp = Literal[
    "eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch",
    "in", "is", "isdistinct", "fts", "plfts", "phfts", "wfts",
    "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj",
    "has_key", "has_any_keys", "has_all_keys",  # jsonb ? ?| ?& (GraphQL)
]


@dataclass(frozen=True)
class Filter:
    """One predicate: ``field op value``, possibly negated."""

    field: FieldRef  # the column (with JSON path) the predicate tests
    op: FilterOp  # operator name, as in the URL
    # str for scalar ops; tuple[str, ...] for ``in`` and (any)/(all); for ``is``: null/not_null/true/false/unknown
    value: Any
    negate: bool = False  # ``not.`` prefix
    modifier: Literal["any", "all"] | None = None  # ``eq(any)``: value is a tuple
    language: str | None = None  # full-text search configuration, ``fts(english)``


@dataclass(frozen=True)
class EmbedNull:
    """The embed null test ``clients=is.null`` / ``clients=not.is.null`` (anti/semi join)."""

    relation: str  # embed name or alias as written in ``select``
    is_null: bool  # True: keep rows whose embed is empty


@dataclass(frozen=True)
class BoolExpr:
    """An ``and``/``or`` tree, optionally negated (``not.or=(...)``)."""

    op: Literal["and", "or"]
    items: tuple[Condition, ...]
    negate: bool = False


@dataclass(frozen=True)
class RelatedFilter:
    """Rows whose related rows match ``where``: for a to-one relation the linked row, for a to-many
    relation at least one of them (EXISTS). The related rows are read as the caller (RLS applies)."""

    relation: str  # the related table's name, or the FK's name (as SelectEmbed.relation)
    hint: str | None  # the FK constraint that picks one of several relationships
    where: tuple[Condition, ...]  # ANDed conditions on the related table's columns


Condition = Filter | BoolExpr | EmbedNull | RelatedFilter

# --------------------------------------------------------------------------- select / order


@dataclass(frozen=True)
class Order:
    """One ``ORDER BY`` term."""

    field: FieldRef  # column (or JSON path) to sort by
    direction: Literal["asc", "desc"] | None = None  # None: PostgreSQL's default (asc)
    nulls: Literal["first", "last"] | None = None  # None: PostgreSQL's default for the direction
    relation: str | None = None  # ``clients(name).desc``: sort by a to-one embed's column
    hint: str | None = None  # the FK constraint that picks the relationship (GraphQL knows it)


AggregateName = Literal["sum", "avg", "min", "max", "count"]
COUNT_ROWS = "*"  # the field of ``count()``: every row, not one column's non-null values


@dataclass(frozen=True)
class SelectColumn:
    """``[alias:]column[->json][::cast][.aggregate()[::cast]]``, or ``count()`` (field ``*``)."""

    field: FieldRef
    alias: str | None = None  # output key; None: the column name (JSON path's last key, aggregate name)
    cast: str | None = None  # PostgreSQL type name for ``::type``
    aggregate: AggregateName | None = None  # ``.sum()`` etc.: aggregated, grouped by the plain columns
    aggregate_cast: str | None = None  # ``.avg()::int``: a cast of the aggregate's result


@dataclass(frozen=True)
class SelectStar:
    """``*``: every column of the relation, in table order."""


@dataclass(frozen=True)
class SelectEmbed:
    """``[alias:]relation[!hint][!inner](select)`` with its own filters, order and page."""

    relation: str  # related table name (or FK/column name used as a relation name)
    select: tuple[SelectItem, ...]  # columns of the embedded rows; empty: ``clients()`` (no key)
    alias: str | None = None  # output key; None: ``relation``
    hint: str | None = None  # FK constraint name, column, or junction table to disambiguate
    inner: bool = False  # ``!inner``: drop parents whose embed is empty
    spread: bool = False  # ``...relation(cols)``: merge a to-one embed's keys into the parent
    where: tuple[Condition, ...] = ()  # ``relation.col=op.val`` filters inside the embed
    order: tuple[Order, ...] = ()  # ``relation.order=...``
    limit: int | None = None  # ``relation.limit=...``; None: no limit inside the embed
    offset: int = 0  # ``relation.offset=...``
    distinct_on: tuple[str, ...] = ()  # DISTINCT ON these columns of the embedded rows

    @property
    def key(self) -> str:
        """The name this embed answers to in paths and output: alias or relation."""
        return self.alias or self.relation


SelectItem = SelectColumn | SelectStar | SelectEmbed

STAR: tuple[SelectItem, ...] = (SelectStar(),)

# --------------------------------------------------------------------------- preferences

CountKind = Literal["exact", "planned", "estimated"]
ReturnKind = Literal["minimal", "representation", "headers-only"]
Resolution = Literal["merge-duplicates", "ignore-duplicates"]


@dataclass(frozen=True)
class Prefer:
    """What a ``Prefer`` header asked for (only the tokens the gateway honours)."""

    return_: ReturnKind | None = None  # None: the front end's default
    count: CountKind | None = None
    resolution: Resolution | None = None
    missing_default: bool = False  # ``missing=default``
    tx_rollback: bool = False  # ``tx=rollback``
    max_affected: int | None = None  # ``max-affected=N`` (enforced with handling=strict)
    strict: bool = False  # ``handling=strict``
    timezone: str | None = None  # ``timezone=...``

    def applied(self) -> str:
        """The ``Preference-Applied`` value, in PostgREST's order."""
        parts: list[str] = []
        if self.resolution:
            parts.append(f"resolution={self.resolution}")
        if self.missing_default:
            parts.append("missing=default")
        if self.return_:
            parts.append(f"return={self.return_}")
        if self.count:
            parts.append(f"count={self.count}")
        if self.tx_rollback:
            parts.append("tx=rollback")
        if self.strict:
            parts.append("handling=strict")
        if self.timezone:
            parts.append(f"timezone={self.timezone}")
        if self.max_affected is not None:
            parts.append(f"max-affected={self.max_affected}")
        return ", ".join(parts)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Read:
    """A read of a table or view (REST GET/HEAD, a GraphQL list/count/by-pk field)."""

    target: Target
    select: tuple[SelectItem, ...] = STAR  # output shape
    where: tuple[Condition, ...] = ()  # ANDed root filters
    order: tuple[Order, ...] = ()
    limit: int | None = None  # None: the default limit (100); the planner enforces 1..1000
    offset: int = 0
    count: CountKind | None = None  # an explicit count request (206/416 rules apply)
    single: bool = False  # exactly one row wanted, as a bare object (406 otherwise)
    head: bool = False  # headers only: the body is not needed
    want_total: bool = True  # compute a total for X-Total-Count even without ``count``
    default_limit: bool = True  # apply the default limit when ``limit`` is None
    distinct_on: tuple[str, ...] = ()  # DISTINCT ON these columns (GraphQL distinctOn); no total then

    def __hash__(self) -> int:
        # a read is the key of the planner's memo, looked up on every request; hashing the whole
        # tree each time costs more than the lookup, so the value is kept (the object is frozen)
        cached: int | None = self.__dict__.get("_hash")
        if cached is None:
            cached = hash(tuple(getattr(self, f.name) for f in dataclasses.fields(self)))
            object.__setattr__(self, "_hash", cached)
        return cached


@dataclass(frozen=True)
class Insert:
    """An insert or upsert of one or more rows (REST POST, GraphQL insert_<table>)."""

    target: Target
    rows: tuple[Mapping[str, Any], ...]  # decoded JSON objects, one per row
    columns: tuple[str, ...] | None = None  # ``columns=``: only these keys are read
    on_conflict: tuple[str, ...] | None = None  # conflict target columns
    resolution: Resolution | None = None  # None: a conflict is an error
    update_columns: tuple[str, ...] | None = None  # merge: columns to overwrite (None: the payload's)
    missing_default: bool = False  # absent keys take the column DEFAULT
    returning: tuple[SelectItem, ...] = STAR  # shape of the returned rows
    return_rows: bool = True  # False: the caller does not need the rows back
    count: CountKind | None = None
    single: bool = False
    rollback: bool = False  # build the response, then roll back (tx=rollback)
    put: bool = False  # PUT: one row replacing the row named by ``put_filters`` (the full primary key)
    put_filters: tuple[Condition, ...] = ()  # PUT's URL filters: eq on every PK column


UpdateOp = Literal["inc", "append", "delete_key"]


@dataclass(frozen=True)
class Update:
    """An update of the rows matching ``where`` (REST PATCH, GraphQL update_<table>)."""

    target: Target
    values: Mapping[str, Any]  # column -> new value (decoded JSON)
    where: tuple[Condition, ...] = ()
    # (column, operation) for values that change the current value instead of replacing it:
    # "inc" (col + value), "append" (jsonb col || value), "delete_key" (jsonb col - key)
    operations: tuple[tuple[str, UpdateOp], ...] = ()
    returning: tuple[SelectItem, ...] = STAR
    return_rows: bool = True
    count: CountKind | None = None
    single: bool = False
    rollback: bool = False
    max_affected: int | None = None


@dataclass(frozen=True)
class Delete:
    """A delete of the rows matching ``where`` (REST DELETE, GraphQL delete_<table>)."""

    target: Target
    where: tuple[Condition, ...] = ()
    returning: tuple[SelectItem, ...] = STAR
    return_rows: bool = True
    count: CountKind | None = None
    single: bool = False
    rollback: bool = False
    max_affected: int | None = None


@dataclass(frozen=True)
class Call:
    """A function call (REST RPC, GraphQL function field)."""

    target: Target
    args: Mapping[str, Any]  # argument name -> value (str from a query string, JSON from a body)
    read_only: bool  # GET/HEAD: the call must not write
    select: tuple[SelectItem, ...] = STAR  # shaping of row-returning functions
    where: tuple[Condition, ...] = ()
    order: tuple[Order, ...] = ()
    limit: int | None = None  # RPC has no default limit
    offset: int = 0
    count: CountKind | None = None
    single: bool = False
    head: bool = False
    args_from_query: bool = False  # values are strings from a URL (cast by PostgreSQL)
    positional_json: bool = False  # the whole body goes to a single unnamed json parameter
    rollback: bool = False  # run the call, answer, then roll back (tx=rollback)
    max_affected: int | None = None  # handling=strict, max-affected=N: more result rows roll back (400)
    raw_body: Any = field(default=None, compare=False)  # the decoded body, for that fallback


Request = Read | Insert | Update | Delete | Call
