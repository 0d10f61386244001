//! Checks of single keys that several sections share: names, secrets
//! (`*_file` / `*_env`), hosts, repository references, retention tables,
//! snapshot file names, HTTP URLs and headers, severities and monitor
//! patterns. A leaf: it knows the raw structs and the reader, never the
//! sections that use it.

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::Range,
    path::{Component, Path, PathBuf},
};

use bulwark_notify::{Event, Message, Route, Severity};
use serde_spanned::Spanned;

use crate::{
    raw::{RawRetention, RawStringMap},
    read::{closest, Ctx},
    KeepWithin, Retention, S3Settings, SecretSource,
};

pub(crate) const NAME_HINT: &str = "use only letters, digits, `-` and `_`";

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits `"what is wrong; how to fix it"`.
pub(crate) fn split_hint(m: &str) -> (String, Option<String>) {
    match m.split_once("; ") {
        Some((msg, hint)) => (msg.to_string(), Some(hint.to_string())),
        None => (m.to_string(), None),
    }
}

pub(crate) fn check_host(cx: &mut Ctx<'_>, h: Spanned<String>, key: &str) -> Option<String> {
    let v = h.get_ref();
    if v.is_empty() || v.chars().any(char::is_whitespace) {
        cx.err_at(
            &h,
            format!("`{key}` must be a non-empty name without spaces"),
            "e.g. host = \"nas\", or remove it to use the machine's host name",
        );
        return None;
    }
    Some(h.into_inner())
}

/// A file path for a secret: non-empty; relative paths are taken from the
/// config file's directory.
pub(crate) fn secret_file(
    cx: &mut Ctx<'_>,
    f: &Spanned<String>,
    key: &str,
    base: &Path,
) -> Option<PathBuf> {
    if f.get_ref().trim().is_empty() {
        cx.err_at(
            f,
            format!("`{key}` is empty"),
            "give the path of a file that holds the secret",
        );
        return None;
    }
    Some(base.join(f.get_ref()))
}

/// S3 settings from a region and the `*_file` / `*_env` pairs of the two
/// keys (`[repositories.NAME.s3]` and `[targets.NAME]` share them).
pub(crate) fn s3_settings(
    cx: &mut Ctx<'_>,
    region: Option<&Spanned<String>>,
    [id_file, id_env]: [Option<&Spanned<String>>; 2],
    [key_file, key_env]: [Option<&Spanned<String>>; 2],
    base: &Path,
) -> S3Settings {
    let region = match region {
        Some(r) if r.get_ref().trim().is_empty() => {
            cx.err_at(
                r,
                "`region` is empty",
                "remove it to use us-east-1, or give the region",
            );
            String::new()
        }
        Some(r) => r.get_ref().clone(),
        None => "us-east-1".to_string(),
    };
    let access_key_id = secret(cx, id_file, id_env, "access_key_id", base);
    let secret_access_key = secret(cx, key_file, key_env, "secret_access_key", base);
    S3Settings {
        region,
        access_key_id: access_key_id.ok().flatten(),
        secret_access_key: secret_access_key.ok().flatten(),
    }
}

/// `PREFIX_file` / `PREFIX_env`: at most one; Ok(None) when neither is set,
/// Err(()) when a problem was reported.
pub(crate) fn secret(
    cx: &mut Ctx<'_>,
    file: Option<&Spanned<String>>,
    env: Option<&Spanned<String>>,
    prefix: &str,
    base: &Path,
) -> Result<Option<SecretSource>, ()> {
    match (file, env) {
        (Some(_), Some(e)) => {
            cx.err_at(
                e,
                format!("both `{prefix}_file` and `{prefix}_env` are set"),
                "keep one of them",
            );
            Err(())
        }
        (Some(f), None) => secret_file(cx, f, &format!("{prefix}_file"), base)
            .map(SecretSource::File)
            .map(Some)
            .ok_or(()),
        (None, Some(e)) if !valid_env_name(e.get_ref()) => {
            // never echo the value: people do paste the secret itself here
            cx.err_at(
                e,
                format!("`{prefix}_env` must be the name of an environment variable (letters, digits and `_`)"),
                format!("put the secret in a variable and name it, e.g. {prefix}_env = \"{}\"", prefix.to_uppercase()),
            );
            Err(())
        }
        (None, Some(e)) => Ok(Some(SecretSource::Env(e.get_ref().clone()))),
        (None, None) => Ok(None),
    }
}

