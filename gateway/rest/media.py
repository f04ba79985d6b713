"""Content negotiation: the Accept header(s) in, the response media the request gets out.

In:  every ``Accept`` header value of a request.
Out: ``Media``: the body's shape (JSON array, single object, CSV), whether null fields are
     stripped (``;nulls=stripped``) and, for ``application/vnd.pgrst.plan``, what EXPLAIN is
     wanted (format, the explained media from ``for="..."``, ``options=analyze|...``).

Ranges are tried by q-value, then in order (postgrest-semantics §8); none producible is 406
PGRST107. Pure: no catalog, no database.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gateway import errors

AcceptKind = Literal["json", "object", "csv"]

# media ranges the gateway can produce; parameters other than ``nulls=stripped`` are ignored
_MEDIA: dict[str, AcceptKind] = {
    "*/*": "json", "application/*": "json", "application/json": "json",
    "application/vnd.pgrst.array+json": "json",
    "application/vnd.pgrst.object+json": "object", "application/vnd.pgrst.object": "object",
    "text/csv": "csv",
}
# the media types that take ``;nulls=stripped`` (object keys whose value is null left out)
_STRIPPABLE = ("application/vnd.pgrst.array+json", "application/vnd.pgrst.object+json")


# the plan media types (EXPLAIN of the request's statement) and the format each asks for
_PLAN_MEDIA: dict[str, Literal["json", "text"]] = {
    "application/vnd.pgrst.plan": "text", "application/vnd.pgrst.plan+text": "text",
    "application/vnd.pgrst.plan+json": "json",
}
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")


@dataclass(frozen=True)
class PlanMedia:
    """``Accept: application/vnd.pgrst.plan+json; for="..."; options=analyze|verbose``."""

    format: Literal["json", "text"]  # EXPLAIN's FORMAT
    for_media: str  # the media type the explained request would answer with
    options: tuple[str, ...]  # EXPLAIN options from PLAN_OPTIONS, in that order


@dataclass(frozen=True)
class Media:
    """The negotiated response media."""

    kind: AcceptKind  # the body's shape (for a plan: the shape of the explained request)
    strip_nulls: bool = False  # ``;nulls=stripped``
    plan: PlanMedia | None = None  # the EXPLAIN output is wanted instead of the body


def negotiate(values: Sequence[str]) -> AcceptKind:
    """The best producible media type of the Accept header(s), by q-value then order (§8)."""
    return negotiate_media(values).kind


def _plan_media(mime: str, params: dict[str, str]) -> Media:
    wanted = params.get("for", "application/json").strip('"').lower()
    kind = _MEDIA.get(wanted)
    if kind is None:
        raise errors.postgrest(406, "PGRST107", f"None of these media types are available: {mime}; for={wanted}")
    options = {o.strip().lower() for o in params.get("options", "").split("|") if o.strip()}
    unknown = options - set(PLAN_OPTIONS)
    if unknown:
        raise errors.invalid_query(f"Unknown plan options: {', '.join(sorted(unknown))}",
                                   hint=f"Use any of {'|'.join(PLAN_OPTIONS)}")
    plan = PlanMedia(_PLAN_MEDIA[mime], wanted, tuple(o for o in PLAN_OPTIONS if o in options))
    return Media(kind, False, plan)


def negotiate_media(values: Sequence[str]) -> Media:
    """``negotiate``, whether the chosen range asks for ``nulls=stripped``, and a plan request."""
    ranges: list[tuple[float, int, str, dict[str, str]]] = []
    for position, item in enumerate(_split_accept(",".join(values))):
        mime, *params = (p.strip() for p in item.split(";"))
        quality = 1.0
        named: dict[str, str] = {}
        for param in params:
            name, _, value = param.partition("=")
            name, value = name.strip().lower(), value.strip()
            if name == "q" and re.fullmatch(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?", value):
                quality = float(value)
            elif name:
                named[name] = value
        if mime:
            ranges.append((-quality, position, mime.lower(), named))
    if not ranges:
        return Media("json")
    for quality, _, mime, named in sorted(ranges, key=lambda r: (r[0], r[1])):
        if quality < 0 and mime in _PLAN_MEDIA:
            return _plan_media(mime, named)
        if quality < 0 and mime in _MEDIA:
            return Media(_MEDIA[mime], named.get("nulls", "").lower() == "stripped" and mime in _STRIPPABLE)
    offered = ", ".join(mime for _, _, mime, _ in ranges)
    raise errors.postgrest(406, "PGRST107", f"None of these media types are available: {offered}")


def _split_accept(text: str) -> list[str]:
    """The media ranges of an Accept value: commas split them, except inside a quoted parameter."""
    return [m[0] for m in re.finditer(r'(?:[^,"]|"[^"]*")+', text)]
