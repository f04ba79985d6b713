// Runs graphql-http's GraphQL-over-HTTP server audits against a URL; prints one JSON line per audit.
// Usage: node audit.mjs <url> <authorization header value>
import { serverAudits } from 'graphql-http';

const [url, authorization] = process.argv.slice(2);
const fetchWithCredentials = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', authorization);
  return fetch(input, { ...init, headers });
};
const results = [];
for (const audit of serverAudits({ url, fetchFn: fetchWithCredentials })) {
  const result = await audit.fn();
  results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason || null });
}
console.log(JSON.stringify(results));
