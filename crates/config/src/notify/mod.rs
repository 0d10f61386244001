//! `[notifiers.NAME]` and `[[routes]]`: where alerts go.
//!
//! ```toml
//! [notifiers.phone]
//! type = "ntfy"
//! topic = "homelab-alerts"
//! token_file = "/etc/bulwark/ntfy.token"
//!
//! [notifiers.team]
//! type = "discord"
//! url_file = "/etc/bulwark/discord.url"   # the webhook URL is a secret
//!
//! [[routes]]
//! notifiers = ["phone"]
//! min_severity = "critical"
//!
//! [[routes]]
//! notifiers = ["team"]
//! monitors = ["web-*"]
//! ```
//!
//! Secrets (tokens, passwords, Discord/Slack webhook URLs, credential
//! headers) are only referenced (`*_file`, `*_env`); [`NotifierDecl::build`]
//! loads them and makes the [`bulwark_notify::Notifier`]. The settings are
//! also checked with [`bulwark_notify::Notifier::validate`] when the file is
//! read, with stand-ins for the secrets.
//!
//! One module per type turns its keys into [`NotifierSettings`] ([`ntfy`],
//! [`gotify`], [`hooks`] for Discord and Slack, [`email`], [`webhook`]);
//! [`route`] checks `[[routes]]`.

mod email;
mod gotify;
mod hooks;
mod ntfy;
mod route;
mod webhook;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use bulwark_notify::{
    Channel, Discord, Email, Gotify, Notifier, Ntfy, Route, Severity, Slack, SmtpSecurity, Webhook,
    WebhookMethod,
};
use serde_spanned::Spanned;

use crate::{
    fields::{secret, valid_name, NAME_HINT},
    raw::{RawNotifier, RawRoute},
    read::{closest, Ctx, Entry, Item},
    SecretSource,
};

/// The `type` of a notifier.
const KINDS: [&str; 6] = ["ntfy", "gotify", "discord", "slack", "email", "webhook"];

/// `server` of an ntfy notifier when not set.
pub const DEFAULT_NTFY_SERVER: &str = "https://ntfy.sh";

/// `[notifiers.NAME]`: one notifier, validated. Secrets are referenced,
/// never held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifierDecl {
    /// Its name (what routes list).
    pub name: String,
    /// Its type and settings.
    pub settings: NotifierSettings,
}

/// A notifier's type and settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifierSettings {
    /// `type = "ntfy"`.
    Ntfy {
        /// The server's base URL (default `https://ntfy.sh`).
        server: String,
        /// The topic.
        topic: String,
        /// `token_file` / `token_env`: an access token, if the topic needs one.
        token: Option<SecretSource>,
        /// Extra tags sent with every message.
        tags: Vec<String>,
        /// A private CA for `server`.
        ca_file: Option<PathBuf>,
    },
    /// `type = "gotify"`.
    Gotify {
        /// The server's base URL.
        url: String,
        /// `token_file` / `token_env`: the application token.
        token: SecretSource,
        /// A private CA for `url`.
        ca_file: Option<PathBuf>,
    },
    /// `type = "discord"`.
    Discord {
        /// `url_file` / `url_env`: the webhook URL (a secret).
        url: SecretSource,
    },
    /// `type = "slack"` (and Slack-compatible webhooks).
    Slack {
        /// `url_file` / `url_env`: the incoming webhook URL (a secret).
        url: SecretSource,
        /// Send only `text`, no blocks.
        text_only: bool,
    },
    /// `type = "email"`.
    Email {
        /// The SMTP server.
        host: String,
        /// Its port (`None`: 465 for tls, 587 for starttls, 25 for none).
        port: Option<u16>,
        /// `tls`, `starttls` (default) or `none`.
        security: SmtpSecurity,
        /// The login, if the server wants one.
        username: Option<String>,
        /// `password_file` / `password_env` (with `username`).
        password: Option<SecretSource>,
        /// The sender.
        from: String,
        /// The recipients (at least one).
        to: Vec<String>,
        /// A private CA for `host`.
        ca_file: Option<PathBuf>,
    },
    /// `type = "webhook"`.
    Webhook {
        /// Where to send.
        url: WebhookUrl,
        /// `POST` (default) or `PUT`.
        method: WebhookMethod,
        /// Plain extra headers (none of them a credential).
        headers: BTreeMap<String, String>,
        /// `header_files` / `header_envs`: headers whose values are secrets.
        secret_headers: BTreeMap<String, SecretSource>,
        /// A JSON body template with `{{placeholders}}` (`None`: the message as JSON).
        template: Option<String>,
        /// A private CA for the URL.
        ca_file: Option<PathBuf>,
    },
}

