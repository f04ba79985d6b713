"""REST request parsing: URL, headers and body become the request model.

In:  the HTTP method, the table or function name from the path, the raw query string, the
     request headers and the body bytes of a ``/records/<table>`` or ``/rpc/<function>`` call.
Out: a ``ParsedRequest``: one ``gateway.request`` value (Read, Insert, Update, Delete or Call),
     the ``Prefer`` tokens, the schema profile and the negotiated media type.

Pure: no catalog, no database. Names stay unresolved and values stay text (or decoded JSON);
the planner checks both. Every malformed input raises a ``GatewayError`` (postgrest-semantics
§1-§10); nothing else escapes. The text grammars live in ``grammar.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast
from urllib.parse import unquote

from gateway import errors, jsonbody
from gateway import request as rq
from gateway.rest.grammar import (
    FULL_TEXT,
    LOGIC_KEYS,
    OPERATORS,
    QUANTIFIABLE,
    describe,
    parse_field,
    parse_filter,
    parse_filter_value,
    parse_logic,
    parse_names,
    parse_order,
    parse_select,
    parse_tree_path,
)
from gateway.rest.media import AcceptKind, PlanMedia, negotiate, negotiate_media

__all__ = [
    "ParsedRequest", "negotiate", "negotiate_media", "parse_field", "parse_filter", "parse_logic", "parse_order",
    "parse_prefer", "parse_range", "parse_records", "parse_rpc", "parse_select", "split_query",
]

READ_METHODS = ("GET", "HEAD")
TOP_LEVEL_KEYS = ("select", "columns", "on_conflict", "schema")  # never embed-prefixed
PAGE_KEYS = ("order", "limit", "offset")  # may carry an embed prefix, like LOGIC_KEYS


@dataclass(frozen=True)
class ParsedRequest:
    """One REST request, parsed."""

    request: rq.Request  # Read / Insert / Update / Delete / Call
    prefer: rq.Prefer  # the Prefer tokens (the renderer echoes them in Preference-Applied)
    schema: str | None  # from ?schema=, Accept-Profile (GET/HEAD) or Content-Profile; None: default
    accept: AcceptKind  # negotiated media type ("object" = application/vnd.pgrst.object+json)
    strip_nulls: bool = False  # ``;nulls=stripped``: keys whose value is null are left out of the body
    plan: PlanMedia | None = None  # ``application/vnd.pgrst.plan``: answer with EXPLAIN's output instead


# --------------------------------------------------------------------------- query string


def split_query(query_string: str) -> list[tuple[str, str]]:
    """``parse_qsl(keep_blank_values=True)`` decoding, in order, but a bare key (no ``=``) is dropped (§1)."""
    pairs = []
    for part in query_string.split("&"):
        key, equals, value = part.partition("=")
        if equals:
            pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


@dataclass
class _Level:
    """Parameters addressed to one level of the select tree: the root, or one embed path."""

    where: list[rq.Condition] = field(default_factory=list)  # filters and logic trees, in URL order
    order: tuple[rq.Order, ...] = ()
    limit: int | None = None  # None: not given
    offset: int | None = None  # None: not given


@dataclass
class _Query:
    """The query string, sorted into its parts."""

    select: tuple[rq.SelectItem, ...]  # with every embed's own parameters attached
    root: _Level  # root filters, order and page
    columns: tuple[str, ...] | None  # ``columns=``
    on_conflict: tuple[str, ...] | None  # ``on_conflict=``
    schema: list[str]  # every ``schema=`` value (more than one is an error)
    args: dict[str, str]  # RPC arguments from plain parameters (last value wins)


def _integer(key: str, value: str) -> int:
    if re.fullmatch(r"-?[0-9]{19,}", value.strip()):  # a whole number, just too large for the planner's int8
        raise errors.invalid_query(f"Failed to parse {describe('parameter', key, value)}: "
                                   "out of range (at most 18 digits)")
    if not re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        raise errors.invalid_query(f"Failed to parse {describe('parameter', key, value)}: not an integer")
    return int(value)


def _apply_page(level: _Level, key: str, name: str, value: str) -> None:
    if name == "order":
        level.order = parse_order(value)
    elif name == "limit":
        level.limit = _integer(key, value)
        if level.limit < 0:
            raise errors.postgrest(416, "PGRST103", "Requested range not satisfiable",
                                   details="Limit should be greater than or equal to zero.")
    else:
        level.offset = max(_integer(key, value), 0)  # a negative offset does nothing (§5)


def _reserved(key: str) -> tuple[tuple[str, ...], str] | None:
    """``a.b.limit`` -> ((a, b), limit) for the embed-prefixable keys; None for anything else."""
    for name in (*LOGIC_KEYS[2:], *LOGIC_KEYS[:2], *PAGE_KEYS):  # not.or before or
        if key == name:
            return (), name
        if key.endswith("." + name):
            path, last = parse_tree_path(key[: -len(name) - 1], describe("parameter", key))
            if last.json_path:
                raise errors.invalid_query(f"Failed to parse {describe('parameter', key)}: a JSON path is no embed")
            return (*path, last.name), name
    return None


def _is_filter_value(value: str) -> bool:
    """RPC: does a plain parameter's value read as ``op.value`` (a filter, not an argument)? (§10)."""
    found = re.match(r"([a-z]+)([.(])", value)
    return value.startswith("not.") or (found is not None and found[1] in OPERATORS and (
        found[2] == "." or found[1] in QUANTIFIABLE | FULL_TEXT))