/// The repository a job or maintenance names: required, and declared.
pub(crate) fn repository_ref(
    cx: &mut Ctx<'_>,
    r: Option<&Spanned<String>>,
    owner: &str,
    name: &Spanned<String>,
    declared: &BTreeSet<String>,
    clean: bool,
) -> String {
    let Some(r) = r else {
        if clean {
            cx.err_at(
                name,
                format!("{owner} has no `repository`"),
                "add repository = \"NAME\" naming a [repositories.NAME] table",
            );
        }
        return String::new();
    };
    if !declared.contains(r.get_ref()) {
        let known: Vec<&str> = declared.iter().map(String::as_str).collect();
        let hint = match closest(r.get_ref(), &known) {
            _ if known.is_empty() => "declare it in a [repositories.NAME] table".to_string(),
            Some(best) => format!(
                "did you mean `{best}`? (declared repositories: {})",
                known.join(", ")
            ),
            None => format!("declared repositories: {}", known.join(", ")),
        };
        cx.err_at(
            r,
            format!(
                "{owner} uses repository `{}`, which is not declared",
                r.get_ref()
            ),
            hint,
        );
    }
    r.get_ref().clone()
}

/// Where a source of a job writes in the snapshot, for the uniqueness check.
pub(crate) struct Claim {
    /// The `filename` value, or the source's table when the name is a default.
    pub at: Range<usize>,
    /// The path inside the snapshot.
    pub filename: String,
    /// A database source (else a command source).
    pub database: bool,
}

/// A relative path inside the snapshot: no `.`, `..` or empty components.
pub(crate) fn valid_snapshot_filename(f: &str) -> bool {
    !f.is_empty()
        && !f.ends_with('/')
        && !f.contains("//")
        && Path::new(f)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// `fail_on_stderr`: non-empty patterns.
pub(crate) fn stderr_patterns(cx: &mut Ctx<'_>, raw: &[Spanned<String>]) -> Vec<String> {
    raw.iter()
        .filter_map(|p| {
            if p.get_ref().is_empty() {
                cx.err_at(
                    p,
                    "empty pattern in `fail_on_stderr`",
                    "remove it: an empty pattern would match every line",
                );
                return None;
            }
            Some(p.get_ref().clone())
        })
        .collect()
}

/// A retention table; `owner` is "job `x`" or "maintenance `x`", and
/// `default_prune` applies when `prune` is not set.
pub(crate) fn retention(
    cx: &mut Ctx<'_>,
    owner: &str,
    r: Spanned<RawRetention>,
    clean: bool,
    default_prune: bool,
) -> Retention {
    let span = r.span();
    let r = r.into_inner();
    let count = |cx: &mut Ctx<'_>, v: &Option<Spanned<i64>>, key: &str| -> Option<u32> {
        let v = v.as_ref()?;
        match u32::try_from(*v.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            Ok(0) => {
                cx.err_at(
                    v,
                    format!("{key} must be at least 1"),
                    "omit the key instead of setting it to 0",
                );
                None
            }
            _ if *v.get_ref() < 0 => {
                cx.err_at(
                    v,
                    format!("{key} must be at least 1"),
                    "counts can't be negative; omit the key to keep no such snapshots",
                );
                None
            }
            _ => {
                cx.err_at(v, format!("{key} is too large"), "use at most 4294967295");
                None
            }
        }
    };
    let ret = Retention {
        keep_last: count(cx, &r.keep_last, "keep_last"),
        keep_hourly: count(cx, &r.keep_hourly, "keep_hourly"),
        keep_daily: count(cx, &r.keep_daily, "keep_daily"),
        keep_weekly: count(cx, &r.keep_weekly, "keep_weekly"),
        keep_monthly: count(cx, &r.keep_monthly, "keep_monthly"),
        keep_yearly: count(cx, &r.keep_yearly, "keep_yearly"),
        keep_within: r
            .keep_within
            .as_ref()
            .and_then(|w| match w.get_ref().parse::<KeepWithin>() {
                Ok(k) => Some(k),
                Err(m) => {
                    let (msg, hint) = split_hint(&m);
                    cx.err(w.span(), format!("bad keep_within: {msg}"), hint);
                    None
                }
            }),
        prune: r.prune.unwrap_or(default_prune),
    };
    let any_set = [
        r.keep_last,
        r.keep_hourly,
        r.keep_daily,
        r.keep_weekly,
        r.keep_monthly,
        r.keep_yearly,
    ]
    .iter()
    .any(Option::is_some)
        || r.keep_within.is_some();
    if clean && !any_set {
        cx.err(
            span,
            format!("the retention of {owner} keeps nothing"),
            Some("add keep_daily = 7 (or another keep_* rule), or remove the table".into()),
        );
    }
    ret
}

