//! Error messages, exit codes, JSON output and the embedded-default main job.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

fn no_noise(out: &Out) {
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    assert!(!out.stderr.contains("stack backtrace"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("RUST_BACKTRACE=1 for details"),
        "{}",
        out.stderr
    );
}

#[test]
fn missing_repository_exits_10_and_says_how_to_create_one() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for args in [
        vec!["snapshots"],
        vec!["backup", src.to_str().unwrap()],
        vec!["restore", "latest", "--target", "/tmp/x"],
        vec!["check"],
    ] {
        let out = env.bulwark(&args);
        assert_eq!(out.code, 10, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("there is no repository at"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("bulwark init"),
            "{args:?}: {}",
            out.stderr
        );
        no_noise(&out);
    }
    assert!(!env.repo.exists(), "nothing was created");
}

#[test]
fn wrong_password_exits_11() {
    let env = Env::new();
    env.init();
    // BULWARK_PASSWORD works as well as the file
    let ok = run(
        env.cmd()
            .env_remove("BULWARK_PASSWORD_FILE")
            .env("BULWARK_PASSWORD", "correct horse battery staple")
            .arg("snapshots"),
        TIMEOUT,
    );
    ok.ok();
    std::fs::write(&env.pw, "not the password\n").unwrap();
    let out = env.bulwark(&["snapshots"]);
    assert_eq!(out.code, 11, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the password does not open the repository"),
        "{}",
        out.stderr
    );
    no_noise(&out);
    let out = run(
        env.cmd()
            .env_remove("BULWARK_PASSWORD_FILE")
            .env("BULWARK_PASSWORD", "wrong")
            .args(["restore", "latest", "--target", "/tmp/x"]),
        TIMEOUT,
    );
    assert_eq!(out.code, 11, "{}", out.stderr);
}

#[test]
fn missing_password_file_is_named() {
    let env = Env::new();
    env.init();
    let out = run(
        env.cmd()
            .env("BULWARK_PASSWORD_FILE", env.path("nope"))
            .arg("snapshots"),
        TIMEOUT,
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains(&format!("{} does not exist", env.path("nope").display())),
        "{}",
        out.stderr
    );
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
    while std::fs::read_dir(env.repo.join("locks"))
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
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
        (
            vec!["restore", "zzzz", "--target", "/tmp/x"],
            "`zzzz` is not a snapshot id",
        ),
        (
            vec!["restore", "0000000", "--target", "/tmp/x"],
            "no snapshot with id `0000000`",
        ),
        (
            vec!["dump", "latest", "/does/not/exist"],
            "/does/not/exist is not in snapshot",
        ),
        (
            vec!["ls", "latest", "/does/not/exist"],
            "/does/not/exist is not in snapshot",
        ),
        (
            vec!["backup", "/does/not/exist"],
            "the source path /does/not/exist does not exist",
        ),
        (vec!["check", "--read-data-subset", "250%"], "out of range"),
        (
            vec!["forget", "--keep-within", "5 weeks"],
            "bad --keep-within",
        ),
    ] {
        let out = env.bulwark(&args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.lines().count() <= 3,
            "{args:?}: short message please: {}",
            out.stderr
        );
        no_noise(&out);
    }
}

