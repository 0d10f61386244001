//! The file as written: serde structs with spans, before validation.
//!
//! Every field is optional here (so that one bad or missing key never hides
//! the others); `validate` decides what is required.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSettings {
    pub host: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRepo {
    pub url: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub rest: Option<Spanned<RawRest>>,
    pub s3: Option<Spanned<RawS3>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRest {
    pub username: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawS3 {
    pub region: Option<Spanned<String>>,
    pub access_key_id_file: Option<Spanned<String>>,
    pub access_key_id_env: Option<Spanned<String>>,
    pub secret_access_key_file: Option<Spanned<String>>,
    pub secret_access_key_env: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    pub repository: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub randomized_delay: Option<Spanned<String>>,
    pub persistent: Option<Spanned<bool>>,
    pub late_after: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub paths: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude_if_present: Vec<Spanned<String>>,
    #[serde(default)]
    pub one_file_system: bool,
    #[serde(default)]
    pub commands: Vec<Spanned<RawCommand>>,
    #[serde(default)]
    pub databases: Vec<Spanned<RawDatabase>>,
    pub hooks: Option<RawHooks>,
    pub retention: Option<Spanned<RawRetention>>,
    pub rpo: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a command string (run with sh -c) or a non-empty array of strings (program and arguments)"
)]
pub(crate) enum RawCommandLine {
    Shell(String),
    Argv(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommand {
    pub command: Option<Spanned<RawCommandLine>>,
    pub filename: Option<Spanned<String>>,
    #[serde(default)]
    pub fail_on_stderr: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub database: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub user: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub socket: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub filename: Option<Spanned<String>>,
    pub options: Option<Spanned<Vec<Spanned<String>>>>,
    pub fail_on_stderr: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHooks {
    #[serde(default)]
    pub before: Vec<Spanned<String>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    #[serde(default)]
    pub on_failure: Vec<Spanned<String>>,
    #[serde(default)]
    pub finally: Vec<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetention {
    pub keep_last: Option<Spanned<i64>>,
    pub keep_hourly: Option<Spanned<i64>>,
    pub keep_daily: Option<Spanned<i64>>,
    pub keep_weekly: Option<Spanned<i64>>,
    pub keep_monthly: Option<Spanned<i64>>,
    pub keep_yearly: Option<Spanned<i64>>,
    pub keep_within: Option<Spanned<String>>,
    /// Unset: the default of the owner (false for jobs, true for maintenance).
    pub prune: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    pub token_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub hub_url: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
    pub config_key: Option<Spanned<String>>,
    #[serde(default)]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMaintenance {
    pub host: Option<Spanned<String>>,
    pub repository: Option<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub randomized_delay: Option<Spanned<String>>,
    pub persistent: Option<Spanned<bool>>,
    pub late_after: Option<Spanned<String>>,
    #[serde(default)]
    pub check: bool,
    pub retention: Option<Spanned<RawRetention>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPing {
    pub uuid: Option<Spanned<String>>,
    pub period: Option<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub randomized_delay: Option<Spanned<String>>,
    pub grace: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    pub url: Option<Spanned<String>>,
    pub medium: Option<Spanned<String>>,
    pub offsite: Option<Spanned<bool>>,
    pub region: Option<Spanned<String>>,
    pub access_key_id_file: Option<Spanned<String>>,
    pub access_key_id_env: Option<Spanned<String>>,
    pub secret_access_key_file: Option<Spanned<String>>,
    pub secret_access_key_env: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub repositories: Option<Spanned<Vec<Spanned<String>>>>,
    pub schedule: Option<Spanned<String>>,
    pub bandwidth: Option<Spanned<RawSize>>,
    pub parallel: Option<Spanned<i64>>,
    pub verify: Option<Spanned<String>>,
    pub verify_sample: Option<Spanned<String>>,
    pub propagate_deletes: Option<Spanned<bool>>,
    pub quarantine: Option<Spanned<String>>,
    pub delete_cap: Option<Spanned<String>>,
    pub after_upload: Option<Spanned<String>>,
}

// ---- monitoring: [monitors.NAME], [notifiers.NAME], [[routes]], [[silences]], [alerts] ----

/// A table of strings with the span of each key and value (`headers`,
/// `header_files`, `header_envs`).
pub(crate) type RawStringMap = std::collections::BTreeMap<Spanned<String>, Spanned<String>>;

/// `expected_status`: one status or range, or an array of them.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a status such as 200 or \"200-299\", or an array of them"
)]
pub(crate) enum RawStatuses {
    One(RawStatus),
    Many(Vec<RawStatus>),
}

/// One HTTP status (`200`) or range (`"200-299"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawStatus {
    Code(i64),
    Text(String),
}

/// `[monitors.NAME]`: every key of every type; `monitor.rs` refuses the keys
/// that don't apply to the `type`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMonitor {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    // common
    pub interval: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
    pub failure_threshold: Option<Spanned<i64>>,
    pub success_threshold: Option<Spanned<i64>>,
    pub on: Option<Spanned<Vec<Spanned<String>>>>,
    pub quorum: Option<Spanned<i64>>,
    pub severity: Option<Spanned<String>>,
    pub remind_every: Option<Spanned<String>>,
    pub recovery: Option<Spanned<bool>>,
    pub enabled: Option<Spanned<bool>>,
    // http
    pub url: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    pub headers: Option<Spanned<RawStringMap>>,
    pub header_files: Option<Spanned<RawStringMap>>,
    pub header_envs: Option<Spanned<RawStringMap>>,
    pub body: Option<Spanned<String>>,
    pub expected_status: Option<Spanned<RawStatuses>>,
    pub body_contains: Option<Spanned<String>>,
    pub json_pointer: Option<Spanned<String>>,
    pub json_equals: Option<Spanned<toml::Value>>,
    pub max_response_time: Option<Spanned<String>>,
    pub min_cert_days: Option<Spanned<i64>>,
    pub follow_redirects: Option<Spanned<bool>>,
    // http, tls
    pub ca_file: Option<Spanned<String>>,
    pub insecure: Option<Spanned<bool>>,
    // tcp, tls
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    // tls
    pub server_name: Option<Spanned<String>>,
    pub min_days: Option<Spanned<i64>>,
    // dns
    pub server: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub record: Option<Spanned<String>>,
    pub expect: Option<Spanned<Vec<Spanned<String>>>>,
    pub rcode: Option<Spanned<String>>,
    // path
    pub path: Option<Spanned<String>>,
    pub check: Option<Spanned<String>>,
    // command
    pub command: Option<Spanned<RawCommandLine>>,
    pub exit_code: Option<Spanned<i64>>,
    // backup, replication
    pub job: Option<Spanned<String>>,
    pub jobs: Option<Spanned<Vec<Spanned<String>>>>,
    pub max_age: Option<Spanned<String>>,
    pub targets: Option<Spanned<Vec<Spanned<String>>>>,
    // disk
    pub min_free: Option<Spanned<RawSize>>,
}

/// `[notifiers.NAME]`: every key of every type; `notify.rs` refuses the
/// keys that don't apply to the `type`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotifier {
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    // ntfy
    pub server: Option<Spanned<String>>,
    pub topic: Option<Spanned<String>>,
    pub tags: Option<Spanned<Vec<Spanned<String>>>>,
    // ntfy, gotify
    pub token_file: Option<Spanned<String>>,
    pub token_env: Option<Spanned<String>>,
    // gotify, webhook (plain); discord, slack, webhook (secret)
    pub url: Option<Spanned<String>>,
    pub url_file: Option<Spanned<String>>,
    pub url_env: Option<Spanned<String>>,
    // slack
    pub text_only: Option<Spanned<bool>>,
    // email
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub security: Option<Spanned<String>>,
    pub username: Option<Spanned<String>>,
    pub password_file: Option<Spanned<String>>,
    pub password_env: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    pub to: Option<Spanned<Vec<Spanned<String>>>>,
    // webhook
    pub method: Option<Spanned<String>>,
    pub headers: Option<Spanned<RawStringMap>>,
    pub header_files: Option<Spanned<RawStringMap>>,
    pub header_envs: Option<Spanned<RawStringMap>>,
    pub template: Option<Spanned<String>>,
    // ntfy, gotify, email, webhook
    pub ca_file: Option<Spanned<String>>,
}

/// `[[routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub notifiers: Option<Spanned<Vec<Spanned<String>>>>,
    pub monitors: Option<Spanned<Vec<Spanned<String>>>>,
    pub min_severity: Option<Spanned<String>>,
}

