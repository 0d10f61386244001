//! The generic webhook: any HTTP endpoint, with a JSON body template.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use reqwest::{
    header::{HeaderName, HeaderValue},
    Method,
};
use serde::Deserialize;

use crate::{
    http::{origin_only, parse_http_url, read_ca_file, Outgoing, Secrets},
    Event, Message, NotifyError, Severity,
};

/// The placeholders a body template may use.
pub const PLACEHOLDERS: [&str; 7] = [
    "title", "body", "severity", "event", "subject", "at", "link",
];

/// The HTTP method of a [`Webhook`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum WebhookMethod {
    /// `POST` (the default).
    #[default]
    #[serde(rename = "POST", alias = "post")]
    Post,
    /// `PUT`.
    #[serde(rename = "PUT", alias = "put")]
    Put,
}

/// A generic webhook.
///
/// Sends `POST` (or `PUT`) to `url` with `Content-Type: application/json`
/// (unless `headers` says otherwise) and the extra `headers`. The body is the
/// [`Message`] as JSON, or, with a `template`, the template with its
/// placeholders `{{title}}`, `{{body}}`, `{{severity}}`, `{{event}}`,
/// `{{subject}}`, `{{at}}` (RFC 3339) and `{{link}}` (empty when there is
/// none) replaced by the values escaped as JSON string contents: they go
/// *inside* quotes, as in `{"text": "{{title}}: {{body}}"}`. The result
/// must be JSON ([`Notifier::validate`](crate::Notifier::validate) checks with a message full of quotes,
/// newlines and non-ASCII text).
///
/// The URL's path and query and the header values are treated as secrets:
/// `Debug`, `Display` and errors show only the URL's origin and the header names.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Where to send.
    pub url: String,
    /// `POST` or `PUT`.
    #[serde(default)]
    pub method: WebhookMethod,
    /// Extra headers (e.g. `Authorization`); values are secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON text with placeholders; `None` sends the message as JSON.
    #[serde(default)]
    pub template: Option<String>,
    /// A PEM file of a private CA to trust for `url`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &origin_only(&self.url))
            .field("method", &self.method)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("template", &self.template)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Why a template cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{name}}` with a name that is not one of [`PLACEHOLDERS`].
    #[error("unknown placeholder `{{{{{0}}}}}` (known: {known})", known = PLACEHOLDERS.join(", "))]
    Unknown(String),
    /// `{{` without a closing `}}`.
    #[error("`{{{{` at byte {0} is not closed by `}}}}`")]
    Unclosed(usize),
    /// The substituted text is not JSON.
    #[error("after substitution the body is not JSON: {0}")]
    NotJson(String),
}

/// `s` escaped as the contents of a JSON string (without the quotes).
fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    quoted[1..quoted.len() - 1].to_string()
}

/// Renders `template` for `msg`: placeholders replaced by JSON-escaped
/// values, then checked to be JSON.
pub fn render_template(template: &str, msg: &Message) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError::Unclosed(offset + start));
        };
        let name = after[..end].trim();
        let at;
        let value: &str = match name {
            "title" => &msg.title,
            "body" => &msg.body,
            "severity" => msg.severity.as_str(),
            "event" => msg.event.as_str(),
            "subject" => &msg.subject,
            "at" => {
                at = msg.at.to_string();
                &at
            }
            "link" => msg.link.as_deref().unwrap_or(""),
            other => return Err(TemplateError::Unknown(other.to_string())),
        };
        out.push_str(&json_escape(value));
        let consumed = start + 2 + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    out.push_str(rest);
    serde_json::from_str::<serde_json::Value>(&out)
        .map_err(|e| TemplateError::NotJson(e.to_string()))?;
    Ok(out)
}

/// A message whose values break templates that don't put placeholders
/// inside JSON strings.
fn awkward_message() -> Message {
    Message::new(
        Event::Down,
        Severity::Critical,
        "db \"main\"",
        "title with \"quotes\", a \\ and {braces}",
        "line 1\nline 2\ttab é ✓ 🚨 \u{1}",
    )
    .with_link("https://hub.example/x?a=1&b=\"2\"")
}

impl Webhook {
    pub(crate) fn secrets(&self) -> Secrets {
        let mut s = Secrets::default();
        s.add_url(&self.url);
        for v in self.headers.values() {
            s.add(v);
        }
        s
    }

    pub(crate) fn describe(&self) -> String {
        origin_only(&self.url)
    }

    pub(crate) fn validate(&self, name: &str) -> Result<(), NotifyError> {
        self.request(name, &awkward_message())?;
        if let Some(ca) = &self.ca_file {
            read_ca_file(name, "webhook", ca)?;
        }
        Ok(())
    }

    pub(crate) fn request(&self, name: &str, msg: &Message) -> Result<Outgoing, NotifyError> {
        let url = parse_http_url(name, "webhook", "URL", &self.url, true)?;
        let body = match &self.template {
            Some(t) => render_template(t, msg).map_err(|e| {
                NotifyError::config(
                    name,
                    "webhook",
                    format!("the body template cannot be used: {e}"),
                    "write the template as JSON with each placeholder inside a string, e.g. \
                     {\"text\": \"{{title}}: {{body}}\"}",
                )
            })?,
            None => serde_json::to_string(msg).map_err(|e| {
                NotifyError::config(
                    name,
                    "webhook",
                    format!("cannot encode the message: {e}"),
                    "report this bug",
                )
            })?,
        };
        let method = match self.method {
            WebhookMethod::Post => Method::POST,
            WebhookMethod::Put => Method::PUT,
        };
        let shown = format!("{method} {}", origin_only(&self.url));
        let mut out = Outgoing::json(method, url, &serde_json::Value::Null, shown);
        out.body = body.into_bytes();
        for (k, v) in &self.headers {
            let hn = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                NotifyError::config(
                    name,
                    "webhook",
                    format!("`{k}` is not an HTTP header name"),
                    "use names like X-Token",
                )
            })?;
            let mut hv = HeaderValue::from_str(v).map_err(|_| {
                NotifyError::config(
                    name,
                    "webhook",
                    format!("the value of header `{k}` holds characters HTTP does not allow"),
                    "header values are one line of visible ASCII",
                )
            })?;
            hv.set_sensitive(true);
            out.headers.insert(hn, hv);
        }
        Ok(out)
    }

    pub(crate) fn hint_for(status: u16) -> Option<&'static str> {
        match status {
            401 | 403 => {
                Some("the receiver refused the credentials: check the authentication headers")
            }
            404 | 405 => Some("check the URL and the method (POST or PUT) the receiver expects"),
            400 | 415 | 422 => {
                Some("the receiver refused the body: check the template against what it expects")
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        awkward_message().with_at("2024-05-01T10:00:00Z".parse().unwrap())
    }

    #[test]
    fn placeholders_are_json_escaped() {
        let t = r#"{"t": "{{title}}", "b": "{{ body }}", "s": "{{severity}}/{{event}}/{{subject}}", "at": "{{at}}", "l": "{{link}}"}"#;
        let out = render_template(t, &msg()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let m = msg();
        assert_eq!(v["t"], m.title.as_str());
        assert_eq!(v["b"], m.body.as_str());
        assert_eq!(v["s"], "critical/down/db \"main\"");
        assert_eq!(v["at"], "2024-05-01T10:00:00Z");
        assert_eq!(v["l"], "https://hub.example/x?a=1&b=\"2\"");
        // the text keeps the template's own layout
        assert!(out.starts_with(r#"{"t": "title with \"quotes\""#), "{out}");
    }

    #[test]
    fn missing_link_is_empty() {
        let mut m = msg();
        m.link = None;
        let out = render_template(r#"{"l": "{{link}}"}"#, &m).unwrap();
        assert_eq!(out, r#"{"l": ""}"#);
    }

    #[test]
    fn bad_templates_are_refused() {
        let m = msg();
        assert_eq!(
            render_template(r#"{"x": "{{titel}}"}"#, &m),
            Err(TemplateError::Unknown("titel".into()))
        );
        assert_eq!(
            render_template(r#"{"x": "{{title"}"#, &m),
            Err(TemplateError::Unclosed(7))
        );
        // a placeholder outside quotes: the awkward title is not a JSON value
        assert!(matches!(
            render_template(r#"{"x": {{title}}}"#, &m),
            Err(TemplateError::NotJson(_))
        ));
        assert!(matches!(
            render_template("not json", &m),
            Err(TemplateError::NotJson(_))
        ));
        let e = TemplateError::Unknown("titel".into()).to_string();
        assert!(
            e.starts_with("unknown placeholder `{{titel}}` (known: title, body"),
            "{e}"
        );
    }

    #[test]
    fn validate_catches_a_template_that_only_works_for_tame_messages() {
        let w = Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            method: WebhookMethod::Post,
            headers: BTreeMap::new(),
            template: Some(r#"{"severity": {{severity}}}"#.into()),
            ca_file: None,
        };
        let e = w.validate("w").unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::Config);
        assert!(e.message.contains("not JSON"), "{e}");
        let ok = Webhook {
            template: Some(r#"{"severity": "{{severity}}"}"#.into()),
            ..w
        };
        ok.validate("w").unwrap();
    }

    #[test]
    fn bad_headers_are_config_errors() {
        let mut headers = BTreeMap::new();
        headers.insert("X Bad".to_string(), "v".to_string());
        let w = Webhook {
            url: "http://127.0.0.1:9/hook".into(),
            method: WebhookMethod::Put,
            headers,
            template: None,
            ca_file: None,
        };
        let e = w.validate("w").unwrap_err();
        assert!(e.message.contains("X Bad"), "{e}");
    }
}