/// The URL of a generic webhook: written in the file, or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookUrl {
    /// `url`: not a secret (its credentials, if any, are in headers).
    Plain(String),
    /// `url_file` / `url_env`: the URL itself is the credential.
    Secret(SecretSource),
}

impl NotifierSettings {
    /// The type's name: `ntfy`, `gotify`, `discord`, `slack`, `email`, `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ntfy { .. } => "ntfy",
            Self::Gotify { .. } => "gotify",
            Self::Discord { .. } => "discord",
            Self::Slack { .. } => "slack",
            Self::Email { .. } => "email",
            Self::Webhook { .. } => "webhook",
        }
    }
}

impl NotifierDecl {
    /// The notifier with each secret from `load(source, key)`.
    pub(crate) fn channel<E>(
        &self,
        load: &mut dyn FnMut(&SecretSource, &str) -> Result<String, E>,
    ) -> Result<Notifier, E> {
        let key = |s: &SecretSource, prefix: &str| match s {
            SecretSource::File(_) => format!("{prefix}_file"),
            SecretSource::Env(_) => format!("{prefix}_env"),
        };
        let channel = match &self.settings {
            NotifierSettings::Ntfy {
                server,
                topic,
                token,
                tags,
                ca_file,
            } => Channel::Ntfy(Ntfy {
                server: server.clone(),
                topic: topic.clone(),
                token: match token {
                    Some(t) => Some(load(t, &key(t, "token"))?.trim().to_string()),
                    None => None,
                },
                tags: tags.clone(),
                ca_file: ca_file.clone(),
            }),
            NotifierSettings::Gotify {
                url,
                token,
                ca_file,
            } => Channel::Gotify(Gotify {
                url: url.clone(),
                token: load(token, &key(token, "token"))?.trim().to_string(),
                ca_file: ca_file.clone(),
            }),
            NotifierSettings::Discord { url } => Channel::Discord(Discord {
                url: load(url, &key(url, "url"))?.trim().to_string(),
            }),
            NotifierSettings::Slack { url, text_only } => Channel::Slack(Slack {
                url: load(url, &key(url, "url"))?.trim().to_string(),
                text_only: *text_only,
            }),
            NotifierSettings::Email {
                host,
                port,
                security,
                username,
                password,
                from,
                to,
                ca_file,
            } => Channel::Email(Email {
                host: host.clone(),
                port: *port,
                security: *security,
                username: username.clone(),
                password: match password {
                    Some(p) => Some(load(p, &key(p, "password"))?),
                    None => None,
                },
                from: from.clone(),
                to: to.clone(),
                ca_file: ca_file.clone(),
            }),
            NotifierSettings::Webhook {
                url,
                method,
                headers,
                secret_headers,
                template,
                ca_file,
            } => {
                let mut all = headers.clone();
                for (name, source) in secret_headers {
                    let what = match source {
                        SecretSource::File(_) => format!("header_files.{name}"),
                        SecretSource::Env(_) => format!("header_envs.{name}"),
                    };
                    all.insert(name.clone(), load(source, &what)?.trim().to_string());
                }
                Channel::Webhook(Webhook {
                    url: match url {
                        WebhookUrl::Plain(u) => u.clone(),
                        WebhookUrl::Secret(s) => load(s, &key(s, "url"))?.trim().to_string(),
                    },
                    method: *method,
                    headers: all,
                    template: template.clone(),
                    ca_file: ca_file.clone(),
                })
            }
        };
        Ok(Notifier::new(self.name.clone(), channel))
    }
}

/// The keys each type takes (besides `type`).
fn keys_of(kind: &str) -> &'static [&'static str] {
    match kind {
        "ntfy" => &[
            "server",
            "topic",
            "token_file",
            "token_env",
            "tags",
            "ca_file",
        ],
        "gotify" => &["url", "token_file", "token_env", "ca_file"],
        "discord" => &["url_file", "url_env"],
        "slack" => &["url_file", "url_env", "text_only"],
        "email" => &[
            "host",
            "port",
            "security",
            "username",
            "password_file",
            "password_env",
            "from",
            "to",
            "ca_file",
        ],
        _ => &[
            "url",
            "url_file",
            "url_env",
            "method",
            "headers",
            "header_files",
            "header_envs",
            "template",
            "ca_file",
        ],
    }
}

