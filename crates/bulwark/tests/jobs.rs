//! Jobs from bulwark.toml and command sources: command outputs streamed into
//! the snapshot, hooks in the documented order with the documented
//! environment, retention applied by `run`.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn repo_section(env: &Env) -> String {
    format!(
        "[repositories.main]\nurl = \"{}\"\npassword_file = \"{}\"\n\n",
        env.repo.display(),
        env.pw.display()
    )
}

fn write_config(env: &Env, job_body: &str) -> PathBuf {
    let cfg = env.path("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[jobs.app]\nrepository = \"main\"\n{job_body}",
            repo_section(env)
        ),
    )
    .unwrap();
    let check = env.bulwark(&[
        std::ffi::OsStr::new("config"),
        std::ffi::OsStr::new("check"),
        cfg.as_os_str(),
    ]);
    assert_eq!(
        check.code, 0,
        "the test's config is invalid: {}",
        check.stderr
    );
    cfg
}

/// Hooks that log `KIND hook job repo status snap=ID url=URL err=ERROR` (and
/// one line of noise on stdout, which must not break --json).
fn logging_hooks(job: &str, log: &Path) -> String {
    let line = |kind: &str| {
        format!(
            "\"echo noise-on-stdout; echo {kind} $BULWARK_HOOK $BULWARK_JOB $BULWARK_REPO $BULWARK_STATUS snap=$BULWARK_SNAPSHOT_ID url=$BULWARK_REPO_URL err=$BULWARK_ERROR >> {}\"",
            log.display()
        )
    };
    format!(
        "[jobs.{job}.hooks]\nbefore = [{}]\nafter = [{}]\non_failure = [{}]\nfinally = [{}]\n",
        line("B"),
        line("A"),
        line("F"),
        line("Z")
    )
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------- command sources

#[test]
fn stdin_from_command_is_stored_and_restic_dumps_it() {
    let env = Env::new();
    env.init();
    let out = env.bulwark(&[
        "--json",
        "backup",
        "--stdin-from-command",
        "printf hello",
        "--stdin-filename",
        "db.sql",
    ]);
    out.ok();
    let j = out.json();
    assert_eq!(j["incomplete"], false);
    assert_eq!(j["snapshot"]["paths"], serde_json::json!(["/db.sql"]));
    assert_eq!(
        env.bulwark(&["dump", "latest", "/db.sql"]).ok().raw,
        b"hello"
    );
    assert_eq!(
        env.restic(&["dump", "latest", "/db.sql"]).ok().raw,
        b"hello"
    );
    let c = env.restic(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
}

/// A command source comes back whole from `bulwark restore` (owner-only),
/// `restic dump` and `restic restore` (which needs the real size in the
/// tree: vendor/README.md), and `ls` reports that size.
#[test]
fn command_source_is_restored_by_bulwark_and_restic_with_its_size() {
    let env = Env::new();
    env.init();
    let data = env.path("dump-data");
    std::fs::write(&data, random_bytes(5, 300_000)).unwrap();
    let cmd = format!("cat '{}'", data.display());
    let out = env
        .bulwark(&[
            "--json",
            "backup",
            "--stdin-from-command",
            &cmd,
            "--stdin-filename",
            "db/dump.sql",
        ])
        .ok()
        .json();
    assert_eq!(
        env.snapshot_ids(),
        vec![out["snapshot"]["id"].as_str().unwrap().to_string()],
        "one snapshot, the one reported"
    );

    let ls = env
        .bulwark(&["--json", "ls", "latest", "/db/dump.sql"])
        .ok()
        .json();
    assert_eq!(ls["entries"][0]["size"], 300_000, "{ls}");
    let bt = env.path("bt");
    env.bulwark(&[
        "restore",
        "latest",
        "--target",
        bt.to_str().unwrap(),
        "--verify",
    ])
    .ok();
    assert!(
        std::fs::read(bt.join("db/dump.sql")).unwrap() == random_bytes(5, 300_000),
        "bulwark restore of the command source differs"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(bt.join("db/dump.sql"))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(mode, 0o600, "a dump is restored owner-only");
    assert!(
        env.restic(&["dump", "latest", "/db/dump.sql"]).ok().raw == random_bytes(5, 300_000),
        "restic dump differs"
    );
    let rt = env.path("rt");
    env.restic(&["restore", "latest", "--target", rt.to_str().unwrap()])
        .ok();
    let got = std::fs::read(rt.join("db/dump.sql")).unwrap_or_default();
    assert!(
        got == random_bytes(5, 300_000),
        "restic restore gives {} bytes instead of 300000",
        got.len()
    );
    let c = env.restic(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    // the next backup of the same command still works and dedups
    env.bulwark(&[
        "backup",
        "--stdin-from-command",
        &cmd,
        "--stdin-filename",
        "db/dump.sql",
    ])
    .ok();
    assert_eq!(env.snapshot_ids().len(), 2);
}

#[test]
fn failing_command_is_not_stored_and_exits_3() {
    let env = Env::new();
    env.init();
    let out = env.bulwark(&[
        "--json",
        "backup",
        "--stdin-from-command",
        "printf partial; echo 'pg_dump: connection refused' >&2; exit 3",
        "--stdin-filename",
        "db.sql",
    ]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["incomplete"], true);
    assert_eq!(j["skipped"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["skipped"][0]["path"], "/db.sql");
    let err = j["skipped"][0]["error"].as_str().unwrap();
    assert!(err.contains("exited with status 3"), "{j}");
    assert!(
        err.contains("connection refused"),
        "the command's stderr says why: {j}"
    );
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    assert!(
        ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["path"] != "/db.sql"),
        "a failed dump must not be in the snapshot: {ls}"
    );
    let d = env.bulwark(&["dump", "latest", "/db.sql"]);
    assert_eq!(d.code, 1);
    assert!(!d.stdout.contains("partial"));

    // the text output says so too
    let out = env.bulwark(&[
        "backup",
        "--stdin-from-command",
        "printf partial; exit 3",
        "--stdin-filename",
        "db.sql",
    ]);
    assert_eq!(out.code, 3);
    assert!(
        out.stderr.contains("/db.sql") && out.stderr.contains("exited with status 3"),
        "{}",
        out.stderr
    );
}

// ---------------------------------------------------------------- jobs and hooks

#[test]
fn job_with_paths_and_two_commands_makes_one_snapshot_and_runs_hooks_in_order() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("data"), b"app data").unwrap();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "paths = [\"{}\"]\ntags = [\"app\"]\n[[jobs.app.commands]]\ncommand = [\"printf\", \"%s\", \"pg dump\"]\nfilename = \"db/pg.sql\"\n[[jobs.app.commands]]\ncommand = \"echo sqlite\"\nfilename = \"lite.sql\"\n{}",
            src.display(),
            logging_hooks("app", &log)
        ),
    );
    env.init();
    let out = env.bulwark_cfg(&cfg, &["--job", "app", "--json", "backup"]);
    out.ok();
    let j = out.json();
    assert_eq!(j["status"], "success", "{j}");
    assert_eq!(j["job"], "app");
    let id = j["backup"]["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(j["backup"]["snapshot"]["tags"], serde_json::json!(["app"]));
    let mut paths: Vec<&str> = j["backup"]["snapshot"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    paths.sort();
    let mut want = vec!["/db/pg.sql", "/lite.sql", src.to_str().unwrap()];
    want.sort();
    assert_eq!(paths, want);

    assert_eq!(
        env.snapshot_ids(),
        vec![id.clone()],
        "paths and commands land in one snapshot"
    );
    assert_eq!(
        env.bulwark(&["dump", "latest", "/db/pg.sql"]).ok().raw,
        b"pg dump"
    );
    assert_eq!(
        env.bulwark(&["dump", "latest", "/lite.sql"]).ok().raw,
        b"sqlite\n"
    );
    assert_eq!(
        env.bulwark(&[
            std::ffi::OsStr::new("dump"),
            std::ffi::OsStr::new("latest"),
            src.join("data").as_os_str()
        ])
        .ok()
        .raw,
        b"app data"
    );
    assert_eq!(
        env.restic(&["dump", "latest", "/db/pg.sql"]).ok().raw,
        b"pg dump"
    );

    let url = env.repo.display();
    assert_eq!(
        log_lines(&log),
        vec![
            format!("B before app main running snap= url={url} err="),
            format!("A after app main success snap={id} url={url} err="),
            format!("Z finally app main success snap={id} url={url} err="),
        ]
    );
}

#[test]
fn failing_before_hook_aborts_the_job_but_on_failure_and_finally_run() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"f").unwrap();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "paths = [\"{}\"]\n[jobs.app.hooks]\nbefore = [\"echo B >> {log}; exit 7\", \"echo B2-must-not-run >> {log}\"]\nafter = [\"echo A >> {log}\"]\non_failure = [\"echo F $BULWARK_HOOK $BULWARK_STATUS snap=$BULWARK_SNAPSHOT_ID err=$BULWARK_ERROR >> {log}\"]\nfinally = [\"echo Z $BULWARK_HOOK $BULWARK_STATUS >> {log}\"]\n",
            src.display(),
            log = log.display()
        ),
    );
    env.init();
    let out = env.bulwark_cfg(&cfg, &["--job", "app", "backup"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("before hook"), "{}", out.stderr);
    assert_eq!(
        env.snapshot_ids().len(),
        0,
        "no backup after a failed before hook"
    );
    assert_eq!(
        log_lines(&log),
        vec![
            "B".to_string(),
            format!("F on_failure failed snap= err=before hook `echo B >> {}; exit 7` failed with exit status 7", log.display()),
            "Z finally failed".to_string(),
        ]
    );
}

