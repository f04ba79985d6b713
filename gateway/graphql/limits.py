"""Protection against abusive documents, and the parsed + validated document cache.

In:  a query text, the schema and the ``graphql_max_*`` settings.
Out: ``Documents.get(text)`` -> (document, errors): the document parsed with the token
     limit, measured (``measure``) against the depth, alias and field limits, then
     validated with graphql-core's rules.

Every limit is judged in time linear in the document, before graphql-core's own rules
run (one of them, overlapping-fields, compares the fields that share a response key
pairwise). ``measure`` walks each fragment definition once and keeps its shape (depth,
fields once expanded, response keys), so a spread costs a lookup, not a re-walk: nested
fragments that each spread the previous one twice are counted in one pass and refused,
where a walk that re-expands every spread doubles its work at each level. Spreads are
counted in full wherever they occur (an upper bound on what execution collects), and a
cycle of fragments is refused before anything else is looked at.

The limits depend only on the text and the settings, so the result of judging a text
never changes while the schema lives and the cache keyed by the text alone stays
correct. The cost limit (rows a query may ask for: list limits multiplied down the
selection, summed over lists) needs the variables, so ``translate.py`` counts it and the
resolvers enforce it with ``check_cost`` at run time; the field limit bounds that walk.

Introspection fields (``__schema``, ``__type``) do not count towards the depth:
GraphiQL's own introspection query is deeper than the default limit. They count
towards the fields.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    print_ast,
    specified_rules,
    validate,
)
from graphql.validation import (
    NoUndefinedVariablesRule,
    NoUnusedVariablesRule,
    OverlappingFieldsCanBeMergedRule,
    UniqueVariableNamesRule,
    VariablesAreInputTypesRule,
    VariablesInAllowedPositionRule,
)

from .. import errors
from ..settings import Settings

CACHE_SIZE = 1024  # distinct query texts kept per schema
# graphql-core's overlapping-fields rule compares the fields sharing a response key pairwise, and
# their sub-selections pairwise again: a few hundred repeated fields nested three deep cost it
# seconds. ``check_merges`` does the same job (our schema has no interfaces or unions, so fields
# under one key must be the same field with the same arguments) in one pass over the expanded
# document, which the field limit bounds.
# Fragments spread inside fragments, at most this deep: graphql-core's rules follow such chains
# by recursion and give up (slowly) near Python's recursion limit.
MAX_FRAGMENT_NESTING = 50
RULES = tuple(r for r in specified_rules if r is not OverlappingFieldsCanBeMergedRule)
# Rules about variables, which walk every fragment for each operation: a document with no "$" anywhere
# declares and uses no variable, so they have nothing to find and are skipped (about half the
# validation of a large document).
VARIABLE_RULES = frozenset({NoUndefinedVariablesRule, NoUnusedVariablesRule, UniqueVariableNamesRule,
                            VariablesAreInputTypesRule, VariablesInAllowedPositionRule})
RULES_WITHOUT_VARIABLES = tuple(r for r in RULES if r not in VARIABLE_RULES)


def refusal(message: str, node: Node | None = None) -> GraphQLError:
    return GraphQLError(message, node, extensions={"error": "INVALID_QUERY", "statusCode": 400})


@dataclass
class Shape:
    """A selection set (or fragment) with its fragments expanded, as far as the limits care."""

    depth: int = 0  # fields on the deepest path, introspection fields not counted
    fields: int = 0  # field selections, every spread counted in full
    aliases: int = 0  # aliased fields, every spread counted in full
    nesting: int = 0  # fragments spread inside one another on the longest chain

    def add(self, other: Shape) -> None:
        """Merge a fragment's (or inline fragment's) shape into this level."""
        self.depth = max(self.depth, other.depth)
        self.fields += other.fields
        self.aliases += other.aliases
        self.nesting = max(self.nesting, other.nesting)


class Limits:
    """The depth, alias and field limits of one settings value."""

    def __init__(self, settings: Settings) -> None:
        self.max_depth = settings.graphql_max_depth
        self.max_aliases = settings.graphql_max_aliases
        self.max_fields = settings.graphql_max_fields

    def judge(self, document: DocumentNode) -> None:
        """Raise the first limit ``document`` breaks (a GraphQLError); linear in its size."""
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        shapes: dict[str, Shape] = {}
        for name in fragment_order(fragments):
            # a fragment on an introspection type is only ever spread under __schema/__type
            introspection = fragments[name].type_condition.name.value.startswith("__")
            shapes[name] = self._check(self.shape(fragments[name].selection_set, shapes, introspection),
                                       fragments[name])
        total = Shape()  # every operation of the document together: each is validated
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                total.add(self._check(self.shape(definition.selection_set, shapes), definition))
                self._check(total, definition)

    def shape(self, selection_set: SelectionSetNode | None, shapes: dict[str, Shape],
              introspection: bool = False) -> Shape:
        """The shape of one selection set; the fragments it spreads must be in ``shapes`` already.

        Recursion follows the document's own nesting, which the parser bounds.
        """
        out = Shape()
        for sel in selection_set.selections if selection_set else ():
            if isinstance(sel, FieldNode):
                inside = introspection or sel.name.value.startswith("__")
                inner = self.shape(sel.selection_set, shapes, inside) if sel.selection_set else Shape()
                counted = not inside
                out.depth = max(out.depth, inner.depth + 1 if counted else 0)
                out.fields += 1 + inner.fields
                out.aliases += (sel.alias is not None) + inner.aliases
                out.nesting = max(out.nesting, inner.nesting)
            elif isinstance(sel, InlineFragmentNode):
                out.add(self.shape(sel.selection_set, shapes, introspection))
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in shapes:
                out.add(shapes[sel.name.value])  # unknown fragments: graphql-core reports them
                out.nesting = max(out.nesting, shapes[sel.name.value].nesting + 1)
            self._check(out, sel)
        return out

    def _check(self, shape: Shape, node: Node) -> Shape:
        if shape.fields > self.max_fields:
            raise refusal(f"The document selects {shape.fields} fields once its fragments are expanded; "
                          f"the maximum is {self.max_fields}.", node)
        if shape.aliases > self.max_aliases:
            raise refusal(f"{shape.aliases} aliases exceed the maximum of {self.max_aliases}.", node)
        if shape.nesting > MAX_FRAGMENT_NESTING:
            raise refusal(f"Fragments are spread inside one another {shape.nesting} deep; "
                          f"the maximum is {MAX_FRAGMENT_NESTING}.", node)
        if shape.depth > self.max_depth:
            raise refusal(f"Query depth {shape.depth} exceeds the maximum of {self.max_depth}.", node)
        return shape


def fragment_order(fragments: dict[str, FragmentDefinitionNode]) -> list[str]:
    """Fragment names, each after every fragment it spreads; a cycle is refused.

    Iterative (a chain of spreads may be longer than Python's recursion limit).
    """
    spreads = {name: spread_names(f.selection_set) for name, f in fragments.items()}
    order: list[str] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in fragments:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(spreads[root]))]
        while stack:
            name, pending = stack[-1]
            child = next(pending, None)
            if child is None:
                stack.pop()
                state[name] = 2
                order.append(name)
            elif child in fragments and state.get(child) != 2:
                if state.get(child) == 1:
                    raise refusal(f"Cannot spread fragment '{child}' within itself.", fragments[child])
                state[child] = 1
                stack.append((child, iter(spreads[child])))
    return order


def spread_names(selection_set: SelectionSetNode | None) -> list[str]:
    """Names of the fragments spread anywhere inside ``selection_set``."""
    out: list[str] = []
    pending = [selection_set]
    while pending:
        current = pending.pop()
        for sel in current.selections if current else ():
            if isinstance(sel, FragmentSpreadNode):
                out.append(sel.name.value)
            elif isinstance(sel, FieldNode | InlineFragmentNode):
                pending.append(sel.selection_set)
    return out


def check_merges(document: DocumentNode) -> None:
    """Fields under one response key, fragments merged in, must be one field with the same arguments.

    Breadth-first over groups of merged selection sets, so each field of the expanded document
    is looked at once; run after ``Limits.judge`` (no fragment cycles, the expansion bounded).
    """
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    signatures: dict[int, tuple[str, tuple[tuple[str, str], ...]]] = {}  # id(field) -> (name, args)

    def signature(node: FieldNode) -> tuple[str, tuple[tuple[str, str], ...]]:
        found = signatures.get(id(node))
        if found is None:
            found = signatures[id(node)] = (node.name.value, tuple(sorted(
                (a.name.value, print_ast(a.value)) for a in node.arguments or ())))
        return found

    groups: list[list[SelectionSetNode]] = [[d.selection_set] for d in document.definitions
                                            if isinstance(d, OperationDefinitionNode)]
    while groups:
        by_key: dict[str, list[FieldNode]] = {}
        pending = groups.pop()
        while pending:
            for sel in pending.pop().selections:
                if isinstance(sel, FieldNode):
                    by_key.setdefault((sel.alias or sel.name).value, []).append(sel)
                elif isinstance(sel, InlineFragmentNode):
                    pending.append(sel.selection_set)
                elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
                    pending.append(fragments[sel.name.value].selection_set)
        for key, fields in by_key.items():
            first = signature(fields[0])
            for other in fields[1:]:
                if signature(other) != first:
                    why = (f"'{first[0]}' and '{other.name.value}' are different fields"
                           if first[0] != other.name.value else "they have differing arguments")
                    raise refusal(f"Fields '{key}' conflict because {why}. Use different aliases on the "
                                  "fields to fetch both if this was intentional.", other)
            subs = [f.selection_set for f in fields if f.selection_set]
            if subs:
                groups.append(subs)


def check_cost(cost: int, settings: Settings) -> None:
    """Refuse an operation that may return more rows than ``graphql_max_cost``."""
    if cost > settings.graphql_max_cost:
        raise errors.invalid_query(
            f"Query cost {cost} exceeds the maximum of {settings.graphql_max_cost} "
            "(rows asked for: list limits multiplied down the selection)",
            hint="Ask for fewer rows with smaller limits, or fewer nested lists")


class Documents:
    """Parsed and validated documents of one schema, by query text (least recently used out)."""

    def __init__(self, schema: GraphQLSchema, settings: Settings, size: int = CACHE_SIZE) -> None:
        self.schema = schema
        self.max_tokens = settings.graphql_max_tokens
        self.limits = Limits(settings)
        self.size = size
        self._cache: OrderedDict[str, tuple[DocumentNode | None, list[GraphQLError]]] = OrderedDict()

    def get(self, text: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        try:
            document: DocumentNode | None = parse(text, max_tokens=self.max_tokens)
            assert document is not None
            self.limits.judge(document)
            found = validate(self.schema, document, RULES if "$" in text else RULES_WITHOUT_VARIABLES)
            if not found:
                check_merges(document)
        except GraphQLError as exc:
            document, found = None, [exc]
        entry = (document if not found else None, list(found))
        self._cache[text] = entry
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._cache)
