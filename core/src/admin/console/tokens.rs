//! Tokens: a JWT inspector (decodes a pasted access token, then says whether it verifies
//! against this server's published keys with the server's own verification, whether it has
//! expired, and whether it is revoked or its client or user is cut off, as introspection
//! would), lookup by `jti` (`GET /admin/tokens/{jti}`), search by client or subject (their
//! grants, `GET /admin/grants`, and recorded tokens, `GET /admin/tokens`), and revocation of
//! a token (`POST /admin/tokens/revoke`), a grant (`POST /admin/grants/{id}/revoke`) or a
//! refresh token's family (`POST /admin/tokens/revoke` with `refresh_token`). Tokens are
//! posted, never put in a URL.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::api::{self, seg};
use super::layout::{self, a, hidden, t, time};
use super::Ctx;
use crate::access_token::verify_access_token;
use crate::crypto::b64_decode;
use crate::error::{Error, Result};
use crate::request::Params;
use crate::store::repo::{access, users};

/// Longest token the inspector reads, bytes.
const MAX_TOKEN: usize = 16 * 1024;

fn verdict(ok: bool, yes: &str, no: &str) -> String {
    if ok {
        format!("<span class=\"tag good\">{}</span>", t(yes))
    } else {
        format!("<span class=\"tag bad\">{}</span>", t(no))
    }
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&b64_decode(part)?).ok()
}

/// The inspector's findings for `token`, as HTML.
async fn inspect(cx: &Ctx<'_>, token: &str) -> Result<String> {
    let parts: Vec<&str> = token.split('.').collect();
    let (header, claims) = match parts.as_slice() {
        [h, c, _] => (decode_part(h), decode_part(c)),
        _ => (None, None),
    };
    let (Some(header), Some(claims)) = (header, claims) else {
        return Ok("<p class=\"error\" role=\"alert\">This is not a JWT (three base64url parts, a JSON header and JSON claims).</p>".into());
    };
    let server = cx.server;
    let db = server.env().sql.as_ref();
    let verified = verify_access_token(server, token).await?;
    let mut rows = vec![vec![
        "Signature, type, issuer, time window".to_owned(),
        verdict(
            verified.is_some(),
            "verifies against this server's keys",
            "does not verify (another issuer, an unknown or removed key, a bad signature, or expired)",
        ),
    ]];
    let mut revoke = String::new();
    if let Some(c) = &verified {
        let revoked = access::is_revoked(db, &c.jti).await?;
        let client_ok = crate::client_policy::holder_active(server, &c.client_id).await?;
        let user_ok = !users::by_id(db, &c.sub).await?.is_some_and(|u| u.disabled);
        let live = c.exp > server.now();
        rows.push(vec![
            "Expiry".into(),
            verdict(
                live,
                &format!("valid until {}", time(c.exp)),
                &format!("expired at {}", time(c.exp)),
            ),
        ]);
        rows.push(vec![
            "Revocation".into(),
            verdict(
                !revoked,
                "not revoked",
                "revoked (the token, its grant or a token it was exchanged from)",
            ),
        ]);
        rows.push(vec![
            "Client".into(),
            verdict(client_ok, "active", "suspended or deleted"),
        ]);
        rows.push(vec![
            "Subject".into(),
            verdict(user_ok, "not disabled", "disabled user"),
        ]);
        let active = live && !revoked && client_ok && user_ok;
        rows.push(vec![
            "Introspection would say".into(),
            verdict(active, "active: true", "active: false"),
        ]);
        if !revoked {
            revoke = format!(
                "<form method=\"post\" action=\"{}\">{}{}{}<button class=\"danger\" type=\"submit\">Revoke this token</button></form>",
                a(&layout::url("tokens")),
                hidden("csrf", &cx.csrf),
                hidden("action", "revoke"),
                hidden("token", token),
            );
        }
    }
    let pretty = |v: &Value| t(&serde_json::to_string_pretty(v).unwrap_or_default());
    Ok(format!(
        "<h2>Inspection</h2>{}{revoke}<h2>Header</h2><pre>{}</pre><h2>Claims</h2><pre>{}</pre>",
        layout::table(&["Check", "Result"], &rows),
        pretty(&header),
        pretty(&claims)
    ))
}

