//! `bulwark.toml`: Bulwark's configuration, parsed once into typed structs.
//!
//! Every problem is reported with `file:line:column`, what is wrong, and a
//! hint — all of them at once, not just the first. No other crate reads TOML;
//! secrets are only *referenced* (`password_file`, `password_env`) and loaded on
//! demand with [`SecretSource::load`].
//!
//! ```
//! let text = r#"
//! [repositories.home]
//! url = "/srv/backup/home"
//! password_file = "/etc/bulwark/home.pass"
//!
//! [jobs.system]
//! repository = "home"
//! paths = ["/etc", "/var/lib"]
//! exclude = ["*.tmp"]
//!
//! [jobs.system.retention]
//! keep_daily = 7
//! "#;
//! let cfg = bulwark_config::parse(text, std::path::Path::new("bulwark.toml")).unwrap();
//! let job = cfg.job("system").unwrap();
//! assert_eq!(cfg.repository_for(job).name, "home");
//! assert_eq!(job.retention.as_ref().unwrap().keep_daily, Some(7));
//!
//! let err = bulwark_config::parse("[jobs.x]\npathes = []\n", std::path::Path::new("b.toml")).unwrap_err();
//! assert!(err.to_string().starts_with("b.toml:2:1: unknown key `pathes`"));
//! ```

mod keep;
mod raw;
mod secret;
mod url;

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_spanned::Spanned;

pub use keep::KeepWithin;
pub use secret::{Secret, SecretError, SecretSource};
pub use url::RepoUrl;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// The config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {reason}; check the path and its permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file has problems; every one is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
    /// A job name that the file does not declare.
    #[error("there is no job `{name}` in the configuration (jobs: {available})")]
    UnknownJob {
        /// What was asked for.
        name: String,
        /// What exists.
        available: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from.
    pub source: PathBuf,
    /// Global settings.
    pub settings: Settings,
    /// Repositories by name.
    pub repositories: BTreeMap<String, Repository>,
    /// Jobs by name.
    pub jobs: BTreeMap<String, Job>,
}

/// Global settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Host name recorded in snapshots (default: the machine's).
    pub host: Option<String>,
}

/// A repository declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Its name in the file.
    pub name: String,
    /// Where it lives.
    pub url: RepoUrl,
    /// Where its password comes from.
    pub password: SecretSource,
    /// HTTP basic auth for a `rest:` repository.
    pub rest: Option<RestAuth>,
    /// Settings of an `s3:` repository.
    pub s3: Option<S3Settings>,
}

/// HTTP basic auth for a REST server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestAuth {
    /// User name.
    pub username: String,
    /// Where the HTTP password comes from.
    pub password: SecretSource,
}

/// Settings of an S3-compatible repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Region (default `us-east-1`).
    pub region: String,
    /// Access key id (else `AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<SecretSource>,
    /// Secret access key (else `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<SecretSource>,
}

/// A backup job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Its name in the file.
    pub name: String,
    /// Name of the repository it backs up into.
    pub repository: String,
    /// Host name to record (overrides `settings.host`).
    pub host: Option<String>,
    /// Tags for its snapshots.
    pub tags: Vec<String>,
    /// Absolute paths to back up.
    pub paths: Vec<PathBuf>,
    /// Exclude globs.
    pub exclude: Vec<String>,
    /// Skip directories containing a file with one of these names.
    pub exclude_if_present: Vec<String>,
    /// Stay on one file system per path.
    pub one_file_system: bool,
    /// Commands whose output is stored as files.
    pub commands: Vec<CommandSource>,
    /// Hooks around the backup.
    pub hooks: Hooks,
    /// Retention policy.
    pub retention: Option<Retention>,
}

/// A command whose standard output is stored as a file in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSource {
    /// What to run.
    pub command: CommandLine,
    /// Path of the file inside the snapshot (relative; stored under `/`).
    pub filename: String,
}

