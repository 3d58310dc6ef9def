// Signs JWTs for the scenarios with keys generated here by `jose` (an implementation
// independent of the server's RustCrypto verification). Reads one JSON object on stdin:
//   {"alg": "RS256" | "PS256" | "EdDSA", "kid": "…",
//    "tokens": [{"header": {…}, "claims": {…}, "hmac_with_public_key": false}]}
// and prints {"jwk": <the public JWK, with kid>, "private_jwk": …, "tokens": ["<compact JWS>", …]}.
// Given "private_jwk" (from an earlier run), that key signs instead of a new one. A token with
// "hmac_with_public_key" is signed HS256 with the public key's SPKI PEM as the HMAC secret
// (the classic algorithm-confusion forgery); its header's alg is HS256.
import * as jose from "jose";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const input = JSON.parse(Buffer.concat(chunks).toString());
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
process.stdout.write(JSON.stringify({ jwk, private_jwk, tokens }));
