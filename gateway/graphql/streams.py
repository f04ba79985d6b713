"""Change streams: each batch of changes read once per caller and fanned out to every subscriber.

In:  a subscriber (``ws.Session``: role and claims) and its ``<table>_changes`` stream, described
     by a ``Spec`` (table, filter, ``row`` selections); the process's change feed (``feed.py``).
Out: a ``Member`` whose ``next()`` returns the next ``Event`` for that subscriber, in the order
     the changes were committed, each once; ``Event.values`` is the source event graphql-core maps
     (``{"op", "pk", <row response key>: row}``) and ``Event.encoded`` remembers, per document,
     the ``data`` JSON text it produced, so a document shared by many subscribers is executed
     and encoded once per event (``open_fast``).

Why streams and groups: 200 changes/s to 100 subscribers is 20,000 deliveries/s. Subscribers
of the same table, filter and ``row`` selection share one ``Stream``: it takes the changes that
arrived while its last batch ran (at least ``BATCH_WINDOW``) and builds the re-read of every
INSERT/UPDATE key of the batch ONCE (one statement per ``row`` selection and ``MAX_KEYS`` keys,
``key IN (...)``: planned once, prepared on each connection). Within a stream, subscribers who
are the very same caller (role and claims) form one ``Group``: the statement runs once per group,
as that caller (RLS applied), ``REREADS`` groups at a time, each in one round trip
(``Executor.run``); every member of a group gets the same event objects, and groups whose callers
read the same row share those objects too, so each event's message is encoded once. The security
rule is unchanged: a row reaches a member only if that member's caller read it with that
member's filter; DELETE events carry only the key.

A member that lets ``graphql_subscription_buffer`` events pile up is dropped from its group at
once (its queue freed) and ``on_overflow`` runs: the WebSocket layer disconnects the client.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_argument_values,
    get_named_type,
    parse,
    validate,
)
from graphql.execution import Executor, execute_subscription_event
from strawberry.types.execution import ExecutionResult

from ..errors import GatewayError, internal
from .feed import RESYNC, Change, Subscription, feed_of, publish, slow_consumer
from .translate import GATEWAY, RootField, Walk, collect, root_request

log = logging.getLogger("gateway.graphql")

BATCH_WINDOW = 0.003  # seconds a group waits after a first change for more to read them together
MAX_KEYS = 500  # keys per re-read statement
SHARED_CANDIDATES = 4  # distinct events per change other callers' events are compared with
REREADS = 4  # callers' re-reads of one batch running at once (at most half the pool)
PK_ALIAS = "_gateway_key_"  # response keys of the key columns added to a re-read (removed before sending)
CHANGES_SUFFIX = "_changes"


@dataclass(eq=False)
class Event:
    """One change as a group's members receive it (shared by all of them: never mutated)."""

    seq: int
    values: dict[str, Any]  # the source event: op, pk and the row per ``row`` response key
    encoded: dict[Any, Any] = field(default_factory=dict)  # document key -> ``data`` JSON text


