"""The call planner: a function call (RPC) resolved against the catalog's functions.

In:  a ``request.Call`` (arguments by name, plus select/filters/order/page for row results).
Out: a ``plannodes.CallPlan``: the chosen overload, the arguments as one JSON parameter, the
     result kind (scalar, set of scalars, row, set of rows, void) and, for row results, the
     ``Rel`` that shapes them like a table read.

Overloads are chosen by argument names (postgrest-semantics §10): required parameters present,
optional ones may be omitted, an unknown key means no match (404 PGRST202); two equally good
candidates are 300 PGRST203. A function with one unnamed json/jsonb parameter takes the body.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from . import errors, jsonbody
from . import request as rq
from .catalog import Column, Function, Table
from .plannodes import CallPlan, TotalMode
from .planread import Planner
from .planvalues import check_body_value

CallKind = Literal["scalar", "setof_scalar", "row", "setof_row", "void"]


class CallPlanner(Planner):
    def call(self, req: rq.Call) -> CallPlan:
        schema = self.schema(req.target)
        fn, args, whole_body = self.resolve_function(req, schema)
        arg_specs = tuple((a.name, a.type, a.mode == "variadic") for a in fn.input_args if a.name in args)
        payload = self.param(jsonbody.dumps(req.raw_body if whole_body else args))
        kind = _kind(fn)
        returning = None
        lim_p = off_p = None
        total: TotalMode = "none"
        if kind in ("row", "setof_row"):
            rtable = self.function_row_table(fn)
            limit, offset = self.page(req.limit, req.offset, default=False)
            lim_p = self.param(limit) if limit is not None else None
            off_p = self.param(offset)
            returning = self.rel(rtable, "t0", req.select, req.where, req.order, lim_p, off_p, source="cte")
            total = "auto" if req.count else "none"
        elif req.where or req.order:
            raise errors.invalid_query(
                f"Function '{fn.name}' returns {fn.return_type}: filters and order apply only to rows")
        return CallPlan(fn.schema, fn.name, arg_specs, payload, kind, returning,
                        scalar_type=fn.return_type.removeprefix("SETOF "), single=req.single or kind == "row",
                        total=total, limit_value=lim_p, offset_value=off_p)

    def function_row_table(self, fn: Function) -> Table:
        """The row type of a row-returning function as a Table (for select/filter/order/embeds)."""
        if fn.return_table and fn.return_table in self.catalog.tables:
            return self.catalog.tables[fn.return_table]
        return Table(fn.schema, fn.name, "view", fn.return_columns)

    def resolve_function(self, req: rq.Call, schema: str) -> tuple[Function, dict[str, Any], bool]:
        """(function, arguments by name, whether the whole body is its one json argument)."""
        overloads = self.catalog.function(req.target.name, schema)
        if not overloads:
            close = difflib.get_close_matches(req.target.name, [n for (s, n) in self.catalog.functions
                                                                 if s == schema], n=1)
            raise errors.function_not_found(req.target.name, details=f"Did you mean '{close[0]}'?" if close else None)
        given = dict(req.args)
        matches = [fn for fn in overloads if _accepts(fn, set(given))]
        if not matches and req.raw_body is not None:
            for fn in overloads:  # one unnamed json/jsonb parameter takes the whole body
                ins = fn.input_args
                if len(ins) == 1 and ins[0].name == "" and ins[0].category == "json":
                    return fn, {"": req.raw_body}, True
        if not matches:
            raise errors.function_not_found(
                req.target.name, details=f"No function matches the arguments ({', '.join(sorted(given))})"
                if given else "No function without required arguments has this name")
        if len(matches) > 1:
            # prefer the overload whose parameters are exactly the given names
            exact = [fn for fn in matches if {a.name for a in fn.input_args} == set(given)]
            if len(exact) != 1:
                raise errors.postgrest(300, "PGRST203", f"Could not choose the best candidate function for "
                                       f"'{req.target.name}'", details=", ".join(
                                           f"{f.name}({f.arguments_text})" for f in matches),
                                       hint="Rename or drop one of the overloaded functions")
            matches = exact
        fn = matches[0]
        for a in fn.input_args:  # check JSON body values against argument types
            if a.name in given and not req.args_from_query:
                check_body_value(Column(a.name, a.type, a.udt, a.category, a.type.endswith("[]")), given[a.name])
        return fn, given, False


def _accepts(fn: Function, given: set[str]) -> bool:
    names = {a.name for a in fn.input_args}
    required = {a.name for a in fn.input_args if not a.has_default}
    return given <= names and required <= given


def _kind(fn: Function) -> CallKind:
    if fn.return_kind == "void":
        return "void"
    if fn.return_kind == "scalar":
        return "setof_scalar" if fn.returns_set else "scalar"
    return "setof_row" if fn.returns_set else "row"