#[test]
fn unreadable_file_makes_the_job_partial_and_runs_after_and_on_failure() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ok"), b"ok").unwrap();
    std::fs::write(src.join("secret"), b"secret").unwrap();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "paths = [\"{}\"]\n{}",
            src.display(),
            logging_hooks("app", &log)
        ),
    );
    env.init();
    let mut cmd = env.cmd_unprivileged();
    chmod(&src.join("secret"), 0o000);
    let out = run(
        cmd.arg("-c")
            .arg(&cfg)
            .args(["--job", "app", "--json", "backup"]),
        TIMEOUT,
    );
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["status"], "partial", "{j}");
    assert_eq!(
        j["backup"]["skipped"][0]["path"],
        src.join("secret").to_str().unwrap()
    );
    let id = j["backup"]["snapshot"]["id"].as_str().unwrap();
    assert_eq!(env.snapshot_ids(), vec![id.to_string()]);
    let lines = log_lines(&log);
    let url = env.repo.display();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("B before app main running snap= url={url} err=")
    );
    assert!(
        lines[1].starts_with(&format!(
            "A after app main partial snap={id} url={url} err=1 file(s)"
        )),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(&format!(
            "F on_failure app main partial snap={id} url={url} err=1 file(s)"
        )),
        "{lines:?}"
    );
    assert!(
        lines[3].starts_with(&format!("Z finally app main partial snap={id}")),
        "{lines:?}"
    );
}

