//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3.1, OAuth 2.1 §2.4.1): `client_secret_basic`, `client_secret_post`,
//! `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core 1.0 §9; see [`assertion`]) and
//! public clients (`none`), with the client's registered method enforced.
//!
//! Two pure steps do most of the work: [`parse_credentials`] reads what the request presents
//! (SECURITY-CHECKLIST A1, A2) and [`check`] judges it against the client record (A3, A4);
//! a client assertion is then verified by [`assertion::verify`] (A5, J1–J5).

pub mod assertion;
pub mod jwks;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use http::{header, HeaderMap};

use crate::clients::Client;
use crate::context::Context;
use crate::crypto::{ct_eq, token_hash};
use crate::error::{Error, Result};
use crate::request::Params;
use crate::secret::Secret;

pub use assertion::ASSERTION_TYPE;

/// Longest client id or secret accepted in credentials.
const MAX_CREDENTIAL_LEN: usize = 2048;

/// How the client presented its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresentedMethod {
    /// `Authorization: Basic` (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
    /// Only a `client_id` in the body (public client).
    None,
    /// A JWT client assertion (`private_key_jwt`).
    Assertion,
}

/// Credentials as presented by the request, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The client id.
    pub client_id: String,
    /// The secret, if one was sent (an empty Basic password counts as none).
    pub secret: Option<Secret>,
    /// Where the credentials came from.
    pub method: PresentedMethod,
    /// The client assertion (`private_key_jwt`), not yet verified.
    pub assertion: Option<Secret>,
}

/// Authenticates the client of a token-endpoint style request (A1–A5). Public clients
/// (`none`) are identified by `client_id` alone; `private_key_jwt` clients by a verified
/// assertion, each accepted or refused assertion being audited (`client.assertion`).
/// Clients are resolved with [`crate::client_lookup::resolve`] (stored or client ID metadata
/// document).
pub async fn authenticate(ctx: &Context, headers: &HeaderMap, params: &Params) -> Result<Client> {
    let presented = parse_credentials(headers, params)?;
    if presented.method == PresentedMethod::Assertion {
        return authenticate_assertion(ctx, &presented).await;
    }
    let client = crate::client_lookup::resolve(ctx, &presented.client_id)
        .await?
        .ok_or_else(|| Error::invalid_client("unknown client"))?;
    check(&client, &presented)?;
    Ok(client)
}

async fn authenticate_assertion(ctx: &Context, presented: &Presented) -> Result<Client> {
    let result = async {
        let client = crate::client_lookup::resolve(ctx, &presented.client_id)
            .await?
            .ok_or_else(|| Error::invalid_client("unknown client"))?;
        check(&client, presented)?;
        let jwt = presented
            .assertion
            .as_ref()
            .ok_or_else(|| Error::invalid_request("missing parameter 'client_assertion'"))?;
        let checked = assertion::verify(ctx, &client, jwt.expose()).await?;
        Ok::<_, Error>((client, checked))
    }
    .await;
    let (detail, reason) = match &result {
        Ok((_, c)) => (
            serde_json::json!({ "method": "private_key_jwt", "jti": c.jti }),
            None,
        ),
        Err(e) => (
            serde_json::json!({ "method": "private_key_jwt", "error": e.description }),
            Some(e.code.as_str()),
        ),
    };
    crate::audit::record(
        ctx.env(),
        crate::audit::Event {
            action: "client.assertion",
            success: result.is_ok(),
            client_id: Some(&presented.client_id),
            reason,
            detail: Some(detail),
            ..Default::default()
        },
    )
    .await;
    result.map(|(client, _)| client)
}

/// Reads the credentials a request presents (A1, A2): HTTP Basic with form-urlencoded id
/// and secret (RFC 6749 §2.3.1), or `client_id` / `client_secret` in the body. Malformed
/// Basic credentials and missing identification are `invalid_client`; credentials in two
/// places at once are `invalid_request`.
pub fn parse_credentials(headers: &HeaderMap, params: &Params) -> Result<Presented> {
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    let basic = match (auth.next(), auth.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(Error::invalid_request("more than one Authorization header"))
        }
        (Some(v), None) => Some(parse_basic(v.as_bytes())?),
    };
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    if params.contains("client_assertion") || params.contains("client_assertion_type") {
        if basic.is_some() || body_secret.is_some() {
            return Err(Error::invalid_request(
                "more than one client authentication method used",
            ));
        }
        return parse_assertion(params);
    }
    match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(Error::invalid_request(
                    "client credentials sent both in the Authorization header and in the body",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(Error::invalid_request(
                    "client_id in the body differs from the one in the Authorization header",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: (!secret.is_empty()).then(|| Secret::new(secret)),
                method: PresentedMethod::Basic,
                assertion: None,
            })
        }
        None => {
            let Some(id) = body_id else {
                return Err(Error::invalid_client(if body_secret.is_some() {
                    "client_secret sent without client_id"
                } else {
                    "client authentication is required (client_id missing)"
                }));
            };
            if id.len() > MAX_CREDENTIAL_LEN {
                return Err(Error::invalid_client("client_id is too long"));
            }
            Ok(Presented {
                client_id: id.to_owned(),
                secret: body_secret.map(Secret::new),
                method: if body_secret.is_some() {
                    PresentedMethod::Post
                } else {
                    PresentedMethod::None
                },
                assertion: None,
            })
        }
    }
}

