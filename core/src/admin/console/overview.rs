//! Overview: counts (clients by registration kind, users, active grants, keys), a
//! server-rendered SVG chart of tokens issued and requests denied per hour over the last day
//! (from the audit log), and the latest denials with their reasons.

use bytes::Bytes;
use http::{Method, Response, StatusCode};

use super::layout::{self, a, field, t, time};
use super::{api, stats, Ctx};
use crate::error::Result;

fn card(label: &str, value: &str) -> String {
    format!("<div class=\"card\"><b>{}</b>{}</div>", t(value), t(label))
}

/// `GET /admin/console/overview`.
pub async fn page(cx: &Ctx<'_>, flash: Option<&str>) -> Result<Response<Bytes>> {
    let db = cx.server.env().sql.as_ref();
    let kinds = stats::clients_by_kind(db).await?;
    let (users, disabled) = stats::users(db).await?;
    let grants = stats::active_grants(db).await?;
    let keys = api::call(cx, Method::GET, "keys", None).await?;
    let keys = keys["keys"].as_array().cloned().unwrap_or_default();
    let by_status = |s: &str| keys.iter().filter(|k| k["status"] == s).count();
    let clients: i64 = kinds.iter().map(|(_, n)| n).sum();
    let kinds_text = if kinds.is_empty() {
        "none".to_owned()
    } else {
        kinds
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cards = [
        card(&format!("clients ({kinds_text})"), &clients.to_string()),
        card(&format!("users ({disabled} disabled)"), &users.to_string()),
        card("active grants", &grants.to_string()),
        card(
            &format!(
                "signing keys ({} active, {} pending, {} retired)",
                by_status("active"),
                by_status("pending"),
                by_status("retired")
            ),
            &keys.len().to_string(),
        ),
    ]
    .concat();
    let hours = stats::hourly(db, cx.server.now(), 24).await?;
    let denials = api::call(cx, Method::GET, "audit?outcome=failure&limit=10", None).await?;
    let rows: Vec<Vec<String>> = denials["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            vec![
                t(&time(e["at"].as_i64().unwrap_or(0))),
                field(e, "action"),
                field(e, "reason"),
                field(e, "client_id"),
                field(e, "subject"),
            ]
        })
        .collect();
    let body = format!(
        "<h1>Overview</h1><div class=\"cards\">{cards}</div>\
<h2>Tokens issued and requests denied per hour (last 24 hours, UTC)</h2>{}\
<h2>Latest denials</h2>{}<p><a href=\"{}\">All denials in the audit log</a></p>",
        chart(&hours),
        layout::table(&["When", "Action", "Reason", "Client", "Subject"], &rows),
        a(&layout::url("audit?outcome=failure")),
    );
    Ok(layout::page(
        &cx.frame("overview"),
        StatusCode::OK,
        "Overview",
        flash,
        &body,
    ))
}

/// A bar chart, two bars per hour (issued blue, denied red), inline SVG with a text
/// alternative.
pub fn chart(hours: &[(i64, i64, i64)]) -> String {
    const W: i64 = 720;
    const H: i64 = 160;
    const PAD: i64 = 24;
    let max = hours
        .iter()
        .map(|(_, i, d)| (*i).max(*d))
        .max()
        .unwrap_or(0)
        .max(1);
    let n = hours.len().max(1) as i64;
    let slot = (W - PAD) / n;
    let bar = (slot / 2 - 1).max(1);
    let mut bars = String::new();
    for (i, (start, issued, denied)) in hours.iter().enumerate() {
        let x = PAD + i as i64 * slot;
        for (k, (v, color, what)) in [
            (*issued, "#2450d8", "issued"),
            (*denied, "#b42318", "denied"),
        ]
        .into_iter()
        .enumerate()
        {
            let h = v * (H - PAD) / max;
            bars.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{bar}\" height=\"{h}\" fill=\"{color}\"><title>{} {v} {what}</title></rect>",
                x + k as i64 * (bar + 1),
                H - PAD - h,
                t(&time(*start)[11..16]),
            ));
        }
        if i % 6 == 0 {
            bars.push_str(&format!(
                "<text x=\"{x}\" y=\"{}\" font-size=\"11\" fill=\"#555\">{}</text>",
                H - 8,
                t(&time(*start)[11..16])
            ));
        }
    }
    let total = |f: fn(&(i64, i64, i64)) -> i64| hours.iter().map(f).sum::<i64>();
    let summary = format!(
        "{} tokens issued and {} requests denied in the last {} hours (highest hour: {max})",
        total(|h| h.1),
        total(|h| h.2),
        hours.len()
    );
    format!(
        "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {W} {H}\" width=\"100%\" style=\"max-width:{W}px\">\
<line x1=\"{PAD}\" y1=\"{}\" x2=\"{W}\" y2=\"{}\" stroke=\"#bbb\"/>{bars}\
<text x=\"0\" y=\"12\" font-size=\"11\" fill=\"#555\">{max}</text></svg>\
<p class=\"muted\"><span class=\"tag\" style=\"background:#2450d8;color:#fff\">issued</span> \
<span class=\"tag\" style=\"background:#b42318;color:#fff\">denied</span> {}</p>",
        a(&summary),
        H - PAD,
        H - PAD,
        t(&summary)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn chart_scales_and_labels() {
        let svg = super::chart(&[(0, 3, 1), (3600, 0, 0)]);
        assert!(
            svg.contains("3 tokens issued and 1 requests denied"),
            "{svg}"
        );
        assert!(svg.starts_with("<svg"));
        assert!(!super::chart(&[]).is_empty());
    }
}
