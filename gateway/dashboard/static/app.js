// The dashboard's entry point: sign-in, the page frame (navigation, sign-out) and the hash router.
// Without a key in this tab's sessionStorage only the sign-in form is built and nothing is fetched.

import {session, url} from "./api.js";
import * as catalog from "./catalog.js";
import {errorBox, fill, h} from "./dom.js";
import * as functions from "./functions.js";
import * as advisor from "./advisor.js";
import * as openapi from "./openapi.js";
import * as sql from "./sql.js";
import * as tables from "./tables.js";

const root = document.getElementById("app");

// route name -> [navigation label, render(main, args) -> cleanup?]
const VIEWS = {
  tables: ["Tables", tables.render],
  sql: ["SQL", sql.renderEditor],
  migrations: ["Migrations", sql.renderMigrations],
  functions: ["Functions", functions.render],
  advisor: ["Advisor", advisor.render],
  openapi: ["OpenAPI", openapi.render],
};

let cleanup = null;
let main = null;

function signInForm(problem) {
  catalog.reset();
  if (cleanup) cleanup();
  cleanup = null;
  document.title = "Sign in · gateway dashboard";
  const input = h("input", {id: "key", name: "key", type: "password", autocomplete: "off", required: true,
    spellcheck: "false", placeholder: "ik_...", "aria-describedby": "key-help"});
  const status = h("div", {"aria-live": "assertive"}, problem ? errorBox(problem) : null);
  const button = h("button.primary", {type: "submit"}, "Sign in");
  const form = h("form.signin", {onSubmit: async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    button.disabled = true;
    fill(status, h("p.muted", "Checking the key…"));
    try {
      await catalog.load(key);
      session.signIn(key);
      start();
    } catch (err) {
      button.disabled = false;
      fill(status, err.status === 403
        ? h("p.notice.warn", "This key is not an admin key: the dashboard needs the API key or a project_admin token.")
        : null, errorBox(err));
      input.focus();
    }
  }},
  h("h1", "gateway dashboard"),
  h("label", {for: "key"}, "Admin API key"),
  input,
  h("p.muted", {id: "key-help"}, "The API key printed at start-up (or a project_admin token). It is kept in this tab only ",
    "and forgotten on sign-out or when the tab closes."),
  button, status);
  fill(root, h("main.signin-page", form));
  input.focus();
}

function signOut() {
  session.signOut();
  history.replaceState(null, "", location.pathname);
  signInForm();
}

function navLink(name, label) {
  return h("a", {href: `#/${name}`, "data-view": name}, label);
}

function frame() {
  main = h("main", {id: "main", tabindex: "-1"});
  const nav = h("nav.top-nav", {"aria-label": "Dashboard"},
    Object.entries(VIEWS).map(([name, [label]]) => navLink(name, label)),
    h("a", {href: url("/graphql").href, target: "_blank", rel: "noopener noreferrer"}, "GraphiQL ↗"));
  fill(root,
    h("a.skip", {href: "#main", onClick: (e) => { e.preventDefault(); main.focus(); }}, "Skip to content"),
    h("header.top",
      h("a.brand", {href: "#/tables"}, "gateway"),
      nav,
      h("button.signout", {type: "button", onClick: signOut}, "Sign out")),
    main);
}

// "#/tables/public/posts/records" -> ["tables", "public", "posts", "records"]
function parseHash() {
  const decode = (part) => { try { return decodeURIComponent(part); } catch { return part; } };
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decode);
  return parts.length && VIEWS[parts[0]] ? parts : ["tables"];
}

function route() {
  if (!session.key || !main) return;
  const [name, ...args] = parseHash();
  if (cleanup) cleanup();
  cleanup = null;
  for (const a of root.querySelectorAll(".top-nav a[data-view]")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${VIEWS[name][0]} · gateway dashboard`;
  try {
    cleanup = VIEWS[name][1](main, args, {signOut}) || null;
  } catch (err) {
    fill(main, errorBox(err));
  }
}

// A 401 anywhere means the key stopped working: back to the sign-in form, saying why.
window.addEventListener("dashboard:unauthorized", (event) => {
  session.signOut();
  signInForm(event.detail);
});

async function start() {
  frame();
  if (!catalog.state.catalog) {
    fill(main, h("p.muted", "Loading…"));
    try {
      await catalog.load();
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        session.signOut();
        signInForm(err);
        return;
      }
      fill(main, errorBox(err));
      return;
    }
  }
  route();
}

window.addEventListener("hashchange", () => {
  route();
  if (main && session.key) main.focus({preventScroll: true});
});

if (session.key) start();
else signInForm();
