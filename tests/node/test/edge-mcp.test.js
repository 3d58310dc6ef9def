// The example MCP server for Cloudflare Workers (examples/mcp-worker: the resource-server
// crate's layer in a Worker, JWKS through the Worker's fetch, cached per isolate), run in
// Miniflare (workerd) by tests/worker/run.mjs, driven by the MCP TypeScript SDK's client
// through the same journey as the Rust example: 401 discovery, registration, sign-in and
// consent, whoami, 403 insufficient_scope for write_note, step-up, write_note.
//
// Needs the build: scripts/build-mcp-worker (scripts/test runs it and passes
// PORTCULLIS_TEST_MCP_WORKER).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createUser } from '../lib/helpers.js';
import { freePort, registerResource, spawnServer, stepUpJourney, stopServers } from '../lib/mcp-servers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');

after(stopServers);

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
