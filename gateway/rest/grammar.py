"""The text grammars of the REST query language: select, filters, logic trees, order, name lists.

In:  one query-string key or value, already percent-decoded.
Out: request-model values (``gateway.request``): ``SelectItem`` trees, ``Filter``/``BoolExpr``
     conditions, ``Order`` terms and ``FieldRef`` names. Malformed text raises a 400
     ``INVALID_QUERY`` GatewayError (PGRST100) naming the parameter and the position.

The grammar is PostgREST's (postgrest-semantics.md §1-§4). Each rule is a small recursive-descent
function over a ``_Cursor``; nesting (embeds, logic trees) is capped so that no input can exhaust
the Python stack.
"""

from __future__ import annotations

import re
from typing import Literal, cast, get_args

from gateway import errors
from gateway.request import (
    COUNT_ROWS,
    STAR,
    AggregateName,
    BoolExpr,
    FieldRef,
    Filter,
    FilterOp,
    JsonStep,
    Order,
    SelectColumn,
    SelectEmbed,
    SelectItem,
    SelectStar,
)

OPERATORS: frozenset[str] = frozenset(get_args(FilterOp))
# operators that take ``(any)``/``(all)``: the value becomes an array literal (§2.1)
QUANTIFIABLE = frozenset({"eq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch"})
# full-text operators that take an optional ``(language)``
FULL_TEXT = frozenset({"fts", "plfts", "phfts", "wfts"})
# operators whose ``*`` is a wildcard, rewritten to ``%`` (URLs cannot carry a bare ``%`` easily)
WILDCARD = frozenset({"like", "ilike"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})
MAX_DEPTH = 32  # nested embeds / logic trees; far beyond any real request, well inside the stack

_BLANKS = re.compile(r"[ \t]*")
_WORD = re.compile(r"[A-Za-z_]*")  # operator names, ``is`` values, order options
_DIRECTIONS: dict[str, Literal["asc", "desc"]] = {"asc": "asc", "desc": "desc"}
_NULLS: dict[str, Literal["first", "last"]] = {"nullsfirst": "first", "nullslast": "last"}
_NAME = re.compile(r"[\w $](?:[\w $]|-(?=[\w $]))*")  # a dash only between name characters
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)  # backslash makes the next character literal
_ESCAPE = re.compile(r"\\(.)", re.S)
_RAW = re.compile(r"[^,)]*")  # raw list/tree element: up to the next , or )
_ARRAY_ELEMENT = re.compile(r'\s*+(?:"((?:[^"\\]|\\.)*)"\s*|((?:[^,"{}\\]|\\.)*))(,|\Z)', re.S)
_INDEX = re.compile(r"-[0-9]+")  # negative JSON array index, ``->>-1``
_QUANTIFIER = re.compile(r"\((any|all)\)")
_LANGUAGE = re.compile(r"\(([A-Za-z0-9_]+)\)")
_CAST = re.compile(r"[A-Za-z0-9_ \[\]]*")
_AGGREGATE = re.compile(r"\.(sum|avg|min|max|count)\(\s*\)")
_NESTED_TREE = re.compile(r"(not\.)?(or|and)\s*\(")
LOGIC_KEYS = ("or", "and", "not.or", "not.and")


def describe(kind: str, key: str, value: str | None = None) -> str:
    """How an error names the parameter: ``filter 'id=foo.1'`` (long text shortened)."""
    text = key if value is None else f"{key}={value}"
    return f"{kind} '{text[:120]}{'...' if len(text) > 120 else ''}'"


