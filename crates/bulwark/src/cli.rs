//! Command-line definitions (clap). Only parsing lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) const EXIT_CODES: &str = "\
EXIT CODES:
    0    success
    1    fatal error (nothing or not everything was done; the message says why)
    2    wrong usage (bad flags or arguments)
    3    finished but incomplete: some files could not be read (backup) or
         restored/verified (restore); the summary lists them. `report`: a
         3-2-1 rule is violated; `monitors`: a monitor is down
    10   the repository does not exist
    11   wrong password (no key of the repository matches)
    12   the repository is locked by another process (Bulwark's or restic's)
    13   the hub (or REST server) refused the credentials: wrong user name,
         password or token (HTTP 401)
    14   the credentials lack the access needed: no access to that repository,
         or not an admin token (HTTP 403)
    130  interrupted (Ctrl-C / SIGTERM); the repository stays valid";

const ABOUT: &str = "Bulwark: encrypted, deduplicated backups in the restic repository format.

Repositories written by Bulwark can be read, checked and restored by restic, and
Bulwark reads repositories restic wrote. Bulwark never overwrites a repository
file and never leaves a half-written one: a crash at any moment leaves the
repository valid.";

const AFTER: &str = "\
WHERE THE REPOSITORY COMES FROM (first match wins):
    -r/--repo, BULWARK_REPO, or the repository of --job in the config file (-c).
    Forms: /local/path, rest:http(s)://[user:pass@]host:port/path,
           s3:http(s)://endpoint/bucket[/prefix] (S3 needs the `s3` build feature;
           keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the config).

WHERE THE PASSWORD COMES FROM (first match wins):
    --password-file, BULWARK_PASSWORD_FILE, BULWARK_PASSWORD, or the config.

EXAMPLES:
    bulwark up                                    hub + agent here: /etc backed up daily, reported
    bulwark status                                hosts, jobs, last result, late and failed jobs
    bulwark trigger default                       run a job now (through its agent)
    bulwark monitors                              every monitor: up, down, since when, from where
    bulwark -c bulwark.toml notify test phone     send a test message through a notifier
    bulwark run                                   back up /etc into the default repository, once
    bulwark -r /srv/backup init                   create a repository
    bulwark -r /srv/backup backup /etc /var/lib   back up two directories
    bulwark -r /srv/backup snapshots              list snapshots
    bulwark -r /srv/backup restore latest --target /tmp/r --verify
    bulwark -c bulwark.toml --job system backup   run a job (sources, hooks, tags)
    bulwark -c bulwark.toml --job system forget --prune
";

