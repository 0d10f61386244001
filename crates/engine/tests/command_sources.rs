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
