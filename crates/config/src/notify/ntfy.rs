//! `type = "ntfy"`: a topic on an ntfy server.

use std::path::Path;

use super::{ca_file, required, strings, NotifierSettings, Owner, DEFAULT_NTFY_SERVER};
use crate::{
    fields::{http_url, secret},
    raw::RawNotifier,
    read::Ctx,
};

pub(super) fn ntfy(
    cx: &mut Ctx<'_>,
    r: &RawNotifier,
    owner: &Owner<'_>,
    base: &Path,
) -> Option<NotifierSettings> {
    let server = match &r.server {
        Some(s) => http_url(
            cx,
            s,
            "server",
            DEFAULT_NTFY_SERVER,
            "leave credentials out of the URL: set token_file",
        )
        .then(|| s.get_ref().trim().trim_end_matches('/').to_string()),
        None => Some(DEFAULT_NTFY_SERVER.to_string()),
    };
    let topic = required(
        cx,
        r.topic.as_ref(),
        owner,
        "topic",
        "topic = \"homelab-alerts\"",
    );
    if let Some(t) = topic {
        let v = t.get_ref();
        if v.len() > 64
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            cx.err_at(
                t,
                format!("`{v}` is not an ntfy topic"),
                "use 1 to 64 letters, digits, `-` or `_`",
            );
        }
    }
    let token = secret(
        cx,
        r.token_file.as_ref(),
        r.token_env.as_ref(),
        "token",
        base,
    )
    .ok()
    .flatten();
    let tags = strings(r.tags.as_ref());
    for t in r.tags.iter().flat_map(|l| l.get_ref()) {
        if t.get_ref().trim().is_empty() || t.get_ref().contains(',') {
            cx.err_at(
                t,
                "an ntfy tag must be non-empty and without commas",
                "e.g. tags = [\"homelab\"]",
            );
        }
    }
    let ca_file = ca_file(cx, r, base);
    Some(NotifierSettings::Ntfy {
        server: server?,
        topic: topic?.get_ref().clone(),
        token,
        tags,
        ca_file,
    })
}
