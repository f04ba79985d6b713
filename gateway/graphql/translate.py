"""GraphQL field selections and arguments -> the request model.

In:  a root field of the generated schema (its ``RootField`` kind, attached by
     ``schema.py`` to the field's ``extensions``), the field nodes that select it,
     its coerced arguments and the operation's variables and fragments.
Out: one ``Read``/``Insert``/``Update``/``Delete``/``Call`` (``request.py``) whose
     select tree has the shape of the GraphQL selection: every output key is the
     GraphQL response key (alias or field name), relations are embeds, so the JSON
     PostgreSQL builds is already the GraphQL value.

Pure: no I/O, no graphql-core execution. Fragments, ``@skip``/``@include`` and
field merging are resolved here (``collect``) the way graphql-core does, since the
whole selection becomes one statement before any field resolves.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import get_argument_values, get_directive_values

from .. import errors
from ..catalog import Column, Function, Table
from ..request import (
    STAR,
    BoolExpr,
    Call,
    Condition,
    Delete,
    FieldRef,
    Filter,
    Insert,
    Order,
    Read,
    RelatedFilter,
    Request,
    SelectColumn,
    SelectEmbed,
    SelectItem,
    Target,
    Update,
    UpdateOp,
)
from ..settings import Settings
from .scalars import body_value, filter_text

GATEWAY = "gateway"  # the key of a field's ``extensions`` that holds its kind
UPDATE_OPS: tuple[UpdateOp, ...] = ("inc", "append", "delete_key")  # update arguments besides ``set``

# --------------------------------------------------------------------------- field kinds


@dataclass(frozen=True)
class TableShape:
    """One table or view as the schema exposes it."""

    table: Table
    columns: Mapping[str, Column]  # GraphQL field name -> column, the same in every input type
    # GraphQL field name -> relation, for filters and ordering through it (filled in by the schema
    # builder once every table's shape exists, since relations point both ways)
    relations: dict[str, RelationField] = field(default_factory=dict, compare=False, hash=False)
    # GraphQL field name -> a computed field (``f(posts) RETURNS scalar``) as a read-only column
    computed: dict[str, Column] = field(default_factory=dict, compare=False, hash=False)

    def column(self, name: str) -> Column:
        """A column or computed field by GraphQL field name (filters and ordering take both)."""
        return self.columns[name] if name in self.columns else self.computed[name]

    @property
    def target(self) -> Target:
        return Target(self.table.name, self.table.schema)


@dataclass(frozen=True)
class ColumnField:
    """An object field that is a column."""

    column: Column
    cast: str | None = None  # the SQL cast that makes PostgreSQL's JSON hold the GraphQL value
    exact: bool = True  # False: the GraphQL value differs from PostgreSQL's (a renamed enum label)


@dataclass(frozen=True)
class RelationField:
    """An object field that embeds the rows a foreign key links."""

    target: TableShape  # the embedded table
    relation: str  # SelectEmbed.relation: the target table's name (the FK's name for a self-reference)
    hint: str | None  # SelectEmbed.hint: the FK constraint's name, which picks one of several FKs
    to_one: bool  # object-or-null (FK side) vs list (referenced side)
    forward: bool = True  # the foreign key is on this table (the related row is inserted first)
    pairs: tuple[tuple[str, str], ...] = ()  # (this table's column, the related table's column)
    computed: bool = False  # a function of the row (``f(posts) RETURNS SETOF comments``), not a foreign key


RootKind = Literal["list", "count", "by_pk", "insert", "update", "delete", "call", "admin",
                   "insert_one", "update_by_pk", "delete_by_pk", "connection", "aggregate", "groups"]


@dataclass(frozen=True)
class RelationAggregate:
    """An object field aggregating a to-many relation's rows (``posts_aggregate { count }``)."""

    relation: RelationField  # the relation it aggregates


@dataclass(frozen=True)
class RootField:
    """A Query or Mutation field."""

    kind: RootKind
    shape: TableShape | None = None  # the table (list/count/by_pk/mutations, table-returning calls)
    function: Function | None = None  # for calls
    args: Mapping[str, str] = field(default_factory=dict)  # GraphQL argument -> column/function argument