/// A failed command source fails the job (exit 1, status "failed"), unlike
/// an unreadable file (partial): its dump is simply not there. The snapshot
/// with everything else still lands and the hooks see "failed".
#[test]
fn failing_command_source_fails_the_job() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ok"), b"ok").unwrap();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "paths = [\"{}\"]\n[[jobs.app.commands]]\ncommand = \"printf half; exit 9\"\nfilename = \"broken.sql\"\n{}",
            src.display(),
            logging_hooks("app", &log)
        ),
    );
    env.init();
    let out = env.bulwark_cfg(&cfg, &["--job", "app", "--json", "backup"]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["status"], "failed");
    let err = j["error"].as_str().unwrap();
    assert!(
        err.contains("command source `printf half; exit 9` failed")
            && err.contains("exited with status 9"),
        "{j}"
    );
    let id = j["backup"]["snapshot"]["id"].as_str().unwrap();
    let lines = log_lines(&log);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[1].starts_with(&format!("A after app main failed snap={id}")),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with(&format!("F on_failure app main failed snap={id}")),
        "{lines:?}"
    );
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    assert!(
        ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["path"] != "/broken.sql"),
        "{ls}"
    );
    assert!(
        ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == format!("{}/ok", src.display())),
        "{ls}"
    );
}

#[test]
fn backup_job_skips_retention_and_run_applies_it() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let cfg = write_config(
        &env,
        &format!("paths = [\"{}\"]\ntags = [\"app\"]\n[jobs.app.retention]\nkeep_last = 2\nprune = true\n", src.display()),
    );
    env.init();
    for _ in 0..3 {
        env.bulwark_cfg(&cfg, &["--job", "app", "backup"]).ok();
    }
    assert_eq!(
        env.snapshot_ids().len(),
        3,
        "`backup --job` applies no retention"
    );
    let out = env.bulwark_cfg(&cfg, &["--json", "run"]);
    out.ok();
    let reports = out.json();
    assert_eq!(reports.as_array().unwrap().len(), 1);
    assert_eq!(reports[0]["status"], "success");
    assert_eq!(
        reports[0]["forget"]["removed"].as_array().unwrap().len(),
        2,
        "{reports}"
    );
    assert!(reports[0]["prune"].is_object(), "prune = true: {reports}");
    let left = env.snapshot_ids();
    assert_eq!(left.len(), 2, "keep_last = 2 applied by run");
    assert!(left.contains(
        &reports[0]["backup"]["snapshot"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    ));
    let c = env.restic(&["check", "--read-data"]);
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
}

