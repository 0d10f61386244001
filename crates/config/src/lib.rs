//! `bulwark.toml`: Bulwark's configuration, parsed once into typed structs.
//!
//! Every problem is reported with `file:line:column`, what is wrong, and a
//! hint — all of them at once, not just the first. No other crate reads TOML;
//! secrets are only *referenced* (`password_file`, `password_env`) and loaded on
//! demand with [`SecretSource::load`].
//!
//! One file may describe many machines: `[hosts.NAME]` declares them, each job
//! (with its `schedule`, paths, commands and `[[jobs.NAME.databases]]`) and each
//! `[maintenance.NAME]` names the host that runs it, `[agent]` says how agents
//! reach the hub, and `[pings.NAME]` declares checks that outside scripts ping.
//! `[targets.NAME]` declares where the hub replicates its repositories to
//! (offsite copies), and a job's `rpo` its recovery point objective.
//! `[monitors.NAME]`, `[notifiers.NAME]`, `[[routes]]`, `[[silences]]` and
//! `[alerts]` declare monitoring and alerting (`docs/monitoring.md`).
//! [`extract_host`] cuts out the part one agent needs. `docs/configuration.md`
//! describes every key.
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

mod build;
mod database;
mod extract;
mod fields;
mod hub;
mod keep;
mod monitor;
mod multihost;
mod notify;
mod raw;
mod read;
mod secret;
mod target;
mod url;
mod validate;

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

pub use build::BuildError;
pub use bulwark_schedule as schedule;
pub use hub::{parse_size, Hub, HubAccess, HubAcl};
pub use keep::KeepWithin;
pub use monitor::{
    Alerts, BackupCheck, DiskCheck, MinFree, MonitorCheck, MonitorDecl, MonitorKind, ProbeCheck,
    ReplicationCheck, Silence, SilenceWindow, DEFAULT_HUB_PING_INTERVAL, DEFAULT_MAX_AGE,
    DEFAULT_MIN_FREE_PERCENT, DEFAULT_REMIND_EVERY, DEFAULT_TLS_PORT,
};
pub use notify::{NotifierDecl, NotifierSettings, WebhookUrl, DEFAULT_NTFY_SERVER};
pub use read::closest;
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
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
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
    #[error(
        "cannot read the configuration file {path}: {reason}; check the path and its permissions"
    )]
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
    /// A host name that the file does not declare as `[hosts.NAME]`.
    #[error("there is no host `{name}` in the configuration (hosts: {available}); declare it as [hosts.{name}]")]
    UnknownHost {
        /// What was asked for.
        name: String,
        /// The declared hosts, comma-separated ("none" if there are none).
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
    /// The `[hub]` section, if present.
    pub hub: Option<Hub>,
    /// `[hosts.NAME]`: the machines whose agents run jobs. Empty in a
    /// single-machine file; once any host is declared, every job and
    /// maintenance names one.
    pub hosts: BTreeMap<String, HostDecl>,
    /// `[maintenance.NAME]`: retention (forget + prune) per repository, run by
    /// the one host that holds `modify` credentials.
    pub maintenance: BTreeMap<String, Maintenance>,
    /// `[pings.NAME]`: healthchecks-style checks that external cron jobs ping.
    pub pings: BTreeMap<String, Ping>,
    /// `[agent]`: how agents reach the hub.
    pub agent: AgentSettings,
    /// `[targets.NAME]`: where the hub replicates its repositories to. They
    /// belong to the hub; agents never receive them.
    pub targets: BTreeMap<String, Target>,
    /// `[monitors.NAME]`: what is watched, where, and how loudly. Agents
    /// receive the probe monitors that run on them, nothing else.
    pub monitors: BTreeMap<String, MonitorDecl>,
    /// `[notifiers.NAME]`: where alerts go (secrets only referenced). Hub only.
    pub notifiers: BTreeMap<String, NotifierDecl>,
    /// The routes in effect: the `[[routes]]` in file order, or, when there
    /// are none and exactly one notifier is declared, one route of every
    /// message to it. Hub only.
    pub routes: Vec<bulwark_notify::Route>,
    /// `[[silences]]`: maintenance windows, in file order. Hub only.
    pub silences: Vec<Silence>,
    /// `[alerts]`: the hub's dead-man's switch, connectivity canaries and the
    /// default reminder interval (defaults when absent). Hub only.
    pub alerts: Alerts,
}

