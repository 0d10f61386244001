//! [`Notifier`]: a named channel ([`Channel`]) that can [`send`](Notifier::send) a [`Message`].

use std::{fmt, path::Path};

use serde::Deserialize;

use crate::{
    http::{HintFn, Secrets, SendOptions, Sender},
    Discord, Email, Gotify, Message, NotifyError, Ntfy, Slack, Webhook,
};

/// Where a notifier delivers, with its settings.
///
/// Deserializes from an object tagged by `type`
/// (`{"type": "ntfy", "server": …, "topic": …}`). There is deliberately no
/// `Serialize`: the settings hold secrets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Channel {
    /// An ntfy topic.
    Ntfy(Ntfy),
    /// A Gotify application.
    Gotify(Gotify),
    /// A Discord webhook.
    Discord(Discord),
    /// A Slack incoming webhook.
    Slack(Slack),
    /// Email over SMTP.
    Email(Email),
    /// A generic HTTP webhook.
    Webhook(Webhook),
}

impl Channel {
    /// The type's name: `ntfy`, `gotify`, `discord`, `slack`, `email`, `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ntfy(_) => "ntfy",
            Self::Gotify(_) => "gotify",
            Self::Discord(_) => "discord",
            Self::Slack(_) => "slack",
            Self::Email(_) => "email",
            Self::Webhook(_) => "webhook",
        }
    }
}

/// A named notifier: `[notify.NAME]` in the configuration.
///
/// `Debug` and `Display` never show a secret: tokens and passwords appear as
/// `***`, and webhook URLs (Discord, Slack, generic) only by their origin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Notifier {
    /// The name routes refer to and errors mention.
    pub name: String,
    /// Where and how it delivers.
    #[serde(flatten)]
    pub channel: Channel,
    /// Timeouts and retries (not read from files yet).
    #[serde(skip)]
    pub options: SendOptions,
}

impl fmt::Display for Notifier {
    /// `discord notifier `alerts` (https://discord.com/***)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = match &self.channel {
            Channel::Ntfy(c) => c.describe(),
            Channel::Gotify(c) => c.describe(),
            Channel::Discord(c) => c.describe(),
            Channel::Slack(c) => c.describe(),
            Channel::Email(c) => c.describe(),
            Channel::Webhook(c) => c.describe(),
        };
        write!(
            f,
            "{} notifier `{}` ({place})",
            self.channel.kind(),
            self.name
        )
    }
}

impl Notifier {
    /// A notifier with the default [`SendOptions`].
    pub fn new(name: impl Into<String>, channel: Channel) -> Self {
        Self {
            name: name.into(),
            channel,
            options: SendOptions::default(),
        }
    }

    /// Replaces the [`SendOptions`].
    #[must_use]
    pub fn with_options(mut self, options: SendOptions) -> Self {
        self.options = options;
        self
    }

    /// Checks everything that can be checked without sending: URLs, topic,
    /// token characters, the webhook template (rendered for a message full of
    /// quotes, newlines and non-ASCII text, and parsed as JSON), header
    /// names and values, email addresses, credentials over plain SMTP,
    /// `ca_file` (read and parsed). Errors are [`ErrorKind::Config`](crate::ErrorKind::Config).
    pub fn validate(&self) -> Result<(), NotifyError> {
        let n = &self.name;
        match &self.channel {
            Channel::Ntfy(c) => c.validate(n),
            Channel::Gotify(c) => c.validate(n),
            Channel::Discord(c) => c.validate(n),
            Channel::Slack(c) => c.validate(n),
            Channel::Email(c) => c.validate(n),
            Channel::Webhook(c) => c.validate(n),
        }
    }

