//! A HashiCorp Vault Transit-compatible test server: a TEST DOUBLE, because no Vault server
//! can be installed on the machines that run these tests. It was written from Vault's
//! published HTTP API documentation (`website/content/api-docs/secret/transit.mdx` and the
//! token auth method's `revoke-self`), not from Vault's code, and Portcullis has not been run
//! against a real Vault (docs/kms.md says so).
//!
//! What it follows: token auth (`X-Vault-Token`; a missing, unknown or revoked token, or one
//! whose policy lacks the path, is 403 `{"errors":["permission denied"]}`), JSON answers with
//! a `data` object, errors as an `errors` array with 400 (bad input), 403, 404 (unknown key
//! on read, unsupported path) and 405; keys with versions (`keys/:name` create, read and
//! `rotate`; `min_decryption_version`), `sign/:name(/:hash)` for `ecdsa-p256` with
//! `key_version`, `hash_algorithm` and `marshaling_algorithm` (`asn1` or `jws`),
//! `encrypt`/`decrypt`/`datakey/{plaintext,wrapped}` for `aes256-gcm96` keys with
//! `vault:v{N}:` ciphertexts, and `auth/token/revoke-self`. Policies are lists of path
//! patterns (`transit/sign/portcullis-signing/*` style, `*` only as a suffix) standing for
//! Vault ACL policies with the capabilities the path needs.
//!
//! It runs on a thread of its own (a current-thread tokio runtime), so it outlives the test
//! that started it, and keeps per-operation counters for the tests ([`TransitServer::calls`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::{json, Value};

const STD: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const URL_SAFE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE;

/// Fresh random bytes.
fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the system's randomness");
    b
}

