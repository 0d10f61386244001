//! Running a job: hooks around the backup, with the documented order and
//! environment.
//!
//! Order: `before` (a failure aborts the job: no backup) → backup → `after`
//! (when a snapshot landed) → `on_failure` (when the status is failed or
//! partial) → `finally` (always). Every hook gets BULWARK_JOB, BULWARK_REPO,
//! BULWARK_REPO_URL (credentials redacted), BULWARK_HOOK, BULWARK_STATUS and,
//! when known, BULWARK_SNAPSHOT_ID and BULWARK_ERROR.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// What the hooks are told.
#[derive(Debug, Clone, Default)]
pub(crate) struct HookEnv {
    pub(crate) job: String,
    pub(crate) repo: String,
    pub(crate) repo_url: String,
    pub(crate) status: String,
    pub(crate) snapshot_id: Option<String>,
    pub(crate) error: Option<String>,
}

/// Runs each command of `hooks` (with `sh -c`) in order; stops at the first failure.
pub(crate) fn run(
    kind: &str,
    hooks: &[String],
    env: &HookEnv,
    timeout: Duration,
) -> Result<(), String> {
    for cmd in hooks {
        tracing::info!(hook = kind, command = %cmd, "running hook");
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .env("BULWARK_JOB", &env.job)
            .env("BULWARK_REPO", &env.repo)
            .env("BULWARK_REPO_URL", &env.repo_url)
            .env("BULWARK_HOOK", kind)
            .env("BULWARK_STATUS", &env.status);
        // hooks must not pollute --json output on stdout
        c.stdout(Stdio::from(
            std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| e.to_string())?,
        ));
        if let Some(id) = &env.snapshot_id {
            c.env("BULWARK_SNAPSHOT_ID", id);
        }
        if let Some(e) = &env.error {
            c.env("BULWARK_ERROR", e);
        }
        let mut child = c
            .spawn()
            .map_err(|e| format!("{kind} hook `{cmd}` could not start: {e}"))?;
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if start.elapsed() > timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{kind} hook `{cmd}` did not finish within {} and was killed",
                        humantime::format_duration(timeout)
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("{kind} hook `{cmd}`: {e}")),
            }
        };
        if !status.success() {
            return Err(match status.code() {
                Some(code) => format!("{kind} hook `{cmd}` failed with exit status {code}"),
                None => format!("{kind} hook `{cmd}` was killed by a signal"),
            });
        }
    }
    Ok(())
}

use std::os::fd::AsFd;
