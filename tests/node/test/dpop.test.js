// DPoP (RFC 9449) with an independent client library: oauth4webapi signs the proofs and
// manages server nonces; jose computes the RFC 7638 thumbprint. Checks that its proofs are
// accepted and its tokens carry the right `cnf.jkt`, that oauth4webapi's own resource-server
// validation accepts the bound token with a proof for the resource request, that a replayed
// proof is refused, that a public client's refresh token is bound to the key and a code to
// `dpop_jkt`, and that a nonce challenge round-trips against a second server started here with
// PORTCULLIS_DPOP__REQUIRE_NONCE=true.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import { ISSUER, Browser, admin, createResource, createUser, uid } from '../lib/helpers.js';

const insecure = { [oauth.allowInsecureRequests]: true }; // the test servers are http on loopback
const REDIRECT = 'http://127.0.0.1:45873/cb';

async function discover(issuerUrl = ISSUER) {
  const issuer = new URL(issuerUrl);
  const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
  return oauth.processDiscoveryResponse(issuer, res);
}

async function register(as, metadata) {
  const res = await oauth.dynamicClientRegistrationRequest(as, metadata, insecure);
  return oauth.processDynamicClientRegistrationResponse(res);
}

async function thumbprintOf(keyPair) {
  return calculateJwkThumbprint(await exportJWK(keyPair.publicKey), 'sha256');
}

/** Calls `fn` with a custom fetch that records the last request oauth4webapi sends. */
function recorder() {
  const seen = [];
  return {
    seen,
    fetch: async (url, init) => {
      seen.push({ url: String(url), headers: new Headers(init.headers), body: init.body });
      return fetch(url, init);
    },
  };
}

