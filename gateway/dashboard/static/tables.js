// Tables view: the list of tables and views (left), and one table's structure or records (right).

import * as catalog from "./catalog.js";
import {badge, fill, h, table} from "./dom.js";
import * as records from "./records.js";

export const relHref = (schema, name, tab) =>
  `#/tables/${encodeURIComponent(schema)}/${encodeURIComponent(name)}${tab ? "/" + tab : ""}`;

const code = (text) => (text === null || text === undefined ? h("span.null", "—") : h("code", text));
const list = (items) => items.join(", ");

export function estimate(rel) {
  return rel.rowEstimate < 0 ? "not analysed" : `≈ ${Math.round(rel.rowEstimate).toLocaleString("en")}`;
}

export function rlsBadge(rel) {
  if (rel.kind !== "table" && rel.kind !== "partitioned_table") return null;
  return rel.rlsEnabled ? badge("RLS on", "ok") : badge("RLS off", "warn");
}

function sidebar(aside, current, filterText) {
  const c = catalog.state.catalog;
  const needle = filterText.toLowerCase();
  const shown = c.relations.filter((r) => r.name.toLowerCase().includes(needle));
  const schemas = [...new Set(shown.map((r) => r.schema))].sort();
  const lists = schemas.map((schema) => h("section",
    h("h2.schema", schema),
    h("ul.rel-list", shown.filter((r) => r.schema === schema).sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => h("li", h("a", {href: relHref(r.schema, r.name), "data-table": r.name,
        "aria-current": current && current.schema === r.schema && current.name === r.name ? "page" : null},
      h("span.rel-name", r.name), r.kind !== "table" ? badge(r.kind.replace("_", " "), "kind") : null,
      r.kind === "table" && !r.rlsEnabled ? h("span.dot.warn", {title: "RLS off"}, h("span.sr-only", " RLS off")) : null))))));
  fill(aside.querySelector(".rel-lists"), shown.length ? lists : h("p.muted", "No tables match."));
}

function overview(section) {
  const rels = catalog.state.catalog.relations;
  fill(section,
    h("h1", {tabindex: "-1"}, "Tables and views"),
    h("p.muted", `${rels.length} in the exposed schemas. Choose one to see its structure and records.`),
    table([
      {label: "Name", cell: (r) => h("a", {href: relHref(r.schema, r.name)}, r.name)},
      {label: "Schema", cell: (r) => r.schema},
      {label: "Kind", cell: (r) => r.kind.replace("_", " ")},
      {label: "RLS", cell: (r) => rlsBadge(r) || "—"},
      {label: "Rows", cell: (r) => estimate(r), className: "num"},
      {label: "Columns", cell: (r) => String(r.columns.length), className: "num"},
    ], rels, {caption: "Tables and views", empty: "No tables yet: create one with a migration."}));
}

function keysOf(rel, column) {
  const keys = [];
  if (column.isPrimaryKey) keys.push(badge("PK", "key"));
  if (column.isIdentity) keys.push(badge("identity", "key"));
  if (column.isGenerated) keys.push(badge("generated", "key"));
  if (rel.uniqueKeys.some((u) => u.length === 1 && u[0] === column.name)) keys.push(badge("unique", "key"));
  for (const fk of rel.foreignKeys) {
    const i = fk.columns.indexOf(column.name);
    if (i >= 0) {
      keys.push(h("a.badge.fk", {href: relHref(fk.referencedSchema, fk.referencedTable)},
        `→ ${fk.referencedTable}.${fk.referencedColumns[i]}`));
    }
  }
  return keys.length ? keys : "—";
}

