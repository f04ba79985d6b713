"""Every use of Strawberry internals, in one place (Strawberry has no public API for them).

In:  a ``strawberry.Schema`` built once from the user's code-first types, and a graphql-core
     ``GraphQLSchema`` (the generated schema merged with the user's types, ``merge.py``).
Out: ``adopt`` — a ``strawberry.Schema`` that serves that graphql-core schema;
     ``raw_info`` — graphql-core's resolve info behind a Strawberry ``Info``;
     ``release`` — Strawberry's module-level caches emptied of a replaced schema.

What this relies on (checked by ``check()`` at import and by tests/test_graphql_sbcompat.py,
so an upgrade that moves them fails loudly instead of serving a wrong schema):

- ``Schema._schema`` holds the graphql-core schema that ``execute``, ``subscribe``, ``stream``
  and the validation step use;
- ``GraphQLSchema._strawberry_schema`` is the back-reference ``Info.schema`` and the directive
  extension read;
- a ``Schema`` can be copied by its instance dictionary (``adopt`` skips ``__init__``, which
  would rebuild the user's types);
- ``Schema.get_type_by_name`` and ``get_directive_by_name`` are ``functools.lru_cache`` methods,
  and ``ParserCache``/``ValidationCache`` keep module-level LRU caches: all keyed by schema
  objects, so each swap would keep up to 128 old schemas alive;
- ``Info._raw_info`` is graphql-core's ``GraphQLResolveInfo``;
- ``Schema._create_execution_context`` makes the ``ExecutionContext`` whose ``graphql_document``
  (when set) is not parsed again and whose ``pre_execution_errors`` (when not None) means
  "validated"; ``Schema.process_errors`` logs every error (replaced by a silent one).

The supported range is ``SUPPORTED`` (the same as pyproject.toml's pin).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, GraphQLResolveInfo, GraphQLSchema
from strawberry.extensions import parser_cache, validation_cache

from ..errors import GatewayError

log = logging.getLogger("gateway.graphql")

SUPPORTED = ((0, 341, 0), (0, 342, 0))  # [low, high): pyproject.toml pins the same range


def version() -> tuple[int, ...]:
    from importlib.metadata import version as dist_version

    return tuple(int(p) for p in dist_version("strawberry-graphql").split(".")[:3] if p.isdigit())


_PREPARED: contextvars.ContextVar[DocumentNode | None] = contextvars.ContextVar("gateway_prepared", default=None)


@contextlib.contextmanager
def prepared(document: DocumentNode) -> Iterator[None]:
    """Within: ``MergedSchema.execute`` runs ``document`` (already parsed and validated)."""
    token = _PREPARED.set(document)
    try:
        yield
    finally:
        _PREPARED.reset(token)


class MergedSchema(strawberry.Schema):
    """A ``strawberry.Schema`` whose graphql-core schema was built outside Strawberry."""

    def __init__(self, base: strawberry.Schema, graphql_schema: GraphQLSchema) -> None:
        # no super().__init__(): it would convert the user's types again; take the built state
        self.__dict__.update(base.__dict__)
        self._schema = graphql_schema
        graphql_schema._strawberry_schema = self  # type: ignore[attr-defined]

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> Any:
        context = super()._create_execution_context(*args, **kwargs)
        document = _PREPARED.get()
        if document is not None:  # Strawberry skips parsing and validating what is already done
            context.graphql_document = document
            context.pre_execution_errors = []
        return context

    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        """Only unexpected errors are logged: a GatewayError (a 4xx, RLS...) is the caller's business."""
        for error in errors:
            original = getattr(error, "original_error", None)
            if original is not None and not isinstance(original, GatewayError | GraphQLError):
                log.error("GraphQL resolver failed", exc_info=original)


def adopt(base: strawberry.Schema, graphql_schema: GraphQLSchema) -> strawberry.Schema:
    """A Strawberry schema with ``base``'s configuration and extensions serving ``graphql_schema``."""
    return MergedSchema(base, graphql_schema)


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema a Strawberry schema serves."""
    found: GraphQLSchema = schema._schema
    return found


def strawberry_of(graphql_schema: GraphQLSchema) -> strawberry.Schema | None:
    """The Strawberry schema serving ``graphql_schema``, if any."""
    return getattr(graphql_schema, "_strawberry_schema", None)


def raw_info(info: Any) -> GraphQLResolveInfo:
    """graphql-core's resolve info, from a Strawberry ``Info`` or already graphql-core's."""
    if isinstance(info, GraphQLResolveInfo):
        return info
    raw: GraphQLResolveInfo = info._raw_info
    return raw


def release(schema: strawberry.Schema | None = None) -> None:
    """Empty Strawberry's caches that hold schema objects, so a replaced schema can be freed.

    Called on every swap. The method caches are shared by every ``Schema`` instance (emptying
    them costs a re-lookup per type name); the parse/validate caches are emptied for the
    extensions ``schema`` was given as instances and dropped for factories (new instances then
    start empty caches).
    """
    strawberry.Schema.get_type_by_name.cache_clear()
    strawberry.Schema.get_directive_by_name.cache_clear()
    for extension in getattr(schema, "extensions", ()) or ():
        for attribute in ("cached_validate_document", "cached_parse_document"):
            with contextlib.suppress(AttributeError):
                getattr(extension, attribute).cache_clear()
    validation_cache._get_validate_cache.cache_clear()
    parser_cache._get_parse_cache.cache_clear()


def check() -> None:
    """Raise RuntimeError naming what moved when the installed Strawberry lacks a touch point."""
    low, high = SUPPORTED
    found = version()
    problems = []
    if not low <= found < high:
        problems.append(f"strawberry-graphql {'.'.join(map(str, found))} is outside the supported range "
                        f"{'.'.join(map(str, low))} <= v < {'.'.join(map(str, high))}")
    for owner, name in ((strawberry.Schema, "_create_execution_context"), (strawberry.Schema, "process_errors"),
                        (strawberry.Schema.get_type_by_name, "cache_clear"),
                        (strawberry.Schema.get_directive_by_name, "cache_clear"),
                        (validation_cache, "_get_validate_cache"), (parser_cache, "_get_parse_cache"),
                        (getattr(validation_cache, "_get_validate_cache", None), "cache_clear"),
                        (getattr(parser_cache, "_get_parse_cache", None), "cache_clear")):
        if not hasattr(owner, name):
            problems.append(f"{getattr(owner, '__qualname__', owner)} has no {name}")
    if "_raw_info" not in getattr(strawberry.Info, "__dataclass_fields__", {}) and \
            "_raw_info" not in getattr(strawberry.Info, "__annotations__", {}):
        problems.append("strawberry.Info has no _raw_info")
    if problems:
        raise RuntimeError("Strawberry internals the gateway relies on changed: " + "; ".join(problems))
