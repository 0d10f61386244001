//! From raw structs to the typed model: every semantic problem, each with
//! its position.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use serde_spanned::Spanned;

use crate::{
    database,
    fields::{
        check_host, repository_ref, retention, s3_settings, secret, secret_file, split_hint,
        stderr_patterns, valid_name, valid_snapshot_filename, Claim, NAME_HINT,
    },
    multihost::{self, ScheduleKeys},
    raw::{RawCommand, RawCommandLine, RawHooks, RawJob, RawRepo},
    read::{Ctx, Doc, Entry},
    CommandLine, CommandSource, Config, DatabaseSource, Hooks, Job, RepoUrl, Repository, RestAuth,
    SecretSource, Settings,
};

/// Validates the document; None if anything was reported.
pub(crate) fn validate(cx: &mut Ctx<'_>, mut doc: Doc, base: &Path) -> Option<Config> {
    let known = crate::monitor::Known::of(&doc);
    let monitoring = crate::monitor::validate(cx, &mut doc, &known, base);
    let settings = Settings {
        host: doc
            .settings
            .and_then(|s| s.host)
            .and_then(|h| check_host(cx, h, "settings.host")),
    };
    // Names that are declared, even when their table has problems: a
    // reference to them is not reported on top.
    let declared: BTreeSet<String> = doc
        .repositories
        .iter()
        .map(|e| e.name.get_ref().clone())
        .collect();
    let host_names: BTreeSet<String> = doc.hosts.iter().map(|e| e.name.get_ref().clone()).collect();
    let mut hosts = BTreeMap::new();
    for entry in doc.hosts {
        if let Some(h) = multihost::host(cx, entry, base) {
            hosts.insert(h.name.clone(), h);
        }
    }
    let agent = doc
        .agent
        .map(|a| multihost::agent(cx, a, base))
        .unwrap_or_default();
    let mut repositories = BTreeMap::new();
    for entry in doc.repositories {
        if let Some(r) = repository(cx, entry, base) {
            repositories.insert(r.name.clone(), r);
        }
    }
    multihost::shared_names(cx, &doc.jobs, &doc.maintenance);
    let mut jobs = BTreeMap::new();
    for entry in doc.jobs {
        if let Some(j) = job(cx, entry, &declared, &host_names, base) {
            jobs.insert(j.name.clone(), j);
        }
    }
    let mut maintenance = BTreeMap::new();
    for entry in doc.maintenance {
        if let Some(m) = multihost::maintenance(cx, entry, &declared, &host_names) {
            maintenance.insert(m.name.clone(), m);
        }
    }
    let pings = multihost::pings(cx, doc.pings);
    let hub_data = doc
        .hub
        .as_ref()
        .and_then(|h| h.data.as_ref())
        .filter(|d| !d.get_ref().trim().is_empty())
        .map(|d| base.join(d.get_ref()));
    let targets = crate::target::targets(cx, doc.targets, hub_data.as_deref(), base);
    let hub = doc.hub.and_then(|h| crate::hub::validate(cx, h, base));
    if !cx.diags.is_empty() {
        return None;
    }
    Some(Config {
        source: cx.file.to_path_buf(),
        settings,
        repositories,
        jobs,
        hub,
        hosts,
        maintenance,
        pings,
        agent,
        targets,
        monitors: monitoring.monitors,
        notifiers: monitoring.notifiers,
        routes: monitoring.routes,
        silences: monitoring.silences,
        alerts: monitoring.alerts,
    })
}

