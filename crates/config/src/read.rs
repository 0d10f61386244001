//! From text to raw structs, reporting *every* syntax error, unknown key and
//! value of the wrong type with its position — not only the first.
//!
//! The document is parsed into toml's spanned tree; then each key of each
//! table is deserialized on its own, so a bad key is reported and dropped
//! while its neighbours still get checked. Tables that lost a key are marked
//! unclean, so that validation does not add "missing key" noise on top.

use std::{ops::Range, path::Path};

use serde::de::DeserializeOwned;
use serde_spanned::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::{
    raw::{
        RawAgent, RawAlerts, RawCommand, RawDatabase, RawHooks, RawHost, RawJob, RawMaintenance,
        RawMonitor, RawNotifier, RawPing, RawRepo, RawRest, RawRetention, RawRoute, RawS3,
        RawSettings, RawSilence, RawTarget,
    },
    Diagnostic,
};

/// Where diagnostics are collected.
pub(crate) struct Ctx<'a> {
    pub text: &'a str,
    pub file: &'a Path,
    pub diags: Vec<Diagnostic>,
}

impl Ctx<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    fn at(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }

    /// Records a problem at `span`.
    pub fn err(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let (line, column) = self.at(span.start);
        self.diags.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
        });
    }

    /// Records a problem at a spanned value, with a hint.
    pub fn err_at<T>(
        &mut self,
        v: &Spanned<T>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.err(v.span(), message, Some(hint.into()));
    }
}

/// A `[SECTION.NAME]` table (`repositories`, `jobs`, `hosts`, `maintenance`, `pings`, `targets`).
pub(crate) struct Entry<T> {
    /// NAME, spanning the key.
    pub name: Spanned<String>,
    /// What could be read (None when the value is not a table at all).
    pub raw: Option<T>,
    /// False when some key of it (or of a table inside it) was rejected.
    pub clean: bool,
}

/// One table of a `[[SECTION]]` array (`routes`, `silences`).
pub(crate) struct Item<T> {
    /// The table (where "this route has no …" is reported).
    pub span: Range<usize>,
    /// What could be read (None when the element is not a table).
    pub raw: Option<T>,
    /// False when some key of it was rejected.
    pub clean: bool,
}

/// The whole file, read.
#[derive(Default)]
pub(crate) struct Doc {
    pub settings: Option<RawSettings>,
    pub repositories: Vec<Entry<RawRepo>>,
    pub jobs: Vec<Entry<RawJob>>,
    pub hub: Option<crate::raw::RawHub>,
    pub hosts: Vec<Entry<RawHost>>,
    pub agent: Option<RawAgent>,
    pub maintenance: Vec<Entry<RawMaintenance>>,
    pub pings: Vec<Entry<RawPing>>,
    pub targets: Vec<Entry<RawTarget>>,
    pub monitors: Vec<Entry<RawMonitor>>,
    pub notifiers: Vec<Entry<RawNotifier>>,
    pub routes: Vec<Item<RawRoute>>,
    /// The file has a `routes` key (even one that could not be read).
    pub routes_given: bool,
    pub silences: Vec<Item<RawSilence>>,
    pub alerts: Option<RawAlerts>,
}

/// The top-level tables of `bulwark.toml`.
pub(crate) const SECTIONS: &[&str] = &[
    "settings",
    "repositories",
    "jobs",
    "hub",
    "hosts",
    "agent",
    "maintenance",
    "pings",
    "targets",
    "monitors",
    "notifiers",
    "routes",
    "silences",
    "alerts",
];

