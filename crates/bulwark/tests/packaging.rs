//! The shipped Prometheus rules and Grafana dashboard (`packaging/`), proven
//! against promtool and a real hub:
//!
//! - `promtool check rules` and `promtool test rules` (the unit tests make
//!   every alert fire, and some must stay quiet);
//! - `promtool check metrics` on the live `/metrics` of a `bulwark hub`,
//!   read with the bearer token as packaging/README.md configures Prometheus;
//! - every family of the live exposition is registered in
//!   `crates/hub/src/metrics.rs` with the same type, and every sample name is
//!   one the name check below accepts (prometheus-client leaves families
//!   without samples out, so only those present are compared);
//! - every `bulwark_*` / `process_*` name in the rules, their unit tests and
//!   the dashboard's queries is a series the hub exports (counters as
//!   `_total`, histograms as `_bucket`/`_sum`/`_count`);
//! - every dashboard query parses as PromQL (`promtool check rules` on a
//!   scratch file of recording rules), and the dashboard's structure (data
//!   source variable, unique panel ids, ...);
//! - the `prometheus.yml` of packaging/README.md passes `promtool check config`.
//!
//! promtool comes from Debian's `prometheus` package (scripts/test.sh installs
//! it). Without it these tests fail; they never skip.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;
use serde_json::Value;

const RULES: &str = "packaging/prometheus/bulwark-rules.yml";
const RULES_TEST: &str = "packaging/prometheus/bulwark-rules.test.yml";
const DASHBOARD: &str = "packaging/grafana/bulwark.json";
const METRICS_RS: &str = "crates/hub/src/metrics.rs";

/// The alerts the rules file must keep (more may be added).
const REQUIRED_ALERTS: &[&str] = &[
    "BulwarkHubDown",
    "BulwarkMonitorDown",
    "BulwarkBackupStale",
    "BulwarkJobFailed",
    "BulwarkJobLate",
    "BulwarkCertificateExpiring",
    "BulwarkReplicationLag",
    "BulwarkRPOExceeded",
    "Bulwark321Violation",
    "BulwarkHubDiskLow",
    "BulwarkHubConnectivityLost",
    "BulwarkNotificationsStuck",
    "BulwarkAlertsOpen",
];

/// The dashboard has at least this many panels (rows not counted).
const MIN_PANELS: usize = 25;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// The promtool binary. Panics (never skips) when it is not installed.
fn promtool() -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("promtool"))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    found.unwrap_or_else(|| {
        panic!(
            "promtool not found in PATH: it checks the shipped Prometheus rules and the hub's /metrics. \
             Install Debian's `prometheus` package (apt-get install prometheus; scripts/test.sh does)"
        )
    })
}

fn promtool_run(args: &[&str]) -> Out {
    let mut c = Command::new(promtool());
    c.args(args).current_dir(root());
    run(&mut c, Duration::from_secs(60))
}

// ---------------------------------------------------------------- promtool

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let out = promtool_run(&["check", "rules", RULES]);
    assert_eq!(
        out.code, 0,
        "promtool check rules {RULES} failed:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("SUCCESS"),
        "promtool check rules {RULES}:\n{}{}",
        out.stdout,
        out.stderr
    );

    let out = promtool_run(&["test", "rules", RULES_TEST]);
    assert_eq!(
        out.code, 0,
        "promtool test rules {RULES_TEST} failed:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("SUCCESS"),
        "promtool test rules {RULES_TEST}:\n{}{}",
        out.stdout,
        out.stderr
    );
}

/// The `prometheus.yml` of packaging/README.md (with its paths pointed at
/// this checkout and a scratch token) is a valid Prometheus config that
/// loads the rules.
#[test]
fn readme_prometheus_config_is_valid() {
    let promtool = promtool();
    let readme = read("packaging/README.md");
    let yaml = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .unwrap_or_else(|| panic!("packaging/README.md: no ```yaml block"));
    assert!(
        yaml.contains("job_name: bulwark"),
        "packaging/README.md: the scrape job must be named bulwark:\n{yaml}"
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "x\n").unwrap();
    let config = yaml
        .replace(
            "/etc/prometheus/rules/bulwark-rules.yml",
            root().join(RULES).to_str().unwrap(),
        )
        .replace(
            "/etc/prometheus/bulwark-metrics.token",
            token.to_str().unwrap(),
        );
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, &config).unwrap();
    let out = run(
        Command::new(&promtool).args(["check", "config"]).arg(&file),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.code, 0,
        "packaging/README.md: promtool check config fails on its prometheus.yml:\n{}{}\n{config}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("1 rule files found"),
        "the README's config loads no rules:\n{}",
        out.stdout
    );
}

