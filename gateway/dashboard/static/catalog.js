// The schema as the admin GraphQL fields describe it, fetched once after sign-in and again after
// every migration; views subscribe to changes so a new table shows up without a page reload.

import {graphql} from "./api.js";

const QUERY = `{ admin { tables { ...Rel } views { ...Rel } } }
fragment Rel on AdminTable {
  name schema kind rlsEnabled rowEstimate uniqueKeys
  columns { name type nullable default isPrimaryKey isIdentity isGenerated }
  foreignKeys { name columns referencedSchema referencedTable referencedColumns }
  referencedBy { name schema table columns referencedColumns }
  indexes { name columns isUnique isPrimary definition }
  policies { name command roles using withCheck }
  triggers { name timing events functionName enabled }
}`;

const listeners = new Set();
export const state = {catalog: null};

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export async function load(key) {
  const {admin} = await graphql(QUERY, null, key);
  const relations = [...admin.tables, ...admin.views];
  relations.sort((a, b) => a.schema.localeCompare(b.schema) || a.name.localeCompare(b.name));
  state.catalog = {relations};
  for (const fn of listeners) fn(state.catalog);
  return state.catalog;
}

export function find(schema, name) {
  return state.catalog && state.catalog.relations.find((t) => t.schema === schema && t.name === name);
}

export function reset() {
  state.catalog = null;
  listeners.clear();
}
