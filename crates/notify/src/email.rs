//! Email over SMTP (implicit TLS, STARTTLS or plain), with lettre and rustls.

use std::{fmt, net::IpAddr, path::PathBuf};

use lettre::{
    message::{
        header::{ContentType, HeaderName, HeaderValue},
        Mailbox,
    },
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
};
use serde::Deserialize;

use crate::{
    http::{excerpt, read_ca_file, Secrets, SendOptions},
    ErrorKind, Message, NotifyError,
};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// TLS from the first byte ("SMTPS", port 465).
    Tls,
    /// Plain connection upgraded with `STARTTLS`, which must succeed (port 587).
    #[default]
    Starttls,
    /// No encryption (port 25): only for a relay on this machine or a trusted network.
    None,
}

impl SmtpSecurity {
    /// The usual port: 465, 587 or 25.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Tls => 465,
            Self::Starttls => 587,
            Self::None => 25,
        }
    }
}

/// Email through an SMTP server.
///
/// One message to all of `to`: `Subject` is the message's title, the body
/// is plain text (the message's body, then subject, severity, event, time
/// and link on their own lines), and the headers `X-Bulwark-Subject`,
/// `X-Bulwark-Severity` and `X-Bulwark-Event` allow filtering.
///
/// Certificates are checked against the system's roots plus `ca_file`.
/// A password is never sent unencrypted to another machine:
/// [`Notifier::validate`](crate::Notifier::validate) refuses `security = none` with credentials unless
/// the host is a loopback address.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// The SMTP server's host name (also the name its certificate must carry).
    pub host: String,
    /// The port; `None` for the usual one of `security`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Implicit TLS, STARTTLS or none.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// The login, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// The password, read from a file by the caller.
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, `bulwark@example.org` or `Bulwark <bulwark@example.org>`.
    pub from: String,
    /// The recipients (at least one).
    pub to: Vec<String>,
    /// A PEM file of a private CA to trust for `host`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Email")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

