//! Bulwark's notifiers: how an alert reaches a person, and how the hub tells
//! an outside service that it is still alive.
//!
//! - [`Message`]: what an alert says (title, body, [`Severity`], [`Event`],
//!   subject, time, link).
//! - [`Notifier`]: a named [`Channel`] — [`Ntfy`], [`Gotify`], [`Discord`],
//!   [`Slack`], [`Email`] (SMTP with implicit TLS, STARTTLS or none) or a
//!   generic [`Webhook`] with a JSON body template — that can
//!   [`send`](Notifier::send) a message. [`Notifier::validate`] checks the
//!   settings without sending (for the configuration layer).
//! - [`Pinger`]: outgoing healthchecks.io-style pings (`start`, `success`,
//!   `fail`), a dead-man's switch for the hub itself.
//! - [`Route`] and [`targets`]: which notifiers a message goes to, by
//!   subject glob and least severity. Pure.
//!
//! Secrets (tokens, passwords, Discord/Slack/webhook/ping URLs) are plain
//! `String`s the caller read from files; they never appear in `Debug`,
//! `Display` or a [`NotifyError`]. Errors name the notifier, quote the
//! server's status and the first 200 bytes of its answer, and give a hint.
//!
//! ```no_run
//! use bulwark_notify::{targets, Channel, Event, Message, Notifier, Ntfy, Route, Severity};
//!
//! # async fn run() -> Result<(), bulwark_notify::NotifyError> {
//! let phone = Notifier::new(
//!     "phone",
//!     Channel::Ntfy(Ntfy {
//!         server: "https://ntfy.example.org".into(),
//!         topic: "bulwark".into(),
//!         token: Some(std::fs::read_to_string("/etc/bulwark/ntfy.token").unwrap_or_default().trim().into()),
//!         tags: vec![],
//!         ca_file: None,
//!     }),
//! );
//! phone.validate()?; // when the configuration is read
//!
//! let routes = [Route { notifiers: vec!["phone".into()], subjects: vec!["db-*".into()], min_severity: Severity::Warning }];
//! let msg = Message::new(Event::Down, Severity::Critical, "db-main", "db-main is down", "connection refused")
//!     .with_link("https://hub.example.org/monitors/db-main");
//! for name in targets(&routes, &msg) {
//!     if name == phone.name {
//!         phone.send(&msg).await?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod discord;
mod email;
mod error;
mod gotify;
mod http;
mod message;
mod notifier;
mod ntfy;
mod ping;
mod route;
mod slack;
mod webhook;

pub use discord::Discord;
pub use email::{Email, SmtpSecurity};
pub use error::{ErrorKind, NotifyError};
pub use gotify::Gotify;
pub use http::SendOptions;
pub use message::{Event, Message, Severity};
pub use notifier::{Channel, Notifier};
pub use ntfy::Ntfy;
pub use ping::Pinger;
pub use route::{targets, Route, RouteError};
pub use slack::Slack;
pub use webhook::{render_template, TemplateError, Webhook, WebhookMethod, PLACEHOLDERS};
