//! Mirroring between local stores, on a real restic repository when restic
//! is installed.
#![allow(clippy::unwrap_used)]

mod common;

use std::{sync::Arc, time::Instant};

use bulwark_replicate::{
    mirror_repo, repair, verify_sample, ErrorKind, FileId, MirrorOptions, Sample,
};
use bulwark_store::{local::LocalStore, scrub_repo, FileRef, FileType, Store};
use common::*;

struct Fixture {
    tmp: tempfile::TempDir,
    src: Arc<LocalStore>,
    dst: Arc<LocalStore>,
}

impl Fixture {
    async fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let src = make_repo(&tmp.path().join("src"), &repo()).await;
        std::fs::create_dir_all(tmp.path().join("dst")).unwrap();
        let dst = Arc::new(LocalStore::new(tmp.path().join("dst")).unwrap());
        Fixture { tmp, src, dst }
    }
    fn src_root(&self) -> std::path::PathBuf {
        self.tmp.path().join("src")
    }
    fn dst_root(&self) -> std::path::PathBuf {
        self.tmp.path().join("dst")
    }
}

fn opts() -> MirrorOptions {
    MirrorOptions {
        retry_delay: std::time::Duration::from_millis(10),
        ..MirrorOptions::default()
    }
}

#[test]
fn mirror_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let s = LocalStore::new("/nonexistent-bulwark-test").unwrap();
    let r = repo();
    let o = opts();
    let fut = mirror_repo(&s, &s, &r, &o);
    assert_send(&fut);
    let v = verify_sample(&s, &r, Sample::All, 1);
    assert_send(&v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_to_local_copies_everything_then_nothing() {
    let f = Fixture::new().await;
    let r = repo();
    // A lock at the source must never be copied.
    let lock = b"{\"hostname\":\"test\"}".to_vec();
    f.src
        .save(
            &r,
            &FileRef::Named(FileType::Locks, name_of(&lock)),
            body(&lock),
            u64::MAX,
        )
        .await
        .unwrap();

    let total = count_named(f.src.as_ref(), &r).await;
    let report = mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert!(report.config_copied);
    assert_eq!(report.copied_files(), total);
    assert_eq!(report.present_files(), 0);
    for tpe in [
        FileType::Keys,
        FileType::Data,
        FileType::Index,
        FileType::Snapshots,
    ] {
        assert_eq!(
            report.get(tpe).copied,
            f.src.list(&r, tpe).await.unwrap().len() as u64,
            "{tpe}"
        );
    }
    assert!(
        report.copied_bytes() > 7_000_000 || !restic_available(),
        "{report:?}"
    );
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
    assert!(
        f.dst.list(&r, FileType::Locks).await.unwrap().is_empty(),
        "locks must not be copied"
    );
    assert!(scrub_repo(f.dst.as_ref(), &r, None)
        .await
        .unwrap()
        .is_clean());

    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json["types"]["data"]["copied"].as_u64().unwrap() > 0,
        "{json}"
    );

    let again = mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    assert!(again.is_complete(), "{again:?}");
    assert!(!again.config_copied);
    assert_eq!(again.copied_files(), 0);
    assert_eq!(again.present_files(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_reads_the_mirror() {
    assert!(
        restic_available(),
        "restic 0.14 must be installed (scripts/test.sh installs it)"
    );
    let f = Fixture::new().await;
    let r = repo();
    let report = mirror_repo(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &MirrorOptions {
            parallel: 8,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert!(report.is_complete(), "{report:?}");
    let dir = repo_dir(&f.dst_root(), &r);
    let snapshots = restic(&dir, &["snapshots", "--json"]);
    let parsed: serde_json::Value = serde_json::from_str(&snapshots).unwrap();
    assert_eq!(parsed.as_array().unwrap().len(), 2, "{snapshots}");
    restic(&dir, &["check", "--read-data"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_copies_nothing() {
    let f = Fixture::new().await;
    let r = repo();
    let total = count_named(f.src.as_ref(), &r).await;
    let report = mirror_repo(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &MirrorOptions {
            dry_run: true,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.copied_files(), total);
    assert!(report.config_copied);
    assert!(!f.dst.repo_exists(&r).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_run_resumes_with_what_is_missing() {
    let f = Fixture::new().await;
    let r = repo();
    let total = count_named(f.src.as_ref(), &r).await;
    assert!(f.src.list(&r, FileType::Data).await.unwrap().len() >= 2);
    // Saves: config, the key, one pack; then every upload breaks midway.
    let faulty = Faulty::new(f.dst.clone(), 3, usize::MAX, false);
    let first = mirror_repo(
        f.src.as_ref(),
        &faulty,
        &r,
        &MirrorOptions {
            parallel: 1,
            retries: 1,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert!(!first.is_complete());
    assert_eq!(first.get(FileType::Keys).copied, 1, "{first:?}");
    assert_eq!(first.get(FileType::Data).copied, 1, "{first:?}");
    assert!(!first.errors.is_empty(), "{first:?}");
    assert!(
        first.errors[0].error.contains("simulated crash"),
        "{first:?}"
    );
    assert_eq!(
        first.skipped_phases,
        vec!["index".to_owned(), "snapshots".to_owned()]
    );
    // The target is consistent: only complete files, no index or snapshot
    // ahead of its packs, no temporary files listed.
    assert!(f.dst.list(&r, FileType::Index).await.unwrap().is_empty());
    assert!(f
        .dst
        .list(&r, FileType::Snapshots)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(f.dst.list(&r, FileType::Data).await.unwrap().len(), 1);
    assert!(scrub_repo(f.dst.as_ref(), &r, None)
        .await
        .unwrap()
        .is_clean());

    let second = mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    assert!(second.is_complete(), "{second:?}");
    assert!(!second.config_copied);
    assert_eq!(second.copied_files(), total - 2);
    assert_eq!(second.present_files(), 2);
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_is_retried() {
    let f = Fixture::new().await;
    let r = repo();
    // Saves 1 and 2 (the key, then the first pack) break once each.
    let flaky = Faulty::new(f.dst.clone(), 1, 2, false);
    let report = mirror_repo(
        f.src.as_ref(),
        &flaky,
        &r,
        &MirrorOptions {
            parallel: 1,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.copied_files(), count_named(f.src.as_ref(), &r).await);
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );

    // Without retries the same faults are errors.
    let g = Fixture::new().await;
    let flaky = Faulty::new(g.dst.clone(), 1, 1, false);
    let report = mirror_repo(
        g.src.as_ref(),
        &flaky,
        &r,
        &MirrorOptions {
            parallel: 1,
            retries: 0,
            ..opts()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(
        report.skipped_phases.len(),
        3,
        "a failed key stops everything after it: {report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_source_pack_is_reported_not_copied() {
    let f = Fixture::new().await;
    let r = repo();
    let packs = names(f.src.as_ref(), &r, FileType::Data).await;
    let bad = packs[0].clone();
    flip_byte(&file_path(&f.src_root(), &r, FileType::Data, &bad), 1000);

    let report = mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    assert_eq!(
        report.corrupt_source,
        vec![FileId {
            tpe: FileType::Data,
            name: bad.clone()
        }]
    );
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(!report.is_complete());
    assert_eq!(report.get(FileType::Data).copied, packs.len() as u64 - 1);
    let copied = names(f.dst.as_ref(), &r, FileType::Data).await;
    assert!(!copied.contains(&bad));
    assert_eq!(copied.len(), packs.len() - 1);
    // The rest went on: index and snapshots are there.
    assert_eq!(
        names(f.dst.as_ref(), &r, FileType::Snapshots).await,
        names(f.src.as_ref(), &r, FileType::Snapshots).await
    );
    assert!(scrub_repo(f.dst.as_ref(), &r, None)
        .await
        .unwrap()
        .is_clean());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["corrupt_source"][0], format!("data/{bad}"));

    // Reported again next time, still not copied.
    let again = mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    assert_eq!(again.corrupt_source.len(), 1);
    assert_eq!(again.copied_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_deletes_at_the_target() {
    let f = Fixture::new().await;
    let r = repo();
    mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    let before = contents(f.dst.as_ref(), &r).await;
    let snap = names(f.src.as_ref(), &r, FileType::Snapshots).await[0].clone();
    let pack = names(f.src.as_ref(), &r, FileType::Data).await[0].clone();
    f.src
        .delete(&r, &FileRef::Named(FileType::Snapshots, snap.clone()))
        .await
        .unwrap();
    std::fs::remove_file(file_path(&f.src_root(), &r, FileType::Data, &pack)).unwrap();

    let report = mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.copied_files(), 0);
    assert_eq!(contents(f.dst.as_ref(), &r).await, before);
    assert!(names(f.dst.as_ref(), &r, FileType::Snapshots)
        .await
        .contains(&snap));
    assert!(names(f.dst.as_ref(), &r, FileType::Data)
        .await
        .contains(&pack));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_config_is_refused() {
    let f = Fixture::new().await;
    let r = repo();
    mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    let before = contents(f.dst.as_ref(), &r).await;

    let other = make_repo(&f.tmp.path().join("other"), &r).await;
    let err = mirror_repo(other.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConfigMismatch, "{err}");
    assert!(err.to_string().contains("different repositories"), "{err}");
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        before,
        "nothing may be copied or overwritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_source_and_bad_options_are_errors() {
    let f = Fixture::new().await;
    let nobody = bulwark_store::RepoPath::parse("nobody").unwrap();
    let err = mirror_repo(f.src.as_ref(), f.dst.as_ref(), &nobody, &opts())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SourceNotFound, "{err}");
    let err = mirror_repo(
        f.src.as_ref(),
        f.dst.as_ref(),
        &repo(),
        &MirrorOptions {
            bandwidth: Some(0),
            ..opts()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidOptions, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limit_slows_the_copy() {
    let f = Fixture::new().await;
    let r = repo();
    let bytes: u64 = {
        let mut n = 0;
        for tpe in [
            FileType::Keys,
            FileType::Data,
            FileType::Index,
            FileType::Snapshots,
        ] {
            n += f
                .src
                .list(&r, tpe)
                .await
                .unwrap()
                .iter()
                .map(|e| e.size)
                .sum::<u64>();
        }
        n
    };
    // Aim for about one second.
    let rate = bytes.max(4);
    let start = Instant::now();
    let report = mirror_repo(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &MirrorOptions {
            bandwidth: Some(rate),
            ..opts()
        },
    )
    .await
    .unwrap();
    let took = start.elapsed().as_secs_f64();
    assert!(report.is_complete());
    assert_eq!(report.copied_bytes(), bytes);
    assert!(took >= 0.7, "{bytes} bytes at {rate} B/s took {took}s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_corruption_and_repair_fixes_it() {
    let f = Fixture::new().await;
    let r = repo();
    mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    let clean = verify_sample(f.dst.as_ref(), &r, Sample::All, 7)
        .await
        .unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(clean.checked, count_named(f.dst.as_ref(), &r).await);

    let pack = names(f.dst.as_ref(), &r, FileType::Data).await[0].clone();
    let snap = names(f.dst.as_ref(), &r, FileType::Snapshots).await[0].clone();
    flip_byte(&file_path(&f.dst_root(), &r, FileType::Data, &pack), 77);
    let snap_path = file_path(&f.dst_root(), &r, FileType::Snapshots, &snap);
    let content = std::fs::read(&snap_path).unwrap();
    std::fs::write(&snap_path, &content[..content.len() / 2]).unwrap();

    // Even a sample of no packs checks every snapshot.
    let none = verify_sample(f.dst.as_ref(), &r, Sample::Count(0), 7)
        .await
        .unwrap();
    assert_eq!(none.data_sampled, 0);
    assert_eq!(
        none.corrupt,
        vec![FileId {
            tpe: FileType::Snapshots,
            name: snap.clone()
        }]
    );
    // The same seed picks the same packs.
    let a = verify_sample(f.dst.as_ref(), &r, Sample::Fraction(0.5), 3)
        .await
        .unwrap();
    let b = verify_sample(f.dst.as_ref(), &r, Sample::Fraction(0.5), 3)
        .await
        .unwrap();
    assert_eq!(
        (a.checked, a.bytes, &a.corrupt),
        (b.checked, b.bytes, &b.corrupt)
    );

    let found = verify_sample(f.dst.as_ref(), &r, Sample::All, 7)
        .await
        .unwrap();
    let mut expected = vec![
        FileId {
            tpe: FileType::Data,
            name: pack.clone(),
        },
        FileId {
            tpe: FileType::Snapshots,
            name: snap.clone(),
        },
    ];
    expected.sort();
    assert_eq!(found.corrupt, expected);
    assert!(!found.is_clean());

    // A target that refuses deletes cannot be repaired: reported.
    let append_only = Faulty::new(f.dst.clone(), 0, 0, true);
    let refused = repair(f.src.as_ref(), &append_only, &r, &found, &opts())
        .await
        .unwrap();
    assert_eq!(refused.undeletable.len(), 2, "{refused:?}");
    assert!(refused.recopied.is_empty());
    assert!(!refused.is_complete());

    let fixed = repair(f.src.as_ref(), f.dst.as_ref(), &r, &found, &opts())
        .await
        .unwrap();
    assert!(fixed.is_complete(), "{fixed:?}");
    assert_eq!(fixed.recopied.len(), 2);
    assert!(verify_sample(f.dst.as_ref(), &r, Sample::All, 7)
        .await
        .unwrap()
        .is_clean());
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );

    // Repairing again finds them intact and touches nothing.
    let again = repair(f.src.as_ref(), f.dst.as_ref(), &r, &found, &opts())
        .await
        .unwrap();
    assert_eq!(again.intact.len(), 2);
    assert!(again.recopied.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_refuses_to_copy_a_source_that_is_corrupt_too() {
    let f = Fixture::new().await;
    let r = repo();
    mirror_repo(f.src.as_ref(), f.dst.as_ref(), &r, &opts())
        .await
        .unwrap();
    let pack = names(f.dst.as_ref(), &r, FileType::Data).await[0].clone();
    flip_byte(&file_path(&f.dst_root(), &r, FileType::Data, &pack), 5);
    flip_byte(&file_path(&f.src_root(), &r, FileType::Data, &pack), 9);
    let found = verify_sample(f.dst.as_ref(), &r, Sample::All, 1)
        .await
        .unwrap();
    let fixed = repair(f.src.as_ref(), f.dst.as_ref(), &r, &found, &opts())
        .await
        .unwrap();
    assert_eq!(fixed.unrepairable.len(), 1, "{fixed:?}");
    assert!(fixed.unrepairable[0]
        .error
        .contains("corrupt at the source"));
    // The corrupt target copy was deleted; nothing corrupt was stored.
    assert!(!names(f.dst.as_ref(), &r, FileType::Data)
        .await
        .contains(&pack));
}
