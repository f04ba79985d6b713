// Functions view: the admin GraphQL list of functions in the exposed schemas.

import {graphql} from "./api.js";
import {errorBox, fill, h, table} from "./dom.js";

const QUERY = "{ admin { functions { name schema language returnType arguments definition } } }";

export function render(main) {
  let alive = true;
  const body = h("div", h("p.muted", "Loading…"));
  fill(main, h("section.page", h("h1", {tabindex: "-1"}, "Functions"), body));
  graphql(QUERY).then(({admin}) => {
    if (!alive) return;
    fill(body, table([
      {label: "Name", cell: (f) => h("span.colname", `${f.schema}.${f.name}`)},
      {label: "Arguments", cell: (f) => h("code", f.arguments || "()")},
      {label: "Returns", cell: (f) => h("code", f.returnType)},
      {label: "Language", cell: (f) => f.language},
      {label: "Definition", cell: (f) => h("details", h("summary", "show"), h("pre.code", f.definition))},
    ], admin.functions, {caption: "Functions", empty: "No functions in the exposed schemas."}));
  }).catch((err) => { if (alive) fill(body, errorBox(err)); });
  return () => { alive = false; };
}
