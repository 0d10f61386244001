//! Error messages, exit codes, JSON output and the embedded-default main job.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn no_noise(out: &Out) {
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(!out.stderr.contains("stack backtrace"), "{}", out.stderr);
    assert!(!out.stderr.contains("RUST_BACKTRACE=1 for details"), "{}", out.stderr);
}

#[test]
fn missing_repository_exits_10_and_says_how_to_create_one() {
    let env = Env::new();
    let out = env.bulwark(&["snapshots"]);
    assert_eq!(out.code, 10, "{}", out.stderr);
    assert!(out.stderr.contains("there is no repository at"), "{}", out.stderr);
    assert!(out.stderr.contains("bulwark init"), "{}", out.stderr);
    no_noise(&out);
}

#[test]
fn wrong_password_exits_11() {
    let env = Env::new();
    env.init();
    std::fs::write(&env.pw, "not the password\n").unwrap();
    let out = env.bulwark(&["snapshots"]);
    assert_eq!(out.code, 11, "{}", out.stderr);
    assert!(out.stderr.contains("the password does not open the repository"), "{}", out.stderr);
    no_noise(&out);
}

#[test]
fn missing_password_file_is_named() {
    let env = Env::new();
    env.init();
    let out = env.cmd().env("BULWARK_PASSWORD_FILE", env.path("nope")).arg("snapshots").output().unwrap();
    let out: Out = out.into();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(&format!("{} does not exist", env.path("nope").display())), "{}", out.stderr);
}

#[test]
fn locked_repository_exits_12_naming_the_holder() {
    let env = Env::new();
    env.init();
    // restic holds a shared lock while it reads a slow stdin; prune needs an exclusive one
    let mut restic = std::process::Command::new("restic")
        .env("RESTIC_REPOSITORY", &env.repo)
        .env("RESTIC_PASSWORD_FILE", &env.pw)
        .args(["--no-cache", "backup", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_dir(env.repo.join("locks")).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = env.bulwark(&["prune"]);
    drop(restic.stdin.take());
    restic.wait().unwrap();
    assert_eq!(out.code, 12, "{}", out.stderr);
    assert!(out.stderr.contains("lock held by PID"), "{}", out.stderr);
    assert!(out.stderr.contains("bulwark unlock"), "{}", out.stderr);
}

#[test]
fn bad_snapshot_ids_and_paths_get_one_sentence() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    for (args, needle) in [
        (vec!["restore", "zzzz", "--target", "/tmp/x"], "`zzzz` is not a snapshot id"),
        (vec!["restore", "0000000", "--target", "/tmp/x"], "no snapshot with id `0000000`"),
        (vec!["dump", "latest", "/does/not/exist"], "/does/not/exist is not in snapshot"),
        (vec!["ls", "latest", "/does/not/exist"], "/does/not/exist is not in snapshot"),
        (vec!["backup", "/does/not/exist"], "the source path /does/not/exist does not exist"),
        (vec!["check", "--read-data-subset", "250%"], "out of range"),
        (vec!["forget", "--keep-within", "5 weeks"], "bad --keep-within"),
    ] {
        let out = env.bulwark(&args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(out.stderr.lines().count() <= 3, "{args:?}: short message please: {}", out.stderr);
        no_noise(&out);
    }
}

#[test]
fn config_check_reports_file_line_col() {
    let env = Env::new();
    let cfg = env.path("bulwark.toml");
    std::fs::write(&cfg, "[repositories.r]\nurl = \"/x\"\npassword_file = \"/p\"\n\n[jobs.a]\nrepository = \"r\"\npathes = [\"/etc\"]\n").unwrap();
    let out = env.bulwark(&[std::ffi::OsStr::new("config"), std::ffi::OsStr::new("check"), cfg.as_os_str()]);
    assert_eq!(out.code, 1);
    let expected = format!("{}:7:1: unknown key `pathes`", cfg.display());
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `paths`?"), "{}", out.stderr);
    std::fs::write(&cfg, "[repositories.r]\nurl = \"/x\"\npassword_file = \"/p\"\n\n[jobs.a]\nrepository = \"r\"\npaths = [\"/etc\"]\n").unwrap();
    let ok = env.bulwark(&[std::ffi::OsStr::new("--json"), std::ffi::OsStr::new("config"), std::ffi::OsStr::new("check"), cfg.as_os_str()]);
    assert_eq!(ok.ok().json()["valid"], true);
    // a command given a broken config says so before touching anything
    let out = env.cmd().arg("-c").arg(env.path("missing.toml")).arg("snapshots").output().unwrap();
    let out: Out = out.into();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);
}

#[test]
fn json_everywhere_and_include_limits_restore() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("keep/sub")).unwrap();
    std::fs::create_dir_all(src.join("other")).unwrap();
    std::fs::write(src.join("keep/sub/a"), b"a").unwrap();
    std::fs::write(src.join("other/b"), b"b").unwrap();
    let b = env.bulwark(&["--json", "backup", src.to_str().unwrap()]).ok().json();
    assert_eq!(b["snapshot"]["summary"]["files_new"], 2);
    let s = env.bulwark(&["--json", "snapshots"]).ok().json();
    assert_eq!(s[0]["id"], b["snapshot"]["id"]);
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    assert!(ls["entries"].as_array().unwrap().iter().any(|e| e["type"] == "file" && e["size"] == 1));
    let d = env.bulwark(&["--json", "diff", "latest", "latest"]).ok().json();
    assert_eq!(d["changes"].as_array().unwrap().len(), 0);
    let c = env.bulwark(&["--json", "check"]).ok().json();
    assert_eq!(c["ok"], true);
    let f = env.bulwark(&["--json", "forget", "--keep-last", "5"]).ok().json();
    assert_eq!(f["forget"]["removed"].as_array().unwrap().len(), 0);

    let target = env.path("t");
    let inc = src.join("keep").to_string_lossy().into_owned();
    let r = env.bulwark(&["--json", "restore", "latest", "--target", target.to_str().unwrap(), "--include", &inc]).ok().json();
    assert_eq!(r["files_restored"], 1);
    assert!(under(&target, &src).join("keep/sub/a").exists());
    assert!(!under(&target, &src).join("other").exists());
}