class _Cursor:
    """A position in one piece of text, with the error naming that text."""

    __slots__ = ("depth", "pos", "text", "what")

    def __init__(self, text: str, what: str) -> None:
        self.text = text  # the text being parsed
        self.pos = 0  # index of the next unread character
        self.what = what  # how errors name the parameter
        self.depth = 0  # current nesting of parentheses that recurse

    @property
    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def startswith(self, literal: str) -> bool:
        return self.text.startswith(literal, self.pos)

    def eat(self, literal: str) -> bool:
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, expected: str) -> None:
        if not self.eat(literal):
            raise self.error(f"expected {expected}")

    def skip_ws(self) -> None:
        self.take(_BLANKS)

    def take(self, pattern: re.Pattern[str]) -> str:
        """The text ``pattern`` matches here (possibly empty), consumed."""
        found = self.match(pattern)
        return found.group() if found else ""

    def match(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        found = pattern.match(self.text, self.pos)
        if found:
            self.pos = found.end()
        return found

    def finish(self) -> None:
        self.skip_ws()
        if not self.done:
            raise self.error(f"unexpected text {self.text[self.pos:self.pos + 20]!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels")

    def error(self, problem: str, code: str = "PGRST100") -> errors.GatewayError:
        return errors.invalid_query(f"Failed to parse {self.what}: {problem}", code=code,
                                    details=f"at character {self.pos + 1}")


# --------------------------------------------------------------------------- names


def field_name(cur: _Cursor) -> str:
    """A column, relation or alias: name characters, ``-`` not before ``>``, or ``"quoted"``."""
    if cur.peek() == '"':
        found = cur.match(_QUOTED)
        if not found:
            raise cur.error("unterminated double quote")
        name = _unescape(found.group(1))
    else:
        name = cur.take(_NAME).strip()  # spaces are name characters inside, padding outside
    if not name:
        raise cur.error("expected a column name")
    return name


def _json_path(cur: _Cursor) -> tuple[JsonStep, ...]:
    steps: list[JsonStep] = []
    while cur.startswith("->"):
        as_text = cur.startswith("->>")
        cur.pos += 3 if as_text else 2
        index = cur.match(_INDEX)
        steps.append(JsonStep(index.group() if index else field_name(cur), as_text))
    return tuple(steps)


def _field(cur: _Cursor) -> FieldRef:
    name = field_name(cur)
    return FieldRef(name, _json_path(cur))


def parse_field(text: str) -> FieldRef:
    """``column[->json path]`` on its own."""
    cur = _Cursor(text, describe("column", text))
    ref = _field(cur)
    cur.finish()
    return ref


def parse_names(text: str, what: str) -> tuple[str, ...]:
    """``a,"b c",d`` (``columns=``, ``on_conflict=``); empty text is an error."""
    cur = _Cursor(text, what)
    names: list[str] = []
    while True:
        cur.skip_ws()
        names.append(field_name(cur))
        cur.skip_ws()
        if cur.done:
            return tuple(names)
        cur.expect(",", "',' between names")


def parse_tree_path(key: str, what: str) -> tuple[tuple[str, ...], FieldRef]:
    """A filter key ``[embed.]*column[json path]``, or an embed prefix: (embed path, last name)."""
    cur = _Cursor(key, what)
    names = [field_name(cur)]
    while cur.eat("."):
        names.append(field_name(cur))
    ref = FieldRef(names[-1], _json_path(cur))
    cur.finish()
    return tuple(names[:-1]), ref


# --------------------------------------------------------------------------- filter values


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text)


def _quoted_element(cur: _Cursor) -> str | None:
    """A quoted list/tree element, only if a ``,`` or ``)`` follows it; else None (raw text)."""
    found = _QUOTED.match(cur.text, cur.pos)
    if not found or cur.text[found.end() : found.end() + 1] not in ("", ",", ")"):
        return None
    cur.pos = found.end()
    return _unescape(found.group(1))


def _list(cur: _Cursor) -> tuple[str, ...]:
    """``(a,"b, c",d)`` (§2.2): raw elements are not trimmed; ``()`` is the empty list."""
    cur.skip_ws()
    cur.expect("(", "'(' to open the list, as in in.(1,2)")
    cur.skip_ws()
    if cur.eat(")"):
        return ()
    elements: list[str] = []
    while True:
        quoted = _quoted_element(cur)
        elements.append(quoted if quoted is not None else cur.take(_RAW))
        if not cur.eat(","):
            break
    cur.expect(")", "')' to close the list")
    return tuple(elements)


def _tree_value(cur: _Cursor) -> str:
    """A value inside a logic tree: quoted, a ``{...}`` array kept whole, or raw up to ``,``/``)``."""
    quoted = _quoted_element(cur)
    if quoted is not None:
        return quoted
    if cur.peek() == "{":
        end = cur.text.find("}", cur.pos)
        if end != -1 and "{" not in cur.text[cur.pos + 1 : end]:
            value = cur.text[cur.pos : end + 1]
            cur.pos = end + 1
            return value
    return cur.take(_RAW)


def _array_literal(raw: str, cur: _Cursor) -> tuple[str, ...]:
    """A PostgreSQL array literal ``{a,"b,c"}`` for (any)/(all), as a tuple of element strings."""
    text = raw.strip()
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        raise cur.error("(any) and (all) need an array value such as {1,2,3}")
    body, pos, items = text[1:-1], 0, []
    if not body.strip():
        return ()
    while True:
        found = _ARRAY_ELEMENT.match(body, pos)
        if not found or (found.group(1) is None and not found.group(2).strip()):
            raise cur.error("malformed array value: empty, nested or misquoted element")
        quoted, unquoted, separator = found.groups()
        items.append(_unescape(quoted if quoted is not None else unquoted.strip()))
        if not separator:
            return tuple(items)
        pos = found.end()