# --------------------------------------------------------------------------- walking selections


@dataclass
class Walk:
    """State while one root field's selection becomes a select tree."""

    variables: Any  # graphql-core's coerced variable values (what resolvers see)
    fragments: Mapping[str, FragmentDefinitionNode]
    settings: Settings
    admin: bool = False  # the caller is project_admin (no default atMost)
    exact: bool = True  # PostgreSQL's JSON is exactly the GraphQL value of this field
    cost: int = 0  # rows the field may return, summed over every list (limits multiplied down)


def _included(node: SelectionNode, walk: Walk) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, walk.variables)
    if skip and skip.get("if") is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, walk.variables)
    return not (include and include.get("if") is False)


def collect(selection_sets: Iterable[SelectionSetNode | None], walk: Walk) -> dict[str, list[FieldNode]]:
    """Field nodes grouped by response key, in response order (fragments inlined).

    The generated schema has no interfaces or unions, so every fragment that passed
    validation applies to the type it is spread in.
    """
    grouped: dict[str, list[FieldNode]] = {}
    seen: set[str] = set()

    def visit(selection_set: SelectionSetNode | None) -> None:
        for node in selection_set.selections if selection_set else ():
            if not _included(node, walk):
                continue
            if isinstance(node, FieldNode):
                key = node.alias.value if node.alias else node.name.value
                grouped.setdefault(key, []).append(node)
            elif isinstance(node, InlineFragmentNode):
                visit(node.selection_set)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                seen.add(node.name.value)
                fragment = walk.fragments.get(node.name.value)
                visit(fragment.selection_set if fragment else None)

    for selection_set in selection_sets:
        visit(selection_set)
    return grouped


def page_limit(limit: int | None, settings: Settings) -> int:
    """A list's row limit: the default when absent, refused outside 0..max_rows."""
    if limit is None:
        return settings.default_limit
    if not 0 <= limit <= settings.max_rows:
        raise errors.invalid_query(f"limit must be between 0 and {settings.max_rows}, got {limit}")
    return limit


def select(shape: TableShape, obj_type: GraphQLObjectType, nodes: Sequence[FieldNode], walk: Walk,
           rows: int = 1) -> tuple[SelectItem, ...]:
    """The select tree for ``nodes``' sub-selections on ``shape``; ``rows``: parent rows (for cost)."""
    items: list[SelectItem] = []
    for key, fnodes in collect((n.selection_set for n in nodes), walk).items():
        name = fnodes[0].name.value
        if name == "__typename":  # graphql-core answers it; PostgreSQL's JSON cannot carry it
            walk.exact = False
            continue
        fdef = obj_type.fields[name]
        kind = fdef.extensions[GATEWAY]
        if isinstance(kind, ColumnField):
            walk.exact = walk.exact and kind.exact
            items.append(SelectColumn(FieldRef(kind.column.name), alias=key, cast=kind.cast))
        elif isinstance(kind, RelationAggregate):
            from .aggregate import select_items  # aggregate.py builds on this module

            rel, args = kind.relation, get_argument_values(fdef, fnodes[0], walk.variables)
            agg = get_named_type(fdef.type)
            assert isinstance(agg, GraphQLObjectType)
            walk.cost += rows
            items.append(SelectEmbed(rel.relation, select_items(rel.target, agg, fnodes, walk), alias=key,
                                     hint=rel.hint, where=conditions(args.get("filter"), rel.target)))
        else:
            items.append(_embed(shape, kind, fdef, fnodes, key, walk, rows))
    if not items:  # only __typename asked: select something so every row is an object
        items.append(SelectColumn(FieldRef(shape.table.columns[0].name)))
    return tuple(items)


