//! Gotify (<https://gotify.net>): `POST /message` with an application token.

use std::{fmt, path::PathBuf};

use reqwest::{header::HeaderValue, Method};
use serde::Deserialize;

use crate::{
    http::{check_header_secret, parse_http_url, read_ca_file, Outgoing, Secrets},
    Message, NotifyError, Severity,
};

/// A Gotify application.
///
/// Sends `POST {url}/message` with the token in the `X-Gotify-Key` header
/// (never in the query string, where it would land in access logs) and the
/// JSON body `{"title", "message", "priority", "extras"}`; the link, if
/// any, becomes the notification's click URL
/// (`extras."client::notification".click.url`).
///
/// Priority follows the severity: info → 4, warning → 7, critical → 10.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gotify {
    /// The server's base URL, e.g. `https://gotify.example.org`.
    pub url: String,
    /// The application token (not a client token), read from a file by the caller.
    pub token: String,
    /// A PEM file of a private CA to trust for `url`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Gotify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gotify")
            .field("url", &self.url)
            .field("token", &"***")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl Gotify {
    /// Gotify's priority for a severity (0 … 10).
    pub fn priority(severity: Severity) -> u8 {
        match severity {
            Severity::Info => 4,
            Severity::Warning => 7,
            Severity::Critical => 10,
        }
    }

    pub(crate) fn secrets(&self) -> Secrets {
        let mut s = Secrets::default();
        s.add(&self.token);
        s
    }

    pub(crate) fn describe(&self) -> String {
        self.url.clone()
    }

    pub(crate) fn validate(&self, name: &str) -> Result<(), NotifyError> {
        self.request(name, &Message::test(name))?;
        if let Some(ca) = &self.ca_file {
            read_ca_file(name, "gotify", ca)?;
        }
        Ok(())
    }

    pub(crate) fn request(&self, name: &str, msg: &Message) -> Result<Outgoing, NotifyError> {
        let mut url = parse_http_url(name, "gotify", "URL", &self.url, false)?;
        let path = format!("{}/message", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        check_header_secret(name, "gotify", "application token", &self.token)?;
        let mut body = serde_json::json!({
            "title": msg.title,
            "message": msg.text(),
            "priority": Self::priority(msg.severity),
        });
        if let (Some(link), Some(obj)) = (&msg.link, body.as_object_mut()) {
            obj.insert(
                "extras".into(),
                serde_json::json!({"client::notification": {"click": {"url": link}}}),
            );
        }
        let shown = format!("POST {url}");
        let mut out = Outgoing::json(Method::POST, url, &body, shown);
        let mut key = HeaderValue::from_str(&self.token).map_err(|_| {
            NotifyError::config(
                name,
                "gotify",
                "the application token cannot be sent",
                "check the token file",
            )
        })?;
        key.set_sensitive(true);
        out.headers.insert("x-gotify-key", key);
        Ok(out)
    }

    pub(crate) fn hint_for(status: u16) -> Option<&'static str> {
        match status {
            401 | 403 => Some(
                "the token is wrong: use an application token (Apps → token), not a client token",
            ),
            404 => Some("check the URL: it must be the Gotify server's base URL"),
            400 => Some("the server refused the message: check that the URL points at Gotify"),
            _ => None,
        }
    }
}
