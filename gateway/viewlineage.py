"""View column lineage: a view's stored query tree in, the base column behind each view column out.

In:  ``pg_rewrite.ev_action`` as text — PostgreSQL's node-tree serialization of the view's
     ``_RETURN`` rule — and the view's own column names.
Out: ``{view column: (relation oid, attribute number)}`` for the columns that are a plain
     reference to a column of a table or view in the view's FROM (PostgreSQL records it on each
     output as ``resorigtbl``/``resorigcol``); computed columns are left out.

This is how PostgREST infers the relationships of views (resource embedding, "Embedding Views"):
a view column that is a base table's FK column carries that FK. The serialization is read with the
tokenizer rules of PostgreSQL's ``read.c`` (``pg_strtok``): tokens are split at whitespace and at
``(``, ``)``, ``{``, ``}``, and a backslash makes the next character part of the token.
"""

from __future__ import annotations

from typing import Any

_DELIMITERS = frozenset("(){}")
_BLANK = frozenset(" \t\n\r")


def tokens(text: str) -> list[str]:
    """``pg_strtok``'s tokens (backslashes removed; ``<>`` stays the null token)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _BLANK:
            i += 1
            continue
        if ch in _DELIMITERS:
            out.append(ch)
            i += 1
            continue
        chars: list[str] = []
        while i < n and text[i] not in _BLANK and text[i] not in _DELIMITERS:
            if text[i] == "\\" and i + 1 < n:
                i += 1
            chars.append(text[i])
            i += 1
        out.append("".join(chars))
    return out


def _value(toks: list[str], pos: int) -> tuple[Any, int]:
    """One value at ``pos``: a node (dict with its type under ``""``), a list, or scalar tokens."""
    tok = toks[pos]
    if tok == "{":
        node: dict[str, Any] = {"": toks[pos + 1]}
        pos += 2
        while toks[pos] != "}":
            field = toks[pos][1:]
            pos += 1
            if toks[pos] in ("{", "("):
                node[field], pos = _value(toks, pos)
            else:  # a scalar, or several tokens (``:constvalue 4 [ 1 0 0 0 ]``) up to the next field
                start = pos
                while not toks[pos].startswith(":") and toks[pos] != "}":
                    pos += 1
                node[field] = toks[start] if pos - start == 1 else toks[start:pos]
        return node, pos + 1
    if tok == "(":
        items: list[Any] = []
        pos += 1
        while toks[pos] != ")":
            item, pos = _value(toks, pos)
            items.append(item)
        return items, pos + 1
    return tok, pos + 1


def parse_node_tree(text: str) -> Any:
    toks = tokens(text)
    value, _ = _value(toks, 0)
    return value


def column_origins(ev_action: str) -> dict[str, tuple[int, int]]:
    """View column name -> (relation oid, attnum) for the view's plain column references."""
    tree = parse_node_tree(ev_action)
    query = tree[0] if isinstance(tree, list) and tree else tree
    if not isinstance(query, dict):
        return {}
    out: dict[str, tuple[int, int]] = {}
    for entry in query.get("targetList") or ():
        if not isinstance(entry, dict) or entry.get("resjunk") == "true":
            continue
        name, table, column = entry.get("resname"), entry.get("resorigtbl"), entry.get("resorigcol")
        if isinstance(name, str) and isinstance(table, str) and isinstance(column, str) \
                and table.isdigit() and column.isdigit() and int(table) and int(column):
            out.setdefault(name, (int(table), int(column)))
    return out
