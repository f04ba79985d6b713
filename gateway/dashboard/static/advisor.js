// Advisor view: GET /api/database/advisor, a list of findings. Known fields (level, title, object,
// detail, why, fix) are laid out; any other field is shown as it came, so newer gateways need no
// change here. A gateway without the endpoint answers 404, which is said plainly.

import {advisor} from "./api.js";
import * as catalog from "./catalog.js";
import {badge, errorBox, fill, h, valueText} from "./dom.js";
import * as sql from "./sql.js";
import {relHref} from "./tables.js";

const KNOWN = ["level", "title", "object", "detail", "why", "fix"];
const LEVELS = {error: "warn", critical: "warn", high: "warn", warn: "caution", warning: "caution", medium: "caution"};

// The object a finding is about: "schema.name (kind)", linked when it is a table or view shown here.
function objectNode(object) {
  if (object && typeof object === "object" && typeof object.name === "string") {
    const label = object.schema ? `${object.schema}.${object.name}` : object.name;
    const known = object.schema && catalog.find(object.schema, object.name);
    return [known ? h("a", {href: relHref(object.schema, object.name)}, h("code", label)) : h("code", label),
      object.kind ? h("span.muted", ` ${object.kind}`) : null];
  }
  return h("code", valueText(object) ?? "null");
}

function finding(f) {
  if (f === null || typeof f !== "object") return h("li.finding", valueText(f) ?? "null");
  const rest = Object.entries(f).filter(([k]) => !KNOWN.includes(k));
  return h("li.finding",
    h("div.finding-head",
      f.level !== undefined ? badge(String(f.level), LEVELS[String(f.level).toLowerCase()] || "kind") : null,
      f.title !== undefined ? h("strong", valueText(f.title)) : null,
      f.object !== undefined ? objectNode(f.object) : null),
    f.detail !== undefined && f.detail !== null ? h("p", valueText(f.detail)) : null,
    f.why !== undefined && f.why !== null ? h("p.muted", valueText(f.why)) : null,
    f.fix !== undefined && f.fix !== null ? [h("pre.code", valueText(f.fix)),
      h("a.button", {href: "#/sql", onClick: () => sql.setDraft(valueText(f.fix))}, "Open the fix in the SQL editor")]
      : null,
    rest.length ? h("dl", rest.map(([k, v]) => [h("dt", k), h("dd", valueText(v) ?? "null")])) : null);
}

export function render(main) {
  let alive = true;
  const body = h("div", h("p.muted", "Loading…"));
  fill(main, h("section.page", h("h1", {tabindex: "-1"}, "Advisor"),
    h("p.muted", "Findings about the exposed schemas, most severe first, with the SQL that fixes each."),
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