#[test]
fn run_runs_every_job_and_reports_the_failed_one() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let log = env.path("hooks.log");
    let cfg = env.path("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[jobs.bad]\nrepository = \"main\"\npaths = [\"{src}\"]\ntags = [\"bad\"]\n[jobs.bad.hooks]\nbefore = [\"exit 4\"]\nfinally = [\"echo bad-finally $BULWARK_STATUS >> {log}\"]\n\n[jobs.good]\nrepository = \"main\"\npaths = [\"{src}\"]\ntags = [\"good\"]\n[jobs.good.hooks]\nfinally = [\"echo good-finally $BULWARK_STATUS >> {log}\"]\n[jobs.good.retention]\nkeep_last = 1\n",
            repo_section(&env),
            src = src.display(),
            log = log.display()
        ),
    )
    .unwrap();
    env.init();
    let out = env.bulwark_cfg(&cfg, &["--json", "run"]);
    assert_eq!(
        out.code, 1,
        "a failed job makes `run` exit 1\n{}\n{}",
        out.stdout, out.stderr
    );
    let reports = out.json();
    let by_job = |name: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["job"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_job("bad")["status"], "failed");
    assert!(
        by_job("bad")["error"]
            .as_str()
            .unwrap()
            .contains("exit status 4"),
        "{reports}"
    );
    assert_eq!(by_job("good")["status"], "success");
    let snaps = env.bulwark(&["--json", "snapshots"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1);
    assert_eq!(snaps[0]["tags"], serde_json::json!(["good"]));
    let mut lines = log_lines(&log);
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "bad-finally failed".to_string(),
            "good-finally success".to_string()
        ]
    );
}

#[test]
fn interrupt_runs_cleanup_hooks_and_exits_130() {
    let env = Env::new();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "[[jobs.app.commands]]\ncommand = \"sleep 20; echo late\"\nfilename = \"slow.sql\"\n[jobs.app.hooks]\nbefore = [\"echo B >> {log}\"]\non_failure = [\"echo F $BULWARK_STATUS $BULWARK_ERROR >> {log}; sleep 1\"]\nfinally = [\"echo Z >> {log}\"]\n",
            log = log.display()
        ),
    );
    env.init();
    // (on_failure takes a second, like a real notification would: the
    // interrupted backup must not carry on meanwhile)
    let mut child = env
        .cmd()
        .arg("-c")
        .arg(&cfg)
        .args(["--job", "app", "backup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !log.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the before hook never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let hooks_log = std::fs::read_to_string(&log).unwrap();
    let snaps = env.snapshot_ids();
    assert!(
        hooks_log == "B\nF failed interrupted\nZ\n" && snaps.is_empty(),
        "after Ctrl-C: on_failure and finally must run once each and no snapshot may land\nhooks log:\n{hooks_log}snapshots: {snaps:?}"
    );
    // the lock was released: restic can use the repository right away
    assert_eq!(
        std::fs::read_dir(env.repo.join("locks"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    env.restic(&["check"]).ok();
    env.bulwark(&["check"]).ok();
}
