// Every document Portcullis serves to an MCP client, parsed with the MCP TypeScript SDK's own
// zod schemas (the ones its client runs before trusting a document): authorization server
// metadata (RFC 8414) at every metadata URL, protected resource metadata (RFC 9728) with and
// without a resource name, dynamic registration responses (RFC 7591) for a public and a
// confidential client, token responses and token errors. The SDK's schemas accept unknown
// members but reject `null` where a member is optional, so every document is also checked for
// `null` anywhere (an absent optional member is omitted).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  OAuthMetadataSchema,
  OAuthProtectedResourceMetadataSchema,
  OAuthClientInformationFullSchema,
  OAuthTokensSchema,
  OAuthErrorResponseSchema,
} from '@modelcontextprotocol/sdk/shared/auth.js';
import { discoverAuthorizationServerMetadata, discoverOAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { ISSUER, admin, uid, createResource } from '../lib/helpers.js';

/** JSON paths of every `null` in `doc`. */
function nulls(doc, at = '$') {
  if (doc === null) return [at];
  if (Array.isArray(doc)) return doc.flatMap((v, i) => nulls(v, `${at}[${i}]`));
  if (typeof doc === 'object') return Object.entries(doc).flatMap(([k, v]) => nulls(v, `${at}.${k}`));
  return [];
}

async function getJson(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200, `${url}: ${res.status}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  return res.json();
}

/** Parses `doc` with `schema`, failing with the schema's own message, and finds no null. */
function parses(schema, doc, what) {
  const r = schema.safeParse(doc);
  assert.ok(r.success, `${what} fails the MCP SDK schema: ${r.error?.message}\n${JSON.stringify(doc)}`);
  assert.deepEqual(nulls(doc), [], `${what} has null members: ${JSON.stringify(doc)}`);
  return r.data;
}

test('authorization server metadata: the SDK schema, the same on every URL, meaningful scopes, no ID-token members', async () => {
  const resource = await createResource(['schema:read', 'schema:write']);
  const url = new URL(ISSUER);
  const path = url.pathname.replace(/\/$/, '');
  const inserted = await getJson(`${url.origin}/.well-known/oauth-authorization-server${path}`);
  const appended = await getJson(`${ISSUER}/.well-known/oauth-authorization-server`);
  const doc = parses(OAuthMetadataSchema, inserted, 'AS metadata');
  assert.deepEqual(appended, inserted, 'identical on every metadata path');
  assert.equal(doc.issuer, ISSUER, 'the issuer the client built the URL from');
  for (const s of ['schema:read', 'schema:write']) assert.ok(doc.scopes_supported.includes(s), s);
  assert.equal(inserted.id_token_signing_alg_values_supported, undefined, 'no ID tokens are issued');
  const oidc = await fetch(`${ISSUER}/.well-known/openid-configuration`);
  assert.equal(oidc.status, 404, 'not an OpenID Provider');

  // The SDK's own discovery, as its auth() runs it, from the resource's metadata.
  const prm = await discoverOAuthProtectedResourceMetadata(resource);
  assert.deepEqual(prm.authorization_servers, [ISSUER]);
  const discovered = await discoverAuthorizationServerMetadata(prm.authorization_servers[0]);
  assert.equal(discovered.issuer, ISSUER);
});

test('protected resource metadata parses with and without a resource name', async () => {
  const named = await createResource(['schema:read']);
  const unnamed = `${ISSUER}/${uid('unnamed')}`;
  await admin('POST', '/admin/resources', { uri: unnamed, scopes: ['schema:read'] });
  for (const [uri, name] of [[named, 'Node test MCP server'], [unnamed, undefined]]) {
    const u = new URL(uri);
    const doc = await getJson(`${u.origin}/.well-known/oauth-protected-resource${u.pathname}`);
    const parsed = parses(OAuthProtectedResourceMetadataSchema, doc, `PRM of ${uri}`);
    assert.equal(parsed.resource, uri);
    assert.equal(parsed.resource_name, name);
    assert.equal('resource_name' in doc, name !== undefined, 'absent, not null');
    // The SDK sends `resource` only when it accepted the document.
    const viaSdk = await discoverOAuthProtectedResourceMetadata(uri);
    assert.equal(viaSdk.resource, uri);
  }
});

test('registration responses, token responses and token errors parse with the SDK schemas', async () => {
  const resource = await createResource(['schema:read']);
  const register = async (metadata) => {
    const res = await fetch(`${ISSUER}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(metadata),
    });
    assert.equal(res.status, 201, await res.clone().text());
    return res.json();
  };
  const pub = await register({ redirect_uris: ['http://127.0.0.1:33419/callback'], token_endpoint_auth_method: 'none' });
  parses(OAuthClientInformationFullSchema, pub, 'public registration response');
  const conf = await register({
    redirect_uris: ['https://app.example/cb'],
    client_name: 'Schema test',
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'schema:read',
  });
  assert.ok(parses(OAuthClientInformationFullSchema, conf, 'confidential registration response').client_secret);

  // A token response: a machine client an operator created (self-registered clients get no
  // client_credentials grant).
  const machine = await admin('POST', '/admin/clients', {
    client_name: 'Schema machine client',
    redirect_uris: ['https://app.example/machine/cb'],
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_post',
    scope: 'schema:read',
  });
  const token = await fetch(`${ISSUER}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: machine.client_id,
      client_secret: machine.client_secret,
      resource,
    }),
  });
  assert.equal(token.status, 200);
  parses(OAuthTokensSchema, await token.json(), 'token response');
  const bad = await fetch(`${ISSUER}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'nope', client_id: pub.client_id }),
  });
  assert.equal(bad.status, 400);
  const err = parses(OAuthErrorResponseSchema, await bad.json(), 'token error');
  assert.equal(err.error, 'invalid_grant');
});
