//! restic 0.14 reads, checks and restores what Bulwark writes, and Bulwark
//! reads, restores, diffs and prunes what restic writes.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    ffi::OsStr,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::Path,
};

use common::*;

/// A tree with the awkward cases: odd names, links, modes, mtimes, empties.
fn awkward_tree(root: &Path) {
    std::fs::create_dir_all(root.join("dir with spaces/empty")).unwrap();
    std::fs::write(root.join("dir with spaces/file with spaces.txt"), b"spaces").unwrap();
    std::fs::write(root.join("new\nline"), b"newline in the name").unwrap();
    let bad = root.join(OsStr::from_bytes(b"latin1-\xe9t\xe9"));
    std::fs::write(&bad, b"not utf-8").unwrap();
    std::fs::write(root.join("x".repeat(255)), b"long name").unwrap();
    let mut deep = root.join("deep");
    while deep.as_os_str().len() < root.as_os_str().len() + 1600 {
        deep = deep.join("a-rather-long-directory-name-0123456789");
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("leaf"), b"deep leaf").unwrap();
    std::fs::write(root.join("big.bin"), random_bytes(7, 3_000_000)).unwrap();
    std::fs::write(root.join("empty-file"), b"").unwrap();
    std::os::unix::fs::symlink("big.bin", root.join("link-to-big")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    std::fs::write(root.join("hard-a"), b"hard linked").unwrap();
    std::fs::hard_link(root.join("hard-a"), root.join("hard-b")).unwrap();
    for (name, mode) in [("private", 0o600), ("script.sh", 0o755), ("group", 0o640)] {
        std::fs::write(root.join(name), name).unwrap();
        std::fs::set_permissions(root.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    if is_root() {
        // ownership is restored when root: give files owners that aren't ours
        let st = std::process::Command::new("chown").args(["-h", "1234:5678"]).arg(root.join("group")).arg(root.join("dangling")).status().unwrap();
        assert!(st.success());
    }
    for (i, entry) in ["private", "script.sh", "group", "big.bin", "hard-a"].iter().enumerate() {
        set_mtime(&root.join(entry), 1_500_000_000 + i as i64 * 3600);
    }
}

#[test]
fn restic_checks_and_restores_what_bulwark_wrote() {
    let env = Env::new();
    let src = env.path("src");
    awkward_tree(&src);
    env.init();
    let b = env.bulwark(&["--json", "backup", src.to_str().unwrap()]);
    b.ok();
    let id = b.json()["snapshot"]["id"].as_str().unwrap().to_string();

    env.restic(&["check", "--read-data"]).ok();
    let ls = env.restic(&["ls", "latest"]);
    ls.ok();
    assert!(ls.stdout.contains("file with spaces.txt"), "{}", ls.stdout);
    assert!(ls.stdout.contains(&"x".repeat(255)));

    let by_restic = env.path("by-restic");
    env.restic(&["restore", &id, "--target", by_restic.to_str().unwrap()]).ok();
    assert_same_tree(&src, &under(&by_restic, &src));

    let by_bulwark = env.path("by-bulwark");
    let r = env.bulwark(&["--json", "restore", "latest", "--target", by_bulwark.to_str().unwrap(), "--verify"]);
    r.ok();
    let j = r.json();
    assert_eq!(j["incomplete"], false);
    assert!(j["files_verified"].as_u64().unwrap() >= 9, "{j}");
    assert_same_tree(&src, &under(&by_bulwark, &src));
}

#[test]
fn bulwark_reads_restores_and_prunes_what_restic_wrote() {
    let env = Env::new();
    let src = env.path("src");
    awkward_tree(&src);
    env.restic(&["init"]).ok();
    env.restic(&["backup", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("private"), b"changed by the second backup").unwrap();
    std::fs::write(src.join("added"), b"new file").unwrap();
    std::fs::remove_file(src.join("group")).unwrap();
    env.restic(&["backup", src.to_str().unwrap()]).ok();

    let snaps = env.bulwark(&["--json", "snapshots"]);
    let list = snaps.ok().json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let (first, second) = (list[0]["id"].as_str().unwrap(), list[1]["id"].as_str().unwrap());

    let target = env.path("restored");
    env.bulwark(&["restore", second, "--target", target.to_str().unwrap(), "--verify"]).ok();
    assert_same_tree(&src, &under(&target, &src));

    let diff = env.bulwark(&["--json", "diff", first, second]).ok().json();
    let changes: Vec<(String, String)> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap().to_string(), c["path"].as_str().unwrap().to_string()))
        .collect();
    let p = |n: &str| src.join(n).to_string_lossy().into_owned();
    assert!(changes.contains(&("M".into(), p("private"))), "{changes:?}");
    assert!(changes.contains(&("+".into(), p("added"))), "{changes:?}");
    assert!(changes.contains(&("-".into(), p("group"))), "{changes:?}");
    assert_eq!(diff["added"], 1);
    assert_eq!(diff["removed"], 1);

    let dump = env.cmd().args(["dump", "latest"]).arg(src.join("big.bin")).output().unwrap();
    assert!(dump.status.success());
    assert_eq!(dump.stdout, std::fs::read(src.join("big.bin")).unwrap());

    let f = env.bulwark(&["--json", "forget", "--keep-last", "1", "--prune"]).ok().json();
    assert_eq!(f["forget"]["removed"].as_array().unwrap().len(), 1);
    env.restic(&["check", "--read-data"]).ok();
    let rs = env.restic(&["snapshots", "--json"]);
    let rs: serde_json::Value = serde_json::from_str(&rs.ok().stdout).unwrap();
    assert_eq!(rs.as_array().unwrap().len(), 1);
    // what restic restores after Bulwark's prune is still the latest state
    let again = env.path("again");
    env.restic(&["restore", "latest", "--target", again.to_str().unwrap()]).ok();
    assert_same_tree(&src, &under(&again, &src));
}

#[test]
fn copy_to_another_repository_is_readable_by_restic_and_idempotent() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), random_bytes(3, 100_000)).unwrap();
    env.init();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    env.bulwark(&["backup", src.to_str().unwrap(), "--tag", "second"]).ok();

    let dest = Env::new();
    std::fs::write(&dest.pw, "another password\n").unwrap();
    dest.init();
    let to = dest.repo.to_str().unwrap();
    let c = env.bulwark(&["--json", "copy", "--to", to, "--to-password-file", dest.pw.to_str().unwrap()]).ok().json();
    assert_eq!(c["copied"].as_array().unwrap().len(), 2);
    dest.restic(&["check", "--read-data"]).ok();
    let again = env.bulwark(&["--json", "copy", "--to", to, "--to-password-file", dest.pw.to_str().unwrap()]).ok().json();
    assert_eq!(again["copied"].as_array().unwrap().len(), 0);
    assert_eq!(again["skipped"].as_array().unwrap().len(), 2);
    let target = dest.path("r");
    dest.restic(&["restore", "latest", "--target", target.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(under(&target, &src).join("f")).unwrap(), random_bytes(3, 100_000));
}
