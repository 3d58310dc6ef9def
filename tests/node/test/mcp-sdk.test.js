// The MCP TypeScript SDK's client `auth()` against Portcullis: protected resource metadata
// discovery (RFC 9728, path-inserted), authorization server discovery (RFC 8414), dynamic
// registration (RFC 7591), PKCE (RFC 7636), login and consent, the code exchange with the
// resource indicator (RFC 8707), refresh rotation; the access token verifies as an RFC 9068
// JWT with `jose` against the published JWKS.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { ISSUER, Browser, createResource, createUser } from '../lib/helpers.js';

const REDIRECT = 'http://127.0.0.1:33418/callback';

/** An OAuthClientProvider whose "browser" is our form-filling Browser. */
class TestProvider {
  constructor(user) {
    this.user = user;
    this.browser = new Browser();
    this.info = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.lastState = undefined;
    this.callback = undefined;
  }

  get redirectUrl() {
    return REDIRECT;
  }

  get clientMetadata() {
    return {
      client_name: 'MCP SDK test client',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.lastState = randomBytes(12).toString('base64url');
    return this.lastState;
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
    this.authorizationUrl = url;
    this.callback = await this.browser.authorize(url, this.user);
  }

  saveCodeVerifier(v) {
    this.verifier = v;
  }

  codeVerifier() {
    return this.verifier;
  }
}

test('MCP SDK auth(): discovery, registration, login, consent, token, refresh', async () => {
  const resource = await createResource();
  const user = await createUser();
  const provider = new TestProvider(user);
  const jwks = createRemoteJWKSet(new URL(`${ISSUER}/.well-known/jwks.json`));

  // 1. No tokens: discovery, registration, then a redirect to the authorization endpoint.
  assert.equal(await auth(provider, { serverUrl: resource }), 'REDIRECT');
  assert.ok(provider.info?.client_id, 'the SDK registered a client');
  assert.equal(provider.info.client_secret, undefined, 'a public client has no secret');
  const authz = provider.authorizationUrl;
  assert.equal(`${authz.origin}${authz.pathname}`, `${ISSUER}/oauth/authorize`);
  assert.equal(authz.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authz.searchParams.get('resource'), resource, 'RFC 8707 resource from the PRM');

  // The browser came back to the client's redirect URI with code, state and iss (RFC 9207).
  const cb = provider.callback;
  assert.equal(`${cb.origin}${cb.pathname}`, REDIRECT);
  assert.equal(cb.searchParams.get('state'), provider.lastState);
  assert.deepEqual(cb.searchParams.getAll('iss'), [ISSUER]);
  const code = cb.searchParams.get('code');
  assert.ok(code, 'an authorization code');

  // 2. The code exchange.
  assert.equal(await auth(provider, { serverUrl: resource, authorizationCode: code }), 'AUTHORIZED');
  const first = provider.saved;
  assert.equal(first.token_type.toLowerCase(), 'bearer');
  assert.ok(first.refresh_token, 'a refresh token for a client that registered the grant');
  const { payload, protectedHeader } = await jwtVerify(first.access_token, jwks, {
    issuer: ISSUER,
    audience: resource,
    typ: 'at+jwt',
    algorithms: ['ES256'],
  });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.sub, user.id);
  assert.equal(payload.client_id, provider.info.client_id);
  assert.deepEqual(payload.scope.split(' ').sort(), ['mcp:read', 'mcp:tools']);
  for (const claim of ['jti', 'iat', 'nbf', 'exp']) assert.ok(payload[claim] !== undefined, claim);

  // 3. auth() again with a refresh token: rotation.
  assert.equal(await auth(provider, { serverUrl: resource }), 'AUTHORIZED');
  const second = provider.saved;
  assert.notEqual(second.refresh_token, first.refresh_token, 'F1: the refresh token rotates');
  assert.notEqual(second.access_token, first.access_token);
  await jwtVerify(second.access_token, jwks, { issuer: ISSUER, audience: resource, typ: 'at+jwt' });

  // 4. The consumed refresh token is refused (F2).
  const replay = await fetch(`${ISSUER}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token,
      client_id: provider.info.client_id,
    }),
  });
  assert.equal(replay.status, 400);
  assert.equal((await replay.json()).error, 'invalid_grant');
});