/// `[[silences]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSilence {
    pub monitors: Option<Spanned<Vec<Spanned<String>>>>,
    pub from: Option<Spanned<toml::Value>>,
    pub until: Option<Spanned<toml::Value>>,
    pub schedule: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub reason: Option<Spanned<String>>,
}

/// `[alerts]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerts {
    pub hub_ping_url_file: Option<Spanned<String>>,
    pub hub_ping_url_env: Option<Spanned<String>>,
    pub hub_ping_interval: Option<Spanned<String>>,
    pub connectivity: Option<Spanned<Vec<Spanned<String>>>>,
    pub remind_every: Option<Spanned<String>>,
}

/// A size: bytes as an integer, or a string like `"10 GiB"`.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a size: a number of bytes or a string such as \"10 GiB\""
)]
pub(crate) enum RawSize {
    Bytes(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHub {
    pub listen: Option<Spanned<String>>,
    pub data: Option<Spanned<String>>,
    pub htpasswd: Option<Spanned<String>>,
    #[serde(default)]
    pub append_only: bool,
    #[serde(default = "default_true")]
    pub private_repos: bool,
    #[serde(default)]
    pub no_auth: bool,
    pub tls_cert: Option<Spanned<String>>,
    pub tls_key: Option<Spanned<String>>,
    pub max_size: Option<Spanned<RawSize>>,
    pub max_file_size: Option<Spanned<RawSize>>,
    pub scrub_interval: Option<Spanned<String>>,
    #[serde(default)]
    pub acl: Vec<Spanned<RawAcl>>,
    #[serde(default)]
    pub quota: BTreeMap<String, Spanned<RawSize>>,
    #[serde(default)]
    pub metrics_users: Vec<String>,
    pub metrics_token_file: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<i64>>,
    pub run_history: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAcl {
    pub user: Option<Spanned<String>>,
    pub repo: Option<Spanned<String>>,
    pub access: Option<Spanned<String>>,
}

fn default_true() -> bool {
    true
}
