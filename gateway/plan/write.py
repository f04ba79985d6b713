"""The write planner: inserts, upserts, PUT, updates and deletes resolved against the catalog.

In:  ``request.Insert`` / ``Update`` / ``Delete`` and the ``Catalog``.
Out: a ``plan.nodes.WritePlan`` whose payload is one JSON parameter (the rows), plus the
     ``Rel`` that shapes the returned representation.

Body keys are checked here: an unknown key is 400 VALIDATION_ERROR naming it (an unknown
``columns=`` name is INVALID_QUERY: it is part of the query string), a value that cannot be
stored in its column is 400 naming the field, and ``""`` is dropped for columns that are not
text-like (InsForge's rule), so such a column takes its default.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from .. import errors, jsonbody
from .. import request as rq
from ..catalog import Column, Table
from .nodes import Rel, WritePlan
from .read import Planner
from .values import check_body_value


class WritePlanner(Planner):
    def returning(self, table: Table, select: Sequence[rq.SelectItem], wanted: bool) -> Rel | None:
        """The rows a write returns, shaped by ``select``; the same for every write of that shape, so
        it is planned once per catalog snapshot (the catalog's memo)."""
        if not wanted:
            return None
        key = ("returning", table.key, tuple(select))
        found: Rel | None = self.catalog.memo.get(key)
        if found is None:
            found = self.catalog.memo[key] = self.rel(table, "t0", select, (), (), None, None, source="cte")
        return found

    def writable(self, table: Table, verb: str) -> None:
        allowed = {"insert": table.insertable, "update": table.updatable, "delete": table.deletable}[verb]
        if not allowed:
            raise errors.postgrest(405, "PGRST117", f"Cannot {verb} into '{table.name}': it is not {verb}able")

    def body_columns(self, table: Table, keys: Sequence[str], from_query: bool = False) -> tuple[str, ...]:
        for k in keys:
            if table.column(k) is None:
                close = difflib.get_close_matches(k, [c.name for c in table.columns], n=1)
                message = f"Column '{k}' of table '{table.name}' does not exist" + (
                    f". Did you mean '{close[0]}'?" if close else "")
                if from_query:
                    raise errors.invalid_query(message, code="PGRST204")
                raise errors.validation_error(message, code="PGRST204")
        return tuple(keys)

    def clean_row(self, table: Table, row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
        """Check each value against its column type; drop "" for columns that are not text-like."""
        out: dict[str, Any] = {}
        for name in columns:
            if name not in row:
                continue
            value = row[name]
            col = table.column_map[name]
            if value == "" and not _text_like(col):
                continue
            check_body_value(col, value)
            out[name] = value
        return out

    def insert(self, req: rq.Insert) -> WritePlan:
        table = self.table(req.target)
        self.writable(table, "insert")
        if req.columns is not None:
            columns = self.body_columns(table, req.columns, from_query=True)
        else:
            keys: dict[str, None] = {}
            for row in req.rows:
                keys.update(dict.fromkeys(row))
            columns = self.body_columns(table, list(keys))
        rows = [self.clean_row(table, r, columns) for r in req.rows]
        if req.put:
            self.check_put(table, req, rows)
        # "" values dropped for non-text columns leave those columns to their defaults
        present: dict[str, None] = {}
        for r in rows:
            present.update(dict.fromkeys(r))
        columns = tuple(c for c in columns if c in present)
        generated = [c for c in columns if table.column_map[c].is_generated]
        if generated:
            raise errors.validation_error(f"Column '{generated[0]}' is generated and cannot be written",
                                          code="428C9")
        on_conflict: tuple[str, ...] | None = None
        action: Literal["update", "nothing"] | None = None
        update_cols: tuple[str, ...] = ()
        if req.resolution or req.put:
            on_conflict = self.conflict_target(table, req.on_conflict, columns)
            action = "nothing" if req.resolution == "ignore-duplicates" else "update"
            chosen = req.update_columns if req.update_columns is not None else columns
            update_cols = tuple(c for c in self.body_columns(table, chosen) if c not in on_conflict)
            if action == "update" and not update_cols:
                # nothing to overwrite: a no-op update still returns (and counts) the existing row
                update_cols = on_conflict[:1]
        defaults: tuple[tuple[str, str], ...] = ()
        if req.missing_default:
            # an absent key takes the column DEFAULT; without missing=default it is NULL (PostgREST)
            defaults = tuple((c, sql) for c in columns if (sql := default_sql(table, table.column_map[c])))
        if not columns:
            # rows of defaults only (``{}``): write one column, always from its default
            column = _default_column(table)
            columns, defaults = (column.name,), ((column.name, default_sql(table, column) or "NULL"),)
        payload = self.param(jsonbody.dumps(rows))
        returning = self.returning(table, req.returning, req.return_rows or req.single)
        return WritePlan("insert", table.schema, table.name, columns, payload, (), on_conflict, action,
                         update_cols, defaults, returning, req.single, count_inserted=bool(req.resolution))

    def conflict_target(self, table: Table, named: Sequence[str] | None, columns: Sequence[str]) -> tuple[str, ...]:
        """``on_conflict`` as given, else the PK when the body carries it, else a unique key it carries."""
        if named:
            for c in named:
                self.column(table, c)
            return tuple(named)
        keys = [table.primary_key, *table.unique] if table.primary_key else list(table.unique)
        cols = set(columns)
        for key in keys:
            if key and set(key) <= cols:
                return tuple(key)
        if table.primary_key:
            return table.primary_key
        raise errors.invalid_query(
            f"Upsert needs a unique key: '{table.name}' has no primary key or unique constraint the body covers",
            hint="Name the conflict columns with on_conflict=")

    def check_put(self, table: Table, req: rq.Insert, rows: Sequence[Mapping[str, Any]]) -> None:
        pk = set(table.primary_key)
        eqs = {f.field.name: f.value for f in req.put_filters
               if isinstance(f, rq.Filter) and f.op == "eq" and not f.negate and not f.field.json_path}
        if not pk or set(eqs) != pk or len(req.put_filters) != len(pk):
            raise errors.postgrest(405, "PGRST105",
                                   "Filters must include all and only primary key columns with 'eq' operators")
        if len(rows) != 1 or any(str(rows[0].get(k)) != str(v) for k, v in eqs.items()):
            raise errors.postgrest(400, "PGRST115", "Payload values do not match URL in primary key column(s)")

    def update(self, req: rq.Update) -> WritePlan:
        table = self.table(req.target)
        self.writable(table, "update")
        columns = self.body_columns(table, list(req.values))
        row = self.clean_row(table, req.values, columns)
        columns = tuple(c for c in columns if c in row)
        generated = [c for c in columns if table.column_map[c].is_generated]
        if generated:
            raise errors.validation_error(f"Column '{generated[0]}' is generated and cannot be written",
                                          code="428C9")
        operations = tuple((c, op) for c, op in req.operations if c in columns)
        for name, op in operations:
            col = table.column_map[name]
            fits = col.category in NUMERIC if op == "inc" else col.udt == "jsonb"
            if not fits or col.is_array:
                raise errors.validation_error(
                    f"Column '{name}' is not {'numeric' if op == 'inc' else 'jsonb'}, so {op} cannot apply to it",
                    code="42883")
        require_filter("UPDATE", table, req.where)  # after the body's own checks, which say more
        payload = self.param(jsonbody.dumps(row))
        where = tuple(self.condition(table, "t0", c, {}) for c in req.where)
        returning = self.returning(table, req.returning, req.return_rows or req.single)
        return WritePlan("update", table.schema, table.name, columns, payload, where,
                         returning=returning, single=req.single, operations=operations)

    def delete(self, req: rq.Delete) -> WritePlan:
        table = self.table(req.target)
        self.writable(table, "delete")
        require_filter("DELETE", table, req.where)
        where = tuple(self.condition(table, "t0", c, {}) for c in req.where)
        returning = self.returning(table, req.returning, req.return_rows or req.single)
        return WritePlan("delete", table.schema, table.name, (), None, where, returning=returning,
                         single=req.single)


def require_filter(verb: str, table: Table, where: Sequence[rq.Condition]) -> None:
    """No UPDATE or DELETE without a filter, for every role (pg-safeupdate's rule, decided here so
    REST PATCH/DELETE and GraphQL update_*/delete_* agree; a GraphQL filter of ``{}`` or only nulls
    arrives with no conditions): a forgotten filter must not rewrite or empty a table. A filter that
    matches every row (``?id=not.is.null``) is an explicit choice and passes."""
    if where:
        return
    # a key column is never null (whatever a view's reflection says); else a NOT NULL column
    keys = [table.column_map[c] for c in table.primary_key if c in table.column_map]
    column = next(iter(keys + [c for c in table.columns if not c.nullable] + list(table.columns)), None)
    name = column.name if column is not None else "<column>"
    if column is None or column in keys or not column.nullable:
        rest, graphql = f"?{name}=not.is.null", f"filter: {{{name}: {{is: NOT_NULL}}}}"
    else:  # every row has a value or a null in it
        rest = f"?or=({name}.is.null,{name}.not.is.null)"
        graphql = f"filter: {{or: [{{{name}: {{is: NULL}}}}, {{{name}: {{is: NOT_NULL}}}}]}}"
    raise errors.unfiltered_write(verb, table.name, rest, graphql)


NUMERIC = frozenset({"int", "bigint", "float", "numeric"})  # categories an increment applies to
# text-like base types keep "" (insforge-behavior §7, last line); every other column drops it
TEXT_LIKE = frozenset({"text", "varchar", "bpchar", "char", "citext", "name"})


def _text_like(col: Column) -> bool:
    return not col.is_array and col.udt in TEXT_LIKE


def default_sql(table: Table, col: Column) -> str | None:
    """The SQL that produces ``col``'s default: its DEFAULT expression (catalog text), or the
    next identity value; None when the default is NULL."""
    if col.default is not None:
        return col.default
    if col.is_identity:
        return f"nextval(pg_get_serial_sequence(E'{_q(table.schema)}.{_q(table.name)}', E'{_lit(col.name)}'))"
    return None


def _q(name: str) -> str:
    """A double-quoted identifier inside an E'' literal (for pg_get_serial_sequence's text argument)."""
    return _lit('"' + name.replace('"', '""') + '"')


def _lit(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "''")


def _default_column(table: Table) -> Column:
    """The column a row of defaults writes: one with a DEFAULT, else an identity, else any writable one."""
    writable = [c for c in table.columns if not c.is_generated]
    for pick in (lambda c: c.default is not None, lambda c: c.is_identity, lambda c: True):
        found = [c for c in writable if pick(c)]
        if found:
            return found[0]
    raise errors.validation_error(f"Table '{table.name}' has no column a row of defaults could be written to")
