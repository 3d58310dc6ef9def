// The Rust resource-server crate end to end: Portcullis issues, the crate's rmcp example
// (crates/mcp-resource-server/examples/rmcp_server.rs) verifies. The MCP TypeScript SDK's
// client discovers everything from the example's 401 (RFC 9728 metadata, RFC 8414 metadata),
// registers (RFC 7591), authorizes through the login and consent forms, calls `whoami`
// (scope mcp:read), gets 403 insufficient_scope for `write_note` (scope mcp:write), steps up
// with a new authorization for the wider scope, and calls it. A second test sends a
// DPoP-bound token (oauth4webapi) to the same server.
//
// Needs the example binary: `cargo build -p portcullis-resource-server --example rmcp_server`
// (scripts/test builds it and passes PORTCULLIS_TEST_MCP_EXAMPLE).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import * as oauth from 'oauth4webapi';
import { ISSUER, Browser, admin, createUser, uid } from '../lib/helpers.js';

const REDIRECT = 'http://127.0.0.1:33419/callback';

function exampleBinary() {
  const explicit = process.env.PORTCULLIS_TEST_MCP_EXAMPLE;
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache/portcullis/target');
  const bin = explicit ?? join(target, 'debug/examples/rmcp_server');
  if (!existsSync(bin)) {
    throw new Error(`the example MCP server is missing at ${bin}: run ` +
      '`cargo build -p portcullis-resource-server --example rmcp_server` or set PORTCULLIS_TEST_MCP_EXAMPLE');
  }
  return bin;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const children = [];
after(() => {
  for (const c of children) c.kill();
});

/**
 * Registers a resource on Portcullis and starts the example MCP server for it. `vendClient`:
 * a confidential client (`{ client_id, client_secret }`) allowed to exchange this resource's
 * tokens at the vault.
 */
async function startExample({ vendClient, beforeStart } = {}) {
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  await admin('POST', '/admin/resources', {
    uri: resource,
    scopes: ['mcp:read', 'mcp:write'],
    name: 'Rust example MCP server',
    ...(vendClient ? { exchange_clients: [vendClient.client_id] } : {}),
  });
  await beforeStart?.(resource);
  const vendEnv = vendClient
    ? { MCP_CLIENT_ID: vendClient.client_id, MCP_CLIENT_SECRET: vendClient.client_secret }
    : {};
  const child = spawn(exampleBinary(), [], {
    env: { ...process.env, MCP_AUTH_ISSUER: ISSUER, MCP_RESOURCE_URL: resource, ...vendEnv },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const metadata = `http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`the example exited: ${log}`);
    try {
      if ((await fetch(metadata)).ok) return { resource, metadata, log: () => log };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the example did not start: ${log}`);
}

/** An OAuthClientProvider whose "browser" fills in Portcullis's forms. */
class Provider {
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
      client_name: 'MCP SDK client for the Rust example',
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
async function connectedClient(resource, user) {
  const provider = new Provider(user);
  const fetchFn = fetch;
  const open = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider, fetch: fetchFn });
    const client = new Client({ name: 'resource-server-e2e', version: '1.0.0' });
    await client.connect(transport);
    return client;
  };
  await assert.rejects(open(), UnauthorizedError);
  await new StreamableHTTPClientTransport(new URL(resource), { authProvider: provider, fetch: fetchFn })
    .finishAuth(provider.lastCode());
  return open();
}

function whoami(result) {
  assert.notEqual(result.isError, true, JSON.stringify(result));
  return JSON.parse(result.content[0].text);
}

test('MCP SDK client against the Rust example: 401 discovery, registration, whoami, 403 step-up, write_note', async () => {
  const server = await startExample();
  const user = await createUser();
  const provider = new Provider(user);
  // The SDK registers with the scope of the first challenge (mcp:read) and steps up by itself.
  const fetchFn = fetch;
  const connect = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(server.resource), { authProvider: provider, fetch: fetchFn });
    const client = new Client({ name: 'resource-server-e2e', version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  };

  // 1. No token: the 401 leads the SDK to the metadata, registration and the browser.
  await assert.rejects(connect(), UnauthorizedError);
  assert.ok(provider.info?.client_id, 'the SDK registered a client');
  const first = provider.authorizations[0].url;
  assert.equal(`${first.origin}${first.pathname}`, `${ISSUER}/oauth/authorize`);
  assert.equal(first.searchParams.get('resource'), server.resource, 'RFC 8707 resource from the PRM');
  assert.equal(first.searchParams.get('scope'), 'mcp:read', 'the scope of the 401 challenge');
  {
    const t = new StreamableHTTPClientTransport(new URL(server.resource), { authProvider: provider, fetch: fetchFn });
    await t.finishAuth(provider.lastCode());
  }

  // 2. Connected with an mcp:read token: whoami works.
  const { client, transport } = await connect();
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(tools, ['upstream_token', 'whoami', 'write_note']);
  const me = whoami(await client.callTool({ name: 'whoami', arguments: {} }));
  assert.equal(me.sub, user.id);
  assert.equal(me.client_id, provider.info.client_id);
  assert.deepEqual(me.scopes, ['mcp:read']);
  assert.equal(me.scheme, 'Bearer');

  // 3. write_note needs mcp:write: 403 insufficient_scope, and the SDK steps up on its own,
  //    asking for the scope of the challenge (what it had plus what it lacks).
  await assert.rejects(
    client.callTool({ name: 'write_note', arguments: { text: 'hello' } }),
    UnauthorizedError,
  );
  assert.equal(provider.authorizations.length, 2, 'a second authorization for the step-up');
  const second = provider.authorizations[1].url;
  assert.equal(second.searchParams.get('scope'), 'mcp:read mcp:write');
  await transport.finishAuth(provider.lastCode());

  // 4. With the wider token, on the same session.
  const saved = await client.callTool({ name: 'write_note', arguments: { text: 'hello' } });
  assert.notEqual(saved.isError, true, JSON.stringify(saved));
  assert.match(saved.content[0].text, new RegExp(`saved note \\d+ for ${user.id}`));
  assert.deepEqual(whoami(await client.callTool({ name: 'whoami', arguments: {} })).scopes.sort(), ['mcp:read', 'mcp:write']);
  await client.close();
});

