//! Unit tests of [`crate::remote`]: a fake fetcher serving responses by URL, [`MemoryKv`],
//! fixed clock values and a subscriber capturing what is logged.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use url::Url;

use super::*;
use crate::runtime::FetchError;
use crate::store::MemoryKv;

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://docs.example.com/doc.json";
const POLICY: CachePolicy = CachePolicy {
    min_secs: 60,
    max_secs: 3600,
    failure_secs: 10,
};
const MAX: usize = 1024;

/// Serves responses by URL (404 for others), counting fetches.
#[derive(Default)]
struct FakeFetcher {
    answers: Mutex<HashMap<String, Result<FetchResponse, FetchError>>>,
    calls: AtomicUsize,
}

impl FakeFetcher {
    fn serving(url: &str, answer: Result<FetchResponse, FetchError>) -> Self {
        let f = Self::default();
        f.set(url, answer);
        f
    }
    fn set(&self, url: &str, answer: Result<FetchResponse, FetchError>) {
        self.answers.lock().unwrap().insert(url.into(), answer);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl Fetcher for FakeFetcher {
    async fn get(&self, url: &Url, max_bytes: usize) -> Result<FetchResponse, FetchError> {
        assert_eq!(
            max_bytes, MAX,
            "the document's limit is passed to the fetcher"
        );
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answers
            .lock()
            .unwrap()
            .get(url.as_str())
            .cloned()
            .unwrap_or_else(|| Ok(resp(404, None, b"not found")))
    }
}

fn resp(status: u16, cache_control: Option<&str>, body: &[u8]) -> FetchResponse {
    FetchResponse {
        status,
        content_type: Some("application/json".into()),
        cache_control: cache_control.map(str::to_owned),
        body: body.to_vec(),
    }
}

fn json_resp(doc: &Value, cache_control: Option<&str>) -> FetchResponse {
    resp(200, cache_control, doc.to_string().as_bytes())
}

fn remote<'a>(kv: &'a MemoryKv, f: &'a FakeFetcher, now: i64, loopback: bool) -> Remote<'a> {
    Remote {
        kv,
        fetcher: f,
        now,
        allow_loopback: loopback,
        cache: POLICY,
    }
}

fn doc(url: &Url) -> Doc<'_> {
    Doc {
        kind: Kind::ClientJwks,
        url,
        cache_id: url.as_str(),
        max_bytes: MAX,
    }
}

fn validate(resp: &FetchResponse) -> Result<Value, String> {
    resp.json_document(MAX, "document")
        .map_err(|e| e.to_string())
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    futures::executor::block_on(f)
}

fn get(kv: &MemoryKv, f: &FakeFetcher, now: i64, url: &str) -> Result<Value, String> {
    let url = Url::parse(url).unwrap();
    run(remote(kv, f, now, false).get(&doc(&url), validate)).map_err(|e| e.to_string())
}

#[test]
fn s1_loopback_rule_is_the_setting_on_a_loopback_issuer() {
    let mut cfg = Config::default();
    assert!(cfg.issuer_is_loopback());
    assert!(!allow_loopback(&cfg), "off by default");
    cfg.cimd.allow_loopback = true;
    assert!(allow_loopback(&cfg));
    let local = Url::parse("http://127.0.0.1:8080/doc.json").unwrap();
    check_url(&cfg, &local).unwrap();
    cfg.issuer = "https://auth.example.com".into();
    assert!(!allow_loopback(&cfg), "never with a public issuer");
    assert!(check_url(&cfg, &local).is_err());
    cfg.cimd.allow_loopback = false;
    assert!(!allow_loopback(&cfg));
}

#[test]
fn s1_s3_refused_destinations_are_never_fetched() {
    let kv = MemoryKv::default();
    let f = FakeFetcher::default();
    for url in [
        "http://127.0.0.1:8080/doc.json",
        "https://127.0.0.1/doc.json",
        "https://localhost/doc.json",
        "https://[::1]/doc.json",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/doc.json",
        "https://[::ffff:c0a8:1]/doc.json",
        "http://docs.example.com/doc.json",
    ] {
        let e = get(&kv, &f, NOW, url).unwrap_err();
        assert_eq!(e, Kind::ClientJwks.unreachable(), "{url}");
    }
    assert_eq!(f.calls(), 0);
    // With the loopback rule's consent, loopback (and plain http to it) is fetched.
    let url = Url::parse("http://127.0.0.1:8080/doc.json").unwrap();
    f.set(url.as_str(), Ok(json_resp(&json!({"a": 1}), None)));
    let v = run(remote(&kv, &f, NOW + 100, true).get(&doc(&url), validate)).unwrap();
    assert_eq!(v, json!({"a": 1}));
    assert_eq!(f.calls(), 1);
}

#[test]
fn s7_success_is_cached_for_its_lifetime_within_floor_and_ceiling() {
    for (header, lifetime) in [
        (Some("max-age=300"), 300),
        (Some("public, max-age=5"), POLICY.min_secs),
        (Some("max-age=99999999"), POLICY.max_secs),
        (Some("no-store"), POLICY.min_secs),
        (None, POLICY.min_secs),
    ] {
        let kv = MemoryKv::default();
        let f = FakeFetcher::serving(URL, Ok(json_resp(&json!({"v": 1}), header)));
        assert_eq!(get(&kv, &f, NOW, URL).unwrap(), json!({"v": 1}));
        // Served from the cache until its lifetime ends, even if the document now fails.
        f.set(URL, Err(FetchError::Timeout));
        assert_eq!(
            get(&kv, &f, NOW + lifetime - 1, URL).unwrap(),
            json!({"v": 1})
        );
        assert_eq!(f.calls(), 1, "{header:?}");
        get(&kv, &f, NOW + lifetime, URL).unwrap_err();
        assert_eq!(f.calls(), 2, "{header:?}: refetched at {lifetime}s");
    }
}

#[test]
fn s7_failures_are_cached_briefly() {
    let kv = MemoryKv::default();
    let f = FakeFetcher::serving(URL, Err(FetchError::Transport("reset".into())));
    let e = get(&kv, &f, NOW, URL).unwrap_err();
    f.set(URL, Ok(json_resp(&json!({"v": 2}), None)));
    let again = get(&kv, &f, NOW + POLICY.failure_secs - 1, URL).unwrap_err();
    assert_eq!(again, e, "the cached failure says the same");
    assert_eq!(f.calls(), 1);
    assert_eq!(
        get(&kv, &f, NOW + POLICY.failure_secs, URL).unwrap(),
        json!({"v": 2})
    );
    assert_eq!(f.calls(), 2);
    // A refused document is a failure too, cached with its reason.
    let kv = MemoryKv::default();
    let f = FakeFetcher::serving(URL, Ok(resp(200, None, b"{nope")));
    let e = get(&kv, &f, NOW, URL).unwrap_err();
    assert!(e.contains("not valid JSON"), "{e}");
    assert_eq!(get(&kv, &f, NOW + 1, URL).unwrap_err(), e);
    assert_eq!(f.calls(), 1);
}

/// Records every event's fields as one line.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

impl Capture {
    fn logged(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l.contains(needle))
    }
}

