// The gateway's public API, as the dashboard calls it. Every call carries the admin key the user
// signed in with; every refusal becomes an ApiError holding the status and the error body as sent.

const ROOT = new URL("../../", import.meta.url); // this file is <root>/dashboard/static/api.js
const STORE = "gateway.dashboard.key";

export class ApiError extends Error {
  constructor(status, body, message) {
    super(message || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(STORE); },
  signIn(key) { sessionStorage.setItem(STORE, key); },
  signOut() { sessionStorage.removeItem(STORE); },
};

export function url(path, query) {
  const u = new URL(path.replace(/^\//, ""), ROOT);
  for (const [name, value] of query || []) u.searchParams.append(name, value);
  return u;
}

// A GraphQL answer's first error as the REST error body it carries in its extensions.
function graphqlError(data) {
  const first = data && Array.isArray(data.errors) && data.errors[0];
  return first ? {...(first.extensions || {}), message: first.message} : null;
}

async function call(method, path, {query, body, headers = {}, key = session.key} = {}) {
  const init = {method, headers: {Accept: "application/json", ...headers}, cache: "no-store"};
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (err) {
    throw new ApiError(0, null, `The gateway did not answer: ${err.message}`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!response.ok) {
    const err = new ApiError(response.status, graphqlError(data) || data);
    // the stored key stopped working (rotated, or a token expired): the page goes back to sign-in
    if (response.status === 401 && key && key === session.key) {
      window.dispatchEvent(new CustomEvent("dashboard:unauthorized", {detail: err}));
    }
    throw err;
  }
  return {status: response.status, headers: response.headers, data};
}

// GraphQL: the data, or the first error's REST-style body (extensions) as an ApiError.
export async function graphql(query, variables, key) {
  const {data} = await call("POST", "/graphql", {body: {query, variables}, key});
  const error = graphqlError(data);
  if (error) throw new ApiError(error.statusCode || 400, error);
  return data.data;
}

const profile = (schema, write) => (schema ? {[write ? "Content-Profile" : "Accept-Profile"]: schema} : {});
const recordsPath = (table) => `/api/database/records/${encodeURIComponent(table)}`;

// One page of rows and the total from X-Total-Count. filters: [[column, "op.value"], ...].
export async function records(schema, table, {filters = [], order, limit, offset}) {
  const query = [...filters];
  if (order) query.push(["order", order]);
  query.push(["limit", String(limit)], ["offset", String(offset)]);
  const {headers, data} = await call("GET", recordsPath(table), {query, headers: profile(schema, false)});
  const total = headers.get("X-Total-Count");
  return {rows: Array.isArray(data) ? data : [], total: total === null ? null : Number(total)};
}

const WRITE = {Prefer: "return=representation"};

export async function insertRow(schema, table, row) {
  const {data} = await call("POST", recordsPath(table), {body: [row], headers: {...WRITE, ...profile(schema, true)}});
  return data;
}

export async function updateRows(schema, table, filters, values) {
  const {data} = await call("PATCH", recordsPath(table),
    {query: filters, body: values, headers: {...WRITE, ...profile(schema, true)}});
  return data;
}

export async function deleteRows(schema, table, filters) {
  const {data} = await call("DELETE", recordsPath(table),
    {query: filters, headers: {...WRITE, ...profile(schema, true)}});
  return data;
}

export async function rawSql(query, params, relaxed) {
  const path = relaxed ? "/api/database/advance/rawsql/unrestricted" : "/api/database/advance/rawsql";
  const body = params && params.length ? {query, params} : {query};
  return (await call("POST", path, {body})).data;
}

export async function migrations() {
  return (await call("GET", "/api/database/migrations")).data.migrations || [];
}

export async function migrate(version, name, sql) {
  return (await call("POST", "/api/database/migrations", {body: {version, name, sql}})).data;
}

export async function advisor() {
  return (await call("GET", "/api/database/advisor")).data;
}

export async function openapi() {
  return (await call("GET", "/api/database/openapi.json")).data;
}
