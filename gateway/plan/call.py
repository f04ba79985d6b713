"""The call planner: a function call (RPC) resolved against the catalog's functions.

In:  a ``request.Call`` (arguments by name, plus select/filters/order/page for row results).
Out: a ``plan.nodes.CallPlan``: the chosen overload, the arguments as one JSON parameter, the
     result kind (scalar, set of scalars, row, set of rows, void) and, for row results, the
     ``Rel`` that shapes them like a table read.

Overloads are chosen by argument names (postgrest-semantics §10): required parameters present,
optional ones may be omitted, an unknown key means no match (404 PGRST202); ties are broken by
exact names, then by the JSON values' types; a tie after that is 300 PGRST203. A function with
one unnamed json/jsonb parameter takes the body; ``{"": value}`` fills a single unnamed parameter
of any type.
"""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import Any, Literal

from .. import errors, jsonbody
from .. import request as rq
from ..catalog import Column, Function, FunctionArg, Table
from .nodes import UNNAMED, CallPlan, TotalMode
from .read import Planner
from .values import check_body_value

CallKind = Literal["scalar", "setof_scalar", "row", "setof_row", "void"]


class CallPlanner(Planner):
    def call(self, req: rq.Call) -> CallPlan:
        schema = self.schema(req.target)
        fn, args, whole_body = self.resolve_function(req, schema)
        arg_specs = tuple((a.name, a.type, a.mode == "variadic") for a in fn.input_args if a.name in args)
        if not whole_body and "" in args:  # ``{"": value}``: a record column needs a name
            args = {(UNNAMED if k == "" else k): v for k, v in args.items()}
        payload = self.param(jsonbody.dumps(req.raw_body if whole_body else args))
        kind = _kind(fn)
        if req.max_affected is not None and not fn.returns_set:
            # the affected rows of a call are the rows of its result set: a single value has none to count
            raise errors.invalid_query(
                "Function must return SETOF or TABLE when max-affected preference is used with handling=strict",
                code="PGRST128", details=f"'{fn.name}' returns {fn.return_type}")
        returning = None
        lim_p = off_p = None
        total: TotalMode = "none"
        if kind in ("row", "setof_row"):
            rtable = self.function_row_table(fn)
            limit, offset = self.page(req.limit, req.offset, default=False)
            lim_p = self.param(limit) if limit is not None else None
            off_p = self.param(offset)
            returning = self.rel(rtable, "t0", req.select, req.where, req.order, limit, offset, source="cte")
            total = "auto" if req.count else "none"
        elif req.where or req.order:
            raise errors.invalid_query(
                f"Function '{fn.name}' returns {fn.return_type}: filters and order apply only to rows")
        return CallPlan(fn.schema, fn.name, arg_specs, payload, kind, returning, whole_body=whole_body,
                        scalar_type=fn.return_type.removeprefix("SETOF "), single=req.single or kind == "row",
                        total=total, limit_value=lim_p, offset_value=off_p)

    def function_row_table(self, fn: Function) -> Table:
        """The row type of a row-returning function as a Table (for select/filter/order/embeds)."""
        if fn.return_table and fn.return_table in self.catalog.tables:
            return self.catalog.tables[fn.return_table]
        return Table(fn.schema, fn.name, "view", fn.return_columns)

    def resolve_function(self, req: rq.Call, schema: str) -> tuple[Function, dict[str, Any], bool]:
        """(function, arguments by name, whether the whole body is its one json argument).

        PostgREST's rule: a candidate takes every given key as a parameter name, and its
        required parameters are all given (a single unnamed parameter is named ``""``). When
        several candidates remain, the one whose parameters are exactly the given names wins,
        then the one whose parameter types fit the JSON values' types; a tie after both, or a
        winner PostgreSQL could not tell from another overload taking the same arguments with
        the same types, is 300 PGRST203. Nothing matching is 404 PGRST202.
        """
        overloads = tuple(fn for fn in self.catalog.function(req.target.name, schema) if fn.api_callable)
        if not overloads:
            names = [n for (s, n), fns in self.catalog.functions.items()
                     if s == schema and any(f.api_callable for f in fns)]
            close = difflib.get_close_matches(req.target.name, names, n=1)
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
                req.target.name, details=f"Searched for '{req.target.name}' with parameters "
                f"({', '.join(sorted(given))}) or with a single unnamed json/jsonb parameter, but no overload "
                "matches" if given else "No overload without required parameters has this name")
        candidates = matches
        for narrow in (_exact_names, _fitting_types):
            if len(matches) > 1:
                matches = narrow(matches, given, req.args_from_query) or matches
        # PostgreSQL itself cannot choose between overloads that take the given arguments with the
        # same types (one only adds defaulted parameters): that stays ambiguous whatever the names say
        if len(matches) == 1 and sum(_signature(f, given) == _signature(matches[0], given) for f in candidates) > 1:
            matches = candidates
        if len(matches) > 1:
            raise errors.postgrest(300, "PGRST203", f"Could not choose the best candidate function for "
                                   f"'{req.target.name}'", details=", ".join(
                                       f"{f.name}({f.arguments_text})" for f in matches),
                                   hint="Rename or drop one of the overloaded functions")
        fn = matches[0]
        for a in fn.input_args:  # check JSON body values against argument types
            if a.name in given and not req.args_from_query:
                check_body_value(Column(a.name, a.type, a.udt, a.category, a.type.endswith("[]")), given[a.name])
        return fn, given, False


def _accepts(fn: Function, given: set[str]) -> bool:
    inputs = [a.name for a in fn.input_args]
    if inputs.count("") > 1 and "" in given:
        return False  # several unnamed parameters cannot be told apart by a name
    required = {a.name for a in fn.input_args if not a.has_default}
    return given <= set(inputs) and required <= given


def _signature(fn: Function, given: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(f"{a.name}:{a.type}" for a in fn.input_args if a.name in given))


def _exact_names(fns: list[Function], given: dict[str, Any], _from_query: bool) -> list[Function]:
    return [fn for fn in fns if {a.name for a in fn.input_args} == set(given)]


# JSON value type -> the parameter families it fills without a conversion (json takes them all)
_NATURAL: dict[type, tuple[str, ...]] = {
    bool: ("bool",),
    int: ("int", "bigint", "float", "numeric"),
    float: ("float", "numeric"),
    Decimal: ("float", "numeric"),
    str: ("text", "uuid", "date", "time", "timestamp", "timestamptz", "interval", "enum", "bytea", "tsvector",
          "range", "other"),
}


def _fits(arg: FunctionArg, value: Any) -> bool:
    if value is None or arg.category == "json":
        return True
    if isinstance(value, list):
        return arg.type.endswith("[]")
    if isinstance(value, dict) or arg.type.endswith("[]"):
        return False
    return arg.category in _NATURAL.get(type(value), ())


def _fitting_types(fns: list[Function], given: dict[str, Any], from_query: bool) -> list[Function]:
    if from_query:
        return []  # query-string values are all text: their types tell nothing
    return [fn for fn in fns if all(_fits(a, given[a.name]) for a in fn.input_args if a.name in given)]


def _kind(fn: Function) -> CallKind:
    if fn.return_kind == "void":
        return "void"
    if fn.return_kind == "scalar":
        return "setof_scalar" if fn.returns_set else "scalar"
    return "setof_row" if fn.returns_set else "row"
