#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz corpora (fuzz/corpus/<target>/seed-*): realistic,
valid requests and documents the fuzzer mutates from. Signed seeds use the targets' fixed
key (scalar 0x07 * 32, fuzz/src/lib.rs). Needs the `cryptography` package. Run from fuzz/."""
import base64, hashlib, json, os
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives import hashes

def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = ec.derive_private_key(int.from_bytes(bytes([7] * 32), "big"), ec.SECP256R1())
nums = key.public_key().public_numbers()
JWK = {"kty": "EC", "crv": "P-256", "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}

def sign(header, claims):
    inp = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    r, s = utils.decode_dss_signature(key.sign(inp.encode(), ec.ECDSA(hashes.SHA256())))
    return inp + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

NOW = 1_800_000_000
ATH = b64(hashlib.sha256(b"at-123").digest())
CHALLENGE = b64(hashlib.sha256(b"a" * 43).digest())
seeds = {
  "authorize_query": [
    f"response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=mcp%3Aread%20mcp%3Awrite&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256&resource=https%3A%2F%2Fmcp.example%2Fmcp",
    f"response_type=code&client_id=https%3A%2F%2Fapp.example%2Fclient.json&redirect_uri=http%3A%2F%2F127.0.0.1%3A5173%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256&dpop_jkt=0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    "response_type=code&client_id=app&redirect_uri=com.example.app%3A%2Fcb&scope=openid&prompt=consent&code_challenge_method=plain",
  ],
  "token_form": [
    "\x00grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&client_id=app&code_verifier=" + "a" * 43,
    "\x01grant_type=refresh_token&refresh_token=rt-1&client_id=app&client_secret=s3cret&scope=mcp%3Aread",
    "\x00grant_type=client_credentials&client_id=svc&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + sign({"alg": "ES256"}, {"iss": "svc", "sub": "svc", "aud": "https://as.example", "exp": NOW + 60, "jti": "j1"}),
    "\x02grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=t&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&resource=https%3A%2F%2Fmcp.example%2F",
  ],
  "basic_header": [
    "Basic " + base64.b64encode(b"app:s3cret").decode() + "\ngrant_type=client_credentials",
    "Basic " + base64.b64encode(b"my%20app:p%40ss%3Aword").decode() + "\nclient_id=my+app",
    "basic " + base64.b64encode(b"app:").decode() + "\n",
    "Bearer abc\nclient_id=app&client_secret=x",
  ],
  "redirect_uri": [
    "https://app.example/cb\nhttps://app.example/cb",
    "http://127.0.0.1/cb\nhttp://127.0.0.1:49152/cb",
    "http://[::1]:8080/callback?x=1\nhttp://[::1]/callback?x=1",
    "com.example.app:/oauth2redirect\ncom.example.app:/oauth2redirect",
    "cursor://anysphere.cursor-retrieval/oauth/callback\njavascript:alert(1)",
    "https://app.example/a/../cb\n\tJaVaScRiPt:alert(1)",
  ],
  "jws": [
    "\x00" + sign({"alg": "ES256", "kid": "k1", "typ": "JWT"}, {"iss": "c1", "sub": "c1", "aud": "https://as.example", "exp": NOW + 60, "iat": NOW, "jti": "j"}),
    "\x00" + sign({"alg": "ES256", "jwk": JWK}, {"sub": "x"}),
    "\x00eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    '\x01{"alg":"ES256","typ":"JWT"}\n{"iss":"c1","sub":"c1","aud":["https://as.example"],"exp":1800000060,"nbf":1799999990,"iat":1800000000,"jti":"j"}',
    '\x01{"alg":"ES256"}\n{"exp":1e300,"iat":-9223372036854775808}',
  ],
  "dpop_proof": [
    "\x00" + sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": JWK}, {"jti": "j1", "htm": "POST", "htu": "https://as.example/token", "iat": NOW}),
    "\x02" + sign({"typ": "dpop+jwt", "alg": "ES256", "jwk": JWK}, {"jti": "j2", "htm": "POST", "htu": "https://AS.example:443/token?x#y", "iat": NOW - 10, "ath": ATH}),
    '\x01{"typ":"dpop+jwt","alg":"ES256"}\n{"jti":"j3","htm":"POST","htu":"https://as.example/token","iat":1800000000}',
    '\x07{"typ":"dpop+jwt","alg":"ES256"}\n{"jti":"j4","htm":"POST","htu":"https://as.example/./token","iat":1799999999,"nonce":"@nonce@","ath":"' + ATH + '"}',
    '\x05{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"' + JWK["x"] + '","y":"' + JWK["y"] + '","d":"AAAA"}}\n{"jti":"j5","htm":"post","htu":"https://as.example/token","iat":"1800000000","nonce":"bad"}',
  ],
  "cimd_document": [
    "\x00max-age=3600\n" + json.dumps({"client_id": "https://app.example/client.json", "client_name": "App", "redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}),
    "\x01no-store\n" + json.dumps({"client_id": "https://app.example/client.json", "redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [dict(JWK, kid="k1", use="sig")]}}),
    "\x00public, max-age=999999999\n" + json.dumps({"keys": [JWK]}),
    "\x02max-age=-1, no-cache\n" + json.dumps({"client_id": "https://app.example/client.json", "client_secret": "x"}),
  ],
  "registration_metadata": [
    json.dumps({"redirect_uris": ["https://app.example/cb"], "client_name": "My App", "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"], "token_endpoint_auth_method": "none", "scope": "mcp:read mcp:write", "contacts": ["ops@app.example"]}),
    json.dumps({"redirect_uris": ["com.example.app:/cb", "http://localhost/cb"], "application_type": "native", "client_uri": "https://app.example", "logo_uri": "https://app.example/logo.png", "dpop_bound_access_tokens": True}),
    json.dumps({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [dict(JWK, kid="k1")]}, "software_id": "x", "software_version": "1"}),
    json.dumps({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_basic", "client_name": "\u202eevil", "tos_uri": "http://app.example/tos"}),
  ],
  "traceparent": [
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra\n00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    " 00-00000000000000000000000000000000-00f067aa0ba902b7-01\t",
    "ff-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
  ],
}
for target, items in seeds.items():
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(items):
        with open(os.path.join(d, f"seed-{i}"), "wb") as f:
            f.write(s.encode())