/// `[targets.NAME]`: a replication target. The hub copies its repositories
/// (all of them, or those in `repositories`) there on `schedule`, and
/// re-hashes a sample of the copy on `verify`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Its name in the file.
    pub name: String,
    /// Where the copies go: a local path, `rest:…` or `s3:…`, parsed like a
    /// repository url. Each hub repository `P` is copied to `url/P`.
    pub url: RepoUrl,
    /// What it is stored on (for the 3-2-1 count of media).
    pub medium: Medium,
    /// Whether it is outside this building (for the 3-2-1 count of offsite
    /// copies). Any medium may be either.
    pub offsite: bool,
    /// S3 settings: `Some` exactly when `url` is `s3:` (region defaults to
    /// `us-east-1`; keys default to `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY`).
    pub s3: Option<S3Settings>,
    /// HTTP basic auth: `Some` exactly when `url` is `rest:` (both parts may
    /// be unset: no auth).
    pub rest: Option<TargetRestAuth>,
    /// Hub repository paths to copy (`nas/main`), or `"*"`. Empty: all.
    pub repositories: Vec<String>,
    /// When to replicate (also soon after new snapshots). Default `hourly`.
    pub schedule: JobSchedule,
    /// Limit in bytes per second, shared by all parallel copies.
    pub bandwidth: Option<u64>,
    /// Files copied at the same time, 1–64. Default 4.
    pub parallel: u32,
    /// When to verify the copy (re-hash a sample). Default `weekly`.
    pub verify: JobSchedule,
    /// Percentage (0 < p ≤ 100) of the data packs re-hashed per verify.
    /// Default 5.
    pub verify_sample_percent: f64,
    /// Delete at the target what was deleted (pruned) at the source, after
    /// `quarantine`. Default false: the target only grows.
    pub propagate_deletes: bool,
    /// How long a file deleted at the source stays at the target before it
    /// is deleted there too. Default 7 days. (Only set with
    /// `propagate_deletes`.)
    pub quarantine: Duration,
    /// At most this percentage (0 < p ≤ 100) of the target's files is deleted
    /// per run; more stops the deletion and is reported. Default 5. (Only
    /// set with `propagate_deletes`.)
    pub delete_cap_percent: f64,
    /// How soon after a new snapshot arrives at the hub its repository is
    /// copied here (`None`: only on `schedule`). Default 1 minute, so the
    /// uploads of one backup run settle first.
    pub after_upload: Option<Duration>,
}

/// HTTP basic auth for a `rest:` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRestAuth {
    /// User name.
    pub username: Option<String>,
    /// Where the HTTP password comes from (only with `username`).
    pub password: Option<SecretSource>,
}

/// What a replication target is stored on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Medium {
    /// A fixed disk or NAS mount.
    Disk,
    /// A cloud object store.
    Cloud,
    /// Another Bulwark hub or REST server run by someone else.
    Peer,
    /// A disk that is unplugged and carried away (USB disk, tape).
    Removable,
}

impl Medium {
    /// Every medium, in the order of the docs.
    pub const ALL: [Self; 4] = [Self::Disk, Self::Cloud, Self::Peer, Self::Removable];

    /// The name used in `medium = "…"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disk => "disk",
            Self::Cloud => "cloud",
            Self::Peer => "peer",
            Self::Removable => "removable",
        }
    }
}

impl fmt::Display for Medium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[hosts.NAME]`: a machine that runs an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDecl {
    /// Its name (also the host name recorded in its jobs' snapshots).
    pub name: String,
    /// Where *that host's* agent reads its hub token (a path on that host).
    pub token_file: Option<PathBuf>,
}

/// `[agent]`: settings every agent reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentSettings {
    /// Base URL of the hub's control API, e.g. `https://hub.lan:8000`.
    pub hub_url: Option<String>,
    /// PEM file with the CA (or self-signed certificate) to trust for the hub.
    pub ca_file: Option<PathBuf>,
    /// Where the agent keeps its state (queue, last runs, fetched config).
    pub state_dir: Option<PathBuf>,
    /// The public key (`ed25519:…`, from `bulwark config keygen`) that a
    /// configuration fetched from the hub must be signed with.
    pub config_key: Option<String>,
    /// Allow plain `http://` to a hub that is not on loopback (for a
    /// WireGuard/Tailscale link that encrypts on its own). Default false.
    pub allow_insecure_http: bool,
}

/// When a job (or maintenance, or ping) is expected to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSchedule {
    /// The expression as written (`daily`, `Mon..Fri 03:00`, ...).
    pub expression: String,
    /// Parsed calendar, randomized delay and persistence.
    pub schedule: bulwark_schedule::Schedule,
    /// How long after a planned start (fire time + randomized delay) without a
    /// run before the hub calls the job late. Default: 1 hour.
    pub late_after: Duration,
}

/// `[maintenance.NAME]`: forget + prune of one repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Maintenance {
    /// Its name (unique across jobs and maintenance).
    pub name: String,
    /// The host that runs it (the one with `modify` credentials).
    pub host: Option<String>,
    /// The repository (declared; its credentials must allow deletion).
    pub repository: String,
    /// When (None: only when triggered).
    pub schedule: Option<JobSchedule>,
    /// The policy, applied to every host/paths group; `prune` frees space.
    pub retention: Retention,
    /// Also run `check` (structure only) after prune.
    pub check: bool,
}

