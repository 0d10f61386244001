//! The sections for many hosts in one file: `[hosts.NAME]`, `[agent]`,
//! `[maintenance.NAME]`, `[pings.NAME]`, and the schedule keys that jobs,
//! maintenance and pings share.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use bulwark_schedule::{Calendar, Schedule, ScheduleError};
use serde_spanned::Spanned;

use crate::{
    fields::{check_host, repository_ref, retention, split_hint, valid_name, NAME_HINT},
    raw::{RawAgent, RawHost, RawJob, RawMaintenance, RawPing},
    read::{closest, Ctx, Entry},
    AgentSettings, HostDecl, JobSchedule, Maintenance, Ping,
};

/// `late_after` when not set.
pub(crate) const DEFAULT_LATE_AFTER: Duration = Duration::from_secs(3600);
/// A ping's `grace` when not set.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// A path key: non-empty; relative paths are taken from the config file's
/// directory.
fn path(
    cx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    what: &str,
    base: &Path,
) -> Option<PathBuf> {
    if v.get_ref().trim().is_empty() {
        cx.err_at(
            v,
            format!("`{key}` is empty"),
            format!("give the path of {what}, or remove the key"),
        );
        return None;
    }
    Some(base.join(v.get_ref()))
}

/// A duration key (`90s`, `30m`, `1h 30m`).
pub(crate) fn duration(
    cx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    example: &str,
) -> Option<Duration> {
    match humantime::parse_duration(v.get_ref().trim()) {
        Ok(d) => Some(d),
        Err(_) => {
            cx.err_at(
                v,
                format!("`{}` is not a duration", v.get_ref()),
                format!(
                    "e.g. {key} = \"{example}\" (units: s, m, h, d; combine them as \"1h 30m\")"
                ),
            );
            None
        }
    }
}

/// A duration key that must not be zero.
pub(crate) fn positive(
    cx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    example: &str,
    why: &str,
) -> Option<Duration> {
    let d = duration(cx, v, key, example)?;
    if d.is_zero() {
        cx.err_at(
            v,
            format!("`{key}` must not be zero: {why}"),
            format!("e.g. {key} = \"{example}\""),
        );
        return None;
    }
    Some(d)
}

/// `[hosts.NAME]`.
pub(crate) fn host(cx: &mut Ctx<'_>, entry: Entry<RawHost>, base: &Path) -> Option<HostDecl> {
    let Entry { name, raw, clean } = entry;
    let before = cx.diags.len();
    if !valid_name(name.get_ref()) {
        cx.err_at(
            &name,
            format!("`{}` is not a valid host name", name.get_ref()),
            NAME_HINT,
        );
    }
    let raw = raw?;
    let token_file = raw.token_file.as_ref().and_then(|t| {
        path(
            cx,
            t,
            "token_file",
            "the file that holds this host's hub token",
            base,
        )
    });
    (cx.diags.len() == before && clean).then(|| HostDecl {
        name: name.into_inner(),
        token_file,
    })
}