    /// Delivers `msg`.
    ///
    /// HTTP notifiers: one attempt within [`SendOptions::timeout`], one retry
    /// after a network error or a 5xx answer, 429 answers waited out (their
    /// `Retry-After`, up to [`SendOptions::max_retry_after`]); redirects are
    /// not followed. Email: one retry after a refused or broken connection
    /// (not after a timeout or a TLS failure, which would only repeat).
    ///
    /// # Errors
    /// A [`NotifyError`] naming this notifier, with the server's status and
    /// the start of its answer, and a hint.
    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let n = self.name.as_str();
        let (out, secrets, ca_file, hint_for): (_, Secrets, Option<&Path>, HintFn) =
            match &self.channel {
                Channel::Ntfy(c) => (
                    c.request(n, msg)?,
                    c.secrets(),
                    c.ca_file.as_deref(),
                    Ntfy::hint_for,
                ),
                Channel::Gotify(c) => (
                    c.request(n, msg)?,
                    c.secrets(),
                    c.ca_file.as_deref(),
                    Gotify::hint_for,
                ),
                Channel::Discord(c) => (c.request(n, msg)?, c.secrets(), None, Discord::hint_for),
                Channel::Slack(c) => (c.request(n, msg)?, c.secrets(), None, Slack::hint_for),
                Channel::Webhook(c) => (
                    c.request(n, msg)?,
                    c.secrets(),
                    c.ca_file.as_deref(),
                    Webhook::hint_for,
                ),
                Channel::Email(c) => return c.send(n, msg, &self.options).await,
            };
        Sender {
            name: n,
            channel: self.channel.kind(),
            secrets: &secrets,
            options: &self.options,
            ca_file,
            hint_for,
        }
        .deliver(&out)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_tagged_by_type() {
        let n: Notifier = serde_json::from_str(
            r#"{"name": "phone", "type": "ntfy", "server": "https://ntfy.example", "topic": "alerts", "tags": ["nas"]}"#,
        )
        .unwrap();
        assert_eq!(n.name, "phone");
        assert_eq!(n.channel.kind(), "ntfy");
        n.validate().unwrap();
        let n: Notifier = serde_json::from_str(
            r#"{"name": "mail", "type": "email", "host": "smtp.example", "security": "tls",
                "from": "Bulwark <b@example.org>", "to": ["ops@example.org"]}"#,
        )
        .unwrap();
        let Channel::Email(e) = &n.channel else {
            panic!("not email: {n:?}")
        };
        assert_eq!(e.effective_port(), 465);
        n.validate().unwrap();
        let n: Notifier = serde_json::from_str(
            r#"{"name": "w", "type": "webhook", "url": "http://127.0.0.1:1/x", "method": "PUT"}"#,
        )
        .unwrap();
        let Channel::Webhook(w) = &n.channel else {
            panic!("not a webhook: {n:?}")
        };
        assert_eq!(w.method, crate::WebhookMethod::Put);
        assert!(serde_json::from_str::<Notifier>(r#"{"name": "x", "type": "pager"}"#).is_err());
        let typo = serde_json::from_str::<Notifier>(
            r#"{"name": "x", "type": "ntfy", "server": "https://ntfy.example", "topic": "t", "tokne": "x"}"#,
        );
        assert!(typo.is_err(), "unknown fields are refused: {typo:?}");
    }

    #[test]
    fn config_errors_are_caught_by_validate() {
        let ntfy = |server: &str, topic: &str, token: Option<&str>| {
            Notifier::new(
                "n",
                Channel::Ntfy(Ntfy {
                    server: server.into(),
                    topic: topic.into(),
                    token: token.map(Into::into),
                    tags: vec![],
                    ca_file: None,
                }),
            )
        };
        assert!(ntfy("https://ntfy.sh", "ok_topic-1", Some("tk_abc"))
            .validate()
            .is_ok());
        for bad in [
            ntfy("ntfy.sh", "t", None),
            ntfy("ftp://ntfy.sh", "t", None),
            ntfy("https://ntfy.sh", "a/b", None),
            ntfy("https://ntfy.sh", "", None),
            ntfy("https://ntfy.sh", "t", Some("tk_abc\n")),
            ntfy("https://user:pw@ntfy.sh", "t", None),
        ] {
            let e = bad.validate().unwrap_err();
            assert_eq!(e.kind, crate::ErrorKind::Config, "{e}");
            assert!(e.hint.is_some(), "{e}");
        }
        let email = |security, user: Option<&str>, pass: Option<&str>, host: &str| {
            Notifier::new(
                "m",
                Channel::Email(Email {
                    host: host.into(),
                    port: None,
                    security,
                    username: user.map(Into::into),
                    password: pass.map(Into::into),
                    from: "b@example.org".into(),
                    to: vec!["ops@example.org".into()],
                    ca_file: None,
                }),
            )
        };
        use crate::SmtpSecurity as S;
        assert!(email(S::None, Some("u"), Some("p4ss"), "127.0.0.1")
            .validate()
            .is_ok());
        assert!(email(S::Starttls, Some("u"), Some("p4ss"), "smtp.example")
            .validate()
            .is_ok());
        let e = email(S::None, Some("u"), Some("p4ss"), "smtp.example")
            .validate()
            .unwrap_err();
        assert!(e.message.contains("unencrypted"), "{e}");
        assert!(!e.to_string().contains("p4ss"));
        let e = email(S::Tls, Some("u"), None, "smtp.example")
            .validate()
            .unwrap_err();
        assert!(e.message.contains("go together"), "{e}");
        let mut bad_to = email(S::Tls, None, None, "smtp.example");
        if let Channel::Email(e) = &mut bad_to.channel {
            e.to = vec!["not an address".into()];
        }
        assert!(bad_to
            .validate()
            .unwrap_err()
            .message
            .contains("not an address"));
    }

    #[test]
    fn secrets_stay_out_of_debug_and_display() {
        let n = Notifier::new(
            "g",
            Channel::Gotify(Gotify {
                url: "https://gotify.example".into(),
                token: "AbCdSeCrEt".into(),
                ca_file: None,
            }),
        );
        assert!(!format!("{n:?}").contains("AbCdSeCrEt"));
        assert!(!n.to_string().contains("AbCdSeCrEt"));
        let n = Notifier::new(
            "w",
            Channel::Webhook(Webhook {
                url: "https://hooks.example/abc/SeCrEtPaTh?key=QuErYsEcReT".into(),
                method: Default::default(),
                headers: [(
                    "Authorization".to_string(),
                    "Bearer HeAdErSeCrEt".to_string(),
                )]
                .into(),
                template: None,
                ca_file: None,
            }),
        );
        for text in [format!("{n:?}"), n.to_string()] {
            for secret in ["SeCrEtPaTh", "QuErYsEcReT", "HeAdErSeCrEt"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(text.contains("hooks.example"), "{text}");
        }
        let n = Notifier::new(
            "e",
            Channel::Email(Email {
                host: "smtp.example".into(),
                port: Some(2525),
                security: crate::SmtpSecurity::Starttls,
                username: Some("bulwark".into()),
                password: Some("PaSsWoRd".into()),
                from: "b@example.org".into(),
                to: vec!["ops@example.org".into()],
                ca_file: None,
            }),
        );
        assert!(!format!("{n:?}").contains("PaSsWoRd"));
        assert_eq!(
            n.to_string(),
            "email notifier `e` (smtp+starttls://smtp.example:2525 to ops@example.org)"
        );
    }
}