#[test]
fn e1_the_caller_gets_the_public_phrase_and_the_log_gets_the_detail() {
    let capture = Capture::default();
    let kv = MemoryKv::default();
    let f = FakeFetcher::serving(
        URL,
        Err(FetchError::Transport(
            "connection refused by 10.9.8.7".into(),
        )),
    );
    let metadata = "https://169.254.169.254/latest/meta-data";
    let (told, refused) = tracing::subscriber::with_default(capture.clone(), || {
        (
            get(&kv, &f, NOW, URL).unwrap_err(),
            get(&kv, &f, NOW, metadata).unwrap_err(),
        )
    });
    for e in [&told, &refused] {
        assert_eq!(*e, Kind::ClientJwks.unreachable());
        for hint in ["10.9.8.7", "refused", "169.254", "link-local", "address"] {
            assert!(!e.contains(hint), "'{hint}' told: {e}");
        }
    }
    assert!(capture.logged("connection refused by 10.9.8.7"));
    let why = crate::ssrf::check_url(&Url::parse(metadata).unwrap(), false).unwrap_err();
    assert!(capture.logged(&why.to_string()), "{why}");
    // Each kind has its own phrase, none with detail.
    assert!(Kind::ClientMetadata
        .unreachable()
        .starts_with("the document could not be retrieved"));
    assert!(Kind::IdpJwks
        .unreachable()
        .starts_with("the JWK Set could not be retrieved"));
}