/// Reads the document; None when its TOML syntax is broken (then every
/// syntax error has been reported).
pub(crate) fn read(cx: &mut Ctx<'_>) -> Option<Doc> {
    let (root, errors) = DeTable::parse_recoverable(cx.text);
    if !errors.is_empty() {
        for e in &errors {
            syntax_error(cx, e);
        }
        return None;
    }
    let mut doc = Doc::default();
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "settings" => doc.settings = table::<RawSettings>(cx, "settings", value).0,
            "repositories" => doc.repositories = named(cx, "repositories", value),
            "jobs" => doc.jobs = named(cx, "jobs", value),
            "hub" => doc.hub = table::<crate::raw::RawHub>(cx, "hub", value).0,
            "hosts" => doc.hosts = named(cx, "hosts", value),
            "agent" => doc.agent = table::<RawAgent>(cx, "agent", value).0,
            "maintenance" => doc.maintenance = named(cx, "maintenance", value),
            "pings" => doc.pings = named(cx, "pings", value),
            "targets" => doc.targets = named(cx, "targets", value),
            "monitors" => doc.monitors = named(cx, "monitors", value),
            "notifiers" => doc.notifiers = named(cx, "notifiers", value),
            "routes" => {
                doc.routes_given = true;
                doc.routes = items(cx, "routes", value);
            }
            "silences" => doc.silences = items(cx, "silences", value),
            "alerts" => doc.alerts = table::<RawAlerts>(cx, "alerts", value).0,
            other => unknown_key(cx, key.span(), other, SECTIONS),
        }
    }
    Some(doc)
}

/// Raw structs, and how to check the tables nested inside them.
pub(crate) trait Shape: DeserializeOwned {
    /// Prunes the table (or array of tables) under `key`; false if anything was rejected.
    fn nested(_cx: &mut Ctx<'_>, _key: &str, _value: &mut Spanned<DeValue<'_>>) -> bool {
        true
    }

    /// What `key` holds in this table, and an example of it (for wrong-type
    /// messages). Default: the file-wide [`expectation`] table.
    fn expectation(key: &str) -> Option<(&'static str, String)> {
        expectation(key)
    }
}

impl Shape for RawSettings {}
impl Shape for RawRest {}
impl Shape for RawS3 {}
impl Shape for RawHooks {}
impl Shape for RawRetention {}
impl Shape for RawCommand {}
impl Shape for RawDatabase {}
impl Shape for RawHost {}
impl Shape for RawAgent {}
impl Shape for RawPing {}

impl Shape for RawRoute {
    fn expectation(key: &str) -> Option<(&'static str, String)> {
        match key {
            "notifiers" => Some(("an array of strings", "notifiers = [\"phone\"]".into())),
            "monitors" => Some((
                "an array of strings (monitor names or globs)",
                "monitors = [\"web-*\"]".into(),
            )),
            "min_severity" => Some((
                "a string",
                "min_severity = \"critical\" (or \"warning\", \"info\")".into(),
            )),
            _ => expectation(key),
        }
    }
}

impl Shape for RawSilence {
    fn expectation(key: &str) -> Option<(&'static str, String)> {
        match key {
            "monitors" => Some((
                "an array of strings (monitor names or globs)",
                "monitors = [\"web-*\"]".into(),
            )),
            "from" | "until" => Some((
                "a date and time (a string or a TOML date-time)",
                format!("{key} = \"2026-12-01 02:00\""),
            )),
            "schedule" => Some((
                "a string (a calendar expression)",
                "schedule = \"Sun 03:00\"".into(),
            )),
            "duration" => Some(("a string (a duration)", "duration = \"2h\"".into())),
            "reason" => Some(("a string", "reason = \"kernel updates\"".into())),
            _ => expectation(key),
        }
    }
}

impl Shape for RawAlerts {
    fn expectation(key: &str) -> Option<(&'static str, String)> {
        match key {
            "hub_ping_url_file" => Some((
                "a string (a file path)",
                "hub_ping_url_file = \"/etc/bulwark/hc-ping.url\"".into(),
            )),
            "hub_ping_url_env" => Some((
                "a string (a variable name)",
                "hub_ping_url_env = \"HUB_PING_URL\"".into(),
            )),
            "hub_ping_interval" => {
                Some(("a string (a duration)", "hub_ping_interval = \"1m\"".into()))
            }
            "connectivity" => Some((
                "an array of strings",
                "connectivity = [\"tcp:1.1.1.1:53\", \"http://192.168.1.1\"]".into(),
            )),
            "remind_every" => Some((
                "a string (a duration, or \"off\")",
                "remind_every = \"24h\"".into(),
            )),
            _ => expectation(key),
        }
    }
}