/// Reads a JWT client assertion (RFC 7521 §4.2, RFC 7523 §2.2): both parameters are
/// required (`invalid_request` otherwise); another assertion type is `invalid_client`. The
/// client is the `client_id` parameter if sent, which must then equal the assertion's `sub`
/// (read here unverified, only to find the client; [`assertion::verify`] checks it).
fn parse_assertion(params: &Params) -> Result<Presented> {
    let (Some(kind), Some(jwt)) = (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) else {
        return Err(Error::invalid_request(
            "client_assertion and client_assertion_type must be sent together",
        ));
    };
    if kind != ASSERTION_TYPE {
        return Err(Error::invalid_client(format!(
            "unsupported client_assertion_type (supported: {ASSERTION_TYPE})"
        )));
    }
    let subject = assertion::unverified_subject(jwt);
    let client_id = match (params.get("client_id"), subject) {
        (Some(id), Some(sub)) if id != sub => {
            return Err(Error::invalid_client(
                "client_id differs from the client assertion's sub",
            ))
        }
        (Some(id), _) => id.to_owned(),
        (None, Some(sub)) => sub,
        (None, None) => {
            return Err(Error::invalid_client(
                "the client assertion is malformed or has no sub",
            ))
        }
    };
    if client_id.len() > MAX_CREDENTIAL_LEN {
        return Err(Error::invalid_client("client_id is too long"));
    }
    Ok(Presented {
        client_id,
        secret: None,
        method: PresentedMethod::Assertion,
        assertion: Some(Secret::new(jwt)),
    })
}