@dataclass(frozen=True)
class Spec:
    """What a change stream reads: everything two subscribers must share to share a stream."""

    shape: Any  # translate's TableShape of the table
    list_fdef: GraphQLField  # the Query list field of the table (its requests are built from it)
    user_filter: Any  # the ``filter`` argument, coerced
    rows: tuple[tuple[str | None, tuple[FieldNode, ...]], ...]  # ``row`` response key -> its nodes
    variables: Any  # coerced variable values (the row selections may use them)
    fragments: Mapping[str, Any]
    exact: bool = True  # PostgreSQL's JSON of each row is exactly its GraphQL value (``spec_of`` sets it)

    def key(self, settings: Any) -> Any:
        """Equal for two specs whose re-reads are the very same statements."""
        sample = tuple(self.request(settings, [self.shape.table.primary_key], key)
                       for key, _nodes in self.rows)
        return id(self.list_fdef), self.shape.table.key, sample  # the field: a catalog swap starts new streams

    def keys(self) -> dict[str, str]:
        """GraphQL field name -> column, for the primary key columns."""
        return {name: col.name for name, col in self.shape.columns.items()
                if col.name in self.shape.table.primary_key}

    def probe(self, settings: Any) -> Any:
        """A count of no rows as the caller: refused unless the caller may read the table."""
        first = next(iter(self.keys()))
        return root_request(RootField("count", self.shape), self.list_fdef, [], {"filter": {first: {"is": "null"}}},
                            Walk(self.variables, self.fragments, settings))

    def request(self, settings: Any, pks: Sequence[Any], row_key: str | None) -> Any:
        """The read of the rows with these keys (``pks``: tuples in key column order) with the
        user's filter and the ``row_key`` selection plus the key columns (``PK_ALIAS<n>``)."""
        return self._translate(settings, pks, row_key)[0]

    def translates_exactly(self, settings: Any) -> bool:
        """Whether PostgreSQL's JSON of every ``row`` selection is exactly its GraphQL value."""
        sample = [self.shape.table.primary_key]
        return all(self._translate(settings, sample, key)[1] for key, _nodes in self.rows)

    def _translate(self, settings: Any, pks: Sequence[Any], row_key: str | None) -> tuple[Any, bool]:
        """(the read of ``request``, whether its JSON is exactly the GraphQL value)."""
        keys = self.keys()
        columns = self.shape.table.primary_key
        by_column = {column: name for name, column in keys.items()}
        if len(columns) == 1:
            match: Any = {by_column[columns[0]]: {"in": [pk[0] for pk in pks]}}
        else:
            match = {"or": [{"and": [{by_column[c]: {"eq": v}} for c, v in zip(columns, pk, strict=True)]}
                            for pk in pks]}
        where = {"and": [self.user_filter, match]} if self.user_filter else match
        nodes = dict(self.rows)[row_key] if row_key is not None else ()
        extra = tuple(FieldNode(alias=NameNode(value=f"{PK_ALIAS}{i}"), name=NameNode(value=by_column[c]),
                                arguments=(), directives=())
                      for i, c in enumerate(columns))
        template = nodes[0] if nodes else FieldNode(name=NameNode(value="row"), arguments=(), directives=())
        first = FieldNode(alias=template.alias, name=template.name, arguments=template.arguments,
                          directives=template.directives,
                          selection_set=SelectionSetNode(selections=(
                              *(template.selection_set.selections if template.selection_set else ()), *extra)))
        walk = Walk(self.variables, self.fragments, settings)
        request = root_request(RootField("list", self.shape), self.list_fdef, (first, *nodes[1:]),
                               {"filter": where, "limit": len(pks)}, walk)
        return request, walk.exact


class Member:
    """One subscriber's queue of events (bounded)."""

    def __init__(self, group: Group, since: int, limit: int, on_overflow: Callable[[], None] | None) -> None:
        self.group = group
        self.open = True  # holds a place of graphql_max_subscriptions (Feed.admit) until closed
        self.since = since  # events of changes that arrived before the subscription are not its own
        self.limit = limit
        self.on_overflow = on_overflow
        self.queue: collections.deque[Event] = collections.deque()
        self.ready = asyncio.Event()
        self.error: GatewayError | None = None

    def offer(self, event: Event) -> None:
        if event.seq <= self.since or self.error is not None:
            return
        if len(self.queue) >= self.limit:
            self.fail(slow_consumer())
            if self.on_overflow is not None:
                self.on_overflow()
            return
        self.queue.append(event)
        self.ready.set()

    def fail(self, error: GatewayError) -> None:
        """End this member: its queue is freed now, ``next()`` raises ``error``."""
        self.error = error
        self.queue.clear()
        self.ready.set()
        self.close()

    async def next(self) -> Event:
        while not self.queue and self.error is None:
            self.ready.clear()
            await self.ready.wait()
        if self.error is not None:
            raise self.error
        return self.queue.popleft()

    def close(self) -> None:
        if self.open:
            self.open = False
            feed_of(self.group.stream.gw).release()
        self.group.leave(self)