#[test]
fn config_check_reports_file_line_col() {
    let env = Env::new();
    let cfg = env.path("bulwark.toml");
    std::fs::write(&cfg, "[repositories.r]\nurl = \"/x\"\npassword_file = \"/p\"\n\n[jobs.a]\nrepository = \"r\"\npathes = [\"/etc\"]\n").unwrap();
    let out = env.bulwark(&[
        std::ffi::OsStr::new("config"),
        std::ffi::OsStr::new("check"),
        cfg.as_os_str(),
    ]);
    assert_eq!(out.code, 1);
    let expected = format!("{}:7:1: unknown key `pathes`", cfg.display());
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean `paths`?"),
        "{}",
        out.stderr
    );
    std::fs::write(&cfg, "[repositories.r]\nurl = \"/x\"\npassword_file = \"/p\"\n\n[jobs.a]\nrepository = \"r\"\npaths = [\"/etc\"]\n").unwrap();
    let ok = env.bulwark(&[
        std::ffi::OsStr::new("--json"),
        std::ffi::OsStr::new("config"),
        std::ffi::OsStr::new("check"),
        cfg.as_os_str(),
    ]);
    assert_eq!(ok.ok().json()["valid"], true);
    // a command given a broken config says so before touching anything
    let out = run(
        env.cmd()
            .arg("-c")
            .arg(env.path("missing.toml"))
            .arg("snapshots"),
        TIMEOUT,
    );
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
    let b = env
        .bulwark(&["--json", "backup", src.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(b["snapshot"]["summary"]["files_new"], 2);
    let s = env.bulwark(&["--json", "snapshots"]).ok().json();
    assert_eq!(s[0]["id"], b["snapshot"]["id"]);
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    assert!(ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "file" && e["size"] == 1));
    let d = env
        .bulwark(&["--json", "diff", "latest", "latest"])
        .ok()
        .json();
    assert_eq!(d["changes"].as_array().unwrap().len(), 0);
    let c = env.bulwark(&["--json", "check"]).ok().json();
    assert_eq!(c["ok"], true);
    let f = env
        .bulwark(&["--json", "forget", "--keep-last", "5"])
        .ok()
        .json();
    assert_eq!(f["forget"]["removed"].as_array().unwrap().len(), 0);

    let target = env.path("t");
    let inc = src.join("keep").to_string_lossy().into_owned();
    let r = env
        .bulwark(&[
            "--json",
            "restore",
            "latest",
            "--target",
            target.to_str().unwrap(),
            "--include",
            &inc,
        ])
        .ok()
        .json();
    assert_eq!(r["files_restored"], 1);
    assert_eq!(
        std::fs::read(under(&target, &src).join("keep/sub/a")).unwrap(),
        b"a"
    );
    assert!(!under(&target, &src).join("other").exists());
    // repeatable
    let t2 = env.path("t2");
    let other = src.join("other/b").to_string_lossy().into_owned();
    let r = env
        .bulwark(&[
            "--json",
            "restore",
            "latest",
            "--target",
            t2.to_str().unwrap(),
            "--include",
            &inc,
            "--include",
            &other,
        ])
        .ok()
        .json();
    assert_eq!(r["files_restored"], 2);
    assert_eq!(
        std::fs::read(under(&t2, &src).join("other/b")).unwrap(),
        b"b"
    );
    // nothing matching is an error, not an empty success
    let none = env.bulwark(&[
        "restore",
        "latest",
        "--target",
        env.path("t3").to_str().unwrap(),
        "--include",
        "/no/such/path",
    ]);
    assert_eq!(none.code, 1, "{}", none.stderr);
    no_noise(&none);
}

#[test]
fn help_documents_exit_codes() {
    let env = Env::new();
    let out = env.bulwark(&["--help"]);
    out.ok();
    for code in ["130", "12 ", "11 ", "10 ", "3 "] {
        assert!(
            out.stdout.contains(&format!("    {code}")),
            "exit code {code} missing from --help"
        );
    }
}