/// The PEM SubjectPublicKeyInfo form Vault shows asymmetric public keys in.
fn public_key_pem(sk: &SigningKey) -> String {
    let der = sk
        .verifying_key()
        .to_public_key_der()
        .expect("a DER public key");
    let b64 = STD.encode(der.as_bytes());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

enum Material {
    Ecdsa(SigningKey),
    Aes([u8; 32]),
}

struct Version {
    material: Material,
    created: u64,
}

struct Key {
    kind: &'static str,
    versions: BTreeMap<u64, Version>,
    min_decryption_version: u64,
}

impl Key {
    fn new(kind: &'static str) -> Self {
        let mut k = Key {
            kind,
            versions: BTreeMap::new(),
            min_decryption_version: 1,
        };
        k.rotate();
        k
    }

    fn latest(&self) -> u64 {
        self.versions.keys().next_back().copied().unwrap_or(0)
    }

    fn rotate(&mut self) {
        let material = if self.kind == "ecdsa-p256" {
            Material::Ecdsa(loop {
                if let Ok(k) = SigningKey::from_slice(&random::<32>()) {
                    break k;
                }
            })
        } else {
            Material::Aes(random::<32>())
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let next = self.latest() + 1;
        self.versions.insert(next, Version { material, created });
    }

    fn read(&self, name: &str) -> Value {
        let keys: serde_json::Map<String, Value> = self
            .versions
            .iter()
            .map(|(v, ver)| {
                let value = match &ver.material {
                    Material::Ecdsa(sk) => json!({
                        "name": "P-256",
                        "public_key": public_key_pem(sk),
                        "creation_time": format!("{}", ver.created),
                    }),
                    Material::Aes(_) => json!(ver.created),
                };
                (v.to_string(), value)
            })
            .collect();
        let ecdsa = self.kind == "ecdsa-p256";
        json!({
            "name": name,
            "type": self.kind,
            "keys": keys,
            "latest_version": self.latest(),
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": 0,
            "deletion_allowed": false,
            "derived": false,
            "exportable": false,
            "supports_encryption": !ecdsa,
            "supports_decryption": !ecdsa,
            "supports_derivation": !ecdsa,
            "supports_signing": ecdsa,
        })
    }
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Key>,
    /// Token -> the path patterns its policy allows (`None`: root).
    tokens: HashMap<String, Option<Vec<String>>>,
    revoked: HashSet<String>,
    calls: HashMap<String, u64>,
}

/// A running Transit-compatible server on a loopback port.
#[derive(Clone)]
pub struct TransitServer {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The mount path (`transit`).
    pub mount: String,
    root: String,
    state: Arc<Mutex<State>>,
}

/// The policy Portcullis needs, as docs/kms.md gives it, for keys `signing` and `sealing` under
/// mount `transit`.
pub fn portcullis_policy(signing: &str, sealing: &str) -> Vec<String> {
    vec![
        format!("transit/keys/{signing}"),
        format!("transit/sign/{signing}"),
        format!("transit/sign/{signing}/*"),
        format!("transit/datakey/plaintext/{sealing}"),
        format!("transit/decrypt/{sealing}"),
    ]
}

impl TransitServer {
    /// Starts a server with the Transit engine at `transit/` and a root token.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback listener");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let address = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("a bound address").port()
        );
        let root = format!("hvs.root-{}", URL_SAFE.encode(random::<12>()));
        let mut state = State::default();
        state.tokens.insert(root.clone(), None);
        let server = Self {
            address,
            mount: "transit".into(),
            root,
            state: Arc::new(Mutex::new(state)),
        };
        let serving = server.clone();
        std::thread::Builder::new()
            .name("transit-test-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the transit server");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let s = serving.clone();
                        tokio::spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                let s = s.clone();
                                async move { Ok::<_, Infallible>(s.answer(req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })
            .expect("a thread for the transit server");
        server
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates key `name` of `kind` (`ecdsa-p256`, `aes256-gcm96`), as `vault write
    /// transit/keys/NAME type=KIND` does.
    pub fn create_key(&self, name: &str, kind: &'static str) {
        self.lock()
            .keys
            .entry(name.to_owned())
            .or_insert_with(|| Key::new(kind));
    }

    /// Rotates key `name` (`vault write -f transit/keys/NAME/rotate`); returns the new version.
    pub fn rotate(&self, name: &str) -> u64 {
        let mut st = self.lock();
        let key = st.keys.get_mut(name).expect("a key to rotate");
        key.rotate();
        key.latest()
    }

    /// A new token whose policy allows `paths` (`vault token create -policy=…`).
    pub fn token(&self, paths: Vec<String>) -> String {
        let token = format!("hvs.{}", URL_SAFE.encode(random::<18>()));
        self.lock().tokens.insert(token.clone(), Some(paths));
        token
    }

    /// The root token.
    pub fn root_token(&self) -> &str {
        &self.root
    }

    /// The uncompressed SEC1 public key of `version` of ECDSA key `name`.
    pub fn public_key(&self, name: &str, version: u64) -> Option<Vec<u8>> {
        let st = self.lock();
        match &st.keys.get(name)?.versions.get(&version)?.material {
            Material::Ecdsa(sk) => Some(
                sk.verifying_key()
                    .to_encoded_point(false)
                    .as_bytes()
                    .to_vec(),
            ),
            Material::Aes(_) => None,
        }
    }

    /// How many requests for operation `op` (`sign`, `decrypt`, `datakey`, `keys`...) were
    /// answered, allowed or not.
    pub fn calls(&self, op: &str) -> u64 {
        self.lock().calls.get(op).copied().unwrap_or(0)
    }

    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error(StatusCode::BAD_REQUEST, "failed to read the request body"),
        };
        let token = parts
            .headers
            .get("x-vault-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        self.handle(&parts.method, parts.uri.path(), &token, &body)
    }

    fn handle(
        &self,
        method: &Method,
        path: &str,
        token: &str,
        body: &[u8],
    ) -> Response<Full<Bytes>> {
        let Some(path) = path.strip_prefix("/v1/") else {
            return error(StatusCode::NOT_FOUND, "unsupported path");
        };
        let mut st = self.lock();
        let op = path
            .strip_prefix(&format!("{}/", self.mount))
            .and_then(|p| p.split('/').next())
            .unwrap_or(path)
            .to_owned();
        *st.calls.entry(op).or_default() += 1;
        // Token auth: every path, even an unknown one, needs a valid token first.
        let policy = match st.tokens.get(token) {
            Some(p) if !st.revoked.contains(token) => p.clone(),
            _ => return error(StatusCode::FORBIDDEN, "permission denied"),
        };
        if path == "auth/token/revoke-self" {
            if method != Method::POST && method != Method::PUT {
                return error(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation");
            }
            st.revoked.insert(token.to_owned());
            return empty(StatusCode::NO_CONTENT);
        }
        if let Some(paths) = &policy {
            let allowed = paths.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => p == path,
            });
            if !allowed {
                return error(StatusCode::FORBIDDEN, "permission denied");
            }
        }
        let Some(rest) = path.strip_prefix(&format!("{}/", self.mount)) else {
            return error(StatusCode::NOT_FOUND, "unsupported path");
        };
        let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice(body) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "failed to parse JSON input: not an object",
                    )
                }
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("failed to parse JSON input: {e}"),
                    )
                }
            }
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let post = method == Method::POST || method == Method::PUT;
        match (segs.as_slice(), post) {
            (["keys", name], false) if method == Method::GET => match st.keys.get(*name) {
                Some(k) => data(k.read(name)),
                None => error_list(StatusCode::NOT_FOUND, &[]),
            },
            (["keys", name], true) => {
                let kind = match input["type"].as_str().unwrap_or("aes256-gcm96") {
                    "ecdsa-p256" => "ecdsa-p256",
                    "aes256-gcm96" => "aes256-gcm96",
                    other => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            &format!("unknown key type: {other}"),
                        )
                    }
                };
                st.keys
                    .entry((*name).to_owned())
                    .or_insert_with(|| Key::new(kind));
                empty(StatusCode::NO_CONTENT)
            }
            (["keys", name, "rotate"], true) => match st.keys.get_mut(*name) {
                Some(k) => {
                    k.rotate();
                    data(k.read(name))
                }
                None => error(StatusCode::BAD_REQUEST, "key not found"),
            },
            (["sign", name], true) => sign(&st, name, None, &input),
            (["sign", name, hash], true) => sign(&st, name, Some(hash), &input),
            (["encrypt", name], true) => encrypt(&st, name, &input),
            (["decrypt", name], true) => decrypt(&st, name, &input),
            (["datakey", kind @ ("plaintext" | "wrapped"), name], true) => {
                datakey(&st, name, kind == &"plaintext", &input)
            }
            ([..], false) if method == Method::GET => {
                error(StatusCode::NOT_FOUND, "unsupported path")
            }
            ([..], true) => error(StatusCode::NOT_FOUND, "unsupported path"),
            _ => error(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation"),
        }
    }
}

