//! Command sources beyond exit codes: `fail_on_stderr` patterns (every stderr
//! line is scanned), the child-only environment that carries passwords, and
//! sources that could not be prepared.

#![allow(clippy::unwrap_used)]

use bulwark_engine::{BackupRequest, CommandSource, Location, Repo, RepoSpec, SnapshotFilter};

fn repo(tmp: &tempfile::TempDir) -> Repo {
    RepoSpec::new(Location::Local(tmp.path().join("repo")), "pw")
        .init()
        .unwrap()
}

fn sh(script: &str, filename: &str) -> CommandSource {
    CommandSource {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        filename: filename.into(),
        display: format!("dump {filename}"),
        ..Default::default()
    }
}

fn stored(repo: &Repo) -> Vec<String> {
    let (_, entries, _) = repo.ls("latest", &SnapshotFilter::default(), None).unwrap();
    entries
        .iter()
        .filter(|e| e.kind == "file")
        .map(|e| e.path.clone())
        .collect()
}

fn dump(repo: &Repo, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    repo.dump(
        "latest",
        &SnapshotFilter::default(),
        std::path::Path::new(path),
        &mut out,
    )
    .unwrap();
    out
}

#[test]
fn a_stderr_line_matching_a_pattern_fails_the_file_even_when_the_command_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    // the matching line comes first and is followed by 100 KiB of other
    // stderr: it is long gone from the kept tail, so only a scan of every
    // line finds it
    let mut bad = sh(
        "printf 'looks whole'; echo 'mysqldump: Got error: 1044: Access denied' >&2; \
         i=0; while [ $i -lt 2000 ]; do echo 'progress: still dumping table rows, nothing to see here' >&2; i=$((i+1)); done; exit 0",
        "bad.sql",
    );
    bad.fail_on_stderr = vec!["no such pattern".into(), "Got error".into()];
    // a pattern on a line of its own that is only reached after a 200 KiB
    // line without a newline, and a pattern in the *middle* of such a line
    let mut long = sh(
        "printf ok; head -c 200000 /dev/zero | tr '\\0' x >&2; printf 'yyy WARNING: skipped zzz' >&2; head -c 100000 /dev/zero | tr '\\0' x >&2; echo >&2",
        "long.sql",
    );
    long.fail_on_stderr = vec!["WARNING: skipped".into()];
    // patterns that never match, and an empty one (ignored, not "matches all")
    let mut clean = sh(
        "printf clean; echo 'pg_dump: last built-in OID is 16383' >&2",
        "clean.sql",
    );
    clean.fail_on_stderr = vec!["error".into(), String::new()];

    let s = repo
        .backup(&BackupRequest {
            commands: vec![bad, long, clean],
            ..Default::default()
        })
        .unwrap();
    assert!(s.incomplete);
    let skipped: Vec<&str> = s.skipped.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(skipped, vec!["/bad.sql", "/long.sql"], "{:?}", s.skipped);
    let bad_err = &s.skipped[0].error;
    assert!(
        bad_err.contains("`Got error`"),
        "the message names the pattern: {bad_err}"
    );
    assert!(bad_err.contains("Access denied"), "and the line: {bad_err}");
    assert!(
        bad_err.contains("dump bad.sql"),
        "and the command: {bad_err}"
    );
    assert!(
        s.skipped[1].error.contains("`WARNING: skipped`"),
        "{}",
        s.skipped[1].error
    );
    assert_eq!(
        stored(&repo),
        vec!["/clean.sql"],
        "failed dumps are not in the snapshot"
    );
    assert_eq!(dump(&repo, "/clean.sql"), b"clean");
}

