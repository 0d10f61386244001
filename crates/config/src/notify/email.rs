//! `type = "email"`: SMTP with implicit TLS, STARTTLS or none.

use std::path::Path;

use bulwark_notify::SmtpSecurity;

use super::{ca_file, required, strings, NotifierSettings, Owner};
use crate::{
    fields::secret,
    raw::RawNotifier,
    read::{closest, Ctx},
};

pub(super) fn email(
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
