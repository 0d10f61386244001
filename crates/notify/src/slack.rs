//! Slack (and Slack-compatible) incoming webhooks.

use std::fmt;

use reqwest::Method;
use serde::Deserialize;

use crate::{
    http::{origin_only, parse_http_url, Outgoing, Secrets},
    message::truncate,
    Event, Message, NotifyError,
};

/// A Slack incoming webhook (`https://hooks.slack.com/services/T…/B…/…`).
///
/// The URL is a secret: `Debug`, `Display` and errors show only
/// `https://hooks.slack.com/***`.
///
/// Sends `POST URL` with `{"text": "EMOJI *TITLE*\nBODY", "blocks": [header,
/// section, context]}`; with `text_only` the `blocks` are left out (for
/// Slack-compatible receivers such as Mattermost that show only `text`).
/// `&`, `<` and `>` are escaped, so a monitor's output cannot mention
/// `<!channel>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slack {
    /// The incoming webhook URL (secret).
    pub url: String,
    /// Send only `text`, no `blocks`.
    #[serde(default)]
    pub text_only: bool,
}

impl fmt::Debug for Slack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slack")
            .field("url", &origin_only(&self.url))
            .field("text_only", &self.text_only)
            .finish()
    }
}

/// Slack's mrkdwn escaping: only `&`, `<` and `>` are control characters.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl Slack {
    pub(crate) fn secrets(&self) -> Secrets {
        let mut s = Secrets::default();
        s.add_url(&self.url);
        s
    }

    pub(crate) fn describe(&self) -> String {
        origin_only(&self.url)
    }

    pub(crate) fn validate(&self, name: &str) -> Result<(), NotifyError> {
        self.request(name, &Message::test(name)).map(|_| ())
    }

    pub(crate) fn request(&self, name: &str, msg: &Message) -> Result<Outgoing, NotifyError> {
        let url = parse_http_url(name, "slack", "webhook URL", &self.url, true)?;
        let emoji = match msg.event {
            Event::Down => ":red_circle:",
            Event::Up => ":large_green_circle:",
            Event::Reminder => ":hourglass:",
            Event::Test => ":test_tube:",
            Event::Alert => ":warning:",
        };
        let mut text = format!("{emoji} *{}*", escape(&msg.title));
        if !msg.body.is_empty() {
            text.push('\n');
            text.push_str(&escape(&msg.body));
        }
        let mut context = format!(
            "*{}* · {} · {} · {}",
            escape(&msg.subject),
            msg.severity,
            msg.event,
            msg.at
        );
        if let Some(link) = &msg.link {
            context.push_str(&format!(" · <{}|open>", escape(link)));
        }
        let mut body = serde_json::json!({ "text": truncate(&text, 3000) });
        if !self.text_only {
            let mut blocks = vec![serde_json::json!({
                "type": "header",
                "text": {"type": "plain_text", "text": truncate(&format!("{emoji} {}", msg.title), 150), "emoji": true},
            })];
            if !msg.body.is_empty() {
                blocks.push(serde_json::json!({
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": truncate(&escape(&msg.body), 3000)},
                }));
            }
            blocks.push(serde_json::json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": truncate(&context, 3000)}],
            }));
            if let Some(obj) = body.as_object_mut() {
                obj.insert("blocks".into(), blocks.into());
            }
        }
        let shown = format!("POST {}", origin_only(&self.url));
        Ok(Outgoing::json(Method::POST, url, &body, shown))
    }

    pub(crate) fn hint_for(status: u16) -> Option<&'static str> {
        match status {
            401 | 403 => Some("the webhook was revoked or its token is wrong: create a new incoming webhook and update the URL"),
            404 | 410 => Some("the webhook or its channel no longer exists: create a new incoming webhook and update the URL"),
            400 => Some("Slack refused the message (invalid_payload): if the receiver is Slack-compatible but not Slack, set text_only"),
            _ => None,
        }
    }
}
