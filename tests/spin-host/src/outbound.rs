//! Outbound HTTP for the component: denied by default, as Spin denies every destination not
//! listed in the component's `allowed_outbound_hosts`; `--allow-outbound` adds rules of the
//! same shape (`scheme://host:port`, where host may be `*` or `*.suffix` and port `*`).

use std::future::Future;
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// One `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Rule {
    /// Parses `scheme://host:port` (`*` allowed for host, a `*.` host prefix and port).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("{s:?}: expected scheme://host:port"))?;
        if !matches!(scheme, "http" | "https" | "*") {
            return Err(format!("{s:?}: the scheme must be http, https or *"));
        }
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, "*")) => (h, None),
            Some((h, p)) => (
                h,
                Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("{s:?}: invalid port {p:?}"))?,
                ),
            ),
            None => (
                rest,
                match scheme {
                    "http" => Some(80),
                    "https" => Some(443),
                    _ => return Err(format!("{s:?}: a port is required with scheme *")),
                },
            ),
        };
        if host.is_empty() {
            return Err(format!("{s:?}: empty host"));
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let scheme_ok = self.scheme == "*" || self.scheme == scheme;
        let host_ok = self.host == "*"
            || self.host == host
            || self
                .host
                .strip_prefix("*.")
                .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")));
        scheme_ok && host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// The hooks of one request's store: the outbound policy, otherwise wasmtime's defaults.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    rules: Arc<Vec<Rule>>,
}

impl Outbound {
    /// A policy allowing exactly `rules`.
    pub fn new(rules: Arc<Vec<Rule>>) -> Self {
        Self { rules }
    }

    fn allowed(&self, uri: &http::Uri) -> bool {
        let scheme = uri.scheme_str().unwrap_or("https");
        let Some(host) = uri.host() else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "http" { 80 } else { 443 });
        self.rules
            .iter()
            .any(|r| r.allows(scheme, &host.to_ascii_lowercase(), port))
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> ResponseFuture {
        drop(fut);
        if !self.allowed(request.uri()) {
            eprintln!(
                "spin-host: outbound request to {} denied (not in --allow-outbound)",
                request.uri()
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rules: &[&str]) -> Outbound {
        Outbound::new(Arc::new(
            rules.iter().map(|r| Rule::parse(r).unwrap()).collect(),
        ))
    }

    #[test]
    fn denied_without_rules() {
        assert!(!policy(&[]).allowed(&"https://example.com/x".parse().unwrap()));
    }

    #[test]
    fn rules_match_scheme_host_and_port() {
        let p = policy(&[
            "https://*:443",
            "http://127.0.0.1:8080",
            "https://*.idp.test",
        ]);
        assert!(p.allowed(&"https://example.com/doc".parse().unwrap()));
        assert!(!p.allowed(&"https://example.com:8443/doc".parse().unwrap()));
        assert!(p.allowed(&"http://127.0.0.1:8080/x".parse().unwrap()));
        assert!(!p.allowed(&"http://127.0.0.1:8081/x".parse().unwrap()));
        assert!(!p.allowed(&"http://example.com/x".parse().unwrap()));
        assert!(p.allowed(&"https://a.idp.test/x".parse().unwrap()));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "example.com",
            "ftp://x:1",
            "*://x",
            "http://x:port",
            "https://:443",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad}");
        }
    }
}