#[test]
fn every_alert_is_labelled_annotated_and_unit_tested() {
    let rules = read(RULES);
    let tests = read(RULES_TEST);
    let blocks = alert_blocks(&rules);
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    for want in REQUIRED_ALERTS {
        assert!(
            names.contains(want),
            "{RULES}: alert {want} is missing (have: {names:?})"
        );
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (name, block) in &blocks {
        if !seen.insert(name.clone()) {
            problems.push(format!("alert {name} is defined twice"));
        }
        let sev = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .map(str::trim);
        match sev {
            Some("critical" | "warning" | "info") => {}
            other => problems.push(format!(
                "alert {name}: severity label must be critical, warning or info, is {other:?}"
            )),
        }
        for key in ["summary:", "description:"] {
            if !block.lines().any(|l| l.trim().starts_with(key)) {
                problems.push(format!("alert {name}: no {key} annotation"));
            }
        }
        if !block.contains("$labels") {
            problems.push(format!(
                "alert {name}: the annotations name nothing ($labels)"
            ));
        }
        let tested = tests
            .lines()
            .any(|l| l.trim().strip_prefix("alertname:").map(str::trim) == Some(name.as_str()));
        if !tested {
            problems.push(format!("alert {name} has no case in {RULES_TEST}"));
        }
    }
    assert!(problems.is_empty(), "{RULES}:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------- the live hub

/// A running `bulwark hub`; killed when dropped.
struct Hub {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Hub {
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let log = dir.join("hub.log");
        let child = Command::new(BIN)
            .args(["hub", "--listen", &format!("127.0.0.1:{port}"), "--data"])
            .arg(&data)
            .args(["--scrub-interval", "0"])
            .args(extra)
            .env("BULWARK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut hub = Self { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = hub.child.try_wait().unwrap() {
                panic!("bulwark hub exited early ({status}):\n{}", hub.log());
            }
            assert!(
                Instant::now() < deadline,
                "bulwark hub did not start:\n{}",
                hub.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        hub
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get_metrics(&self, token: Option<&str>) -> (u16, String) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut req = reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{}/metrics", self.port))
            .timeout(Duration::from_secs(20));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("GET /metrics: {e}\nhub log:\n{}", self.log()));
        let status = resp.status().as_u16();
        (status, resp.text().unwrap())
    }
}

#[test]
fn live_metrics_pass_promtool_and_match_the_registry() {
    let promtool = promtool();
    let dir = tempfile::tempdir().unwrap();
    // as packaging/README.md scrapes it: a bearer token, no other credentials
    let token = "packaging-test-token-3b5e0f";
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    // a hub with a user (without --no-auth it needs an htpasswd file)
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let mut passwd = Command::new(BIN)
        .args(["hub", "passwd"])
        .arg(dir.path().join("data/.htpasswd"))
        .arg("alice")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    passwd
        .stdin
        .take()
        .unwrap()
        .write_all(b"pw-alice\n")
        .unwrap();
    Out::from(passwd.wait_with_output().unwrap()).ok();
    let hub = Hub::start(
        dir.path(),
        &["--metrics-token-file", token_file.to_str().unwrap()],
    );

    // a repository with a file, written and read: request, latency and
    // usage families get samples
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{}/alice/laptop", hub.port);
    for (what, req) in [
        ("create", http.post(format!("{base}/?create=true"))),
        (
            "upload config",
            http.post(format!("{base}/config"))
                .body("not really a config"),
        ),
        ("read config", http.get(format!("{base}/config"))),
    ] {
        let resp = req
            .basic_auth("alice", Some("pw-alice"))
            .timeout(Duration::from_secs(20))
            .send()
            .unwrap();
        assert!(
            resp.status().is_success(),
            "{what}: {}\nhub log:\n{}",
            resp.status(),
            hub.log()
        );
    }

    let (status, _) = hub.get_metrics(None);
    assert_eq!(
        status, 401,
        "GET /metrics without credentials must be refused"
    );
    let (status, text) = hub.get_metrics(Some(token));
    assert_eq!(
        status,
        200,
        "GET /metrics with the metrics token: {text}\nhub log:\n{}",
        hub.log()
    );

    // promtool check metrics reads the exposition on stdin
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let (code, lint) = (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    if !lint.trim().is_empty() {
        println!("promtool check metrics (exit {code}):\n{lint}");
    }
    // exit 1: the exposition does not parse (or promtool failed); exit 3: only
    // lint findings, which must not exist either (see lint_findings)
    assert!(
        code == 0 || code == 3,
        "promtool check metrics failed (exit {code}) on the hub's /metrics:\n{lint}\n/metrics:\n{text}"
    );
    assert!(
        !lint.contains("error while linting"),
        "promtool could not parse the hub's /metrics:\n{lint}\n/metrics:\n{text}"
    );
    let registered = registered_metrics();
    let findings = lint_findings(&lint, &registered);
    assert!(
        findings.is_empty(),
        "promtool check metrics: lint findings on the hub's /metrics:\n  {}",
        findings.join("\n  ")
    );

    // prometheus-client (0.24) leaves out families without samples (a
    // Family nobody has touched yet: e.g. the monitor and job families on a
    // hub without monitors or agents), as the Go client does. So: every
    // family that IS in /metrics must be registered with the same type, the
    // families the hub always sets (and those the requests above touched)
    // must be there, and every sample's name must be one the name check
    // below accepts (counter `_total`, histogram `_bucket`/`_sum`/`_count`).
    let live = live_families(&text);
    let series = exported_series(&registered);
    let mut problems = Vec::new();
    for (name, kind) in &live {
        match registered.get(name) {
            None => problems.push(format!(
                "{name} ({kind}) is in /metrics but not registered in {METRICS_RS} (the name check would miss it)"
            )),
            Some(k) if k != kind => {
                problems.push(format!("{name}: {METRICS_RS} registers a {k}, /metrics says {kind}"))
            }
            Some(_) => {}
        }
    }
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name = l.split(['{', ' ']).next().unwrap_or_default();
        if !series.contains(name) {
            problems.push(format!(
                "sample {name} of /metrics is not a series name derived from {METRICS_RS}: {l}"
            ));
        }
    }
    for (name, kind) in [
        ("bulwark_hub_store_bytes", "gauge"),
        ("bulwark_hub_connectivity_up", "gauge"),
        ("bulwark_hub_disk_free_bytes", "gauge"),
        ("bulwark_hub_disk_size_bytes", "gauge"),
        ("bulwark_notifications_pending", "gauge"),
        ("process_resident_memory_bytes", "gauge"),
        ("bulwark_hub_repo_bytes", "gauge"),
        ("bulwark_hub_requests", "counter"),
        ("bulwark_hub_request_duration_seconds", "histogram"),
    ] {
        if live.get(name).map(String::as_str) != Some(kind) {
            problems.push(format!("{name} ({kind}) is missing from /metrics"));
        }
    }
    let absent: Vec<&str> = registered
        .keys()
        .filter(|n| !live.contains_key(*n))
        .map(String::as_str)
        .collect();
    println!(
        "{} of {} registered families in /metrics; without samples yet (left out): {absent:?}",
        live.len(),
        registered.len()
    );
    assert!(
        problems.is_empty(),
        "/metrics vs {METRICS_RS}:\n  {}\n/metrics:\n{text}",
        problems.join("\n  ")
    );
}

/// promtool's lint findings (one `NAME problem` line each), but one:
/// the hub serves OpenMetrics (`application/openmetrics-text`), where a
/// counter's `# HELP`/`# TYPE` name the family (`bulwark_hub_requests`) and
/// its samples add `_total`. promtool 2.x `check metrics` parses only the
/// classic text format, so it sees those samples as a family of their own
/// without help text. Prometheus picks its parser by the Content-Type and
/// reads them right, so `COUNTER_total no help text` for a registered
/// counter is not a finding; anything else is.
fn lint_findings(out: &str, registered: &BTreeMap<String, String>) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter(|l| {
            let openmetrics_counter = l
                .strip_suffix(" no help text")
                .and_then(|n| n.strip_suffix("_total"))
                .is_some_and(|family| registered.get(family).is_some_and(|k| k == "counter"));
            !openmetrics_counter
        })
        .map(String::from)
        .collect()
}

/// `# TYPE name kind` lines of a text exposition.
fn live_families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, k)| (n.to_string(), k.trim().to_string()))
        .collect()
}

