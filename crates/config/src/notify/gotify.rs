//! `type = "gotify"`: a Gotify application.

use std::path::Path;

use super::{ca_file, required, required_secret, NotifierSettings, Owner};
use crate::{fields::http_url, raw::RawNotifier, read::Ctx};

pub(super) fn gotify(
    cx: &mut Ctx<'_>,
    r: &RawNotifier,
    owner: &Owner<'_>,
    base: &Path,
) -> Option<NotifierSettings> {
    let url = required(
        cx,
        r.url.as_ref(),
        owner,
        "url",
        "url = \"https://gotify.example.org\"",
    )
    .filter(|u| {
        http_url(
            cx,
            u,
            "url",
            "https://gotify.example.org",
            "leave credentials out of the URL: the application token goes in token_file",
        )
    });
    let token = required_secret(
        cx,
        [r.token_file.as_ref(), r.token_env.as_ref()],
        "token",
        owner,
        "Gotify needs an application token",
        base,
    );
    let ca_file = ca_file(cx, r, base);
    Some(NotifierSettings::Gotify {
        url: url?.get_ref().trim().trim_end_matches('/').to_string(),
        token: token?,
        ca_file,
    })
}
