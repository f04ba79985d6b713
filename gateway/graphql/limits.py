"""Protection against abusive documents, and the parsed + validated document cache.

In:  a query text, the schema and the ``graphql_max_*`` settings.
Out: ``Documents.get(text)`` -> (document, errors): the document parsed with the token
     limit and validated with graphql-core's rules plus the depth and alias limits.

The limits are validation rules fixed per schema (one class per setting value,
built once in ``Documents``), so the result of validating a text never changes
while the schema lives and the cache keyed by the text alone stays correct with
the limits on. The cost limit (rows a query may ask for: list limits multiplied
down the selection, summed over lists) needs the variables, so ``translate.py``
counts it and the resolvers enforce it with ``check_cost`` at run time.

Introspection fields (``__schema``, ``__type``) do not count towards the depth:
GraphiQL's own introspection query is deeper than the default limit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    specified_rules,
    validate,
)
from graphql.validation import ValidationRule

from .. import errors
from ..settings import Settings

CACHE_SIZE = 1024  # distinct query texts kept per schema


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """Refuse operations whose selections nest deeper than ``max_depth`` fields."""

    class MaxDepth(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            depth = self._depth(node.selection_set, set())
            if depth > max_depth:
                self.report_error(GraphQLError(
                    f"Query depth {depth} exceeds the maximum of {max_depth}.", node,
                    extensions={"error": "INVALID_QUERY", "statusCode": 400}))

        def _depth(self, selection_set: SelectionSetNode | None, fragments: set[str]) -> int:
            deepest = 0
            for sel in selection_set.selections if selection_set else ():
                if isinstance(sel, FieldNode):
                    if sel.name.value.startswith("__"):
                        continue
                    deepest = max(deepest, 1 + self._depth(sel.selection_set, fragments))
                elif isinstance(sel, InlineFragmentNode):
                    deepest = max(deepest, self._depth(sel.selection_set, fragments))
                elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in fragments:
                    fragment = self.context.get_fragment(sel.name.value)
                    if fragment:
                        deepest = max(deepest, self._depth(fragment.selection_set,
                                                           fragments | {sel.name.value}))
            return deepest

    return MaxDepth


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    """Refuse documents with more than ``max_aliases`` aliased fields."""

    class MaxAliases(ValidationRule):
        def __init__(self, context: Any) -> None:
            super().__init__(context)
            self.count = 0

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.alias:
                self.count += 1

        def leave_document(self, node: DocumentNode, *_args: Any) -> None:
            if self.count > max_aliases:
                self.report_error(GraphQLError(
                    f"{self.count} aliases exceed the maximum of {max_aliases}.", node,
                    extensions={"error": "INVALID_QUERY", "statusCode": 400}))

    return MaxAliases


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
        self.rules = (*specified_rules, depth_rule(settings.graphql_max_depth),
                      alias_rule(settings.graphql_max_aliases))
        self.size = size
        self._cache: OrderedDict[str, tuple[DocumentNode | None, list[GraphQLError]]] = OrderedDict()

    def get(self, text: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        try:
            document: DocumentNode | None = parse(text, max_tokens=self.max_tokens)
            found = validate(self.schema, document, self.rules) if document else []
        except GraphQLError as exc:
            document, found = None, [exc]
        entry = (document if not found else None, list(found))
        self._cache[text] = entry
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._cache)