// Machine clients are created by the operator (self-registration cannot ask for
// client_credentials: K1 in docs/security.md).
// `srv`: another server (its admin base and key) instead of the shared one.
async function confidentialMachine(srv) {
  const body = {
    client_name: 'oauth4webapi DPoP machine',
    grant_types: ['client_credentials'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: 'mcp:tools mcp:read',
  };
  let client;
  if (srv) {
    const res = await fetch(`${srv.admin}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.ok(res.ok, `creating the machine client: ${res.status}`);
    client = await res.json();
  } else {
    client = await admin('POST', '/admin/clients', body);
  }
  return { client, auth: oauth.ClientSecretBasic(client.client_secret) };
}

test('dpop: client_credentials with oauth4webapi proofs gives a token bound to its key', async () => {
  const as = await discover();
  assert.deepEqual(as.dpop_signing_alg_values_supported, ['ES256']);
  const resource = await createResource();
  const { client, auth } = await confidentialMachine();
  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);

  const tokens = await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, { resource }, { DPoP, ...insecure }),
  );
  assert.equal(tokens.token_type, 'dpop');
  const jkt = await thumbprintOf(keyPair);
  assert.equal(decodeJwt(tokens.access_token).cnf?.jkt, jkt, 'cnf.jkt is the RFC 7638 thumbprint');
  assert.equal(await DPoP.calculateThumbprint(), jkt);

  // Introspection reports the binding (RFC 9449 §6.2).
  const intro = await oauth.processIntrospectionResponse(
    as,
    client,
    await oauth.introspectionRequest(as, client, auth, tokens.access_token, insecure),
  );
  assert.equal(intro.active, true);
  assert.equal(intro.token_type, 'DPoP');
  assert.equal(intro.cnf?.jkt, jkt);

  // oauth4webapi as the resource server: a resource request with its DPoP proof (ath, cnf).
  const rs = recorder();
  const resourceUrl = new URL(resource);
  await oauth
    .protectedResourceRequest(tokens.access_token, 'GET', resourceUrl, new Headers(), null, {
      DPoP,
      [oauth.customFetch]: rs.fetch,
      ...insecure,
    })
    .catch(() => {}); // nothing serves the MCP resource itself; only the request matters
  const sent = rs.seen.at(-1);
  assert.match(sent.headers.get('authorization'), /^DPoP /);
  const claims = await oauth.validateJwtAccessToken(
    as,
    new Request(resourceUrl, { headers: sent.headers }),
    resource,
    { requireDPoP: true, ...insecure },
  );
  assert.equal(claims.cnf.jkt, jkt);
});

test('dpop: a replayed oauth4webapi proof is refused', async () => {
  const as = await discover();
  const resource = await createResource();
  const { client, auth } = await confidentialMachine();
  const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  const rec = recorder();
  await oauth.processClientCredentialsResponse(
    as,
    client,
    await oauth.clientCredentialsGrantRequest(as, client, auth, { resource }, {
      DPoP,
      [oauth.customFetch]: rec.fetch,
      ...insecure,
    }),
  );
  const first = rec.seen.at(-1);
  assert.ok(first.headers.get('dpop'), 'oauth4webapi sent a DPoP proof');
  // The same request, byte for byte, again: the proof's jti is spent (D2).
  const replay = await fetch(first.url, { method: 'POST', headers: first.headers, body: first.body });
  assert.equal(replay.status, 400);
  assert.equal((await replay.json()).error, 'invalid_dpop_proof');
});

test('dpop: public client code flow with dpop_jkt; the refresh token is bound to the key', async () => {
  const as = await discover();
  const resource = await createResource();
  const user = await createUser();
  const client = await register(as, {
    client_name: 'oauth4webapi DPoP public client',
    redirect_uris: [REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    dpop_bound_access_tokens: true,
  });
  assert.equal(client.dpop_bound_access_tokens, true);
  const none = oauth.None();
  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);
  const jkt = await thumbprintOf(keyPair);

  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: client.client_id,
    redirect_uri: REDIRECT,
    scope: 'mcp:tools',
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    resource,
    dpop_jkt: await DPoP.calculateThumbprint(),
  }).toString();
  const callback = await new Browser().authorize(url, user);
  const params = oauth.validateAuthResponse(as, client, callback, state);
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(as, client, none, params, REDIRECT, verifier, {
      additionalParameters: { resource },
      DPoP,
      ...insecure,
    }),
  );
  assert.equal(tokens.token_type, 'dpop');
  assert.equal(decodeJwt(tokens.access_token).cnf?.jkt, jkt);

  // Without the key (no DPoP handle, or another key), the refresh token is refused.
  await assert.rejects(
    async () =>
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, none, tokens.refresh_token, insecure),
      ),
    (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_dpop_proof',
  );
  const thief = oauth.DPoP(client, await oauth.generateKeyPair('ES256'));
  await assert.rejects(
    async () =>
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, none, tokens.refresh_token, { DPoP: thief, ...insecure }),
      ),
    (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant',
  );
  const refreshed = await oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, none, tokens.refresh_token, { DPoP, ...insecure }),
  );
  assert.equal(refreshed.token_type, 'dpop');
  assert.equal(decodeJwt(refreshed.access_token).cnf?.jkt, jkt);
});

// ---- a second server that requires nonces ----------------------------------------------------

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

function portcullisBinary() {
  const candidates = [
    process.env.PORTCULLIS_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, 'debug', 'portcullis'),
    join(homedir(), '.cache', 'portcullis', 'target', 'debug', 'portcullis'),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`the portcullis binary was not found (tried ${candidates.join(', ')}): ` +
      'build it with `cargo build -p portcullis` or set PORTCULLIS_BIN');
  }
  return found;
}

let nonceServer = null;

after(() => {
  if (nonceServer) {
    nonceServer.child.kill('SIGTERM');
    rmSync(nonceServer.dir, { recursive: true, force: true });
  }
});

async function startNonceServer() {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-dpop-nonce-'));
  const [port, adminPort] = [await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${port}`;
  const adminKey = randomBytes(24).toString('base64url');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PORTCULLIS_')));
  Object.assign(env, {
    PORTCULLIS_ISSUER: issuer,
    PORTCULLIS_LISTEN: `127.0.0.1:${port}`,
    PORTCULLIS_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    PORTCULLIS_DATABASE_URL: `sqlite://${join(dir, 'nonce.db')}`,
    PORTCULLIS_ADMIN_API_KEY: adminKey,
    PORTCULLIS_MASTER_KEY: randomBytes(32).toString('base64url'),
    PORTCULLIS_DPOP__REQUIRE_NONCE: 'true',
    PORTCULLIS_LOG_FORMAT: 'text',
  });
  const child = spawn(portcullisBinary(), ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  nonceServer = { child, dir };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`the nonce server exited: ${log}`);
    try {
      if ((await fetch(`${issuer}/health`)).ok) {
        return { issuer, admin: `http://127.0.0.1:${adminPort}`, adminKey };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the nonce server did not become healthy: ${log}`);
}

test('dpop: a nonce challenge round-trips (use_dpop_nonce, DPoP-Nonce, retry)', async () => {
  const srv = await startNonceServer();
  const resource = `${srv.issuer}/${uid('mcp')}`;
  const res = await fetch(`${srv.admin}/admin/resources`, {
    method: 'POST',
    headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ uri: resource, scopes: ['mcp:tools'] }),
  });
  assert.ok(res.ok, `creating the resource: ${res.status}`);
  const as = await discover(srv.issuer);
  const { client, auth } = await confidentialMachine(srv);
  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);

  const rec = recorder();
  const request = () =>
    oauth.clientCredentialsGrantRequest(as, client, auth, { resource }, {
      DPoP,
      [oauth.customFetch]: rec.fetch,
      ...insecure,
    });
  let challenged = false;
  let tokens;
  try {
    tokens = await oauth.processClientCredentialsResponse(as, client, await request());
  } catch (err) {
    assert.ok(oauth.isDPoPNonceError(err), `expected use_dpop_nonce, got ${err}`);
    assert.equal(err.error, 'use_dpop_nonce');
    assert.ok(err.response.headers.get('dpop-nonce'), 'the challenge carries a DPoP-Nonce header');
    challenged = true;
    // oauth4webapi picked up the nonce from the challenge; the retry carries it.
    tokens = await oauth.processClientCredentialsResponse(as, client, await request());
  }
  assert.ok(challenged, 'the first proof (without a nonce) was challenged');
  assert.equal(rec.seen.length, 2);
  const retryProof = decodeJwt(rec.seen[1].headers.get('dpop'));
  assert.ok(retryProof.nonce, 'the retry proof carries the server nonce');
  assert.equal(tokens.token_type, 'dpop');
  assert.equal(decodeJwt(tokens.access_token).cnf?.jkt, await thumbprintOf(keyPair));

  // The nonce from the successful response keeps working for the next request.
  const again = await oauth.processClientCredentialsResponse(as, client, await request());
  assert.equal(again.token_type, 'dpop');
  assert.equal(rec.seen.length, 3, 'no second challenge');
});
