//! The signing ceiling of a token endpoint on this machine (issue 16, BENCHMARKS.md): a bare
//! loop that builds an RFC 9068 access token's claims as JSON, base64url-encodes header and
//! claims, and signs them with ES256 through the native host's crypto provider (ring), the
//! exact signing path `portcullis serve` uses (`portcullis_core::jose::sign_es256`). No HTTP,
//! no storage, no logging: nothing a server could do faster per token.
//!
//! ```sh
//! cargo run --release -p portcullis --example signing_ceiling -- [seconds]
//! ```
//!
//! Prints one line: tokens, the loop thread's CPU time (from `/proc/thread-self/schedstat`,
//! so other load on the machine does not count), and tokens per CPU-second. `scripts/bench`
//! runs it next to the load test and reports the server's figure as a share of this one.

use std::time::{Duration, Instant};

use portcullis::crypto_ring::RingCrypto;
use portcullis::server::OsRng;
use portcullis_core::access_token::AccessClaims;
use portcullis_core::crypto::rustcrypto::generate_scalar;
use portcullis_core::crypto::CryptoProvider;
use portcullis_core::jose::sign_es256;
use portcullis_core::runtime::random_token;

/// CPU time of the calling thread so far (Linux `schedstat`: nanoseconds on a CPU).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat (Linux)");
    let ns: u64 = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("schedstat starts with the nanoseconds on a CPU");
    Duration::from_nanos(ns)
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds: a whole number"))
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    // The server's own RNG (the `jti` costs what it costs there).
    let rng = OsRng;
    let signer = RingCrypto::new()
        .es256_signer(&generate_scalar(&rng))
        .expect("a P-256 key");
    let kid = "Onpws0MGDYTfL6NnmIaRDGfSpagQLndKwISOguosQyM";
    let mint = |now: i64| {
        // The claims `client_credentials` tokens carry (core/src/access_token.rs).
        let claims = AccessClaims {
            iss: "http://127.0.0.1:19400".into(),
            sub: "bench".into(),
            aud: "https://mcp.example.com/mcp".into(),
            client_id: "bench".into(),
            scope: "mcp:tools".into(),
            jti: random_token(&rng, 16),
            iat: now,
            nbf: now,
            exp: now + 900,
            auth_time: None,
            cnf: None,
            act: None,
            agent_name: Some("bench".into()),
            client_registration: Some("static".into()),
        };
        let claims = serde_json::to_value(&claims).expect("claims as JSON");
        rt.block_on(sign_es256(signer.as_ref(), kid, "at+jwt", &claims))
            .expect("a signature")
    };
    // Warm-up, then the measured loop.
    for _ in 0..500 {
        std::hint::black_box(mint(1_700_000_000));
    }
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let mut tokens = 0u64;
    while wall.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..100 {
            std::hint::black_box(mint(1_700_000_000 + tokens as i64));
            tokens += 1;
        }
    }
    let cpu = thread_cpu() - cpu;
    println!(
        "signing ceiling: {tokens} tokens in {:.2} CPU-s ({:.2} s wall): {:.0} tokens per CPU-second",
        cpu.as_secs_f64(),
        wall.elapsed().as_secs_f64(),
        tokens as f64 / cpu.as_secs_f64()
    );
}
