// Advisor view: GET /api/database/advisor, a list of findings. Known fields (level, object, why,
// fix) are laid out; any other field is shown as it came, so newer gateways need no change here.
// A gateway without the endpoint answers 404, which is said plainly.

import {advisor} from "./api.js";
import {badge, errorBox, fill, h, valueText} from "./dom.js";
import * as sql from "./sql.js";

const KNOWN = ["level", "object", "why", "fix"];
const LEVELS = {error: "warn", critical: "warn", high: "warn", warning: "caution", warn: "caution", medium: "caution"};

function finding(f) {
  if (f === null || typeof f !== "object") return h("li.finding", valueText(f) ?? "null");
  const fix = f.fix ?? f.fixSql ?? f.sql;
  const rest = Object.entries(f).filter(([k]) => !KNOWN.includes(k) && k !== "fixSql" && k !== "sql");
  return h("li.finding",
    h("div.finding-head",
      f.level !== undefined ? badge(String(f.level), LEVELS[String(f.level).toLowerCase()] || "kind") : null,
      f.object !== undefined ? h("code", valueText(f.object)) : null),
    f.why !== undefined ? h("p", valueText(f.why)) : null,
    fix !== undefined && fix !== null ? [h("pre.code", valueText(fix)),
      h("a.button", {href: "#/sql", onClick: () => sql.setDraft(valueText(fix))}, "Open the fix in the SQL editor")]
      : null,
    rest.length ? h("dl", rest.map(([k, v]) => [h("dt", k), h("dd", valueText(v) ?? "null")])) : null);
}

export function render(main) {
  let alive = true;
  const body = h("div", h("p.muted", "Loading…"));
  fill(main, h("section.page", h("h1", {tabindex: "-1"}, "Advisor"),
    h("p.muted", "Security and performance findings about the exposed schemas, with the SQL that fixes each."),
    body));
  advisor().then((data) => {
    if (!alive) return;
    const list = Array.isArray(data) ? data : data && Array.isArray(data.findings) ? data.findings : null;
    if (list === null) fill(body, h("pre.code", JSON.stringify(data, null, 2)));
    else if (!list.length) fill(body, h("p.ok", "No findings."));
    else fill(body, h("p", `${list.length} finding(s)`), h("ol.findings", list.map(finding)));
  }).catch((err) => {
    if (!alive) return;
    if (err.status === 404) fill(body, h("p.notice", "This gateway has no advisor endpoint (GET /api/database/advisor ",
      "answered 404). Upgrade the gateway to get its findings here."));
    else fill(body, errorBox(err));
  });
  return () => { alive = false; };
}
