//! Running one job: each run is a child `bulwark … run --job NAME --json`
//! (or `maintenance NAME --json`) process.
//!
//! A child per run keeps the agent small and long-lived: a backup's memory is
//! returned when it ends, a crash in one job can't take the agent (or other
//! jobs) down, and hooks, database dumps, locks and Ctrl-C behave exactly as
//! with `bulwark run` by hand. The agent reads the child's JSON report.

use std::{future::Future, path::PathBuf, pin::Pin, process::Stdio, time::Duration};

use bulwark_api::{
    RunKind, RunStats, RunStatus, SkippedFile, SnapshotSummary, Trigger, MAX_ERRORS_LISTED,
    MAX_SKIPPED_LISTED,
};
use serde_json::Value;
use tokio::{io::AsyncReadExt, sync::watch};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// Job or maintenance name.
    pub job: String,
    /// Which of the two.
    pub kind: RunKind,
    /// Why.
    pub trigger: Trigger,
    /// The hub command it answers.
    pub command_id: Option<i64>,
    /// The repository's name in the configuration (for the snapshot summary).
    pub repository: String,
}

/// What a run produced (the report minus who/when).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// Outcome.
    pub status: RunStatus,
    /// The child's exit status.
    pub exit_code: Option<i32>,
    /// The snapshot that landed.
    pub snapshot: Option<SnapshotSummary>,
    /// Counters.
    pub stats: RunStats,
    /// Unreadable files (at most `MAX_SKIPPED_LISTED`).
    pub skipped: Vec<SkippedFile>,
    /// All unreadable files.
    pub skipped_count: u64,
    /// Errors, one line each.
    pub errors: Vec<String>,
}

impl RunOutcome {
    /// A failed run with one error.
    pub fn failed(error: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Failed,
            exit_code: None,
            snapshot: None,
            stats: RunStats::default(),
            skipped: vec![],
            skipped_count: 0,
            errors: vec![error.into()],
        }
    }
}

/// Runs jobs. `stop` turns true when the agent shuts down: stop the run
/// (gracefully: its hooks still run) and return.
pub trait Executor: Send + Sync + 'static {
    /// Runs one job to the end.
    fn execute(
        &self,
        req: RunRequest,
        stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = RunOutcome> + Send>>;
}

/// Runs jobs as child processes of the `bulwark` binary.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    /// The `bulwark` binary.
    pub program: PathBuf,
    /// The configuration file the child reads (the agent's own, or the one
    /// fetched from the hub into the state directory).
    pub config: PathBuf,
    /// Arguments before the subcommand (e.g. `--cache-dir DIR`).
    pub extra_args: Vec<String>,
    /// How long a stopped child may take to run its cleanup hooks.
    pub stop_grace: Duration,
}

impl Executor for ProcessExecutor {
    fn execute(
        &self,
        req: RunRequest,
        mut stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = RunOutcome> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            let config = this.config.clone();
            let mut cmd = tokio::process::Command::new(&this.program);
            cmd.args(&this.extra_args)
                .arg("--config")
                .arg(&config)
                .arg("--json")
                .arg("--quiet");
            match req.kind {
                RunKind::Backup => cmd.arg("--job").arg(&req.job).arg("run"),
                RunKind::Maintenance => cmd.arg("maintenance").arg(&req.job),
            };
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            let mut child = match cmd.spawn() {
                Ok(c) => c,
                Err(e) => {
                    return RunOutcome::failed(format!(
                        "cannot start {}: {e}",
                        this.program.display()
                    ))
                }
            };
            let mut stdout = child.stdout.take();
            let reader = tokio::spawn(async move {
                let mut buf = Vec::new();
                if let Some(out) = stdout.as_mut() {
                    let _ = out.take(64 * 1024 * 1024).read_to_end(&mut buf).await;
                }
                buf
            });
            let status = tokio::select! {
                s = child.wait() => s,
                () = stopped(&mut stop) => {
                    // SIGTERM: the child runs on_failure/finally and exits 130
                    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
                    }
                    match tokio::time::timeout(this.stop_grace, child.wait()).await {
                        Ok(s) => s,
                        Err(_) => {
                            let _ = child.kill().await;
                            child.wait().await
                        }
                    }
                }
            };
            let out = reader.await.unwrap_or_default();
            let code = status
                .as_ref()
                .ok()
                .and_then(std::process::ExitStatus::code);
            let mut outcome = parse_report(&out, &req.repository);
            outcome.exit_code = code;
            match code {
                Some(130) | None => {
                    outcome.status = RunStatus::Interrupted;
                    if outcome.errors.is_empty() {
                        outcome.errors.push("interrupted".into());
                    }
                }
                Some(c)
                    if outcome.errors.is_empty()
                        && outcome.snapshot.is_none()
                        && out.is_empty() =>
                {
                    outcome.status = RunStatus::Failed;
                    outcome.errors.push(format!("the job process exited with status {c} without a report (see the agent's log)"));
                }
                _ => {}
            }
            outcome
        })
    }
}