/// `[pings.NAME]`: a check that something outside Bulwark pings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// Its name.
    pub name: String,
    /// The secret part of `/ping/{uuid}` (16-64 of `[A-Za-z0-9_-]`, unique).
    pub uuid: String,
    /// Expected every this long ...
    pub period: Option<Duration>,
    /// ... or on this schedule (exactly one of the two).
    pub schedule: Option<JobSchedule>,
    /// Tolerance before it is late. Default: 1 hour.
    pub grace: Duration,
}

/// A database source: dumped by its tool, streamed into the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSource {
    /// Which database and how to reach it.
    pub kind: DatabaseKind,
    /// Path of the dump inside the snapshot (relative; stored under `/`).
    /// Default: `databases/postgres/NAME.sql` (`.dump` for the custom
    /// format), `databases/postgres/all.sql` for pg_dumpall,
    /// `databases/mysql/NAME.sql` / `all.sql`, `databases/sqlite/FILE_NAME`.
    pub filename: String,
    /// Extra arguments for the dump tool.
    pub options: Vec<String>,
    /// The dump fails if a line of its stderr contains one of these.
    pub fail_on_stderr: Vec<String>,
}

/// The database engines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    /// `pg_dump DATABASE`, or `pg_dumpall` when `database` is None.
    Postgres {
        /// Database (None: all, with roles, via pg_dumpall).
        database: Option<String>,
        /// Host name or socket directory (`PGHOST`).
        host: Option<String>,
        /// Port.
        port: Option<u16>,
        /// User.
        user: Option<String>,
        /// Password (`PGPASSWORD` for the dump process only).
        password: Option<SecretSource>,
        /// `plain` SQL (default) or `custom` (pg_restore format).
        format: PgFormat,
    },
    /// `mariadb-dump` / `mysqldump` (the first found), `--single-transaction`.
    Mysql {
        /// Database (None: `--all-databases`).
        database: Option<String>,
        /// Host name.
        host: Option<String>,
        /// Port.
        port: Option<u16>,
        /// Unix socket path.
        socket: Option<PathBuf>,
        /// User.
        user: Option<String>,
        /// Password (`MYSQL_PWD` for the dump process only).
        password: Option<SecretSource>,
    },
    /// A consistent online copy through SQLite's backup API.
    Sqlite {
        /// The live database file (absolute).
        path: PathBuf,
    },
}

/// pg_dump's output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PgFormat {
    /// SQL text (restore with psql).
    #[default]
    Plain,
    /// pg_dump's custom format (restore with pg_restore).
    Custom,
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
    /// The host that runs it (a `[hosts.NAME]` when hosts are declared), and
    /// the host name recorded in its snapshots (overrides `settings.host`).
    pub host: Option<String>,
    /// When the agent runs it (None: only when triggered or run by hand).
    pub schedule: Option<JobSchedule>,
    /// Database sources.
    pub databases: Vec<DatabaseSource>,
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
    /// `rpo`: the recovery point objective — at most this much data (time)
    /// may be lost, i.e. the newest snapshot should never be older.
    pub rpo: Option<Duration>,
}

/// A command whose standard output is stored as a file in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSource {
    /// What to run.
    pub command: CommandLine,
    /// Path of the file inside the snapshot (relative; stored under `/`).
    pub filename: String,
    /// The command fails if a line of its stderr contains one of these.
    pub fail_on_stderr: Vec<String>,
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
    /// A `std::process::Command` for it: `sh -c STRING`, or the program and
    /// its arguments. (An empty argv, which `parse` never produces, gives a
    /// command that fails to spawn.)
    pub fn to_command(&self) -> std::process::Command {
        match self {
            Self::Shell(s) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c").arg(s);
                c
            }
            Self::Argv(v) => {
                let (program, args) = v
                    .split_first()
                    .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
                let mut c = std::process::Command::new(program);
                c.args(args);
                c
            }
        }
    }

    /// How to show it in messages: the shell string, or the argv quoted
    /// the way a shell would need it.
    pub fn display(&self) -> String {
        match self {
            Self::Shell(s) => s.clone(),
            Self::Argv(v) => v
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

fn shell_quote(a: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !a.is_empty() && a.chars().all(plain) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
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
        Self {
            before: vec![],
            after: vec![],
            on_failure: vec![],
            finally: vec![],
            timeout: Duration::from_secs(3600),
        }
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

    /// The jobs and maintenance that `host` runs. With no `[hosts]` declared,
    /// every job runs on the one machine.
    pub fn jobs_of<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a Job> + 'a {
        self.jobs
            .values()
            .filter(move |j| self.hosts.is_empty() || j.host.as_deref() == Some(host))
    }

    /// The maintenance that `host` runs (all of it with no `[hosts]`).
    pub fn maintenance_of<'a>(
        &'a self,
        host: &'a str,
    ) -> impl Iterator<Item = &'a Maintenance> + 'a {
        self.maintenance
            .values()
            .filter(move |m| self.hosts.is_empty() || m.host.as_deref() == Some(host))
    }

    /// The enabled monitors that run on the agent of `host` (never the
    /// built-ins, which run on the hub).
    pub fn monitors_of<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a MonitorDecl> + 'a {
        let at = bulwark_monitor::Vantage::Agent(host.to_string());
        self.monitors
            .values()
            .filter(move |m| m.enabled && m.runs_on(&at))
    }

    /// Whether a `[[silences]]` window silences `monitor` at `at`.
    pub fn silenced(&self, monitor: &str, at: jiff::Timestamp) -> bool {
        self.silences.iter().any(|s| s.silences(monitor, at))
    }

    /// The repository a job of this config uses.
    ///
    /// # Panics
    ///
    /// If `job` is not from this config (validation guarantees that every
    /// job's repository is declared).
    pub fn repository_for(&self, job: &Job) -> &Repository {
        // validation guarantees the name exists
        &self.repositories[&job.repository]
    }
}