#[test]
fn run_uses_the_embedded_default_on_a_fresh_machine() {
    let env = Env::new();
    let home = env.path("bulwark-home");
    let out = run(
        env.cmd()
            .env_remove("BULWARK_REPO")
            .env_remove("BULWARK_PASSWORD_FILE")
            .env("BULWARK_HOME", &home)
            .current_dir(env.dir.path())
            .args(["--json", "run"]),
        TIMEOUT,
    );
    // as a non-root user some files of /etc are unreadable: that is exit 3, and fine
    assert!(
        out.code == 0 || out.code == 3,
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains("COPY THAT FILE SOMEWHERE SAFE"),
        "{}",
        out.stderr
    );
    let pw = home.join("repo.password");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&pw).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let reports = out.json();
    assert_eq!(reports[0]["job"], "default");
    assert!(reports[0]["backup"]["snapshot"]["paths"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("/etc")));
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
    let again = run(
        env.cmd()
            .env_remove("BULWARK_REPO")
            .env_remove("BULWARK_PASSWORD_FILE")
            .env("BULWARK_HOME", &home)
            .current_dir(env.dir.path())
            .args(["run"]),
        TIMEOUT,
    );
    assert!(again.code == 0 || again.code == 3, "{}", again.stderr);
    assert!(
        !again.stderr.contains("COPY THAT FILE"),
        "the password is generated only once"
    );
}

#[test]
fn init_never_overwrites_an_existing_repository() {
    let env = Env::new();
    env.init();
    let config = std::fs::read(env.repo.join("config")).unwrap();
    let keys: Vec<_> = std::fs::read_dir(env.repo.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    std::fs::write(&env.pw, "a different password\n").unwrap();
    let out = env.bulwark(&["init"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    no_noise(&out);
    assert_eq!(std::fs::read(env.repo.join("config")).unwrap(), config);
    let keys2: Vec<_> = std::fs::read_dir(env.repo.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys, keys2);
    std::fs::write(&env.pw, "correct horse battery staple\n").unwrap();
    env.bulwark(&["snapshots"]).ok();
    env.restic(&["snapshots"]).ok();
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    for args in [
        vec!["restore", "latest"],
        vec!["backup", "--no-such-flag"],
        vec!["frobnicate"],
        vec!["check", "--read-data", "--read-data-subset", "5%"],
    ] {
        let out = env.bulwark(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        no_noise(&out);
    }
}

#[test]
fn backup_records_absolute_paths_host_tags_and_honours_excludes() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("cache-dir")).unwrap();
    std::fs::create_dir_all(src.join("keep")).unwrap();
    std::fs::write(src.join("cache-dir/.nobackup"), b"").unwrap();
    std::fs::write(src.join("cache-dir/big"), b"skip me").unwrap();
    std::fs::write(src.join("keep/a.txt"), b"a").unwrap();
    std::fs::write(src.join("keep/b.tmp"), b"tmp").unwrap();
    std::fs::write(src.join("top.tmp"), b"tmp").unwrap();
    // a relative path from the working directory
    let out = run(
        env.cmd().current_dir(env.dir.path()).args([
            "--json",
            "backup",
            "src",
            "--exclude",
            "*.tmp",
            "--exclude-if-present",
            ".nobackup",
            "--host",
            "nas",
            "--tag",
            "daily",
            "--tag",
            "etc",
        ]),
        TIMEOUT,
    );
    out.ok();
    let j = out.json();
    assert_eq!(
        j["snapshot"]["paths"],
        serde_json::json!([src.to_str().unwrap()]),
        "paths are absolute"
    );
    assert_eq!(j["snapshot"]["hostname"], "nas");
    let mut tags: Vec<String> = j["snapshot"]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["daily", "etc"]);
    let ls = env
        .bulwark(&["--json", "ls", "latest", src.to_str().unwrap()])
        .ok()
        .json();
    let mut names: Vec<String> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .strip_prefix(src.to_str().unwrap())
                .unwrap()
                .to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, vec!["", "/keep", "/keep/a.txt"], "excludes applied");

    // filters
    env.bulwark(&["backup", src.to_str().unwrap(), "--host", "other"])
        .ok();
    let s = env
        .bulwark(&["--json", "snapshots", "--host", "nas"])
        .ok()
        .json();
    assert_eq!(s.as_array().unwrap().len(), 1);
    let s = env
        .bulwark(&["--json", "snapshots", "--tag", "daily"])
        .ok()
        .json();
    assert_eq!(s.as_array().unwrap().len(), 1);
    assert_eq!(s[0]["hostname"], "nas");
    assert_eq!(env.snapshot_ids().len(), 2);
}

