//! Criterion benchmarks of the native host's hot path without HTTP: ES256 signing with ring
//! (next to RustCrypto for comparison) and a whole `client_credentials` token request through
//! `Portcullis::handle` on the real SQLite store (client authentication, resource lookup,
//! signing, audit insert). Results are recorded in BENCHMARKS.md.

use std::sync::Arc;

use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::crypto_ring::RingCrypto;
use portcullis::server::{OsRng, SystemClock};
use portcullis_core::config::{Config, SeedClient, SeedResource};
use portcullis_core::crypto::rustcrypto::generate_scalar;
use portcullis_core::crypto::{CryptoProvider, RustCrypto};
use portcullis_core::runtime::{NoFetcher, SeededRng};
use portcullis_core::store::sqlite::SqliteStore;
use portcullis_core::store::MemoryKv;
use portcullis_core::{Bytes, Env, Portcullis};

fn signing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let scalar = generate_scalar(&SeededRng::new(3));
    let message = [7u8; 300];
    for (name, provider) in [
        (
            "es256_sign_ring",
            Arc::new(RingCrypto::new()) as Arc<dyn CryptoProvider>,
        ),
        ("es256_sign_rustcrypto", Arc::new(RustCrypto)),
    ] {
        let signer = provider.es256_signer(&scalar).unwrap();
        c.bench_function(name, |b| {
            b.iter(|| rt.block_on(signer.sign(&message)).unwrap())
        });
    }
}

fn client_credentials(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/bench.db", dir.path().display());
    let cfg = Config {
        resources: vec![SeedResource {
            uri: "https://mcp.example.com/mcp".into(),
            scopes: vec!["mcp:tools".into()],
            name: None,
            introspection_clients: vec![],
            exchange_clients: vec![],
        }],
        clients: vec![SeedClient {
            client_id: "bench".into(),
            client_secret: Some("bench-secret-0123456789abcdef".into()),
            client_name: None,
            redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            scope: None,
            token_endpoint_auth_method: Some("client_secret_basic".into()),
            jwks: None,
            jwks_uri: None,
        }],
        ..Config::default()
    };
    let env = Env {
        clock: Arc::new(SystemClock),
        rng: Arc::new(OsRng),
        sql: Arc::new(SqliteStore::open(&url).unwrap()),
        kv: Arc::new(MemoryKv::default()),
        crypto: Arc::new(RingCrypto::new()),
        fetcher: Arc::new(NoFetcher),
    };
    let server = rt.block_on(Portcullis::start(env, cfg)).unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bench:bench-secret-0123456789abcdef")
    );
    let body = Bytes::from_static(
        b"grant_type=client_credentials&resource=https%3A%2F%2Fmcp.example.com%2Fmcp",
    );
    c.bench_function("client_credentials_in_process_sqlite_ring", |b| {
        b.iter(|| {
            let req = http::Request::builder()
                .method("POST")
                .uri("/oauth/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", &basic)
                .body(body.clone())
                .unwrap();
            let resp = rt.block_on(server.handle(req));
            assert_eq!(resp.status(), 200);
        })
    });
}

criterion_group!(benches, signing, client_credentials);
criterion_main!(benches);
