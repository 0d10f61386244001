//! `[targets.NAME]`: where the hub replicates its repositories to.
//!
//! ```toml
//! [targets.cloud]
//! url = "s3:https://s3.eu-central-1.wasabisys.com/my-bucket/bulwark"
//! medium = "cloud"             # disk | cloud | peer | removable
//! offsite = true
//! access_key_id_file = "/etc/bulwark/wasabi.id"
//! secret_access_key_file = "/etc/bulwark/wasabi.secret"
//! ```
//!
//! Targets belong to the hub: agents never receive them.

use std::{
    collections::BTreeSet,
    path::{Component, Path, PathBuf},
    time::Duration,
};

use serde_spanned::Spanned;

use crate::{
    fields::{s3_settings, secret, split_hint, valid_name, NAME_HINT},
    hub::parse_size,
    multihost::{self, ScheduleKeys},
    raw::RawSize,
    raw::RawTarget,
    read::{closest, Ctx, Entry},
    JobSchedule, Medium, RepoUrl, Target, TargetRestAuth,
};

/// `schedule` when not set.
const DEFAULT_SCHEDULE: &str = "hourly";
/// `verify` when not set.
const DEFAULT_VERIFY: &str = "weekly";
/// `parallel` when not set.
const DEFAULT_PARALLEL: u32 = 4;
/// `verify_sample` when not set, in percent.
const DEFAULT_VERIFY_SAMPLE: f64 = 5.0;
/// `quarantine` when not set.
const DEFAULT_QUARANTINE: Duration = Duration::from_secs(7 * 86_400);
/// `after_upload` when not set.
const DEFAULT_AFTER_UPLOAD: Duration = Duration::from_secs(60);
/// `delete_cap` when not set, in percent.
const DEFAULT_DELETE_CAP: f64 = 5.0;

const MEDIUM_HINT: &str = "medium = \"disk\", \"cloud\", \"peer\" or \"removable\"";
const S3_EXAMPLE: &str = "s3:https://s3.eu-central-1.wasabisys.com/my-bucket/bulwark";
const REST_EXAMPLE: &str = "rest:https://friend.example.net:8000/alice";

impl Medium {
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// How to name a url's kind in messages.
fn url_kind(url: &RepoUrl) -> &'static str {
    match url {
        RepoUrl::Local(_) => "a local path",
        RepoUrl::Rest(_) => "a rest: url",
        RepoUrl::S3 { .. } => "an s3: url",
    }
}

/// `p` without `.` components and with `..` applied (no file system access).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A hub repository path: segments of `[A-Za-z0-9._-]` separated by `/`,
/// none empty, `.` or `..`.
fn valid_repo_path(s: &str) -> bool {
    s.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    })
}

/// `N%` with 0 < N ≤ 100.
fn percent(cx: &mut Ctx<'_>, v: &Spanned<String>, key: &str, example: &str) -> Option<f64> {
    let n = v
        .get_ref()
        .trim()
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite());
    match n {
        Some(n) if n > 0.0 && n <= 100.0 => Some(n),
        Some(_) => {
            cx.err_at(
                v,
                format!("`{key}` must be more than 0% and at most 100%"),
                format!("e.g. {key} = \"{example}\""),
            );
            None
        }
        None => {
            cx.err_at(
                v,
                format!("`{}` is not a percentage", v.get_ref()),
                format!("write a number followed by `%`, e.g. {key} = \"{example}\""),
            );
            None
        }
    }
}

/// A schedule key of a target (`schedule` or `verify`), or its default.
fn schedule(
    cx: &mut Ctx<'_>,
    v: Option<&Spanned<String>>,
    key: &str,
    default: &str,
) -> Option<JobSchedule> {
    let default = Spanned::new(0..0, default.to_string());
    let before = cx.diags.len();
    let keys = ScheduleKeys {
        schedule: Some(v.unwrap_or(&default)),
        randomized_delay: None,
        persistent: None,
        late_after: None,
    };
    let s = multihost::schedule(cx, keys);
    if key != "schedule" {
        for d in &mut cx.diags[before..] {
            d.message = d
                .message
                .replacen("bad schedule:", &format!("bad `{key}` schedule:"), 1)
                .replacen("the schedule ", &format!("the `{key}` schedule "), 1);
            d.hint = d
                .hint
                .as_ref()
                .map(|h| h.replace("schedule = \"", &format!("{key} = \"")));
        }
    }
    s
}

