//! `type = "http"`: an HTTP(S) request and what its answer must look like.

use std::{collections::BTreeMap, path::Path};

use bulwark_monitor::{HttpProbe, JsonCheck, StatusRange};
use serde::Deserialize;
use serde_spanned::Spanned;

use super::{human, int, missing, tls_trust, MonitorKind};
use crate::{
    fields::{headers, http_url},
    multihost,
    raw::{RawMonitor, RawStatus, RawStatuses},
    read::Ctx,
    SecretSource,
};

type HttpParts = (HttpProbe, BTreeMap<String, SecretSource>);

pub(super) fn http(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
    base: &Path,
) -> Option<HttpParts> {
    let before = cx.diags.len();
    const EXAMPLE: &str = "https://nas.lan:8443/health";
    let url = match &r.url {
        None => {
            missing(cx, clean, name, MonitorKind::Http, "url", "url = \"https://nas.lan:8443/health\"");
            None
        }
        Some(u) => http_url(
            cx,
            u,
            "url",
            EXAMPLE,
            "send credentials in a header read from a file: header_files = { \"Authorization\" = \"/etc/bulwark/app.auth\" } (the file holds e.g. `Basic dXNlcjpwYXNz`)",
        )
        .then(|| u.get_ref().trim().to_string()),
    };
    let mut p = HttpProbe::new(url.clone().unwrap_or_default());
    if let Some(m) = &r.method {
        if m.get_ref().trim().is_empty() {
            cx.err_at(
                m,
                "`method` is empty",
                "remove it for GET, or e.g. method = \"HEAD\"",
            );
        }
        p.method = m.get_ref().trim().to_ascii_uppercase();
    }
    let (headers, secret_headers) = headers(
        cx,
        r.headers.as_ref(),
        r.header_files.as_ref(),
        r.header_envs.as_ref(),
        base,
    );
    p.headers = headers;
    p.body = r.body.as_ref().map(|b| b.get_ref().clone());
    if let Some(st) = &r.expected_status {
        let raw: Vec<&RawStatus> = match st.get_ref() {
            RawStatuses::One(s) => vec![s],
            RawStatuses::Many(v) => v.iter().collect(),
        };
        if raw.is_empty() {
            cx.err_at(
                st,
                "`expected_status` is empty",
                "remove it for 200-399, or e.g. expected_status = [\"200-299\", 401]",
            );
        }
        let mut ranges = Vec::new();
        for s in raw {
            let parsed = match s {
                RawStatus::Code(n) => n.to_string().parse::<StatusRange>(),
                RawStatus::Text(t) => t.parse::<StatusRange>(),
            };
            match parsed {
                Ok(range) => ranges.push(range),
                Err(e) => cx.err_at(
                    st,
                    format!("bad `expected_status`: {e}"),
                    "a status (100-599) or a range such as \"200-299\", or an array of them",
                ),
            }
        }
        p.expected_status = ranges;
    }
    if let Some(b) = &r.body_contains {
        if b.get_ref().is_empty() {
            cx.err_at(
                b,
                "`body_contains` is empty",
                "remove it, or give the text the body must contain",
            );
        }
        p.body_contains = Some(b.get_ref().clone());
    }
    match (&r.json_pointer, &r.json_equals) {
        (Some(ptr), Some(eq)) => {
            if !(ptr.get_ref().is_empty() || ptr.get_ref().starts_with('/')) {
                cx.err_at(
                    ptr,
                    format!("`{}` is not a JSON pointer", ptr.get_ref()),
                    format!(
                        "a JSON pointer starts with `/`, e.g. json_pointer = \"/{}\"",
                        ptr.get_ref().trim_start_matches(['.', '$'])
                    ),
                );
            }
            if matches!(eq.get_ref(), toml::Value::Datetime(_)) {
                cx.err_at(
                    eq,
                    "`json_equals` can't be a TOML date/time: JSON has none",
                    "write it as a string, e.g. json_equals = \"2026-01-01\"",
                );
            } else {
                let t = toml::Value::Table(toml::Table::from_iter([
                    (
                        "pointer".to_string(),
                        toml::Value::String(ptr.get_ref().clone()),
                    ),
                    ("equals".to_string(), eq.get_ref().clone()),
                ]));
                match JsonCheck::deserialize(t) {
                    Ok(j) => p.json = Some(j),
                    Err(e) => cx.err_at(
                        eq,
                        format!("`json_equals` can't be compared as JSON: {}", e.message()),
                        "give a string, number, boolean, array or table",
                    ),
                }
            }
        }
        (Some(v), None) => cx.err_at(
            v,
            "`json_pointer` without `json_equals`",
            "add the value the field must have, e.g. json_equals = \"ok\"",
        ),
        (None, Some(v)) => cx.err_at(
            v,
            "`json_equals` without `json_pointer`",
            "add the field to compare, e.g. json_pointer = \"/status\"",
        ),
        (None, None) => {}
    }
    let timeout = r
        .timeout
        .as_ref()
        .and_then(|t| humantime::parse_duration(t.get_ref().trim()).ok());
    if let Some(m) = &r.max_response_time {
        if let Some(d) = multihost::positive(
            cx,
            m,
            "max_response_time",
            "2s",
            "every response would be too slow",
        ) {
            let limit = timeout.unwrap_or(bulwark_monitor::DEFAULT_TIMEOUT);
            if d > limit {
                cx.err_at(
                    m,
                    format!("`max_response_time` ({}) is longer than the timeout ({})", human(d), human(limit)),
                    "a slower response times out first: make it shorter than `timeout`, or raise the timeout",
                );
            }
            p.max_response_time = Some(d);
        }
    }
    if let Some(d) = &r.min_cert_days {
        p.min_cert_days = int(cx, d, "min_cert_days", (0, 3650), "min_cert_days = 14");
        if url.as_deref().is_some_and(|u| !u.starts_with("https://")) {
            cx.err_at(
                d,
                "`min_cert_days` needs an https:// url",
                "remove it, or change the url to https://",
            );
        }
    }
    if let Some(f) = &r.follow_redirects {
        p.follow_redirects = *f.get_ref();
    }
    tls_trust(cx, r, base, &mut p.ca_file, &mut p.insecure);
    if cx.diags.len() > before {
        return None;
    }
    url.map(|_| (p, secret_headers))
}