#[test]
fn s4_s5_redirects_error_statuses_and_oversized_bodies_are_refused() {
    // A validator that accepts anything: the module itself refuses these.
    let accept = |_: &FetchResponse| Ok::<_, String>(json!(true));
    let url = Url::parse(URL).unwrap();
    for (status, body) in [
        (301, &b"{}"[..]),
        (302, b"{}"),
        (304, b""),
        (404, b"{}"),
        (500, b""),
    ] {
        let kv = MemoryKv::default();
        let mut r = resp(status, None, body);
        r.content_type = None;
        let f = FakeFetcher::serving(URL, Ok(r));
        let e = run(remote(&kv, &f, NOW, false).get(&doc(&url), accept)).unwrap_err();
        assert_eq!(e.to_string(), format!("the server answered HTTP {status}"));
        assert_eq!(f.calls(), 1, "the redirect is not followed");
    }
    let kv = MemoryKv::default();
    let f = FakeFetcher::serving(URL, Ok(resp(200, None, &vec![b' '; MAX + 1])));
    let e = run(remote(&kv, &f, NOW, false).get(&doc(&url), accept)).unwrap_err();
    assert_eq!(e.to_string(), format!("the JWK Set exceeds {MAX} bytes"));
    let kv = MemoryKv::default();
    let f = FakeFetcher::serving(URL, Err(FetchError::TooLarge));
    let e = run(remote(&kv, &f, NOW, false).get(&doc(&url), accept)).unwrap_err();
    assert_eq!(e.to_string(), Kind::ClientJwks.unreachable());
}

#[test]
fn stale_values_are_refetched_at_most_every_interval_and_kept_if_the_refetch_fails() {
    let kv = MemoryKv::default();
    let f = FakeFetcher::serving(
        URL,
        Ok(json_resp(&json!({"kid": "k1"}), Some("max-age=600"))),
    );
    let url = Url::parse(URL).unwrap();
    let get_kid = |now: i64, kid: &'static str| {
        run(remote(&kv, &f, now, false).get_refreshing(
            &doc(&url),
            validate,
            |v: &Value| v["kid"] != kid,
            10,
        ))
    };
    assert_eq!(get_kid(NOW, "k1").unwrap()["kid"], "k1");
    assert_eq!(
        get_kid(NOW + 5, "k2").unwrap()["kid"],
        "k1",
        "within the interval"
    );
    assert_eq!(f.calls(), 1);
    f.set(
        URL,
        Ok(json_resp(&json!({"kid": "k2"}), Some("max-age=600"))),
    );
    assert_eq!(get_kid(NOW + 10, "k2").unwrap()["kid"], "k2", "refetched");
    assert_eq!(f.calls(), 2);
    // A failed refetch keeps the value we had, and the interval still holds.
    f.set(URL, Err(FetchError::Timeout));
    assert_eq!(get_kid(NOW + 20, "k3").unwrap()["kid"], "k2");
    assert_eq!(f.calls(), 3);
    assert_eq!(get_kid(NOW + 25, "k3").unwrap()["kid"], "k2");
    assert_eq!(f.calls(), 3);
    // The kept value lives for the floor.
    get_kid(NOW + 20 + POLICY.min_secs, "k2").unwrap_err();
    assert_eq!(f.calls(), 4);
}

#[test]
fn cache_keys_are_hashed_and_bound_to_the_url() {
    let key = cache_key(Kind::ClientMetadata, URL);
    assert!(key.starts_with("cimd:"), "{key}");
    assert!(!key.contains("example"), "{key}");
    assert_ne!(key, cache_key(Kind::ClientJwks, URL));
    assert_ne!(
        key,
        cache_key(Kind::ClientMetadata, "https://docs.example.com/other")
    );
    // Two URLs under one cache id (an IdP whose jwks_uri moved): the old entry is a miss.
    let kv = MemoryKv::default();
    let other = "https://docs.example.com/moved.json";
    let f = FakeFetcher::serving(
        URL,
        Ok(json_resp(&json!({"at": "old"}), Some("max-age=600"))),
    );
    f.set(other, Ok(json_resp(&json!({"at": "new"}), None)));
    let (a, b) = (Url::parse(URL).unwrap(), Url::parse(other).unwrap());
    let under_id = |url| Doc {
        kind: Kind::IdpJwks,
        url,
        cache_id: "https://idp.example.com",
        max_bytes: MAX,
    };
    let r = remote(&kv, &f, NOW, false);
    assert_eq!(run(r.get(&under_id(&a), validate)).unwrap()["at"], "old");
    assert_eq!(run(r.get(&under_id(&b), validate)).unwrap()["at"], "new");
    assert_eq!(f.calls(), 2);
}
