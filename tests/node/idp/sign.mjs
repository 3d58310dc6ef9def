// Signs JWTs for the scenarios with keys generated here by `jose` (an implementation
// independent of the server's RustCrypto verification). Reads JSON objects on stdin, one per
// line, each
//   {"alg": "RS256" | "PS256" | "EdDSA", "kid": "…",
//    "tokens": [{"header": {…}, "claims": {…}, "hmac_with_public_key": false}]}
// and answers each with one line, in order:
//   {"jwk": <the public JWK, with kid>, "private_jwk": …, "tokens": ["<compact JWS>", …]}
// or {"error": "…"} for a request it could not sign. It exits when stdin ends, so a test
// process keeps one signer for all its scenarios (loading Node and jose once, not per call).
// Given "private_jwk" (from an earlier request), that key signs instead of a new one. A token
// with "hmac_with_public_key" is signed HS256 with the public key's SPKI PEM as the HMAC
// secret (the classic algorithm-confusion forgery); its header's alg is HS256.
import { createInterface } from "node:readline";

import * as jose from "jose";

async function sign(input) {
  let publicKey, privateKey;
  if (input.private_jwk) {
    privateKey = await jose.importJWK(input.private_jwk, input.alg, { extractable: true });
    const { d, p, q, dp, dq, qi, ...pub } = input.private_jwk;
    publicKey = await jose.importJWK(pub, input.alg, { extractable: true });
  } else {
    ({ publicKey, privateKey } = await jose.generateKeyPair(input.alg, {
      extractable: true,
      ...(input.alg === "EdDSA" ? { crv: "Ed25519" } : { modulusLength: 2048 }),
    }));
  }
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: input.kid };
  const private_jwk = await jose.exportJWK(privateKey);
  const pem = new TextEncoder().encode(await jose.exportSPKI(publicKey));
  const tokens = [];
  for (const t of input.tokens) {
    if (t.hmac_with_public_key) {
      tokens.push(
        await new jose.SignJWT(t.claims).setProtectedHeader({ ...t.header, alg: "HS256", kid: input.kid }).sign(pem),
      );
    } else {
      tokens.push(
        await new jose.SignJWT(t.claims)
          .setProtectedHeader({ alg: input.alg, kid: input.kid, ...t.header })
          .sign(privateKey),
      );
    }
  }
  return { jwk, private_jwk, tokens };
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = await sign(JSON.parse(line));
  } catch (e) {
    answer = { error: String(e?.stack ?? e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