function structure(rel) {
  return [
    h("h2", "Columns"),
    table([
      {label: "Name", cell: (c) => h("span.colname", c.name)},
      {label: "Type", cell: (c) => code(c.type)},
      {label: "Nullable", cell: (c) => (c.nullable ? "yes" : "not null")},
      {label: "Default", cell: (c) => code(c.default)},
      {label: "Keys", cell: (c) => keysOf(rel, c)},
    ], rel.columns, {caption: "Columns"}),
    rel.uniqueKeys.some((u) => u.length > 1)
      ? h("p", "Unique together: ", list(rel.uniqueKeys.filter((u) => u.length > 1).map((u) => `(${list(u)})`)))
      : null,
    h("h2", "Indexes"),
    table([
      {label: "Name", cell: (i) => i.name},
      {label: "Columns", cell: (i) => list(i.columns)},
      {label: "Unique", cell: (i) => (i.isPrimary ? "primary" : i.isUnique ? "unique" : "—")},
      {label: "Definition", cell: (i) => code(i.definition)},
    ], rel.indexes, {caption: "Indexes", empty: "No indexes."}),
    h("h2", "Foreign keys"),
    table([
      {label: "Name", cell: (f) => f.name},
      {label: "Columns", cell: (f) => list(f.columns)},
      {label: "References", cell: (f) => h("a", {href: relHref(f.referencedSchema, f.referencedTable)},
        `${f.referencedSchema}.${f.referencedTable} (${list(f.referencedColumns)})`)},
    ], rel.foreignKeys, {caption: "Foreign keys", empty: "This table references no other."}),
    h("h2", "Referenced by"),
    table([
      {label: "Name", cell: (f) => f.name},
      {label: "From", cell: (f) => h("a", {href: relHref(f.schema, f.table)}, `${f.schema}.${f.table} (${list(f.columns)})`)},
      {label: "To columns", cell: (f) => list(f.referencedColumns)},
    ], rel.referencedBy, {caption: "Referenced by", empty: "No other table references this one."}),
    h("h2", "Policies"),
    table([
      {label: "Name", cell: (p) => p.name},
      {label: "Command", cell: (p) => p.command},
      {label: "Roles", cell: (p) => list(p.roles)},
      {label: "Using", cell: (p) => code(p.using)},
      {label: "With check", cell: (p) => code(p.withCheck)},
    ], rel.policies, {caption: "Policies", empty: rel.rlsEnabled
      ? "RLS is on and there are no policies: only admins see rows." : "No policies."}),
    h("h2", "Triggers"),
    table([
      {label: "Name", cell: (t) => t.name},
      {label: "Timing", cell: (t) => t.timing},
      {label: "Events", cell: (t) => list(t.events)},
      {label: "Function", cell: (t) => code(t.functionName)},
      {label: "Enabled", cell: (t) => (t.enabled ? "yes" : "no")},
    ], rel.triggers, {caption: "Triggers", empty: "No triggers."}),
  ];
}

function detail(section, rel, tab) {
  const tabs = h("nav.tabs", {"aria-label": "Table"},
    h("a", {href: relHref(rel.schema, rel.name), "aria-current": tab ? null : "page"}, "Structure"),
    h("a", {href: relHref(rel.schema, rel.name, "records"), "aria-current": tab === "records" ? "page" : null},
      "Records"));
  const body = h("div.tab-body");
  fill(section,
    h("div.rel-head",
      h("h1", {tabindex: "-1"}, h("span.muted", `${rel.schema}.`), h("span.rel-title", rel.name)),
      h("div.facts", badge(rel.kind.replace("_", " "), "kind"), rlsBadge(rel),
        h("span.fact", {title: "the planner's estimate"}, `rows ${estimate(rel)}`),
        h("span.fact", `${rel.columns.length} columns`))),
    rel.kind === "table" && !rel.rlsEnabled
      ? h("p.notice.warn", "Row Level Security is off: every role granted access sees and changes every row.")
      : null,
    tabs, body);
  if (tab === "records") return records.render(body, rel);
  fill(body, structure(rel));
  return null;
}

export function render(main, [schema, name, tab]) {
  const filterInput = h("input", {type: "search", placeholder: "Filter tables", "aria-label": "Filter tables"});
  const aside = h("aside.sidebar", {"aria-label": "Tables"}, filterInput, h("div.rel-lists"));
  const section = h("section.detail");
  fill(main, h("div.split", aside, section));
  let inner = null;
  const draw = () => {
    const rel = schema ? catalog.find(schema, name) : null;
    sidebar(aside, rel, filterInput.value);
    if (inner) inner();
    inner = null;
    if (!schema) overview(section);
    else if (!rel) fill(section, h("h1", {tabindex: "-1"}, "Not found"),
      h("p", "There is no table or view named ", h("code", `${schema}.${name}`), " (any more)."));
    else inner = detail(section, rel, tab);
  };
  filterInput.addEventListener("input", () => sidebar(aside, schema ? catalog.find(schema, name) : null,
    filterInput.value));
  draw();
  // a migration changed the schema: redraw the list, and the table shown unless its records are being edited
  const off = catalog.onChange(() => {
    if (tab === "records") sidebar(aside, catalog.find(schema, name), filterInput.value);
    else draw();
  });
  return () => { off(); if (inner) inner(); };
}