def _is_value(cur: _Cursor) -> str:
    word = cur.take(_WORD).lower()
    if word not in IS_VALUES:
        raise cur.error("'is' accepts only null, not_null, true, false or unknown")
    return word


def _operation(cur: _Cursor, field: FieldRef, in_tree: bool) -> Filter:
    """``[not.]op[(any|all)|(language)].value`` for ``field``."""
    negate = cur.eat("not.")
    name = cur.take(_WORD)
    if name not in OPERATORS:
        raise cur.error(f"unknown operator '{name}'" if name else "missing operator (eq, gt, in, is, ...)")
    modifier: Literal["any", "all"] | None = None
    language: str | None = None
    if cur.peek() == "(":
        if name in QUANTIFIABLE and (quant := cur.match(_QUANTIFIER)):
            modifier = "any" if quant.group(1) == "any" else "all"
        elif name in FULL_TEXT and (lang := cur.match(_LANGUAGE)):
            language = lang.group(1)
        else:
            raise cur.error(f"operator '{name}' does not take this (...) modifier")
    cur.expect(".", f"'.' and a value after the operator '{name}'")
    value: object
    if name == "in":
        value = _list(cur)
    elif name == "is":
        value = _is_value(cur)
    else:
        if in_tree:
            raw = _tree_value(cur)
        else:  # a root value is everything after the operator's dot, verbatim
            raw, cur.pos = cur.text[cur.pos:], len(cur.text)
        if modifier:
            elements = _array_literal(raw, cur)
            value = tuple(e.replace("*", "%") for e in elements) if name in WILDCARD else elements
        else:
            value = raw.replace("*", "%") if name in WILDCARD else raw
    return Filter(field, cast(FilterOp, name), value, negate, modifier, language)


def parse_filter_value(field: FieldRef, value: str, what: str) -> Filter:
    """The value side of a root filter, ``[not.]op[(mod)].value``, applied to ``field``."""
    cur = _Cursor(value, what)
    if not value:
        raise cur.error("empty filter value; expected an operator and a value, e.g. eq.1")
    result = _operation(cur, field, in_tree=False)
    cur.finish()
    return result


def parse_filter(key: str, value: str) -> Filter:
    """``column[json path]`` = ``[not.]op[(mod)].value`` (no embed prefix in ``key``)."""
    what = describe("filter", key, value)
    cur = _Cursor(key, what)
    field = _field(cur)
    cur.finish()
    return parse_filter_value(field, value, what)


# --------------------------------------------------------------------------- logic trees


def _logic_tree(cur: _Cursor) -> BoolExpr:
    negate = cur.eat("not.")
    op = "or" if cur.eat("or") else "and" if cur.eat("and") else None
    if op is None:
        raise cur.error("expected or(...) or and(...)")
    cur.skip_ws()
    cur.expect("(", f"'(' after '{op}'")
    cur.enter()
    cur.skip_ws()
    if cur.peek() == ")":
        raise cur.error(f"empty '{op}' list; give at least one condition")
    items: list[Filter | BoolExpr] = []
    while True:
        cur.skip_ws()
        if _NESTED_TREE.match(cur.text, cur.pos):
            items.append(_logic_tree(cur))
        else:
            field = _field(cur)
            cur.expect(".", "'.' between the column and the operator")
            items.append(_operation(cur, field, in_tree=True))
        cur.skip_ws()
        if not cur.eat(","):
            break
    cur.expect(")", f"',' or ')' in the '{op}' list")
    cur.depth -= 1
    return BoolExpr("or" if op == "or" else "and", tuple(items), negate)


def parse_logic(key: str, value: str) -> BoolExpr:
    """``or=(a.eq.1,and(b.gt.2,c.is.null))``; ``key`` is or / and / not.or / not.and."""
    what = describe("logic tree", key, value)
    if key not in LOGIC_KEYS:
        raise errors.invalid_query(f"Failed to parse {what}: the key must be or, and, not.or or not.and")
    cur = _Cursor(key + value, what)
    tree = _logic_tree(cur)
    cur.finish()
    return tree


# --------------------------------------------------------------------------- select


