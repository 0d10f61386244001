//! restic 0.14 reads, checks and restores what Bulwark writes, and Bulwark
//! reads, restores, diffs and prunes what restic writes.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    time::Duration,
};

use common::*;

const NON_UTF8: &[u8] = b"latin1-\xe9t\xe9";

/// A tree with the awkward cases: odd names, links, modes, mtimes, empties.
/// Returns the deepest file (its path is longer than 1500 bytes).
fn awkward_tree(root: &Path) -> PathBuf {
    std::fs::create_dir_all(root.join("dir with spaces/empty")).unwrap();
    std::fs::write(root.join("dir with spaces/file with spaces.txt"), b"spaces").unwrap();
    std::fs::write(root.join("new\nline"), b"newline in the name").unwrap();
    std::fs::write(root.join(OsStr::from_bytes(NON_UTF8)), b"not utf-8").unwrap();
    std::fs::write(root.join("x".repeat(255)), b"long name").unwrap();
    let mut deep = root.join("deep");
    while deep.as_os_str().len() < root.as_os_str().len() + 1600 {
        deep = deep.join("a-rather-long-directory-name-0123456789");
    }
    std::fs::create_dir_all(&deep).unwrap();
    let leaf = deep.join("leaf");
    std::fs::write(&leaf, b"deep leaf").unwrap();
    assert!(leaf.as_os_str().len() > 1500);
    std::fs::write(root.join("big.bin"), random_bytes(7, 3_000_000)).unwrap();
    std::fs::write(root.join("empty-file"), b"").unwrap();
    std::os::unix::fs::symlink("big.bin", root.join("link-to-big")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    std::fs::write(root.join("hard-a"), b"hard linked").unwrap();
    std::fs::hard_link(root.join("hard-a"), root.join("hard-b")).unwrap();
    for (name, mode) in [
        ("private", 0o600),
        ("script.sh", 0o755),
        ("group", 0o640),
        ("setuid", 0o4755),
        ("setgid", 0o2750),
    ] {
        std::fs::write(root.join(name), name).unwrap();
        chmod(&root.join(name), mode);
    }
    std::fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    chmod(&root.join("dir with spaces"), 0o750);
    if is_root() {
        // ownership is restored when root: give entries owners that aren't ours
        let st = std::process::Command::new("chown")
            .args(["-h", "1234:5678"])
            .arg(root.join("group"))
            .arg(root.join("dangling"))
            .arg(root.join("dir with spaces"))
            .status()
            .unwrap();
        assert!(st.success());
    }
    // mtimes last, deepest first, for files, symlinks and directories
    let mut all: Vec<PathBuf> = tree(root).keys().map(|k| root.join(k)).collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, p) in all.iter().enumerate() {
        set_mtime(p, 1_500_000_000 + i as i64 * 3600);
    }
    leaf
}

fn count_files(root: &Path) -> (u64, u64) {
    let t = tree(root);
    let files = t.values().filter(|e| e.kind == "file").count() as u64;
    let inodes = t
        .iter()
        .filter(|(p, e)| e.kind == "file" && e.link_group.as_ref().is_none_or(|g| g == *p))
        .count() as u64;
    (files, inodes)
}

