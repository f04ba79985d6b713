// The schema as the admin GraphQL fields describe it, fetched once after sign-in and again after
// every migration; views subscribe to changes so a new table shows up without a page reload.

import {graphql} from "./api.js";

const QUERY = `{ admin {
  tables { ...Rel } views { ...Rel }
  indexes { name tableName columns isUnique isPrimary definition }
  policies { name tableName command roles using withCheck }
  triggers { name tableName timing events functionName enabled }
} }
fragment Rel on AdminTable {
  name schema kind rlsEnabled rowEstimate uniqueKeys
  columns { name type nullable default isPrimaryKey isIdentity isGenerated }
  foreignKeys { name columns referencedSchema referencedTable referencedColumns }
  referencedBy { name schema table columns referencedColumns }
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
  state.catalog = {...admin, relations};
  for (const fn of listeners) fn(state.catalog);
  return state.catalog;
}

export function find(schema, name) {
  return state.catalog && state.catalog.relations.find((t) => t.schema === schema && t.name === name);
}

// The indexes, policies and triggers of one table (these lists name the table, not its schema).
export function partsOf(rel) {
  const mine = (item) => item.tableName === rel.name;
  const c = state.catalog;
  return {indexes: c.indexes.filter(mine), policies: c.policies.filter(mine), triggers: c.triggers.filter(mine)};
}

export function reset() {
  state.catalog = null;
  listeners.clear();
}
