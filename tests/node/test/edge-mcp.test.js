// The example MCP servers on the edge, driven by the MCP TypeScript SDK's client through the
// same journey as the Rust example (401 discovery, registration, sign-in and consent, whoami,
// 403 insufficient_scope for write_note, step-up, write_note):
// - for Cloudflare Workers (examples/mcp-worker: the resource-server crate's layer in a Worker,
//   JWKS through the Worker's fetch, cached per isolate), run in Miniflare (workerd) by
//   tests/worker/run.mjs;
// - as a Spin component (examples/mcp-spin: the same layer, JWKS through Spin's outbound HTTP,
//   cached in Spin key-value), run in the Spin test host (tests/spin-host, wasmtime).
//
// Needs the builds: scripts/build-mcp-worker and scripts/build-mcp-spin (scripts/test runs them
// and passes PORTCULLIS_TEST_MCP_WORKER, PORTCULLIS_TEST_MCP_SPIN, PORTCULLIS_TEST_SPIN_HOST).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createUser } from '../lib/helpers.js';
import { freePort, registerResource, spawnServer, stepUpJourney, stopServers } from '../lib/mcp-servers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

// The Spin host's SQLite directory (the example keeps nothing there) goes once the hosts are stopped.
const spinDir = mkdtempSync(join(tmpdir(), 'mcp-spin-'));
after(() => {
  stopServers();
  rmSync(spinDir, { recursive: true, force: true });
});

async function startWorker() {
  const build = process.env.PORTCULLIS_TEST_MCP_WORKER ?? join(root, 'examples/mcp-worker/build');
  if (!existsSync(join(build, 'index_bg.wasm'))) {
    throw new Error(`the MCP Worker example is not built at ${build}: run scripts/build-mcp-worker`);
  }
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  await registerResource(resource, 'Worker example MCP server');
  const server = await spawnServer(process.execPath, [
    join(root, 'tests/worker/run.mjs'), '--build', build, '--port', String(port), '--ignore-stdin',
    '--var', `MCP_AUTH_ISSUER=${process.env.PORTCULLIS_TEST_ISSUER}`, '--var', `MCP_RESOURCE_URL=${resource}`,
  ], resource);
  return server;
}

test('MCP SDK client against the Worker example in workerd: 401 discovery, registration, whoami, 403 step-up, write_note', async () => {
  const server = await startWorker();
  const metadata = await (await fetch(server.metadata)).json();
  assert.equal(metadata.resource, server.resource);
  assert.deepEqual(metadata.authorization_servers, [process.env.PORTCULLIS_TEST_ISSUER]);
  const user = await createUser();
  const { me, provider } = await stepUpJourney(server.resource, user);
  assert.equal(me.scheme, 'Bearer');

  // A token with a broken signature: invalid_token, from the same isolate's cached keys.
  const token = provider.tokens().access_token;
  const r = await fetch(server.resource, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token.slice(0, -4)}AAAA` },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
});

async function startSpin() {
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache/portcullis/target');
  const wasm = process.env.PORTCULLIS_TEST_MCP_SPIN ?? join(target, 'wasm32-wasip2/release/portcullis_mcp_spin_example.wasm');
  const host = process.env.PORTCULLIS_TEST_SPIN_HOST ?? join(target, 'release/portcullis-spin-host');
  for (const f of [wasm, host]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: run scripts/build-mcp-spin`);
  }
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  await registerResource(resource, 'Spin example MCP server');
  const issuer = new URL(process.env.PORTCULLIS_TEST_ISSUER);
  return spawnServer(host, [
    '--component', wasm, '--listen', `127.0.0.1:${port}`,
    '--sqlite', join(spinDir, 'unused.db'),
    '--allow-outbound', `${issuer.protocol}//${issuer.host}`,
    '--var', `mcp_auth_issuer=${process.env.PORTCULLIS_TEST_ISSUER.replace(/\/+$/, "")}`, '--var', `mcp_resource_url=${resource}`,
  ], resource);
}

test('MCP SDK client against the Spin example in the Spin test host: 401 discovery, registration, whoami, 403 step-up, write_note', async () => {
  const server = await startSpin();
  const metadata = await (await fetch(server.metadata)).json();
  assert.equal(metadata.resource, server.resource);
  const user = await createUser();
  const { me } = await stepUpJourney(server.resource, user);
  assert.equal(me.scheme, 'Bearer');
});