async fn lookup(cx: &Ctx<'_>, jti: &str) -> Result<String> {
    let rec = match api::call(cx, Method::GET, &format!("tokens/{}", seg(jti)), None).await {
        Ok(v) => v,
        Err(e) => {
            return Ok(format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                t(&e.description)
            ))
        }
    };
    let revoked = rec["revoked"].as_bool().unwrap_or(false);
    let rows = vec![
        vec!["jti".into(), format!("<code>{}</code>", t(jti))],
        vec!["Client".into(), layout::field(&rec, "client_id")],
        vec!["Grant".into(), layout::field(&rec, "grant_id")],
        vec!["Exchanged from".into(), layout::field(&rec, "parent_jti")],
        vec![
            "Expires".into(),
            t(&time(rec["expires_at"].as_i64().unwrap_or(0))),
        ],
        vec!["Revoked".into(), verdict(!revoked, "no", "yes")],
    ];
    let revoke = if revoked {
        String::new()
    } else {
        layout::button(
            &cx.frame("tokens"),
            "tokens",
            &[("action", "revoke"), ("jti", jti)],
            "Revoke",
            "danger",
        )
    };
    Ok(format!(
        "<h2>Token {}</h2>{}{revoke}",
        t(jti),
        layout::table(&["", ""], &rows)
    ))
}

/// The subject to search for: a username's user id, or the value as given.
async fn subject_of(cx: &Ctx<'_>, who: &str) -> String {
    match api::call(cx, Method::GET, &format!("users/{}", seg(who)), None).await {
        Ok(u) => u["id"].as_str().unwrap_or(who).to_owned(),
        Err(_) => who.to_owned(),
    }
}

/// Grants and recorded tokens of a client and/or subject.
async fn search(cx: &Ctx<'_>, client_id: &str, who: &str) -> Result<String> {
    let subject = if who.is_empty() {
        String::new()
    } else {
        subject_of(cx, who).await
    };
    let filter = [("client_id", client_id), ("subject", subject.as_str())];
    let mut pairs = filter.to_vec();
    pairs.push(("limit", "100"));
    let grants = api::call(
        cx,
        Method::GET,
        &format!("grants?{}", api::query(&pairs)),
        None,
    )
    .await?;
    let grants = grants["grants"].as_array().cloned().unwrap_or_default();
    let tokens = api::call(
        cx,
        Method::GET,
        &format!("tokens?{}", api::query(&pairs)),
        None,
    )
    .await?;
    let f = cx.frame("tokens");
    let back = [("client_id", client_id), ("subject", who)];
    let rows: Vec<Vec<String>> = tokens["tokens"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let jti = r["jti"].as_str().unwrap_or_default();
            let revoked = r["revoked"].as_bool().unwrap_or(false);
            let expired = r["expired"].as_bool().unwrap_or(false);
            let state = if revoked {
                "<span class=\"tag bad\">revoked</span>".to_owned()
            } else if expired {
                "<span class=\"tag\">expired</span>".to_owned()
            } else {
                let mut fields = vec![("action", "revoke"), ("jti", jti)];
                fields.extend_from_slice(&back);
                format!(
                    "<span class=\"tag good\">live</span> {}",
                    layout::button(&f, "tokens", &fields, "Revoke", "danger")
                )
            };
            vec![
                format!(
                    "<a href=\"{}\"><code>{}</code></a>",
                    a(&layout::url(&format!(
                        "tokens?{}",
                        api::query(&[("jti", jti)])
                    ))),
                    t(jti)
                ),
                layout::field(r, "client_id"),
                layout::field(r, "grant_id"),
                t(&time(r["expires_at"].as_i64().unwrap_or(0))),
                state,
            ]
        })
        .collect();
    Ok(format!(
        "<h2>Grants</h2>{}<h2>Recorded access tokens</h2><p class=\"muted\">Tokens issued under a grant \
or by exchange; client_credentials tokens are recorded only once revoked.</p>{}",
        super::users::grants_table(cx, "tokens", &grants, &back),
        layout::table(&["jti", "Client", "Grant", "Expires", "State"], &rows)
    ))
}

fn render(cx: &Ctx<'_>, flash: Option<&str>, jti: &str, result: &str) -> Response<Bytes> {
    render_with(cx, flash, jti, ("", ""), result)
}

