"""The served schema: one generated graphql-core schema merged with the user's Strawberry types.

In:  a generated ``GraphQLSchema`` (one catalog snapshot; one per role where there are several)
     and the ``Settings`` (``graphql_extensions`` names the user's module, ``extend.py``).
Out: ``serve(generated, settings)`` -> the merged ``GraphQLSchema``, served by a
     ``strawberry.Schema`` (``sbcompat.strawberry_of(schema)``; ``schema._strawberry_schema``).

The user's part is built by Strawberry once per process; each catalog swap builds only the
generated part (graphql-core, fast) and merges here:

- root types ``Query``/``Mutation``/``Subscription`` are new objects holding the generated
  fields and then the user's; a field name defined by both is an ``ExtensionError`` naming both;
- the user's other types keep their names; one that shares a name with a generated type is an
  ``ExtensionError``, except scalars (the generated ``DateTime``, ``JSON``, ... serve both sides:
  hand-written fields see PostgreSQL's ISO strings) and stand-ins (``Generated("Posts")``),
  which become the generated type;
- a user type whose fields name stand-ins is copied with those types replaced (the user's
  schema is never mutated, so every swap starts from the same objects); a hand-written field
  whose stand-in this schema lacks (a role that cannot see the table) is left out, with a warning.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    validate_schema,
)

from ..settings import Settings
from . import extend, sbcompat, subscriptions
from .translate import GATEWAY, RootField

log = logging.getLogger("gateway.graphql")


def _kw(t: Any, **changes: Any) -> dict[str, Any]:
    """A graphql-core type's constructor arguments, with ``changes``."""
    out: dict[str, Any] = dict(t.to_kwargs())
    out.update(changes)
    return out


class _Missing(Exception):
    """A stand-in names a type this generated schema does not have."""


def _origin(fdef: GraphQLField) -> str:
    root = fdef.extensions.get(GATEWAY)
    if isinstance(root, RootField) and root.function is not None:
        return f"function {root.function.schema}.{root.function.name}"
    if isinstance(root, RootField) and root.shape is not None:
        return f"table {root.shape.table.schema}.{root.shape.table.name}"
    return "the gateway"


class _Merge:
    """One merge: the user's types rewritten against one generated schema (memoised by name)."""

    def __init__(self, generated: GraphQLSchema, part: extend.UserPart) -> None:
        self.generated = generated
        self.part = part
        self.done: dict[str, GraphQLNamedType] = {}

    def named(self, t: GraphQLNamedType) -> GraphQLNamedType:
        if t.name in self.done:
            return self.done[t.name]
        gen = self.generated.type_map.get(t.name)
        if extend.is_stand_in(t):
            if not isinstance(gen, GraphQLObjectType):
                raise _Missing(t.name)
            out: GraphQLNamedType = gen
        elif isinstance(t, GraphQLScalarType) and gen is not None:
            out = gen  # one scalar per name; the generated one also serves hand-written fields
        elif gen is not None and gen is not t and not t.name.startswith("__"):
            raise extend.ExtensionError(
                f"type {t.name} is defined twice: by the extensions module {self.part.module} and by the "
                "generated schema; rename the Strawberry type (strawberry.type(name=...))")
        elif isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            out = self._copy_object(t)
        elif isinstance(t, GraphQLInputObjectType):
            out = GraphQLInputObjectType(**_kw(t, fields=lambda t=t: {
                n: GraphQLInputField(**_kw(f, type_=self.wrapped(f.type))) for n, f in t.fields.items()}))
        elif isinstance(t, GraphQLUnionType):
            out = GraphQLUnionType(**_kw(t, types=lambda t=t: [self.named(m) for m in t.types]))
        else:
            out = t  # enums and scalars only the user defines
        self.done[t.name] = out
        return out

    def _copy_object(self, t: GraphQLObjectType | GraphQLInterfaceType) -> GraphQLNamedType:
        return type(t)(**_kw(t, fields=lambda: self.fields(t.fields, f"{t.name}."),
                             interfaces=lambda: [self.named(i) for i in t.interfaces]))

    def wrapped(self, t: Any) -> Any:
        if isinstance(t, GraphQLNonNull):
            return GraphQLNonNull(self.wrapped(t.of_type))
        if isinstance(t, GraphQLList):
            return GraphQLList(self.wrapped(t.of_type))
        return self.named(t)

    def field(self, f: GraphQLField) -> GraphQLField:
        args = {n: GraphQLArgument(**_kw(a, type_=self.wrapped(a.type))) for n, a in f.args.items()}
        return GraphQLField(**_kw(f, type_=self.wrapped(f.type), args=args))

    def fields(self, fields: dict[str, GraphQLField], where: str) -> dict[str, GraphQLField]:
        out = {}
        for name, f in fields.items():
            try:
                out[name] = self.field(f)
            except _Missing as missing:
                log.warning("GraphQL field %s%s left out: this schema has no generated type %s",
                            where, name, missing)
        return out

    def root(self, name: str, generated: GraphQLObjectType | None,
             user: GraphQLObjectType | None) -> GraphQLObjectType | None:
        gen_fields = dict(generated.fields) if generated else {}
        user_fields = dict(user.fields) if user is not None and name in self.part.roots else {}
        for clash in sorted(set(gen_fields) & set(user_fields)):
            raise extend.ExtensionError(
                f"{name}.{clash} is defined twice: by the extensions module {self.part.module} and by the "
                f"generated schema ({_origin(gen_fields[clash])})")
        if not user_fields:
            return generated
        merged = {**gen_fields, **self.fields(user_fields, f"{name}.")}
        if generated is not None:
            return GraphQLObjectType(**_kw(generated, fields=merged))
        return GraphQLObjectType(name, merged, description=user.description if user else None)

    def schema(self) -> GraphQLSchema:
        gen, user = self.generated, self.part.graphql
        roots = {user.query_type, user.mutation_type, user.subscription_type}
        gen_roots = {gen.query_type, gen.mutation_type, gen.subscription_type}
        query = self.root("Query", gen.query_type, user.query_type)
        mutation = self.root("Mutation", gen.mutation_type, user.mutation_type)
        subscription = self.root("Subscription", gen.subscription_type, user.subscription_type)
        extra = []
        for t in user.type_map.values():
            if t in roots or t.name.startswith("__") or extend.is_stand_in(t) or t.name in gen.type_map:
                continue
            try:
                extra.append(self.named(t))
            except _Missing:
                continue
        names = {d.name for d in gen.directives}
        directives = [*gen.directives, *(d for d in user.directives if d.name not in names)]
        return GraphQLSchema(query, mutation, subscription, types=[
            *(t for t in gen.type_map.values() if t not in gen_roots), *extra],
                             directives=directives, extensions=dict(gen.extensions or {}))


def serve(generated: GraphQLSchema, settings: Settings) -> GraphQLSchema:
    """``generated`` merged with the user's module (if any), served by a ``strawberry.Schema``.

    Raises ``extend.ExtensionError`` for a module that cannot load and for a name defined twice.
    """
    generated = subscriptions.add_subscriptions(generated)  # live queries and change streams
    part = extend.load(settings.graphql_extensions) if settings.graphql_extensions else extend.load_empty()
    merged = _Merge(generated, part).schema() if settings.graphql_extensions else generated
    problems = validate_schema(merged) if merged is not generated else []
    if problems:
        raise extend.ExtensionError(f"the extensions module {part.module} does not merge with the generated "
                                    "schema: " + "; ".join(p.message for p in problems))
    sbcompat.release(part.base)  # the schema this one replaces must not stay in Strawberry's caches
    sbcompat.adopt(part.base, merged)
    return merged
