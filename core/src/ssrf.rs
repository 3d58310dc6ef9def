//! Outbound fetch policy (SECURITY-CHECKLIST S1–S3) for client ID metadata documents, IdP
//! JWKS and upstream providers: which URLs may be fetched at all, and which IP addresses a
//! fetcher may connect to after DNS resolution. Special-purpose ranges follow the IANA
//! IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its updates).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Whether an outbound connection to `ip` is allowed (S3). Loopback is refused unless
/// `allow_loopback`; private, link-local, CGNAT, unique-local, unspecified, broadcast,
/// multicast, documentation, benchmarking and reserved ranges always are, including IPv4
/// addresses embedded in IPv6 (mapped, compatible, NAT64, 6to4, translated).
pub fn ip_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_allowed(v4, allow_loopback),
        IpAddr::V6(v6) => v6_allowed(v6, allow_loopback),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn v4_allowed(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if in_v4(ip, [127, 0, 0, 0], 8) {
        return allow_loopback;
    }
    const REFUSED: [([u8; 4], u32); 15] = [
        ([0, 0, 0, 0], 8),       // "this network", 0.0.0.0
        ([10, 0, 0, 0], 8),      // RFC 1918
        ([100, 64, 0, 0], 10),   // CGNAT (RFC 6598)
        ([169, 254, 0, 0], 16),  // link-local, cloud metadata
        ([172, 16, 0, 0], 12),   // RFC 1918
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // TEST-NET-1
        ([192, 31, 196, 0], 24), // AS112
        ([192, 52, 193, 0], 24), // AMT
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // RFC 1918
        ([198, 18, 0, 0], 15),   // benchmarking (RFC 2544)
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24),  // TEST-NET-3
        ([224, 0, 0, 0], 3),     // multicast, reserved (240/4) and broadcast
    ];
    !REFUSED.iter().any(|&(net, p)| in_v4(ip, net, p))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn v6_allowed(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    let bits = u128::from(ip);
    if ip == Ipv6Addr::LOCALHOST {
        return allow_loopback;
    }
    if ip.is_unspecified() {
        return false;
    }
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, IPv4-translated ::ffff:0:0:0/96,
    // and the well-known NAT64 prefix 64:ff9b::/96: judge the embedded IPv4 address.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0; 8], 96)
        || in_v6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return v4_allowed(low32, allow_loopback);
    }
    // 6to4 (2002::/16) embeds an IPv4 address in bits 16..48.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        let embedded = Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32);
        return v4_allowed(embedded, false);
    }
    const REFUSED: [([u16; 8], u32); 11] = [
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local-use NAT64 (RFC 8215)
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64),     // discard-only (RFC 6666)
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),    // Teredo (embeds obfuscated IPv4)
        ([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),    // benchmarking (RFC 5180)
        ([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), // ORCHID
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),    // documentation (RFC 9637)
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),     // unique-local
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),    // link-local
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),    // site-local (deprecated)
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),     // multicast
    ];
    !REFUSED.iter().any(|&(net, p)| in_v6(ip, net, p))
}

/// Why a URL may not be fetched (S1, S3 before DNS). Logged, never shown to a client of a
/// fetch (E1); shown to the operator for a registered `jwks_uri`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfRefusal {
    #[error("URL must not contain user information")]
    UserInfo,
    #[error("URL must not contain a fragment")]
    Fragment,
    #[error("URL must have a host")]
    NoHost,
    #[error("loopback destinations are not allowed")]
    Loopback,
    #[error("destination address {0} is not allowed")]
    Address(IpAddr),
    #[error("only https URLs may be fetched")]
    PlainHttp,
    /// Carries the scheme, already truncated for display.
    #[error("only https URLs may be fetched (scheme '{0}')")]
    Scheme(String),
}

