// SQL view (strict or relaxed raw SQL, results as a table) and migrations view (form and history).

import {migrate, migrations, rawSql, session} from "./api.js";
import * as catalog from "./catalog.js";
import {errorBox, fill, h, table, valueNode} from "./dom.js";
import {relHref} from "./tables.js";

let draft = {query: "select 1 as one", params: "", relaxed: false}; // kept across views in this tab

export function setDraft(query) {
  draft = {...draft, query};
}

export function resultTable(rows) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return table(columns.map((name) => ({label: name, cell: (r) => valueNode(r[name])})), rows,
    {caption: "Result rows", empty: "No rows."});
}

export function renderEditor(main) {
  const query = h("textarea.code", {id: "sql", rows: "8", spellcheck: "false", "aria-describedby": "sql-help"});
  query.value = draft.query;
  const params = h("input", {id: "sql-params", type: "text", value: draft.params, placeholder: '[true, "x"]'});
  const strict = h("input", {type: "radio", name: "mode", value: "strict", checked: !draft.relaxed});
  const relaxed = h("input", {type: "radio", name: "mode", value: "relaxed", checked: draft.relaxed});
  const out = h("div.result", {"aria-live": "polite"});
  const run = async () => {
    draft = {query: query.value, params: params.value, relaxed: relaxed.checked};
    let values = [];
    if (params.value.trim()) {
      try {
        values = JSON.parse(params.value);
        if (!Array.isArray(values)) throw new Error("not an array");
      } catch {
        fill(out, errorBox(new Error("Parameters: enter a JSON array, e.g. [1, \"x\"]")));
        return;
      }
    }
    fill(out, h("p.muted", "Running…"));
    try {
      const result = await rawSql(query.value, values, relaxed.checked);
      const rows = Array.isArray(result.rows) ? result.rows : [];
      fill(out,
        h("p.ok", `${result.command || "OK"} · ${result.rowCount ?? rows.length} row(s)`),
        rows.length ? resultTable(rows) : null);
      if (result.command && !/^(SELECT|SHOW|EXPLAIN|VALUES)$/i.test(result.command)) catalog.load().catch(() => {});
    } catch (err) {
      fill(out, errorBox(err));
    }
  };
  query.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  fill(main, h("section.page",
    h("h1", {tabindex: "-1"}, "SQL"),
    h("form.sql", {onSubmit: (e) => { e.preventDefault(); run(); }},
      h("label", {for: "sql"}, "Query"),
      query,
      h("p.muted", {id: "sql-help"}, "Ctrl+Enter runs it. Strict mode refuses system tables and auth.users; ",
        "relaxed mode allows reading them. Both run as the admin role."),
      h("label", {for: "sql-params"}, "Parameters ($1, $2, …) as a JSON array"),
      params,
      h("fieldset.modes", h("legend", "Mode"),
        h("label.inline", strict, " strict"), h("label.inline", relaxed, " relaxed")),
      h("div.toolbar", h("button.primary", {type: "submit"}, "Run"))),
    out));
}

const pad = (n) => String(n).padStart(2, "0");
function timestampVersion() {
  const d = new Date();
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}`
    + `${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
}

export function renderMigrations(main) {
  let alive = true;
  const version = h("input", {id: "mig-version", type: "text", value: timestampVersion(), required: true,
    inputmode: "numeric", pattern: "[0-9]{1,64}"});
  const name = h("input", {id: "mig-name", type: "text", required: true, placeholder: "create_posts"});
  const sql = h("textarea.code", {id: "mig-sql", rows: "8", required: true, spellcheck: "false",
    placeholder: "CREATE TABLE posts (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), title text NOT NULL);"});
  const out = h("div.result", {"aria-live": "polite"});
  const history = h("div.history");
  const button = h("button.primary", {type: "submit"}, "Apply migration");

  async function drawHistory() {
    try {
      const list = await migrations();
      if (!alive) return;
      fill(history, table([
        {label: "Version", cell: (m) => m.version},
        {label: "Name", cell: (m) => m.name},
        {label: "Applied", cell: (m) => m.createdAt},
        {label: "Statements", cell: (m) => h("details", h("summary", `${m.statements.length} statement(s)`),
          m.statements.map((s) => h("pre.code", s)))},
      ], [...list].reverse(), {caption: "Migration history", empty: "No migrations yet."}));
    } catch (err) {
      if (alive) fill(history, errorBox(err));
    }
  }

  const form = h("form.migration", {"aria-label": "New migration", onSubmit: async (e) => {
    e.preventDefault();
    button.disabled = true;
    const before = new Set(catalog.state.catalog.relations.map((r) => `${r.schema}.${r.name}`));
    try {
      const done = await migrate(version.value.trim(), name.value.trim(), sql.value);
      const after = await catalog.load();
      // other gateway processes pick the change up from NOTIFY within a moment: look once more
      setTimeout(() => { if (session.key) catalog.load().catch(() => {}); }, 1500);
      const added = after.relations.filter((r) => !before.has(`${r.schema}.${r.name}`));
      fill(out, h("div.ok", h("p", `${done.message || "Migration applied"}: ${done.version} ${done.name}.`),
        added.length ? h("p", "New: ", added.map((r, i) => [i ? ", " : "",
          h("a", {href: relHref(r.schema, r.name)}, `${r.schema}.${r.name}`)])) : null));
      version.value = timestampVersion();
      name.value = "";
      sql.value = "";
      drawHistory();
    } catch (err) {
      fill(out, errorBox(err));
    } finally {
      button.disabled = false;
    }
  }},
  h("div.fields",
    h("div.field", h("label", {for: "mig-version"}, "Version (digits; compared numerically)"), version),
    h("div.field", h("label", {for: "mig-name"}, "Name"), name)),
  h("label", {for: "mig-sql"}, "SQL (no BEGIN/COMMIT: the migration runs in its own transaction)"),
  sql,
  h("div.toolbar", button));

  fill(main, h("section.page",
    h("h1", {tabindex: "-1"}, "Migrations"),
    form, out,
    h("h2", "History"), history));
  drawHistory();
  return () => { alive = false; };
}