// ---------------------------------------------------------------- metric names

/// Every family registered in crates/hub/src/metrics.rs with its type
/// (`counter`, `gauge`, `histogram`), from the `r.register("NAME", "help",
/// m.FIELD.clone())` calls and the field types of `struct Metrics`.
fn registered_metrics() -> BTreeMap<String, String> {
    let src = read(METRICS_RS);
    let body = src
        .split_once("pub(crate) struct Metrics {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(b, _)| b)
        .unwrap_or_else(|| panic!("{METRICS_RS}: `pub(crate) struct Metrics {{ ... }}` not found"));
    let mut field_types = BTreeMap::new();
    for line in body.lines() {
        let l = line.trim().trim_start_matches("pub(crate) ");
        if let Some((field, ty)) = l.split_once(':') {
            field_types.insert(
                field.trim().to_string(),
                ty.trim().trim_end_matches(',').to_string(),
            );
        }
    }
    let mut out = BTreeMap::new();
    for call in src.split("r.register(").skip(1) {
        let name = call
            .split('"')
            .nth(1)
            .unwrap_or_else(|| panic!("{METRICS_RS}: register call without a name: {call}"));
        // after the name and the help text: `m.FIELD.clone()`
        let after_help = call.splitn(5, '"').nth(4).unwrap_or_default();
        let field = after_help
            .split_once("m.")
            .and_then(|(_, r)| r.split_once(".clone()"))
            .map(|(f, _)| f.trim())
            .unwrap_or_else(|| {
                panic!("{METRICS_RS}: register(\"{name}\", ..) without `m.FIELD.clone()`")
            });
        let ty = field_types.get(field).unwrap_or_else(|| {
            panic!("{METRICS_RS}: field {field} (metric {name}) not in struct Metrics")
        });
        let kind = if ty.contains("Histogram") {
            "histogram"
        } else if ty.contains("Counter") {
            "counter"
        } else if ty.contains("Gauge") {
            "gauge"
        } else {
            panic!("{METRICS_RS}: metric {name}: unknown type {ty}")
        };
        assert!(
            out.insert(name.to_string(), kind.to_string()).is_none(),
            "{METRICS_RS}: {name} registered twice"
        );
    }
    assert!(
        out.len() >= 40,
        "{METRICS_RS}: only {} register calls found: is the parser out of date?",
        out.len()
    );
    out
}

/// The series names Prometheus stores for these families.
fn exported_series(families: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, kind) in families {
        match kind.as_str() {
            "counter" => {
                out.insert(format!("{name}_total"));
            }
            "histogram" => {
                for s in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{s}"));
                }
            }
            _ => {
                out.insert(name.clone());
            }
        }
    }
    out
}

