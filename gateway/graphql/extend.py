"""Code-first extensions: the user's Strawberry module, and what its resolvers may call.

In:  ``GATEWAY_GRAPHQL_EXTENSIONS=package.module`` (or ``gateway serve --graphql-extensions``):
     a module exposing Strawberry types ``Query``, ``Mutation`` and/or ``Subscription``, and
     optionally ``types`` (more Strawberry types), ``extensions`` (Strawberry schema
     extensions such as ``MaskErrors``) and ``config`` (a ``StrawberryConfig``; the default
     keeps field names as written, ``auto_camel_case=False``, like the generated fields).
Out: ``load(name)`` -> ``UserPart``: the module's Strawberry schema, built once per process
     (``merge.py`` puts its root fields beside the generated ones on every catalog swap).

For resolvers (``from gateway.graphql.extend import Generated, run_generated``):

- ``info.context.identity`` is the caller (``role``, ``claims``);
- ``Generated("Posts")`` names a generated type in an annotation (a stand-in, replaced by the
  generated type when the schemas are merged): ``-> list[Generated("Posts")]``;
- ``await run_generated(info, "posts", filter={...}, limit=5)`` runs a generated root field —
  a table read (``posts``, ``posts_by_pk``, ``posts_count``) or an SQL function — as the
  caller, through the same pipeline as every request (RLS applies), in the operation's
  transaction. Arguments are given as in a GraphQL request's variables (``orderBy=[{"id":
  "DESC"}]``); the selection is the hand-written field's own, so the field must return the
  generated field's type.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import GraphQLObjectType, GraphQLSchema, coerce_input_value
from strawberry.schema.config import StrawberryConfig

from .resolve import OUTPUT
from .sbcompat import graphql_schema, raw_info
from .translate import GATEWAY, RootField, Walk, root_request

STAND_IN_FIELD = "_generated"  # the one field of a stand-in type; it never reaches the served schema
ROOTS = ("Query", "Mutation", "Subscription")


class ExtensionError(ValueError):
    """The extensions module cannot be loaded or merged (a start-up error)."""


@functools.cache
def Generated(name: str) -> Any:
    """A stand-in for the generated object type ``name`` (``Posts``), for return annotations."""
    cls = type(name, (), {"__annotations__": {"generated": bool | None}, "__module__": __name__,
                          "generated": strawberry.field(name=STAND_IN_FIELD, default=None)})
    return strawberry.type(cls, name=name, description=f"Stands for the generated type {name}.")


def is_stand_in(t: Any) -> bool:
    return isinstance(t, GraphQLObjectType) and set(t.fields) == {STAND_IN_FIELD}


@strawberry.type(name="Query")
class _NoQuery:
    """Strawberry needs a Query type; this one's field is never merged."""

    unused: bool | None = None


def default_config() -> StrawberryConfig:
    """Field names as written, like the generated ones (which keep column names exactly)."""
    return StrawberryConfig(auto_camel_case=False)


@dataclass(frozen=True)
class UserPart:
    """The user's Strawberry schema and which of its root types the module defined."""

    module: str  # dotted module name, for messages
    base: strawberry.Schema  # configuration, extensions and converted types
    roots: frozenset[str]  # the root types the module defines (``Query``, ``Mutation``, ``Subscription``)

    @property
    def graphql(self) -> GraphQLSchema:
        return graphql_schema(self.base)


def _import(name: str) -> Any:
    if os.getcwd() not in sys.path:  # as uvicorn does: a module beside the command is importable
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise ExtensionError(f"GATEWAY_GRAPHQL_EXTENSIONS={name}: cannot import it: {exc}") from exc


@functools.cache
def load(name: str) -> UserPart:
    """The user's module as a Strawberry schema, built once per process and module name."""
    module = _import(name)
    roots = {root: getattr(module, root, None) for root in ROOTS}
    if not any(roots.values()):
        raise ExtensionError(f"GATEWAY_GRAPHQL_EXTENSIONS={name}: the module defines none of "
                             "Query, Mutation, Subscription")
    try:
        base = strawberry.Schema(query=roots["Query"] or _NoQuery, mutation=roots["Mutation"],
                                 subscription=roots["Subscription"], types=list(getattr(module, "types", ())),
                                 extensions=list(getattr(module, "extensions", ())),
                                 config=getattr(module, "config", None) or default_config())
    except Exception as exc:
        raise ExtensionError(f"GATEWAY_GRAPHQL_EXTENSIONS={name}: not a valid Strawberry schema: {exc}") from exc
    return UserPart(name, base, frozenset(r for r, v in roots.items() if v is not None))


@functools.cache
def load_empty() -> UserPart:
    """No extensions module: a Strawberry schema that contributes no fields."""
    return UserPart("", strawberry.Schema(query=_NoQuery, config=default_config()), frozenset())


# --------------------------------------------------------------------------- for resolvers


def _generated_field(schema: GraphQLSchema, name: str) -> tuple[Any, RootField]:
    for root_type in (schema.query_type, schema.mutation_type):
        fdef = root_type.fields.get(name) if root_type else None
        root = fdef.extensions.get(GATEWAY) if fdef else None
        if isinstance(root, RootField) and root.kind != "admin":
            return fdef, root
    raise ValueError(f"'{name}' is not a generated table or function field of this schema")


async def run_generated(info: Any, field: str, **args: Any) -> Any:
    """The value of the generated root field ``field`` with ``args``, run as the caller.

    ``info`` is the hand-written field's (Strawberry's or graphql-core's); its selection set is
    what is read, so the hand-written field returns the generated field's type. Arguments are
    external values (as in variables) and are coerced by the generated field's argument types.
    """
    raw = raw_info(info)
    fdef, root = _generated_field(raw.schema, field)
    unknown = set(args) - set(fdef.args)
    if unknown:
        raise ValueError(f"'{field}' has no argument(s) {', '.join(sorted(unknown))}")
    coerced = {name: coerce_input_value(args[name], arg.type) for name, arg in fdef.args.items() if name in args}
    op = raw.context
    walk = Walk(raw.variable_values, raw.fragments, op.settings)
    request = root_request(root, fdef, raw.field_nodes, coerced, walk)
    op.charge(walk.cost)
    return OUTPUT[root.kind](await op.run(request), root)
