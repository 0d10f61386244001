//! ntfy (<https://ntfy.sh> or a self-hosted server): JSON publishing.

use std::{fmt, path::PathBuf};

use reqwest::{
    header::{HeaderValue, AUTHORIZATION},
    Method,
};
use serde::Deserialize;

use crate::{
    http::{check_header_secret, parse_http_url, read_ca_file, Outgoing, Secrets},
    message::{truncate, truncate_bytes},
    Event, Message, NotifyError, Severity,
};

/// An ntfy topic.
///
/// Sends `POST {server}/` with the JSON body
/// `{"topic", "title", "message", "priority", "tags", "click"}` (ntfy's JSON
/// publishing, so titles and bodies may hold any Unicode), with
/// `Authorization: Bearer TOKEN` when a token is set.
///
/// Priority follows the severity: info → 3 (default), warning → 4 (high),
/// critical → 5 (max). Tags are the configured ones plus one for the event
/// (`rotating_light` down, `white_check_mark` up, `hourglass` reminder,
/// `test_tube` test, `warning` alert), which ntfy shows as emoji.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ntfy {
    /// The server's base URL, e.g. `https://ntfy.sh`.
    pub server: String,
    /// The topic (letters, digits, `-`, `_`; at most 64).
    pub topic: String,
    /// An access token (`tk_…`), read from a file by the caller.
    #[serde(default)]
    pub token: Option<String>,
    /// Extra tags sent with every message.
    #[serde(default)]
    pub tags: Vec<String>,
    /// A PEM file of a private CA to trust for `server`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Ntfy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ntfy")
            .field("server", &self.server)
            .field("topic", &self.topic)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("tags", &self.tags)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Ntfy {
    /// ntfy's priority for a severity (1 min … 5 max).
    pub fn priority(severity: Severity) -> u8 {
        match severity {
            Severity::Info => 3,
            Severity::Warning => 4,
            Severity::Critical => 5,
        }
    }

    pub(crate) fn secrets(&self) -> Secrets {
        let mut s = Secrets::default();
        if let Some(t) = &self.token {
            s.add(t);
        }
        s
    }

    pub(crate) fn describe(&self) -> String {
        format!("{}/{}", self.server.trim_end_matches('/'), self.topic)
    }

    pub(crate) fn validate(&self, name: &str) -> Result<(), NotifyError> {
        self.request(name, &Message::test(name)).map(|_| ())?;
        if let Some(ca) = &self.ca_file {
            read_ca_file(name, "ntfy", ca)?;
        }
        Ok(())
    }

    pub(crate) fn request(&self, name: &str, msg: &Message) -> Result<Outgoing, NotifyError> {
        let url = parse_http_url(name, "ntfy", "server URL", &self.server, false)?;
        let topic_ok = !self.topic.is_empty()
            && self.topic.len() <= 64
            && self
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !topic_ok {
            return Err(NotifyError::config(
                name,
                "ntfy",
                format!("the topic `{}` is not a valid ntfy topic", self.topic),
                "use 1 to 64 letters, digits, `-` or `_`",
            ));
        }
        let mut tags = self.tags.clone();
        tags.push(
            match msg.event {
                Event::Down => "rotating_light",
                Event::Up => "white_check_mark",
                Event::Reminder => "hourglass",
                Event::Test => "test_tube",
                Event::Alert => "warning",
            }
            .to_string(),
        );
        let mut body = serde_json::json!({
            "topic": self.topic,
            "title": truncate(&msg.title, 250),
            // ntfy turns messages over 4096 bytes into attachments
            "message": truncate_bytes(&msg.text(), 4000),
            "priority": Self::priority(msg.severity),
            "tags": tags,
        });
        if let (Some(link), Some(obj)) = (&msg.link, body.as_object_mut()) {
            obj.insert("click".into(), link.clone().into());
        }
        // JSON publishing goes to the server's base URL (which may have a
        // path behind a reverse proxy); the topic is in the body
        let mut url = url;
        let base = format!("{}/", url.path().trim_end_matches('/'));
        url.set_path(&base);
        url.set_query(None);
        let shown = format!("POST {url} (topic {})", self.topic);
        let mut out = Outgoing::json(Method::POST, url, &body, shown);
        if let Some(token) = &self.token {
            check_header_secret(name, "ntfy", "access token", token)?;
            let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                NotifyError::config(
                    name,
                    "ntfy",
                    "the access token cannot be sent",
                    "check the token file",
                )
            })?;
            v.set_sensitive(true);
            out.headers.insert(AUTHORIZATION, v);
        }
        Ok(out)
    }

    pub(crate) fn hint_for(status: u16) -> Option<&'static str> {
        match status {
            401 | 403 => Some(
                "the access token is missing or wrong, or its user may not publish to this topic",
            ),
            404 => Some("check the server URL: it must be the ntfy server's base URL"),
            400 => Some("the server refused the message: check that the server runs ntfy"),
            413 => Some("the message is too large for this server"),
            _ => None,
        }
    }
}
