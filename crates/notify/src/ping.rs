//! Outgoing pings to a healthchecks.io-style service: the hub's own
//! dead-man's switch.

use std::fmt;

use reqwest::{
    header::{HeaderMap, HeaderValue, CONTENT_TYPE},
    Method,
};
use serde::Deserialize;

use crate::{
    http::{origin_only, parse_http_url, Outgoing, Secrets, SendOptions, Sender},
    NotifyError,
};

/// At most this much of a failure's text is sent (healthchecks.io keeps 100 kB).
const MAX_PING_BODY: usize = 100_000;

/// A check on healthchecks.io (or a compatible service such as a
/// self-hosted Healthchecks or Uptime Kuma's push monitors).
///
/// The conventions: `GET URL` says "ran fine", `GET URL/start` "started",
/// `POST URL/fail` with a text body "failed, here is why". If the pings stop,
/// the service alerts: that covers the hub itself being down.
///
/// The URL is a secret (whoever has it can ping): `Debug` and errors show
/// only its origin.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinger {
    /// The check's ping URL, e.g. `https://hc-ping.com/UUID`.
    pub url: String,
    /// Timeouts and retries (not configurable from files yet).
    #[serde(skip)]
    pub options: SendOptions,
}

impl fmt::Debug for Pinger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pinger")
            .field("url", &origin_only(&self.url))
            .field("options", &self.options)
            .finish()
    }
}

fn no_hint(_: u16) -> Option<&'static str> {
    Some("check the ping URL: copy it again from the check's page")
}

impl Pinger {
    /// A pinger for `url` with the default [`SendOptions`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            options: SendOptions::default(),
        }
    }

    /// Checks that the URL is an http(s) URL.
    pub fn validate(&self) -> Result<(), NotifyError> {
        parse_http_url("ping", "ping", "ping URL", &self.url, true).map(|_| ())
    }

    /// `GET URL/start`: a run started (the service measures its duration).
    pub async fn start(&self) -> Result<(), NotifyError> {
        self.ping(Method::GET, "/start", None).await
    }

    /// `GET URL`: all is well.
    pub async fn success(&self) -> Result<(), NotifyError> {
        self.ping(Method::GET, "", None).await
    }

    /// `POST URL/fail` with `body` (plain text, cut to 100 kB): something failed.
    pub async fn fail(&self, body: &str) -> Result<(), NotifyError> {
        self.ping(Method::POST, "/fail", Some(body)).await
    }

    async fn ping(
        &self,
        method: Method,
        suffix: &str,
        body: Option<&str>,
    ) -> Result<(), NotifyError> {
        let mut url = parse_http_url("ping", "ping", "ping URL", &self.url, true)?;
        let path = format!("{}{suffix}", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let mut secrets = Secrets::default();
        secrets.add_url(&self.url);
        let shown = format!("{method} {}{suffix}", origin_only(&self.url));
        let mut headers = HeaderMap::new();
        let body = match body {
            Some(b) => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                let mut cut = b.len().min(MAX_PING_BODY);
                while !b.is_char_boundary(cut) {
                    cut -= 1;
                }
                b.as_bytes()[..cut].to_vec()
            }
            None => Vec::new(),
        };
        let out = Outgoing {
            method,
            url,
            headers,
            body,
            shown,
        };
        Sender {
            name: "ping",
            channel: "ping",
            secrets: &secrets,
            options: &self.options,
            ca_file: None,
            hint_for: no_hint,
        }
        .deliver(&out)
        .await
    }
}
