// Building the page. Everything shown is created with createElement and set with textContent or
// setAttribute: names and values from the database are data, never markup. No module hands an
// HTML string to the browser (a test checks), so a table named "<img onerror=...>" is just text.

const EVENTS = /^on[A-Z]/;

// h("tag.class1.class2", {attr: value, onClick: fn, text: "..."}, ...children)
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.classList.add(...classes);
  if (attrs === null || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (EVENTS.test(name)) el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === "text") el.textContent = String(value);
    else if (name === "value") el.value = String(value);
    else if (name === "checked" || name === "selected" || name === "disabled") el[name] = Boolean(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Replace an element's children.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// A table: columns [{label, cell(row) -> node|string, className?}] and rows.
export function table(columns, rows, {caption, empty = "Nothing here."} = {}) {
  if (!rows.length) return h("p.muted", empty);
  return h("div.scroll", {tabindex: "0", role: "region", "aria-label": caption || "table"},
    h("table",
      caption ? h("caption", caption) : null,
      h("thead", h("tr", columns.map((c) => h("th", {scope: "col"}, c.label)))),
      h("tbody", rows.map((row) => h("tr", columns.map((c) => h(c.className ? "td." + c.className : "td",
        c.cell(row))))))));
}

// How a database value reads in a cell: NULL marked, objects as JSON.
export function valueText(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function valueNode(value) {
  const text = valueText(value);
  return text === null ? h("span.null", "NULL") : h("span.value", {title: text.length > 60 ? text : null}, text);
}

export function badge(text, kind = "") {
  return h(kind ? "span.badge." + kind : "span.badge", text);
}

// An API error as the user sees it: the status line and the error body as sent.
export function errorBox(err) {
  const body = err && err.body !== undefined ? err.body : null;
  const title = err && err.status ? `${err.status} ${(body && body.error) || ""}`.trim() : "Request failed";
  const message = (body && body.message) || (err && err.message) || String(err);
  return h("div.error", {role: "alert"},
    h("strong", title), h("p", message),
    body && typeof body === "object" ? h("pre.body", JSON.stringify(body, null, 2)) : null);
}