impl Shape for RawMonitor {
    fn expectation(key: &str) -> Option<(&'static str, String)> {
        let e = |what: &'static str, example: &str| Some((what, example.to_string()));
        const STRINGS: &str = "an array of strings";
        const TABLE: &str = "a table of strings";
        match key {
            "type" => e(
                "a string",
                "type = \"http\" (or \"tcp\", \"dns\", \"tls\", \"path\", \"command\", \"backup\", \"replication\", \"disk\")",
            ),
            "interval" => e("a string (a duration)", "interval = \"60s\""),
            "timeout" => e("a string (a duration)", "timeout = \"10s\""),
            "failure_threshold" => e("an integer (at least 1)", "failure_threshold = 3"),
            "success_threshold" => e("an integer (at least 1)", "success_threshold = 2"),
            "on" => e(STRINGS, "on = [\"hub\", \"nas\"]"),
            "quorum" => e("an integer (at least 1)", "quorum = 2"),
            "severity" => e("a string", "severity = \"critical\" (or \"warning\", \"info\")"),
            "remind_every" => e("a string (a duration, or \"off\")", "remind_every = \"24h\""),
            "recovery" | "enabled" | "insecure" | "follow_redirects" => {
                Some(("a boolean (true or false)", format!("{key} = true")))
            }
            "url" => e("a string (a URL)", "url = \"https://nas.lan:8443/health\""),
            "method" => e("a string", "method = \"HEAD\""),
            "headers" => e(TABLE, "headers = { \"Accept\" = \"application/json\" }"),
            "header_files" => e(TABLE, "header_files = { \"Authorization\" = \"/etc/bulwark/app.auth\" }"),
            "header_envs" => e(TABLE, "header_envs = { \"Authorization\" = \"APP_AUTH\" }"),
            "body" => e("a string", "body = \"{}\""),
            "expected_status" => e(
                "a status such as 200 or \"200-299\", or an array of them",
                "expected_status = [\"200-299\", 401]",
            ),
            "body_contains" => e("a string", "body_contains = \"ok\""),
            "json_pointer" => e("a string (a JSON pointer)", "json_pointer = \"/status\""),
            "max_response_time" => e("a string (a duration)", "max_response_time = \"2s\""),
            "min_cert_days" => e("an integer (days)", "min_cert_days = 14"),
            "min_days" => e("an integer (days)", "min_days = 14"),
            "host" => e("a string (a host name or IP address)", "host = \"nas.lan\""),
            "port" => e("an integer (1-65535)", "port = 443"),
            "server_name" => e("a string (a host name)", "server_name = \"nas.example.org\""),
            "server" => e("a string (IP:PORT)", "server = \"192.168.1.1:53\""),
            "name" => e("a string (a DNS name)", "name = \"nas.home.arpa\""),
            "record" => e("a string", "record = \"AAAA\""),
            "expect" => e(STRINGS, "expect = [\"192.168.1.10\"]"),
            "rcode" => e("a string", "rcode = \"NXDOMAIN\""),
            "path" => e("a string (an absolute path)", "path = \"/mnt/nas\""),
            "check" => e("a string", "check = \"mountpoint\" (or \"exists\", \"readable\")"),
            "exit_code" => e("an integer (0-255)", "exit_code = 0"),
            "job" => e("a string (a job name)", "job = \"nas\""),
            "jobs" => e(STRINGS, "jobs = [\"nas\", \"vps\"]"),
            "max_age" => e("a string (a duration)", "max_age = \"48h\""),
            "targets" => e(STRINGS, "targets = [\"usb\", \"cloud\"]"),
            "min_free" => e("a string (a percentage or a size)", "min_free = \"10%\" (or \"50 GiB\")"),
            _ => expectation(key),
        }
    }
}

