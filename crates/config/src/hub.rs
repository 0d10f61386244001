//! The `[hub]` section: settings of `bulwark hub` (the repository server).
//!
//! ```toml
//! [hub]
//! listen = ":8000"
//! data = "/srv/bulwark"
//! htpasswd = "/etc/bulwark/htpasswd"
//! append_only = false
//! private_repos = true
//! tls_cert = "/etc/bulwark/cert.pem"
//! tls_key = "/etc/bulwark/key.pem"
//! max_size = "2 TiB"
//! scrub_interval = "7d"
//!
//! [[hub.acl]]
//! user = "laptop"
//! repo = "alice/laptop"
//! access = "append"
//!
//! [hub.quota]
//! "alice/laptop" = "100 GiB"
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_spanned::Spanned;

use crate::{
    raw::{RawHub, RawSize},
    read::Ctx,
};

/// What an ACL entry grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubAccess {
    /// Read and list files.
    Read,
    /// Also create files; delete only locks.
    Append,
    /// Everything.
    Modify,
}

/// One `[[hub.acl]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubAcl {
    /// User name or `*`.
    pub user: String,
    /// Repository path (`alice/laptop`), first segment (`alice`), `alice/*` or `*`.
    pub repo: String,
    /// The level granted.
    pub access: HubAccess,
}

/// The `[hub]` section, validated. Unset keys are `None`/empty: the hub's
/// own defaults apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hub {
    /// `listen`: `HOST:PORT` or `:PORT`.
    pub listen: Option<String>,
    /// `data`: the data directory (relative to the config file's directory).
    pub data: Option<PathBuf>,
    /// `htpasswd`: the htpasswd file.
    pub htpasswd: Option<PathBuf>,
    /// `append_only`.
    pub append_only: bool,
    /// `private_repos` (default true: users only see `/<user>/...`).
    pub private_repos: bool,
    /// `no_auth`.
    pub no_auth: bool,
    /// `tls_cert` (always set together with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// `tls_key`.
    pub tls_key: Option<PathBuf>,
    /// `max_size` in bytes.
    pub max_size: Option<u64>,
    /// `max_file_size` in bytes.
    pub max_file_size: Option<u64>,
    /// `scrub_interval` (zero: disabled).
    pub scrub_interval: Option<Duration>,
    /// `[[hub.acl]]` entries.
    pub acl: Vec<HubAcl>,
    /// `[hub.quota]`: repository path → bytes.
    pub quota: BTreeMap<String, u64>,
    /// `metrics_users`: users who may read /metrics.
    pub metrics_users: Vec<String>,
    /// `metrics_token_file`: a file holding a bearer token for /metrics.
    pub metrics_token_file: Option<PathBuf>,
    /// `max_connections`: connections served at once (more get a 503).
    pub max_connections: Option<u32>,
    /// `run_history`: how long run history is kept (zero: forever).
    pub run_history: Option<Duration>,
}

/// Parses `"10 GiB"`, `"512M"`, `"1000"`, `"1.5 TB"` into bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (s[..split].trim(), s[split..].trim());
    if num.is_empty() {
        return None;
    }
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "m" | "mb" => 1000u64.pow(2),
        "g" | "gb" => 1000u64.pow(3),
        "t" | "tb" => 1000u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return None,
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult);
    }
    let f: f64 = num.parse().ok()?;
    // Sizes are far below 2^53; the cast saturates for absurd values.
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let bytes = (f * mult as f64) as u64;
    (f.is_finite() && f >= 0.0).then_some(bytes)
}

fn size(cx: &mut Ctx<'_>, v: &Spanned<RawSize>, key: &str) -> Option<u64> {
    let parsed = match v.get_ref() {
        RawSize::Bytes(n) => u64::try_from(*n).ok(),
        RawSize::Text(t) => parse_size(t),
    };
    if parsed.is_none() {
        cx.err_at(v, format!("`{key}` is not a size"), format!("e.g. {key} = \"10 GiB\" (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB) or a number of bytes"));
    }
    parsed
}

fn path(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str, base: &Path) -> Option<PathBuf> {
    if v.get_ref().trim().is_empty() {
        cx.err_at(
            v,
            format!("`hub.{key}` is empty"),
            "give a file or directory path",
        );
        return None;
    }
    Some(base.join(v.get_ref()))
}

/// A repository path of one or two segments of `[A-Za-z0-9._-]`, none starting with '.'.
fn valid_repo_path(s: &str) -> bool {
    let segs: Vec<&str> = s.split('/').collect();
    (1..=2).contains(&segs.len())
        && segs.iter().all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
}

fn valid_acl_repo(s: &str) -> bool {
    s == "*"
        || valid_repo_path(s)
        || s.strip_suffix("/*")
            .is_some_and(|p| valid_repo_path(p) && !p.contains('/'))
}

