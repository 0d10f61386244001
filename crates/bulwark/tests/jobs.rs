//! Jobs from bulwark.toml: command sources streamed into the snapshot, hooks
//! in the documented order with the documented environment.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn write_config(env: &Env, job_body: &str) -> std::path::PathBuf {
    let cfg = env.path("bulwark.toml");
    let text = format!(
        "[repositories.main]\nurl = \"{}\"\npassword_file = \"{}\"\n\n[jobs.app]\nrepository = \"main\"\n{job_body}",
        env.repo.display(),
        env.pw.display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

fn hooks(log: &std::path::Path) -> String {
    let line = |kind: &str| {
        format!("\"echo {kind} $BULWARK_HOOK $BULWARK_JOB $BULWARK_REPO $BULWARK_STATUS snap=$BULWARK_SNAPSHOT_ID err=$BULWARK_ERROR >> {}\"", log.display())
    };
    format!(
        "[jobs.app.hooks]\nbefore = [{}]\nafter = [{}]\non_failure = [{}]\nfinally = [{}]\n",
        line("B"),
        line("A"),
        line("F"),
        line("Z")
    )
}

#[test]
fn stdin_from_command_is_stored_and_restic_reads_it() {
    let env = Env::new();
    env.init();
    let out = env.bulwark(&["--json", "backup", "--stdin-from-command", "printf 'hello from a dump'", "--stdin-filename", "db.sql"]);
    out.ok();
    let dump = env.cmd().args(["dump", "latest", "/db.sql"]).output().unwrap();
    assert_eq!(dump.stdout, b"hello from a dump");
    let r = env.restic(&["dump", "latest", "/db.sql"]);
    assert_eq!(r.ok().stdout, "hello from a dump");
}

#[test]
fn failing_command_is_not_stored_and_exits_3() {
    let env = Env::new();
    env.init();
    let out = env.bulwark(&["--json", "backup", "--stdin-from-command", "printf partial; exit 3", "--stdin-filename", "db.sql"]);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["skipped"][0]["path"], "/db.sql");
    assert!(j["skipped"][0]["error"].as_str().unwrap().contains("exited with status 3"), "{j}");
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    assert!(ls["entries"].as_array().unwrap().iter().all(|e| e["path"] != "/db.sql"), "a failed dump must not be in the snapshot: {ls}");
}

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
            "paths = [\"{}\"]\ntags = [\"app\"]\n[[jobs.app.commands]]\ncommand = [\"printf\", \"%s\", \"pg-dump\"]\nfilename = \"db/pg.sql\"\n[[jobs.app.commands]]\ncommand = \"echo sqlite\"\nfilename = \"db/lite.sql\"\n{}",
            src.display(),
            hooks(&log)
        ),
    );
    env.init();
    let out = env.cmd().arg("-c").arg(&cfg).args(["--job", "app", "--json", "backup"]).output().unwrap();
    let out: Out = out.into();
    out.ok();
    let j = out.json();
    assert_eq!(j["status"], "success");
    let id = j["backup"]["snapshot"]["id"].as_str().unwrap().to_string();
    assert_eq!(j["backup"]["snapshot"]["tags"], serde_json::json!(["app"]));

    let snaps = env.bulwark(&["--json", "snapshots"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "paths and commands land in one snapshot");
    let pg = env.cmd().args(["dump", "latest", "/db/pg.sql"]).output().unwrap();
    assert_eq!(pg.stdout, b"pg-dump");
    let lite = env.cmd().args(["dump", "latest", "/db/lite.sql"]).output().unwrap();
    assert_eq!(lite.stdout, b"sqlite\n");
    let data = env.cmd().args(["dump", "latest"]).arg(src.join("data")).output().unwrap();
    assert_eq!(data.stdout, b"app data");

    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        vec![
            "B before app main running snap= err=".to_string(),
            format!("A after app main success snap={id} err="),
            format!("Z finally app main success snap={id} err="),
        ]
    );
}