impl Shape for RawNotifier {
    fn expectation(key: &str) -> Option<(&'static str, String)> {
        let e = |what: &'static str, example: &str| Some((what, example.to_string()));
        const TABLE: &str = "a table of strings";
        match key {
            "type" => e(
                "a string",
                "type = \"ntfy\" (or \"gotify\", \"discord\", \"slack\", \"email\", \"webhook\")",
            ),
            "server" => e("a string (a URL)", "server = \"https://ntfy.sh\""),
            "topic" => e("a string", "topic = \"bulwark-alerts\""),
            "tags" => e("an array of strings", "tags = [\"homelab\"]"),
            "token_file" => e(
                "a string (a file path)",
                "token_file = \"/etc/bulwark/ntfy.token\"",
            ),
            "token_env" => e("a string (a variable name)", "token_env = \"NTFY_TOKEN\""),
            "url" => e("a string (a URL)", "url = \"https://gotify.lan\""),
            "url_file" => e(
                "a string (a file path)",
                "url_file = \"/etc/bulwark/discord.url\"",
            ),
            "url_env" => e(
                "a string (a variable name)",
                "url_env = \"DISCORD_WEBHOOK_URL\"",
            ),
            "text_only" => e("a boolean (true or false)", "text_only = true"),
            "host" => e("a string (a host name)", "host = \"smtp.example.org\""),
            "port" => e("an integer (1-65535)", "port = 587"),
            "security" => e("a string", "security = \"starttls\" (or \"tls\", \"none\")"),
            "username" => e("a string", "username = \"bulwark@example.org\""),
            "from" => e(
                "a string (an email address)",
                "from = \"Bulwark <bulwark@example.org>\"",
            ),
            "to" => e(
                "an array of strings (email addresses)",
                "to = [\"me@example.org\"]",
            ),
            "method" => e("a string", "method = \"PUT\""),
            "headers" => e(TABLE, "headers = { \"X-Source\" = \"bulwark\" }"),
            "header_files" => e(
                TABLE,
                "header_files = { \"Authorization\" = \"/etc/bulwark/hook.auth\" }",
            ),
            "header_envs" => e(TABLE, "header_envs = { \"Authorization\" = \"HOOK_AUTH\" }"),
            "template" => e(
                "a string (JSON with placeholders)",
                "template = '{\"text\": \"{{title}}\"}'",
            ),
            _ => expectation(key),
        }
    }
}

impl Shape for RawTarget {
    fn expectation(key: &str) -> Option<(&'static str, String)> {
        match key {
            // (at the top level, `repositories` is a table of tables)
            "repositories" => Some((
                "an array of strings",
                "repositories = [\"nas/main\", \"vps/main\"]".into(),
            )),
            "schedule" => Some((
                "a string (a calendar expression)",
                "schedule = \"*-*-* 04:00:00\"".into(),
            )),
            _ => expectation(key),
        }
    }
}

impl Shape for RawMaintenance {
    fn nested(cx: &mut Ctx<'_>, key: &str, value: &mut Spanned<DeValue<'_>>) -> bool {
        match key {
            "retention" => prune::<RawRetention>(cx, value),
            _ => true,
        }
    }
}
impl Shape for crate::raw::RawAcl {}

impl Shape for crate::raw::RawHub {
    fn nested(cx: &mut Ctx<'_>, key: &str, value: &mut Spanned<DeValue<'_>>) -> bool {
        match (key, value.get_mut()) {
            ("acl", DeValue::Array(items)) => items.iter_mut().fold(true, |clean, item| {
                prune::<crate::raw::RawAcl>(cx, item) & clean
            }),
            _ => true,
        }
    }
}

impl Shape for RawRepo {
    fn nested(cx: &mut Ctx<'_>, key: &str, value: &mut Spanned<DeValue<'_>>) -> bool {
        match key {
            "rest" => prune::<RawRest>(cx, value),
            "s3" => prune::<RawS3>(cx, value),
            _ => true,
        }
    }
}