fn repository(cx: &mut Ctx<'_>, entry: Entry<RawRepo>, base: &Path) -> Option<Repository> {
    let Entry { name, raw, clean } = entry;
    let before = cx.diags.len();
    if !valid_name(name.get_ref()) {
        cx.err_at(
            &name,
            format!("`{}` is not a valid repository name", name.get_ref()),
            NAME_HINT,
        );
    }
    let r = raw?;
    let url = match &r.url {
        None => {
            if clean {
                cx.err_at(
                    &name,
                    format!("repository `{}` has no `url`", name.get_ref()),
                    "add url = \"/srv/backup/repo\", \"rest:https://host:8000/path\" or \"s3:https://endpoint/bucket\"",
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
    let password = match secret(
        cx,
        r.password_file.as_ref(),
        r.password_env.as_ref(),
        "password",
        base,
    ) {
        Ok(None) => {
            if clean {
                cx.err_at(
                    &name,
                    format!("repository `{}` has no password source", name.get_ref()),
                    "add password_file = \"/etc/bulwark/NAME.pass\" (mode 0600) or password_env = \"VARIABLE\"",
                );
            }
            None
        }
        Ok(s) => s,
        Err(()) => None,
    };
    let rest = match &r.rest {
        Some(t) if url.as_ref().is_some_and(|u| !matches!(u, RepoUrl::Rest(_))) => {
            cx.err_at(
                t,
                "a [rest] table only applies to a rest: url",
                "remove it, or change the url to rest:https://…",
            );
            None
        }
        Some(t) => {
            let tr = t.get_ref();
            let username = match &tr.username {
                Some(u) if u.get_ref().is_empty() => {
                    cx.err_at(u, "`username` is empty", "give the HTTP user name");
                    None
                }
                Some(u) => Some(u.get_ref().clone()),
                None => None,
            };
            let password = tr
                .password_file
                .as_ref()
                .and_then(|p| secret_file(cx, p, "password_file", base));
            if clean && (tr.username.is_none() || tr.password_file.is_none()) {
                cx.err_at(
                    t,
                    "the [rest] table needs both `username` and `password_file`",
                    "add the missing key, or remove the table",
                );
            }
            match (username, password) {
                (Some(username), Some(p)) => Some(RestAuth {
                    username,
                    password: SecretSource::File(p),
                }),
                _ => None,
            }
        }
        None => None,
    };
    let s3 = match &r.s3 {
        Some(t)
            if url
                .as_ref()
                .is_some_and(|u| !matches!(u, RepoUrl::S3 { .. })) =>
        {
            cx.err_at(
                t,
                "an [s3] table only applies to an s3: url",
                "remove it, or change the url to s3:https://…",
            );
            None
        }
        Some(t) => {
            let t = t.get_ref();
            Some(s3_settings(
                cx,
                t.region.as_ref(),
                [t.access_key_id_file.as_ref(), t.access_key_id_env.as_ref()],
                [
                    t.secret_access_key_file.as_ref(),
                    t.secret_access_key_env.as_ref(),
                ],
                base,
            ))
        }
        None => None,
    };
    if cx.diags.len() > before || !clean {
        return None;
    }
    Some(Repository {
        name: name.into_inner(),
        url: url?,
        password: password?,
        rest,
        s3,
    })
}

fn job(
    cx: &mut Ctx<'_>,
    entry: Entry<RawJob>,
    declared: &BTreeSet<String>,
    hosts: &BTreeSet<String>,
    base: &Path,
) -> Option<Job> {
    let Entry { name, raw, clean } = entry;
    let jname = name.get_ref().clone();
    if !valid_name(&jname) {
        cx.err_at(
            &name,
            format!("`{jname}` is not a valid job name"),
            NAME_HINT,
        );
    }
    let j = raw?;
    let owner = format!("job `{jname}`");
    let repository = repository_ref(cx, j.repository.as_ref(), &owner, &name, declared, clean);
    let host = multihost::owner_host(cx, j.host, "job", &name, hosts, clean);
    let schedule = multihost::schedule(
        cx,
        ScheduleKeys {
            schedule: j.schedule.as_ref(),
            randomized_delay: j.randomized_delay.as_ref(),
            persistent: j.persistent.as_ref(),
            late_after: j.late_after.as_ref(),
        },
    );
    let mut tags = Vec::new();
    for t in j.tags {
        let v = t.get_ref();
        if v.is_empty() || v.contains(',') || v.chars().any(char::is_whitespace) {
            cx.err_at(
                &t,
                format!("`{v}` is not a valid tag"),
                "tags are non-empty and have no commas or spaces",
            );
        }
        tags.push(t.into_inner());
    }
    let mut paths = Vec::new();
    for p in &j.paths {
        let v = p.get_ref();
        if v.is_empty() {
            cx.err_at(
                p,
                "empty path",
                "remove it, or give an absolute path like /var/lib/app",
            );
        } else if !Path::new(v).is_absolute() {
            cx.err_at(p, format!("path `{v}` is relative"), "use an absolute path, e.g. /var/lib/app (paths are not taken relative to anything)");
        }
        paths.push(PathBuf::from(v));
    }
    for e in &j.exclude {
        if let Err(m) = check_glob(e.get_ref()) {
            cx.err_at(
                e,
                format!("bad exclude pattern `{}`: {m}", e.get_ref()),
                "e.g. \"*.tmp\", \"/var/cache\" or \"**/node_modules\"",
            );
        }
    }
    for e in &j.exclude_if_present {
        let v = e.get_ref();
        if v.is_empty() || v.contains('/') || v == "." || v == ".." {
            cx.err_at(
                e,
                format!("`{v}` is not a file name"),
                "give a plain name like .nobackup",
            );
        }
    }
    let mut claims = Vec::new();
    let commands = commands(cx, &jname, &j.commands, clean, &mut claims);
    let databases: Vec<DatabaseSource> = j
        .databases
        .iter()
        .filter_map(|d| {
            let (source, claim) = database::database(cx, &jname, d, clean, base);
            claims.extend(claim);
            source
        })
        .collect();
    check_claims(cx, &jname, claims);
    if clean && j.paths.is_empty() && j.commands.is_empty() && j.databases.is_empty() {
        cx.err_at(
            &name,
            format!("job `{jname}` backs up nothing"),
            format!("add paths = [\"/…\"], a [[jobs.{jname}.commands]] or a [[jobs.{jname}.databases]] source"),
        );
    }
    let hooks = j.hooks.map(|h| hooks(cx, h)).unwrap_or_default();
    let retention = j.retention.map(|r| retention(cx, &owner, r, clean, false));
    let rpo = j
        .rpo
        .as_ref()
        .and_then(|r| multihost::positive(cx, r, "rpo", "26h", "no backup could ever meet it"));
    Some(Job {
        name: jname,
        repository,
        host,
        schedule,
        databases,
        tags,
        paths,
        exclude: j.exclude.into_iter().map(Spanned::into_inner).collect(),
        exclude_if_present: j
            .exclude_if_present
            .into_iter()
            .map(Spanned::into_inner)
            .collect(),
        one_file_system: j.one_file_system,
        commands,
        hooks,
        retention,
        rpo,
    })
}

/// A glob is sane when it is non-empty and its brackets and braces close.
fn check_glob(g: &str) -> Result<(), &'static str> {
    if g.trim().is_empty() {
        return Err("it is empty");
    }
    let (mut square, mut curly) = (false, 0usize);
    let mut chars = g.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !square => square = true,
            ']' if square => square = false,
            '{' if !square => curly += 1,
            '}' if !square => curly = curly.checked_sub(1).ok_or("a `}` has no matching `{`")?,
            _ => {}
        }
    }
    if square {
        return Err("a `[` is not closed");
    }
    if curly > 0 {
        return Err("a `{` is not closed");
    }
    Ok(())
}

fn commands(
    cx: &mut Ctx<'_>,
    jname: &str,
    raw: &[Spanned<RawCommand>],
    clean: bool,
    claims: &mut Vec<Claim>,
) -> Vec<CommandSource> {
    let mut out: Vec<CommandSource> = Vec::new();
    for c in raw {
        let (Some(cmd), Some(file)) = (&c.get_ref().command, &c.get_ref().filename) else {
            if clean {
                let missing = if c.get_ref().command.is_none() {
                    "command"
                } else {
                    "filename"
                };
                cx.err_at(
                    c,
                    format!("a command source of job `{jname}` has no `{missing}`"),
                    "each needs both, e.g. command = [\"pg_dumpall\", \"-U\", \"postgres\"] and filename = \"postgres/all.sql\"",
                );
            }
            continue;
        };
        let command = match cmd.get_ref() {
            RawCommandLine::Shell(s) if s.trim().is_empty() => {
                cx.err_at(cmd, "empty command", "give the command to run");
                None
            }
            RawCommandLine::Argv(v) if v.first().is_none_or(String::is_empty) => {
                cx.err_at(cmd, "empty command array", "give the program and its arguments, e.g. [\"pg_dumpall\", \"-U\", \"postgres\"]");
                None
            }
            RawCommandLine::Shell(s) => Some(CommandLine::Shell(s.clone())),
            RawCommandLine::Argv(v) => Some(CommandLine::Argv(v.clone())),
        };
        let fail_on_stderr = stderr_patterns(cx, &c.get_ref().fail_on_stderr);
        let f = file.get_ref();
        if !valid_snapshot_filename(f) {
            cx.err_at(
                file,
                format!("`{f}` is not a valid filename inside the snapshot"),
                "use a relative path without `.` or `..` components, e.g. postgres/all.sql",
            );
            continue;
        }
        claims.push(Claim {
            at: file.span(),
            filename: f.clone(),
            database: false,
        });
        if let Some(command) = command {
            out.push(CommandSource {
                command,
                filename: f.clone(),
                fail_on_stderr,
            });
        }
    }
    out
}

/// Every source of a job writes its own file, and none is the directory of
/// another; the later one (in file order) is reported.
fn check_claims(cx: &mut Ctx<'_>, jname: &str, mut claims: Vec<Claim>) {
    claims.sort_by_key(|c| c.at.start);
    let mut taken: Vec<Claim> = Vec::new();
    for c in claims {
        let f = &c.filename;
        if let Some(other) = taken.iter().find(|o| o.filename == *f) {
            let (message, hint) = match (other.database, c.database) {
                (false, false) => (format!("two command sources of job `{jname}` write `{f}`"), "give each its own filename"),
                (true, true) => (
                    format!("two database sources of job `{jname}` write `{f}`"),
                    "give each its own filename: set `filename` on one of them",
                ),
                _ => (
                    format!("a command source and a database source of job `{jname}` both write `{f}`"),
                    "give each its own filename (a database source's default is databases/ENGINE/NAME.sql; set `filename` to change it)",
                ),
            };
            cx.err(c.at, message, Some(hint.into()));
            continue;
        }
        if let Some(other) = taken
            .iter()
            .find(|o| is_dir_of(&o.filename, f) || is_dir_of(f, &o.filename))
        {
            let (dir, inner) = if is_dir_of(&other.filename, f) {
                (&other.filename, f)
            } else {
                (f, &other.filename)
            };
            cx.err(
                c.at,
                format!("`{dir}` cannot be both a file and the directory of `{inner}`"),
                Some("give the sources filenames that don't nest".into()),
            );
            continue;
        }
        taken.push(c);
    }
}

/// `dir/…` is inside `dir`.
fn is_dir_of(dir: &str, path: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

fn hooks(cx: &mut Ctx<'_>, h: RawHooks) -> Hooks {
    fn list(cx: &mut Ctx<'_>, key: &str, v: Vec<Spanned<String>>) -> Vec<String> {
        v.into_iter()
            .filter_map(|c| {
                if c.get_ref().trim().is_empty() {
                    cx.err_at(&c, format!("empty command in `{key}`"), "remove it");
                    return None;
                }
                Some(c.into_inner())
            })
            .collect()
    }
    let mut out = Hooks {
        before: list(cx, "before", h.before),
        after: list(cx, "after", h.after),
        on_failure: list(cx, "on_failure", h.on_failure),
        finally: list(cx, "finally", h.finally),
        ..Hooks::default()
    };
    if let Some(t) = &h.timeout {
        match humantime::parse_duration(t.get_ref()) {
            Ok(d) if !d.is_zero() => out.timeout = d,
            Ok(_) => cx.err_at(
                t,
                "a hook timeout of zero would kill every hook at once",
                "e.g. timeout = \"10m\", or remove it for 1h",
            ),
            Err(_) => cx.err_at(
                t,
                format!("`{}` is not a duration", t.get_ref()),
                "e.g. timeout = \"10m\", \"90s\" or \"1h 30m\"",
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for ok in [
            "*.tmp",
            "/var/cache",
            "**/node_modules",
            "[abc]*",
            "{a,b}.log",
            "\\[x",
        ] {
            assert_eq!(check_glob(ok), Ok(()), "{ok}");
        }
        for bad in ["", "  ", "[abc", "{a,b", "a}"] {
            assert!(check_glob(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting() {
        assert!(is_dir_of("pg", "pg/all.sql"));
        assert!(!is_dir_of("pg", "pgx/all.sql"));
        assert!(!is_dir_of("pg", "pg"));
    }
}