/// Checks `agent.hub_url`: `http(s)://host[:port][/path]`, without user
/// info, query or fragment. Never echoes the URL (it may hold a password).
/// Returns it without trailing slashes.
fn hub_url(url: &str) -> Result<String, (&'static str, &'static str)> {
    const EXAMPLE: &str = "e.g. hub_url = \"https://hub.lan:8000\"";
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or((
            "`agent.hub_url` must start with http:// or https://",
            EXAMPLE,
        ))?;
    if url.chars().any(char::is_whitespace) {
        return Err(("`agent.hub_url` must not contain spaces", EXAMPLE));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err((
            "`agent.hub_url` must not contain a user name or password",
            "remove the `user:password@` part: agents authenticate with the token in their host's `token_file`",
        ));
    }
    if authority.is_empty() || authority.starts_with(':') {
        return Err(("`agent.hub_url` has no host", EXAMPLE));
    }
    if rest.contains('?') {
        return Err((
            "`agent.hub_url` must not have a query (`?…`)",
            "give the base URL only, e.g. https://hub.lan:8000",
        ));
    }
    if rest.contains('#') {
        return Err((
            "`agent.hub_url` must not have a fragment (`#…`)",
            "give the base URL only, e.g. https://hub.lan:8000",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// `[agent]`.
pub(crate) fn agent(cx: &mut Ctx<'_>, raw: RawAgent, base: &Path) -> AgentSettings {
    AgentSettings {
        hub_url: raw
            .hub_url
            .as_ref()
            .and_then(|u| match hub_url(u.get_ref()) {
                Ok(url) => Some(url),
                Err((message, hint)) => {
                    cx.err_at(u, message, hint);
                    None
                }
            }),
        ca_file: raw.ca_file.as_ref().and_then(|f| {
            path(
                cx,
                f,
                "ca_file",
                "a PEM file with the hub's CA or certificate",
                base,
            )
        }),
        state_dir: raw
            .state_dir
            .as_ref()
            .and_then(|d| path(cx, d, "state_dir", "the agent's state directory", base)),
        config_key: raw.config_key.as_ref().and_then(|k| {
            let key = k.get_ref().trim();
            if key.starts_with("ed25519:") && key.len() > "ed25519:".len() {
                Some(key.to_string())
            } else {
                cx.err_at(
                    k,
                    "`config_key` is not a public key",
                    "give the line `ed25519:…` that `bulwark config keygen` printed",
                );
                None
            }
        }),
        allow_insecure_http: raw.allow_insecure_http,
    }
}

/// Jobs and maintenance share the hub's namespace: a name used by both is
/// reported at its second appearance in the file.
pub(crate) fn shared_names(
    cx: &mut Ctx<'_>,
    jobs: &[Entry<RawJob>],
    maintenance: &[Entry<RawMaintenance>],
) {
    for m in maintenance {
        let Some(j) = jobs.iter().find(|j| j.name.get_ref() == m.name.get_ref()) else {
            continue;
        };
        let (second, first) = if m.name.span().start > j.name.span().start {
            (&m.name, "[jobs.")
        } else {
            (&j.name, "[maintenance.")
        };
        let n = second.get_ref();
        cx.err_at(
            second,
            format!("`{n}` is the name of both a job and a maintenance task"),
            format!(
                "jobs and maintenance share one set of names (the hub tracks their runs by name), and {first}{n}] comes first; rename this one, e.g. `{n}-prune`"
            ),
        );
    }
}

/// The `host` of a job or maintenance (`what`). With `[hosts]` declared it
/// must name one of them; without, it is optional and only names the host
/// in snapshots.
pub(crate) fn owner_host(
    cx: &mut Ctx<'_>,
    host: Option<Spanned<String>>,
    what: &str,
    name: &Spanned<String>,
    hosts: &BTreeSet<String>,
    clean: bool,
) -> Option<String> {
    if hosts.is_empty() {
        return host.and_then(|h| check_host(cx, h, "host"));
    }
    let known: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let list = known.join(", ");
    match host {
        None => {
            if clean {
                let first = known.first().copied().unwrap_or("NAME");
                cx.err_at(
                    name,
                    format!("{what} `{}` has no host", name.get_ref()),
                    format!("with [hosts] declared, each {what} names the host that runs it: add host = \"{first}\" (declared hosts: {list})"),
                );
            }
            None
        }
        Some(h) if !hosts.contains(h.get_ref()) => {
            let hint = match closest(h.get_ref(), &known) {
                Some(best) => format!("did you mean `{best}`? (declared hosts: {list})"),
                None => format!("declared hosts: {list}; declare another one with [hosts.NAME]"),
            };
            cx.err_at(
                &h,
                format!(
                    "unknown host `{}` in {what} `{}`",
                    h.get_ref(),
                    name.get_ref()
                ),
                hint,
            );
            None
        }
        Some(h) => Some(h.into_inner()),
    }
}

/// The schedule keys of a job, maintenance or ping.
pub(crate) struct ScheduleKeys<'a> {
    pub schedule: Option<&'a Spanned<String>>,
    pub randomized_delay: Option<&'a Spanned<String>>,
    pub persistent: Option<&'a Spanned<bool>>,
    pub late_after: Option<&'a Spanned<String>>,
}

/// Byte offset in the file of character `column` (1-based) of a string
/// value, when the value is written without escapes; else the value's start.
fn offset_in_string(cx: &Ctx<'_>, v: &Spanned<String>, column: usize) -> usize {
    let span = v.span();
    let written = cx.text.get(span.clone()).unwrap_or_default();
    let open = if written.starts_with("\"\"\"") || written.starts_with("'''") {
        3
    } else if written.starts_with('"') || written.starts_with('\'') {
        1
    } else {
        return span.start;
    };
    let value = v.get_ref();
    if written.get(open..open + value.len()) != Some(value.as_str()) {
        return span.start;
    }
    let inner = value
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(value.len(), |(i, _)| i);
    span.start + open + inner
}

/// The current time as an RFC 9557 string in UTC, e.g.
/// `2025-03-07T12:00:00+00:00[UTC]`. (`jiff::Zoned` parses it; this crate
/// reaches jiff only through `bulwark_schedule`.)
fn now_utc() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00[UTC]",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Does the calendar fire within [`bulwark_schedule::VALIDATE_YEARS`] from now?
fn check_fires(calendar: &Calendar) -> Result<(), ScheduleError> {
    match now_utc().parse() {
        Ok(now) => calendar.validate(&now).map(drop),
        Err(_) => Ok(()), // cannot happen; then nothing is claimed either way
    }
}

/// `schedule`, `randomized_delay`, `persistent` (default true) and
/// `late_after` (default 1h). The others without `schedule` are errors.
pub(crate) fn schedule(cx: &mut Ctx<'_>, keys: ScheduleKeys<'_>) -> Option<JobSchedule> {
    let Some(expr) = keys.schedule else {
        let spans = [
            ("randomized_delay", keys.randomized_delay.map(Spanned::span)),
            ("persistent", keys.persistent.map(Spanned::span)),
            ("late_after", keys.late_after.map(Spanned::span)),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                cx.err(
                    span,
                    format!("`{key}` only makes sense with `schedule`"),
                    Some(
                        "add schedule = \"daily\" (or another calendar expression), or remove it"
                            .into(),
                    ),
                );
            }
        }
        return None;
    };
    let before = cx.diags.len();
    let calendar = match Calendar::parse(expr.get_ref()) {
        Ok(c) => match check_fires(&c) {
            Ok(()) => Some(c),
            Err(e) => {
                let (message, hint) = split_hint(&e.to_string());
                cx.err(expr.span(), format!("the schedule {message}"), hint);
                None
            }
        },
        Err(e) => {
            let at = offset_in_string(cx, expr, e.column());
            let hint = e.hint().map_or_else(
                || "e.g. schedule = \"daily\", \"Mon..Fri 03:00\" or \"*-*-* 02:30 Europe/Berlin\" (see docs/schedules.md)".into(),
                str::to_string,
            );
            cx.err(at..at, format!("bad schedule: {}", e.message()), Some(hint));
            None
        }
    };
    let randomized_delay = keys
        .randomized_delay
        .and_then(|d| duration(cx, d, "randomized_delay", "30m"))
        .unwrap_or_default();
    let persistent = keys.persistent.is_none_or(|p| *p.get_ref());
    let late_after = keys
        .late_after
        .and_then(|l| positive(cx, l, "late_after", "2h", "every run would be late at once"))
        .unwrap_or(DEFAULT_LATE_AFTER);
    if cx.diags.len() > before {
        return None;
    }
    Some(JobSchedule {
        expression: expr.get_ref().clone(),
        schedule: Schedule {
            calendar: calendar?,
            randomized_delay,
            persistent,
        },
        late_after,
    })
}

/// `[maintenance.NAME]`.
pub(crate) fn maintenance(
    cx: &mut Ctx<'_>,
    entry: Entry<RawMaintenance>,
    declared: &BTreeSet<String>,
    hosts: &BTreeSet<String>,
) -> Option<Maintenance> {
    let Entry { name, raw, clean } = entry;
    let before = cx.diags.len();
    let mname = name.get_ref().clone();
    if !valid_name(&mname) {
        cx.err_at(
            &name,
            format!("`{mname}` is not a valid maintenance name"),
            NAME_HINT,
        );
    }
    let m = raw?;
    let owner = format!("maintenance `{mname}`");
    let repository = repository_ref(cx, m.repository.as_ref(), &owner, &name, declared, clean);
    let host = owner_host(cx, m.host, "maintenance", &name, hosts, clean);
    let schedule = schedule(
        cx,
        ScheduleKeys {
            schedule: m.schedule.as_ref(),
            randomized_delay: m.randomized_delay.as_ref(),
            persistent: m.persistent.as_ref(),
            late_after: m.late_after.as_ref(),
        },
    );
    let retention = match m.retention {
        Some(r) => Some(retention(cx, &owner, r, clean, true)),
        None => {
            if clean {
                cx.err_at(
                    &name,
                    format!("{owner} has no retention policy"),
                    format!("add a [maintenance.{mname}.retention] table with keep rules, e.g. keep_daily = 7 (prune defaults to true here)"),
                );
            }
            None
        }
    };
    if cx.diags.len() > before || !clean {
        return None;
    }
    Some(Maintenance {
        name: mname,
        host,
        repository,
        schedule,
        retention: retention?,
        check: m.check,
    })
}

/// A ping's uuid: 16-64 of `[A-Za-z0-9_-]`.
fn valid_uuid(s: &str) -> bool {
    (16..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `[pings.NAME]`. The uuid is a capability: it is never shown.
pub(crate) fn pings(cx: &mut Ctx<'_>, mut entries: Vec<Entry<RawPing>>) -> BTreeMap<String, Ping> {
    entries.sort_by_key(|e| e.name.span().start);
    let mut seen: BTreeMap<String, String> = BTreeMap::new(); // uuid -> ping name
    let mut out = BTreeMap::new();
    for Entry { name, raw, clean } in entries {
        let before = cx.diags.len();
        let pname = name.get_ref().clone();
        if !valid_name(&pname) {
            cx.err_at(
                &name,
                format!("`{pname}` is not a valid ping name"),
                NAME_HINT,
            );
        }
        let Some(p) = raw else { continue };
        let uuid = match &p.uuid {
            None => {
                if clean {
                    cx.err_at(
                        &name,
                        format!("ping `{pname}` has no `uuid`"),
                        "add uuid = \"…\": 16-64 letters, digits, `-` or `_`, e.g. the output of `uuidgen`",
                    );
                }
                None
            }
            Some(u) if !valid_uuid(u.get_ref()) => {
                cx.err_at(
                    u,
                    format!("the uuid of ping `{pname}` must be 16-64 letters, digits, `-` or `_`"),
                    "generate one with `uuidgen`",
                );
                None
            }
            Some(u) => {
                if let Some(other) = seen.get(u.get_ref()) {
                    cx.err_at(
                        u,
                        format!("the uuid of ping `{pname}` is also used by ping `{other}`"),
                        "each ping needs its own uuid (it is the secret part of its /ping/ URL); generate one with `uuidgen`",
                    );
                } else {
                    seen.insert(u.get_ref().clone(), pname.clone());
                }
                Some(u.get_ref().clone())
            }
        };
        let period = p
            .period
            .as_ref()
            .and_then(|v| positive(cx, v, "period", "1d", "the ping would always be late"));
        let grace = p
            .grace
            .as_ref()
            .and_then(|g| duration(cx, g, "grace", "1h"))
            .unwrap_or(DEFAULT_GRACE);
        let schedule = schedule(
            cx,
            ScheduleKeys {
                schedule: p.schedule.as_ref(),
                randomized_delay: p.randomized_delay.as_ref(),
                persistent: None,
                late_after: None,
            },
        )
        .map(|s| JobSchedule {
            // Nothing here runs it, so nothing catches up; late after `grace`.
            schedule: Schedule {
                persistent: false,
                ..s.schedule
            },
            late_after: grace,
            ..s
        });
        match (&p.period, &p.schedule) {
            (None, None) if clean => cx.err_at(
                &name,
                format!("ping `{pname}` has neither `period` nor `schedule`"),
                "add period = \"1d\" (expected every day) or schedule = \"daily\" (expected at fixed times)",
            ),
            (Some(a), Some(b)) => {
                let later = if a.span().start > b.span().start { a } else { b };
                cx.err_at(
                    later,
                    format!("ping `{pname}` has both `period` and `schedule`"),
                    "keep one: period = \"1d\" (expected every day) or schedule = \"daily\" (expected at fixed times)",
                );
            }
            _ => {}
        }
        if cx.diags.len() > before || !clean {
            continue;
        }
        if let Some(uuid) = uuid {
            out.insert(
                pname.clone(),
                Ping {
                    name: pname,
                    uuid,
                    period,
                    schedule,
                    grace,
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_rfc9557() {
        let now = now_utc();
        assert_eq!(now.len(), "2025-03-07T12:00:00+00:00[UTC]".len(), "{now}");
        assert!(
            now.ends_with("+00:00[UTC]") && now.as_bytes()[10] == b'T',
            "{now}"
        );
        let cal = Calendar::parse("daily").map_err(|e| e.to_string());
        assert_eq!(cal.map(|c| check_fires(&c).is_ok()), Ok(true));
    }

    #[test]
    fn hub_urls() {
        assert_eq!(
            hub_url("https://hub.lan:8000/"),
            Ok("https://hub.lan:8000".into())
        );
        assert_eq!(
            hub_url("http://10.0.0.1/bulwark"),
            Ok("http://10.0.0.1/bulwark".into())
        );
        for bad in [
            "hub.lan:8000",
            "ftp://x",
            "https://",
            "https://:80",
            "https://u:pw@h",
            "https://h/?x=1",
            "https://h#f",
            "https://h /x",
        ] {
            assert!(hub_url(bad).is_err(), "{bad}");
        }
    }
}