// ---------------------------------------------------------------- monitoring

/// Header names whose values are credentials: they may only come from
/// `header_files` / `header_envs`.
pub(crate) fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
        "api_key",
        "-key",
        "auth",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// `headers`, `header_files` and `header_envs` of an http monitor or a
/// webhook: plain headers (none of them a credential), secret headers, each
/// header name once.
pub(crate) fn headers(
    cx: &mut Ctx<'_>,
    plain: Option<&Spanned<RawStringMap>>,
    files: Option<&Spanned<RawStringMap>>,
    envs: Option<&Spanned<RawStringMap>>,
    base: &Path,
) -> (BTreeMap<String, String>, BTreeMap<String, SecretSource>) {
    let mut seen: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut twice = |cx: &mut Ctx<'_>, k: &Spanned<String>, key: &'static str| -> bool {
        let lower = k.get_ref().to_ascii_lowercase();
        if let Some(first) = seen.get(&lower) {
            cx.err_at(
                k,
                format!("header `{}` is set twice (also in `{first}`)", k.get_ref()),
                "keep one of them",
            );
            return true;
        }
        seen.insert(lower, key);
        false
    };
    let mut out = BTreeMap::new();
    for (k, v) in plain.map(|p| p.get_ref().iter()).into_iter().flatten() {
        if twice(cx, k, "headers") {
            continue;
        }
        if secret_header(k.get_ref()) {
            // never echo the value
            cx.err_at(
                k,
                format!("the value of header `{}` is a credential, and secrets are never written in bulwark.toml", k.get_ref()),
                format!(
                    "put the whole value (e.g. `Bearer …`) in a file (mode 0600) and set header_files = {{ \"{0}\" = \"/etc/bulwark/{1}.header\" }}, or name an environment variable with header_envs = {{ \"{0}\" = \"VARIABLE\" }}",
                    k.get_ref(),
                    k.get_ref().to_ascii_lowercase()
                ),
            );
            continue;
        }
        out.insert(k.get_ref().clone(), v.get_ref().clone());
    }
    let mut secrets = BTreeMap::new();
    for (k, v) in files.map(|p| p.get_ref().iter()).into_iter().flatten() {
        if !twice(cx, k, "header_files") {
            if let Some(p) = secret_file(cx, v, "header_files", base) {
                secrets.insert(k.get_ref().clone(), SecretSource::File(p));
            }
        }
    }
    for (k, v) in envs.map(|p| p.get_ref().iter()).into_iter().flatten() {
        if twice(cx, k, "header_envs") {
            continue;
        }
        if valid_env_name(v.get_ref()) {
            secrets.insert(k.get_ref().clone(), SecretSource::Env(v.get_ref().clone()));
        } else {
            cx.err_at(
                v,
                "a value in `header_envs` must be the name of an environment variable (letters, digits and `_`)",
                format!(
                    "put the header value in a variable and name it, e.g. header_envs = {{ \"{}\" = \"APP_AUTH\" }}",
                    k.get_ref()
                ),
            );
        }
    }
    (out, secrets)
}

