//! What an alert says: [`Message`], its [`Severity`] and its [`Event`].

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How bad it is: the same type as the hub's alerts ([`bulwark_api::Severity`]).
/// Ordered: `Info < Warning < Critical`, so routes can say "warning and
/// worse" with [`Route::min_severity`](crate::Route::min_severity).
pub use bulwark_api::Severity;

/// What happened to the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The subject went down (a monitor failed, a job failed or is late).
    Down,
    /// The subject is up again: the alert that a [`Event::Down`] raised is over.
    /// Also accepted as `recovered` when deserializing.
    #[serde(alias = "recovered")]
    Up,
    /// The subject is still down: a repeated reminder.
    Reminder,
    /// A test message (`bulwark notify test NAME`).
    Test,
    /// Anything else worth telling (a threshold crossed, a certificate expiring).
    Alert,
}

impl Event {
    /// The lowercase name (`down`, `up`, `reminder`, `test`, `alert`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Up => "up",
            Self::Reminder => "reminder",
            Self::Test => "test",
            Self::Alert => "alert",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert, as every notifier renders it.
///
/// Serialized (the generic webhook's default body, the hub's records) as
/// `{"title", "body", "severity", "event", "subject", "at", "link"}` with
/// `at` in RFC 3339 and `link` `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// One line: what happened (`"backup of nas is late"`).
    pub title: String,
    /// Details, possibly several lines of plain text.
    pub body: String,
    /// How bad it is; routes and priorities follow it.
    pub severity: Severity,
    /// What happened.
    pub event: Event,
    /// The monitor or job the message is about; routes match it.
    pub subject: String,
    /// When it happened.
    pub at: Timestamp,
    /// Where to look (the hub's page for the subject), if anywhere.
    pub link: Option<String>,
}

impl Message {
    /// A message stamped with the current time and no link.
    pub fn new(
        event: Event,
        severity: Severity,
        subject: impl Into<String>,
        title: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            body: body.into(),
            severity,
            event,
            subject: subject.into(),
            at: Timestamp::now(),
            link: None,
        }
    }

    /// The message `bulwark notify test NAME` sends through notifier `notifier`.
    pub fn test(notifier: &str) -> Self {
        Self::new(
            Event::Test,
            Severity::Info,
            "bulwark",
            format!("Bulwark test notification ({notifier})"),
            format!("If you can read this, the notifier `{notifier}` works."),
        )
    }

    /// Sets the link.
    #[must_use]
    pub fn with_link(mut self, link: impl Into<String>) -> Self {
        self.link = Some(link.into());
        self
    }

    /// Sets the time.
    #[must_use]
    pub fn with_at(mut self, at: Timestamp) -> Self {
        self.at = at;
        self
    }

    /// A plain-text rendering with the details on their own lines (email,
    /// Gotify, ntfy): the body, then subject, severity, event, time and link.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        if !self.body.is_empty() {
            out.push_str(&self.body);
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "Subject: {}\nSeverity: {}\nEvent: {}\nAt: {}",
            self.subject, self.severity, self.event, self.at
        ));
        if let Some(link) = &self.link {
            out.push_str(&format!("\nLink: {link}"));
        }
        out
    }
}

/// `s` cut to at most `max` characters, with `…` at the end when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` at the
/// end when cut.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_are_ordered() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Warning < Severity::Critical);
    }

    #[test]
    fn message_serializes_with_lowercase_names_and_rfc3339() {
        let m = Message::new(Event::Up, Severity::Warning, "nas", "t", "b")
            .with_at("2024-05-01T10:00:00Z".parse().unwrap())
            .with_link("https://hub/x");
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"title": "t", "body": "b", "severity": "warning", "event": "up",
                "subject": "nas", "at": "2024-05-01T10:00:00Z", "link": "https://hub/x"})
        );
        let back: Message = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        let e: Event = serde_json::from_str("\"recovered\"").unwrap();
        assert_eq!(e, Event::Up);
    }

    #[test]
    fn truncate_counts_characters() {
        assert_eq!(truncate("héllo", 5), "héllo");
        assert_eq!(truncate("héllo", 3), "hé…");
    }

    #[test]
    fn truncate_bytes_cuts_on_a_character_boundary() {
        assert_eq!(truncate_bytes("héllo", 6), "héllo");
        // 3 bytes for the ellipsis leave 2: "h" and not half of "é"
        assert_eq!(truncate_bytes("héllo", 5), "h…");
        assert!(truncate_bytes(&"é".repeat(3000), 4000).len() <= 4000);
    }
}