/// A command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// Run with `sh -c`.
    Shell(String),
    /// Program and arguments, run directly.
    Argv(Vec<String>),
}

impl CommandLine {
    /// A `std::process::Command` for it.
    pub fn to_command(&self) -> std::process::Command {
        match self {
            Self::Shell(s) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(s);
                c
            }
            Self::Argv(v) => {
                let mut c = std::process::Command::new(&v[0]);
                c.args(&v[1..]);
                c
            }
        }
    }

    /// How to show it in messages.
    pub fn display(&self) -> String {
        match self {
            Self::Shell(s) => s.clone(),
            Self::Argv(v) => v.join(" "),
        }
    }
}

/// Hooks around a job's backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// Before the backup; a failure aborts the job.
    pub before: Vec<String>,
    /// After a snapshot landed.
    pub after: Vec<String>,
    /// When the job failed or was incomplete.
    pub on_failure: Vec<String>,
    /// Always, last.
    pub finally: Vec<String>,
    /// Limit per hook command.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Self { before: vec![], after: vec![], on_failure: vec![], finally: vec![], timeout: Duration::from_secs(3600) }
    }
}

/// A retention policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the N newest.
    pub keep_last: Option<u32>,
    /// Hourly.
    pub keep_hourly: Option<u32>,
    /// Daily.
    pub keep_daily: Option<u32>,
    /// Weekly.
    pub keep_weekly: Option<u32>,
    /// Monthly.
    pub keep_monthly: Option<u32>,
    /// Yearly.
    pub keep_yearly: Option<u32>,
    /// Everything within this span of the newest snapshot.
    pub keep_within: Option<KeepWithin>,
    /// Prune after forget.
    pub prune: bool,
}

impl Retention {
    /// True when no keep rule is set.
    pub fn is_empty(&self) -> bool {
        self.keep_last.is_none()
            && self.keep_hourly.is_none()
            && self.keep_daily.is_none()
            && self.keep_weekly.is_none()
            && self.keep_monthly.is_none()
            && self.keep_yearly.is_none()
            && self.keep_within.is_none()
    }
}