#[test]
fn failing_before_hook_aborts_the_job_but_on_failure_and_finally_run() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "paths = [\"{}\"]\n[jobs.app.hooks]\nbefore = [\"echo B >> {log}; exit 7\"]\nafter = [\"echo A >> {log}\"]\non_failure = [\"echo F $BULWARK_STATUS $BULWARK_ERROR >> {log}\"]\nfinally = [\"echo Z $BULWARK_STATUS >> {log}\"]\n",
            src.display(),
            log = log.display()
        ),
    );
    env.init();
    let out: Out = env.cmd().arg("-c").arg(&cfg).args(["--job", "app", "backup"]).output().unwrap().into();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let snaps = env.bulwark(&["--json", "snapshots"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 0, "no backup after a failed before hook");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text,
        format!("B\nF failed before hook `echo B >> {}; exit 7` failed with exit status 7\nZ failed\n", log.display())
    );
    assert!(out.stderr.contains("before hook"), "{}", out.stderr);
}

#[test]
fn partial_backup_runs_after_and_on_failure() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ok"), b"ok").unwrap();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "paths = [\"{}\"]\n[[jobs.app.commands]]\ncommand = \"exit 9\"\nfilename = \"broken.sql\"\n{}",
            src.display(),
            hooks(&log)
        ),
    );
    env.init();
    let out: Out = env.cmd().arg("-c").arg(&cfg).args(["--job", "app", "--json", "backup"]).output().unwrap().into();
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["status"], "partial");
    let id = j["backup"]["snapshot"]["id"].as_str().unwrap();
    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "B before app main running snap= err=");
    assert!(lines[1].starts_with(&format!("A after app main partial snap={id} err=1 file(s) could not be backed up")), "{lines:?}");
    assert!(lines[2].starts_with(&format!("F on_failure app main partial snap={id}")), "{lines:?}");
    assert!(lines[3].starts_with(&format!("Z finally app main partial snap={id}")), "{lines:?}");
}

#[test]
fn run_applies_the_jobs_retention() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let cfg = write_config(&env, &format!("paths = [\"{}\"]\n[jobs.app.retention]\nkeep_last = 2\nprune = true\n", src.display()));
    env.init();
    for _ in 0..3 {
        let out: Out = env.cmd().arg("-c").arg(&cfg).args(["--json", "run"]).output().unwrap().into();
        out.ok();
    }
    let snaps = env.bulwark(&["--json", "snapshots"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 2, "keep_last = 2 applied by run");
    env.restic(&["check"]).ok();
}

#[test]
fn interrupt_runs_cleanup_hooks_and_exits_130() {
    let env = Env::new();
    let log = env.path("hooks.log");
    let cfg = write_config(
        &env,
        &format!(
            "[[jobs.app.commands]]\ncommand = \"sleep 23.25; echo late\"\nfilename = \"slow.sql\"\n[jobs.app.hooks]\nbefore = [\"echo B >> {log}\"]\non_failure = [\"echo F $BULWARK_STATUS $BULWARK_ERROR >> {log}\"]\nfinally = [\"echo Z >> {log}\"]\n",
            log = log.display()
        ),
    );
    env.init();
    let mut child = env.cmd().arg("-c").arg(&cfg).args(["--job", "app", "backup"]).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !log.exists() {
        assert!(std::time::Instant::now() < deadline, "the before hook never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let st = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "B\nF failed interrupted\nZ\n");
    // the command source (a whole `sh -c` pipeline) did not outlive the backup
    std::thread::sleep(std::time::Duration::from_millis(300));
    let orphans = std::process::Command::new("pgrep").args(["-f", "sleep 23.25"]).output().unwrap();
    assert!(orphans.stdout.is_empty(), "orphaned command source: {}", String::from_utf8_lossy(&orphans.stdout));
    // the lock was released: restic can use the repository right away
    assert_eq!(std::fs::read_dir(env.repo.join("locks")).map(|d| d.count()).unwrap_or(0), 0);
    env.restic(&["check"]).ok();
    env.bulwark(&["check"]).ok();
}