/// Checks a URL before fetching (S1): `https` only (plain `http` only when `allow_loopback`
/// and the host is loopback), no userinfo, no fragment, a host; IP-literal hosts must pass
/// [`ip_allowed`], and `localhost` names count as loopback. Domain names are checked again
/// by the fetcher after DNS resolution (S3).
pub fn check_url(url: &Url, allow_loopback: bool) -> Result<(), SsrfRefusal> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SsrfRefusal::UserInfo);
    }
    if url.fragment().is_some() {
        return Err(SsrfRefusal::Fragment);
    }
    let loopback = match url.host() {
        None => return Err(SsrfRefusal::NoHost),
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() {
                return Err(SsrfRefusal::NoHost);
            }
            let local = d == "localhost" || d.ends_with(".localhost");
            if local && !allow_loopback {
                return Err(SsrfRefusal::Loopback);
            }
            local
        }
        Some(Host::Ipv4(ip)) => {
            if !ip_allowed(IpAddr::V4(ip), allow_loopback) {
                return Err(SsrfRefusal::Address(IpAddr::V4(ip)));
            }
            ip.is_loopback()
        }
        Some(Host::Ipv6(ip)) => {
            if !ip_allowed(IpAddr::V6(ip), allow_loopback) {
                return Err(SsrfRefusal::Address(IpAddr::V6(ip)));
            }
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if allow_loopback && loopback => Ok(()),
        "http" => Err(SsrfRefusal::PlainHttp),
        s => Err(SsrfRefusal::Scheme(
            crate::text::truncate(s, 32).to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(s: &str) -> bool {
        ip_allowed(s.parse().unwrap(), false)
    }

    fn check(s: &str, allow_loopback: bool) -> Result<(), SsrfRefusal> {
        check_url(&Url::parse(s).unwrap(), allow_loopback)
    }

    #[test]
    fn s3_public_addresses_allowed() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(allowed(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn s3_loopback_refused_unless_allowed() {
        for ip in ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1"] {
            assert!(!allowed(ip), "{ip}");
            assert!(
                ip_allowed(ip.parse().unwrap(), true),
                "{ip} with loopback allowed"
            );
        }
    }

    #[test]
    fn s3_private_and_special_ranges_refused() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001:2::1",
            "2001::1",
            "64:ff9b:1::1",
        ] {
            assert!(!allowed(ip), "{ip} must be refused");
            assert!(
                !ip_allowed(ip.parse().unwrap(), true),
                "{ip} even with loopback allowed"
            );
        }
    }

    #[test]
    fn s3_ipv4_embedded_in_ipv6_refused() {
        for ip in [
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:192.168.0.1",
            "::ffff:0.0.0.0",
            "::10.0.0.1",
            "::169.254.169.254",
            "::ffff:0:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
        ] {
            assert!(!allowed(ip), "{ip} must be refused");
        }
        // 6to4 of loopback stays refused even when loopback is allowed.
        assert!(!ip_allowed("2002:7f00:1::1".parse().unwrap(), true));
    }

    #[test]
    fn s1_only_https() {
        check("https://app.example.com/client.json", false).unwrap();
        for bad in [
            "http://app.example.com/client.json",
            "ftp://app.example.com/client.json",
            "file:///etc/passwd",
            "ws://app.example.com/x",
        ] {
            assert!(check(bad, false).is_err(), "{bad}");
            assert!(check(bad, true).is_err(), "{bad} with loopback allowed");
        }
    }

    #[test]
    fn s1_http_only_on_allowed_loopback() {
        assert!(check("http://127.0.0.1:8443/client.json", false).is_err());
        check("http://127.0.0.1:8443/client.json", true).unwrap();
        check("http://[::1]:8443/client.json", true).unwrap();
        check("http://localhost:8443/client.json", true).unwrap();
        check("https://localhost:8443/client.json", true).unwrap();
        assert!(check("https://localhost:8443/client.json", false).is_err());
        assert!(check("https://app.localhost/client.json", false).is_err());
        assert!(check("https://127.0.0.1/client.json", false).is_err());
        // Loopback being allowed does not open up private ranges.
        assert!(check("https://10.0.0.1/client.json", true).is_err());
        assert!(check("http://10.0.0.1/client.json", true).is_err());
    }

    #[test]
    fn s1_userinfo_and_fragment_refused() {
        assert!(check("https://user@app.example.com/c.json", false).is_err());
        assert!(check("https://user:pw@app.example.com/c.json", false).is_err());
        assert!(check("https://app.example.com/c.json#x", false).is_err());
    }

    #[test]
    fn s3_ip_literal_hosts_checked() {
        for bad in [
            "https://169.254.169.254/latest/meta-data",
            "https://[::ffff:169.254.169.254]/x",
            "https://[fd00::1]/x",
            "https://0x7f.1/x",
            "https://2130706433/x",
            "https://0.0.0.0/x",
            "https://10.1/x",
        ] {
            assert!(check(bad, false).is_err(), "{bad}");
        }
        check("https://93.184.216.34/x", false).unwrap();
    }
}