/// Resolves once `stop` is true (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// Reads the JSON a `bulwark run --json` (an array with one job report) or
/// `bulwark maintenance --json` (one object) child printed.
pub fn parse_report(stdout: &[u8], repository: &str) -> RunOutcome {
    let value: Value = match serde_json::from_slice(stdout) {
        Ok(v) => v,
        Err(_) => return RunOutcome::failed("the job process printed no report"),
    };
    let r = match &value {
        Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    let status = match r.get("status").and_then(Value::as_str) {
        Some("success") => RunStatus::Success,
        Some("partial") => RunStatus::Partial,
        Some("interrupted") => RunStatus::Interrupted,
        _ => RunStatus::Failed,
    };
    let mut out = RunOutcome {
        status,
        ..RunOutcome::failed("")
    };
    out.errors.clear();
    let one = |s: &str| s.chars().take(2000).collect::<String>();
    if let Some(list) = r
        .get("errors")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    {
        out.errors = list
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .take(MAX_ERRORS_LISTED)
            .collect();
    } else if let Some(e) = r.get("error").and_then(Value::as_str) {
        out.errors = vec![one(e)];
    }
    if let Some(b) = r.get("backup").filter(|b| !b.is_null()) {
        if let Some(s) = b.get("snapshot") {
            let strings = |k: &str| {
                s.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let time = s
                .get("time")
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok());
            let id = s
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let (Some(time), true) = (time, id.len() == 64) {
                out.snapshot = Some(SnapshotSummary {
                    id,
                    time,
                    repository: repository.to_string(),
                    hostname: s
                        .get("hostname")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    paths: strings("paths"),
                    tags: strings("tags"),
                });
            }
            if let Some(m) = s.get("summary").filter(|m| !m.is_null()) {
                out.stats.files_new = u(m, "files_new");
                out.stats.files_changed = u(m, "files_changed");
                out.stats.files_unmodified = u(m, "files_unmodified");
                out.stats.dirs_new = u(m, "dirs_new");
                out.stats.dirs_changed = u(m, "dirs_changed");
                out.stats.files_processed = u(m, "total_files_processed");
                out.stats.bytes_processed = u(m, "total_bytes_processed");
                out.stats.bytes_added = u(m, "data_added");
                out.stats.bytes_stored = u(m, "data_added_packed");
            }
        }
        if let Some(list) = b.get("skipped").and_then(Value::as_array) {
            out.skipped_count = list.len() as u64;
            out.skipped = list
                .iter()
                .take(MAX_SKIPPED_LISTED)
                .map(|f| SkippedFile {
                    path: f
                        .get("path")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    error: f
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .chars()
                        .take(500)
                        .collect(),
                })
                .collect();
        }
    }
    if let Some(f) = r.get("forget").filter(|f| !f.is_null()) {
        out.stats.snapshots_removed = f
            .get("removed")
            .and_then(Value::as_array)
            .map_or(0, |a| a.len() as u64);
    }
    if let Some(p) = r.get("prune").filter(|p| !p.is_null()) {
        out.stats.bytes_freed = u(p, "bytes_freed");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_a_run_report() {
        let id = "a".repeat(64);
        let json = format!(
            r#"[{{"job":"photos","status":"partial","backup":{{"snapshot":{{"id":"{id}","short_id":"aaaaaaaa",
            "time":"2026-11-23T02:00:01Z","hostname":"nas","username":"root","paths":["/srv/photos"],"tags":["t"],
            "parent":null,"tree":"b","summary":{{"files_new":3,"files_changed":1,"files_unmodified":7,
            "total_files_processed":11,"total_bytes_processed":4096,"dirs_new":1,"dirs_changed":0,"dirs_unmodified":2,
            "data_added":100,"data_added_packed":60,"backup_duration":0.5}}}},
            "skipped":[{{"path":"/srv/photos/x","error":"permission denied"}}],"incomplete":true}},
            "forget":null,"prune":null,"error":"1 file(s) could not be backed up"}}]"#
        );
        let o = parse_report(json.as_bytes(), "hub");
        assert_eq!(o.status, RunStatus::Partial);
        let s = o.snapshot.unwrap();
        assert_eq!(
            (s.id.len(), s.repository.as_str(), s.hostname.as_str()),
            (64, "hub", "nas")
        );
        assert_eq!(
            (
                o.stats.files_new,
                o.stats.files_changed,
                o.stats.bytes_added,
                o.stats.bytes_stored
            ),
            (3, 1, 100, 60)
        );
        assert_eq!(o.skipped_count, 1);
        assert_eq!(
            o.errors,
            vec!["1 file(s) could not be backed up".to_string()]
        );
    }

    #[test]
    fn garbage_is_a_failure() {
        let o = parse_report(b"not json", "r");
        assert_eq!(o.status, RunStatus::Failed);
        assert!(o.errors[0].contains("no report"));
        let o = parse_report(
            br#"[{"job":"x","status":"failed","error":"before hook failed"}]"#,
            "r",
        );
        assert_eq!(
            (o.status, o.errors[0].as_str()),
            (RunStatus::Failed, "before hook failed")
        );
        // errors are taken one per entry, never split at a `;` inside one
        let o = parse_report(br#"[{"job":"x","status":"failed","error":"a; b","errors":["hook `x; exit 3` failed","b"]}]"#, "r");
        assert_eq!(
            o.errors,
            vec!["hook `x; exit 3` failed".to_string(), "b".to_string()]
        );
    }
}