fn render_with(
    cx: &Ctx<'_>,
    flash: Option<&str>,
    jti: &str,
    (client_id, who): (&str, &str),
    result: &str,
) -> Response<Bytes> {
    let f = cx.frame("tokens");
    let body = format!(
        "<h1>Tokens</h1><h2>Inspect an access token</h2>\
<form method=\"post\" action=\"{}\">{}{}<label for=\"token\">Access token (JWT)</label>\
<textarea id=\"token\" name=\"token\" rows=\"5\" spellcheck=\"false\" autocomplete=\"off\" required></textarea>\
<button class=\"primary\" type=\"submit\">Inspect</button></form>\
<h2>Find by jti</h2><form class=\"filters\" method=\"get\" action=\"{}\"><label for=\"jti\">jti</label>\
<input type=\"text\" id=\"jti\" name=\"jti\" value=\"{}\"><button type=\"submit\">Find</button></form>\
<h2>Search by client or subject</h2><form class=\"filters\" method=\"get\" action=\"{}\">\
<span><label for=\"client_id\">Client</label><input type=\"text\" id=\"client_id\" name=\"client_id\" value=\"{}\"></span>\
<span><label for=\"subject\">Subject (user id or username)</label><input type=\"text\" id=\"subject\" name=\"subject\" value=\"{}\"></span>\
<button type=\"submit\" id=\"search\">Search</button></form>\
<h2>Revoke a refresh token's family</h2><form method=\"post\" action=\"{}\">{}{}<label for=\"refresh_token\">Refresh token</label>\
<textarea id=\"refresh_token\" name=\"refresh_token\" rows=\"2\" spellcheck=\"false\" autocomplete=\"off\" required></textarea>\
<button type=\"submit\" id=\"revoke_family\">Revoke the family</button></form><div id=\"results\">{result}</div>",
        a(&layout::url("tokens")),
        hidden("csrf", f.csrf),
        hidden("action", "inspect"),
        a(&layout::url("tokens")),
        a(jti),
        a(&layout::url("tokens")),
        a(client_id),
        a(who),
        a(&layout::url("tokens")),
        hidden("csrf", f.csrf),
        hidden("action", "revoke_family"),
    );
    layout::page(&f, StatusCode::OK, "Tokens", flash, &body)
}

/// `GET /admin/console/tokens?jti=` or `?client_id=&subject=`.
pub async fn page(cx: &Ctx<'_>, q: &Params, flash: Option<&str>) -> Result<Response<Bytes>> {
    let jti = q.get("jti").unwrap_or("").trim();
    let client_id = q.get("client_id").unwrap_or("").trim();
    let who = q.get("subject").unwrap_or("").trim();
    let result = if !jti.is_empty() {
        lookup(cx, jti).await?
    } else if !client_id.is_empty() || !who.is_empty() {
        search(cx, client_id, who).await?
    } else {
        String::new()
    };
    Ok(render_with(cx, flash, jti, (client_id, who), &result))
}

/// `POST /admin/console/tokens`: `action` = inspect (`token`) | revoke (`token` or `jti`).
pub async fn act(cx: &Ctx<'_>, form: &Params) -> Result<Response<Bytes>> {
    let token = form.get("token").map(str::trim);
    if token.is_some_and(|t| t.len() > MAX_TOKEN) {
        return Err(Error::invalid_request(
            "that token is too long to be one of ours",
        ));
    }
    let client_id = form.get("client_id").unwrap_or("").trim();
    let who = form.get("subject").unwrap_or("").trim();
    // After a revocation from search results, the same search again.
    let searched = |flash: String| async move {
        let result = if client_id.is_empty() && who.is_empty() {
            String::new()
        } else {
            search(cx, client_id, who).await?
        };
        Ok::<_, Error>(render_with(cx, Some(&flash), "", (client_id, who), &result))
    };
    match form.require("action")? {
        "revoke_grant" => {
            let g = form.require("grant_id")?;
            api::call(cx, Method::POST, &format!("grants/{}/revoke", seg(g)), None).await?;
            searched(format!("Grant {g} revoked.")).await
        }
        "revoke_family" => {
            let rt = form.require("refresh_token")?.trim();
            let done = api::call(
                cx,
                Method::POST,
                "tokens/revoke",
                Some(json!({ "refresh_token": rt })),
            )
            .await?;
            searched(format!(
                "The refresh token's family (grant {}) is revoked.",
                done["grant_id"].as_str().unwrap_or_default()
            ))
            .await
        }
        "revoke" if token.is_none() && (!client_id.is_empty() || !who.is_empty()) => {
            let jti = form.require("jti")?;
            api::call(
                cx,
                Method::POST,
                "tokens/revoke",
                Some(json!({ "jti": jti })),
            )
            .await?;
            searched(format!("Token {jti} revoked.")).await
        }
        "inspect" => {
            let token = form.require("token")?.trim();
            let result = inspect(cx, token).await?;
            Ok(render(cx, None, "", &result))
        }
        "revoke" => {
            let body = match (token, form.get("jti")) {
                (Some(tok), _) => json!({ "token": tok }),
                (None, Some(jti)) => json!({ "jti": jti }),
                (None, None) => return Err(Error::invalid_request("nothing to revoke")),
            };
            let done = api::call(cx, Method::POST, "tokens/revoke", Some(body)).await?;
            let jti = done["jti"].as_str().unwrap_or_default().to_owned();
            let flash = format!("Token {jti} revoked.");
            let result = match token {
                Some(tok) => inspect(cx, tok).await?,
                None => lookup(cx, &jti).await?,
            };
            Ok(render(cx, Some(&flash), "", &result))
        }
        _ => Err(Error::invalid_request("unknown token action")),
    }
}
