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

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use bulwark_notify::{
    render_template, Channel, Discord, Email, Gotify, Message, Notifier, Ntfy, Route, Severity,
    Slack, SmtpSecurity, Webhook, WebhookMethod,
};
use serde_spanned::Spanned;

use crate::{
    monitor::{headers, http_url, monitor_patterns, severity, BuildError},
    raw::{RawNotifier, RawRoute},
    read::{closest, Ctx, Entry, Item},
    validate::{secret, valid_name, NAME_HINT},
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
    /// Loads the secrets and builds the notifier, checked with
    /// [`Notifier::validate`] (which also reads `ca_file`).
    pub fn build(&self) -> Result<Notifier, BuildError> {
        let notifier = self.channel(&mut |source: &SecretSource, key: &str| {
            source
                .load()
                .map(|s| s.expose().to_string())
                .map_err(|error| BuildError::Secret {
                    what: format!("notifier `{}` ({key})", self.name),
                    error,
                })
        })?;
        notifier.validate().map_err(BuildError::Notify)?;
        Ok(notifier)
    }

    /// The notifier with each secret from `load(source, key)`.
    fn channel(
        &self,
        load: &mut dyn FnMut(&SecretSource, &str) -> Result<String, BuildError>,
    ) -> Result<Notifier, BuildError> {
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
        .filter_map(|r| route(cx, r, &names, monitors))
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

fn route(
    cx: &mut Ctx<'_>,
    item: Item<RawRoute>,
    notifiers: &[String],
    monitors: &BTreeSet<String>,
) -> Option<Route> {
    let Item { span, raw, clean } = item;
    let before = cx.diags.len();
    let r = raw?;
    let mut names = Vec::new();
    match &r.notifiers {
        None => {
            if clean {
                cx.err(
                    span,
                    "a route has no `notifiers`",
                    Some(match notifiers.first() {
                        Some(n) => format!("add the notifiers its messages go to, e.g. notifiers = [\"{n}\"]"),
                        None => {
                            "declare a notifier with [notifiers.NAME] and list it, e.g. notifiers = [\"phone\"]".into()
                        }
                    }),
                );
            }
        }
        Some(list) if list.get_ref().is_empty() => {
            cx.err_at(
                list,
                "`notifiers` is empty",
                "list the notifiers its messages go to, or remove the route",
            );
        }
        Some(list) => {
            let known: Vec<&str> = notifiers.iter().map(String::as_str).collect();
            for n in list.get_ref() {
                let v = n.get_ref();
                if !notifiers.contains(v) {
                    let hint = match closest(v, &known) {
                        Some(best) => format!(
                            "did you mean `{best}`? (declared notifiers: {})",
                            known.join(", ")
                        ),
                        None if known.is_empty() => {
                            "no notifiers are declared; declare one with [notifiers.NAME]".into()
                        }
                        None => format!("declared notifiers: {}", known.join(", ")),
                    };
                    cx.err_at(n, format!("unknown notifier `{v}` in a route"), hint);
                } else if names.contains(v) {
                    cx.err_at(n, format!("notifier `{v}` is listed twice"), "remove one");
                } else {
                    names.push(v.clone());
                }
            }
        }
    }
    let subjects = r
        .monitors
        .as_ref()
        .map(|m| monitor_patterns(cx, m, "route", monitors))
        .unwrap_or_default();
    let min_severity = r
        .min_severity
        .as_ref()
        .map_or(Some(Severity::Info), |s| severity(cx, s, "min_severity"));
    if cx.diags.len() > before || !clean {
        return None;
    }
    Some(Route {
        notifiers: names,
        subjects,
        min_severity: min_severity?,
    })
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

const CREDENTIALS: &str =
    "leave credentials out of the URL: send them in a header read from a file, e.g. header_files = { \"Authorization\" = \"/etc/bulwark/hook.auth\" }, or put the whole URL in a file and set url_file";

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
        "ntfy" => {
            let server = match &r.server {
                Some(s) => http_url(
                    cx,
                    s,
                    "server",
                    DEFAULT_NTFY_SERVER,
                    "leave credentials out of the URL: set token_file",
                )
                .then(|| s.get_ref().trim().trim_end_matches('/').to_string()),
                None => Some(DEFAULT_NTFY_SERVER.to_string()),
            };
            let topic = required(
                cx,
                r.topic.as_ref(),
                &owner,
                "topic",
                "topic = \"homelab-alerts\"",
            );
            if let Some(t) = topic {
                let v = t.get_ref();
                if v.len() > 64
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    cx.err_at(
                        t,
                        format!("`{v}` is not an ntfy topic"),
                        "use 1 to 64 letters, digits, `-` or `_`",
                    );
                }
            }
            let token = secret(
                cx,
                r.token_file.as_ref(),
                r.token_env.as_ref(),
                "token",
                base,
            )
            .ok()
            .flatten();
            let tags = strings(r.tags.as_ref());
            for t in r.tags.iter().flat_map(|l| l.get_ref()) {
                if t.get_ref().trim().is_empty() || t.get_ref().contains(',') {
                    cx.err_at(
                        t,
                        "an ntfy tag must be non-empty and without commas",
                        "e.g. tags = [\"homelab\"]",
                    );
                }
            }
            let ca_file = ca_file(cx, &r, base);
            NotifierSettings::Ntfy {
                server: server?,
                topic: topic?.get_ref().clone(),
                token,
                tags,
                ca_file,
            }
        }
        "gotify" => {
            let url = required(
                cx,
                r.url.as_ref(),
                &owner,
                "url",
                "url = \"https://gotify.example.org\"",
            )
            .filter(|u| {
                http_url(
                    cx,
                    u,
                    "url",
                    "https://gotify.example.org",
                    "leave credentials out of the URL: the application token goes in token_file",
                )
            });
            let token = required_secret(
                cx,
                [r.token_file.as_ref(), r.token_env.as_ref()],
                "token",
                &owner,
                "Gotify needs an application token",
                base,
            );
            let ca_file = ca_file(cx, &r, base);
            NotifierSettings::Gotify {
                url: url?.get_ref().trim().trim_end_matches('/').to_string(),
                token: token?,
                ca_file,
            }
        }
        "discord" | "slack" => {
            let why = if kind == "discord" {
                "a Discord webhook URL is a secret (whoever has it can post)"
            } else {
                "a Slack webhook URL is a secret (whoever has it can post)"
            };
            let url = required_secret(
                cx,
                [r.url_file.as_ref(), r.url_env.as_ref()],
                "url",
                &owner,
                why,
                base,
            );
            if kind == "discord" {
                NotifierSettings::Discord { url: url? }
            } else {
                NotifierSettings::Slack {
                    url: url?,
                    text_only: r.text_only.as_ref().is_some_and(|t| *t.get_ref()),
                }
            }
        }
        "email" => email(cx, &r, &owner, base)?,
        _ => {
            let url = match (
                &r.url,
                secret(cx, r.url_file.as_ref(), r.url_env.as_ref(), "url", base),
            ) {
                (Some(u), Ok(Some(_))) => {
                    cx.err_at(
                        u,
                        "both `url` and `url_file`/`url_env` are set",
                        "keep one: `url` for a URL that holds no secret, `url_file`/`url_env` for one that does",
                    );
                    None
                }
                (Some(u), Ok(None)) => http_url(
                    cx,
                    u,
                    "url",
                    "https://hooks.example.org/bulwark",
                    CREDENTIALS,
                )
                .then(|| WebhookUrl::Plain(u.get_ref().trim().to_string())),
                (None, Ok(Some(s))) => Some(WebhookUrl::Secret(s)),
                (None, Ok(None)) => {
                    if clean {
                        cx.err_at(
                            &name,
                            format!("webhook notifier `{nname}` has no `url`"),
                            "add url = \"https://hooks.example.org/bulwark\", or url_file/url_env if the URL itself is the credential",
                        );
                    }
                    None
                }
                (_, Err(())) => None,
            };
            let method = match &r.method {
                None => Some(WebhookMethod::Post),
                Some(m) => match m.get_ref().to_ascii_uppercase().as_str() {
                    "POST" => Some(WebhookMethod::Post),
                    "PUT" => Some(WebhookMethod::Put),
                    _ => {
                        cx.err_at(
                            m,
                            format!("`{}` is not a webhook method", m.get_ref()),
                            "use method = \"POST\" (the default) or \"PUT\"",
                        );
                        None
                    }
                },
            };
            let (headers, secret_headers) = headers(
                cx,
                r.headers.as_ref(),
                r.header_files.as_ref(),
                r.header_envs.as_ref(),
                base,
            );
            if let Some(t) = &r.template {
                if let Err(e) = render_template(t.get_ref(), &Message::test(&nname)) {
                    cx.err_at(
                        t,
                        format!("bad `template`: {e}"),
                        "the template is JSON with placeholders inside strings, e.g. template = '{\"text\": \"{{title}}: {{body}}\"}'",
                    );
                }
            }
            let ca_file = ca_file(cx, &r, base);
            NotifierSettings::Webhook {
                url: url?,
                method: method?,
                headers,
                secret_headers,
                template: r.template.as_ref().map(|t| t.get_ref().clone()),
                ca_file,
            }
        }
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
        .channel(&mut |_: &SecretSource, key: &str| {
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

fn email(
    cx: &mut Ctx<'_>,
    r: &RawNotifier,
    owner: &Owner<'_>,
    base: &Path,
) -> Option<NotifierSettings> {
    let (name, clean) = (owner.name, owner.clean);
    let host = required(
        cx,
        r.host.as_ref(),
        owner,
        "host",
        "host = \"smtp.example.org\"",
    );
    let port = match &r.port {
        Some(p) if !(1..=65535).contains(p.get_ref()) => {
            cx.err_at(
                p,
                "`port` must be between 1 and 65535",
                "remove it for the usual one (465 tls, 587 starttls, 25 none)",
            );
            None
        }
        Some(p) => Some(u16::try_from(*p.get_ref()).ok()),
        None => Some(None),
    };
    let security = match &r.security {
        None => Some(SmtpSecurity::Starttls),
        Some(s) => match s.get_ref().as_str() {
            "tls" => Some(SmtpSecurity::Tls),
            "starttls" => Some(SmtpSecurity::Starttls),
            "none" => Some(SmtpSecurity::None),
            other => {
                let hint = match closest(other, &["tls", "starttls", "none"]) {
                    Some(best) => format!("did you mean `{best}`? (security = \"tls\" (port 465), \"starttls\" (587) or \"none\" (25))"),
                    None => "use security = \"tls\" (port 465), \"starttls\" (587) or \"none\" (25)".into(),
                };
                cx.err_at(s, format!("`{other}` is not an SMTP security mode"), hint);
                None
            }
        },
    };
    let username = match &r.username {
        Some(u) if u.get_ref().trim().is_empty() => {
            cx.err_at(
                u,
                "`username` is empty",
                "give the SMTP login, or remove it",
            );
            None
        }
        u => u.as_ref().map(|u| u.get_ref().clone()),
    };
    let password = secret(
        cx,
        r.password_file.as_ref(),
        r.password_env.as_ref(),
        "password",
        base,
    )
    .ok()
    .flatten();
    match (&r.username, r.password_file.as_ref().or(r.password_env.as_ref())) {
        (Some(u), None) => cx.err_at(
            u,
            "`username` without a password",
            "add password_file = \"/etc/bulwark/smtp.pass\" (or password_env), or remove the username",
        ),
        (None, Some(p)) => cx.err_at(
            p,
            "a password without `username`",
            "add username = \"…\" (the SMTP login), or remove the password",
        ),
        _ => {}
    }
    if let (Some(SmtpSecurity::None), Some(p)) = (
        security,
        r.password_file.as_ref().or(r.password_env.as_ref()),
    ) {
        let local = r.host.as_ref().is_some_and(|h| {
            let h = h.get_ref().trim_matches(['[', ']']);
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if !local {
            cx.err_at(
                p,
                "a password would be sent unencrypted (security = \"none\")",
                "use security = \"starttls\" or \"tls\"; `none` with a login is only for a relay on this machine (localhost)",
            );
        }
    }
    let from = required(
        cx,
        r.from.as_ref(),
        owner,
        "from",
        "from = \"Bulwark <bulwark@example.org>\"",
    );
    let to = match &r.to {
        None => {
            if clean {
                cx.err_at(
                    name,
                    format!("email notifier `{}` has no `to`", name.get_ref()),
                    "add to = [\"me@example.org\"]",
                );
            }
            None
        }
        Some(list) if list.get_ref().is_empty() => {
            cx.err_at(
                list,
                "`to` is empty",
                "add at least one recipient, e.g. to = [\"me@example.org\"]",
            );
            None
        }
        Some(list) => {
            for a in list.get_ref() {
                if !a.get_ref().contains('@') {
                    cx.err_at(
                        a,
                        format!("`{}` is not an email address", a.get_ref()),
                        "e.g. to = [\"me@example.org\"]",
                    );
                }
            }
            Some(strings(Some(list)))
        }
    };
    if let Some(f) = from {
        if !f.get_ref().contains('@') {
            cx.err_at(
                f,
                format!("`{}` is not an email address", f.get_ref()),
                "e.g. from = \"Bulwark <bulwark@example.org>\"",
            );
        }
    }
    let ca_file = ca_file(cx, r, base);
    Some(NotifierSettings::Email {
        host: host?.get_ref().trim().to_string(),
        port: port?,
        security: security?,
        username,
        password,
        from: from?.get_ref().clone(),
        to: to?,
        ca_file,
    })
}