def expected_rows(limit: int, table: Table, parent: Table | None = None) -> int:
    """Rows a list is expected to return (the cost estimate): at most ``limit``, and no more than the
    table holds — per parent row, its share of them — by the catalog's row estimate (0: unknown)."""
    if table.row_estimate <= 0:
        return limit
    share = table.row_estimate if parent is None else -(-table.row_estimate // max(parent.row_estimate, 1))
    return max(min(limit, share), 1 if limit else 0)


def _embed(parent: TableShape, kind: RelationField, fdef: GraphQLField, nodes: Sequence[FieldNode], key: str,
           walk: Walk, rows: int) -> SelectEmbed:
    sub_type = get_named_type(fdef.type)
    assert isinstance(sub_type, GraphQLObjectType)
    if kind.to_one:
        return SelectEmbed(kind.relation, select(kind.target, sub_type, nodes, walk, rows),
                           alias=key, hint=kind.hint)
    args = get_argument_values(fdef, nodes[0], walk.variables)
    limit = page_limit(args.get("limit"), walk.settings)
    each = expected_rows(limit, kind.target.table, parent.table)
    walk.cost += rows * each
    return SelectEmbed(
        kind.relation, select(kind.target, sub_type, nodes, walk, rows * each),
        alias=key, hint=kind.hint, where=conditions(args.get("filter"), kind.target),
        order=orders(args.get("orderBy"), kind.target), limit=limit, offset=_offset(args),
        distinct_on=tuple(args.get("distinctOn") or ()))


def _offset(args: Mapping[str, Any]) -> int:
    offset = args.get("offset") or 0
    if offset < 0:
        raise errors.invalid_query(f"offset must not be negative, got {offset}")
    return int(offset)


# --------------------------------------------------------------------------- arguments


def _comparisons(column: Column, ops: Mapping[str, Any]) -> list[Condition]:
    out: list[Condition] = []
    for op, value in ops.items():
        if value is None:  # an explicit null compares nothing; ``is: NULL`` tests for null
            continue
        if op in ("in", "has_any_keys", "has_all_keys"):
            text: Any = tuple(filter_text(v) for v in value)
        elif op in ("like", "ilike"):  # REST's wildcard ``*`` is accepted as well as ``%``
            text = filter_text(value).replace("*", "%")
        else:
            text = value if op == "is" else filter_text(value)
        out.append(Filter(FieldRef(column.name), op, text))  # type: ignore[arg-type]
    return out


def _one(conds: tuple[Condition, ...]) -> Condition:
    return conds[0] if len(conds) == 1 else BoolExpr("and", conds)


def conditions(value: Mapping[str, Any] | None, shape: TableShape) -> tuple[Condition, ...]:
    """A ``<Table>Filter`` value -> ANDed conditions. Empty ``and``/``or``/``not`` add none."""
    out: list[Condition] = []
    for key, item in (value or {}).items():
        if item is None:
            continue
        if key == "and":
            out.extend(c for sub in item for c in conditions(sub, shape))
        elif key == "or":
            branches = [conditions(sub, shape) for sub in item]
            if branches and all(branches):  # an empty branch is true, and so is the whole ``or``
                out.append(BoolExpr("or", tuple(_one(b) for b in branches)))
        elif key == "not":
            inner = conditions(item, shape)
            if inner:
                out.append(BoolExpr("and", inner, negate=True))
        elif key in shape.relations and not shape.relations[key].computed:
            rel = shape.relations[key]
            out.append(RelatedFilter(rel.relation, rel.hint, conditions(item, rel.target)))
        else:
            out.extend(_comparisons(shape.column(key), item))
    return tuple(out)


def orders(value: Sequence[Mapping[str, Any]] | None, shape: TableShape) -> tuple[Order, ...]:
    """``[<Table>OrderBy!]`` -> ORDER BY terms; within one item, columns in table order, then
    to-one relations (``{author: {email: ASC}}``: by the related row's column, one level deep)."""
    out: list[Order] = []
    for item in value or ():
        for key, direction in item.items():
            if direction is None:
                continue
            if key not in shape.relations:
                out.append(Order(FieldRef(shape.column(key).name), direction[0], direction[1]))
                continue
            rel = shape.relations[key]
            for sub, sub_direction in direction.items():
                if sub_direction is None:
                    continue
                if sub not in rel.target.columns:
                    raise errors.invalid_query(f"Ordering through '{key}' reaches its columns only, one relation "
                                               f"deep; '{sub}' is a relation")
                out.append(Order(FieldRef(rel.target.columns[sub].name), sub_direction[0], sub_direction[1],
                                 relation=rel.relation, hint=rel.hint))
    return tuple(out)


def _row(shape: TableShape, value: Mapping[str, Any]) -> dict[str, Any]:
    """Column values by column name; relation fields (nested inserts, here all null) are not columns."""
    return {shape.columns[k].name: body_value(v) for k, v in value.items() if k in shape.columns}


# --------------------------------------------------------------------------- root fields

Translate = Callable[["RootField", GraphQLField, Sequence[FieldNode], Mapping[str, Any], Walk], Request]


def _list(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
          walk: Walk) -> Request:
    shape = _shape(root)
    limit = args.get("limit")
    rows = expected_rows(min(page_limit(None, walk.settings) if limit is None else max(limit, 0),
                             walk.settings.max_rows), shape.table)
    walk.cost += rows
    return Read(shape.target, select(shape, _object(fdef), nodes, walk, rows),
                where=conditions(args.get("filter"), shape), order=orders(args.get("orderBy"), shape),
                limit=limit, offset=_offset(args), want_total=False, distinct_on=tuple(args.get("distinctOn") or ()))


def _count(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
           walk: Walk) -> Request:
    shape = _shape(root)
    walk.cost += 1
    return Read(shape.target, where=conditions(args.get("filter"), shape), limit=0, count="exact",
                head=True, want_total=True)


def _by_pk(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
           walk: Walk) -> Request:
    shape = _shape(root)
    walk.cost += 1
    return Read(shape.target, select(shape, _object(fdef), nodes, walk), where=_pk_filters(root, args),
                want_total=False)


def _insert(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
            walk: Walk) -> Request:
    shape = _shape(root)
    objects = [args["object"]] if root.kind == "insert_one" else args.get("objects") or []
    walk.cost += len(objects)
    conflict = args.get("on_conflict")
    update = tuple(conflict.get("update") or ()) if conflict else ()
    return Insert(
        shape.target, tuple(_row(shape, o) for o in objects),
        on_conflict=tuple(conflict["columns"]) if conflict else None,
        # Hasura's meaning: columns listed in ``update`` are overwritten; none listed: keep the old row
        resolution=("merge-duplicates" if update else "ignore-duplicates") if conflict else None,
        update_columns=update or None, missing_default=True,
        returning=select(shape, _object(fdef), nodes, walk, max(len(objects), 1)))


def _pk_filters(root: RootField, args: Mapping[str, Any]) -> tuple[Condition, ...]:
    """``eq`` on every primary key column, from the ``*_by_pk`` field's arguments."""
    return tuple(Filter(FieldRef(column), "eq", filter_text(args[arg])) for arg, column in root.args.items())


def _at_most(args: Mapping[str, Any], walk: Walk) -> int | None:
    """The most rows an update/delete may change: ``atMost``, else unlimited for admins and the
    setting for everyone else. More makes the whole operation fail, nothing changed."""
    at_most = args.get("atMost")
    if at_most is None:
        return None if walk.admin else walk.settings.graphql_max_affected
    if at_most < 0:
        raise errors.invalid_query(f"atMost must not be negative, got {at_most}")
    return int(at_most)


def _update(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
            walk: Walk) -> Request:
    shape = _shape(root)
    by_pk = root.kind == "update_by_pk"
    rows = 1 if by_pk else walk.settings.default_limit
    walk.cost += rows
    values = _row(shape, args.get("set") or {})
    operations: list[tuple[str, UpdateOp]] = []
    for op in UPDATE_OPS:
        for column, value in _row(shape, args.get(op) or {}).items():
            if column in values:
                raise errors.validation_error(f"Column '{column}' is changed twice (by {op} and another argument); "
                                              "give each column once")
            values[column] = value
            operations.append((column, op))
    if not values:
        raise errors.validation_error(f"Nothing to update: give set or one of {', '.join(UPDATE_OPS)}")
    return Update(shape.target, values, operations=tuple(operations),
                  where=_pk_filters(root, args) if by_pk else conditions(args.get("filter"), shape),
                  max_affected=None if by_pk else _at_most(args, walk),
                  returning=select(shape, _object(fdef), nodes, walk, rows))


def _delete(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
            walk: Walk) -> Request:
    shape = _shape(root)
    by_pk = root.kind == "delete_by_pk"
    rows = 1 if by_pk else walk.settings.default_limit
    walk.cost += rows
    return Delete(shape.target, where=_pk_filters(root, args) if by_pk else conditions(args.get("filter"), shape),
                  max_affected=None if by_pk else _at_most(args, walk),
                  returning=select(shape, _object(fdef), nodes, walk, rows))


def _call(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
          walk: Walk) -> Request:
    fn = root.function
    assert fn is not None
    walk.cost += walk.settings.default_limit if fn.returns_set else 1
    values = {root.args[k]: body_value(v) for k, v in args.items() if k in root.args}
    named = get_named_type(fdef.type)
    rows = walk.settings.default_limit if fn.returns_set else 1
    shape = select(root.shape, named, nodes, walk, rows) if root.shape and isinstance(named, GraphQLObjectType) \
        else STAR
    table_args: dict[str, Any] = {}
    if fn.returns_set and root.shape is not None:  # a set of rows takes a table's arguments too
        given = {k: v for k, v in args.items() if k not in root.args}  # the function's own names win
        table_args = {"where": conditions(given.get("filter"), root.shape),
                      "order": orders(given.get("orderBy"), root.shape), "offset": _offset(given)}
        if given.get("limit") is not None:
            table_args["limit"] = page_limit(given["limit"], walk.settings)
    return Call(Target(fn.name, fn.schema), values, read_only=fn.volatility != "volatile", select=shape,
                **table_args)


def _shape(root: RootField) -> TableShape:
    assert root.shape is not None
    return root.shape


def _object(fdef: GraphQLField) -> GraphQLObjectType:
    named = get_named_type(fdef.type)
    assert isinstance(named, GraphQLObjectType)
    return named


TRANSLATE: dict[str, Translate] = {
    "list": _list, "count": _count, "by_pk": _by_pk, "insert": _insert, "update": _update,
    "delete": _delete, "call": _call, "insert_one": _insert, "update_by_pk": _update, "delete_by_pk": _delete,
}


def root_request(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
                 walk: Walk) -> Request:
    """The request for one root field; ``walk`` collects exactness and cost on the way."""
    request: Request = TRANSLATE[root.kind](root, fdef, nodes, args, walk)
    return request


@dataclass(frozen=True)
class RootStep:
    """One root field of an operation, translated."""

    key: str  # response key
    kind: str  # the RootField kind; "typename" for ``__typename``; "other" for introspection and admin
    request: Request | None  # None unless a generated table or function field


def operation_steps(schema: GraphQLSchema, operation: OperationDefinitionNode, walk: Walk,
                    kinds: Container[str] | None = None) -> list[RootStep] | None:
    """Every root field of ``operation`` as a request; None as soon as one's kind is not in ``kinds``."""
    root_type = schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    assert root_type is not None
    steps: list[RootStep] = []
    for key, nodes in collect((operation.selection_set,), walk).items():
        name = nodes[0].name.value
        fdef = root_type.fields.get(name)
        root = fdef.extensions.get(GATEWAY) if fdef else None
        kind = "typename" if name == "__typename" else root.kind if isinstance(root, RootField) else "other"
        if kinds is not None and kind not in kinds:
            return None
        if fdef is None or not isinstance(root, RootField):
            steps.append(RootStep(key, kind, None))
            continue
        args = get_argument_values(fdef, nodes[0], walk.variables)
        steps.append(RootStep(key, kind, root_request(root, fdef, nodes, args, walk)))
    return steps