#[derive(Debug, Parser)]
#[command(name = "bulwark", version, about = ABOUT, after_help = format!("{AFTER}\n{EXIT_CODES}"))]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Repository location (path, rest:URL or s3:URL).
    #[arg(
        short = 'r',
        long = "repo",
        env = "BULWARK_REPO",
        global = true,
        value_name = "REPO"
    )]
    pub(crate) repo: Option<String>,
    /// File holding the repository password.
    #[arg(
        long,
        env = "BULWARK_PASSWORD_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub(crate) password_file: Option<PathBuf>,
    /// Configuration file (bulwark.toml).
    #[arg(
        short = 'c',
        long = "config",
        env = "BULWARK_CONFIG",
        global = true,
        value_name = "FILE"
    )]
    pub(crate) config: Option<PathBuf>,
    /// PEM file with the CA (or self-signed certificate) to trust for the
    /// hub: control API and REST repositories [default: [agent] ca_file].
    #[arg(long, env = "BULWARK_CA_FILE", global = true, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Allow plain http:// to a hub that is not on loopback (only over a
    /// link that encrypts on its own: WireGuard, Tailscale) [default: [agent] allow_insecure_http].
    #[arg(long, env = "BULWARK_ALLOW_INSECURE_HTTP", global = true)]
    pub(crate) allow_insecure_http: bool,
    /// Job from the configuration file: its repository, sources, hooks, tags and retention.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) job: Option<String>,
    /// Machine-readable JSON on stdout (stable field names).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Cache directory for index and snapshot files [default: $XDG_CACHE_HOME/bulwark].
    #[arg(long, env = "BULWARK_CACHE_DIR", global = true, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Don't use a local cache.
    #[arg(long, global = true)]
    pub(crate) no_cache: bool,
    /// More log output (-v info, -vv debug). Logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Log format on stderr.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "BULWARK_LOG_FORMAT",
        global = true
    )]
    pub(crate) log_format: LogFormat,
    /// No progress bars even on a terminal.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for Loki and friends).
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Back up and apply retention for every job of the config (or the embedded default).
    ///
    /// Without -c and without ./bulwark.toml, uses the embedded default: back up
    /// /etc into a repository under $XDG_DATA_HOME/bulwark (created on first use,
    /// with a generated password saved beside it), keep 7 daily, 4 weekly and
    /// 6 monthly snapshots.
    Run(RunArgs),
    /// Create a new repository.
    Init,
    /// Create a snapshot of files, directories and command outputs.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(FilterArgs),
    /// List the files of a snapshot.
    Ls {
        /// Snapshot id (or prefix) or `latest`.
        snapshot: String,
        /// Only list this path and what is below it.
        path: Option<PathBuf>,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Show what changed between two snapshots (+ added, - removed, M modified, U metadata, T type).
    Diff {
        /// Older snapshot.
        snapshot1: String,
        /// Newer snapshot.
        snapshot2: String,
    },
    /// Restore a snapshot into a directory.
    Restore(RestoreArgs),
    /// Write one file of a snapshot to stdout.
    Dump {
        /// Snapshot id (or prefix) or `latest`.
        snapshot: String,
        /// Path of the file inside the snapshot.
        path: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Remove snapshots according to a retention policy (from flags or the job's config).
    Forget(ForgetArgs),
    /// Remove data that no snapshot uses any more.
    Prune {
        /// Only show what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the repository for damage.
    Check(CheckArgs),
    /// Copy snapshots to another repository (skips those already there).
    Copy(CopyArgs),
    /// Remove stale locks (left by processes that are gone or silent for 30 minutes).
    Unlock {
        /// Remove every lock, live or not (only when you are sure nothing runs).
        #[arg(long)]
        all: bool,
    },
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Serve repositories to restic and Bulwark over restic's REST protocol
    /// (a drop-in replacement for rest-server; never needs a repository key).
    Hub(crate::hub_cmd::HubArgs),
    /// Run this host's jobs on their schedules, report every run to the hub,
    /// take triggers (see docs/agent.md).
    Agent(crate::agent_cmd::AgentArgs),
    /// Hub and agent in one process on this machine, with an embedded default:
    /// backs up /etc on a schedule, status on http://127.0.0.1:8130.
    Up(crate::agent_cmd::UpArgs),
    /// Hosts, jobs, last result, last success, next run; late and failed jobs highlighted.
    Status(crate::agent_cmd::StatusArgs),
    /// Ask the hub to run a job now (its agent picks it up within seconds).
    Trigger(crate::agent_cmd::TriggerArgs),
    /// The hub's open alerts (--all: the history); `alerts resolve ID`
    /// acknowledges one (see docs/replication.md#alerts).
    Alerts(crate::agent_cmd::AlertsArgs),
    /// Every monitor's state as the hub sees it: up, down or unknown, since
    /// when, from which vantage points (see docs/monitoring.md). Exit 3 when
    /// a monitor is down.
    #[command(after_help = crate::monitor_cmd::monitors_after_help())]
    Monitors(crate::monitor_cmd::MonitorsArgs),
    /// Notifiers of the config file: `notify test NAME` sends a test message
    /// through one of them.
    #[command(subcommand)]
    Notify(crate::monitor_cmd::NotifyCmd),
    /// Copy the hub's repositories to the `[targets]` (cloud bucket, local disk):
    /// keyless, verified, never deleting (see docs/replication.md).
    Replicate(crate::replicate_cmd::ReplicateArgs),
    /// The 3-2-1 report: for every job, how many current copies of its
    /// repository exist (hub + targets), on how many media, how many offsite,
    /// and the effective RPO. Exit 3 when a rule is violated.
    Report(crate::replicate_cmd::ReportArgs),
    /// Apply a `[maintenance.NAME]`: forget by its retention policy, prune, optionally check.
    Maintenance {
        /// The `[maintenance.NAME]` to run.
        name: String,
    },
    /// Write a consistent online copy of a live SQLite database to stdout
    /// (SQLite's backup API: safe while the application writes).
    #[command(hide = true)]
    SqliteBackup {
        /// The database file.
        path: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Print the embedded default configuration and exit.
    #[arg(long)]
    pub(crate) print_default_config: bool,
    /// Where the embedded default keeps its repository [default: $XDG_DATA_HOME/bulwark].
    #[arg(long, env = "BULWARK_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// Files and directories to back up (added to the job's paths).
    pub(crate) paths: Vec<PathBuf>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// Host name to record [default: this machine's, or the job's].
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,
    /// Exclude paths matching a glob (repeatable), e.g. '*.tmp' or '/var/lib/docker'.
    #[arg(long = "exclude", short = 'e', value_name = "GLOB")]
    pub(crate) excludes: Vec<String>,
    /// Skip directories containing a file with this name (repeatable).
    #[arg(long, value_name = "NAME")]
    pub(crate) exclude_if_present: Vec<String>,
    /// Stay on the file system of each path.
    #[arg(long, short = 'x')]
    pub(crate) one_file_system: bool,
    /// Store the standard output of this shell command as a file (e.g. "pg_dumpall").
    #[arg(long, value_name = "CMD")]
    pub(crate) stdin_from_command: Option<String>,
    /// Name of that file inside the snapshot.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "stdin",
        requires = "stdin_from_command"
    )]
    pub(crate) stdin_filename: String,
}

#[derive(Debug, Args, Default)]
pub(crate) struct FilterArgs {
    /// Only snapshots of this host (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    pub(crate) hosts: Vec<String>,
    /// Only snapshots with this tag (repeatable: all must match).
    #[arg(long = "tag", value_name = "TAG")]
    pub(crate) tags: Vec<String>,
    /// Only snapshots of exactly these paths (repeatable).
    #[arg(long = "path", value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// Snapshot id (or prefix) or `latest`.
    pub(crate) snapshot: String,
    /// Directory to restore into (created if missing).
    #[arg(long, short = 't', value_name = "DIR")]
    pub(crate) target: PathBuf,
    /// Restore only this path (or glob) and what is below it (repeatable).
    #[arg(long = "include", short = 'i', value_name = "PATH")]
    pub(crate) includes: Vec<String>,
    /// Re-read every restored file and compare it with the snapshot's hashes.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Files restored in parallel [default: number of CPUs, 2 to 8].
    #[arg(long, value_name = "N", default_value_t = 0, hide_default_value = true)]
    pub(crate) workers: usize,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ForgetArgs {
    /// Keep the N most recent snapshots.
    #[arg(long, value_name = "N")]
    pub(crate) keep_last: Option<u32>,
    /// Keep the last snapshot of each of the N most recent hours.
    #[arg(long, value_name = "N")]
    pub(crate) keep_hourly: Option<u32>,
    /// Keep the last snapshot of each of the N most recent days.
    #[arg(long, value_name = "N")]
    pub(crate) keep_daily: Option<u32>,
    /// Keep the last snapshot of each of the N most recent weeks.
    #[arg(long, value_name = "N")]
    pub(crate) keep_weekly: Option<u32>,
    /// Keep the last snapshot of each of the N most recent months.
    #[arg(long, value_name = "N")]
    pub(crate) keep_monthly: Option<u32>,
    /// Keep the last snapshot of each of the N most recent years.
    #[arg(long, value_name = "N")]
    pub(crate) keep_yearly: Option<u32>,
    /// Keep every snapshot within this duration of the newest, e.g. 30d, 1y6m, 2d12h.
    #[arg(long, value_name = "DURATION")]
    pub(crate) keep_within: Option<String>,
    /// Prune after forgetting.
    #[arg(long)]
    pub(crate) prune: bool,
    /// Only show what would be removed.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Read and verify all data (slow: reads the whole repository).
    #[arg(long, conflicts_with = "read_data_subset")]
    pub(crate) read_data: bool,
    /// Read and verify a random subset of the data, e.g. 10%.
    #[arg(long, value_name = "N%")]
    pub(crate) read_data_subset: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// Destination repository.
    #[arg(long, value_name = "REPO")]
    pub(crate) to: String,
    /// File holding the destination's password.
    #[arg(long, value_name = "FILE", env = "BULWARK_TO_PASSWORD_FILE")]
    pub(crate) to_password_file: PathBuf,
    /// Snapshots to copy [default: all].
    pub(crate) snapshots: Vec<String>,
    #[command(flatten)]
    pub(crate) filter: FilterArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCmd {
    /// Validate a configuration file and report every problem with file:line:column.
    Check {
        /// The file [default: -c / BULWARK_CONFIG / ./bulwark.toml].
        file: Option<PathBuf>,
    },
    /// Make a key pair for signing configuration files: the private key
    /// goes to FILE (mode 0600, keep it off the hub), the public key is
    /// printed (and written to FILE.pub) for the agents' `config_key`.
    Keygen {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Sign a configuration file: writes FILE.sig (a detached signature over
    /// its exact bytes). Put both on the hub; agents that fetch their
    /// configuration from the hub run only a correctly signed file.
    Sign {
        /// The configuration file.
        file: PathBuf,
        /// The private key from `bulwark config keygen`.
        #[arg(long, value_name = "KEY", env = "BULWARK_CONFIG_SIGNING_KEY")]
        key: PathBuf,
    },
}