fn sign(st: &State, name: &str, hash: Option<&str>, input: &Value) -> Response<Full<Bytes>> {
    let Some(key) = st.keys.get(name) else {
        return error(StatusCode::BAD_REQUEST, "signing key not found");
    };
    if key.kind != "ecdsa-p256" {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("key type {} does not support signing", key.kind),
        );
    }
    let hash = hash
        .or_else(|| input["hash_algorithm"].as_str())
        .unwrap_or("sha2-256");
    if hash != "sha2-256" {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("this test server supports only sha2-256, not {hash}"),
        );
    }
    let Some(Ok(message)) = input["input"].as_str().map(|i| STD.decode(i)) else {
        return error(StatusCode::BAD_REQUEST, "unable to decode input as base64");
    };
    let version = match input["key_version"].as_u64().unwrap_or(0) {
        0 => key.latest(),
        v if v > key.latest() => {
            return error(
                StatusCode::BAD_REQUEST,
                "requested version for signing is greater than the latest key version",
            )
        }
        v => v,
    };
    let Some(Version {
        material: Material::Ecdsa(sk),
        ..
    }) = key.versions.get(&version)
    else {
        return error(StatusCode::BAD_REQUEST, "invalid key version");
    };
    let sig: Signature = sk.sign(&message);
    let encoded = match input["marshaling_algorithm"].as_str().unwrap_or("asn1") {
        "asn1" => STD.encode(sig.to_der().as_bytes()),
        "jws" => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig.to_bytes()),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unsupported marshaling algorithm {other}"),
            )
        }
    };
    data(json!({ "signature": format!("vault:v{version}:{encoded}"), "key_version": version }))
}

/// The AES key `name`, or the 400 Vault answers for a missing key or one of another type.
fn aes_key<'a>(st: &'a State, name: &str) -> Result<&'a Key, String> {
    match st.keys.get(name) {
        Some(k) if k.kind == "aes256-gcm96" => Ok(k),
        Some(k) => Err(format!("key type {} does not support encryption", k.kind)),
        None => Err("encryption key not found".into()),
    }
}

fn seal(key: &Key, plaintext: &[u8]) -> String {
    let version = key.latest();
    let Some(Version {
        material: Material::Aes(k),
        ..
    }) = key.versions.get(&version)
    else {
        unreachable!("an aes key has aes versions");
    };
    let nonce = random::<12>();
    let ct = Aes256Gcm::new(k.into())
        .encrypt(&Nonce::from(nonce), plaintext)
        .expect("AES-GCM encryption");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    format!("vault:v{version}:{}", STD.encode(out))
}

fn encrypt(st: &State, name: &str, input: &Value) -> Response<Full<Bytes>> {
    let key = match aes_key(st, name) {
        Ok(k) => k,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let Some(Ok(plain)) = input["plaintext"].as_str().map(|p| STD.decode(p)) else {
        return error(StatusCode::BAD_REQUEST, "failed to base64-decode plaintext");
    };
    data(json!({ "ciphertext": seal(key, &plain), "key_version": key.latest() }))
}

fn decrypt(st: &State, name: &str, input: &Value) -> Response<Full<Bytes>> {
    let key = match aes_key(st, name) {
        Ok(k) => k,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let text = input["ciphertext"].as_str().unwrap_or("");
    let parsed = text
        .strip_prefix("vault:v")
        .and_then(|r| r.split_once(':'))
        .and_then(|(v, b)| Some((v.parse::<u64>().ok()?, STD.decode(b).ok()?)));
    let Some((version, raw)) = parsed.filter(|(_, raw)| raw.len() > 12) else {
        return error(StatusCode::BAD_REQUEST, "invalid ciphertext: no prefix");
    };
    if version < key.min_decryption_version {
        return error(
            StatusCode::BAD_REQUEST,
            "ciphertext or signature version is disallowed by policy (too old)",
        );
    }
    let Some(Version {
        material: Material::Aes(k),
        ..
    }) = key.versions.get(&version)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid ciphertext: unknown key version",
        );
    };
    let (nonce, ct) = raw.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().expect("12 bytes");
    match Aes256Gcm::new(k.into()).decrypt(&Nonce::from(nonce), ct) {
        Ok(plain) => data(json!({ "plaintext": STD.encode(plain) })),
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            "cipher: message authentication failed",
        ),
    }
}