def _read_query(pairs: list[tuple[str, str]], *, plain_args: bool) -> _Query:
    """Sort the parameters; with ``plain_args`` operator-less values become RPC arguments."""
    last = {key: value for key, value in pairs if key in TOP_LEVEL_KEYS}
    select = parse_select(last.get("select", ""))
    levels: dict[tuple[str, ...], _Level] = {(): _Level()}
    args: dict[str, str] = {}
    for key, value in pairs:
        if key in TOP_LEVEL_KEYS:
            continue
        reserved = _reserved(key)
        if reserved:
            path, name = reserved
            level = levels.setdefault(path, _Level())
            if name in LOGIC_KEYS:
                level.where.append(parse_logic(name, value))
            else:
                _apply_page(level, key, name, value)
        elif plain_args and not _is_filter_value(value):
            args[key] = value
        else:
            what = describe("filter", key, value)
            path, ref = parse_tree_path(key, what)
            levels.setdefault(path, _Level()).where.append(parse_filter_value(ref, value, what))
    root = levels.pop(())
    select = _attach(select, levels)
    root.where = [_embed_null(c, _embed_keys(select)) for c in root.where]
    columns, conflict = (parse_names(last[key], describe(key, last[key])) if key in last else None
                         for key in ("columns", "on_conflict"))
    schema = [value for key, value in pairs if key == "schema"]
    return _Query(select, root, columns, conflict, schema, args)


# --------------------------------------------------------------------------- embeds


def _embed_keys(items: tuple[rq.SelectItem, ...]) -> set[str]:
    return {name for item in items if isinstance(item, rq.SelectEmbed) for name in (item.key, item.relation)}


def _embed_null(cond: rq.Condition, embeds: set[str]) -> rq.Condition:
    """``clients=is.null`` where ``clients`` is an embed: the anti/semi-join test (§3.1)."""
    if isinstance(cond, rq.BoolExpr):
        return replace(cond, items=tuple(_embed_null(c, embeds) for c in cond.items))
    if (isinstance(cond, rq.Filter) and cond.op == "is" and cond.value in ("null", "not_null")
            and not cond.field.json_path and cond.field.name in embeds):
        return rq.EmbedNull(cond.field.name, (cond.value == "null") != cond.negate)
    return cond


def _find_embed(items: list[rq.SelectItem], name: str) -> int | None:
    """The embed a path step names: an alias first, then a relation name."""
    for wanted in ("alias", "relation"):
        for index, item in enumerate(items):
            if isinstance(item, rq.SelectEmbed) and getattr(item, wanted) == name:
                return index
    return None


