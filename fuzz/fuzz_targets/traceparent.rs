//! Fuzz target: the W3C Trace Context `traceparent` header (§3.2): a value the parser
//! accepts yields 32 lower-case hex digits, not all zero, and the trace id of a request is
//! always of that shape whatever it sent.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_core::host::trace::{parse_traceparent, trace_id, TRACEPARENT};
use portcullis_core::runtime::SeededRng;
use portcullis_fuzz::{split, text};

fn is_trace_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = split(data, b'\n');
    if let Some(id) = parse_traceparent(&text(first)) {
        assert!(is_trace_id(id), "{id:?}");
    }
    let mut headers = HeaderMap::new();
    for v in [first, second] {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            headers.append(TRACEPARENT, v);
        }
    }
    let id = trace_id(&headers, &SeededRng::new(1));
    assert!(is_trace_id(&id), "{id:?}");
});