/// The keys that are set, with their spans, in file order.
fn set_keys(r: &RawNotifier) -> Vec<(&'static str, std::ops::Range<usize>)> {
    fn s<T>(v: Option<&Spanned<T>>) -> Option<std::ops::Range<usize>> {
        v.map(Spanned::span)
    }
    let mut keys: Vec<_> = [
        ("server", s(r.server.as_ref())),
        ("topic", s(r.topic.as_ref())),
        ("tags", s(r.tags.as_ref())),
        ("token_file", s(r.token_file.as_ref())),
        ("token_env", s(r.token_env.as_ref())),
        ("url", s(r.url.as_ref())),
        ("url_file", s(r.url_file.as_ref())),
        ("url_env", s(r.url_env.as_ref())),
        ("text_only", s(r.text_only.as_ref())),
        ("host", s(r.host.as_ref())),
        ("port", s(r.port.as_ref())),
        ("security", s(r.security.as_ref())),
        ("username", s(r.username.as_ref())),
        ("password_file", s(r.password_file.as_ref())),
        ("password_env", s(r.password_env.as_ref())),
        ("from", s(r.from.as_ref())),
        ("to", s(r.to.as_ref())),
        ("method", s(r.method.as_ref())),
        ("headers", s(r.headers.as_ref())),
        ("header_files", s(r.header_files.as_ref())),
        ("header_envs", s(r.header_envs.as_ref())),
        ("template", s(r.template.as_ref())),
        ("ca_file", s(r.ca_file.as_ref())),
    ]
    .into_iter()
    .filter_map(|(k, span)| span.map(|span| (k, span)))
    .collect();
    keys.sort_by_key(|(_, span)| span.start);
    keys
}

/// Validates the notifiers and the routes (`None`: no `routes` key at all);
/// the routes that apply (with no `[[routes]]` and exactly one notifier: one
/// route of everything to it).
pub(crate) fn validate(
    cx: &mut Ctx<'_>,
    mut entries: Vec<Entry<RawNotifier>>,
    routes: Option<Vec<Item<RawRoute>>>,
    monitors: &BTreeSet<String>,
    base: &Path,
) -> (BTreeMap<String, NotifierDecl>, Vec<Route>) {
    entries.sort_by_key(|e| e.name.span().start);
    let names: Vec<String> = entries.iter().map(|e| e.name.get_ref().clone()).collect();
    if routes.is_none() && entries.len() > 1 {
        let second = &entries[1].name;
        cx.err_at(
            second,
            format!("notifiers `{}` and `{}` are declared, but no [[routes]] says which messages go to them", names[0], names[1]),
            format!(
                "with one notifier everything goes to it; with more, add routes, e.g. [[routes]] notifiers = [\"{}\"] min_severity = \"critical\"",
                names[1]
            ),
        );
    }
    let mut notifiers = BTreeMap::new();
    for entry in entries {
        if let Some(n) = notifier(cx, entry, base) {
            notifiers.insert(n.name.clone(), n);
        }
    }
    let implicit = routes.is_none() && names.len() == 1;
    let mut out: Vec<Route> = routes
        .into_iter()
        .flatten()
        .filter_map(|r| route::route(cx, r, &names, monitors))
        .collect();
    if implicit {
        out.push(Route {
            notifiers: names,
            subjects: Vec::new(),
            min_severity: Severity::Info,
        });
    }
    (notifiers, out)
}

/// The notifier whose keys are checked.
struct Owner<'a> {
    /// Its name, where missing keys are reported.
    name: &'a Spanned<String>,
    /// Its type.
    kind: &'a str,
    /// False when some key was rejected already (then missing keys are not reported).
    clean: bool,
}

/// A required string key of a notifier.
fn required<'a>(
    cx: &mut Ctx<'_>,
    v: Option<&'a Spanned<String>>,
    owner: &Owner<'_>,
    key: &str,
    example: &str,
) -> Option<&'a Spanned<String>> {
    match v {
        None => {
            if owner.clean {
                cx.err_at(
                    owner.name,
                    format!(
                        "{} notifier `{}` has no `{key}`",
                        owner.kind,
                        owner.name.get_ref()
                    ),
                    format!("add {example}"),
                );
            }
            None
        }
        Some(s) if s.get_ref().trim().is_empty() => {
            cx.err_at(s, format!("`{key}` is empty"), format!("e.g. {example}"));
            None
        }
        Some(s) => Some(s),
    }
}

/// A secret that the type needs (`token`, `url`): one of `*_file`/`*_env`.
fn required_secret(
    cx: &mut Ctx<'_>,
    [file, env]: [Option<&Spanned<String>>; 2],
    prefix: &str,
    owner: &Owner<'_>,
    why: &str,
    base: &Path,
) -> Option<SecretSource> {
    match secret(cx, file, env, prefix, base) {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            if owner.clean {
                let n = owner.name.get_ref();
                cx.err_at(
                    owner.name,
                    format!("{} notifier `{n}` has no `{prefix}_file` or `{prefix}_env`", owner.kind),
                    format!("{why}: put it in a file (mode 0600) and set {prefix}_file = \"/etc/bulwark/{n}.{prefix}\", or name an environment variable with {prefix}_env"),
                );
            }
            None
        }
        Err(()) => None,
    }
}