#[test]
fn second_backup_uses_the_first_as_parent() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..5 {
        std::fs::write(src.join(format!("f{i}")), random_bytes(i, 10_000)).unwrap();
    }
    let first = env
        .bulwark(&["--json", "backup", src.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(first["snapshot"]["summary"]["files_new"], 5);
    std::fs::write(src.join("f0"), b"changed").unwrap();
    let second = env
        .bulwark(&["--json", "backup", src.to_str().unwrap()])
        .ok()
        .json();
    let s = &second["snapshot"];
    assert_eq!(s["parent"], first["snapshot"]["id"]);
    assert_eq!(
        (
            s["summary"]["files_new"].as_u64(),
            s["summary"]["files_changed"].as_u64(),
            s["summary"]["files_unmodified"].as_u64()
        ),
        (Some(0), Some(1), Some(4)),
        "{s}"
    );
    assert_eq!(s["summary"]["total_files_processed"], 5);
}

#[test]
fn ls_reports_types_modes_times_owners_and_link_targets() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/f"), b"12345").unwrap();
    chmod(&src.join("d/f"), 0o640);
    std::os::unix::fs::symlink("d/f", src.join("l")).unwrap();
    set_mtime(&src.join("d/f"), 1_500_000_000);
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    let ls = env
        .bulwark(&["--json", "ls", "latest", src.to_str().unwrap()])
        .ok()
        .json();
    assert!(ls["snapshot"]["id"].is_string());
    assert_eq!(ls["errors"], serde_json::json!([]));
    let get = |rel: &str| {
        let p = src.join(rel);
        ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == p.to_str().unwrap())
            .cloned()
            .unwrap_or_else(|| panic!("{rel} not listed: {ls}"))
    };
    let f = get("d/f");
    assert_eq!(f["type"], "file");
    assert_eq!(f["size"], 5);
    assert_eq!(f["mode"], 0o640);
    assert!(
        f["mtime"]
            .as_str()
            .unwrap()
            .starts_with("2017-07-14T02:40:00"),
        "{f}"
    );
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(src.join("d/f")).unwrap();
    assert_eq!(
        (f["uid"].as_u64(), f["gid"].as_u64()),
        (Some(u64::from(m.uid())), Some(u64::from(m.gid())))
    );
    assert_eq!(f["link_target"], serde_json::Value::Null);
    let l = get("l");
    assert_eq!(l["type"], "symlink");
    assert_eq!(l["link_target"], "d/f");
    assert_eq!(get("d")["type"], "dir");
    // ls PATH: only that subtree
    let sub = env
        .bulwark(&["--json", "ls", "latest", src.join("d").to_str().unwrap()])
        .ok()
        .json();
    let paths: Vec<&str> = sub["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            src.join("d").to_str().unwrap(),
            src.join("d/f").to_str().unwrap()
        ]
    );
    // dump of a directory is refused in one sentence
    let d = env.bulwark(&["dump", "latest", src.join("d").to_str().unwrap()]);
    assert_eq!(d.code, 1);
    assert!(d.stderr.contains("not a file"), "{}", d.stderr);
    no_noise(&d);
}