impl Shape for RawJob {
    fn nested(cx: &mut Ctx<'_>, key: &str, value: &mut Spanned<DeValue<'_>>) -> bool {
        match (key, value.get_mut()) {
            ("hooks", _) => prune::<RawHooks>(cx, value),
            ("retention", _) => prune::<RawRetention>(cx, value),
            ("commands", DeValue::Array(items)) => items
                .iter_mut()
                .fold(true, |clean, item| prune::<RawCommand>(cx, item) & clean),
            ("databases", DeValue::Array(items)) => items
                .iter_mut()
                .fold(true, |clean, item| prune::<RawDatabase>(cx, item) & clean),
            _ => true,
        }
    }
}

/// `[SECTION.NAME]` tables.
fn named<T: Shape>(cx: &mut Ctx<'_>, section: &str, value: Spanned<DeValue<'_>>) -> Vec<Entry<T>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Table(t) => t
            .into_iter()
            .map(|(key, value)| {
                let name = Spanned::new(key.span(), key.get_ref().to_string());
                let (raw, clean) = table::<T>(cx, &format!("{section}.{}", key.get_ref()), value);
                Entry { name, raw, clean }
            })
            .collect(),
        other => {
            wrong_type(cx, span, section, kind(&other));
            Vec::new()
        }
    }
}

/// `[[SECTION]]` tables.
fn items<T: Shape>(cx: &mut Ctx<'_>, section: &str, value: Spanned<DeValue<'_>>) -> Vec<Item<T>> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(a) => a
            .into_iter()
            .map(|value| {
                let span = value.span();
                let (raw, clean) = table::<T>(cx, section, value);
                Item { span, raw, clean }
            })
            .collect(),
        other => {
            wrong_type(cx, span, section, kind(&other));
            Vec::new()
        }
    }
}

/// One table, every key checked.
fn table<T: Shape>(
    cx: &mut Ctx<'_>,
    label: &str,
    mut value: Spanned<DeValue<'_>>,
) -> (Option<T>, bool) {
    if !matches!(value.get_ref(), DeValue::Table(_)) {
        wrong_type(cx, value.span(), label, kind(value.get_ref()));
        return (None, false);
    }
    let clean = prune::<T>(cx, &mut value);
    let span = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(t) => (Some(t), clean),
        Err(e) => {
            // every key passed on its own, so this should not happen
            let (message, hint) = explain_syntax(e.message());
            cx.err(e.span().unwrap_or(span), message, hint);
            (None, false)
        }
    }
}

/// Reports and removes each key of a table that `T` rejects (unknown key,
/// wrong type), after pruning the tables nested in it. Not a table: left for
/// the caller to reject.
fn prune<T: Shape>(cx: &mut Ctx<'_>, value: &mut Spanned<DeValue<'_>>) -> bool {
    let span = value.span();
    let DeValue::Table(t) = value.get_mut() else {
        return true;
    };
    let mut clean = true;
    let mut rejected = Vec::new();
    for (key, value) in t.iter_mut() {
        clean &= T::nested(cx, key.get_ref(), value);
        let mut alone = DeTable::new();
        alone.insert(key.clone(), value.clone());
        if let Err(e) = T::deserialize(ValueDeserializer::from(Spanned::new(
            span.clone(),
            DeValue::Table(alone),
        ))) {
            report(cx, &e, key.get_ref(), value, T::expectation);
            rejected.push(key.clone());
            clean = false;
        }
    }
    for key in &rejected {
        t.remove(key);
    }
    clean
}

/// What a value is, in TOML words.
fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date/time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The "found" part of serde's `invalid type: FOUND, expected …` (never the
/// value itself: it might be a secret).
fn found_in(message: &str) -> &'static str {
    let found = message.strip_prefix("invalid type: ").unwrap_or(message);
    [
        ("string", "a string"),
        ("integer", "an integer"),
        ("floating point", "a float"),
        ("boolean", "a boolean"),
        ("map", "a table"),
        ("sequence", "an array"),
    ]
    .into_iter()
    .find(|(p, _)| found.starts_with(p))
    .map_or("a value of another type", |(_, k)| k)
}