/// The `http://` / `https://` URL of a monitor, connectivity canary or
/// notifier: the right scheme, a host, no `user:password@` (never echoed).
pub(crate) fn http_url(
    cx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    example: &str,
    credentials_hint: &str,
) -> bool {
    let url = v.get_ref().trim();
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        cx.err_at(
            v,
            format!("`{key}` must start with http:// or https://"),
            format!("e.g. {key} = \"{example}\""),
        );
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        cx.err_at(
            v,
            format!("`{key}` must not contain a user name or password"),
            credentials_hint.to_string(),
        );
        return false;
    }
    if authority.is_empty() || authority.starts_with(':') {
        cx.err_at(
            v,
            format!("`{key}` has no host"),
            format!("e.g. {key} = \"{example}\""),
        );
        return false;
    }
    true
}

/// Monitor names or globs (`monitors` in routes and silences): valid globs,
/// and a name without wildcards must be a declared monitor. Empty list:
/// reported; `what` is "route" or "silence".
pub(crate) fn monitor_patterns(
    cx: &mut Ctx<'_>,
    list: &Spanned<Vec<Spanned<String>>>,
    what: &str,
    monitors: &BTreeSet<String>,
) -> Vec<String> {
    if list.get_ref().is_empty() {
        cx.err_at(
            list,
            "`monitors` is empty",
            format!("remove it to make the {what} apply to every monitor, or list monitor names or globs, e.g. monitors = [\"web-*\"]"),
        );
        return Vec::new();
    }
    let known: Vec<&str> = monitors.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for p in list.get_ref() {
        let v = p.get_ref();
        if let Err(e) = glob_route(std::slice::from_ref(v)).validate() {
            cx.err_at(
                p,
                format!("`{v}` is not a valid pattern: {}", e.reason),
                "use monitor names or globs: `*`, `?`, `[abc]`, `{a,b}`",
            );
        } else if !v.contains(['*', '?', '[', ']', '{', '}']) && !monitors.contains(v) {
            let hint = match closest(v, &known) {
                Some(best) => format!("did you mean `{best}`? (a name without `*` must be a declared [monitors.NAME])"),
                None if known.is_empty() => "no monitors are declared; declare one with [monitors.NAME]".to_string(),
                None => format!("declared monitors: {}; or use a glob such as \"{v}*\"", known.join(", ")),
            };
            cx.err_at(
                p,
                format!("the {what} names monitor `{v}`, which is not declared"),
                hint,
            );
        }
        out.push(v.clone());
    }
    out
}

/// `severity` / `min_severity`: `info`, `warning` or `critical`.
pub(crate) fn severity(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<Severity> {
    match v.get_ref().as_str() {
        "info" => Some(Severity::Info),
        "warning" => Some(Severity::Warning),
        "critical" => Some(Severity::Critical),
        other => {
            let hint = match closest(
                &other.to_ascii_lowercase(),
                &["info", "warning", "critical"],
            ) {
                Some(best) => format!(
                    "did you mean `{best}`? ({key} = \"info\", \"warning\" or \"critical\")"
                ),
                None => format!("use {key} = \"info\", \"warning\" or \"critical\""),
            };
            cx.err_at(v, format!("`{other}` is not a severity"), hint);
            None
        }
    }
}

/// A route that matches `patterns` (used to match monitor names with the
/// same glob rules as routes).
pub(crate) fn glob_route(patterns: &[String]) -> Route {
    Route {
        notifiers: Vec::new(),
        subjects: patterns.to_vec(),
        min_severity: Severity::Info,
    }
}

pub(crate) fn subject(name: &str) -> Message {
    Message::new(Event::Alert, Severity::Critical, name, "", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_headers() {
        for h in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "X-Api-Key",
            "X-Auth-Token",
            "X-Gotify-Key",
            "Private-Token",
        ] {
            assert!(secret_header(h), "{h}");
        }
        for h in ["Accept", "User-Agent", "Content-Type", "X-Source", "Host"] {
            assert!(!secret_header(h), "{h}");
        }
    }
}
