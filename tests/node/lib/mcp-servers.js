// Drives an MCP server protected by Portcullis with the MCP TypeScript SDK's client, the way an
// MCP host does: the 401 leads it to the protected resource metadata (RFC 9728) and the
// authorization server's metadata (RFC 8414), it registers (RFC 7591), authorizes through the
// login and consent forms, calls a tool, gets 403 insufficient_scope for a tool that needs more
// and steps up. Shared by the tests of every MCP server the project ships or documents (the Rust
// example, the Python and TypeScript recipes, the Worker and Spin MCP servers), which all offer
// `whoami` (mcp:read: `{ sub, client_id, scopes }` as JSON text) and `write_note` (mcp:write:
// "saved note N for SUB").

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { ISSUER, Browser, admin } from './helpers.js';

export const REDIRECT = 'http://127.0.0.1:33419/callback';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Registers `resource` at Portcullis with the scopes the MCP servers use. */
export async function registerResource(resource, name, extra = {}) {
  await admin('POST', '/admin/resources', { uri: resource, scopes: ['mcp:read', 'mcp:write'], name, ...extra });
}

const children = [];
/** Stops every server started by `spawnServer` (call from `after`). */
export function stopServers() {
  for (const c of children) c.kill();
}

/**
 * Starts `command args` and waits until the protected resource metadata of `resource` answers.
 * The process gets MCP_AUTH_ISSUER and MCP_RESOURCE_URL (plus `env`).
 */
export async function spawnServer(command, args, resource, { env = {}, cwd } = {}) {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, MCP_AUTH_ISSUER: ISSUER, MCP_RESOURCE_URL: resource, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  const u = new URL(resource);
  const metadata = `${u.origin}/.well-known/oauth-protected-resource${u.pathname}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${command} ${args.join(' ')} exited: ${log}`);
    try {
      if ((await fetch(metadata)).ok) return { resource, metadata, log: () => log };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${command} ${args.join(' ')} did not start: ${log}`);
}

/** An OAuthClientProvider whose "browser" fills in Portcullis's forms. */
export class Provider {
  constructor(user) {
    this.user = user;
    this.browser = new Browser();
    this.authorizations = [];
  }

  get redirectUrl() {
    return REDIRECT;
  }

  // No refresh_token grant: a step-up must be a new authorization (the SDK would otherwise
  // refresh, which cannot widen the scope, and give up).
  get clientMetadata() {
    return {
      client_name: 'MCP SDK client',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    return randomBytes(12).toString('base64url');
  }

  clientInformation() {
    return this.info;
  }

  saveClientInformation(info) {
    this.info = info;
  }

  tokens() {
    return this.saved;
  }

  saveTokens(tokens) {
    this.saved = tokens;
  }

  async redirectToAuthorization(url) {
    const callback = await this.browser.authorize(url, this.user);
    this.authorizations.push({ url, callback });
  }

  saveCodeVerifier(v) {
    this.verifier = v;
  }

  codeVerifier() {
    return this.verifier;
  }

  lastCode() {
    const { callback } = this.authorizations.at(-1);
    const code = callback.searchParams.get('code');
    assert.ok(code, `an authorization code, got ${callback}`);
    return code;
  }
}

/** Connects an MCP SDK client to `resource` for `user`, through the 401 and the forms. */
export async function connectedClient(resource, user) {
  const provider = new Provider(user);
  const open = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider });
    const client = new Client({ name: 'portcullis-e2e', version: '1.0.0' });
    await client.connect(transport);
    return client;
  };
  await assert.rejects(open(), UnauthorizedError);
  await new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider }).finishAuth(provider.lastCode());
  return open();
}

/** A new MCP SDK client on `resource` with the tokens `provider` already has. */
export async function connectedClientWithTokens(resource, provider) {
  const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider });
  const client = new Client({ name: 'portcullis-e2e', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

export function whoami(result) {
  assert.notEqual(result.isError, true, JSON.stringify(result));
  return JSON.parse(result.content[0].text);
}

/**
 * The whole journey against the MCP server at `resource`: 401 discovery, registration,
 * authorization for the challenge's scope (mcp:read), `whoami`, 403 insufficient_scope for
 * `write_note`, step-up to "mcp:read mcp:write", `write_note` on the same client. `tools`: the
 * tool names the server lists. Returns what the checks saw, for server-specific assertions.
 */
export async function stepUpJourney(resource, user, { tools = ['whoami', 'write_note'] } = {}) {
  const provider = new Provider(user);
  const connect = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider });
    const client = new Client({ name: 'portcullis-e2e', version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  };

  // 1. No token: the 401 leads the SDK to the metadata, registration and the browser.
  await assert.rejects(connect(), UnauthorizedError);
  assert.ok(provider.info?.client_id, 'the SDK registered a client');
  const first = provider.authorizations[0].url;
  assert.equal(`${first.origin}${first.pathname}`, `${ISSUER}/oauth/authorize`);
  assert.equal(first.searchParams.get('resource'), resource, 'RFC 8707 resource from the PRM');
  assert.equal(first.searchParams.get('scope'), 'mcp:read', 'the scope of the 401 challenge or the PRM');
  await new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider }).finishAuth(provider.lastCode());

  // 2. Connected with an mcp:read token: whoami works.
  const { client, transport } = await connect();
  assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), [...tools].sort());
  const me = whoami(await client.callTool({ name: 'whoami', arguments: {} }));
  assert.equal(me.sub, user.id);
  assert.equal(me.client_id, provider.info.client_id);
  assert.deepEqual(me.scopes, ['mcp:read']);

  // 3. write_note needs mcp:write: 403 insufficient_scope, and the SDK steps up on its own,
  //    asking for the scope of the challenge (what it had plus what it lacks).
  await assert.rejects(client.callTool({ name: 'write_note', arguments: { text: 'hello' } }), UnauthorizedError);
  assert.equal(provider.authorizations.length, 2, 'a second authorization for the step-up');
  assert.equal(provider.authorizations[1].url.searchParams.get('scope'), 'mcp:read mcp:write');
  await transport.finishAuth(provider.lastCode());

  // 4. With the wider token, on the same client.
  const saved = await client.callTool({ name: 'write_note', arguments: { text: 'hello' } });
  assert.notEqual(saved.isError, true, JSON.stringify(saved));
  assert.match(saved.content[0].text, new RegExp(`saved note \\d+ for ${user.id}`));
  const after = whoami(await client.callTool({ name: 'whoami', arguments: {} }));
  assert.deepEqual([...after.scopes].sort(), ['mcp:read', 'mcp:write']);
  await client.close();
  return { me, after, provider };
}