/// What each key holds, and an example of it.
fn expectation(label: &str) -> Option<(&'static str, String)> {
    const STRINGS: &str = "an array of strings";
    let e = |what: &'static str, example: &str| Some((what, example.to_string()));
    match label {
        "settings" => e("a table", "[settings]"),
        "repositories" => e("a table of repositories", "[repositories.NAME]"),
        "jobs" => e("a table of jobs", "[jobs.NAME]"),
        "hub" | "agent" => Some(("a table", format!("[{label}]"))),
        "hosts" => e("a table of hosts", "[hosts.NAME]"),
        "maintenance" => e("a table of maintenance tasks", "[maintenance.NAME]"),
        "pings" => e("a table of pings", "[pings.NAME]"),
        "targets" => e("a table of replication targets", "[targets.NAME]"),
        "monitors" => e("a table of monitors", "[monitors.NAME]"),
        "notifiers" => e("a table of notifiers", "[notifiers.NAME]"),
        "routes" => e("an array of tables", "[[routes]]"),
        "silences" => e("an array of tables", "[[silences]]"),
        "alerts" => e("a table", "[alerts]"),
        l if [
            "repositories.",
            "jobs.",
            "hosts.",
            "maintenance.",
            "pings.",
            "targets.",
            "monitors.",
            "notifiers.",
        ]
        .iter()
        .any(|p| l.starts_with(p)) =>
        {
            Some(("a table", format!("[{l}]")))
        }
        "rest" | "s3" => Some(("a table", format!("[repositories.NAME.{label}]"))),
        "hooks" => e("a table", "[jobs.NAME.hooks]"),
        "retention" => e(
            "a table",
            "[jobs.NAME.retention] (or [maintenance.NAME.retention])",
        ),
        "commands" => e("an array of tables", "[[jobs.NAME.commands]]"),
        "databases" => e("an array of tables", "[[jobs.NAME.databases]]"),
        "url" => e("a string", "url = \"/srv/backup/repo\""),
        "password_file" => e(
            "a string (a file path)",
            "password_file = \"/etc/bulwark/repo.pass\"",
        ),
        "token_file" => e(
            "a string (a file path)",
            "token_file = \"/etc/bulwark/agent.token\"",
        ),
        "ca_file" => e(
            "a string (a file path)",
            "ca_file = \"/etc/bulwark/hub-ca.pem\"",
        ),
        "state_dir" => e(
            "a string (a directory path)",
            "state_dir = \"/var/lib/bulwark\"",
        ),
        "hub_url" => e("a string (a URL)", "hub_url = \"https://hub.lan:8000\""),
        "schedule" => e("a string (a calendar expression)", "schedule = \"daily\""),
        "randomized_delay" => e("a string (a duration)", "randomized_delay = \"30m\""),
        "late_after" => e("a string (a duration)", "late_after = \"2h\""),
        "period" => e("a string (a duration)", "period = \"1d\""),
        "grace" => e("a string (a duration)", "grace = \"1h\""),
        "uuid" => e(
            "a string",
            "uuid = \"5b0e9b3c-7d1e-4f2a-9c3b-2a6f8e1d4c70\"",
        ),
        "type" => e("a string", "type = \"postgres\" (or \"mysql\", \"sqlite\")"),
        "database" => e("a string", "database = \"app\""),
        "user" => e("a string", "user = \"postgres\""),
        "port" => e("an integer (1-65535)", "port = 5432"),
        "format" => e("a string", "format = \"custom\""),
        "socket" => e(
            "a string (an absolute path)",
            "socket = \"/run/mysqld/mysqld.sock\"",
        ),
        "path" => e(
            "a string (an absolute path)",
            "path = \"/var/lib/app/db.sqlite\"",
        ),
        "options" => e(STRINGS, "options = [\"--no-owner\"]"),
        "fail_on_stderr" => e(STRINGS, "fail_on_stderr = [\"ERROR\"]"),
        "access_key_id_file" | "secret_access_key_file" => Some((
            "a string (a file path)",
            format!(
                "{label} = \"/etc/bulwark/s3-{}\"",
                &label[..label.len() - 5]
            ),
        )),
        "password_env" | "access_key_id_env" | "secret_access_key_env" => Some((
            "a string (a variable name)",
            format!("{label} = \"{}\"", label[..label.len() - 4].to_uppercase()),
        )),
        "username" => e("a string", "username = \"alice\""),
        "region" => e("a string", "region = \"us-east-1\""),
        "host" => e("a string", "host = \"nas\""),
        "repository" => e("a string", "repository = \"home\""),
        "tags" => e(STRINGS, "tags = [\"daily\"]"),
        "paths" => e(STRINGS, "paths = [\"/etc\", \"/var/lib\"]"),
        "exclude" => e(STRINGS, "exclude = [\"*.tmp\", \"/var/cache\"]"),
        "exclude_if_present" => e(STRINGS, "exclude_if_present = [\".nobackup\"]"),
        "before" | "after" | "on_failure" | "finally" => {
            Some((STRINGS, format!("{label} = [\"systemctl restart app\"]")))
        }
        "one_file_system" | "prune" | "persistent" | "check" | "offsite" | "propagate_deletes" => {
            Some(("a boolean (true or false)", format!("{label} = true")))
        }
        "medium" => e(
            "a string",
            "medium = \"cloud\" (or \"disk\", \"peer\", \"removable\")",
        ),
        "bandwidth" => e(
            "a size per second: a number of bytes or a string such as \"20 MiB\"",
            "bandwidth = \"20 MiB\"",
        ),
        "parallel" => e("an integer (1-64)", "parallel = 4"),
        "verify" => e("a string (a calendar expression)", "verify = \"weekly\""),
        "verify_sample" => e("a string (a percentage)", "verify_sample = \"5%\""),
        "delete_cap" => e("a string (a percentage)", "delete_cap = \"5%\""),
        "quarantine" => e("a string (a duration)", "quarantine = \"7d\""),
        "after_upload" => e("a string (a duration, or \"off\")", "after_upload = \"1m\""),
        "rpo" => e("a string (a duration)", "rpo = \"26h\""),
        "command" => e(
            "a string (run with sh -c) or an array of strings (program and arguments)",
            "command = [\"pg_dumpall\", \"-U\", \"postgres\"]",
        ),
        "filename" => e("a string", "filename = \"postgres/all.sql\""),
        "timeout" => e("a string (a duration)", "timeout = \"10m\""),
        "keep_within" => e("a string (a duration)", "keep_within = \"30d\""),
        l if l.starts_with("keep_") => Some(("a whole number of at least 1", format!("{l} = 7"))),
        _ => None,
    }
}

