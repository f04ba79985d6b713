// Records browser: one table's rows through the REST API — filters with the spec's operators, sort,
// page size, the total from X-Total-Count — and editing by primary key: a cell, a new row, a deletion.
// Refusals show the API's error body as it came.

import {deleteRows, insertRow, records, updateRows} from "./api.js";
import {errorBox, fill, h, valueNode, valueText} from "./dom.js";

export const OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "is"];
const PAGE_SIZES = [10, 25, 50, 100, 250];
const saved = new Map(); // "schema.table" -> browsing state, kept while the tab lives

// A column name as PostgREST's order parameter reads it (quoted when it holds its punctuation).
const orderName = (name) => (/^[\w$ ]+$/.test(name) ? name : `"${name.replace(/(["\\])/g, "\\$1")}"`);

// The text typed into an editor, as the JSON value the column's type wants.
export function convert(text, column) {
  const type = column.type.toLowerCase();
  if (type.endsWith("[]") || type === "json" || type === "jsonb") {
    try { return JSON.parse(text); } catch {
      throw new Error(`${column.name}: enter JSON (${type === "json" || type === "jsonb" ? "any value" : "an array"})`);
    }
  }
  if (type === "boolean") {
    if (/^(true|t|yes|y|on|1)$/i.test(text.trim())) return true;
    if (/^(false|f|no|n|off|0)$/i.test(text.trim())) return false;
  }
  if (["smallint", "integer", "real", "double precision"].includes(type) && text.trim() !== "" && !isNaN(Number(text))) {
    return Number(text);
  }
  return text; // bigint and numeric stay text so no digit is lost; PostgreSQL casts
}

function filterParam(f) {
  let value = f.value;
  if (f.op === "in" && !/^\(.*\)$/.test(value.trim())) value = `(${value})`;
  return [f.column, `${f.not ? "not." : ""}${f.op}.${value}`];
}

