// Drives @insforge/sdk against a live gateway; tests/test_sdk_js.py asserts on what it prints.
//
// In:  argv[2] is the folder where `npm install` put @insforge/sdk; stdin is one JSON document
//      {"baseUrl": "http://127.0.0.1:PORT",
//       "clients": {"<name>": {<createClient config: anonKey, accessToken, db, ...>}},
//       "ops": [{"client": "<name>", "chain": [["from", "posts"], ["select", "*"], ["eq", "id", 1]]}]}
//      Each chain starts at client.database; every step calls a method with the given
//      arguments; the last value is awaited.
// Out: stdout is one JSON array, one entry per op, in order:
//      {"data", "error", "count", "status", "statusText", "requests": [{method, url, headers, body}]}
//      where requests are the HTTP requests the SDK sent for that op (as seen by its fetch).
//      A thrown exception becomes {"thrown": "<message>"}.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

// The ES module build: the CommonJS one requires @insforge/shared-schemas, which only exports ESM.
const sdkRoot = join(process.argv[2], 'node_modules', '@insforge', 'sdk');
const manifest = JSON.parse(readFileSync(join(sdkRoot, 'package.json'), 'utf8'));
const { createClient } = await import(pathToFileURL(join(sdkRoot, manifest.exports['.'].import)).href);

const input = JSON.parse(readFileSync(0, 'utf8'));
let requests = [];

// The SDK sends every request through config.fetch: record it, then send it for real.
async function recordingFetch(url, init = {}) {
  const headers = {};
  new Headers(init.headers).forEach((value, key) => { headers[key] = value; });
  const body = init.body === undefined || init.body === null ? null : String(init.body);
  requests.push({ method: init.method ?? 'GET', url: String(url), headers, body });
  return fetch(url, init);
}

const clients = {};
for (const [name, config] of Object.entries(input.clients)) {
  clients[name] = createClient({
    baseUrl: input.baseUrl,
    fetch: recordingFetch,
    retryCount: 0, // a 5xx must surface at once, not after back-off
    auth: { detectOAuthCallback: false },
    ...config,
  });
}

const results = [];
for (const op of input.ops) {
  requests = [];
  try {
    let target = clients[op.client].database;
    for (const [method, ...args] of op.chain) {
      if (typeof target[method] !== 'function') throw new Error(`no method ${method}`);
      target = target[method](...args);
    }
    const { data, error, count, status, statusText } = await target;
    results.push({ data: data ?? null, error: error ?? null, count: count ?? null, status, statusText, requests });
  } catch (err) {
    results.push({ thrown: String(err?.stack ?? err), requests });
  }
}
// exit once the output is flushed: the SDK's realtime client may keep the event loop alive
process.stdout.write(JSON.stringify(results), () => process.exit(0));
