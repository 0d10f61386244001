//! Never lose data, never crash on bad data: unreadable files, kill -9 in the
//! middle of a backup or a prune, damaged packs.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

fn urandom_file(path: &Path, bytes: u64) {
    let mut src = std::fs::File::open("/dev/urandom").unwrap();
    let mut dst = std::fs::File::create(path).unwrap();
    std::io::copy(&mut std::io::Read::take(&mut src, bytes), &mut dst).unwrap();
}

fn both_checks_pass(env: &Env, when: &str) {
    let b = env.bulwark(&["check", "--read-data"]);
    assert_eq!(b.code, 0, "bulwark check after {when}: {}\n{}", b.stdout, b.stderr);
    let r = env.restic(&["check", "--read-data"]);
    assert_eq!(r.code, 0, "restic check after {when}: {}\n{}", r.stdout, r.stderr);
}

#[test]
fn unreadable_file_is_skipped_listed_and_the_snapshot_lands() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("readable"), b"fine").unwrap();
    std::fs::write(src.join("secret"), b"nobody may read this").unwrap();
    std::fs::set_permissions(src.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
    env.init();
    let mut cmd = env.cmd();
    if is_root() {
        // root reads anything: run as nobody so the permission bits bite
        for p in [env.dir.path(), &src, &env.repo] {
            chmod_r(p);
        }
        std::fs::set_permissions(&env.pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(src.join("secret"), std::fs::Permissions::from_mode(0o000)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        for (k, v) in env.cmd().get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c.env("XDG_CACHE_HOME", env.path("nobody-cache"));
        cmd = c;
    }
    let out: Out = cmd.args(["--json", "backup"]).arg(&src).output().unwrap().into();
    assert_eq!(out.code, 3, "exit 3 = incomplete\n{}\n{}", out.stdout, out.stderr);
    let j = out.json();
    assert_eq!(j["incomplete"], true);
    let skipped = j["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{j}");
    assert_eq!(skipped[0]["path"], src.join("secret").to_str().unwrap());
    assert!(skipped[0]["error"].as_str().unwrap().contains("ermission denied"), "{j}");

    let snaps = env.bulwark(&["--json", "snapshots"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "the snapshot landed");
    let target = env.path("out");
    env.bulwark(&["restore", "latest", "--target", target.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(under(&target, &src).join("readable")).unwrap(), b"fine");
    assert!(!under(&target, &src).join("secret").exists());
}

fn chmod_r(p: &Path) {
    let st = Command::new("chmod").args(["-R", "a+rwX"]).arg(p).status().unwrap();
    assert!(st.success());
}

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
        let mut child = env.cmd().arg("backup").arg(&src).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            killed_mid_run += 1;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        both_checks_pass(&env, &format!("kill -9 at {delay} ms"));
    }
    assert!(killed_mid_run >= 1, "no backup was still running when killed; the test proves nothing");
    let b = env.bulwark(&["--json", "backup", src.to_str().unwrap()]);
    b.ok();
    let target = env.path("out");
    env.bulwark(&["restore", "latest", "--target", target.to_str().unwrap(), "--verify"]).ok();
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
    let mut keep = 4;
    for delay in [30u64, 120, 400] {
        let mut child = env
            .cmd()
            .args(["forget", "--prune", "--keep-last", &keep.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
        both_checks_pass(&env, &format!("kill -9 of forget --prune at {delay} ms"));
        keep -= 1;
    }
    env.bulwark(&["prune"]).ok();
    both_checks_pass(&env, "a final prune");
    let target = env.path("out");
    env.bulwark(&["restore", "latest", "--target", target.to_str().unwrap(), "--verify"]).ok();
    assert_same_tree(&src, &under(&target, &src));
}

fn packs(repo: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for d in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            out.insert(f.unwrap().path());
        }
    }
    out
}

#[test]
fn damaged_pack_restores_every_intact_file_and_exits_3() {
    let env = Env::new();
    let (a, b) = (env.path("a"), env.path("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for i in 0..5 {
        std::fs::write(a.join(format!("a{i}")), random_bytes(i, 400_000)).unwrap();
        std::fs::write(b.join(format!("b{i}")), random_bytes(50 + i, 400_000)).unwrap();
    }
    env.init();
    env.bulwark(&["backup", a.to_str().unwrap()]).ok();
    let before = packs(&env.repo);
    env.bulwark(&["backup", a.to_str().unwrap(), b.to_str().unwrap()]).ok();
    let data_pack = packs(&env.repo)
        .difference(&before)
        .cloned()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&data_pack).unwrap();
    for i in (0..bytes.len()).step_by(40_000) {
        bytes[i] ^= 0xa5;
    }
    std::fs::write(&data_pack, &bytes).unwrap();

    let target = env.path("out");
    let r = env.bulwark(&["--json", "restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let j = r.json();
    let failed: Vec<&str> = j["failed"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(failed.len(), 5, "{failed:?}");
    for i in 0..5 {
        assert_eq!(std::fs::read(under(&target, &a).join(format!("a{i}"))).unwrap(), random_bytes(i, 400_000));
        assert!(failed.contains(&b.join(format!("b{i}")).to_str().unwrap()));
    }
    let c = env.bulwark(&["check", "--read-data"]);
    assert_eq!(c.code, 1, "check must fail on a damaged pack: {}\n{}", c.stdout, c.stderr);
    assert!(c.stdout.contains("damaged") || c.stderr.contains("error"), "{}\n{}", c.stdout, c.stderr);

    // a missing pack: the same promise
    std::fs::remove_file(&data_pack).unwrap();
    let target2 = env.path("out2");
    let r = env.bulwark(&["--json", "restore", "latest", "--target", target2.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.json()["failed"].as_array().unwrap().len(), 5);
    assert_eq!(std::fs::read(under(&target2, &a).join("a4")).unwrap(), random_bytes(4, 400_000));
}

#[test]
fn full_disk_during_restore_is_one_clear_sentence() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("big"), random_bytes(9, 3_000_000)).unwrap();
    env.init();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    // a 1 MiB tmpfs in a private mount namespace (user namespace when not root)
    let userns: &[&str] = if is_root() { &[] } else { &["-r"] };
    let probe = Command::new("unshare").args(userns).args(["-m", "true"]).status();
    if !probe.map(|s| s.success()).unwrap_or(false) {
        // CI and the dev machines of this project can; a laptop without user
        // namespaces can't make a small disk, so there is nothing to check
        eprintln!("SKIPPED full_disk_during_restore: this machine allows no mount namespace");
        return;
    }
    let target = env.path("tiny");
    std::fs::create_dir_all(&target).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{t}' && exec '{bin}' restore latest --target '{t}'",
        t = target.display(),
        bin = BIN
    );
    let mut cmd = Command::new("unshare");
    cmd.args(userns).args(["-m", "--propagation", "private", "sh", "-c", &script]);
    for (k, v) in env.cmd().get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out: Out = cmd.output().unwrap().into();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is full"), "{}", out.stderr);
    assert!(out.stderr.contains("free some space"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}
