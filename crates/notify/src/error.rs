//! [`NotifyError`]: which notifier, what went wrong, what the server answered, and a hint.

/// What went wrong, coarsely. Callers branch on it (retry later or not, exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The notifier's settings cannot work (bad URL, template that is not
    /// JSON, unreadable `ca_file`, bad address). Fix the configuration.
    Config,
    /// The server could not be reached: name resolution, connection refused,
    /// TLS handshake or certificate.
    Connect,
    /// The server did not answer in time.
    Timeout,
    /// The server refused the credentials (HTTP 401/403, SMTP 530/534/535).
    Auth,
    /// The server refused the message for good (other HTTP 4xx, SMTP 5xx such
    /// as an unknown recipient, a redirect).
    Rejected,
    /// The server failed (HTTP 5xx, SMTP 4xx), also after the retry.
    Server,
    /// The server asked us to slow down (HTTP 429) for longer than we wait.
    RateLimited,
}

impl ErrorKind {
    /// True when the same message may go through later unchanged (network
    /// trouble, server failures, rate limits); false when something must be
    /// fixed first (configuration, credentials, a refused message).
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Self::Connect | Self::Timeout | Self::Server | Self::RateLimited
        )
    }
}

/// A notification (or ping) that could not be delivered.
///
/// `Display` gives one line: the notifier, the problem (with the server's
/// status and the start of its answer) and a hint. No secret (token,
/// password, Discord/Slack webhook URL, ping URL) is ever part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{channel} notifier `{notifier}`: {message}{}", hint_suffix(.hint.as_deref()))]
pub struct NotifyError {
    /// The coarse category.
    pub kind: ErrorKind,
    /// The notifier's name (`"ping"` for a [`Pinger`](crate::Pinger)).
    pub notifier: String,
    /// The kind of notifier: `ntfy`, `gotify`, `discord`, `slack`, `email`, `webhook`, `ping`.
    pub channel: &'static str,
    /// One sentence: what was tried and what happened, including the
    /// server's status and the start of its answer when there was one.
    pub message: String,
    /// The HTTP status (or SMTP reply code) the server answered, if it answered.
    pub status: Option<u16>,
    /// The first 200 bytes of the server's answer (secrets replaced by `***`).
    pub answer: Option<String>,
    /// How to fix it, when we know.
    pub hint: Option<String>,
}

fn hint_suffix(hint: Option<&str>) -> String {
    hint.map(|h| format!(" (hint: {h})")).unwrap_or_default()
}

impl NotifyError {
    /// An error of `kind` for notifier `notifier` of type `channel`.
    pub fn new(
        kind: ErrorKind,
        notifier: &str,
        channel: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            notifier: notifier.to_string(),
            channel,
            message: message.into(),
            status: None,
            answer: None,
            hint: None,
        }
    }

    /// A configuration error.
    pub(crate) fn config(
        notifier: &str,
        channel: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::new(ErrorKind::Config, notifier, channel, message).with_hint(hint)
    }

    /// Adds (or replaces) the hint.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// True when retrying later may succeed; see [`ErrorKind::is_temporary`].
    pub fn is_temporary(&self) -> bool {
        self.kind.is_temporary()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_notifier_and_hint() {
        let e = NotifyError::new(
            ErrorKind::Server,
            "ops",
            "ntfy",
            "POST http://x/ answered 500",
        )
        .with_hint("try later");
        assert_eq!(
            e.to_string(),
            "ntfy notifier `ops`: POST http://x/ answered 500 (hint: try later)"
        );
        assert!(e.is_temporary());
        assert!(!ErrorKind::Auth.is_temporary());
    }
}