fn datakey(st: &State, name: &str, plaintext: bool, input: &Value) -> Response<Full<Bytes>> {
    let key = match aes_key(st, name) {
        Ok(k) => k,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let bits = input["bits"].as_u64().unwrap_or(256);
    let fresh: Vec<u8> = match bits {
        128 => random::<16>().to_vec(),
        256 => random::<32>().to_vec(),
        512 => random::<64>().to_vec(),
        _ => return error(StatusCode::BAD_REQUEST, "invalid bit length"),
    };
    let mut out = json!({ "ciphertext": seal(key, &fresh), "key_version": key.latest() });
    if plaintext {
        out["plaintext"] = STD.encode(&fresh).into();
    }
    data(out)
}

fn json_response(status: StatusCode, v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(v.to_string())))
        .expect("a response")
}

fn data(d: Value) -> Response<Full<Bytes>> {
    json_response(
        StatusCode::OK,
        &json!({
            "request_id": URL_SAFE.encode(random::<9>()),
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": d,
            "wrap_info": null,
            "warnings": null,
            "auth": null,
        }),
    )
}

fn error_list(status: StatusCode, errors: &[&str]) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "errors": errors }))
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    error_list(status, &[message])
}

fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("a response")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(
        s: &TransitServer,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = s.handle(&method, path, token, body.to_string().as_bytes());
        let status = r.status().as_u16();
        let bytes = futures::executor::block_on(r.into_body().collect())
            .unwrap()
            .to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[test]
    fn follows_the_documented_shapes_and_codes() {
        let s = TransitServer::start();
        let root = s.root_token().to_owned();
        s.create_key("sig", "ecdsa-p256");
        s.create_key("seal", "aes256-gcm96");
        let (st, v) = call(&s, Method::GET, "/v1/transit/keys/sig", &root, json!({}));
        assert_eq!(st, 200);
        assert_eq!(v["data"]["type"], "ecdsa-p256");
        assert!(v["data"]["keys"]["1"]["public_key"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----"));
        assert_eq!(
            call(&s, Method::GET, "/v1/transit/keys/nope", &root, json!({})).0,
            404
        );
        let (st, v) = call(&s, Method::GET, "/v1/transit/keys/sig", "wrong", json!({}));
        assert_eq!(
            (st, v["errors"][0].as_str()),
            (403, Some("permission denied"))
        );
        let input = STD.encode(b"message");
        let (st, v) = call(
            &s,
            Method::POST,
            "/v1/transit/sign/sig/sha2-256",
            &root,
            json!({"input": input, "marshaling_algorithm": "jws"}),
        );
        assert_eq!(st, 200);
        assert!(v["data"]["signature"]
            .as_str()
            .unwrap()
            .starts_with("vault:v1:"));
        let (st, _) = call(
            &s,
            Method::POST,
            "/v1/transit/sign/sig",
            &root,
            json!({"input": "%%"}),
        );
        assert_eq!(st, 400);
        let (st, v) = call(
            &s,
            Method::POST,
            "/v1/transit/datakey/plaintext/seal",
            &root,
            json!({}),
        );
        assert_eq!(st, 200);
        let (st, d) = call(
            &s,
            Method::POST,
            "/v1/transit/decrypt/seal",
            &root,
            json!({"ciphertext": v["data"]["ciphertext"]}),
        );
        assert_eq!(
            (st, &d["data"]["plaintext"]),
            (200, &v["data"]["plaintext"])
        );
        assert_eq!(s.rotate("sig"), 2);
        let limited = s.token(portcullis_policy("sig", "seal"));
        assert_eq!(
            call(&s, Method::GET, "/v1/transit/keys/sig", &limited, json!({})).0,
            200
        );
        assert_eq!(
            call(
                &s,
                Method::GET,
                "/v1/transit/keys/seal",
                &limited,
                json!({})
            )
            .0,
            403
        );
        let (st, _) = call(
            &s,
            Method::POST,
            "/v1/auth/token/revoke-self",
            &limited,
            json!({}),
        );
        assert_eq!(st, 204);
        assert_eq!(
            call(&s, Method::GET, "/v1/transit/keys/sig", &limited, json!({})).0,
            403
        );
    }
}