#[test]
fn help_documents_exit_codes() {
    let env = Env::new();
    let out = env.bulwark(&["--help"]);
    out.ok();
    for code in ["130", "12 ", "11 ", "10 ", "3 "] {
        assert!(out.stdout.contains(&format!("    {code}")), "exit code {code} missing from --help");
    }
}

#[test]
fn run_uses_the_embedded_default_on_a_fresh_machine() {
    let env = Env::new();
    let home = env.path("bulwark-home");
    let out: Out = env.cmd().env_remove("BULWARK_REPO").env_remove("BULWARK_PASSWORD_FILE").env("BULWARK_HOME", &home).current_dir(env.dir.path()).args(["--json", "run"]).output().unwrap().into();
    // as a non-root user some files of /etc are unreadable: that is exit 3, and fine
    assert!(out.code == 0 || out.code == 3, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("COPY THAT FILE SOMEWHERE SAFE"), "{}", out.stderr);
    let pw = home.join("repo.password");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&pw).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let reports = out.json();
    assert_eq!(reports[0]["job"], "default");
    assert!(reports[0]["backup"]["snapshot"]["paths"].as_array().unwrap().contains(&serde_json::json!("/etc")));
    // restic opens it with the generated password
    let r = std::process::Command::new("restic")
        .args(["--no-cache", "-r"])
        .arg(home.join("repo"))
        .arg("--password-file")
        .arg(&pw)
        .arg("snapshots")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // a second run reuses the repository and password
    let again: Out = env.cmd().env_remove("BULWARK_REPO").env_remove("BULWARK_PASSWORD_FILE").env("BULWARK_HOME", &home).current_dir(env.dir.path()).args(["run"]).output().unwrap().into();
    assert!(again.code == 0 || again.code == 3, "{}", again.stderr);
    assert!(!again.stderr.contains("COPY THAT FILE"), "the password is generated only once");
}