/// Where an s3: or rest: only key is set on another kind of url.
fn only_for(
    cx: &mut Ctx<'_>,
    v: Option<&Spanned<String>>,
    key: &str,
    tname: &str,
    url: &RepoUrl,
    s3: bool,
) {
    let Some(v) = v else { return };
    let (kind, example) = if s3 {
        ("an s3:", S3_EXAMPLE)
    } else {
        ("a rest:", REST_EXAMPLE)
    };
    cx.err_at(
        v,
        format!(
            "`{key}` only applies to {kind} url, and the url of target `{tname}` is {}",
            url_kind(url)
        ),
        format!("remove it, or change the url, e.g. url = \"{example}\""),
    );
}

/// `[targets.NAME]`, all of them. `hub_data` is the hub's data directory
/// (absolute), when `[hub] data` is set.
pub(crate) fn targets(
    cx: &mut Ctx<'_>,
    mut entries: Vec<Entry<RawTarget>>,
    hub_data: Option<&Path>,
    base: &Path,
) -> std::collections::BTreeMap<String, Target> {
    entries.sort_by_key(|e| e.name.span().start);
    let mut urls: Vec<(RepoUrl, String)> = Vec::new(); // normalized url -> first target
    let mut out = std::collections::BTreeMap::new();
    for entry in entries {
        let before = cx.diags.len();
        let clean = entry.clean;
        let name = entry.name.get_ref().clone();
        let url = entry
            .raw
            .as_ref()
            .and_then(|r| r.url.as_ref())
            .map(Spanned::span);
        let (t, parsed) = target(cx, entry, hub_data, base);
        // the same place twice (reported at the later one)
        if let (Some(parsed), Some(u)) = (parsed, url) {
            let key = match parsed {
                RepoUrl::Local(p) => RepoUrl::Local(normalize(&p)),
                other => other,
            };
            if let Some((_, first)) = urls.iter().find(|(k, _)| *k == key) {
                cx.err(
                    u,
                    format!("target `{name}` has the same url as target `{first}`"),
                    Some("each target is a separate copy: give this one another url, or remove one of them".into()),
                );
            } else {
                urls.push((key, name.clone()));
            }
        }
        if let Some(t) = t.filter(|_| cx.diags.len() == before && clean) {
            out.insert(name, t);
        }
    }
    out
}

