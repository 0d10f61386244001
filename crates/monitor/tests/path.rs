//! The path probe: exists, mountpoint, readable (the hung case is in
//! path_hang.rs, alone in its process so threads can be counted).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use bulwark_monitor::{probe, PathCheck, PathProbe, Probe, ProbeResult};

async fn run(path: &Path, check: PathCheck) -> ProbeResult {
    probe(
        &Probe::Path(PathProbe::new(path, check)),
        Duration::from_secs(5),
    )
    .await
}

#[tokio::test]
async fn exists_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), PathCheck::Exists).await;
    assert!(r.up, "{r:?}");
    assert_eq!(
        r.message,
        format!("{} exists (directory)", dir.path().display())
    );
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    assert_eq!(
        run(&file, PathCheck::Exists).await.message,
        format!("{} exists (file)", file.display())
    );

    let missing = dir.path().join("missing");
    let r = run(&missing, PathCheck::Exists).await;
    assert!(!r.up);
    assert!(
        r.message.starts_with(&format!(
            "expected {} to exist, got: No such file or directory",
            missing.display()
        )),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn mountpoints() {
    let r = run(Path::new("/proc"), PathCheck::Mountpoint).await;
    assert!(r.up, "{r:?}");
    assert_eq!(r.message, "/proc is a mountpoint");
    assert!(run(Path::new("/"), PathCheck::Mountpoint).await.up);

    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), PathCheck::Mountpoint).await;
    assert!(!r.up, "{r:?}");
    assert_eq!(
        r.message,
        format!(
            "expected {} to be a mountpoint, got a plain directory (nothing mounted there)",
            dir.path().display()
        )
    );
    let r = run(&dir.path().join("missing"), PathCheck::Mountpoint).await;
    assert!(!r.up);
    assert!(
        r.message.contains("to be a mountpoint, got: No such file"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn readable_directories_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(dir.path(), PathCheck::Readable).await;
    assert!(r.up, "{r:?}");
    assert!(
        r.message.ends_with("is readable (empty directory)"),
        "{}",
        r.message
    );
    std::fs::write(dir.path().join("data"), vec![7u8; 10_000]).unwrap();
    let r = run(dir.path(), PathCheck::Readable).await;
    assert!(
        r.message.ends_with("is readable (directory listed)"),
        "{}",
        r.message
    );
    let r = run(&dir.path().join("data"), PathCheck::Readable).await;
    assert!(r.up);
    assert!(
        r.message.ends_with("is readable (file, read 4096 bytes)"),
        "{}",
        r.message
    );
    let r = run(&dir.path().join("nope"), PathCheck::Readable).await;
    assert!(!r.up);
    assert!(
        r.message.contains("to be readable, got: No such file"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn path_below_a_file_is_down() {
    // (permissions don't stop root, who runs the suite: use ENOTDIR)
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let r = run(&file.join("below"), PathCheck::Readable).await;
    assert!(!r.up);
    assert!(r.message.contains("Not a directory"), "{}", r.message);
}

#[tokio::test]
async fn relative_path_is_refused() {
    let r = run(Path::new("relative/dir"), PathCheck::Exists).await;
    assert!(!r.up);
    assert!(r.message.contains("must be absolute"), "{}", r.message);
}