/// Metric-like identifiers of a PromQL expression (or a Grafana
/// `label_values(...)` query) that belong to Bulwark: `bulwark_*` and
/// `process_*`. String literals, `$variables` and numbers/durations are
/// skipped.
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '$' {
            // $var, ${var}, $__rate_interval
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
            }
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_digit() || c == '.' {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word.starts_with("bulwark_") || word.starts_with("process_") {
                out.push(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Problems with the metric names of `exprs` (`(where, expr)` pairs from
/// `file`): each unknown name, with a hint for a counter or histogram used
/// by its family name.
fn unknown_metrics(
    file: &str,
    exprs: &[(String, String)],
    families: &BTreeMap<String, String>,
) -> Vec<String> {
    let series = exported_series(families);
    let mut problems = Vec::new();
    for (place, expr) in exprs {
        for name in metric_names(expr) {
            if series.contains(&name) {
                continue;
            }
            let hint = match families.get(&name).map(String::as_str) {
                Some("counter") => format!(" (a counter: Prometheus stores it as {name}_total)"),
                Some("histogram") => format!(" (a histogram: use {name}_bucket, _sum or _count)"),
                _ => String::new(),
            };
            problems.push(format!(
                "{file}: {place}: metric {name} is not exported by the hub{hint}\n      in: {expr}"
            ));
        }
    }
    problems
}

/// `(alert name, its block of text)` for every `- alert:` of a rules file.
fn alert_blocks(rules: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in rules.lines() {
        let t = line.trim_start();
        if let Some(name) = t.strip_prefix("- alert:") {
            out.push((name.trim().to_string(), String::new()));
        } else if t.starts_with("- name:") || t.starts_with("- record:") {
            out.push((String::new(), String::new()));
        } else if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out.retain(|(n, _)| !n.is_empty());
    out
}

/// Every `expr:` of a rules file (plain, quoted or a `|`/`>` block), named
/// by its line number. Textual: no YAML parser among the dev-dependencies.
fn rule_exprs(rules: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = rules.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if let Some(v) = t.strip_prefix("expr:") {
            let v = v.trim();
            let mut expr = String::new();
            if v.starts_with('|') || v.starts_with('>') {
                let mut j = i + 1;
                while j < lines.len() {
                    let l = lines[j];
                    let lt = l.trim_start();
                    if !lt.is_empty() && l.len() - lt.len() <= indent {
                        break;
                    }
                    expr.push_str(lt);
                    expr.push(' ');
                    j += 1;
                }
            } else {
                expr = unquote(v);
            }
            out.push((format!("line {}", i + 1), expr.trim().to_string()));
        }
        i += 1;
    }
    out
}

/// `series:` names of the unit tests' input series.
fn test_series(tests: &str) -> Vec<(String, String)> {
    tests
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            l.trim_start().strip_prefix("- series:").map(|v| (format!("line {}", i + 1), unquote(v.trim())))
        })
        // only the metric name: label values are strings in a series, not PromQL
        .map(|(p, s)| (p, s.split('{').next().unwrap_or_default().to_string()))
        .collect()
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1].to_string();
        }
    }
    v.to_string()
}

