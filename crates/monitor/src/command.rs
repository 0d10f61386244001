//! The command probe: run a local command, check its exit code.

use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::duration::human;
use crate::{ProbeResult, SpecError};

/// How much of the end of stdout and of stderr is kept for the message.
const TAIL: usize = 4096;
/// The longest last line quoted in a message.
const LINE: usize = 200;

/// The command to run.
///
/// In JSON: `{"argv": ["/usr/bin/check", "--quiet"]}` or
/// `{"shell": "df -P / | tail -1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandLine {
    /// Program and arguments, run directly (no shell).
    Argv(Vec<String>),
    /// A shell command line, run with `/bin/sh -c`.
    Shell(String),
}

fn default_exit_code() -> i32 {
    0
}

/// Runs a command and checks its exit code.
///
/// The command runs in its own process group with stdin closed. On timeout
/// the whole group is killed (SIGKILL); when the command exits, anything it
/// left running in its group is killed too, so a check never leaves
/// processes behind. The message quotes the last line of stderr (or of
/// stdout), at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandProbe {
    /// What to run.
    pub command: CommandLine,
    /// The exit code meaning up (default 0).
    #[serde(default = "default_exit_code")]
    pub expected_exit_code: i32,
}

impl CommandProbe {
    /// Runs `argv` directly, expecting exit code 0.
    pub fn argv<I: IntoIterator<Item = S>, S: Into<String>>(argv: I) -> Self {
        CommandProbe {
            command: CommandLine::Argv(argv.into_iter().map(Into::into).collect()),
            expected_exit_code: 0,
        }
    }

    /// Runs `line` with `/bin/sh -c`, expecting exit code 0.
    pub fn shell(line: impl Into<String>) -> Self {
        CommandProbe {
            command: CommandLine::Shell(line.into()),
            expected_exit_code: 0,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        match &self.command {
            CommandLine::Argv(argv) if argv.first().is_none_or(|p| p.is_empty()) => {
                Err(SpecError::Empty { field: "argv" })
            }
            CommandLine::Shell(s) if s.trim().is_empty() => {
                Err(SpecError::Empty { field: "shell" })
            }
            CommandLine::Argv(argv) if argv.iter().any(|a| a.contains('\0')) => Err(
                SpecError::invalid("argv", argv.join(" "), "contains a NUL byte"),
            ),
            CommandLine::Shell(s) if s.contains('\0') => {
                Err(SpecError::invalid("shell", s, "contains a NUL byte"))
            }
            _ => Ok(()),
        }
    }

    fn program(&self) -> String {
        match &self.command {
            CommandLine::Argv(argv) => argv.first().cloned().unwrap_or_default(),
            CommandLine::Shell(_) => "/bin/sh".into(),
        }
    }
}

/// Kills the process group when dropped (also when the probe is cancelled),
/// unless disarmed.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // ESRCH: the group is already gone.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a stream to its end, keeping only its last `TAIL` bytes.
async fn read_tail<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut keep: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                keep.extend_from_slice(&buf[..n]);
                if keep.len() > 2 * TAIL {
                    keep.drain(..keep.len() - TAIL);
                }
            }
        }
    }
    if keep.len() > TAIL {
        keep.drain(..keep.len() - TAIL);
    }
    keep
}

/// The last non-empty line, bounded.
fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).rfind(|l| !l.is_empty())?;
    let mut out: String = line.chars().take(LINE).collect();
    if line.chars().count() > LINE {
        out.push('…');
    }
    Some(out)
}

