// The upstream identity provider of the federation scenarios: a real node-oidc-provider
// (npm `oidc-provider`, pinned in ../package.json) on loopback, signing ID tokens with an RS256
// key generated here by `jose`. Its own development login and consent pages are what a person
// sees (any login name, any password). Clients register with RFC 7591 dynamic registration at
// /reg. Two test-only routes, under /__test/ (never part of a real IdP):
//   POST /__test/accounts {sub, email, email_verified, groups, preferred_username, overage}
//     declares the claims of an account (unknown logins get sub = login,
//     email = login@example.test, verified);
//   POST /__test/tamper {client_id, mode} makes the ID tokens issued to that client defective
//     (mode "nonce", "aud" or "expired"), re-signed with the provider's own key, so the relying
//     party's refusals are tested against a token the real key signed.
// Prints one line of JSON, {"issuer": …}, once it listens. Usage: node server.mjs [port]
import { createServer } from "node:http";
import Provider from "oidc-provider";
import * as jose from "jose";

const port = Number(process.argv[2] || 0);
const { privateKey } = await jose.generateKeyPair("RS256", { extractable: true, modulusLength: 2048 });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: "rs256-test-key", alg: "RS256", use: "sig" };

const accounts = new Map();
const tamper = new Map();

function claimsOf(sub) {
  const a = accounts.get(sub) || {};
  const out = {
    sub,
    email: a.email ?? `${sub}@example.test`,
    email_verified: a.email_verified ?? true,
    preferred_username: a.preferred_username ?? sub,
  };
  if (a.overage) {
    out._claim_names = { groups: "src1" };
    out._claim_sources = { src1: { endpoint: "https://graph.microsoft.com/v1.0/users/x/getMemberObjects" } };
  } else {
    out.groups = a.groups ?? [];
  }
  return out;
}

const server = createServer();
await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
// `localhost`, while the hosts under test use 127.0.0.1: a browser keeps the two sites' cookies apart.
const issuer = `http://localhost:${server.address().port}`;

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: [],
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
  },
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["preferred_username"],
    groups: ["groups", "_claim_names", "_claim_sources"],
  },
  scopes: ["openid", "email", "profile", "groups", "offline_access"],
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => claimsOf(sub) }),
  ttl: { IdToken: 300, AccessToken: 300, Session: 3600, Interaction: 600, Grant: 3600 },
});
provider.proxy = false;

// Test-only routes and the tampering of ID tokens on their way out of the token endpoint.
provider.use(async (ctx, next) => {
  if (ctx.method === "POST" && ctx.path.startsWith("/__test/")) {
    const chunks = [];
    for await (const c of ctx.req) chunks.push(c);
    const body = JSON.parse(Buffer.concat(chunks).toString() || "{}");
    if (ctx.path === "/__test/accounts") accounts.set(body.sub, body);
    else if (ctx.path === "/__test/tamper") tamper.set(body.client_id, body.mode);
    else ctx.throw(404);
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === "/token" && ctx.status === 200 && ctx.body && ctx.body.id_token) {
    const claims = jose.decodeJwt(ctx.body.id_token);
    const mode = tamper.get(Array.isArray(claims.aud) ? claims.aud[0] : claims.aud);
    if (mode) {
      const now = Math.floor(Date.now() / 1000);
      if (mode === "nonce") claims.nonce = "not-the-nonce-of-this-login";
      if (mode === "aud") claims.aud = "another-relying-party";
      if (mode === "expired") Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
      ctx.body = {
        ...ctx.body,
        id_token: await new jose.SignJWT(claims)
          .setProtectedHeader({ alg: "RS256", kid: jwk.kid, typ: "JWT" })
          .sign(privateKey),
      };
    }
  }
});

server.on("request", provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
