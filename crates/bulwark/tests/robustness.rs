//! Never lose data, never crash on bad data: unreadable files, kill -9 in the
//! middle of a backup or a prune, damaged and missing packs, a full disk.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

fn both_checks_pass(env: &Env, when: &str) {
    let b = env.bulwark(&["check", "--read-data"]);
    assert_eq!(
        b.code, 0,
        "bulwark check --read-data after {when}:\n{}\n{}",
        b.stdout, b.stderr
    );
    let r = env.restic(&["check", "--read-data"]);
    assert_eq!(
        r.code, 0,
        "restic check --read-data after {when}:\n{}\n{}",
        r.stdout, r.stderr
    );
}

// ---------------------------------------------------------------- unreadable

#[test]
fn unreadable_file_is_skipped_listed_and_the_snapshot_lands() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("readable"), b"fine").unwrap();
    std::fs::write(src.join("sub/also-readable"), b"also fine").unwrap();
    std::fs::write(src.join("secret"), b"nobody may read this").unwrap();
    env.init();
    let mut cmd = env.cmd_unprivileged();
    chmod(&src.join("secret"), 0o000);
    let out = run(cmd.args(["--json", "backup"]).arg(&src), TIMEOUT);
    assert_eq!(
        out.code, 3,
        "exit 3 = incomplete\n{}\n{}",
        out.stdout, out.stderr
    );
    let j = out.json();
    assert_eq!(j["incomplete"], true);
    let skipped = j["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{j}");
    assert_eq!(skipped[0]["path"], src.join("secret").to_str().unwrap());
    assert!(
        skipped[0]["error"]
            .as_str()
            .unwrap()
            .contains("ermission denied"),
        "{j}"
    );
    let id = j["snapshot"]["id"].as_str().unwrap();

    assert_eq!(
        env.snapshot_ids(),
        vec![id.to_string()],
        "the snapshot landed"
    );
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    let paths: Vec<&str> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        !paths.contains(&src.join("secret").to_str().unwrap()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&src.join("sub/also-readable").to_str().unwrap()),
        "{paths:?}"
    );

    let target = env.path("out");
    let r = env.bulwark(&[
        "--json",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    r.ok();
    assert_eq!(r.json()["files_verified"], 2);
    assert_eq!(
        std::fs::read(under(&target, &src).join("readable")).unwrap(),
        b"fine"
    );
    assert_eq!(
        std::fs::read(under(&target, &src).join("sub/also-readable")).unwrap(),
        b"also fine"
    );
    assert!(!under(&target, &src).join("secret").exists());
}

#[test]
fn unreadable_directory_is_skipped_and_listed_by_its_path() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("locked")).unwrap();
    std::fs::create_dir_all(src.join("open")).unwrap();
    std::fs::write(src.join("locked/inside"), b"hidden").unwrap();
    std::fs::write(src.join("open/a"), b"a").unwrap();
    env.init();
    let mut cmd = env.cmd_unprivileged();
    chmod(&src.join("locked"), 0o000);
    let out = run(cmd.args(["--json", "backup"]).arg(&src), TIMEOUT);
    chmod(&src.join("locked"), 0o755);
    assert_eq!(out.code, 3, "{}\n{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["incomplete"], true);
    let skipped = j["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{j}");
    assert_eq!(
        skipped[0]["path"],
        src.join("locked").to_str().unwrap(),
        "the skipped entry names the directory: {j}"
    );
    let target = env.path("out");
    env.bulwark(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_eq!(
        std::fs::read(under(&target, &src).join("open/a")).unwrap(),
        b"a"
    );
}

// ---------------------------------------------------------------- kill -9

#[test]
fn kill_9_during_backup_leaves_a_valid_repository() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..6 {
        urandom_file(&src.join(format!("f{i}")), 25 << 20);
    }
    env.init();
    let mut killed_mid_run = 0;
    for delay in [300u64, 800, 1500] {
        let mut child = env
            .cmd()
            .arg("backup")
            .arg(&src)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        both_checks_pass(&env, &format!("kill -9 of backup at {delay} ms"));
    }
    assert!(
        killed_mid_run >= 2,
        "backups finished before the kill; the test proves nothing"
    );
    let b = env.bulwark(&["--json", "backup", src.to_str().unwrap()]);
    b.ok();
    assert_eq!(b.json()["incomplete"], false);
    let target = env.path("out");
    env.bulwark(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ])
    .ok();
    assert_same_tree(&src, &under(&target, &src));
    both_checks_pass(&env, "the final backup");
}