/// The target, and its url if that parsed (even when other keys are bad).
fn target(
    cx: &mut Ctx<'_>,
    entry: Entry<RawTarget>,
    hub_data: Option<&Path>,
    base: &Path,
) -> (Option<Target>, Option<RepoUrl>) {
    let Entry { name, raw, clean } = entry;
    let before = cx.diags.len();
    let tname = name.get_ref().clone();
    if !valid_name(&tname) {
        cx.err_at(
            &name,
            format!("`{tname}` is not a valid target name"),
            NAME_HINT,
        );
    }
    let Some(r) = raw else { return (None, None) };

    let url = match &r.url {
        None => {
            if clean {
                cx.err_at(
                    &name,
                    format!("target `{tname}` has no `url`"),
                    format!(
                        "add url = \"/mnt/usb/bulwark\", \"{REST_EXAMPLE}\" or \"{S3_EXAMPLE}\""
                    ),
                );
            }
            None
        }
        Some(u) => match RepoUrl::parse(u.get_ref(), base) {
            Ok(url) => Some(url),
            Err(m) => {
                let (msg, hint) = split_hint(&m);
                cx.err(u.span(), format!("bad url: {msg}"), hint);
                None
            }
        },
    };
    if let (Some(RepoUrl::Local(p)), Some(data), Some(u)) = (&url, hub_data, &r.url) {
        let (p, data) = (normalize(p), normalize(data));
        let relation = if p == data {
            Some("is the hub's data directory")
        } else if p.starts_with(&data) {
            Some("is inside the hub's data directory")
        } else if data.starts_with(&p) {
            Some("contains the hub's data directory")
        } else {
            None
        };
        if let Some(relation) = relation {
            cx.err_at(
                u,
                format!("the url of target `{tname}` {relation} (`[hub] data`)"),
                "the hub would copy its repositories onto themselves; give a directory outside it, on another disk, e.g. url = \"/mnt/usb/bulwark\"",
            );
        }
    }

    let medium = match &r.medium {
        None => {
            if clean {
                cx.err_at(
                    &name,
                    format!("target `{tname}` has no `medium`"),
                    format!("add {MEDIUM_HINT}: the 3-2-1 rule wants copies on at least two different media"),
                );
            }
            None
        }
        Some(m) => match Medium::parse(m.get_ref()) {
            Some(medium) => Some(medium),
            None => {
                let names: Vec<&str> = Medium::ALL.iter().map(|m| m.as_str()).collect();
                let hint = match closest(m.get_ref(), &names) {
                    Some(best) => format!("did you mean `{best}`? ({MEDIUM_HINT})"),
                    None => format!("use {MEDIUM_HINT}"),
                };
                cx.err_at(m, format!("`{}` is not a medium", m.get_ref()), hint);
                None
            }
        },
    };
    let offsite = match &r.offsite {
        None => {
            if clean {
                cx.err_at(
                    &name,
                    format!("target `{tname}` does not say whether it is offsite"),
                    "add offsite = true for copies outside this building, or offsite = false (3-2-1: three copies, on two media, one of them offsite)",
                );
            }
            None
        }
        Some(o) => Some(*o.get_ref()),
    };

    // s3: settings
    let s3_keys = [
        (r.region.as_ref(), "region"),
        (r.access_key_id_file.as_ref(), "access_key_id_file"),
        (r.access_key_id_env.as_ref(), "access_key_id_env"),
        (r.secret_access_key_file.as_ref(), "secret_access_key_file"),
        (r.secret_access_key_env.as_ref(), "secret_access_key_env"),
    ];
    let rest_keys = [
        (r.username.as_ref(), "username"),
        (r.password_file.as_ref(), "password_file"),
        (r.password_env.as_ref(), "password_env"),
    ];
    let s3 = match &url {
        Some(RepoUrl::S3 { .. }) => Some(s3_settings(
            cx,
            r.region.as_ref(),
            [r.access_key_id_file.as_ref(), r.access_key_id_env.as_ref()],
            [
                r.secret_access_key_file.as_ref(),
                r.secret_access_key_env.as_ref(),
            ],
            base,
        )),
        Some(u) => {
            for (v, key) in s3_keys {
                only_for(cx, v, key, &tname, u, true);
            }
            None
        }
        None => None,
    };
    let rest = match &url {
        Some(RepoUrl::Rest(_)) => {
            let username = match &r.username {
                Some(u) if u.get_ref().trim().is_empty() => {
                    cx.err_at(
                        u,
                        "`username` is empty",
                        "give the HTTP user name, or remove it",
                    );
                    None
                }
                Some(u) => Some(u.get_ref().clone()),
                None => None,
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
            if r.username.is_none() {
                if let Some(p) = r.password_file.as_ref().or(r.password_env.as_ref()) {
                    cx.err_at(
                        p,
                        format!("target `{tname}` has a password but no `username`"),
                        "HTTP basic auth needs both: add username = \"…\", or remove the password",
                    );
                }
            }
            Some(TargetRestAuth { username, password })
        }
        Some(u) => {
            for (v, key) in rest_keys {
                only_for(cx, v, key, &tname, u, false);
            }
            None
        }
        None => None,
    };

    // which repositories
    let mut repositories = Vec::new();
    if let Some(list) = &r.repositories {
        if list.get_ref().is_empty() {
            cx.err_at(
                list,
                "`repositories` is empty",
                "remove it to copy every repository of the hub, or list repository paths, e.g. repositories = [\"nas/main\"]",
            );
        }
        let mut seen = BTreeSet::new();
        for p in list.get_ref() {
            let v = p.get_ref();
            if v != "*" && !valid_repo_path(v) {
                cx.err_at(
                    p,
                    format!("`{v}` is not a repository path"),
                    "use the hub repository's path: parts of letters, digits, `-`, `_` and `.` separated by `/`, no `..`, e.g. \"nas/main\"; or \"*\" for all",
                );
            } else if !seen.insert(v.as_str()) {
                cx.err_at(
                    p,
                    format!("`{v}` is listed twice in `repositories`"),
                    "remove one",
                );
            } else if v == "*" && list.get_ref().len() > 1 {
                cx.err_at(
                    p,
                    "`*` already means every repository",
                    "remove the other entries, or the `*`",
                );
            }
            repositories.push(v.clone());
        }
        if repositories == ["*"] {
            repositories.clear();
        }
    }

    let when = schedule(cx, r.schedule.as_ref(), "schedule", DEFAULT_SCHEDULE);
    let verify = schedule(cx, r.verify.as_ref(), "verify", DEFAULT_VERIFY);
    let bandwidth = r.bandwidth.as_ref().and_then(|v| {
        let parsed = match v.get_ref() {
            RawSize::Bytes(n) => u64::try_from(*n).ok(),
            RawSize::Text(t) => parse_size(t),
        };
        match parsed {
            Some(0) => {
                cx.err_at(v, "`bandwidth` must not be zero: nothing would ever be copied", "remove it for no limit, or e.g. bandwidth = \"20 MiB\"");
                None
            }
            Some(n) => Some(n),
            None => {
                cx.err_at(
                    v,
                    "`bandwidth` is not a size",
                    "bytes per second, e.g. bandwidth = \"20 MiB\" (units: B, KB, MB, GB, KiB, MiB, GiB) or a number of bytes",
                );
                None
            }
        }
    });
    let parallel = match &r.parallel {
        None => Some(DEFAULT_PARALLEL),
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if (1..=64).contains(&n) => Some(n),
            _ => {
                cx.err_at(
                    v,
                    "`parallel` must be between 1 and 64",
                    "the number of files copied at the same time, e.g. parallel = 4",
                );
                None
            }
        },
    };
    let verify_sample = r
        .verify_sample
        .as_ref()
        .map_or(Some(DEFAULT_VERIFY_SAMPLE), |v| {
            percent(cx, v, "verify_sample", "5%")
        });

    let propagate_deletes = r.propagate_deletes.as_ref().is_some_and(|p| *p.get_ref());
    if !propagate_deletes && (clean || r.propagate_deletes.is_some()) {
        for (v, key) in [
            (r.quarantine.as_ref(), "quarantine"),
            (r.delete_cap.as_ref(), "delete_cap"),
        ] {
            if let Some(v) = v {
                cx.err_at(
                    v,
                    format!("`{key}` only applies with propagate_deletes = true"),
                    "add propagate_deletes = true to delete at the target what was pruned at the source, or remove it (without it the target never deletes)",
                );
            }
        }
    }
    let quarantine = r.quarantine.as_ref().map_or(Some(DEFAULT_QUARANTINE), |q| {
        multihost::duration(cx, q, "quarantine", "7d")
    });
    let delete_cap = r.delete_cap.as_ref().map_or(Some(DEFAULT_DELETE_CAP), |d| {
        percent(cx, d, "delete_cap", "5%")
    });
    let after_upload = match &r.after_upload {
        None => Some(Some(DEFAULT_AFTER_UPLOAD)),
        Some(v) if v.get_ref().trim().eq_ignore_ascii_case("off") => Some(None),
        Some(v) => multihost::duration(cx, v, "after_upload", "1m").map(Some),
    };

    if cx.diags.len() > before || !clean {
        return (None, url);
    }
    let (Some(u), Some(medium), Some(offsite), Some(schedule), Some(parallel), Some(verify)) =
        (url.clone(), medium, offsite, when, parallel, verify)
    else {
        return (None, url);
    };
    let (
        Some(verify_sample_percent),
        Some(quarantine),
        Some(delete_cap_percent),
        Some(after_upload),
    ) = (verify_sample, quarantine, delete_cap, after_upload)
    else {
        return (None, url);
    };
    let t = Target {
        name: tname,
        url: u,
        medium,
        offsite,
        s3,
        rest,
        repositories,
        schedule,
        bandwidth,
        parallel,
        verify,
        verify_sample_percent,
        propagate_deletes,
        quarantine,
        delete_cap_percent,
        after_upload,
    };
    (Some(t), url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths() {
        for ok in ["nas", "nas/main", "alice/laptop.v2", "a/b/c", "x_y-z"] {
            assert!(valid_repo_path(ok), "{ok}");
        }
        for bad in [
            "",
            "/nas",
            "nas/",
            "nas//main",
            "../x",
            "a/../b",
            ".",
            "a b",
            "nas/*",
        ] {
            assert!(!valid_repo_path(bad), "{bad}");
        }
    }

    #[test]
    fn normalizing() {
        assert_eq!(
            normalize(Path::new("/srv/./bulwark/")),
            PathBuf::from("/srv/bulwark")
        );
        assert_eq!(
            normalize(Path::new("/srv/x/../bulwark")),
            PathBuf::from("/srv/bulwark")
        );
    }
}
