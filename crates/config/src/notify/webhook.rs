//! `type = "webhook"`: a generic HTTP webhook with an optional JSON body
//! template.

use std::path::Path;

use bulwark_notify::{render_template, Message, WebhookMethod};

use super::{ca_file, NotifierSettings, Owner, WebhookUrl};
use crate::{
    fields::{headers, http_url, secret},
    raw::RawNotifier,
    read::Ctx,
};

const CREDENTIALS: &str =
    "leave credentials out of the URL: send them in a header read from a file, e.g. header_files = { \"Authorization\" = \"/etc/bulwark/hook.auth\" }, or put the whole URL in a file and set url_file";

pub(super) fn webhook(
    cx: &mut Ctx<'_>,
    r: &RawNotifier,
    owner: &Owner<'_>,
    base: &Path,
) -> Option<NotifierSettings> {
    let url = match (
        &r.url,
        secret(cx, r.url_file.as_ref(), r.url_env.as_ref(), "url", base),
    ) {
        (Some(u), Ok(Some(_))) => {
            cx.err_at(
                u,
                "both `url` and `url_file`/`url_env` are set",
                "keep one: `url` for a URL that holds no secret, `url_file`/`url_env` for one that does",
            );
            None
        }
        (Some(u), Ok(None)) => http_url(
            cx,
            u,
            "url",
            "https://hooks.example.org/bulwark",
            CREDENTIALS,
        )
        .then(|| WebhookUrl::Plain(u.get_ref().trim().to_string())),
        (None, Ok(Some(s))) => Some(WebhookUrl::Secret(s)),
        (None, Ok(None)) => {
            if owner.clean {
                cx.err_at(
                    owner.name,
                    format!("webhook notifier `{}` has no `url`", owner.name.get_ref()),
                    "add url = \"https://hooks.example.org/bulwark\", or url_file/url_env if the URL itself is the credential",
                );
            }
            None
        }
        (_, Err(())) => None,
    };
    let method = match &r.method {
        None => Some(WebhookMethod::Post),
        Some(m) => match m.get_ref().to_ascii_uppercase().as_str() {
            "POST" => Some(WebhookMethod::Post),
            "PUT" => Some(WebhookMethod::Put),
            _ => {
                cx.err_at(
                    m,
                    format!("`{}` is not a webhook method", m.get_ref()),
                    "use method = \"POST\" (the default) or \"PUT\"",
                );
                None
            }
        },
    };
    let (headers, secret_headers) = headers(
        cx,
        r.headers.as_ref(),
        r.header_files.as_ref(),
        r.header_envs.as_ref(),
        base,
    );
    if let Some(t) = &r.template {
        if let Err(e) = render_template(t.get_ref(), &Message::test(owner.name.get_ref())) {
            cx.err_at(
                t,
                format!("bad `template`: {e}"),
                "the template is JSON with placeholders inside strings, e.g. template = '{\"text\": \"{{title}}: {{body}}\"}'",
            );
        }
    }
    let ca_file = ca_file(cx, r, base);
    Some(NotifierSettings::Webhook {
        url: url?,
        method: method?,
        headers,
        secret_headers,
        template: r.template.as_ref().map(|t| t.get_ref().clone()),
        ca_file,
    })
}