#[test]
fn restic_checks_lists_and_restores_what_bulwark_wrote() {
    let env = Env::new();
    let src = env.path("src");
    let leaf = awkward_tree(&src);
    env.init();
    let b = env.bulwark(&["--json", "backup", src.to_str().unwrap()]);
    b.ok();
    let j = b.json();
    assert_eq!(j["incomplete"], false, "{j}");
    assert_eq!(j["skipped"], serde_json::json!([]), "{j}");
    assert_eq!(
        j["snapshot"]["paths"],
        serde_json::json!([src.to_str().unwrap()])
    );
    let id = j["snapshot"]["id"].as_str().unwrap().to_string();

    let c = env.restic(&["check", "--read-data"]);
    assert_eq!(
        c.code, 0,
        "restic check --read-data on a bulwark repository:\n{}\n{}",
        c.stdout, c.stderr
    );

    let ls = env.restic(&["ls", "latest"]);
    ls.ok();
    let has = |needle: &[u8]| ls.raw.windows(needle.len()).any(|w| w == needle);
    let s = src.as_os_str().as_bytes();
    for name in [
        &b"dir with spaces/file with spaces.txt"[..],
        b"new\nline",
        NON_UTF8,
        "x".repeat(255).as_bytes(),
        b"link-to-big",
        b"hard-b",
    ] {
        let full = [s, b"/", name].concat();
        assert!(
            has(&full),
            "restic ls does not list {:?}",
            String::from_utf8_lossy(&full)
        );
    }
    assert!(
        has(leaf.as_os_str().as_bytes()),
        "restic ls does not list the >1500-byte path"
    );

    let by_restic = env.path("by-restic");
    let r = env.restic(&["restore", &id, "--target", by_restic.to_str().unwrap()]);
    assert_eq!(r.code, 0, "restic restore: {}\n{}", r.stdout, r.stderr);
    assert_same_tree(&src, &under(&by_restic, &src));

    let by_bulwark = env.path("by-bulwark");
    let r = env.bulwark(&[
        "--json",
        "restore",
        "latest",
        "--target",
        by_bulwark.to_str().unwrap(),
        "--verify",
    ]);
    r.ok();
    let j = r.json();
    assert_eq!(j["incomplete"], false, "{j}");
    assert_eq!(j["failed"], serde_json::json!([]), "{j}");
    let (files, inodes) = count_files(&src);
    assert_eq!(j["files_restored"], files, "{j}");
    assert_eq!(j["files_verified"], inodes, "{j}");
    assert_eq!(j["special_restored"], 2, "two symlinks: {j}");
    assert_eq!(
        j["bytes_restored"].as_u64().unwrap(),
        tree(&src)
            .values()
            .filter_map(|e| e.content.as_ref())
            .map(|c| c.len() as u64)
            .sum::<u64>()
            - 11,
        "every byte once (hard-b is a link): {j}"
    );
    assert_same_tree(&src, &under(&by_bulwark, &src));
}