#[test]
fn diff_names_every_kind_of_change() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for f in ["same", "content", "meta", "gone", "kind"] {
        std::fs::write(src.join(f), f).unwrap();
        set_mtime(&src.join(f), 1_500_000_000);
    }
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("content"), b"new content").unwrap();
    chmod(&src.join("meta"), 0o600);
    std::fs::remove_file(src.join("gone")).unwrap();
    std::fs::remove_file(src.join("kind")).unwrap();
    std::os::unix::fs::symlink("same", src.join("kind")).unwrap();
    std::fs::write(src.join("added"), b"added").unwrap();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    let ids = env.snapshot_ids();
    let d = env
        .bulwark(&["--json", "diff", &ids[0], &ids[1]])
        .ok()
        .json();
    let changes: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let p = |n: &str| src.join(n).to_string_lossy().into_owned();
    for (c, n) in [
        ("+", "added"),
        ("-", "gone"),
        ("M", "content"),
        ("U", "meta"),
        ("T", "kind"),
    ] {
        assert!(
            changes.contains(&(c.to_string(), p(n))),
            "{c} {n} missing: {changes:?}"
        );
    }
    assert!(
        !changes.iter().any(|(_, path)| *path == p("same")),
        "{changes:?}"
    );
    for k in ["added", "removed", "modified", "metadata", "type_changed"] {
        assert_eq!(d[k], 1, "{k}: {d}");
    }
    let text = env.bulwark(&["diff", &ids[0], &ids[1]]).ok().stdout.clone();
    assert!(
        text.contains("1 added, 1 removed, 1 modified, 1 metadata only, 1 type changed"),
        "{text}"
    );
}

#[test]
fn forget_filters_and_check_subset() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    for tag in ["a", "a", "a", "b", "b"] {
        env.bulwark(&["backup", src.to_str().unwrap(), "--tag", tag])
            .ok();
    }
    let f = env
        .bulwark(&["--json", "forget", "--keep-last", "1", "--tag", "a"])
        .ok()
        .json();
    assert_eq!(f["forget"]["removed"].as_array().unwrap().len(), 2, "{f}");
    assert_eq!(f["forget"]["dry_run"], false);
    let g = &f["forget"]["groups"][0];
    assert_eq!(g["paths"], serde_json::json!([src.to_str().unwrap()]));
    let kept: Vec<_> = g["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == true)
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["reasons"], serde_json::json!(["last"]));
    assert_eq!(
        env.snapshot_ids().len(),
        3,
        "the two `b` snapshots are untouched"
    );
    let dry = env
        .bulwark(&["--json", "forget", "--keep-last", "1", "--dry-run"])
        .ok()
        .json();
    assert_eq!(dry["forget"]["removed"].as_array().unwrap().len(), 2);
    assert_eq!(dry["forget"]["dry_run"], true);
    assert_eq!(dry["prune"], serde_json::Value::Null);
    assert_eq!(env.snapshot_ids().len(), 3, "--dry-run removes nothing");
    let c = env
        .bulwark(&["--json", "check", "--read-data-subset", "10%"])
        .ok()
        .json();
    assert_eq!(c["ok"], true);
    assert_eq!(c["read_data"], true);
    assert_eq!(c["errors"], serde_json::json!([]));
}

#[test]
fn copy_to_a_missing_destination_exits_10_naming_it() {
    let env = Env::new();
    env.init();
    let dest = env.path("nowhere");
    let out = env.bulwark(&[
        "copy",
        "--to",
        dest.to_str().unwrap(),
        "--to-password-file",
        env.pw.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 10, "{}", out.stderr);
    assert!(out.stderr.contains("destination"), "{}", out.stderr);
    no_noise(&out);
}

/// `bulwark ls | head` and `bulwark dump ... | head`: the reader going away
/// is not an error (main.rs maps a broken pipe to exit 0).
#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::io::Read;
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..300 {
        std::fs::write(src.join(format!("file-with-a-long-name-{i:04}")), b"x").unwrap();
    }
    std::fs::write(src.join("big"), random_bytes(1, 4_000_000)).unwrap();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    let big = src.join("big").to_string_lossy().into_owned();
    let mut problems = Vec::new();
    for args in [vec!["ls", "latest"], vec!["dump", "latest", big.as_str()]] {
        let mut child = env
            .cmd()
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 10];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() != Some(0) || stderr.contains("bulwark:") {
            problems.push(format!(
                "{args:?} | head: exit {:?}, stderr: {stderr}",
                out.status.code()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
