//! Engine round trip: backup (paths + a command source) → restore --verify →
//! check, with restic as the second opinion.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::MetadataExt;

use bulwark_engine::{
    BackupRequest, CheckData, CommandSource, Location, RepoSpec, RestoreRequest, SnapshotFilter,
};

#[test]
fn backup_restore_verify_and_restic_check() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("a/b/f.txt"), b"hello").unwrap();
    std::fs::write(
        src.join("big"),
        (0..3_000_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::os::unix::fs::symlink("a/b/f.txt", src.join("link")).unwrap();
    std::fs::hard_link(src.join("big"), src.join("big2")).unwrap();

    let spec = RepoSpec::new(Location::Local(tmp.path().join("repo")), "pw");
    let repo = spec.init().unwrap();
    let dump = CommandSource {
        program: "sh".into(),
        args: vec!["-c".into(), "echo dump".into()],
        filename: "db/dump.sql".into(),
        display: "echo dump".into(),
        ..Default::default()
    };
    let s = repo
        .backup(&BackupRequest {
            paths: vec![src.clone()],
            commands: vec![dump],
            ..Default::default()
        })
        .unwrap();
    assert!(!s.incomplete, "{:?}", s.skipped);
    assert_eq!(s.snapshot.id.len(), 64);
    assert_eq!(
        s.snapshot.paths,
        vec![
            "/db/dump.sql".to_string(),
            src.to_string_lossy().into_owned()
        ]
    );

    let (_, entries, errors) = repo.ls("latest", &SnapshotFilter::default(), None).unwrap();
    assert!(errors.is_empty());
    let kinds: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e.kind.clone(), e.path.clone()))
        .collect();
    assert!(
        kinds.contains(&("file".into(), "/db/dump.sql".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("symlink".into(), format!("{}/link", src.display()))),
        "{kinds:?}"
    );

    let out = tmp.path().join("out");
    let r = repo
        .restore(&RestoreRequest {
            snapshot: "latest".into(),
            target: out.clone(),
            verify: true,
            ..Default::default()
        })
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(
        r.files_verified,
        Some(3),
        "hard link counted once for verification"
    );
    let rsrc = out.join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read(rsrc.join("a/b/f.txt")).unwrap(), b"hello");
    assert_eq!(
        std::fs::read(rsrc.join("big")).unwrap(),
        std::fs::read(src.join("big")).unwrap()
    );
    assert_eq!(std::fs::read(out.join("db/dump.sql")).unwrap(), b"dump\n");
    assert_eq!(
        std::fs::read_link(rsrc.join("link")).unwrap().to_str(),
        Some("a/b/f.txt")
    );
    assert!(rsrc.join("empty").is_dir());
    let (m1, m2) = (
        std::fs::metadata(rsrc.join("big")).unwrap(),
        std::fs::metadata(rsrc.join("big2")).unwrap(),
    );
    assert_eq!(m1.ino(), m2.ino(), "hard links restored as hard links");

    let c = repo.check(CheckData::All).unwrap();
    assert!(c.ok, "{c:?}");
    let st = std::process::Command::new("restic")
        .args([
            "--no-cache",
            "-r",
            tmp.path().join("repo").to_str().unwrap(),
            "check",
            "--read-data",
        ])
        .env("RESTIC_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

#[test]
fn failing_command_source_is_not_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = RepoSpec::new(Location::Local(tmp.path().join("repo")), "pw")
        .init()
        .unwrap();
    let bad = CommandSource {
        program: "sh".into(),
        args: vec![
            "-c".into(),
            "printf partial; echo 'disk on fire' >&2; exit 4".into(),
        ],
        filename: "bad.sql".into(),
        display: "pg_dump".into(),
        ..Default::default()
    };
    let good = CommandSource {
        filename: "good.sql".into(),
        args: vec!["-c".into(), "printf ok".into()],
        ..bad.clone()
    };
    let s = repo
        .backup(&BackupRequest {
            commands: vec![bad, good],
            ..Default::default()
        })
        .unwrap();
    assert!(s.incomplete);
    assert_eq!(s.skipped.len(), 1);
    assert_eq!(s.skipped[0].path, "/bad.sql");
    assert!(
        s.skipped[0].error.contains("exited with status 4"),
        "{}",
        s.skipped[0].error
    );
    assert!(
        s.skipped[0].error.contains("disk on fire"),
        "{}",
        s.skipped[0].error
    );
    let (_, entries, _) = repo.ls("latest", &SnapshotFilter::default(), None).unwrap();
    let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, vec!["/good.sql"]);
}