test('the Rust example refuses what it must: wrong audience, DPoP-bound token as Bearer; accepts DPoP with a proof', async () => {
  const server = await startExample();
  const other = await startExample();
  const user = await createUser();
  const issuer = new URL(ISSUER);
  const insecure = { [oauth.allowInsecureRequests]: true };
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }));
  const registered = await oauth.processDynamicClientRegistrationResponse(await oauth.dynamicClientRegistrationRequest(as, {
    client_name: uid('dpop-mcp'),
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    scope: 'mcp:read mcp:write',
  }, insecure));
  const client = { client_id: registered.client_id };
  const auth = oauth.None();
  const keyPair = await oauth.generateKeyPair('ES256');
  const dpop = oauth.DPoP(client, keyPair);

  // A DPoP-bound token for the server, through the forms.
  const verifier = oauth.generateRandomCodeVerifier();
  const authz = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: client.client_id, redirect_uri: REDIRECT, response_type: 'code', scope: 'mcp:read',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    resource: server.resource,
  })) authz.searchParams.set(k, v);
  const callback = await new Browser().authorize(authz, user);
  const params = oauth.validateAuthResponse(as, client, callback, oauth.expectNoState);
  const exchange = () => oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, verifier, { DPoP: dpop, ...insecure, additionalParameters: { resource: server.resource } });
  let res = await exchange();
  if (oauth.isDPoPNonceError(await res.clone().json().catch(() => ({})))) res = await exchange();
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, res);
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');

  const initialize = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
  const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

  // Sent as a bearer token: refused (RFC 9449 §7.2).
  let r = await fetch(server.resource, { method: 'POST', headers: { ...headers, authorization: `Bearer ${tokens.access_token}` }, body: initialize });
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);

  // With the DPoP scheme and a proof (oauth4webapi signs it): accepted.
  r = await oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(server.resource), new Headers(headers), initialize, { DPoP: dpop, ...insecure });
  assert.equal(r.status, 200, await r.clone().text());
  await r.body?.cancel();

  // The same token at another MCP server: wrong audience.
  r = await oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(other.resource), new Headers(headers), initialize, { DPoP: dpop, ...insecure }).catch((e) => e);
  const status = r instanceof Response ? r.status : r.response?.status ?? r.cause?.status;
  assert.equal(status, 401, String(r));
});

test('the vend helper in the Rust example: a user who has not connected the provider gets its connect link', async () => {
  const mcpClient = await admin('POST', '/admin/clients', {
    client_name: uid('rust-example-vend'),
    redirect_uris: ['https://client.example/unused'],
    grant_types: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'mcp:read',
  });
  const providerName = uid('upstream').toLowerCase();
  const upstreamApi = `https://api.${providerName}.example`;
  const server = await startExample({
    vendClient: mcpClient,
    // The provider is never called here: the user has not connected it.
    beforeStart: (resource) => admin('POST', '/admin/providers', {
      name: providerName,
      authorization_endpoint: `https://${providerName}.example/authorize`,
      token_endpoint: `https://${providerName}.example/token`,
      client_id: 'our-client-at-the-provider',
      client_secret: 'never-used',
      scopes: ['repo'],
      resource: upstreamApi,
      vend_resources: [resource],
    }),
  });
  const user = await createUser();
  const client = await connectedClient(server.resource, user);
  const result = await client.callTool({ name: 'upstream_token', arguments: { resource: upstreamApi } });
  assert.notEqual(result.isError, true, JSON.stringify(result));
  const answer = JSON.parse(result.content[0].text);
  assert.equal(answer.connected, false);
  assert.ok(answer.connect_uri.startsWith(`${ISSUER}/connect/${providerName}`), answer.connect_uri);

  // A provider this MCP server may not vend for: refused by the vault, reported as a tool error.
  const refused = await client.callTool({ name: 'upstream_token', arguments: { resource: 'https://api.other.example' } })
    .catch((e) => ({ isError: true, content: [{ text: String(e) }] }));
  assert.equal(refused.isError, true, JSON.stringify(refused));
  assert.match(JSON.stringify(refused), /invalid_target|unauthorized_client/);
  await client.close();
});
