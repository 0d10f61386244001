//! Exclude patterns behave like restic's: a bare glob matches a name at any
//! depth, an absolute pattern matches that path; marker files skip directories.

#![allow(clippy::unwrap_used)]

use bulwark_engine::{BackupRequest, Location, RepoSpec, SnapshotFilter};

#[test]
fn excludes_and_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    for d in ["keep/deep", "cache/x", "skipme", "other/cache"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
    }
    for f in [
        "keep/a.txt",
        "keep/deep/b.tmp",
        "keep/deep/c.txt",
        "cache/x/y",
        "skipme/z",
        "other/cache/w",
    ] {
        std::fs::write(src.join(f), f).unwrap();
    }
    std::fs::write(src.join("skipme/.nobackup"), "").unwrap();
    let repo = RepoSpec::new(Location::Local(tmp.path().join("repo")), "pw")
        .init()
        .unwrap();
    let abs_cache = format!("{}/cache", src.display());
    let s = repo
        .backup(&BackupRequest {
            paths: vec![src.clone()],
            excludes: vec!["*.tmp".into(), abs_cache],
            exclude_if_present: vec![".nobackup".into()],
            ..Default::default()
        })
        .unwrap();
    assert!(!s.incomplete);
    let (_, entries, _) = repo
        .ls("latest", &SnapshotFilter::default(), Some(&src))
        .unwrap();
    let rel: Vec<String> = entries
        .iter()
        .filter(|e| e.kind == "file")
        .map(|e| {
            e.path
                .trim_start_matches(&format!("{}/", src.display()))
                .to_string()
        })
        .collect();
    assert_eq!(rel, vec!["keep/a.txt", "keep/deep/c.txt", "other/cache/w"]);
}