fn wrong_type(cx: &mut Ctx<'_>, span: Range<usize>, label: &str, found: &str) {
    wrong_type_as(cx, span, label, found, expectation(label));
}

fn wrong_type_as(
    cx: &mut Ctx<'_>,
    span: Range<usize>,
    label: &str,
    found: &str,
    expected: Option<(&'static str, String)>,
) {
    let (message, hint) = match expected {
        Some((expected, example)) => (
            format!("wrong type for `{label}`: expected {expected}, found {found}"),
            Some(format!("e.g. {example}")),
        ),
        None => (format!("wrong type for `{label}`: found {found}"), None),
    };
    cx.err(span, message, hint);
}

/// What a key holds, and an example of it.
type Expectation = fn(&str) -> Option<(&'static str, String)>;

/// A key that `T` rejected; `expect` is `T`'s table of what its keys hold.
fn report(
    cx: &mut Ctx<'_>,
    e: &toml::de::Error,
    key: &str,
    value: &Spanned<DeValue<'_>>,
    expect: Expectation,
) {
    let message = e.message().trim();
    let span = e.span().unwrap_or_else(|| value.span());
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, rest) = rest.split_once('`').unwrap_or((rest, ""));
        let valid: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        return unknown_key(cx, span, field, &valid);
    }
    let found = match value.get_ref() {
        _ if span != value.span() => match found_in(message) {
            "a value of another type" => "an array with an element of the wrong type",
            k => return element_type(cx, span, key, k, expect(key)),
        },
        DeValue::Array(_) if expect(key).is_some_and(|(e, _)| e.contains("array of strings")) => {
            "an array that holds something other than strings"
        }
        v => kind(v),
    };
    wrong_type_as(cx, span, key, found, expect(key));
}

