"""Nested inserts: ``insert_<t>`` / ``insert_<t>_one`` objects that carry related rows.

In:  the insert field (its ``RootField``, selection and coerced arguments), the operation's
     ``Walk``, and a ``run`` callable that runs one request in the operation's transaction.
Out: the inserted root rows, shaped by the selection (related rows included), in the order given.

``insert_posts(objects: [{title: "Hi", author: {data: {email: "a@x"}}, comments: {data: [{body:
"first"}]}}])``: level by level, in the operation's one transaction — a to-one related row (the
foreign key is on this table) is inserted first and its key fills the foreign key; then the row
itself, returning its primary key and whatever its children reference; then each to-many (or
reverse to-one) related row, its foreign key set to the parent's. Rows go in one statement each,
through the pipeline as the caller, so grants and RLS apply at every level and any failure rolls
the whole operation back. One read then answers with the root rows and the selection.

Key values travel as PostgreSQL's own text (``::text`` in RETURNING), so a numeric or bigint key
reaches the child exactly. Giving a foreign key column and the relation that fills it is a 400, as
is ``on_conflict`` beside nested rows (an upserted parent may not be a new one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from graphql import FieldNode, GraphQLField, GraphQLObjectType, get_named_type

from .. import errors
from ..request import BoolExpr, Condition, FieldRef, Filter, Insert, Read, Request, SelectColumn
from .scalars import body_value
from .translate import RootField, TableShape, Walk, select

Run = Callable[[Request], Awaitable[Any]]
KEY = "__key_{}"  # hidden output keys of the final read: the primary key, as text


def has_nested(shape: TableShape, objects: Sequence[Mapping[str, Any]]) -> bool:
    return any(value is not None and key in shape.relations for obj in objects for key, value in obj.items())


def _rows(shape: TableShape, objects: Sequence[Mapping[str, Any]],
          fixed: Sequence[Mapping[str, str | None]]) -> list[dict[str, Any]]:
    """The column values of each object (relation fields left out) with ``fixed`` foreign keys added."""
    rows = []
    for obj, keys in zip(objects, fixed, strict=True):
        row = {shape.columns[k].name: body_value(v) for k, v in obj.items() if k in shape.columns}
        given = sorted(set(row) & set(keys))
        if given:
            raise errors.validation_error(f"Column '{given[0]}' of '{shape.table.name}' is filled by its nested "
                                          "related row; give one or the other")
        rows.append({**row, **keys})
    return rows


async def _level(run: Run, shape: TableShape, objects: Sequence[Mapping[str, Any]],
                 fixed: Sequence[Mapping[str, str | None]], needed: Sequence[str]) -> list[dict[str, str | None]]:
    """Insert ``objects`` (and everything nested in them) into ``shape``'s table; each row's
    ``needed`` columns and primary key, as text, in the objects' order."""
    fills: list[dict[str, str | None]] = [dict(f) for f in fixed]
    for name, rel in shape.relations.items():  # to-one parents first: their keys fill ours
        if not rel.forward:
            continue
        given = [i for i, obj in enumerate(objects) if obj.get(name) is not None]
        if given:
            keys = await _level(run, rel.target, [objects[i][name]["data"] for i in given], [{}] * len(given),
                                [theirs for _, theirs in rel.pairs])
            for i, key in zip(given, keys, strict=True):
                fills[i].update({mine: key[theirs] for mine, theirs in rel.pairs})
    children = {name: rel for name, rel in shape.relations.items() if not rel.forward}
    wanted = list(dict.fromkeys([*needed, *shape.table.primary_key,
                                 *(mine for rel in children.values() for mine, _ in rel.pairs)]))
    returning = tuple(SelectColumn(FieldRef(c), alias=c, cast="text") for c in wanted)
    inserted: list[dict[str, str | None]] = []
    for row in _rows(shape, objects, fills):  # one statement a row: the children need this row's keys
        result = await run(Insert(shape.target, (row,), missing_default=True, returning=returning))
        inserted += orjson.loads(result.body or "[]")
    for name, rel in children.items():
        for obj, parent in zip(objects, inserted, strict=True):
            if obj.get(name) is None:
                continue
            data = obj[name]["data"]
            kids = [data] if rel.to_one else list(data)
            await _level(run, rel.target, kids, [{theirs: parent[mine] for mine, theirs in rel.pairs}] * len(kids), ())
    return inserted


def _matching(pk: Sequence[str], keys: Sequence[Mapping[str, str | None]]) -> Condition:
    """The rows whose primary key is one of ``keys``."""
    if len(pk) == 1:
        return Filter(FieldRef(pk[0]), "in", tuple(str(k[pk[0]]) for k in keys))
    return BoolExpr("or", tuple(BoolExpr("and", tuple(Filter(FieldRef(c), "eq", str(k[c])) for c in pk))
                                for k in keys))


async def insert(run: Run, root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode],
                 args: Mapping[str, Any], walk: Walk) -> list[Any]:
    """The nested insert (see the module doc); the root rows as the selection shapes them."""
    shape = root.shape
    assert shape is not None
    if args.get("on_conflict") is not None:
        raise errors.validation_error("on_conflict cannot be combined with nested related rows")
    pk = shape.table.primary_key
    if not pk:
        raise errors.validation_error(f"'{shape.table.name}' has no primary key, so rows nested in it cannot be "
                                      "read back; insert them separately")
    objects = [args["object"]] if root.kind == "insert_one" else list(args.get("objects") or ())
    keys = await _level(run, shape, objects, [{}] * len(objects), ())
    obj = get_named_type(fdef.type)
    assert isinstance(obj, GraphQLObjectType)
    hidden = tuple(SelectColumn(FieldRef(c), alias=KEY.format(i), cast="text") for i, c in enumerate(pk))
    read = Read(shape.target, (*select(shape, obj, nodes, walk, len(objects)), *hidden),
                where=(_matching(pk, keys),), limit=len(keys), default_limit=False, want_total=False)
    rows = orjson.loads((await run(read)).body or "[]")
    found = {tuple(row[KEY.format(i)] for i in range(len(pk))): row for row in rows}
    # in the order given; a row the caller may insert but not read (RLS) is left out
    return [found[key] for key in (tuple(k[c] for c in pk) for k in keys) if key in found]