class Group:
    """A stream's members who share one caller (role and claims): one re-read per batch for all."""

    def __init__(self, stream: Stream, caller: Any, session: Any) -> None:
        self.stream = stream
        self.caller = caller
        self.run = session.run  # every member's caller is this one (same role and claims)
        self.members: list[Member] = []

    def leave(self, member: Member) -> None:
        with contextlib.suppress(ValueError):
            self.members.remove(member)
        if not self.members:
            self.stream.drop(self)

    def offer(self, events: Sequence[Event]) -> None:
        for event in events:
            for member in tuple(self.members):
                member.offer(event)

    def fail(self, error: GatewayError) -> None:
        for member in tuple(self.members):
            member.fail(error)
        self.stream.drop(self)

    async def read(self, spec: Spec, batch: Sequence[Change], wanted: Sequence[tuple[Any, ...]],
                   requests: Mapping[str | None, Sequence[Any]], shared: dict[int, list[Event]]) -> list[Event]:
        """The batch's events in order, as this group's caller: INSERT/UPDATE rows re-read (one
        statement per selection and ``MAX_KEYS`` keys, ``requests``); changes whose row the caller
        cannot read (or that fail the filter) drop out. An event equal to one another group got
        for the same change is that very object (``shared``: seq -> events): encoded once for all."""
        columns = spec.shape.table.primary_key
        found: dict[str | None, dict[bytes, Any]] = {}
        for row_key, chunks in requests.items():
            rows: dict[bytes, Any] = {}
            for request in chunks if wanted else ():
                result = await self.run(request)
                for row in orjson.loads(result.body or "[]"):
                    pk = tuple(row.pop(f"{PK_ALIAS}{i}") for i in range(len(columns)))
                    rows[orjson.dumps(pk)] = row
            found[row_key] = rows
        events = []
        for change in batch:
            values: dict[str, Any] = {"op": change.op, "pk": change.pk}
            if change.op == "DELETE":
                values.update(dict.fromkeys(k for k, _ in spec.rows if k is not None))
            else:
                encoded = orjson.dumps(_pk(change, columns))
                if any(encoded not in rows for rows in found.values()):
                    continue
                values.update({k: rows[encoded] for k, rows in found.items() if k is not None})
            same = shared.setdefault(change.seq, [])
            event = next((e for e in same if e.values == values), None)
            if event is None:
                event = Event(change.seq, values)
                if len(same) < SHARED_CANDIDATES:
                    same.append(event)
            events.append(event)
        return events


