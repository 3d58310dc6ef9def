//! ES256 (RFC 7518 §3.4) through the runtime's WebCrypto (`crypto.subtle`), the Workers
//! provider behind the core's [`CryptoProvider`] seam (DESIGN.md rule 8): native code in
//! workerd instead of pure-Rust elliptic-curve arithmetic in wasm, where signing is the hot
//! path. Private keys are imported once per signer as non-extractable PKCS#8 keys; public keys
//! are imported per verification and kept in a small per-isolate cache. AES-256-GCM (keys and
//! vault tokens at rest, a few hundred bytes per call) and hashing keep the core's RustCrypto
//! defaults.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use js_sys::{Array, Object, Reflect, Uint8Array};
use p256::pkcs8::EncodePrivateKey;
use portcullis_core::crypto::{CryptoError, CryptoProvider, Es256Signer};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};

/// How many imported public keys an isolate keeps.
const PUBLIC_KEY_CACHE: usize = 64;

/// `crypto.subtle` of the Worker's global scope.
fn subtle() -> Result<SubtleCrypto, CryptoError> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    global
        .crypto()
        .map(|c| c.subtle())
        .map_err(|e| js_error("crypto is unavailable", e))
}

fn js_error(what: &str, e: JsValue) -> CryptoError {
    let detail = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_default();
    CryptoError(format!("webcrypto: {what}: {detail}"))
}

fn object(pairs: &[(&str, &str)]) -> Object {
    let o = Object::new();
    for (k, v) in pairs {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v));
    }
    o
}

/// `{ name: "ECDSA", namedCurve: "P-256" }`, the key algorithm.
fn key_algorithm() -> Object {
    object(&[("name", "ECDSA"), ("namedCurve", "P-256")])
}

/// `{ name: "ECDSA", hash: "SHA-256" }`, the signature algorithm.
fn signature_algorithm() -> Object {
    object(&[("name", "ECDSA"), ("hash", "SHA-256")])
}

/// `crypto.subtle.importKey(format, data, algorithm, false, [usage])`: a non-extractable key.
async fn import(
    format: &str,
    data: &[u8],
    algorithm: &Object,
    usage: &str,
) -> Result<CryptoKey, CryptoError> {
    let usages = Array::of1(&JsValue::from_str(usage));
    let data = Uint8Array::from(data);
    let promise = subtle()?
        .import_key_with_object(format, &data, algorithm, false, &usages)
        .map_err(|e| js_error("importKey", e))?;
    JsFuture::from(promise)
        .await
        .map_err(|e| js_error("importKey", e))?
        .dyn_into::<CryptoKey>()
        .map_err(|_| CryptoError("webcrypto: importKey returned no key".into()))
}

/// WebCrypto ES256.
#[derive(Default)]
pub struct WebCrypto {
    /// Imported public keys by their SEC1 bytes, oldest first.
    public_keys: RefCell<VecDeque<(Vec<u8>, CryptoKey)>>,
}

impl WebCrypto {
    async fn public_key(&self, sec1: &[u8]) -> Option<CryptoKey> {
        let cached = self
            .public_keys
            .borrow()
            .iter()
            .find(|(k, _)| k == sec1)
            .map(|(_, key)| key.clone());
        if cached.is_some() {
            return cached;
        }
        // importKey validates the point (on the curve, not the identity).
        let key = import("raw", sec1, &key_algorithm(), "verify").await.ok()?;
        let mut cache = self.public_keys.borrow_mut();
        if cache.len() >= PUBLIC_KEY_CACHE {
            cache.pop_front();
        }
        cache.push_back((sec1.to_vec(), key.clone()));
        Some(key)
    }
}

/// A P-256 private key, imported into WebCrypto on first use.
struct WebCryptoSigner {
    pkcs8: Vec<u8>,
    key: RefCell<Option<CryptoKey>>,
}

impl WebCryptoSigner {
    async fn key(&self) -> Result<CryptoKey, CryptoError> {
        if let Some(key) = self.key.borrow().clone() {
            return Ok(key);
        }
        let key = import("pkcs8", &self.pkcs8, &key_algorithm(), "sign").await?;
        *self.key.borrow_mut() = Some(key.clone());
        Ok(key)
    }
}

#[async_trait(?Send)]
impl Es256Signer for WebCryptoSigner {
    async fn sign(&self, message: &[u8]) -> Result<[u8; 64], CryptoError> {
        let key = self.key().await?;
        let data = Uint8Array::from(message);
        let promise = subtle()?
            .sign_with_object_and_js_u8_array(&signature_algorithm(), &key, &data)
            .map_err(|e| js_error("sign", e))?;
        let sig = JsFuture::from(promise)
            .await
            .map_err(|e| js_error("sign", e))?;
        // WebCrypto's ECDSA signature is already the fixed-size r || s of JWS.
        Uint8Array::new(&sig)
            .to_vec()
            .try_into()
            .map_err(|_| CryptoError("webcrypto: unexpected signature length".into()))
    }
}

#[async_trait(?Send)]
impl CryptoProvider for WebCrypto {
    fn name(&self) -> &'static str {
        "webcrypto"
    }

    // A signer holds a JavaScript `CryptoKey` (not `Send`); Worker isolates are single-threaded.
    #[allow(clippy::arc_with_non_send_sync)]
    fn es256_signer(&self, scalar: &[u8; 32]) -> Result<Arc<dyn Es256Signer>, CryptoError> {
        // WebCrypto imports EC private keys as PKCS#8 (or JWK); p256 writes the document.
        let secret = p256::SecretKey::from_slice(scalar).map_err(|e| CryptoError(e.to_string()))?;
        let doc = secret
            .to_pkcs8_der()
            .map_err(|e| CryptoError(e.to_string()))?;
        Ok(Arc::new(WebCryptoSigner {
            pkcs8: doc.as_bytes().to_vec(),
            key: RefCell::new(None),
        }))
    }

    async fn es256_verify(&self, public_sec1: &[u8], message: &[u8], signature: &[u8]) -> bool {
        // Fixed-size r || s only; r = 0 or s = 0 is refused here as well as by the
        // runtime (J4).
        if signature.len() != 64
            || signature[..32].iter().all(|b| *b == 0)
            || signature[32..].iter().all(|b| *b == 0)
        {
            return false;
        }
        let Some(key) = self.public_key(public_sec1).await else {
            return false;
        };
        let Ok(subtle) = subtle() else {
            return false;
        };
        let sig = Uint8Array::from(signature);
        let data = Uint8Array::from(message);
        let Ok(promise) = subtle.verify_with_object_and_js_u8_array_and_js_u8_array(
            &signature_algorithm(),
            &key,
            &sig,
            &data,
        ) else {
            return false;
        };
        matches!(
            JsFuture::from(promise).await.map(|v| v.as_bool()),
            Ok(Some(true))
        )
    }
}