/// An element of an array has the wrong type.
fn element_type(
    cx: &mut Ctx<'_>,
    span: Range<usize>,
    key: &str,
    found: &str,
    expected: Option<(&'static str, String)>,
) {
    let (expected, example) = expected.unwrap_or(("another type", String::new()));
    let hint = (!example.is_empty()).then(|| format!("e.g. {example}"));
    cx.err(
        span,
        format!("wrong type in `{key}`: expected {expected}, but this element is {found}"),
        hint,
    );
}

pub(crate) fn unknown_key(cx: &mut Ctx<'_>, span: Range<usize>, key: &str, valid: &[&str]) {
    let (file, env) = (format!("{key}_file"), format!("{key}_env"));
    let hint = match closest(key, valid) {
        // `password = "…"`: a secret written inline (its value is never echoed)
        _ if valid.contains(&file.as_str()) && valid.contains(&env.as_str()) => format!(
            "secrets are never written in bulwark.toml: put it in a file (mode 0600) and set `{file}`, or name an environment variable that holds it with `{env}`"
        ),
        Some(best) => format!("did you mean `{best}`?"),
        None if !valid.is_empty() => format!("valid keys here: {}", valid.join(", ")),
        None => "remove it".to_string(),
    };
    cx.err(span, format!("unknown key `{key}`"), Some(hint));
}

/// The candidate closest to `word`, if it is close enough to be a typo
/// (a small edit distance, or the only candidate that starts with `word`):
/// what "did you mean …?" hints suggest.
///
/// ```
/// assert_eq!(bulwark_config::closest("phon", &["phone", "mail"]), Some("phone"));
/// assert_eq!(bulwark_config::closest("xyz", &["phone", "mail"]), None);
/// ```
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let (d, best) = candidates.iter().map(|c| (distance(word, c), *c)).min()?;
    let len = word.chars().count();
    if d <= 3 && d < len && d * 3 <= len + 3 {
        return Some(best);
    }
    // `user` for `username`
    let mut prefixed = candidates
        .iter()
        .filter(|c| len >= 3 && c.starts_with(word));
    match (prefixed.next(), prefixed.next()) {
        (Some(only), None) => Some(*only),
        _ => None,
    }
}

/// Edit distance (insertions, deletions, substitutions and swaps of
/// neighbouring characters each count one).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn syntax_error(cx: &mut Ctx<'_>, e: &toml::de::Error) {
    let span = e.span().unwrap_or(0..0);
    let (mut message, hint) = explain_syntax(e.message());
    if message == "duplicate key" {
        if let Some(key) = cx
            .text
            .get(span.clone())
            .filter(|k| !k.contains('\n') && k.len() <= 60)
        {
            message = format!("duplicate key `{key}`");
        }
    }
    let hint = hint.or_else(|| match message.as_str() {
        m if m.starts_with("duplicate key") => {
            Some("each key may appear only once in a table; remove one".into())
        }
        m if m.starts_with("invalid table header") && m.contains("duplicate") => {
            Some("each table may appear only once; merge the two".into())
        }
        m if m.contains("missing value") || m.contains("string values must be quoted") => {
            Some("write strings in double quotes, e.g. key = \"value\"".into())
        }
        _ => None,
    });
    cx.err(span, message, hint);
}

fn explain_syntax(message: &str) -> (String, Option<String>) {
    let message = message.trim();
    (message.lines().next().unwrap_or(message).to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("pathes", "paths"), 1);
        assert_eq!(distance("hots", "host"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(closest("hots", &["hooks", "host"]), Some("host"));
        assert_eq!(
            closest("colour", &["settings", "jobs", "repositories"]),
            None
        );
        assert_eq!(closest("x", &["s3"]), None);
        assert_eq!(
            closest("user", &["username", "password_file"]),
            Some("username")
        );
        assert_eq!(closest("keep", &["keep_last", "keep_daily"]), None);
    }
}