#[test]
fn kill_9_during_forget_and_prune_leaves_a_valid_repository() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    env.init();
    for round in 0..5 {
        for i in 0..4 {
            urandom_file(&src.join(format!("f{i}")), 6 << 20);
        }
        std::fs::write(src.join("round"), format!("{round}")).unwrap();
        env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    }
    let mut killed_mid_run = 0;
    for (delay, keep) in [(100u64, 1), (40, 1), (250, 1)] {
        let mut child = env
            .cmd()
            .args(["forget", "--prune", "--keep-last", &keep.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        both_checks_pass(&env, &format!("kill -9 of forget --prune at {delay} ms"));
    }
    assert!(
        killed_mid_run >= 1,
        "forget --prune always finished before the kill; the test proves nothing"
    );
    env.bulwark(&["forget", "--keep-last", "1", "--prune"]).ok();
    both_checks_pass(&env, "a final forget --prune");
    assert_eq!(env.snapshot_ids().len(), 1);
    let target = env.path("out");
    env.bulwark(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ])
    .ok();
    assert_same_tree(&src, &under(&target, &src));
}

// ---------------------------------------------------------------- damaged packs

struct Damaged {
    env: Env,
    a: PathBuf,
    b: PathBuf,
    pack: PathBuf,
}

const A_FILES: u64 = 4;
const B_FILES: u64 = 4;
const SIZE: usize = 1_000_000;

fn a_content(i: u64) -> Vec<u8> {
    random_bytes(i, SIZE)
}
fn b_content(i: u64) -> Vec<u8> {
    random_bytes(100 + i, SIZE)
}