const CH: &str = "email";
/// One delivery attempt may take this many times [`SendOptions::timeout`].
const SMTP_ATTEMPT_STEPS: u32 = 3;
const TIMEOUT_HINT: &str =
    "check that host and port point at an SMTP server and that security matches the port (tls on 465, starttls on 587)";

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Email {
    /// The port used: `port`, or the usual one for `security`.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.security.default_port())
    }

    pub(crate) fn secrets(&self) -> Secrets {
        let mut s = Secrets::default();
        if let Some(p) = &self.password {
            s.add(p);
        }
        s
    }

    pub(crate) fn describe(&self) -> String {
        let scheme = match self.security {
            SmtpSecurity::Tls => "smtps",
            SmtpSecurity::Starttls => "smtp+starttls",
            SmtpSecurity::None => "smtp",
        };
        format!(
            "{scheme}://{}:{} to {}",
            self.host,
            self.effective_port(),
            self.to.join(", ")
        )
    }

    pub(crate) fn validate(&self, name: &str) -> Result<(), NotifyError> {
        self.build(name, &Message::test(name))?;
        if self.host.is_empty() || self.host.contains(char::is_whitespace) {
            return Err(NotifyError::config(
                name,
                CH,
                format!("`{}` is not a host name", self.host),
                "give the SMTP server's name, e.g. smtp.example.org",
            ));
        }
        if self.port == Some(0) {
            return Err(NotifyError::config(
                name,
                CH,
                "port 0 is not a port",
                "leave port out for the usual one (465 tls, 587 starttls, 25 none)",
            ));
        }
        match (&self.username, &self.password) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(NotifyError::config(
                    name,
                    CH,
                    "username and password go together",
                    "give both (the password from a file), or neither",
                ))
            }
            (Some(_), Some(_)) if self.security == SmtpSecurity::None && !is_loopback(&self.host) => {
                return Err(NotifyError::config(
                    name,
                    CH,
                    format!("the password would travel unencrypted to {}", self.host),
                    "use security = \"starttls\" or \"tls\" (plain SMTP with a login is only allowed to localhost)",
                ))
            }
            _ => {}
        }
        if let Some(ca) = &self.ca_file {
            if self.security == SmtpSecurity::None {
                return Err(NotifyError::config(
                    name,
                    CH,
                    "ca_file is set but security is none",
                    "use security = \"starttls\" or \"tls\", or drop ca_file",
                ));
            }
            read_ca_file(name, CH, ca)?;
        }
        Ok(())
    }

    fn build(&self, name: &str, msg: &Message) -> Result<lettre::Message, NotifyError> {
        let from: Mailbox = self.from.parse().map_err(|e| {
            NotifyError::config(
                name,
                CH,
                format!("from `{}` is not an email address ({e})", self.from),
                "write it as bulwark@example.org or \"Bulwark <bulwark@example.org>\"",
            )
        })?;
        if self.to.is_empty() {
            return Err(NotifyError::config(
                name,
                CH,
                "no recipient (to is empty)",
                "give at least one address in to",
            ));
        }
        let mut b = lettre::Message::builder()
            .from(from)
            .subject(msg.title.replace(['\r', '\n'], " "));
        for to in &self.to {
            let mbox: Mailbox = to.parse().map_err(|e| {
                NotifyError::config(
                    name,
                    CH,
                    format!("recipient `{to}` is not an email address ({e})"),
                    "write it as ops@example.org",
                )
            })?;
            b = b.to(mbox);
        }
        let header = |n: &'static str, v: &str| {
            HeaderValue::new(
                HeaderName::new_from_ascii_str(n),
                v.replace(['\r', '\n'], " "),
            )
        };
        b = b
            .raw_header(header("X-Bulwark-Subject", &msg.subject))
            .raw_header(header("X-Bulwark-Severity", msg.severity.as_str()))
            .raw_header(header("X-Bulwark-Event", msg.event.as_str()))
            .header(ContentType::TEXT_PLAIN);
        b.body(msg.text()).map_err(|e| {
            NotifyError::config(
                name,
                CH,
                format!("cannot build the email: {e}"),
                "check from and to",
            )
        })
    }

    fn transport(
        &self,
        name: &str,
        options: &SendOptions,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
        let tls = if self.security == SmtpSecurity::None {
            Tls::None
        } else {
            let mut params = TlsParameters::builder(self.host.trim_matches(['[', ']']).to_string());
            if let Some(ca) = &self.ca_file {
                let pem = read_ca_file(name, CH, ca)?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    NotifyError::config(
                        name,
                        CH,
                        format!("ca_file {} is not usable: {e}", ca.display()),
                        "give a PEM certificate",
                    )
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| {
                NotifyError::config(
                    name,
                    CH,
                    format!("cannot set up TLS: {e}"),
                    "check ca_file and the system's certificate store",
                )
            })?;
            match self.security {
                SmtpSecurity::Tls => Tls::Wrapper(params),
                _ => Tls::Required(params),
            }
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            self.host.trim_matches(['[', ']']),
        )
        .port(self.effective_port())
        .tls(tls)
        .timeout(Some(options.timeout));
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }

    pub(crate) async fn send(
        &self,
        name: &str,
        msg: &Message,
        options: &SendOptions,
    ) -> Result<(), NotifyError> {
        self.validate(name)?;
        let email = self.build(name, msg)?;
        let transport = self.transport(name, options)?;
        let secrets = self.secrets();
        let mut retried = false;
        // lettre's timeout covers each step but not the wait for the greeting
        // (STARTTLS against an implicit-TLS port waits for ever): bound the whole
        let limit = options.timeout.saturating_mul(SMTP_ATTEMPT_STEPS);
        loop {
            match tokio::time::timeout(limit, transport.send(email.clone())).await {
                Ok(Ok(_)) => return Ok(()),
                Err(_) => {
                    let server = format!("the SMTP server {}:{}", self.host, self.effective_port());
                    let message = format!("{server}: no answer within {} s", limit.as_secs_f32());
                    return Err(NotifyError::new(ErrorKind::Timeout, name, CH, message)
                        .with_hint(TIMEOUT_HINT));
                }
                Ok(Err(e)) => {
                    let err = self.error(name, &e, &secrets, options, retried);
                    // a refused connection may be a restart; a timeout or a TLS
                    // failure is a wrong setting and would only repeat
                    if !retried && err.kind == ErrorKind::Connect && !err.message.contains("TLS") {
                        tracing::debug!(error = %err, "retrying once");
                        retried = true;
                        tokio::time::sleep(options.retry_delay).await;
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    fn error(
        &self,
        name: &str,
        e: &lettre::transport::smtp::Error,
        secrets: &Secrets,
        options: &SendOptions,
        retried: bool,
    ) -> NotifyError {
        let server = format!("the SMTP server {}:{}", self.host, self.effective_port());
        let after = if retried { " (after one retry)" } else { "" };
        // the chain: lettre's own words, then the server's answer or the IO error
        let mut text = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            let t = s.to_string();
            if !text.contains(&t) {
                text.push_str(": ");
                text.push_str(&t);
            }
            src = s.source();
        }
        // lettre nests its errors ("Connection error: Connection error: …")
        let mut parts: Vec<&str> = Vec::new();
        for p in text.split(": ") {
            if parts.last() != Some(&p) {
                parts.push(p);
            }
        }
        let text = secrets.redact(&parts.join(": "));
        if let Some(code) = e.status() {
            let code_num: u16 = code.to_string().parse().unwrap_or(0);
            let answer = std::error::Error::source(e)
                .map(|s| secrets.redact(&excerpt(s.to_string().as_bytes())))
                .unwrap_or_default();
            let (kind, hint) = match code_num {
                530 | 534 | 535 | 538 => (
                    ErrorKind::Auth,
                    "the server refused the login: check username and the password file (some providers want an app password)",
                ),
                550..=553 => (
                    ErrorKind::Rejected,
                    "the server refused an address: check to and from (and that the server relays mail for from)",
                ),
                _ if e.is_permanent() => (ErrorKind::Rejected, "the server refused the message for good: read its answer"),
                _ => (ErrorKind::Server, "the server refused for now (4xx): it may accept later"),
            };
            let mut err = NotifyError::new(
                kind,
                name,
                CH,
                format!("{server} answered {code_num} {answer:?}{after}"),
            )
            .with_hint(hint);
            err.status = Some(code_num);
            err.answer = (!answer.is_empty()).then_some(answer);
            return err;
        }
        if e.is_timeout() {
            return NotifyError::new(
                ErrorKind::Timeout,
                name,
                CH,
                format!(
                    "{server}: no answer within {} s{after}",
                    options.timeout.as_secs_f32()
                ),
            )
            .with_hint(TIMEOUT_HINT);
        }
        let lower = text.to_ascii_lowercase();
        if e.is_tls()
            || lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            return NotifyError::new(ErrorKind::Connect, name, CH, format!("{server}: TLS failed: {text}{after}"))
                .with_hint("if the certificate comes from a private CA, give it as ca_file; the certificate must name the host; check security (tls on 465, starttls on 587)");
        }
        if e.is_client() {
            return NotifyError::new(ErrorKind::Config, name, CH, format!("{server}: {text}"))
                .with_hint("check the settings (a server without STARTTLS needs security = \"tls\" or \"none\")");
        }
        NotifyError::new(
            ErrorKind::Connect,
            name,
            CH,
            format!("{server}: cannot deliver: {text}{after}"),
        )
        .with_hint("check that the server is up and that host, port and security are right")
    }
}
