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
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as oauth from 'oauth4webapi';
import { ISSUER, Browser, admin, createUser, uid } from '../lib/helpers.js';
import { REDIRECT, connectedClient, freePort, registerResource, spawnServer, stepUpJourney, stopServers } from '../lib/mcp-servers.js';

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
async function startExample({ vendClient, beforeStart } = {}) {
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  await registerResource(resource, 'Rust example MCP server',
    vendClient ? { exchange_clients: [vendClient.client_id] } : {});
  await beforeStart?.(resource);
  const env = vendClient
    ? { MCP_CLIENT_ID: vendClient.client_id, MCP_CLIENT_SECRET: vendClient.client_secret }
    : {};
  return spawnServer(exampleBinary(), [], resource, { env });
}

test('MCP SDK client against the Rust example: 401 discovery, registration, whoami, 403 step-up, write_note', async () => {
  const server = await startExample();
  const user = await createUser();
  // The SDK registers with the scope of the first challenge (mcp:read) and steps up by itself.
  const { me } = await stepUpJourney(server.resource, user, { tools: ['upstream_token', 'whoami', 'write_note'] });
  assert.equal(me.scheme, 'Bearer');
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
