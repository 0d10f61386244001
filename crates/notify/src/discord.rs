//! Discord: a channel webhook with one embed.

use std::fmt;

use reqwest::Method;
use serde::Deserialize;

use crate::{
    http::{origin_only, parse_http_url, Outgoing, Secrets},
    message::truncate,
    Event, Message, NotifyError, Severity,
};

/// A Discord channel webhook (`https://discord.com/api/webhooks/ID/TOKEN`).
///
/// The URL is a secret (whoever has it can post): `Debug`, `Display` and
/// errors show only `https://discord.com/***`.
///
/// Sends `POST URL` with
/// `{"username": "Bulwark", "content": TITLE, "allowed_mentions": {"parse": []},
///   "embeds": [{"title": SUBJECT, "description": BODY, "color", "timestamp": AT,
///   "url": LINK, "fields": [Severity, Event], "footer"}]}`.
/// Mentions are disabled, so `@everyone` in a monitor's output pings nobody.
/// The embed's colour follows the event (see [`Discord::color`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Discord {
    /// The webhook URL (secret).
    pub url: String,
}

impl fmt::Debug for Discord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discord")
            .field("url", &origin_only(&self.url))
            .finish()
    }
}

impl Discord {
    /// The embed colour (0xRRGGBB): down red, up green, reminder orange,
    /// test blue; an alert by severity (critical red, warning orange, info blue).
    pub fn color(event: Event, severity: Severity) -> u32 {
        const RED: u32 = 0xD9_30_25;
        const GREEN: u32 = 0x1E_8E_3E;
        const ORANGE: u32 = 0xF2_99_00;
        const BLUE: u32 = 0x1A_73_E8;
        match event {
            Event::Down => RED,
            Event::Up => GREEN,
            Event::Reminder => ORANGE,
            Event::Test => BLUE,
            Event::Alert => match severity {
                Severity::Critical => RED,
                Severity::Warning => ORANGE,
                Severity::Info => BLUE,
            },
        }
    }

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
        let url = parse_http_url(name, "discord", "webhook URL", &self.url, true)?;
        let mut embed = serde_json::json!({
            "title": truncate(&msg.subject, 256),
            "description": truncate(&msg.body, 4096),
            "color": Self::color(msg.event, msg.severity),
            "timestamp": msg.at.to_string(),
            "fields": [
                {"name": "Severity", "value": msg.severity.as_str(), "inline": true},
                {"name": "Event", "value": msg.event.as_str(), "inline": true},
            ],
            "footer": {"text": "Bulwark"},
        });
        if let (Some(link), Some(obj)) = (&msg.link, embed.as_object_mut()) {
            obj.insert("url".into(), link.clone().into());
        }
        let body = serde_json::json!({
            "username": "Bulwark",
            "content": truncate(&msg.title, 2000),
            "allowed_mentions": {"parse": []},
            "embeds": [embed],
        });
        let shown = format!("POST {}", origin_only(&self.url));
        Ok(Outgoing::json(Method::POST, url, &body, shown))
    }

    pub(crate) fn hint_for(status: u16) -> Option<&'static str> {
        match status {
            401 | 403 => Some("the webhook token in the URL is wrong: copy the webhook URL again from the channel's settings"),
            404 => Some("the webhook was deleted: create a new one (channel settings → Integrations → Webhooks) and update the URL"),
            400 => Some("Discord refused the message's format"),
            _ => None,
        }
    }
}