fn ca_file(cx: &mut Ctx<'_>, r: &RawNotifier, base: &Path) -> Option<PathBuf> {
    let c = r.ca_file.as_ref()?;
    if c.get_ref().trim().is_empty() {
        cx.err_at(
            c,
            "`ca_file` is empty",
            "give the PEM file of the private CA, or remove it to trust the system's CAs",
        );
        return None;
    }
    Some(base.join(c.get_ref()))
}

fn strings(list: Option<&Spanned<Vec<Spanned<String>>>>) -> Vec<String> {
    list.map(|l| l.get_ref().iter().map(|s| s.get_ref().clone()).collect())
        .unwrap_or_default()
}

fn notifier(cx: &mut Ctx<'_>, entry: Entry<RawNotifier>, base: &Path) -> Option<NotifierDecl> {
    let Entry { name, raw, clean } = entry;
    let before = cx.diags.len();
    let nname = name.get_ref().clone();
    if !valid_name(&nname) {
        cx.err_at(
            &name,
            format!("`{nname}` is not a valid notifier name"),
            NAME_HINT,
        );
    }
    let r = raw?;
    let kind = match &r.kind {
        None => {
            if clean {
                cx.err_at(
                    &name,
                    format!("notifier `{nname}` has no `type`"),
                    format!("add type = \"ntfy\" (types: {})", KINDS.join(", ")),
                );
            }
            return None;
        }
        Some(t) if !KINDS.contains(&t.get_ref().as_str()) => {
            let hint = match closest(t.get_ref(), &KINDS) {
                Some(best) => format!("did you mean `{best}`? (types: {})", KINDS.join(", ")),
                None => format!("types: {}", KINDS.join(", ")),
            };
            cx.err_at(t, format!("`{}` is not a notifier type", t.get_ref()), hint);
            return None;
        }
        Some(t) => t.get_ref().as_str(),
    };
    let secret_url = matches!(kind, "discord" | "slack");
    for (key, span) in set_keys(&r) {
        if keys_of(kind).contains(&key) {
            continue;
        }
        let hint = if key == "url" && secret_url {
            let service = if kind == "discord" {
                "Discord"
            } else {
                "Slack"
            };
            format!(
                "a {service} webhook URL is a secret: whoever has it can post to your channel, and bulwark.toml is meant to be shared (git, agents). Put the URL in a file (mode 0600) and set url_file = \"/etc/bulwark/{nname}.url\", or name an environment variable with url_env"
            )
        } else {
            let kinds: Vec<String> = KINDS
                .iter()
                .filter(|k| keys_of(k).contains(&key))
                .map(|k| format!("`{k}`"))
                .collect();
            format!(
                "`{key}` applies to {} notifiers; remove it, or change the type",
                kinds.join(", ")
            )
        };
        let message = if key == "url" && secret_url {
            format!(
                "a {kind} notifier takes its webhook URL from `url_file` or `url_env`, not `url`"
            )
        } else {
            format!("`{key}` does not apply to a `{kind}` notifier")
        };
        cx.err(span, message, Some(hint));
    }
    if cx.diags.len() > before {
        return None;
    }
    let owner = Owner {
        name: &name,
        kind,
        clean,
    };
    let settings = match kind {
        "ntfy" => ntfy::ntfy(cx, &r, &owner, base)?,
        "gotify" => gotify::gotify(cx, &r, &owner, base)?,
        "discord" | "slack" => hooks::hooks(cx, &r, &owner, base)?,
        "email" => email::email(cx, &r, &owner, base)?,
        _ => webhook::webhook(cx, &r, &owner, base)?,
    };
    if cx.diags.len() > before || !clean {
        return None;
    }
    let decl = NotifierDecl {
        name: nname,
        settings,
    };
    // Everything bulwark_notify can check without the secrets: stand-ins
    // for them, no CA file (it may live on another machine).
    let checked = decl
        .channel(&mut |_: &SecretSource, key: &str| -> Result<String, ()> {
            Ok(if key.starts_with("url") {
                "https://example.invalid/stand-in".into()
            } else {
                "stand-in".into()
            })
        })
        .map(|mut n| {
            match &mut n.channel {
                Channel::Ntfy(c) => c.ca_file = None,
                Channel::Gotify(c) => c.ca_file = None,
                Channel::Email(c) => c.ca_file = None,
                Channel::Webhook(c) => c.ca_file = None,
                Channel::Discord(_) | Channel::Slack(_) => {}
            }
            n
        });
    if let Ok(n) = checked {
        if let Err(e) = n.validate() {
            cx.err_at(
                &name,
                format!("notifier `{}`: {}", name.get_ref(), e.message),
                e.hint.unwrap_or_else(|| "see docs/monitoring.md".into()),
            );
            return None;
        }
    }
    Some(decl)
}