def _embed_options(cur: _Cursor) -> tuple[str | None, bool]:
    """``!hint``, ``!inner``, ``!left`` in either order: (hint, inner)."""
    hint: str | None = None
    join: str | None = None
    while cur.eat("!"):
        quoted = cur.peek() == '"'
        word = field_name(cur)
        if not quoted and word in ("inner", "left"):
            if join is not None:
                raise cur.error("more than one join type (!inner, !left)")
            join = word
        elif hint is not None:
            raise cur.error("more than one relationship hint")
        else:
            hint = word
        cur.skip_ws()
    return hint, join == "inner"


def _embed(cur: _Cursor, relation: str, alias: str | None, spread: bool) -> SelectEmbed:
    hint, inner = _embed_options(cur)
    cur.skip_ws()
    cur.expect("(", f"'(' after the embedded resource '{relation}'")
    cur.enter()
    items = _select_list(cur)
    cur.skip_ws()
    cur.expect(")", f"',' or ')' in the select list of '{relation}'")
    cur.depth -= 1
    return SelectEmbed(relation, items, alias=alias, hint=hint, inner=inner, spread=spread)


def _select_item(cur: _Cursor) -> SelectItem:
    cur.skip_ws()
    if cur.eat("..."):
        return _embed(cur, field_name(cur), None, spread=True)
    if cur.eat("*"):
        return SelectStar()
    name = field_name(cur)
    alias: str | None = None
    if cur.startswith(":") and not cur.startswith("::"):
        cur.pos += 1
        cur.skip_ws()
        alias, name = name, field_name(cur)
    cur.skip_ws()
    if name == "count" and cur.startswith("()"):  # ``count()``: the rows themselves
        cur.pos += 2
        return SelectColumn(FieldRef(COUNT_ROWS), alias, None, "count", _cast(cur))
    if cur.peek() in ("!", "("):
        return _embed(cur, name, alias, spread=False)
    path = _json_path(cur)
    cast_type = _cast(cur)
    aggregate = _AGGREGATE.match(cur.text, cur.pos)
    if aggregate:
        cur.pos = aggregate.end()
        return SelectColumn(FieldRef(name, path), alias, cast_type, cast(AggregateName, aggregate[1]), _cast(cur))
    return SelectColumn(FieldRef(name, path), alias, cast_type)


def _cast(cur: _Cursor) -> str | None:
    """An optional ``::type``."""
    if not cur.eat("::"):
        return None
    cast_type = cur.take(_CAST).strip()
    if not cast_type:
        raise cur.error("expected a type name after '::'")
    return cast_type


def _select_list(cur: _Cursor) -> tuple[SelectItem, ...]:
    cur.skip_ws()
    if cur.peek() == ")":
        return ()  # ``clients()``: embedded for filtering only, adds no key
    items = [_select_item(cur)]
    cur.skip_ws()
    while cur.eat(","):
        items.append(_select_item(cur))
        cur.skip_ws()
    return tuple(items)


def parse_select(text: str) -> tuple[SelectItem, ...]:
    """The ``select`` grammar (§3); absent or blank means ``*``."""
    if not text.strip():
        return STAR
    cur = _Cursor(text, describe("select", text))
    items = _select_list(cur)
    cur.finish()
    return items


# --------------------------------------------------------------------------- order


def _order_term(cur: _Cursor) -> Order:
    cur.skip_ws()
    name = field_name(cur)
    relation: str | None = None
    if cur.eat("("):
        cur.skip_ws()
        relation, field = name, _field(cur)
        cur.skip_ws()
        cur.expect(")", f"')' after the column of '{relation}'")
    else:
        field = FieldRef(name, _json_path(cur))
    direction: Literal["asc", "desc"] | None = None
    nulls: Literal["first", "last"] | None = None
    while cur.eat("."):
        word = cur.take(_WORD)
        if word in _DIRECTIONS and direction is None and nulls is None:
            direction = _DIRECTIONS[word]
        elif word in _NULLS and nulls is None:
            nulls = _NULLS[word]
        else:
            raise cur.error(f"unexpected order option '{word}' (use asc, desc, nullsfirst, nullslast)")
    cur.skip_ws()
    return Order(field, direction, nulls, relation)


def parse_order(text: str) -> tuple[Order, ...]:
    """``col[.asc|.desc][.nullsfirst|.nullslast]`` and ``rel(col).desc``, comma-separated (§4)."""
    cur = _Cursor(text, describe("order", text))
    terms = [_order_term(cur)]
    while cur.eat(","):
        terms.append(_order_term(cur))
    cur.finish()
    return tuple(terms)
