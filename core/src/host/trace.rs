//! W3C Trace Context (Recommendation, §3.2 `traceparent`): the trace id a request belongs
//! to, taken from a valid `traceparent` header or started here. A header that does not
//! parse (wrong length or version, upper-case hex, an all-zero id, repeated) is replaced by a
//! new trace, never trusted in part.

use http::HeaderMap;

use crate::runtime::Rng;

/// The trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// The trace id (32 lower-case hex digits) in a `traceparent` value, if it is valid.
pub fn parse_traceparent(value: &str) -> Option<&str> {
    let v = value.trim_matches([' ', '\t']);
    let version = v.get(0..2)?;
    // Version 00 is exactly 55 characters; a later version may append fields after a `-`.
    let fits = match version {
        "00" => v.len() == 55,
        _ => v.len() == 55 || v.as_bytes().get(55) == Some(&b'-'),
    };
    if version == "ff" || !fits || !lower_hex(version) {
        return None;
    }
    let (trace_id, parent_id, flags) = (v.get(3..35)?, v.get(36..52)?, v.get(53..55)?);
    let dashes = [2, 35, 52].iter().all(|&i| v.as_bytes()[i] == b'-');
    let valid = dashes
        && lower_hex(trace_id)
        && lower_hex(parent_id)
        && lower_hex(flags)
        && !all_zero(trace_id)
        && !all_zero(parent_id);
    valid.then_some(trace_id)
}

fn lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

/// The trace id of a request with `headers`: from its one valid `traceparent`, else 16 new
/// random bytes from `rng` in hex.
pub fn trace_id(headers: &HeaderMap, rng: &dyn Rng) -> String {
    let mut given = headers.get_all(TRACEPARENT).iter();
    if let (Some(v), None) = (given.next(), given.next()) {
        if let Some(id) = v.to_str().ok().and_then(parse_traceparent) {
            return id.to_owned();
        }
    }
    let mut buf = [0u8; 16];
    rng.fill(&mut buf);
    if buf.iter().all(|b| *b == 0) {
        buf[15] = 1;
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SeededRng;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_gives_its_trace_id() {
        assert_eq!(
            parse_traceparent(VALID),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // A later version may carry more fields.
        let future =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds";
        assert_eq!(
            parse_traceparent(future),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01x",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "00-<script>alert(1)</script>aaaaaaaaaaaaaa-00f067aa0ba9",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_missing_bad_or_repeated_header_starts_a_new_trace() {
        let rng = SeededRng::new(3);
        let mut h = HeaderMap::new();
        let fresh = trace_id(&h, &rng);
        assert_eq!(fresh.len(), 32);
        assert!(parse_traceparent(&format!("00-{fresh}-00f067aa0ba902b7-01")).is_some());
        h.insert(TRACEPARENT, VALID.parse().unwrap());
        assert_eq!(trace_id(&h, &rng), "4bf92f3577b34da6a3ce929d0e0e4736");
        h.append(TRACEPARENT, VALID.parse().unwrap());
        assert_ne!(trace_id(&h, &rng), "4bf92f3577b34da6a3ce929d0e0e4736");
        h.insert(TRACEPARENT, "garbage".parse().unwrap());
        assert_ne!(trace_id(&h, &rng), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