/// Parses an `Authorization` header value that must be `Basic` (any case) (A1).
fn parse_basic(value: &[u8]) -> Result<(String, String)> {
    let value = std::str::from_utf8(value)
        .map_err(|_| Error::invalid_client("malformed Authorization header"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::invalid_client(
            "unsupported authorization scheme; use HTTP Basic or client_secret_post",
        ));
    }
    let encoded = rest.trim_matches(' ');
    if encoded.is_empty() || encoded.len() > 2 * MAX_CREDENTIAL_LEN {
        return Err(Error::invalid_client("malformed Basic credentials"));
    }
    const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = LENIENT_STANDARD
        .decode(encoded)
        .map_err(|_| Error::invalid_client("Basic credentials are not valid base64"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| Error::invalid_client("Basic credentials are not valid UTF-8"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| Error::invalid_client("Basic credentials have no ':' separator"))?;
    let id = form_decode(id).ok_or_else(|| {
        Error::invalid_client("client id in Basic credentials is not properly form-encoded")
    })?;
    let secret = form_decode(secret).ok_or_else(|| {
        Error::invalid_client("client secret in Basic credentials is not properly form-encoded")
    })?;
    if id.is_empty() {
        return Err(Error::invalid_client(
            "empty client id in Basic credentials",
        ));
    }
    Ok((id, secret))
}

/// Strict `application/x-www-form-urlencoded` decoding (RFC 6749 §2.3.1, Appendix B):
/// `+` is a space, every `%` must start two hex digits, and the result must be UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Judges presented credentials against the client record (A3, A4): the registered
/// `token_endpoint_auth_method` must be the one used (a `private_key_jwt` client cannot use
/// a secret, nor any other client an assertion); public clients must not send a secret;
/// secrets are compared as hashes in constant time. An assertion itself is verified by
/// [`assertion::verify`]. Every failure is `invalid_client`.
pub fn check(client: &Client, presented: &Presented) -> Result<()> {
    if presented.client_id != client.client_id {
        return Err(Error::invalid_client("client authentication failed"));
    }
    let registered = match client.metadata.token_endpoint_auth_method.as_str() {
        "" if client.secret_hash.is_some() => "client_secret_basic",
        "" => "none",
        m => m,
    };
    match (registered, presented.method) {
        ("private_key_jwt", PresentedMethod::Assertion) => return Ok(()),
        ("private_key_jwt", _) => {
            return Err(Error::invalid_client(
                "this client must authenticate with private_key_jwt (a client assertion)",
            ))
        }
        (_, PresentedMethod::Assertion) => {
            return Err(Error::invalid_client(format!(
                "this client is registered for {registered} and cannot use a client assertion"
            )))
        }
        _ => {}
    }
    let expected = match registered {
        "none" => {
            if presented.secret.is_some() {
                return Err(Error::invalid_client(
                    "this client is public (token_endpoint_auth_method none) and must not send a client secret",
                ));
            }
            return Ok(());
        }
        "client_secret_basic" => PresentedMethod::Basic,
        "client_secret_post" => PresentedMethod::Post,
        _ => {
            return Err(Error::invalid_client(
                "the client's registered authentication method is not supported here",
            ))
        }
    };
    let Some(secret) = presented.secret.as_ref() else {
        return Err(Error::invalid_client(format!(
            "this client must authenticate with {registered}"
        )));
    };
    if presented.method != expected {
        return Err(Error::invalid_client(format!(
            "this client must authenticate with {registered}"
        )));
    }
    let Some(stored) = client.secret_hash.as_deref() else {
        return Err(Error::invalid_client("client authentication failed"));
    };
    if !ct_eq(token_hash(secret.expose()).as_bytes(), stored.as_bytes()) {
        return Err(Error::invalid_client("client authentication failed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{ClientKind, ClientMetadata};
    use crate::error::ErrorCode;
    use http::HeaderValue;

    fn basic(raw: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(raw).unwrap());
        h
    }

    fn basic_creds(id: &str, secret: &str) -> HeaderMap {
        use base64::engine::general_purpose::STANDARD;
        basic(&format!(
            "Basic {}",
            STANDARD.encode(format!("{id}:{secret}"))
        ))
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    fn parse_err(h: &HeaderMap, p: &Params) -> Error {
        parse_credentials(h, p).unwrap_err()
    }

    fn client(method: &str, secret: Option<&str>) -> Client {
        Client {
            client_id: "app".into(),
            secret_hash: secret.map(token_hash),
            metadata: ClientMetadata {
                token_endpoint_auth_method: method.into(),
                ..ClientMetadata::default()
            },
            kind: ClientKind::Static,
            last_used_at: None,
        }
    }

    fn presented(method: PresentedMethod, secret: Option<&str>) -> Presented {
        Presented {
            client_id: "app".into(),
            secret: secret.map(Secret::new),
            method,
            assertion: (method == PresentedMethod::Assertion).then(|| Secret::new("a.b.c")),
        }
    }

    #[test]
    fn a1_basic_is_parsed_and_form_decoded() {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
        let p = parse_credentials(
            &basic_creds("my%3Aapp", "s%2Bc+r%C3%A9t"),
            &Params::default(),
        )
        .unwrap();
        assert_eq!(p.client_id, "my:app");
        assert_eq!(p.secret.as_ref().unwrap().expose(), "s+c r\u{e9}t");
        assert_eq!(p.method, PresentedMethod::Basic);
        // A colon inside the secret is kept: only the first one separates.
        let p = parse_credentials(&basic_creds("app", "a:b"), &Params::default()).unwrap();
        assert_eq!(p.secret.unwrap().expose(), "a:b");
    }

    #[test]
    fn a1_scheme_is_case_insensitive() {
        for scheme in ["basic", "BASIC", "bAsIc"] {
            let h = basic(&format!("{scheme} {}", b64_std("app:secret")));
            let p = parse_credentials(&h, &Params::default()).unwrap();
            assert_eq!(p.client_id, "app");
        }
        // Unpadded base64 is accepted too.
        let h = basic("Basic YXBwOnNlY3JldA");
        assert_eq!(
            parse_credentials(&h, &Params::default()).unwrap().client_id,
            "app"
        );
    }

    fn b64_std(s: &str) -> String {
        use base64::engine::general_purpose::STANDARD;
        STANDARD.encode(s)
    }

    #[test]
    fn a1_bad_basic_is_invalid_client_with_challenge() {
        let cases = [
            basic("Basic !!!notbase64"),
            basic("Basic YX-wOnNlY3JldA"), // base64url alphabet is not Basic's
            basic("Basic "),
            basic("Basic"),
            basic(&format!("Basic {}", b64_std("no-colon-here"))),
            basic(&format!("Basic {}", b64_std("app%zz:secret"))),
            basic(&format!("Basic {}", b64_std("app:sec%2"))),
            basic(&format!("Basic {}", b64_std("app%ff:secret"))), // not UTF-8 after decoding
            basic(&format!("Basic {}", b64_std(":secret"))),
            basic("Bearer abc"),
            basic("Digest username=\"app\""),
        ];
        for (i, h) in cases.iter().enumerate() {
            let e = parse_err(h, &Params::default());
            assert_eq!(
                e.code,
                ErrorCode::InvalidClient,
                "case {i}: {}",
                e.description
            );
            assert!(
                e.headers.iter().any(|(n, _)| n == header::WWW_AUTHENTICATE),
                "case {i} lacks WWW-Authenticate"
            );
        }
        // Non-UTF-8 base64 payload.
        use base64::engine::general_purpose::STANDARD;
        let h = basic(&format!("Basic {}", STANDARD.encode([0xff, b':', b'x'])));
        assert_eq!(
            parse_err(&h, &Params::default()).code,
            ErrorCode::InvalidClient
        );
    }

    #[test]
    fn a2_basic_and_body_secret_is_invalid_request() {
        let e = parse_err(
            &basic_creds("app", "secret"),
            &params(&[("client_secret", "secret")]),
        );
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn a2_basic_and_different_body_client_id_is_invalid_request() {
        let e = parse_err(
            &basic_creds("app", "secret"),
            &params(&[("client_id", "other")]),
        );
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        // The same id repeated in the body is harmless.
        let p = parse_credentials(
            &basic_creds("app", "secret"),
            &params(&[("client_id", "app")]),
        )
        .unwrap();
        assert_eq!(p.method, PresentedMethod::Basic);
    }

    #[test]
    fn a2_two_authorization_headers_is_invalid_request() {
        let mut h = basic_creds("app", "secret");
        h.append(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert_eq!(
            parse_err(&h, &Params::default()).code,
            ErrorCode::InvalidRequest
        );
    }

    #[test]
    fn a2_assertion_with_other_credentials_is_invalid_request() {
        let e = parse_err(
            &basic_creds("app", "secret"),
            &params(&[("client_assertion", "x"), ("client_assertion_type", "y")]),
        );
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn body_credentials() {
        let p = parse_credentials(
            &HeaderMap::new(),
            &params(&[("client_id", "app"), ("client_secret", "s")]),
        )
        .unwrap();
        assert_eq!(p.method, PresentedMethod::Post);
        let p = parse_credentials(&HeaderMap::new(), &params(&[("client_id", "app")])).unwrap();
        assert_eq!(p.method, PresentedMethod::None);
        assert!(p.secret.is_none());
        for ps in [params(&[]), params(&[("client_secret", "s")])] {
            assert_eq!(
                parse_err(&HeaderMap::new(), &ps).code,
                ErrorCode::InvalidClient
            );
        }
    }

    #[test]
    fn a3_public_client_cannot_send_secret() {
        let c = client("none", None);
        check(&c, &presented(PresentedMethod::None, None)).unwrap();
        for m in [PresentedMethod::Basic, PresentedMethod::Post] {
            let e = check(&c, &presented(m, Some("anything"))).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient);
        }
        // Basic with an empty password identifies a public client without a secret.
        let p = parse_credentials(&basic_creds("app", ""), &Params::default()).unwrap();
        assert!(p.secret.is_none());
        check(&c, &p).unwrap();
    }

    #[test]
    fn a3_confidential_client_cannot_omit_secret() {
        for method in ["client_secret_basic", "client_secret_post"] {
            let c = client(method, Some("s3cret"));
            for m in [
                PresentedMethod::None,
                PresentedMethod::Basic,
                PresentedMethod::Post,
            ] {
                let e = check(&c, &presented(m, None)).unwrap_err();
                assert_eq!(e.code, ErrorCode::InvalidClient, "{method} {m:?}");
            }
        }
    }

    #[test]
    fn a3_registered_method_enforced() {
        let c = client("client_secret_basic", Some("s3cret"));
        check(&c, &presented(PresentedMethod::Basic, Some("s3cret"))).unwrap();
        let e = check(&c, &presented(PresentedMethod::Post, Some("s3cret"))).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        let c = client("client_secret_post", Some("s3cret"));
        check(&c, &presented(PresentedMethod::Post, Some("s3cret"))).unwrap();
        let e = check(&c, &presented(PresentedMethod::Basic, Some("s3cret"))).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidClient);
        // Unknown or future methods fail closed.
        let c = client("client_secret_jwt", Some("s3cret"));
        assert!(check(&c, &presented(PresentedMethod::Basic, Some("s3cret"))).is_err());
    }

    #[test]
    fn a3_private_key_jwt_client_cannot_use_a_secret_and_vice_versa() {
        let c = client("private_key_jwt", None);
        check(&c, &presented(PresentedMethod::Assertion, None)).unwrap();
        for (m, s) in [
            (PresentedMethod::Basic, Some("s3cret")),
            (PresentedMethod::Post, Some("s3cret")),
            (PresentedMethod::None, None),
        ] {
            let e = check(&c, &presented(m, s)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{m:?}");
        }
        // Even a (stray) stored secret hash does not let it use the secret.
        let c = client("private_key_jwt", Some("s3cret"));
        assert!(check(&c, &presented(PresentedMethod::Basic, Some("s3cret"))).is_err());
        for method in ["none", "client_secret_basic", "client_secret_post"] {
            let c = client(method, Some("s3cret"));
            let e = check(&c, &presented(PresentedMethod::Assertion, None)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{method}");
        }
    }

    #[test]
    fn a5_assertion_parameters_are_parsed() {
        use crate::crypto::b64;
        let jwt = format!("{}.{}.sig", b64("{}"), b64(r#"{"sub":"app"}"#));
        let p = parse_credentials(
            &HeaderMap::new(),
            &params(&[
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &jwt),
            ]),
        )
        .unwrap();
        assert_eq!(p.method, PresentedMethod::Assertion);
        assert_eq!(p.client_id, "app");
        assert_eq!(p.assertion.unwrap().expose(), jwt);
        assert!(p.secret.is_none());
        // client_id, when sent, must be the assertion's sub.
        let with_id = |id: &str| {
            parse_credentials(
                &HeaderMap::new(),
                &params(&[
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &jwt),
                    ("client_id", id),
                ]),
            )
        };
        assert_eq!(with_id("app").unwrap().client_id, "app");
        assert_eq!(with_id("other").unwrap_err().code, ErrorCode::InvalidClient);
        // Missing halves are invalid_request; another type or an unreadable JWT invalid_client.
        for (ps, want) in [
            (
                vec![("client_assertion", jwt.as_str())],
                ErrorCode::InvalidRequest,
            ),
            (
                vec![("client_assertion_type", ASSERTION_TYPE)],
                ErrorCode::InvalidRequest,
            ),
            (
                vec![
                    ("client_assertion_type", "urn:x"),
                    ("client_assertion", jwt.as_str()),
                ],
                ErrorCode::InvalidClient,
            ),
            (
                vec![
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", "junk"),
                ],
                ErrorCode::InvalidClient,
            ),
        ] {
            let e = parse_err(&HeaderMap::new(), &params(&ps));
            assert_eq!(e.code, want, "{ps:?}");
        }
        let e = parse_err(
            &HeaderMap::new(),
            &params(&[
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &jwt),
                ("client_secret", "s"),
            ]),
        );
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn a4_secret_compared_against_stored_hash() {
        let c = client("client_secret_basic", Some("s3cret"));
        assert_ne!(c.secret_hash.as_deref(), Some("s3cret"));
        for wrong in ["s3cre", "s3cret ", "S3CRET", "x"] {
            let e = check(&c, &presented(PresentedMethod::Basic, Some(wrong))).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidClient, "{wrong}");
        }
        // Presenting the stored hash itself does not work.
        let hash = c.secret_hash.clone().unwrap();
        assert!(check(&c, &presented(PresentedMethod::Basic, Some(&hash))).is_err());
        // A confidential client whose stored hash is missing fails closed.
        let mut broken = c.clone();
        broken.secret_hash = None;
        assert!(check(&broken, &presented(PresentedMethod::Basic, Some("s3cret"))).is_err());
    }

    #[test]
    fn check_refuses_a_different_client() {
        let c = client("none", None);
        let mut p = presented(PresentedMethod::None, None);
        p.client_id = "other".into();
        assert_eq!(check(&c, &p).unwrap_err().code, ErrorCode::InvalidClient);
    }

    #[test]
    fn form_decode_is_strict() {
        assert_eq!(form_decode("a+b%20c").as_deref(), Some("a b c"));
        assert_eq!(form_decode("%e2%82%ac").as_deref(), Some("\u{20ac}"));
        for bad in ["%", "%2", "%zz", "%+1", "%c3"] {
            assert_eq!(form_decode(bad), None, "{bad}");
        }
    }
}