pub(crate) fn validate(cx: &mut Ctx<'_>, raw: RawHub, base: &Path) -> Option<Hub> {
    let before = cx.diags.len();
    let mut hub = Hub {
        append_only: raw.append_only,
        private_repos: raw.private_repos,
        no_auth: raw.no_auth,
        metrics_users: raw.metrics_users,
        ..Hub::default()
    };
    if let Some(l) = &raw.listen {
        let ok = l
            .get_ref()
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
        if ok {
            hub.listen = Some(l.get_ref().clone());
        } else {
            cx.err_at(
                l,
                "`hub.listen` must be HOST:PORT or :PORT",
                "e.g. listen = \":8000\" or listen = \"127.0.0.1:8000\"",
            );
        }
    }
    hub.data = raw.data.as_ref().and_then(|d| path(cx, d, "data", base));
    hub.htpasswd = raw
        .htpasswd
        .as_ref()
        .and_then(|d| path(cx, d, "htpasswd", base));
    hub.metrics_token_file = raw
        .metrics_token_file
        .as_ref()
        .and_then(|d| path(cx, d, "metrics_token_file", base));
    match (&raw.tls_cert, &raw.tls_key) {
        (Some(c), Some(k)) => {
            hub.tls_cert = path(cx, c, "tls_cert", base);
            hub.tls_key = path(cx, k, "tls_key", base);
        }
        (Some(c), None) => cx.err_at(
            c,
            "`hub.tls_cert` without `hub.tls_key`",
            "set both, or neither for plain HTTP",
        ),
        (None, Some(k)) => cx.err_at(
            k,
            "`hub.tls_key` without `hub.tls_cert`",
            "set both, or neither for plain HTTP",
        ),
        (None, None) => {}
    }
    hub.max_size = raw.max_size.as_ref().and_then(|v| size(cx, v, "max_size"));
    hub.max_file_size = raw
        .max_file_size
        .as_ref()
        .and_then(|v| size(cx, v, "max_file_size"));
    if let Some(s) = &raw.scrub_interval {
        let t = s.get_ref().trim();
        if t == "0" || t.eq_ignore_ascii_case("off") {
            hub.scrub_interval = Some(Duration::ZERO);
        } else {
            match humantime::parse_duration(t) {
                Ok(d) => hub.scrub_interval = Some(d),
                Err(_) => cx.err_at(
                    s,
                    "`hub.scrub_interval` is not a duration",
                    "e.g. scrub_interval = \"7d\", or \"off\"",
                ),
            }
        }
    }
    if let Some(n) = &raw.max_connections {
        match u32::try_from(*n.get_ref()) {
            Ok(v) if v >= 1 => hub.max_connections = Some(v),
            _ => cx.err_at(
                n,
                "`hub.max_connections` must be a whole number from 1",
                "e.g. max_connections = 512",
            ),
        }
    }
    if let Some(s) = &raw.run_history {
        let t = s.get_ref().trim();
        if t == "0" || t.eq_ignore_ascii_case("forever") {
            hub.run_history = Some(Duration::ZERO);
        } else {
            match humantime::parse_duration(t) {
                Ok(d) if !d.is_zero() => hub.run_history = Some(d),
                _ => cx.err_at(
                    s,
                    "`hub.run_history` is not a duration",
                    "e.g. run_history = \"90d\", or \"forever\" to keep every run",
                ),
            }
        }
    }
    for (repo, v) in &raw.quota {
        if !valid_repo_path(repo) {
            cx.err_at(v, format!("`hub.quota` names an invalid repository path {repo:?}"), "one or two segments of letters, digits, '.', '-' and '_', e.g. \"alice/laptop\" = \"100 GiB\"");
            continue;
        }
        if let Some(n) = size(cx, v, &format!("hub.quota.\"{repo}\"")) {
            hub.quota.insert(repo.clone(), n);
        }
    }
    for e in raw.acl {
        let span = e.span();
        let e = e.into_inner();
        let (Some(user), Some(repo), Some(access)) = (e.user, e.repo, e.access) else {
            cx.err(
                span,
                "a `[[hub.acl]]` entry needs `user`, `repo` and `access`",
                Some("e.g. user = \"laptop\", repo = \"alice/laptop\", access = \"append\"".into()),
            );
            continue;
        };
        let access_v = match access.get_ref().as_str() {
            "read" => Some(HubAccess::Read),
            "append" => Some(HubAccess::Append),
            "modify" => Some(HubAccess::Modify),
            _ => {
                cx.err_at(
                    &access,
                    "`access` must be \"read\", \"append\" or \"modify\"",
                    "append: create files, delete only locks; modify: everything",
                );
                None
            }
        };
        if user.get_ref().is_empty() || user.get_ref().contains(':') {
            cx.err_at(
                &user,
                "`user` must be a user name of the htpasswd file, or \"*\"",
                "e.g. user = \"alice\"",
            );
            continue;
        }
        if !valid_acl_repo(repo.get_ref()) {
            cx.err_at(
                &repo,
                "`repo` must be a repository path, a first segment, \"PREFIX/*\" or \"*\"",
                "e.g. repo = \"alice/laptop\", repo = \"alice\" or repo = \"*\"",
            );
            continue;
        }
        if let Some(access) = access_v {
            hub.acl.push(HubAcl {
                user: user.into_inner(),
                repo: repo.into_inner(),
                access,
            });
        }
    }
    (cx.diags.len() == before).then_some(hub)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10 GiB"), Some(10 << 30));
        assert_eq!(parse_size("512M"), Some(512_000_000));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1.5 KiB"), Some(1536));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("10 parsecs"), None);
        assert_eq!(parse_size(""), None);
    }
}