/// Every panel, rows' nested panels included.
fn all_panels(dash: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for p in panels.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    out
}

/// Every query of the dashboard: panel targets' `expr` (rows' nested panels
/// included) and the templating variables' queries.
fn dashboard_exprs(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in all_panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(e) = t["expr"].as_str() {
                out.push((
                    format!(
                        "panel {} \"{}\" target {}",
                        p["id"],
                        p["title"].as_str().unwrap_or(""),
                        t["refId"].as_str().unwrap_or("?")
                    ),
                    e.to_string(),
                ));
            }
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap_or("?");
        let query = v["query"].as_str().or_else(|| v["query"]["query"].as_str());
        for (what, q) in [("query", query), ("definition", v["definition"].as_str())] {
            if let Some(q) = q {
                out.push((format!("variable {name} {what}"), q.to_string()));
            }
        }
    }
    out
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

#[test]
fn rules_and_dashboard_use_only_exported_metrics() {
    let families = registered_metrics();
    let mut problems = Vec::new();

    let rules = rule_exprs(&read(RULES));
    assert!(
        rules.len() >= REQUIRED_ALERTS.len(),
        "{RULES}: only {} `expr:` found",
        rules.len()
    );
    problems.extend(unknown_metrics(RULES, &rules, &families));
    problems.extend(unknown_metrics(
        RULES_TEST,
        &test_series(&read(RULES_TEST)),
        &families,
    ));

    let dash = dashboard();
    let exprs = dashboard_exprs(&dash);
    assert!(
        exprs.len() >= MIN_PANELS,
        "{DASHBOARD}: only {} queries found",
        exprs.len()
    );
    problems.extend(unknown_metrics(DASHBOARD, &exprs, &families));

    assert!(
        problems.is_empty(),
        "metric names the hub does not export:\n  {}",
        problems.join("\n  ")
    );

    // and the metrics the brief names are all used somewhere
    let used: BTreeSet<String> = rules
        .iter()
        .chain(&exprs)
        .flat_map(|(_, e)| metric_names(e))
        .collect();
    for want in [
        "bulwark_monitor_up",
        "bulwark_monitor_latency_seconds",
        "bulwark_monitor_cert_days_left",
        "bulwark_job_last_success_timestamp_seconds",
        "bulwark_job_last_run_duration_seconds",
        "bulwark_job_last_run_bytes_added",
        "bulwark_job_last_run_files",
        "bulwark_job_last_run_success",
        "bulwark_job_late",
        "bulwark_replication_lag_seconds",
        "bulwark_job_copies",
        "bulwark_job_media",
        "bulwark_job_offsite_copies",
        "bulwark_job_effective_rpo_seconds",
        "bulwark_job_rpo_seconds",
        "bulwark_hub_store_bytes",
        "bulwark_hub_disk_free_bytes",
        "bulwark_hub_disk_size_bytes",
        "bulwark_hub_requests_total",
        "bulwark_alerts_open",
        "bulwark_hub_connectivity_up",
        "bulwark_notifications_pending",
        "bulwark_notifications_failed_total",
        "process_resident_memory_bytes",
    ] {
        assert!(
            used.contains(want),
            "{want} is used neither in {RULES} nor in {DASHBOARD}"
        );
    }
}