pub(crate) async fn run(p: &CommandProbe, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let mut cmd = match &p.command {
        CommandLine::Argv(argv) => {
            let mut c =
                tokio::process::Command::new(argv.first().map(String::as_str).unwrap_or_default());
            c.args(argv.iter().skip(1));
            c
        }
        CommandLine::Shell(line) => {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c").arg(line);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ProbeResult::down(
                start.elapsed(),
                format!("cannot run {:?}: {e}", p.program()),
            );
        }
    };
    // Declared after `child`, so dropped before it: the group is killed
    // while its leader is not yet reaped (its id cannot have been reused).
    let mut group = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let out = child.stdout.take().map(|s| tokio::spawn(read_tail(s)));
    let err = child.stderr.take().map(|s| tokio::spawn(read_tail(s)));

    let waited = tokio::time::timeout(timeout, child.wait()).await;
    let latency = start.elapsed();
    // Whatever happened, nothing of the command's group stays running.
    group.kill();
    let status = match waited {
        Ok(Ok(status)) => Some(status),
        Ok(Err(e)) => {
            return ProbeResult::down(
                latency,
                format!("waiting for {:?} failed: {e}", p.program()),
            );
        }
        Err(_) => {
            // Reap the leader (SIGKILL was sent; this is quick).
            let _ = tokio::time::timeout(Duration::from_millis(200), child.wait()).await;
            None
        }
    };
    // The pipes close once every process of the group is gone; a process
    // that escaped the group (setsid) may keep them open: don't wait for it.
    let collect = |task: Option<tokio::task::JoinHandle<Vec<u8>>>| async move {
        match task {
            Some(t) => {
                let abort = t.abort_handle();
                match tokio::time::timeout(Duration::from_millis(100), t).await {
                    Ok(Ok(v)) => v,
                    _ => {
                        abort.abort();
                        Vec::new()
                    }
                }
            }
            None => Vec::new(),
        }
    };
    let stdout = collect(out).await;
    let stderr = collect(err).await;

    let Some(status) = status else {
        let mut msg = format!(
            "expected exit code {}, got no exit within {} (process group killed)",
            p.expected_exit_code,
            human(timeout)
        );
        if let Some(l) = last_line(&stderr).or_else(|| last_line(&stdout)) {
            msg.push_str(": ");
            msg.push_str(&l);
        }
        return ProbeResult::down(latency, msg);
    };
    let got = match status.code() {
        Some(c) => c.to_string(),
        None => {
            use std::os::unix::process::ExitStatusExt;
            match status.signal().and_then(|s| Signal::try_from(s).ok()) {
                Some(sig) => format!("killed by {sig}"),
                None => "an unknown status".into(),
            }
        }
    };
    if status.code() == Some(p.expected_exit_code) {
        let mut msg = format!("exit code {got} in {}", human(latency));
        if let Some(l) = last_line(&stdout).or_else(|| last_line(&stderr)) {
            msg.push_str(": ");
            msg.push_str(&l);
        }
        ProbeResult::up(latency, msg)
    } else {
        let mut msg = format!("expected exit code {}, got {got}", p.expected_exit_code);
        if let Some(l) = last_line(&stderr).or_else(|| last_line(&stdout)) {
            msg.push_str(": ");
            msg.push_str(&l);
        }
        ProbeResult::down(latency, msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_is_bounded_and_skips_blanks() {
        assert_eq!(last_line(b"one\ntwo\n\n  \n").as_deref(), Some("two"));
        assert_eq!(last_line(b""), None);
        assert_eq!(last_line(b"\n\n"), None);
        let long = "y".repeat(1000);
        let l = last_line(long.as_bytes()).unwrap();
        assert_eq!(l.chars().count(), LINE + 1);
        assert_eq!(last_line(&[0xff, b'\n', b'a']).as_deref(), Some("a"));
    }

    #[test]
    fn json_forms() {
        let p: CommandProbe = serde_json::from_str(r#"{"command":{"argv":["true"]}}"#).unwrap();
        assert_eq!(p, CommandProbe::argv(["true"]));
        let p: CommandProbe =
            serde_json::from_str(r#"{"command":{"shell":"exit 3"},"expected_exit_code":3}"#)
                .unwrap();
        assert_eq!(p.command, CommandLine::Shell("exit 3".into()));
        assert_eq!(p.expected_exit_code, 3);
    }

    #[test]
    fn validate_refuses_empty_commands() {
        assert!(CommandProbe::argv(Vec::<String>::new()).validate().is_err());
        assert!(CommandProbe::argv([""]).validate().is_err());
        assert!(CommandProbe::shell("  ").validate().is_err());
        assert!(CommandProbe::shell("a\0b").validate().is_err());
        CommandProbe::shell("true").validate().unwrap();
    }

    #[tokio::test]
    async fn tail_keeps_the_end() {
        let data: Vec<u8> = (0..20_000u32)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let tail = read_tail(&data[..]).await;
        assert!(tail.len() <= TAIL);
        assert_eq!(last_line(&tail).as_deref(), Some("line 19999"));
    }
}
