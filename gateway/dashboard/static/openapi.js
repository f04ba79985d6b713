// OpenAPI view: the document from /api/database/openapi.json (it needs the key, so it is fetched
// here rather than linked), its paths listed, and the document to read or download.

import {openapi} from "./api.js";
import {errorBox, fill, h, table} from "./dom.js";

export function render(main) {
  let alive = true;
  let download = null;
  const body = h("div", h("p.muted", "Loading…"));
  fill(main, h("section.page", h("h1", {tabindex: "-1"}, "OpenAPI"), body));
  openapi().then((doc) => {
    if (!alive) return;
    const text = JSON.stringify(doc, null, 2);
    download = URL.createObjectURL(new Blob([text], {type: "application/json"}));
    const paths = Object.entries(doc.paths || {}).map(([path, item]) => ({path, methods: Object.keys(item)}));
    fill(body,
      h("p", `${doc.info ? `${doc.info.title} ${doc.info.version} · ` : ""}OpenAPI ${doc.openapi || ""} · `,
        `${paths.length} paths · `, h("a", {href: download, download: "openapi.json"}, "Download openapi.json")),
      table([
        {label: "Path", cell: (p) => h("code", p.path)},
        {label: "Methods", cell: (p) => p.methods.filter((m) => m !== "parameters").join(" ").toUpperCase()},
      ], paths, {caption: "Paths"}),
      h("details", h("summary", "The whole document"), h("pre.code", text)));
  }).catch((err) => { if (alive) fill(body, errorBox(err)); });
  return () => {
    alive = false;
    if (download) URL.revokeObjectURL(download);
  };
}