#[test]
fn the_name_check_catches_unknown_metrics() {
    let families = registered_metrics();
    let check = |expr: &str| unknown_metrics("x", &[("here".into(), expr.into())], &families);
    // strings, $variables and durations are not names
    assert_eq!(
        metric_names(
            r#"sum by (code) (rate(bulwark_hub_requests_total{instance=~"$instance", x="bulwark_nope"}[$__rate_interval])) > 5m"#
        ),
        ["bulwark_hub_requests_total"]
    );
    assert_eq!(
        metric_names("label_values(bulwark_hub_store_bytes, instance) ${DS_PROMETHEUS} 1.5e3"),
        ["bulwark_hub_store_bytes"]
    );
    assert!(
        check("rate(bulwark_hub_requests_total[5m]) + process_resident_memory_bytes").is_empty()
    );
    assert!(check(
        "histogram_quantile(0.9, rate(bulwark_hub_request_duration_seconds_bucket[5m]))"
    )
    .is_empty());
    // a bogus name, a counter without _total, a histogram by its family name
    let p = check("bulwark_job_bogus_seconds > 0");
    assert!(
        p.len() == 1 && p[0].contains("bulwark_job_bogus_seconds"),
        "{p:?}"
    );
    let p = check("rate(bulwark_hub_requests[5m])");
    assert!(p.len() == 1 && p[0].contains("_total"), "{p:?}");
    let p = check("bulwark_hub_request_duration_seconds");
    assert!(p.len() == 1 && p[0].contains("histogram"), "{p:?}");
    // promtool's lint: only an OpenMetrics counter's `_total` samples are excused
    let lint =
        "bulwark_hub_requests_total no help text\nbulwark_hub_repo_bytes_total no help text\n\
                bulwark_x counter metrics should have \"_total\" suffix\n";
    assert_eq!(
        lint_findings(lint, &families),
        [
            "bulwark_hub_repo_bytes_total no help text",
            "bulwark_x counter metrics should have \"_total\" suffix"
        ]
    );
    // the block form of `expr:` in a rules file
    let exprs = rule_exprs("      - alert: A\n        expr: |\n          bulwark_x\n          > 1\n        for: 5m\n      - alert: B\n        expr: 'bulwark_y == 0'\n");
    assert_eq!(
        exprs.iter().map(|(_, e)| e.as_str()).collect::<Vec<_>>(),
        ["bulwark_x > 1", "bulwark_y == 0"]
    );
}

// ---------------------------------------------------------------- the dashboard

/// Every panel query is valid PromQL: the queries, with Grafana's variables
/// filled in, become recording rules of a scratch rules file that
/// `promtool check rules` parses.
#[test]
fn dashboard_queries_are_valid_promql() {
    let promtool = promtool();
    let dash = dashboard();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for p in all_panels(&dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let Some(expr) = t["expr"].as_str() else {
                continue;
            };
            let expr = fill_variables(expr);
            let record = format!(
                "bulwark_dashboard:panel_{}_{}",
                p["id"],
                t["refId"].as_str().unwrap_or("X")
            );
            rules.push_str(&format!(
                "      - record: {record}\n        expr: '{}'\n",
                expr.replace('\'', "''")
            ));
            n += 1;
        }
    }
    assert!(n >= MIN_PANELS, "{DASHBOARD}: only {n} panel queries");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = run(
        Command::new(&promtool).args(["check", "rules"]).arg(&file),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.code, 0,
        "{DASHBOARD}: a panel query is not valid PromQL (promtool check rules on the queries):\n{}{}\n{rules}",
        out.stdout, out.stderr
    );
}

/// A query with Grafana's variables replaced: intervals by `5m`, every
/// other `$var` / `${var}` (used in `=~` matchers here) by `.*`.
fn fill_variables(expr: &str) -> String {
    let mut out = expr.to_string();
    for v in ["$__rate_interval", "$__interval", "$__range"] {
        out = out.replace(v, "5m");
    }
    for v in dollar_vars(&out) {
        out = out
            .replace(&format!("${{{v}}}"), ".*")
            .replace(&format!("${v}"), ".*");
    }
    out
}