export function render(container, rel) {
  const key = `${rel.schema}.${rel.name}`;
  const st = saved.get(key) || {filters: [], order: null, limit: 25, offset: 0};
  saved.set(key, st);
  const pk = rel.columns.filter((c) => c.isPrimaryKey).map((c) => c.name);
  const editable = rel.kind === "table" || rel.kind === "partitioned_table" ? pk.length > 0 : false;
  // unsorted pages follow the primary key, so paging is stable and an edited row keeps its place
  const defaultOrder = pk.length ? pk.map((name) => `${orderName(name)}.asc`).join(",") : undefined;
  let rows = [];
  let total = null;
  let generation = 0;
  let alive = true;

  const message = h("div.messages", {"aria-live": "polite"});
  const grid = h("div.grid");
  const pager = h("div.pager");
  const filtersList = h("div.filter-rows");
  const insertArea = h("div");

  const say = (...nodes) => fill(message, ...nodes);
  const problem = (err) => fill(message, errorBox(err));

  async function load() {
    const mine = ++generation;
    grid.setAttribute("aria-busy", "true");
    try {
      const page = await records(rel.schema, rel.name, {filters: st.filters.filter((f) => f.column).map(filterParam),
        order: st.order ? `${orderName(st.order.column)}.${st.order.dir}` : defaultOrder, limit: st.limit,
        offset: st.offset});
      if (!alive || mine !== generation) return;
      rows = page.rows;
      total = page.total;
      drawGrid();
    } catch (err) {
      if (!alive || mine !== generation) return;
      rows = [];
      total = null;
      drawGrid();
      problem(err);
    } finally {
      grid.removeAttribute("aria-busy");
    }
  }

  // ------------------------------------------------------------------ filters
  function filterRow(f) {
    const column = h("select", {"aria-label": "Filter column", onChange: () => { f.column = column.value; }},
      rel.columns.map((c) => h("option", {value: c.name, selected: c.name === f.column}, c.name)));
    const op = h("select", {"aria-label": "Operator", onChange: () => { f.op = op.value; }},
      OPERATORS.map((o) => h("option", {value: o, selected: o === f.op}, o)));
    const value = h("input", {type: "text", value: f.value, "aria-label": "Filter value",
      placeholder: "value", onInput: () => { f.value = value.value; }});
    const not = h("input", {type: "checkbox", checked: f.not, onChange: () => { f.not = not.checked; }});
    return h("div.filter-row",
      column, h("label.inline", not, " not"), op, value,
      h("button.small", {type: "button", "aria-label": "Remove filter", onClick: () => {
        st.filters.splice(st.filters.indexOf(f), 1);
        drawFilters();
      }}, "✕"));
  }

  function drawFilters() {
    fill(filtersList, st.filters.map(filterRow));
  }

  const filterForm = h("form.filters", {"aria-label": "Filters", onSubmit: (e) => {
    e.preventDefault();
    st.offset = 0;
    say();
    load();
  }},
  filtersList,
  h("div.toolbar",
    h("button", {type: "button", onClick: () => {
      st.filters.push({column: rel.columns[0].name, op: "eq", value: "", not: false});
      drawFilters();
      const inputs = filtersList.querySelectorAll("select");
      if (inputs.length) inputs[inputs.length - 2].focus();
    }}, "Add filter"),
    h("button.primary", {type: "submit"}, "Apply"),
    h("label.inline", "Rows per page ",
      h("select", {"aria-label": "Rows per page", onChange: (e) => {
        st.limit = Number(e.target.value);
        st.offset = 0;
        load();
      }}, PAGE_SIZES.map((n) => h("option", {value: n, selected: n === st.limit}, String(n))))),
    editable ? h("button", {type: "button", onClick: () => drawInsert()}, "Insert row") : null,
    h("button", {type: "button", onClick: () => { say(); load(); }}, "Refresh")));

  // ------------------------------------------------------------------ grid
  function sortButton(c) {
    const on = st.order && st.order.column === c.name ? st.order.dir : null;
    return h("button.sort", {type: "button", "aria-label": `Sort by ${c.name}`, title: `Sort by ${c.name}`, onClick: () => {
      st.order = on === null ? {column: c.name, dir: "asc"} : on === "asc" ? {column: c.name, dir: "desc"} : null;
      st.offset = 0;
      load();
    }}, h("span", c.name), h("span.arrow", {"aria-hidden": "true"}, on === "asc" ? "▲" : on === "desc" ? "▼" : ""));
  }

  const pkFilters = (row) => pk.map((name) => [name, `eq.${valueText(row[name])}`]);
  const pkLabel = (row) => pk.map((name) => `${name}=${valueText(row[name])}`).join(", ");

  function cell(row, c) {
    const td = h("td", {"data-column": c.name});
    const show = () => fill(td, editable && !c.isGenerated
      ? h("button.cell", {type: "button", title: `Edit ${c.name}`, onClick: () => edit()}, valueNode(row[c.name]))
      : valueNode(row[c.name]));
    const edit = () => {
      const current = valueText(row[c.name]);
      const input = h("input", {type: "text", value: current ?? "", "aria-label": `New value for ${c.name}`});
      const isNull = h("input", {type: "checkbox", checked: current === null});
      const save = async (e) => {
        e.preventDefault();
        let value;
        try { value = isNull.checked ? null : convert(input.value, c); } catch (err) { problem(err); return; }
        try {
          const changed = await updateRows(rel.schema, rel.name, pkFilters(row), {[c.name]: value});
          if (!Array.isArray(changed) || !changed.length) {
            problem(new Error("No row was changed: it is gone, or a policy hides it."));
            return;
          }
          Object.assign(row, changed[0]);
          say(h("p.ok", `Saved ${c.name} of the row ${pkLabel(row)}.`));
          show();
          td.querySelector("button").focus();
        } catch (err) {
          problem(err);
        }
      };
      fill(td, h("form.cell-editor", {onSubmit: save, onKeydown: (e) => {
        if (e.key === "Escape") { show(); td.querySelector("button").focus(); }
      }},
      input,
      c.nullable ? h("label.inline", isNull, " NULL") : null,
      h("button.small.primary", {type: "submit"}, "Save"),
      h("button.small", {type: "button", onClick: () => { show(); td.querySelector("button").focus(); }}, "Cancel")));
      input.focus();
      input.select();
    };
    show();
    return td;
  }

  function actions(row) {
    const td = h("td.actions");
    const ask = () => fill(td, h("button.small.danger", {type: "button", "aria-label": `Delete the row ${pkLabel(row)}`,
      onClick: () => confirm()}, "Delete"));
    const confirm = () => {
      fill(td,
        h("button.small.danger", {type: "button", onClick: async () => {
          try {
            const gone = await deleteRows(rel.schema, rel.name, pkFilters(row));
            say(h("p.ok", `Deleted ${Array.isArray(gone) ? gone.length : 0} row(s): ${pkLabel(row)}.`));
            load();
          } catch (err) {
            problem(err);
            ask();
          }
        }}, "Confirm delete"),
        h("button.small", {type: "button", onClick: () => ask()}, "Keep"));
      td.querySelector("button").focus();
    };
    ask();
    return td;
  }

  function drawGrid() {
    const head = h("tr", editable ? h("th", {scope: "col"}, h("span.sr-only", "Actions")) : null,
      rel.columns.map((c) => h("th", {scope: "col", "aria-sort": st.order && st.order.column === c.name
        ? (st.order.dir === "asc" ? "ascending" : "descending") : null}, sortButton(c))));
    const body = rows.map((row) => h("tr", editable ? actions(row) : null, rel.columns.map((c) => cell(row, c))));
    fill(grid, rows.length
      ? h("div.scroll", {tabindex: "0", role: "region", "aria-label": `Rows of ${rel.name}`},
        h("table.records", h("thead", head), h("tbody", body)))
      : h("p.muted", "No rows match."));
    const first = rows.length ? st.offset + 1 : 0;
    const last = st.offset + rows.length;
    fill(pager,
      h("span.total", total === 0 ? "0 rows" : total === null ? `Rows ${first}-${last}`
        : `Rows ${first}-${last} of ${total}`),
      h("button", {type: "button", disabled: st.offset === 0, onClick: () => {
        st.offset = Math.max(0, st.offset - st.limit);
        load();
      }}, "Previous"),
      h("button", {type: "button", disabled: total !== null ? last >= total : rows.length < st.limit, onClick: () => {
        st.offset += st.limit;
        load();
      }}, "Next"));
    if (!editable) {
      pager.append(h("span.muted", pk.length ? " Views are read here, not edited." : " No primary key: read only."));
    }
  }

  // ------------------------------------------------------------------ insert
  function drawInsert() {
    const inputs = rel.columns.filter((c) => !c.isGenerated).map((c) => [c, h("input", {type: "text",
      id: `new-${c.name}`, name: c.name, placeholder: c.isIdentity ? "generated"
        : c.default ? `default: ${c.default}` : c.nullable ? "NULL" : "required"})]);
    const result = h("div");
    fill(insertArea, h("form.insert", {"aria-label": "Insert a row", onSubmit: async (e) => {
      e.preventDefault();
      const row = {};
      try {
        for (const [c, input] of inputs) if (input.value !== "") row[c.name] = convert(input.value, c);
      } catch (err) { fill(result, errorBox(err)); return; }
      try {
        const made = await insertRow(rel.schema, rel.name, row);
        fill(insertArea);
        say(h("p.ok", `Inserted ${Array.isArray(made) ? made.length : 1} row.`));
        load();
      } catch (err) {
        fill(result, errorBox(err));
      }
    }},
    h("h2", "New row"),
    h("p.muted", "Leave a field empty for its default (or NULL)."),
    h("div.fields", inputs.map(([c, input]) => h("div.field",
      h("label", {for: `new-${c.name}`}, c.name, " ", h("span.muted", c.type)), input))),
    h("div.toolbar", h("button.primary", {type: "submit"}, "Insert"),
      h("button", {type: "button", onClick: () => fill(insertArea)}, "Cancel")),
    result));
    inputs[0][1].focus();
  }

  fill(container, h("h2.sr-only", "Records"), filterForm, insertArea, message, grid, pager);
  drawFilters();
  load();
  return () => { alive = false; };
}
