// Runs the official MCP conformance suite's authorization-server scenarios
// (`@modelcontextprotocol/conformance authorization`, pinned in package.json) against the
// Portcullis named by PORTCULLIS_TEST_ISSUER / _ADMIN / _ADMIN_KEY, and exits with the suite's
// status. The suite's interactive hook is its standard output: it prints the authorization
// request URL and waits for the browser to reach its callback server on
// http://127.0.0.1:<port>/callback. This driver reads that URL, signs in and consents through
// Portcullis's own HTML forms (the form-filling Browser of lib/helpers.js) and delivers the
// redirect to the callback, as a person's browser would.
//
// Setup through the admin API and dynamic registration: a resource (the suite's `--resource`),
// a user, and a public client whose redirect URI is the suite's loopback callback.
//
// Needs Node >= 22 (the suite uses fs.globSync): the Rust scenario runs it with the Node 22 of
// tests/worker/node_modules.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ISSUER, Browser, createResource, createUser } from '../lib/helpers.js';

const require = createRequire(import.meta.url);
const suitePackage = require.resolve('@modelcontextprotocol/conformance/package.json');
const suiteCli = join(dirname(suitePackage), 'dist/index.js');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function registerClient(port) {
  const res = await fetch(`${ISSUER}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'MCP conformance suite',
      redirect_uris: [`http://127.0.0.1:${port}/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }),
  });
  const body = await res.json();
  if (res.status !== 201) throw new Error(`registration: ${res.status} ${JSON.stringify(body)}`);
  return body.client_id;
}

const resource = await createResource(['mcp:tools', 'mcp:read']);
const user = await createUser();
const port = await freePort();
const clientId = await registerClient(port);
const authorizeUrl = `${ISSUER}/oauth/authorize?`;

const child = spawn(process.execPath, [
  suiteCli, 'authorization',
  '--url', ISSUER,
  '--client-id', clientId,
  '--resource', resource,
  '--port', String(port),
], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });

let output = '';
let login = null;
let pending = '';
child.stdout.on('data', (chunk) => {
  const text = chunk.toString();
  output += text;
  process.stdout.write(text);
  pending += text;
  let nl;
  while ((nl = pending.indexOf('\n')) >= 0) {
    const line = pending.slice(0, nl).trim();
    pending = pending.slice(nl + 1);
    if (line.startsWith(authorizeUrl) && !login) {
      // The suite waits for its callback: sign in, consent, follow the redirect to it.
      login = (async () => {
        const callback = await new Browser().authorize(line, user);
        const res = await fetch(callback);
        if (!res.ok) throw new Error(`the suite's callback answered ${res.status}`);
      })().catch((e) => {
        console.error(`driving the login failed: ${e.stack ?? e}`);
        child.kill('SIGTERM');
      });
    }
  }
});
child.stderr.on('data', (chunk) => process.stderr.write(chunk));

const code = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 : 1))));
if (login) await login;
if (!login) {
  console.error('the suite never printed an authorization request URL to drive');
  process.exit(1);
}
if (!/Total: \d+ passed, 0 failed/.test(output)) {
  console.error('the suite did not report zero failures');
  process.exit(code || 1);
}
process.exit(code);