#[test]
fn env_reaches_the_child_only_and_is_never_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let secret = "hunter2-very-secret";
    let mut ok = sh("printf '%s' \"$BW_TEST_SECRET\"", "ok.sql");
    ok.env = vec![("BW_TEST_SECRET".into(), secret.into())];
    let mut failing = sh("echo \"auth failed\" >&2; exit 2", "failing.sql");
    failing.env = vec![("BW_TEST_SECRET".into(), secret.into())];
    failing.fail_on_stderr = vec!["auth".into()];
    let debug = format!("{failing:?}");
    assert!(
        debug.contains("BW_TEST_SECRET") && !debug.contains(secret),
        "Debug hides env values: {debug}"
    );

    let s = repo
        .backup(&BackupRequest {
            commands: vec![ok, failing],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        dump(&repo, "/ok.sql"),
        secret.as_bytes(),
        "the child saw its env"
    );
    assert_eq!(s.skipped.len(), 1);
    assert!(
        s.skipped[0].error.contains("exited with status 2"),
        "{}",
        s.skipped[0].error
    );
    let all = serde_json::to_string(&s).unwrap();
    assert!(
        !all.contains(secret),
        "the secret leaked into the summary: {all}"
    );
    assert!(
        std::env::var_os("BW_TEST_SECRET").is_none(),
        "our own environment is untouched"
    );
}

#[test]
fn an_unavailable_source_is_not_run_and_fails_with_its_message() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let marker = tmp.path().join("ran");
    let mut src = sh(
        &format!("touch '{}'; printf data", marker.display()),
        "db.sql",
    );
    src.unavailable = Some("cannot load its password: the secret file /x/pw does not exist".into());
    let good = sh("printf good", "good.sql");
    let s = repo
        .backup(&BackupRequest {
            commands: vec![src, good],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(s.skipped.len(), 1, "{:?}", s.skipped);
    assert_eq!(s.skipped[0].path, "/db.sql");
    assert!(
        s.skipped[0]
            .error
            .contains("the secret file /x/pw does not exist"),
        "{}",
        s.skipped[0].error
    );
    assert!(!marker.exists(), "the command must not run");
    assert_eq!(stored(&repo), vec!["/good.sql"]);
}

/// Every file of a local repository (except locks) with its content.
fn repo_files(root: &std::path::Path) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                if e.file_name() != "locks" {
                    stack.push(e.path());
                }
            } else {
                out.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// A backup never deletes or rewrites a repository file: a streamed file's
/// size is recorded when its tree is written, in the first and only
/// snapshot; a second backup keeps every file the first one wrote.
#[test]
fn a_streamed_file_has_its_size_in_the_one_snapshot_and_nothing_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = repo(&tmp);
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"local").unwrap();
    // 2.5 MB that the archiver cannot know in advance: several chunks
    let gen = sh(
        "i=0; while [ $i -lt 50000 ]; do echo \"row $i of a dump that streams from a pipe\"; i=$((i+1)); done",
        "db/all.sql",
    );
    let expected: Vec<u8> = (0..50000)
        .flat_map(|i| format!("row {i} of a dump that streams from a pipe\n").into_bytes())
        .collect();
    let req = BackupRequest {
        paths: vec![src.clone()],
        commands: vec![gen],
        ..Default::default()
    };
    let root = tmp.path().join("repo");
    let mut seen = repo_files(&root);
    for round in 1..=2 {
        let summary = repo.backup(&req).unwrap();
        assert!(!summary.incomplete, "{:?}", summary.skipped);
        let now = repo_files(&root);
        for (path, content) in &seen {
            assert!(
                now.get(path) == Some(content),
                "backup {round} removed or rewrote {}",
                path.display()
            );
        }
        let snaps: Vec<_> = now
            .keys()
            .filter(|p| p.parent().unwrap().ends_with("snapshots"))
            .collect();
        assert_eq!(snaps.len(), round, "one snapshot per backup: {snaps:?}");
        assert!(
            snaps.iter().any(|p| p.ends_with(&summary.snapshot.id)),
            "the reported snapshot {} is the one stored",
            summary.snapshot.id
        );
        seen = now;
    }
    let (_, entries, _) = repo.ls("latest", &SnapshotFilter::default(), None).unwrap();
    let e = entries.iter().find(|e| e.path == "/db/all.sql").unwrap();
    assert_eq!(e.size, expected.len() as u64);
    // the dump's directory: owner-only, with a time (not a bare 0755 node)
    let d = entries.iter().find(|e| e.path == "/db").unwrap();
    assert_eq!(d.mode, Some(0o700), "{d:?}");
    assert!(d.mtime.is_some(), "{d:?}");
    assert!(dump(&repo, "/db/all.sql") == expected);
}