class Stream:
    """The groups (one per caller) reading one ``Spec``'s changes; a task that takes each batch of
    changes once, re-reads it as every caller (at most ``REREADS`` at a time) and hands out events."""

    def __init__(self, streams: Streams, key: Any, gw: Any, spec: Spec) -> None:
        self.streams = streams
        self.key = key
        self.gw = gw
        self.spec = spec
        self.groups: dict[Any, Group] = {}
        self.sub: Subscription | None = None
        self.task: asyncio.Task[None] | None = None

    def start(self, sub: Subscription) -> None:
        self.sub = sub
        self.task = asyncio.create_task(self._serve(), name="gateway-change-stream")

    def drop(self, group: Group) -> None:
        if self.groups.get(group.caller) is group:
            del self.groups[group.caller]
        if not self.groups:
            self.stop()

    def stop(self) -> None:
        if self.streams.streams.get(self.key) is self:
            del self.streams.streams[self.key]
        if self.sub is not None:
            self.sub.close()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def _serve(self) -> None:
        assert self.sub is not None
        try:
            while True:
                first = await self.sub.next()
                await asyncio.sleep(BATCH_WINDOW)  # changes committed together are read together
                batch = [c for c in (first, *self.sub.pending()) if c is not RESYNC]
                groups = tuple(self.groups.values())  # taken with the batch: a later member's since covers it
                if batch:
                    await self._batch(batch, groups)
                if not self.groups:  # the last one left (or overflowed) meanwhile
                    self.stop()
                    return
        except asyncio.CancelledError:
            raise
        except GatewayError as exc:
            self._fail(exc)
        except Exception:
            log.exception("change stream failed")
            self._fail(internal())

    async def _batch(self, batch: list[Change], groups: Sequence[Group]) -> None:
        """Re-read ``batch`` as each group's caller, several callers at once; a group whose read
        fails ends (its members get the error), the others carry on."""
        columns = self.spec.shape.table.primary_key
        wanted = list(dict.fromkeys(_pk(c, columns) for c in batch if c.op != "DELETE"))
        settings = self.gw.settings
        # built once for every caller: the same request plans once (pipeline.prepare's memo)
        requests = {row_key: [self.spec.request(settings, wanted[i:i + MAX_KEYS], row_key)
                              for i in range(0, len(wanted), MAX_KEYS)]
                    for row_key, _nodes in self.spec.rows}
        shared: dict[int, list[Event]] = {}
        limit = asyncio.Semaphore(max(1, min(REREADS, settings.pool_max // 2)))

        async def serve(group: Group) -> None:
            try:
                async with limit:
                    events = await group.read(self.spec, batch, wanted, requests, shared)
            except GatewayError as exc:
                group.fail(exc)
                return
            group.offer(events)  # as soon as this caller's rows are in: others may still be reading

        await asyncio.gather(*(serve(g) for g in groups))

    def _fail(self, error: GatewayError) -> None:
        for group in tuple(self.groups.values()):
            group.fail(error)
        self.stop()


def _pk(change: Change, columns: Sequence[str]) -> tuple[Any, ...]:
    return tuple(change.pk.get(c) for c in columns)


class Streams:
    """A process's change streams by ``Spec.key``."""

    def __init__(self) -> None:
        self.streams: dict[Any, Stream] = {}

    async def join(self, session: Any, spec: Spec, on_overflow: Callable[[], None] | None = None) -> Member:
        """A member of the group of ``session``'s caller in the stream of ``spec``, from now on.

        Only a caller who can read the table gets a stream (DELETE keys included): the first
        re-read (no keys) runs as the caller here and its error, if any, is the caller's."""
        identity = session.identity
        settings = session.settings
        await session.run(spec.probe(settings))
        key = spec.key(settings)
        caller = (identity.role, orjson.dumps(dict(identity.claims), option=orjson.OPT_SORT_KEYS))
        feed = feed_of(session.gw)
        await feed.start()
        await publish(session.gw, (spec.shape.table.key,))
        feed.admit()  # every subscriber counts toward graphql_max_subscriptions (the member gives it back)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(self, key, session.gw, spec)
            # the stream's queue takes whole batches: it only overflows if re-reads stall for long
            stream.start(feed.subscribe(frozenset({spec.shape.table.key}), counted=False,
                                        limit=max(10_000, 10 * settings.graphql_subscription_buffer)))
        group = stream.groups.get(caller)
        if group is None:
            group = stream.groups[caller] = Group(stream, caller, session)
        member = Member(group, feed.seq, settings.graphql_subscription_buffer, on_overflow)
        group.members.append(member)
        return member


def streams_of(gw: Any) -> Streams:
    found: Streams | None = getattr(gw, "change_streams", None)
    if found is None:
        found = gw.change_streams = Streams()
    return found


def spec_of(schema: GraphQLSchema, field_name: str, nodes: Sequence[FieldNode], args: Mapping[str, Any],
            variables: Any, fragments: Mapping[str, Any], settings: Any) -> Spec:
    """The ``Spec`` of the ``<table>_changes`` field ``field_name`` selected by ``nodes``."""
    subscription = schema.subscription_type
    assert subscription is not None and schema.query_type is not None
    root: RootField = subscription.fields[field_name].extensions[GATEWAY]
    walk = Walk(variables, fragments, settings)
    rows = tuple((key, tuple(found)) for key, found in collect([n.selection_set for n in nodes], walk).items()
                 if found[0].name.value == "row")
    spec = Spec(root.shape, schema.query_type.fields[field_name[: -len(CHANGES_SUFFIX)]], args.get("filter"),
                rows or ((None, ()),), variables, fragments)
    return dataclasses.replace(spec, exact=spec.translates_exactly(settings))


# --------------------------------------------------------------------------- the fast path


class Encoded(str):
    """A ``data`` value already encoded as JSON text (``ws.GatewayGraphQL.encode_json`` splices it)."""


_documents: dict[tuple[int, str], Any] = {}
DOCUMENTS = 512  # parsed and validated change-stream documents remembered per process


def _document(schema: GraphQLSchema, query: str) -> Any:
    """``query`` parsed and validated against ``schema``; None when invalid (the normal path reports it)."""
    key = (id(schema), query)
    hit = _documents.get(key, False)
    if hit is not False:
        return hit
    try:
        document: Any = parse(query)
    except GraphQLError:
        document = None
    if document is not None and validate(schema, document):
        document = None
    if len(_documents) >= DOCUMENTS:
        _documents.clear()
    _documents[key] = document
    return document


async def open_fast(session: Any, schema: GraphQLSchema, query: str, variables: dict[str, Any] | None,
                    operation_name: str | None, on_overflow: Callable[[], None] | None
                    ) -> AsyncIterator[ExecutionResult] | None:
    """The results of a plain ``<table>_changes`` subscription, each event executed and encoded once
    per document for all the subscribers of its group; None when ``query`` is anything else (the
    normal path serves it). The subscription is open (and the caller's privilege checked) on return."""
    document = _document(schema, query) if session.identity is not None else None
    if document is None:
        return None
    executor = Executor.build(schema, document, context_value=session, raw_variable_values=variables,
                              operation_name=operation_name)
    if isinstance(executor, list):
        return None
    operation: OperationDefinitionNode = executor.operation
    selections = operation.selection_set.selections
    if operation.operation != OperationType.SUBSCRIPTION or len(selections) != 1 \
            or not isinstance(selections[0], FieldNode) or selections[0].directives:
        return None
    node = selections[0]
    assert schema.subscription_type is not None
    fdef = schema.subscription_type.fields.get(node.name.value)
    if fdef is None or not node.name.value.endswith(CHANGES_SUFFIX) \
            or not isinstance(fdef.extensions.get(GATEWAY), RootField) or fdef.subscribe is None \
            or getattr(fdef.subscribe, "__name__", "") != "changes":
        return None
    coerced = executor.variable_values
    fragments = {name: d.definition for name, d in executor.fragments.items()}
    args = get_argument_values(fdef, node, coerced)
    spec = spec_of(schema, node.name.value, [node], args, coerced, fragments, session.settings)
    member = await streams_of(session.gw).join(session, spec, on_overflow)
    doc_key = (id(document), query, operation_name, orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS))
    return _results(member, executor, doc_key, _plain(node, fdef, spec))


def _plain(node: FieldNode, fdef: GraphQLField, spec: Spec) -> Callable[[dict[str, Any]], Any] | None:
    """When the event's selection is plain fields (``op``, ``pk``, ``row``, ``__typename``, no
    directives or fragments) and PostgreSQL's row JSON is exactly the GraphQL value: a function
    that builds the ``data`` from an event without graphql-core (the same value, cheaper)."""
    if not spec.exact or node.selection_set is None:
        return None
    root_key = node.alias.value if node.alias else node.name.value
    typename = get_named_type(fdef.type).name
    parts: list[tuple[str, str]] = []
    for sel in node.selection_set.selections:
        if not isinstance(sel, FieldNode) or sel.directives or sel.arguments \
                or sel.name.value not in ("op", "pk", "row", "__typename"):
            return None
        parts.append((sel.alias.value if sel.alias else sel.name.value, sel.name.value))

    def build(values: dict[str, Any]) -> Any:
        out = {}
        for key, name in parts:
            out[key] = typename if name == "__typename" else values[key] if name == "row" else values[name]
        return {root_key: out}

    return build


async def _results(member: Member, executor: Executor, doc_key: Any,
                   plain: Callable[[dict[str, Any]], Any] | None) -> AsyncIterator[ExecutionResult]:
    try:
        while True:
            try:
                event = await member.next()
            except GatewayError as exc:
                from .view import extensions

                yield ExecutionResult(data=None, errors=[GraphQLError(exc.message, extensions=extensions(exc))])
                return
            text = event.encoded.get(doc_key)
            if text is None and plain is not None:
                text = event.encoded[doc_key] = Encoded(orjson.dumps(plain(event.values)).decode())
            if text is None:
                done = execute_subscription_event(executor.build_per_event_executor(event.values))
                result = await done if inspect.isawaitable(done) else done
                if result.errors:  # not shared: rare, and the normal encoding carries the errors
                    yield ExecutionResult(data=result.data, errors=list(result.errors))
                    continue
                text = event.encoded[doc_key] = Encoded(orjson.dumps(result.data).decode())
            yield ExecutionResult(data=text, errors=None)  # type: ignore[arg-type]
    finally:
        member.close()