def _attach(items: tuple[rq.SelectItem, ...], levels: dict[tuple[str, ...], _Level]) -> tuple[rq.SelectItem, ...]:
    """Rebuild ``items`` with each embed's filters, order and page (paths relative to ``items``)."""
    out = list(items)
    targets: dict[int, dict[tuple[str, ...], _Level]] = {}
    for path, level in levels.items():
        index = _find_embed(out, path[0])
        if index is None:
            raise errors.invalid_query(
                f"'{path[0]}' is not an embedded resource in this request", code="PGRST108",
                hint=f"Verify that '{path[0]}' is included in the 'select' query parameter.")
        targets.setdefault(index, {})[path[1:]] = level
    for index, sub in targets.items():
        embed = cast(rq.SelectEmbed, out[index])
        own = sub.pop((), _Level())
        children = _attach(embed.select, sub)
        out[index] = replace(embed, select=children, order=own.order, limit=own.limit,
                             offset=own.offset or 0,
                             where=tuple(_embed_null(c, _embed_keys(children)) for c in own.where))
    return tuple(out)


# --------------------------------------------------------------------------- headers


def _header(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of one header, case-insensitively (Starlette's ``items()`` keeps repeats)."""
    return [value for key, value in headers.items() if key.lower() == name]


_PREFER_VALUES: dict[str, Callable[[str], bool]] = {
    "return": lambda v: v in ("minimal", "representation", "headers-only"),
    "count": lambda v: v in ("exact", "planned", "estimated"),
    "resolution": lambda v: v in ("merge-duplicates", "ignore-duplicates"),
    "missing": lambda v: v in ("default", "null"),
    "handling": lambda v: v in ("strict", "lenient"),
    "tx": lambda v: v in ("commit", "rollback"),
    "max-affected": lambda v: re.fullmatch(r"[0-9]{1,18}", v) is not None,
    "timezone": lambda v: v != "",  # PostgreSQL validates the zone name
}


def parse_prefer(values: Sequence[str]) -> rq.Prefer:
    """Comma-separated tokens from every Prefer header; the first valid token per family wins (§6)."""
    chosen: dict[str, str] = {}
    invalid: list[str] = []
    for header in values:
        for token in (t.strip() for t in header.split(",")):
            name, equals, value = token.partition("=")
            check = _PREFER_VALUES.get(name.strip())
            if check and equals and check(value.strip()):
                chosen.setdefault(name.strip(), value.strip())
            elif token:
                invalid.append(token)
    strict = chosen.get("handling") == "strict"
    if strict and invalid:
        raise errors.invalid_query(f"Invalid preferences: {', '.join(invalid)}", code="PGRST122")
    return rq.Prefer(
        return_=cast("rq.ReturnKind | None", chosen.get("return")),  # quoted: no typing work per call
        count=cast("rq.CountKind | None", chosen.get("count")),
        resolution=cast("rq.Resolution | None", chosen.get("resolution")),
        missing_default=chosen.get("missing") == "default",
        tx_rollback=chosen.get("tx") == "rollback",
        max_affected=int(chosen["max-affected"]) if "max-affected" in chosen else None,
        strict=strict,
        timezone=chosen.get("timezone"),
    )


def parse_range(value: str) -> tuple[int, int | None] | None:
    """``Range: a-b`` / ``a-`` (an ``items=`` prefix is tolerated); None when malformed (§5)."""
    found = re.fullmatch(r"(?:items=)?([0-9]{1,18})-([0-9]{0,18})", value.strip())
    if not found:
        return None
    first, last = int(found[1]), int(found[2]) if found[2] else None
    if last is not None and first > last:
        raise errors.postgrest(416, "PGRST103", "Requested range not satisfiable",
                               details="The lower boundary must be lower than or equal to the upper boundary")
    return first, last


def _page(level: _Level, method: str, headers: Mapping[str, str]) -> tuple[int, int | None]:
    """(offset, limit): ``limit``/``offset`` intersected with a GET/HEAD Range header (§5)."""
    offset, limit = level.offset or 0, level.limit
    units = _header(headers, "range-unit")
    ranges = _header(headers, "range")
    if method not in READ_METHODS or not ranges or (units and units[0].strip().lower() != "items"):
        return offset, limit
    requested = parse_range(ranges[0])
    if requested is None:
        return offset, limit
    start = max(offset, requested[0])
    ends = [end for end in (requested[1], None if limit is None else offset + limit - 1) if end is not None]
    return start, (max(min(ends) - start + 1, 0) if ends else None)


def _schema(query: _Query, method: str, headers: Mapping[str, str], fallback: str | None) -> str | None:
    """``?schema=`` first, then the profile header for the method, then ``fallback``."""
    if len(query.schema) > 1:
        raise errors.invalid_input("The schema parameter may be given only once")
    header = _header(headers, "accept-profile" if method in READ_METHODS else "content-profile")
    for candidate in (*query.schema, *header[:1], fallback):
        if candidate is None:
            continue
        name = candidate.strip()
        if not name:
            raise errors.invalid_input("The schema name must not be blank")
        if name.lower().startswith("pg_") or name.lower() == "information_schema":
            raise errors.invalid_input(f"The schema '{name}' is not accessible")
        return name
    return None


# --------------------------------------------------------------------------- bodies

_NO_BODY: Any = object()  # an empty body, told apart from JSON ``null``


def _json(body: bytes, *, required: bool) -> Any:
    if not body.strip():
        if required:
            raise errors.validation_error("Empty request body")
        return _NO_BODY
    try:
        return jsonbody.loads(body)
    except jsonbody.JsonError as exc:
        raise errors.validation_error("Invalid JSON body", details=str(exc)) from None


def _rows(data: Any, columns: tuple[str, ...] | None) -> tuple[Mapping[str, Any], ...]:
    """An object is one row; an array holds objects that share their keys unless ``columns`` is given (§7)."""
    rows = data if isinstance(data, list) else [data]
    if not all(isinstance(row, dict) for row in rows):
        raise errors.validation_error("The JSON body must be an object or an array of objects")
    if columns is None and any(row.keys() != rows[0].keys() for row in rows):
        raise errors.validation_error("All object keys must match",
                                      details="Give columns=... to insert objects with different keys")
    return tuple(rows)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class _Inputs:
    """What every method builder reads."""

    method: str
    target: rq.Target
    query: _Query
    prefer: rq.Prefer
    single: bool  # the object media type was negotiated
    headers: Mapping[str, str]
    body: bytes


def _no_page(inputs: _Inputs, code: str = "PGRST100") -> None:
    if inputs.query.root.limit is not None or inputs.query.root.offset is not None:
        raise errors.invalid_query(f"limit and offset are not allowed on {inputs.method}", code=code)


def _read(inputs: _Inputs) -> rq.Read:
    root = inputs.query.root
    offset, limit = _page(root, inputs.method, inputs.headers)
    return rq.Read(inputs.target, select=inputs.query.select, where=tuple(root.where), order=root.order,
                   limit=limit, offset=offset, count=inputs.prefer.count, single=inputs.single,
                   head=inputs.method == "HEAD")


def _written(inputs: _Inputs) -> dict[str, Any]:
    """What every write shares: the returned shape, whether rows come back, count, single, rollback."""
    prefer = inputs.prefer
    return {"returning": inputs.query.select, "return_rows": prefer.return_ == "representation",
            "count": prefer.count, "single": inputs.single, "rollback": prefer.tx_rollback}


def _insert(inputs: _Inputs) -> rq.Insert:
    query, prefer = inputs.query, inputs.prefer
    return rq.Insert(inputs.target, _rows(_json(inputs.body, required=True), query.columns),
                     columns=query.columns, on_conflict=query.on_conflict, resolution=prefer.resolution,
                     missing_default=prefer.missing_default, **_written(inputs))


def _put(inputs: _Inputs) -> rq.Insert:
    """PUT: one full row that replaces (or creates) the row its URL filters name (§7)."""
    _no_page(inputs, code="PGRST114")
    rows = _rows(_json(inputs.body, required=True), None)
    if len(rows) != 1:
        raise errors.validation_error("PUT takes exactly one JSON object")
    return rq.Insert(inputs.target, rows, resolution="merge-duplicates", put=True,
                     put_filters=tuple(inputs.query.root.where), **_written(inputs))


def _update(inputs: _Inputs) -> rq.Update:
    # the model has no limit for writes: refusing beats silently updating every matching row
    _no_page(inputs)
    values = _json(inputs.body, required=True)
    if not isinstance(values, dict):
        raise errors.validation_error("The JSON body of a PATCH must be an object")
    return rq.Update(inputs.target, values, where=tuple(inputs.query.root.where), **_written(inputs),
                     max_affected=inputs.prefer.max_affected if inputs.prefer.strict else None)


def _delete(inputs: _Inputs) -> rq.Delete:
    _no_page(inputs)  # the body is ignored: postgrest-js sends an empty one with a JSON Content-Type
    return rq.Delete(inputs.target, where=tuple(inputs.query.root.where), **_written(inputs),
                     max_affected=inputs.prefer.max_affected if inputs.prefer.strict else None)


_RECORD_BUILDERS: dict[str, Callable[[_Inputs], rq.Request]] = {
    "GET": _read, "HEAD": _read, "POST": _insert, "PUT": _put, "PATCH": _update, "DELETE": _delete,
}


def parse_records(method: str, table: str, query_string: str, headers: Mapping[str, str], body: bytes,
                  *, default_schema_header: str | None = None) -> ParsedRequest:
    """A ``/records/<table>`` request; ``default_schema_header`` is the profile used when none is sent."""
    method = method.upper()
    build = _RECORD_BUILDERS.get(method)
    if build is None:
        raise errors.postgrest(405, "PGRST117", f"Unsupported HTTP method: {method[:20]}")
    prefer, media = parse_prefer(_header(headers, "prefer")), negotiate_media(_header(headers, "accept"))
    accept = media.kind
    query = _read_query(split_query(query_string), plain_args=False)
    schema = _schema(query, method, headers, default_schema_header)
    inputs = _Inputs(method, rq.Target(table, schema), query, prefer, accept == "object", headers, body)
    return ParsedRequest(build(inputs), prefer, schema, accept, media.strip_nulls, media.plan)


# --------------------------------------------------------------------------- rpc

_RPC_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")  # the spec allows all (behavior §7.13)


def parse_rpc(method: str, function: str, query_string: str, headers: Mapping[str, str], body: bytes,
              *, default_schema_header: str | None = None) -> ParsedRequest:
    """A ``/rpc/<function>`` call: arguments from the query (GET/HEAD, or no body) or the JSON body (§10)."""
    method = method.upper()
    if method not in _RPC_METHODS:
        raise errors.postgrest(405, "PGRST101", f"Unsupported HTTP method: {method[:20]}")
    prefer, media = parse_prefer(_header(headers, "prefer")), negotiate_media(_header(headers, "accept"))
    accept = media.kind
    data = _NO_BODY if method in READ_METHODS else _json(body, required=False)
    from_query = data is _NO_BODY
    query = _read_query(split_query(query_string), plain_args=from_query)
    schema = _schema(query, method, headers, default_schema_header)
    first = data[0] if isinstance(data, list) and data else data
    args: Mapping[str, Any] = query.args if from_query else first if isinstance(first, dict) else {}
    offset, limit = _page(query.root, method, headers)
    call = rq.Call(
        rq.Target(function, schema), args, read_only=method in READ_METHODS, select=query.select,
        where=tuple(query.root.where), order=query.root.order, limit=limit, offset=offset,
        count=prefer.count, single=accept == "object", head=method == "HEAD",
        args_from_query=from_query, positional_json=not from_query, raw_body=None if from_query else data,
        rollback=prefer.tx_rollback, max_affected=prefer.max_affected if prefer.strict else None)
    return ParsedRequest(call, prefer, schema, accept, media.strip_nulls, media.plan)
