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
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import { ISSUER, Browser, admin, createUser, uid } from '../lib/helpers.js';
import { REDIRECT, connectedClient, connectedClientWithTokens, freePort, registerResource, spawnServer, stepUpJourney, stopServers } from '../lib/mcp-servers.js';

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

after(stopServers);

/**
 * Registers a resource on Portcullis and starts the example MCP server for it. `vendClient`:
 * a confidential client (`{ client_id, client_secret }`) allowed to exchange this resource's
 * tokens at the vault.
 */
async function startExample({ vendClient, beforeStart, env: extraEnv = {} } = {}) {
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  await registerResource(resource, 'Rust example MCP server',
    vendClient ? { exchange_clients: [vendClient.client_id] } : {});
  await beforeStart?.(resource);
  const env = vendClient
    ? { MCP_CLIENT_ID: vendClient.client_id, MCP_CLIENT_SECRET: vendClient.client_secret }
    : {};
  return spawnServer(exampleBinary(), [], resource, { env: { ...env, ...extraEnv } });
}

test('MCP SDK client against the Rust example: 401 discovery, registration, whoami, 403 step-up, write_note', async () => {
  const server = await startExample();
  const user = await createUser();
  // The SDK registers with the scope of the first challenge (mcp:read) and steps up by itself.
  const { me } = await stepUpJourney(server.resource, user, { tools: ['upstream_token', 'whoami', 'write_note'] });
  assert.equal(me.scheme, 'Bearer');
});

/** A DPoP-bound token for `resource` (oauth4webapi, through the forms) and its DPoP handler. */
async function dpopBoundToken(resource, user) {
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
  const verifier = oauth.generateRandomCodeVerifier();
  const authz = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: client.client_id, redirect_uri: REDIRECT, response_type: 'code', scope: 'mcp:read',
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    resource,
  })) authz.searchParams.set(k, v);
  const callback = await new Browser().authorize(authz, user);
  const params = oauth.validateAuthResponse(as, client, callback, oauth.expectNoState);
  const exchange = () => oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, verifier, { DPoP: dpop, ...insecure, additionalParameters: { resource } });
  let res = await exchange();
  if (oauth.isDPoPNonceError(await res.clone().json().catch(() => ({})))) res = await exchange();
  const tokens = await oauth.processAuthorizationCodeResponse(as, client, res);
  assert.equal(tokens.token_type.toLowerCase(), 'dpop');
  return { tokens, dpop, insecure };
}

const initializeBody = JSON.stringify({
  jsonrpc: '2.0', id: 1, method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});
const jsonHeaders = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

test('the Rust example refuses what it must: wrong audience, DPoP-bound token as Bearer; accepts DPoP with a proof', async () => {
  const server = await startExample();
  const other = await startExample();
  const user = await createUser();
  const { tokens, dpop, insecure } = await dpopBoundToken(server.resource, user);

  const initialize = initializeBody;
  const headers = jsonHeaders;

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

test('DPoP nonces at the Rust example (RFC 9449 §9): a proof without one gets use_dpop_nonce and a DPoP-Nonce, the retry with it is accepted', async () => {
  const server = await startExample({ env: { MCP_DPOP_NONCE_SECRET: randomBytes(32).toString('base64url') } });
  const user = await createUser();
  const { tokens, dpop, insecure } = await dpopBoundToken(server.resource, user);
  const send = () => oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(server.resource), new Headers(jsonHeaders), initializeBody, { DPoP: dpop, ...insecure });
  // The first proof has no nonce: refused, and oauth4webapi keeps the nonce it was given.
  const refused = await send().then(() => null, (e) => e);
  assert.ok(refused && oauth.isDPoPNonceError(refused), `use_dpop_nonce expected, got ${refused}`);
  assert.equal(refused.response.status, 401);
  assert.ok(refused.response.headers.get('dpop-nonce'), 'a DPoP-Nonce header');
  // The retry's proof carries it.
  const r = await send();
  assert.equal(r.status, 200, await r.clone().text());
  await r.body?.cancel();
});

test('introspection in the Rust example (RFC 7662): write_note stops working once the token is revoked, within the cache time', async () => {
  const rsClient = await admin('POST', '/admin/clients', {
    client_name: uid('rust-example-introspection'),
    redirect_uris: ['https://client.example/unused'],
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
  });
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  await registerResource(resource, 'Rust example MCP server (introspection)', { introspection_clients: [rsClient.client_id] });
  const server = await spawnServer(exampleBinary(), [], resource, {
    env: { MCP_CLIENT_ID: rsClient.client_id, MCP_CLIENT_SECRET: rsClient.client_secret, MCP_INTROSPECTION_TTL: '1' },
  });
  const user = await createUser();
  const { provider } = await stepUpJourney(server.resource, user, { tools: ['upstream_token', 'whoami', 'write_note'] });
  const client = await connectedClientWithTokens(server.resource, provider);
  const ok = await client.callTool({ name: 'write_note', arguments: { text: 'before' } });
  assert.notEqual(ok.isError, true, JSON.stringify(ok));

  // The client revokes its access token (RFC 7009); after the 1 s cache, write_note sees it.
  const r = await fetch(`${ISSUER}/oauth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: provider.tokens().access_token, token_type_hint: 'access_token', client_id: provider.info.client_id }),
  });
  assert.equal(r.status, 200, await r.text());
  await new Promise((res) => setTimeout(res, 1100));
  const refused = await client.callTool({ name: 'write_note', arguments: { text: 'after' } })
    .catch((e) => ({ isError: true, content: [{ text: String(e) }] }));
  assert.equal(refused.isError, true, JSON.stringify(refused));
  assert.match(JSON.stringify(refused), /revoked/);
  // whoami does not introspect: the locally verified token still works there until it expires.
  assert.notEqual((await client.callTool({ name: 'whoami', arguments: {} })).isError, true);
  await client.close();
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