/// Reads, parses and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse(&text, path)
}

/// The embedded default configuration (`@DATA@` is replaced by the data directory).
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The embedded default with its data directory.
pub fn default_config(data_dir: &Path) -> Result<Config, ConfigError> {
    let text = DEFAULT_CONFIG.replace("@DATA@", &data_dir.to_string_lossy());
    parse(&text, Path::new("<embedded default>"))
}

/// The part of a many-host configuration that the agent on `host` needs, as
/// TOML text that is itself a valid `bulwark.toml`.
///
/// `text` must validate (its [`parse`] error is returned otherwise), and
/// `host` must be declared as `[hosts.HOST]` ([`ConfigError::UnknownHost`]
/// otherwise). The result holds `[settings]` and `[agent]` (if present),
/// `[hosts.HOST]` alone, the `[jobs.*]` and `[maintenance.*]` whose `host` is
/// HOST, and exactly the `[repositories.*]` they use — never `[hub]`,
/// `[pings]`, `[targets]`, other hosts or their jobs.
///
/// It also holds the enabled probe monitors (`http`, `tcp`, `dns`, `tls`,
/// `path`, `command`) whose `on` names HOST, cut down to what the agent
/// runs: `on = ["HOST"]`, and without `quorum`, `severity`, `remind_every`
/// and `recovery` (the hub decides and alerts). Never `[notifiers]`,
/// `[[routes]]`, `[[silences]]` or `[alerts]`.
///
/// The agent stores the text elsewhere, so every path that was relative to
/// the original file's directory (local repository URLs, `password_file`s,
/// `token_file`, `ca_file`, `state_dir`, a monitor's `ca_file` and
/// `header_files`) is made absolute against it. Comments and key order are
/// not kept.
///
/// ```
/// let text = r#"
/// [hosts.nas]
/// [hosts.vps]
///
/// [repositories.local]
/// url = "/srv/backup"
/// password_file = "local.pass"
///
/// [jobs.etc]
/// host = "nas"
/// repository = "local"
/// paths = ["/etc"]
///
/// [jobs.web]
/// host = "vps"
/// repository = "local"
/// paths = ["/var/www"]
/// "#;
/// let origin = std::path::Path::new("/etc/bulwark/bulwark.toml");
/// let nas = bulwark_config::extract_host(text, origin, "nas").unwrap();
/// let cfg = bulwark_config::parse(&nas, origin).unwrap();
/// assert_eq!(cfg.jobs.keys().collect::<Vec<_>>(), ["etc"]);
/// assert!(nas.contains("password_file = \"/etc/bulwark/local.pass\""));
/// assert!(bulwark_config::extract_host(text, origin, "nope").is_err());
/// ```
pub fn extract_host(text: &str, origin: &Path, host: &str) -> Result<String, ConfigError> {
    extract::extract_host(text, origin, host)
}

/// Parses and validates config text. `origin` names the text in messages,
/// and its directory is the base for relative local repository paths and
/// relative secret files.
pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
    let mut cx = read::Ctx {
        text,
        file: origin,
        diags: Vec::new(),
    };
    let base = origin.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        std::env::current_dir().unwrap_or_default()
    } else {
        base
    };
    let config = read::read(&mut cx).and_then(|doc| validate::validate(&mut cx, doc, &base));
    match config {
        Some(c) if cx.diags.is_empty() => Ok(c),
        _ => {
            cx.diags.sort_by_key(|d| (d.line, d.column));
            cx.diags.dedup();
            Err(ConfigError::Invalid(cx.diags))
        }
    }
}