#[test]
fn dashboard_is_importable() {
    let dash = dashboard();
    assert_eq!(dash["uid"], "bulwark", "{DASHBOARD}: uid");
    assert!(
        !dash["title"].as_str().unwrap_or("").is_empty(),
        "{DASHBOARD}: no title"
    );
    let schema = dash["schemaVersion"].as_u64().unwrap_or(0);
    assert!(
        (36..=41).contains(&schema),
        "{DASHBOARD}: schemaVersion {schema}, expected about 39"
    );

    // the data source is a variable of type datasource for Prometheus, and
    // every panel and query uses it
    let vars = dash["templating"]["list"]
        .as_array()
        .unwrap_or_else(|| panic!("{DASHBOARD}: no templating.list"));
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .unwrap_or_else(|| panic!("{DASHBOARD}: no variable of type datasource"));
    assert_eq!(
        ds["query"], "prometheus",
        "{DASHBOARD}: the datasource variable must be of Prometheus"
    );
    let ds_ref = format!("${{{}}}", ds["name"].as_str().unwrap());
    let mut var_names: BTreeSet<&str> = BTreeSet::new();
    for v in vars {
        let n = v["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{DASHBOARD}: variable without a name: {v}"));
        assert!(var_names.insert(n), "{DASHBOARD}: variable {n} twice");
        if v["type"] == "query" {
            assert_eq!(
                v["datasource"]["uid"],
                ds_ref.as_str(),
                "{DASHBOARD}: variable {n} must use {ds_ref}"
            );
        }
    }

    let panels = all_panels(&dash);
    let mut ids = BTreeSet::new();
    let mut problems = Vec::new();
    let mut count = 0;
    for p in &panels {
        let id = p["id"].as_u64();
        let title = p["title"].as_str().unwrap_or("");
        match id {
            Some(id) if ids.insert(id) => {}
            Some(id) => problems.push(format!("panel id {id} (\"{title}\") is not unique")),
            None => problems.push(format!("panel \"{title}\" has no numeric id")),
        }
        let g = &p["gridPos"];
        let (x, w, h) = (g["x"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
        match (x, w, h) {
            (Some(x), Some(w), Some(h)) if w > 0 && h > 0 && x + w <= 24 && g["y"].is_u64() => {}
            _ => problems.push(format!("panel \"{title}\": bad gridPos {g}")),
        }
        if p["type"] == "row" {
            continue;
        }
        count += 1;
        if title.is_empty() {
            problems.push(format!("panel {id:?} has no title"));
        }
        if p["datasource"]["uid"] != ds_ref.as_str() {
            problems.push(format!(
                "panel \"{title}\": datasource {} is not {ds_ref}",
                p["datasource"]
            ));
        }
        let targets = p["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("panel \"{title}\" has no query"));
        }
        let mut refs = BTreeSet::new();
        for t in targets {
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("panel \"{title}\": a target without expr"));
            }
            if !refs.insert(t["refId"].as_str().unwrap_or("")) {
                problems.push(format!("panel \"{title}\": refId {} twice", t["refId"]));
            }
            if t.get("datasource")
                .is_some_and(|d| d["uid"] != ds_ref.as_str())
            {
                problems.push(format!(
                    "panel \"{title}\": a target's datasource is not {ds_ref}"
                ));
            }
            // every $variable a query uses exists (or is one of Grafana's own)
            for v in dollar_vars(t["expr"].as_str().unwrap_or("")) {
                if !v.starts_with("__") && !var_names.contains(v.as_str()) {
                    problems.push(format!(
                        "panel \"{title}\": ${v} is not a variable of the dashboard"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{DASHBOARD}:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        count >= MIN_PANELS,
        "{DASHBOARD}: {count} panels, expected at least {MIN_PANELS}"
    );
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for want in ["Monitors", "Backups", "Replication", "Hub"] {
        assert!(
            rows.iter().any(|r| r.starts_with(want)),
            "{DASHBOARD}: no row \"{want}…\" (rows: {rows:?})"
        );
    }
}

/// `$name` and `${name}` references of a query.
fn dollar_vars(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(pos) = rest.find('$') {
        rest = &rest[pos + 1..];
        let braced = rest.starts_with('{');
        let s = if braced { &rest[1..] } else { rest };
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        if end > 0 {
            out.push(s[..end].to_string());
        }
    }
    out
}
