// A standard OAuth client library, oauth4webapi, against Portcullis: RFC 8414 discovery,
// RFC 7591 registration (public and confidential), the code flow with PKCE and RFC 9207
// `iss` validation, refresh rotation, RFC 7662 introspection, RFC 7009 revocation,
// client_credentials, and RFC 9068 access token validation as a resource server would.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { ISSUER, Browser, admin, createResource, createUser } from '../lib/helpers.js';

const insecure = { [oauth.allowInsecureRequests]: true }; // the test server is http on loopback
const REDIRECT = 'http://127.0.0.1:45873/cb';

async function discover() {
  const issuer = new URL(ISSUER);
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
  return oauth.processDiscoveryResponse(issuer, res);
}

async function register(as, metadata) {
  const res = await oauth.dynamicClientRegistrationRequest(as, metadata, insecure);
  return oauth.processDynamicClientRegistrationResponse(res);
}

async function validateAtResource(as, accessToken, resource) {
  const request = new Request(resource, { headers: { authorization: `Bearer ${accessToken}` } });
  return oauth.validateJwtAccessToken(as, request, resource, insecure);
}

async function codeFlow(as, client, clientAuth, resource, user) {
  const verifier = oauth.generateRandomCodeVerifier();
  const challenge = await oauth.calculatePKCECodeChallenge(verifier);
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    scope: 'mcp:tools',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    resource,
  }).toString();
  const callback = await new Browser().authorize(url, user);
  // Checks state, and iss against the issuer (RFC 9207), and that there is no error.
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const res = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, REDIRECT, verifier, {
    additionalParameters: { resource },
    ...insecure,
  });
  return oauth.processAuthorizationCodeResponse(as, client, res);
}

test('oauth4webapi: discovery advertises what the flow needs', async () => {
  const as = await discover();
  assert.equal(as.issuer, ISSUER);
  assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
  assert.equal(as.authorization_response_iss_parameter_supported, true);
  assert.ok(as.registration_endpoint && as.revocation_endpoint && as.introspection_endpoint);
});

test('oauth4webapi: public client code flow, refresh rotation, revocation', async () => {
  const as = await discover();
  const resource = await createResource();
  const user = await createUser();
  const client = await register(as, {
    client_name: 'oauth4webapi public client',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    application_type: 'native',
  });
  const none = oauth.None();

  const tokens = await codeFlow(as, client, none, resource, user);
  assert.equal(tokens.token_type, 'bearer');
  assert.equal(tokens.scope, 'mcp:tools');
  const claims = await validateAtResource(as, tokens.access_token, resource);
  assert.equal(claims.sub, user.id);
  assert.equal(claims.client_id, client.client_id);

  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, none, tokens.refresh_token, insecure),
  );
  assert.ok(refreshed.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token, 'F1: rotation');
  await validateAtResource(as, refreshed.access_token, resource);

  // RFC 7009: revoke the current refresh token; it stops working.
  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, client, none, refreshed.refresh_token, {
      additionalParameters: { token_type_hint: 'refresh_token' },
      ...insecure,
    }),
  );
  await assert.rejects(
    async () =>
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, none, refreshed.refresh_token, insecure),
      ),
    (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant',
  );
});

test('oauth4webapi: confidential client, introspection, access token revocation, client_credentials', async () => {
  const as = await discover();
  const resource = await createResource();
  const user = await createUser();
  // Created by the operator: only operator-trusted clients get client_credentials (K1).
  const client = await admin('POST', '/admin/clients', {
    client_name: 'oauth4webapi confidential client',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'mcp:tools mcp:read',
  });
  assert.ok(client.client_secret, 'a confidential client is given its secret once');
  const basic = oauth.ClientSecretBasic(client.client_secret);

  const tokens = await codeFlow(as, client, basic, resource, user);
  const introspect = async (token) =>
    oauth.processIntrospectionResponse(
      as,
      client,
      await oauth.introspectionRequest(as, client, basic, token, insecure),
    );
  const active = await introspect(tokens.access_token);
  assert.equal(active.active, true);
  assert.equal(active.sub, user.id);
  assert.equal(active.client_id, client.client_id);

  await oauth.processRevocationResponse(
    await oauth.revocationRequest(as, client, basic, tokens.access_token, insecure),
  );
  assert.equal((await introspect(tokens.access_token)).active, false, 'the revoked access token is inactive');
  // V2: revoking the access token leaves the refresh token working.
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, basic, tokens.refresh_token, insecure),
  );
  assert.equal((await introspect(refreshed.access_token)).active, true);

  const cc = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, basic, { resource, scope: 'mcp:read' }, insecure),
  );
  assert.equal(cc.refresh_token, undefined);
  const ccClaims = await validateAtResource(as, cc.access_token, resource);
  assert.equal(ccClaims.client_id, client.client_id);
  assert.equal(ccClaims.scope, 'mcp:read');
});
