"""The planner: request model + catalog -> plan. Pure: no I/O, no SQL text.

In:  a ``request.Request`` (from either front end), the current ``Catalog`` and
     the ``Settings`` (limits).
Out: ``Planned(shape, params)``. ``shape`` is a hashable plan tree (``plan.nodes``) in
     which every caller-supplied value is a ``P`` slot; ``params`` holds the values, in
     slot order, already converted to what the SQL expects (text, text[], JSON text,
     int). Two requests that differ only in values have equal shapes, so ``sql/__init__.py``
     compiles each shape once.

The work is split by request kind: reads, embeds and filters in ``plan/read.py``,
writes in ``plan/write.py``, function calls in ``plan/call.py``; this module is the
one entry point and re-exports the plan nodes.
"""

from __future__ import annotations

from ..catalog import Catalog
from ..request import Call, Delete, Insert, Read, Request, Update
from ..settings import Settings
from .call import CallPlanner
from .nodes import (
    BoolPred,
    CallPlan,
    ColExpr,
    EmbedPred,
    Join,
    JsonKey,
    OrderTerm,
    OutColumn,
    OutEmbed,
    P,
    Planned,
    Pred,
    PredNode,
    ReadPlan,
    Rel,
    Shape,
    TotalMode,
    WritePlan,
)
from .read import OPERATOR_FAMILIES, unknown_column
from .write import WritePlanner

__all__ = [
    "OPERATOR_FAMILIES",
    "BoolPred",
    "CallPlan",
    "ColExpr",
    "EmbedPred",
    "Join",
    "JsonKey",
    "OrderTerm",
    "OutColumn",
    "OutEmbed",
    "P",
    "Planned",
    "Pred",
    "PredNode",
    "ReadPlan",
    "Rel",
    "Shape",
    "TotalMode",
    "WritePlan",
    "plan",
    "unknown_column",
]


class _Planner(WritePlanner, CallPlanner):
    """Every kind of request, sharing one parameter list and alias counter."""


def plan(req: Request, catalog: Catalog, settings: Settings) -> Planned:
    """Resolve ``req`` against ``catalog``; raise GatewayError for anything invalid."""
    planner = _Planner(catalog, settings)
    if isinstance(req, Read):
        shape: Shape = planner.read(req)
    elif isinstance(req, Insert):
        shape = planner.insert(req)
    elif isinstance(req, Update):
        shape = planner.update(req)
    elif isinstance(req, Delete):
        shape = planner.delete(req)
    else:
        assert isinstance(req, Call)
        shape = planner.call(req)
    return Planned(shape, planner.params)