/// Backs up set A, then A + B; returns the largest pack the second backup wrote.
fn two_backups() -> Damaged {
    let env = Env::new();
    let (a, b) = (env.path("a"), env.path("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for i in 0..A_FILES {
        std::fs::write(a.join(format!("a{i}")), a_content(i)).unwrap();
    }
    for i in 0..B_FILES {
        std::fs::write(b.join(format!("b{i}")), b_content(i)).unwrap();
    }
    env.init();
    env.bulwark(&["backup", a.to_str().unwrap()]).ok();
    let before = packs(&env.repo);
    env.bulwark(&["backup", a.to_str().unwrap(), b.to_str().unwrap()])
        .ok();
    let pack = packs(&env.repo)
        .difference(&before)
        .cloned()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("the second backup wrote no pack");
    assert!(
        std::fs::metadata(&pack).unwrap().len() > SIZE as u64,
        "expected a data pack"
    );
    Damaged { env, a, b, pack }
}

/// Overwrites 4 KiB in the middle of the pack with garbage, keeping its length.
fn corrupt_middle(pack: &Path) {
    let mut bytes = std::fs::read(pack).unwrap();
    let len = bytes.len();
    let mid = len / 2;
    bytes[mid..mid + 4096].copy_from_slice(&random_bytes(999, 4096));
    std::fs::write(pack, &bytes).unwrap();
    assert_eq!(std::fs::metadata(pack).unwrap().len() as usize, len);
}

/// The B files restic 0.14 cannot restore intact: the oracle for what Bulwark must report.
fn damaged_per_restic(d: &Damaged) -> BTreeSet<String> {
    let t = d.env.path(&format!("restic-oracle-{}", rand_suffix()));
    let _ = d
        .env
        .restic(&["restore", "latest", "--target", t.to_str().unwrap()]);
    for i in 0..A_FILES {
        assert_eq!(
            std::fs::read(under(&t, &d.a).join(format!("a{i}"))).ok(),
            Some(a_content(i)),
            "restic lost an A file"
        );
    }
    let out: BTreeSet<String> = (0..B_FILES)
        .filter(|i| {
            std::fs::read(under(&t, &d.b).join(format!("b{i}"))).ok() != Some(b_content(*i))
        })
        .map(|i| d.b.join(format!("b{i}")).to_string_lossy().into_owned())
        .collect();
    assert!(
        !out.is_empty(),
        "the damage hit no B file; the test setup proves nothing"
    );
    out
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Restore of the damaged repository: exit 3, every intact file restored
/// byte-identical, exactly the damaged files listed in `failed` and absent.
fn assert_partial_restore(d: &Damaged, expected_failed: &BTreeSet<String>, what: &str) {
    let target = d.env.path(&format!("out-{what}"));
    let r = d.env.bulwark(&[
        "--json",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        r.code, 3,
        "{what}: exit 3 expected\n{}\n{}",
        r.stdout, r.stderr
    );
    assert_no_crash_text(what, &r.stderr);
    let j = r.json();
    assert_eq!(j["incomplete"], true, "{what}");
    let failed: BTreeSet<String> = j["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&failed, expected_failed, "{what}: failed paths");
    for i in 0..A_FILES {
        let p = under(&target, &d.a).join(format!("a{i}"));
        assert!(
            std::fs::read(&p).ok() == Some(a_content(i)),
            "{what}: {} not restored intact",
            p.display()
        );
    }
    for i in 0..B_FILES {
        let orig = d.b.join(format!("b{i}"));
        let p = under(&target, &d.b).join(format!("b{i}"));
        if failed.contains(orig.to_str().unwrap()) {
            assert!(
                !p.exists(),
                "{what}: a failed file must not be left behind: {}",
                p.display()
            );
        } else {
            assert!(
                std::fs::read(&p).ok() == Some(b_content(i)),
                "{what}: {} not restored intact",
                p.display()
            );
        }
    }
    assert_eq!(
        j["files_restored"].as_u64().unwrap(),
        A_FILES + B_FILES - failed.len() as u64,
        "{what}: {j}"
    );
}

#[test]
fn corrupted_pack_restores_every_intact_file_and_exits_3() {
    let d = two_backups();
    corrupt_middle(&d.pack);
    let expected = damaged_per_restic(&d);
    assert_partial_restore(&d, &expected, "corrupted pack");
}

#[test]
fn missing_pack_restores_every_intact_file_and_exits_3() {
    let d = two_backups();
    std::fs::remove_file(&d.pack).unwrap();
    let expected = damaged_per_restic(&d);
    assert_partial_restore(&d, &expected, "missing pack");
}

#[test]
fn check_read_data_exits_1_and_names_the_damaged_pack() {
    let d = two_backups();
    let id = d.pack.file_name().unwrap().to_str().unwrap().to_string();
    corrupt_middle(&d.pack);
    let r = d.env.restic(&["check", "--read-data"]);
    assert_eq!(
        r.code, 1,
        "restic agrees the repository is damaged: {}\n{}",
        r.stdout, r.stderr
    );

    let c = d.env.bulwark(&["check", "--read-data"]);
    assert_eq!(
        c.code, 1,
        "check must fail on a damaged pack: {}\n{}",
        c.stdout, c.stderr
    );
    assert_no_crash_text("check", &c.stderr);
    let all = format!("{}{}", c.stdout, c.stderr);
    assert!(
        all.contains(&id[..8]),
        "the damaged pack {id} is not named:\n{all}"
    );
    let j = d.env.bulwark(&["--json", "check", "--read-data"]);
    assert_eq!(j.code, 1);
    let j = j.json();
    assert_eq!(j["ok"], false);
    assert_eq!(j["read_data"], true);
    let errors = j["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains(&id[..8])),
        "{j}"
    );

    // a deleted pack is found even without reading data
    std::fs::remove_file(&d.pack).unwrap();
    let c = d.env.bulwark(&["check"]);
    assert_eq!(
        c.code, 1,
        "check must fail on a missing pack: {}\n{}",
        c.stdout, c.stderr
    );
    let all = format!("{}{}", c.stdout, c.stderr);
    assert!(
        all.contains(&id[..8]),
        "the missing pack {id} is not named:\n{all}"
    );
}

/// Errors about damaged data are short: one line each, no library backtrace
/// section, no nonce dumps (they end up in JSON, logs and e-mails).
#[test]
fn damage_reports_are_one_line_without_backtrace_sections() {
    let d = two_backups();
    corrupt_middle(&d.pack);
    let target = d.env.path("out");
    let r = d.env.bulwark(&[
        "--json",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 3);
    let j = r.json();
    let mut problems = Vec::new();
    for f in j["failed"].as_array().unwrap() {
        let e = f["error"].as_str().unwrap();
        if e.contains('\n') || e.contains("Backtrace") {
            problems.push(format!(
                "restore failed[].error is {} lines, with a backtrace section:\n{e}",
                e.lines().count()
            ));
        }
    }
    let c = d.env.bulwark(&["check", "--read-data"]);
    assert_eq!(c.code, 1);
    if c.stderr.contains("Backtrace") || c.stderr.lines().count() > 6 {
        problems.push(format!(
            "check's report of one damaged pack is {} lines, with a backtrace section:\n{}",
            c.stderr.lines().count(),
            c.stderr
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

// ---------------------------------------------------------------- full disk

#[test]
fn full_disk_during_restore_is_one_clear_sentence() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), random_bytes(9, 3_000_000)).unwrap();
    env.init();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    // a 1 MiB tmpfs in a private mount namespace (user namespace when not root)
    let target = env.path("tiny");
    std::fs::create_dir_all(&target).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{t}' && exec '{bin}' restore latest --target '{t}'",
        t = target.display(),
        bin = BIN
    );
    let mut cmd = Command::new("unshare");
    if !is_root() {
        cmd.arg("-r");
    }
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    cmd.env_clear();
    for (k, v) in env.cmd().get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = run(&mut cmd, TIMEOUT);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is full"), "{}", out.stderr);
    assert!(out.stderr.contains("free some space"), "{}", out.stderr);
    assert_no_crash_text("full disk", &out.stderr);
}

// ---------------------------------------------------------------- restore onto existing files

/// Restoring twice as a normal user: the first restore left a read-only
/// file; the second replaces it instead of failing (and never deletes a
/// file it could not replace). A symlink planted in the target is replaced,
/// not written through.
#[test]
fn second_restore_replaces_read_only_files_and_planted_symlinks() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("ro"), b"read-only content").unwrap();
    std::fs::write(src.join("victim"), b"snapshot content").unwrap();
    chmod(&src.join("ro"), 0o400);
    chmod(&src.join("victim"), 0o4755);
    env.init();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    let ls = env
        .bulwark(&[
            "--json",
            "ls",
            "latest",
            src.join("victim").to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(
        ls["entries"][0]["mode"], 0o4755,
        "ls keeps the setuid bit: {ls}"
    );

    let target = env.path("t");
    std::fs::create_dir_all(&target).unwrap();
    let outside = env.path("outside");
    std::fs::write(&outside, b"must stay").unwrap();
    let mut cmd = env.cmd_unprivileged();
    let first = run(
        cmd.args(["restore", "latest", "--target"]).arg(&target),
        TIMEOUT,
    );
    assert_eq!(first.code, 0, "{}", first.stderr);
    let restored = under(&target, &src);
    std::os::unix::fs::symlink(&outside, restored.join("victim.tmp")).unwrap();
    std::fs::remove_file(restored.join("victim")).unwrap();
    std::fs::rename(restored.join("victim.tmp"), restored.join("victim")).unwrap();
    let mut cmd = env.cmd_unprivileged();
    let second = run(
        cmd.args(["restore", "latest", "--target"]).arg(&target),
        TIMEOUT,
    );
    assert_eq!(second.code, 0, "second restore: {}", second.stderr);
    assert_eq!(
        std::fs::read(restored.join("ro")).unwrap(),
        b"read-only content"
    );
    assert_eq!(
        std::fs::read(restored.join("victim")).unwrap(),
        b"snapshot content"
    );
    assert!(!std::fs::symlink_metadata(restored.join("victim"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read(&outside).unwrap(),
        b"must stay",
        "restore wrote through a planted symlink"
    );
}
