//! Locks: Bulwark and restic respect each other's locks.

#![allow(clippy::unwrap_used)]

use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use bulwark_engine::{BackupRequest, ErrorKind, Location, RepoSpec};

fn setup() -> (tempfile::TempDir, RepoSpec) {
    let tmp = tempfile::tempdir().unwrap();
    let spec = RepoSpec::new(Location::Local(tmp.path().join("repo")), "pw");
    spec.init().unwrap();
    (tmp, spec)
}

fn restic(tmp: &tempfile::TempDir) -> Command {
    let mut c = Command::new("restic");
    c.env("RESTIC_REPOSITORY", tmp.path().join("repo"))
        .env("RESTIC_PASSWORD", "pw")
        .arg("--no-cache");
    c
}

/// Lock files that are completely written (restic's local backend writes in
/// place, so a lock file can be seen while still empty).
fn lock_count(tmp: &tempfile::TempDir) -> usize {
    std::fs::read_dir(tmp.path().join("repo/locks"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn exclusive_lock_blocks_shared_until_released() {
    let (_tmp, spec) = setup();
    let a = spec.open().unwrap();
    let b = spec.open().unwrap();
    let held = a.lock(true).unwrap();
    let err = b.lock(false).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Locked, "{err:?}");
    assert!(
        err.message.contains("exclusive lock held by PID"),
        "{}",
        err.message
    );
    // a second exclusive request conflicts too, and leaves no lock file behind
    assert_eq!(b.lock(true).unwrap_err().kind, ErrorKind::Locked);
    drop(held);
    let shared1 = b.lock(false).unwrap();
    let shared2 = a.lock(false).unwrap(); // shared locks coexist
    assert_eq!(a.prune(false).unwrap_err().kind, ErrorKind::Locked);
    drop((shared1, shared2));
    a.prune(false).unwrap();
    assert_eq!(
        a.locks().unwrap().len(),
        0,
        "every lock is removed when released"
    );
}

#[test]
fn restic_respects_our_exclusive_lock_and_we_respect_restics() {
    let (tmp, spec) = setup();
    let repo = spec.open().unwrap();
    {
        let _held = repo.lock(true).unwrap();
        let out = restic(&tmp)
            .args(["backup", "/etc/hostname"])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "restic must refuse while we hold an exclusive lock"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("locked"), "{err}");
    }
    // restic holds a shared lock while it reads a slow stdin
    let mut child = restic_holding_lock(&tmp);
    let err = repo.prune(false).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Locked, "{err:?}");
    // a backup (shared) may run beside restic's shared lock
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    repo.backup(&BackupRequest {
        paths: vec![src],
        ..Default::default()
    })
    .unwrap();
    child.stdin.take().unwrap().write_all(b"data").unwrap();
    assert!(child.wait().unwrap().success());
    repo.prune(false).unwrap();
}

/// Starts `restic backup --stdin` (which waits on its stdin) and returns once
/// its lock file exists.
fn restic_holding_lock(tmp: &tempfile::TempDir) -> std::process::Child {
    let before = lock_count(tmp);
    let child = restic(tmp)
        .args(["backup", "--stdin", "--stdin-filename", "slow"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while lock_count(tmp) == before {
        assert!(Instant::now() < deadline, "restic never took its lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    // and let it finish writing and syncing the lock before anyone looks
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// A restic that crashed while holding its lock (SIGKILL: the lock stays).
fn crashed_restic(tmp: &tempfile::TempDir) {
    let mut child = restic_holding_lock(tmp);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn stale_lock_of_a_dead_process_is_ignored_and_removed() {
    let (tmp, spec) = setup();
    crashed_restic(&tmp);
    let repo = spec.open().unwrap();
    let locks = repo.locks().unwrap();
    assert_eq!(locks.len(), 1);
    assert!(
        locks[0].1.is_stale(),
        "a lock of a dead process on this host is stale"
    );
    assert_eq!(repo.unlock(false).unwrap(), 1, "unlock removes it");
    assert_eq!(lock_count(&tmp), 0);

    // taking a lock clears stale ones too, so restic isn't blocked afterwards
    crashed_restic(&tmp);
    repo.prune(false).unwrap();
    assert_eq!(lock_count(&tmp), 0);
    let out = restic(&tmp).args(["check"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