#[test]
fn bulwark_reads_restores_diffs_and_prunes_what_restic_wrote() {
    let env = Env::new();
    let src = env.path("src");
    awkward_tree(&src);
    env.restic(&["init"]).ok();
    env.restic(&["backup", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("private"), b"changed by the second backup").unwrap();
    std::fs::write(src.join("added"), b"new file").unwrap();
    std::fs::remove_file(src.join("group")).unwrap();
    set_mtime(&src.join("private"), 1_600_000_000);
    set_mtime(&src.join("added"), 1_600_000_100);
    set_mtime(&src, 1_600_000_200);
    env.restic(&["backup", src.to_str().unwrap()]).ok();

    let restic_ids: Vec<String> = serde_json::from_str::<serde_json::Value>(
        &env.restic(&["snapshots", "--json"]).ok().stdout,
    )
    .unwrap()
    .as_array()
    .unwrap()
    .iter()
    .map(|s| s["id"].as_str().unwrap().to_string())
    .collect();
    let snaps = env.bulwark(&["--json", "snapshots"]).ok().json();
    let list = snaps.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let ids: Vec<String> = list
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>(),
        restic_ids.iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(list[1]["paths"], serde_json::json!([src.to_str().unwrap()]));
    let (first, second) = (ids[0].as_str(), ids[1].as_str());

    let target = env.path("restored");
    let r = env.bulwark(&[
        "--json",
        "restore",
        second,
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    r.ok();
    assert_eq!(r.json()["incomplete"], false);
    assert_same_tree(&src, &under(&target, &src));

    let diff = env.bulwark(&["--json", "diff", first, second]).ok().json();
    let changes: BTreeSet<(String, String)> = diff["changes"]
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
    let expected: BTreeSet<(String, String)> =
        [("M", p("private")), ("+", p("added")), ("-", p("group"))]
            .into_iter()
            .map(|(c, p)| (c.to_string(), p))
            .collect();
    assert_eq!(changes, expected, "{diff}");
    assert_eq!(
        (
            diff["added"].as_u64(),
            diff["removed"].as_u64(),
            diff["modified"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );

    let dump = env.bulwark(&[
        OsStr::new("dump"),
        OsStr::new("latest"),
        src.join("big.bin").as_os_str(),
    ]);
    dump.ok();
    assert!(
        dump.raw == random_bytes(7, 3_000_000),
        "dump of big.bin differs ({} bytes)",
        dump.raw.len()
    );
    let dump = env.bulwark(&[
        OsStr::new("dump"),
        OsStr::new(first),
        src.join("private").as_os_str(),
    ]);
    assert_eq!(
        dump.ok().raw,
        b"private",
        "dump of the first snapshot gives the old content"
    );

    let f = env
        .bulwark(&["--json", "forget", "--keep-last", "1", "--prune"])
        .ok()
        .json();
    assert_eq!(f["forget"]["removed"], serde_json::json!([first]));
    assert!(f["prune"].is_object(), "{f}");
    let c = env.restic(&["check", "--read-data"]);
    assert_eq!(
        c.code, 0,
        "restic check after bulwark's prune: {}\n{}",
        c.stdout, c.stderr
    );
    let rs: serde_json::Value =
        serde_json::from_str(&env.restic(&["snapshots", "--json"]).ok().stdout).unwrap();
    assert_eq!(rs.as_array().unwrap().len(), 1);
    assert_eq!(rs[0]["id"], second);
    // what restic restores after Bulwark's prune is still the latest state
    let again = env.path("again");
    env.restic(&["restore", "latest", "--target", again.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &under(&again, &src));
}

/// The directory given to `backup` keeps its own mode, owner and mtime (a
/// private 0700 home directory must not come back world-readable).
#[test]
fn the_backed_up_directory_itself_keeps_its_mode_and_mtime() {
    let env = Env::new();
    let src = env.path("private-home");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), b"x").unwrap();
    chmod(&src, 0o700);
    set_mtime(&src, 1_500_000_000);
    env.init();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();

    let ls = env
        .bulwark(&["--json", "ls", "latest", src.to_str().unwrap()])
        .ok()
        .json();
    let me = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == src.to_str().unwrap())
        .cloned()
        .unwrap();
    let target = env.path("t");
    env.bulwark(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    let m = std::fs::metadata(under(&target, &src)).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(
        (m.permissions().mode() & 0o7777, m.mtime()),
        (0o700, 1_500_000_000),
        "bulwark restore of the backed-up directory (snapshot records mode {} mtime {})",
        me["mode"],
        me["mtime"]
    );
    let rt = env.path("rt");
    env.restic(&["restore", "latest", "--target", rt.to_str().unwrap()])
        .ok();
    let m = std::fs::metadata(under(&rt, &src)).unwrap();
    assert_eq!(
        (m.permissions().mode() & 0o7777, m.mtime()),
        (0o700, 1_500_000_000),
        "restic restore of the backed-up directory"
    );
}

/// A named pipe is backed up as a fifo and restored as one, without hanging.
#[test]
fn fifo_is_restored_without_hanging() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("plain"), b"plain").unwrap();
    let st = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("0640")
        .arg(src.join("pipe"))
        .status()
        .unwrap();
    assert!(st.success());
    set_mtime(&src.join("pipe"), 1_500_000_000);
    set_mtime(&src.join("plain"), 1_500_000_000);
    env.init();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    assert!(
        ls["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == src.join("pipe").to_str().unwrap() && e["type"] == "fifo"),
        "{ls}"
    );

    let by_restic = env.path("by-restic");
    env.restic(&["restore", "latest", "--target", by_restic.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &under(&by_restic, &src));

    let target = env.path("t");
    let mut cmd = env.cmd();
    cmd.args([
        "--json",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    let r = run(&mut cmd, Duration::from_secs(20));
    assert!(
        !r.timed_out,
        "bulwark restore hangs on a snapshot holding a fifo:\n{}",
        r.stderr
    );
    r.ok();
    assert_eq!(r.json()["special_restored"], 1);
    assert_same_tree(&src, &under(&target, &src));
}

#[test]
fn copy_to_another_repository_is_readable_by_restic_and_idempotent() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), random_bytes(3, 100_000)).unwrap();
    env.init();
    env.bulwark(&["backup", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("g"), random_bytes(4, 100_000)).unwrap();
    env.bulwark(&["backup", src.to_str().unwrap(), "--tag", "second"])
        .ok();
    let src_ids: BTreeSet<String> = env.snapshot_ids().into_iter().collect();

    let dest = Env::new();
    std::fs::write(&dest.pw, "another password\n").unwrap();
    dest.init();
    let to = dest.repo.to_str().unwrap();
    let pwf = dest.pw.to_str().unwrap();
    let c = env
        .bulwark(&["--json", "copy", "--to", to, "--to-password-file", pwf])
        .ok()
        .json();
    let copied: BTreeSet<String> = c["copied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(copied, src_ids, "{c}");
    assert_eq!(c["skipped"], serde_json::json!([]));
    let chk = dest.restic(&["check", "--read-data"]);
    assert_eq!(
        chk.code, 0,
        "restic check of the copy: {}\n{}",
        chk.stdout, chk.stderr
    );
    let rs: serde_json::Value =
        serde_json::from_str(&dest.restic(&["snapshots", "--json"]).ok().stdout).unwrap();
    assert_eq!(rs.as_array().unwrap().len(), 2);

    let again = env
        .bulwark(&["--json", "copy", "--to", to, "--to-password-file", pwf])
        .ok()
        .json();
    assert_eq!(again["copied"], serde_json::json!([]), "{again}");
    let skipped: BTreeSet<String> = again["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped, src_ids);
    assert_eq!(
        dest.snapshot_ids().len(),
        2,
        "no duplicates in the destination"
    );

    let target = dest.path("r");
    dest.restic(&["restore", "latest", "--target", target.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &under(&target, &src));
}

/// Backing up a directory and a directory inside it stores every entry once
/// (a tree with two entries of the same name is malformed), as restic does.
#[test]
fn overlapping_paths_store_each_entry_once() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("inner/deeper")).unwrap();
    std::fs::write(src.join("top"), b"top").unwrap();
    std::fs::write(src.join("inner/b"), b"b").unwrap();
    std::fs::write(src.join("inner/deeper/c"), b"c").unwrap();
    env.init();
    let b = env.bulwark(&[
        "--json",
        "backup",
        src.to_str().unwrap(),
        src.join("inner").to_str().unwrap(),
    ]);
    b.ok();
    let ls = env.bulwark(&["--json", "ls", "latest"]).ok().json();
    let paths: Vec<String> = ls["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = paths.iter().collect();
    assert_eq!(
        unique.len(),
        paths.len(),
        "bulwark ls lists entries twice: {paths:#?}"
    );
    let rls = env.restic(&["ls", "latest"]);
    rls.ok();
    let lines: Vec<&str> = rls.stdout.lines().skip(1).collect();
    let unique: BTreeSet<&&str> = lines.iter().collect();
    assert_eq!(
        unique.len(),
        lines.len(),
        "restic ls lists entries twice: {lines:#?}"
    );
    let t = env.path("t");
    env.bulwark(&["restore", "latest", "--target", t.to_str().unwrap()])
        .ok();
    assert_same_tree(&src, &under(&t, &src));
}
