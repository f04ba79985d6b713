"""PostgreSQL's text forms of values that travel as one bound text parameter.

In:  Python values.
Out: their PostgreSQL input text (``array_literal``: ``{"a","b",NULL}``), which PostgreSQL
     parses itself; nothing here is ever spliced into SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def array_literal(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal ``{"a","b"}`` with every element quoted and escaped (None: NULL)."""
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
            continue
        s = str(v).lower() if isinstance(v, bool) else str(v)
        parts.append('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"
