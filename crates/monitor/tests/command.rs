//! The command probe: exit codes, output, timeouts that kill the group.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bulwark_monitor::{probe, CommandProbe, Probe};

async fn run(p: CommandProbe, timeout: Duration) -> bulwark_monitor::ProbeResult {
    probe(&Probe::Command(p), timeout).await
}

#[tokio::test]
async fn exit_zero_is_up_with_the_last_stdout_line() {
    let r = run(
        CommandProbe::shell("echo starting; echo 'all 3 disks healthy'"),
        Duration::from_secs(5),
    )
    .await;
    assert!(r.up, "{r:?}");
    assert!(r.message.starts_with("exit code 0 in "), "{}", r.message);
    assert!(
        r.message.ends_with(": all 3 disks healthy"),
        "{}",
        r.message
    );
    let r = run(CommandProbe::argv(["true"]), Duration::from_secs(5)).await;
    assert!(r.up, "{r:?}");
}

#[tokio::test]
async fn exit_three_is_down_with_the_last_stderr_line() {
    let r = run(
        CommandProbe::shell(
            "echo to-stdout; echo 'first problem' >&2; echo 'disk sdb failing' >&2; exit 3",
        ),
        Duration::from_secs(5),
    )
    .await;
    assert!(!r.up);
    assert_eq!(r.message, "expected exit code 0, got 3: disk sdb failing");
    // 3 expected: up
    let mut p = CommandProbe::argv(["sh", "-c", "exit 3"]);
    p.expected_exit_code = 3;
    assert!(run(p, Duration::from_secs(5)).await.up);
}

#[tokio::test]
async fn argv_is_not_a_shell() {
    // with argv, `;` is just an argument to echo
    let r = run(
        CommandProbe::argv(["echo", "a;", "exit", "7"]),
        Duration::from_secs(5),
    )
    .await;
    assert!(r.up, "{r:?}");
    assert!(r.message.ends_with(": a; exit 7"), "{}", r.message);
}

#[tokio::test]
async fn missing_program_is_down() {
    let r = run(
        CommandProbe::argv(["/nonexistent/bulwark-check"]),
        Duration::from_secs(5),
    )
    .await;
    assert!(!r.up);
    assert!(
        r.message
            .starts_with("cannot run \"/nonexistent/bulwark-check\": "),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn killed_by_a_signal() {
    let r = run(CommandProbe::shell("kill -TERM $$"), Duration::from_secs(5)).await;
    assert!(!r.up);
    assert_eq!(r.message, "expected exit code 0, got killed by SIGTERM");
}

#[tokio::test]
async fn huge_output_is_bounded() {
    let r = run(
        CommandProbe::shell("yes 'spam spam spam' | head -c 5000000; echo; echo last >&2; exit 1"),
        Duration::from_secs(10),
    )
    .await;
    assert!(!r.up);
    assert_eq!(r.message, "expected exit code 0, got 1: last");
    let r = run(
        CommandProbe::shell("head -c 3000 /dev/zero | tr '\\0' x; exit 1"),
        Duration::from_secs(10),
    )
    .await;
    assert!(r.message.len() < 300, "{}", r.message.len());
}

/// Processes of process group `pgid` that are still alive (not zombies).
fn live_members(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // fields after the ")" of the command name: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // the shell and a background grandchild, both in the probe's group
    let line = format!(
        "echo $$ > {}; sleep 30 & sleep 30; echo never",
        pidfile.display()
    );
    let start = Instant::now();
    let r = run(CommandProbe::shell(line), Duration::from_millis(500)).await;
    let took = start.elapsed();
    assert!(!r.up);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(
        r.message,
        "expected exit code 0, got no exit within 500ms (process group killed)"
    );
    let pgid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SIGKILL was sent before the probe returned; give the kernel a moment
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let alive = live_members(pgid);
        if alive.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "process group {pgid} still has {alive:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn leftovers_are_killed_when_the_command_exits() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    // exits at once, leaving a background sleep that holds stdout open
    let line = format!("sleep 30 & echo $! > {}; echo done", pidfile.display());
    let start = Instant::now();
    let r = run(CommandProbe::shell(line), Duration::from_secs(5)).await;
    assert!(r.up, "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited for the leftover: {:?}",
        start.elapsed()
    );
    assert!(r.message.ends_with(": done"), "{}", r.message);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        let alive = state
            .as_deref()
            .and_then(|s| s.rsplit_once(')'))
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'));
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "leftover {pid} still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
