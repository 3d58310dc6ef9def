//! A fake [`Fetcher`] for tests of the modules that fetch remote documents through
//! [`crate::remote`] (client JWK Sets, client ID metadata documents, IdP discovery and keys):
//! JSON documents served by URL with a fixed `max-age`, 404 for other URLs, fetches counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::Value;

use crate::runtime::{FetchError, FetchResponse, Fetcher};

/// Serves JSON documents by URL (`Cache-Control: max-age=<max_age>`), 404 for other URLs.
#[derive(Debug)]
pub(crate) struct Documents {
    docs: Mutex<HashMap<String, Value>>,
    max_age: i64,
    calls: AtomicUsize,
}

impl Documents {
    /// No documents yet; each served one may be cached for `max_age` seconds.
    pub(crate) fn new(max_age: i64) -> Self {
        Self {
            docs: Mutex::new(HashMap::new()),
            max_age,
            calls: AtomicUsize::new(0),
        }
    }
    /// Serves `doc` at `url` from now on.
    pub(crate) fn set(&self, url: &str, doc: Value) {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.into(), doc);
    }
    /// How many fetches were made, of any URL.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Fetcher for Documents {
    async fn get(&self, url: &url::Url, _max: usize) -> Result<FetchResponse, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let doc = self
            .docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(url.as_str())
            .cloned();
        Ok(match doc {
            Some(d) => FetchResponse {
                status: 200,
                content_type: Some("application/json".into()),
                cache_control: Some(format!("max-age={}", self.max_age)),
                body: d.to_string().into_bytes(),
            },
            None => FetchResponse {
                status: 404,
                content_type: Some("text/plain".into()),
                cache_control: None,
                body: b"not found".to_vec(),
            },
        })
    }
}
