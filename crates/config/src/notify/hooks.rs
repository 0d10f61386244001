//! `type = "discord"` and `type = "slack"`: webhooks whose URL is itself the
//! secret (`url_file` / `url_env`).

use std::path::Path;

use super::{required_secret, NotifierSettings, Owner};
use crate::{raw::RawNotifier, read::Ctx};

pub(super) fn hooks(
    cx: &mut Ctx<'_>,
    r: &RawNotifier,
    owner: &Owner<'_>,
    base: &Path,
) -> Option<NotifierSettings> {
    let why = if owner.kind == "discord" {
        "a Discord webhook URL is a secret (whoever has it can post)"
    } else {
        "a Slack webhook URL is a secret (whoever has it can post)"
    };
    let url = required_secret(
        cx,
        [r.url_file.as_ref(), r.url_env.as_ref()],
        "url",
        owner,
        why,
        base,
    );
    Some(if owner.kind == "discord" {
        NotifierSettings::Discord { url: url? }
    } else {
        NotifierSettings::Slack {
            url: url?,
            text_only: r.text_only.as_ref().is_some_and(|t| *t.get_ref()),
        }
    })
}