impl Config {
    /// The job called `name`.
    pub fn job(&self, name: &str) -> Result<&Job, ConfigError> {
        self.jobs.get(name).ok_or_else(|| ConfigError::UnknownJob {
            name: name.to_string(),
            available: if self.jobs.is_empty() {
                "none".into()
            } else {
                self.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// The repository a (validated) job uses.
    pub fn repository_for(&self, job: &Job) -> &Repository {
        // validation guarantees the name exists
        &self.repositories[&job.repository]
    }
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Io { path: path.to_path_buf(), reason: e.to_string() })?;
    parse(&text, path)
}

/// The embedded default configuration (`@DATA@` is replaced by the data directory).
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The embedded default with its data directory.
pub fn default_config(data_dir: &Path) -> Result<Config, ConfigError> {
    let text = DEFAULT_CONFIG.replace("@DATA@", &data_dir.to_string_lossy());
    parse(&text, Path::new("<embedded default>"))
}

struct Ctx<'a> {
    text: &'a str,
    file: &'a Path,
    diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn at(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    fn err(&mut self, span: std::ops::Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let (line, column) = self.at(span.start);
        self.diags.push(Diagnostic { file: self.file.to_path_buf(), line, column, message: message.into(), hint });
    }

    fn err_at<T>(&mut self, v: &Spanned<T>, message: impl Into<String>, hint: impl Into<String>) {
        self.err(v.span(), message, Some(hint.into()));
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Rewrites serde's messages into ours, with a hint.
fn explain(message: &str) -> (String, Option<String>) {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, rest) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let best = expected.iter().map(|e| (levenshtein(field, e), *e)).min();
        let hint = match best {
            Some((d, e)) if d <= 3 && d < field.len() => format!("did you mean `{e}`?"),
            _ if !expected.is_empty() => format!("valid keys here: {}", expected.join(", ")),
            _ => "remove it".to_string(),
        };
        return (format!("unknown key `{field}`"), Some(hint));
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "another type"));
        return (format!("wrong type: found {found}, expected {expected}"), None);
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return (format!("missing key `{field}`"), Some(format!("add `{field} = ...`")));
    }
    (message.lines().next().unwrap_or(message).to_string(), None)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses and validates config text; `origin` names it in messages and is the
/// base for relative local repository paths.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let mut cx = Ctx { text, file: origin, diags: Vec::new() };
    let raw: raw::RawConfig = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (msg, hint) = explain(e.message());
            cx.err(e.span().unwrap_or(0..0), msg, hint);
            return Err(ConfigError::Invalid(cx.diags));
        }
    };
    let base = origin.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() { std::env::current_dir().unwrap_or_default() } else { base };

    let mut repositories = BTreeMap::new();
    for (name, r) in raw.repositories {
        if !valid_name(name.get_ref()) {
            cx.err_at(&name, format!("`{}` is not a valid repository name", name.get_ref()), "use letters, digits, `-` and `_`");
        }
        let Some(url_s) = &r.url else {
            cx.err_at(&name, format!("repository `{}` has no `url`", name.get_ref()), "add url = \"/path\", \"rest:https://…\" or \"s3:https://…\"");
            continue;
        };
        let url = match RepoUrl::parse(url_s.get_ref(), &base) {
            Ok(u) => u,
            Err(m) => {
                cx.err(url_s.span(), format!("bad url: {m}"), Some("e.g. url = \"/srv/backup/repo\"".into()));
                continue;
            }
        };
        let password = match (&r.password_file, &r.password_env) {
            (Some(f), None) => SecretSource::File(PathBuf::from(f.get_ref())),
            (None, Some(e)) => SecretSource::Env(e.get_ref().clone()),
            (Some(_), Some(e)) => {
                cx.err_at(e, "both `password_file` and `password_env` are set", "keep one of them");
                continue;
            }
            (None, None) => {
                cx.err_at(&name, format!("repository `{}` has no password source", name.get_ref()), "add password_file = \"/etc/bulwark/NAME.pass\" (mode 0600) or password_env = \"VAR\"");
                continue;
            }
        };
        let rest = match &r.rest {
            Some(t) if !matches!(url, RepoUrl::Rest(_)) => {
                cx.err_at(t, "a [rest] table only applies to a rest: url", "remove it, or change the url to rest:https://…");
                None
            }
            Some(t) => {
                let t = t.get_ref();
                match (&t.username, &t.password_file) {
                    (Some(u), Some(p)) => Some(RestAuth { username: u.get_ref().clone(), password: SecretSource::File(PathBuf::from(p.get_ref())) }),
                    _ => {
                        cx.err_at(r.rest.as_ref().map_or(&name, |_| &name), "the [rest] table needs `username` and `password_file`", "add both, or remove the table");
                        None
                    }
                }
            }
            None => None,
        };
        let s3 = match &r.s3 {
            Some(t) if !matches!(url, RepoUrl::S3 { .. }) => {
                cx.err_at(t, "an [s3] table only applies to an s3: url", "remove it, or change the url to s3:https://…");
                None
            }
            Some(t) => {
                let t = t.get_ref();
                let pick = |cx: &mut Ctx<'_>, f: &Option<Spanned<String>>, e: &Option<Spanned<String>>, key: &str| match (f, e) {
                    (Some(f), None) => Some(SecretSource::File(PathBuf::from(f.get_ref()))),
                    (None, Some(e)) => Some(SecretSource::Env(e.get_ref().clone())),
                    (Some(_), Some(e)) => {
                        cx.err_at(e, format!("both `{key}_file` and `{key}_env` are set"), "keep one of them");
                        None
                    }
                    (None, None) => None,
                };
                let access_key_id = pick(&mut cx, &t.access_key_id_file, &t.access_key_id_env, "access_key_id");
                let secret_access_key = pick(&mut cx, &t.secret_access_key_file, &t.secret_access_key_env, "secret_access_key");
                Some(S3Settings {
                    region: t.region.as_ref().map_or_else(|| "us-east-1".to_string(), |r| r.get_ref().clone()),
                    access_key_id,
                    secret_access_key,
                })
            }
            None => None,
        };
        repositories.insert(name.get_ref().clone(), Repository { name: name.get_ref().clone(), url, password, rest, s3 });
    }

    let mut jobs = BTreeMap::new();
    for (name, j) in raw.jobs {
        let jname = name.get_ref().clone();
        if !valid_name(&jname) {
            cx.err_at(&name, format!("`{jname}` is not a valid job name"), "use letters, digits, `-` and `_`");
        }
        let repository = match &j.repository {
            None => {
                cx.err_at(&name, format!("job `{jname}` has no `repository`"), "add repository = \"NAME\" naming a [repositories.NAME] table");
                String::new()
            }
            Some(r) => {
                if !repositories.contains_key(r.get_ref()) && !cx.text.is_empty() {
                    let known: Vec<&String> = repositories.keys().collect();
                    let hint = if known.is_empty() {
                        "declare it in a [repositories.NAME] table".to_string()
                    } else {
                        format!("declared repositories: {}", known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
                    };
                    cx.err_at(r, format!("job `{jname}` uses repository `{}`, which is not declared", r.get_ref()), hint);
                }
                r.get_ref().clone()
            }
        };
        let mut tags = Vec::new();
        for t in &j.tags {
            let v = t.get_ref();
            if v.is_empty() || v.contains(',') || v.chars().any(char::is_whitespace) {
                cx.err_at(t, format!("`{v}` is not a valid tag"), "tags are non-empty and have no commas or spaces");
            }
            tags.push(v.clone());
        }
        let mut paths = Vec::new();
        for p in &j.paths {
            let v = p.get_ref();
            if !Path::new(v).is_absolute() {
                cx.err_at(p, format!("path `{v}` is relative"), "use an absolute path, e.g. /var/lib/app");
            }
            paths.push(PathBuf::from(v));
        }
        for e in &j.exclude {
            if e.get_ref().trim().is_empty() {
                cx.err_at(e, "empty exclude pattern", "remove it, or write a glob like *.tmp");
            }
        }
        for e in &j.exclude_if_present {
            if e.get_ref().is_empty() || e.get_ref().contains('/') {
                cx.err_at(e, format!("`{}` is not a file name", e.get_ref()), "give a plain name like .nobackup");
            }
        }
        let mut commands: Vec<CommandSource> = Vec::new();
        for c in &j.commands {
            let (Some(cmd), Some(file)) = (&c.command, &c.filename) else {
                let span = c.command.as_ref().map(Spanned::span).or(c.filename.as_ref().map(Spanned::span)).unwrap_or(name.span());
                cx.err(span, format!("a command source of job `{jname}` needs `command` and `filename`"), Some("e.g. command = \"pg_dumpall\", filename = \"postgres/all.sql\"".into()));
                continue;
            };
            let command = match cmd.get_ref() {
                raw::RawCommandLine::Shell(s) if s.trim().is_empty() => {
                    cx.err_at(cmd, "empty command", "give the command to run");
                    continue;
                }
                raw::RawCommandLine::Argv(v) if v.is_empty() || v[0].is_empty() => {
                    cx.err_at(cmd, "empty command array", "give the program and its arguments, e.g. [\"pg_dumpall\", \"-U\", \"postgres\"]");
                    continue;
                }
                raw::RawCommandLine::Shell(s) => CommandLine::Shell(s.clone()),
                raw::RawCommandLine::Argv(v) => CommandLine::Argv(v.clone()),
            };
            let f = file.get_ref();
            let ok = !f.is_empty() && !f.starts_with('/') && Path::new(f).components().all(|c| matches!(c, std::path::Component::Normal(_)));
            if !ok {
                cx.err_at(file, format!("`{f}` is not a valid filename inside the snapshot"), "use a relative path without `.` or `..`, e.g. postgres/all.sql");
                continue;
            }
            if commands.iter().any(|c| c.filename == *f) {
                cx.err_at(file, format!("two command sources of job `{jname}` write `{f}`"), "give each its own filename");
                continue;
            }
            commands.push(CommandSource { command, filename: f.clone() });
        }
        if paths.is_empty() && j.commands.is_empty() {
            cx.err_at(&name, format!("job `{jname}` backs up nothing"), "add paths = [\"/…\"] or a [[jobs.NAME.commands]] source");
        }
        let mut hooks = Hooks::default();
        if let Some(h) = j.hooks {
            hooks.before = h.before;
            hooks.after = h.after;
            hooks.on_failure = h.on_failure;
            hooks.finally = h.finally;
            if let Some(t) = &h.timeout {
                match humantime::parse_duration(t.get_ref()) {
                    Ok(d) if !d.is_zero() => hooks.timeout = d,
                    _ => cx.err_at(t, format!("`{}` is not a duration", t.get_ref()), "e.g. timeout = \"10m\" or \"90s\""),
                }
            }
        }
        let retention = j.retention.map(|r| {
            let span = r.span();
            let r = r.into_inner();
            let count = |cx: &mut Ctx<'_>, v: &Option<Spanned<i64>>, key: &str| -> Option<u32> {
                let v = v.as_ref()?;
                match u32::try_from(*v.get_ref()) {
                    Ok(n) if n >= 1 => Some(n),
                    _ => {
                        cx.err_at(v, format!("{key} must be at least 1"), "omit the key instead of setting it to 0");
                        None
                    }
                }
            };
            let ret = Retention {
                keep_last: count(&mut cx, &r.keep_last, "keep_last"),
                keep_hourly: count(&mut cx, &r.keep_hourly, "keep_hourly"),
                keep_daily: count(&mut cx, &r.keep_daily, "keep_daily"),
                keep_weekly: count(&mut cx, &r.keep_weekly, "keep_weekly"),
                keep_monthly: count(&mut cx, &r.keep_monthly, "keep_monthly"),
                keep_yearly: count(&mut cx, &r.keep_yearly, "keep_yearly"),
                keep_within: r.keep_within.as_ref().and_then(|w| match w.get_ref().parse::<KeepWithin>() {
                    Ok(k) => Some(k),
                    Err(m) => {
                        cx.err_at(w, format!("bad keep_within: {m}"), "e.g. keep_within = \"30d\"");
                        None
                    }
                }),
                prune: r.prune,
            };
            let any_set = r.keep_last.is_some() || r.keep_hourly.is_some() || r.keep_daily.is_some() || r.keep_weekly.is_some()
                || r.keep_monthly.is_some() || r.keep_yearly.is_some() || r.keep_within.is_some();
            if !any_set {
                cx.err(span, format!("the retention of job `{jname}` keeps nothing"), Some("add keep_daily = 7 (etc.), or remove the table".into()));
            }
            ret
        });
        jobs.insert(
            jname.clone(),
            Job {
                name: jname,
                repository,
                host: j.host.map(Spanned::into_inner),
                tags,
                paths,
                exclude: j.exclude.into_iter().map(Spanned::into_inner).collect(),
                exclude_if_present: j.exclude_if_present.into_iter().map(Spanned::into_inner).collect(),
                one_file_system: j.one_file_system,
                commands,
                hooks,
                retention,
            },
        );
    }
    if !cx.diags.is_empty() {
        cx.diags.sort_by_key(|d| (d.line, d.column));
        return Err(ConfigError::Invalid(cx.diags));
    }
    Ok(Config {
        source: origin.to_path_buf(),
        settings: Settings { host: raw.settings.and_then(|s| s.host.map(Spanned::into_inner)) },
        repositories,
        jobs,
    })
}
