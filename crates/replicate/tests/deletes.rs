//! Deletion propagation between local stores: quarantine, cap, order,
//! refusing targets, vanished sources, dry runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::BTreeSet,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use bulwark_replicate::{
    mirror_repo, propagate_deletes, DeletePolicy, DeleteReport, ErrorKind, FileId, MirrorOptions,
    Pending, DELETE_ORDER,
};
use bulwark_store::{
    local::LocalStore, ByteStream, Entry, Error, FileRef, FileType, Range, RepoPath, Result, Store,
};
use common::*;

const HOUR: Duration = Duration::from_secs(3600);

struct Fixture {
    tmp: tempfile::TempDir,
    src: Arc<LocalStore>,
    dst: Arc<LocalStore>,
}

impl Fixture {
    /// A source repository of random files, correctly named, `counts`
    /// files per type, mirrored completely to the target.
    async fn synthetic(counts: &[(FileType, usize)]) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("src")).unwrap();
        std::fs::create_dir_all(tmp.path().join("dst")).unwrap();
        let src = Arc::new(LocalStore::new(tmp.path().join("src")).unwrap());
        let dst = Arc::new(LocalStore::new(tmp.path().join("dst")).unwrap());
        let r = repo();
        src.create_repo(&r).await.unwrap();
        let config = random_bytes(155);
        src.save(&r, &FileRef::Config, body(&config), u64::MAX)
            .await
            .unwrap();
        for &(tpe, n) in counts {
            for i in 0..n {
                let data = random_bytes(100 + i * 37);
                src.save(
                    &r,
                    &FileRef::Named(tpe, name_of(&data)),
                    body(&data),
                    u64::MAX,
                )
                .await
                .unwrap();
            }
        }
        let f = Fixture { tmp, src, dst };
        f.mirror().await;
        f
    }

    async fn mirror(&self) {
        let report = mirror_repo(
            self.src.as_ref(),
            self.dst.as_ref(),
            &repo(),
            &MirrorOptions::default(),
        )
        .await
        .unwrap();
        assert!(report.is_complete(), "{report:?}");
    }

    fn src_root(&self) -> PathBuf {
        self.tmp.path().join("src")
    }

    fn dst_root(&self) -> PathBuf {
        self.tmp.path().join("dst")
    }

    /// Deletes the first `n` files (by name) of `tpe` at the source.
    async fn delete_at_source(&self, tpe: FileType, n: usize) -> Vec<FileId> {
        let r = repo();
        let mut out = Vec::new();
        for name in names(self.src.as_ref(), &r, tpe).await.into_iter().take(n) {
            self.src
                .delete(&r, &FileRef::Named(tpe, name.clone()))
                .await
                .unwrap();
            out.push(FileId { tpe, name });
        }
        assert_eq!(out.len(), n, "not enough {tpe} files");
        out
    }
}

fn t0() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_735_689_600).unwrap()
}

fn at(offset: Duration) -> jiff::Timestamp {
    t0().checked_add(offset).unwrap()
}

fn policy(cap_percent: f64) -> DeletePolicy {
    DeletePolicy {
        quarantine: HOUR,
        cap_percent,
        dry_run: false,
    }
}

fn dry(cap_percent: f64) -> DeletePolicy {
    DeletePolicy {
        dry_run: true,
        ..policy(cap_percent)
    }
}

async fn run(
    f: &Fixture,
    pending: &mut Pending,
    now: jiff::Timestamp,
    policy: &DeletePolicy,
) -> DeleteReport {
    propagate_deletes(
        f.src.as_ref(),
        f.dst.as_ref(),
        &repo(),
        pending,
        now,
        policy,
    )
    .await
    .unwrap()
}

fn set(ids: &[FileId]) -> BTreeSet<FileId> {
    ids.iter().cloned().collect()
}

fn keys(pending: &Pending) -> BTreeSet<FileId> {
    pending.keys().cloned().collect()
}

/// Sorted as the deletes must go: by [`DELETE_ORDER`], then by name.
fn in_delete_order(mut ids: Vec<FileId>) -> Vec<FileId> {
    ids.sort_by_key(|id| {
        (
            DELETE_ORDER.iter().position(|t| *t == id.tpe),
            id.name.clone(),
        )
    });
    ids
}

/// Wraps a store: records every delete asked of it; deletes of the types
/// in `refuse` fail (an append-only store); listing `fail_list` fails;
/// listings leave out `hide`; with `no_repo` it says the repository does
/// not exist (the rest still works); with `gone_first` every delete finds
/// the file already removed (by someone else) and says `NotFound`; with
/// `lose_config`, `stat` says `config` is gone (a wipe racing a listing:
/// `load` still finds it).
#[derive(Debug)]
struct Watched {
    inner: Arc<dyn Store>,
    deletes: Mutex<Vec<FileRef>>,
    refuse: Vec<FileType>,
    fail_list: Option<FileType>,
    hide: Option<FileId>,
    no_repo: bool,
    gone_first: bool,
    lose_config: bool,
}

impl Watched {
    fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            deletes: Mutex::new(Vec::new()),
            refuse: Vec::new(),
            fail_list: None,
            hide: None,
            no_repo: false,
            gone_first: false,
            lose_config: false,
        }
    }

    fn deleted_types(&self) -> Vec<FileType> {
        self.deletes
            .lock()
            .unwrap()
            .iter()
            .map(|f| match f {
                FileRef::Named(tpe, _) => *tpe,
                FileRef::Config => panic!("config must never be deleted"),
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl Store for Watched {
    fn describe(&self) -> String {
        format!("watched {}", self.inner.describe())
    }
    async fn create_repo(&self, repo: &RepoPath) -> Result<()> {
        self.inner.create_repo(repo).await
    }
    async fn repo_exists(&self, repo: &RepoPath) -> Result<bool> {
        Ok(!self.no_repo && self.inner.repo_exists(repo).await?)
    }
    async fn list_repos(&self) -> Result<Vec<RepoPath>> {
        self.inner.list_repos().await
    }
    async fn list(&self, repo: &RepoPath, tpe: FileType) -> Result<Vec<Entry>> {
        if self.fail_list == Some(tpe) {
            return Err(Error::new(
                bulwark_store::ErrorKind::Io,
                format!("{repo}/{tpe}: listing failed (simulated)"),
            ));
        }
        let mut entries = self.inner.list(repo, tpe).await?;
        if let Some(hide) = &self.hide {
            entries.retain(|e| !(hide.tpe == tpe && hide.name == e.name));
        }
        Ok(entries)
    }
    async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>> {
        if self.lose_config && *file == FileRef::Config {
            return Ok(None);
        }
        self.inner.stat(repo, file).await
    }
    async fn load(&self, repo: &RepoPath, file: &FileRef, range: Range) -> Result<ByteStream> {
        self.inner.load(repo, file, range).await
    }
    async fn save(
        &self,
        repo: &RepoPath,
        file: &FileRef,
        body: ByteStream,
        max_len: u64,
    ) -> Result<u64> {
        self.inner.save(repo, file, body, max_len).await
    }
    async fn delete(&self, repo: &RepoPath, file: &FileRef) -> Result<()> {
        self.deletes.lock().unwrap().push(file.clone());
        if let FileRef::Named(tpe, _) = file {
            if self.refuse.contains(tpe) {
                return Err(Error::new(
                    bulwark_store::ErrorKind::Io,
                    format!("{repo}/{file}: deleting is not allowed (append-only)"),
                ));
            }
        }
        if self.gone_first {
            self.inner.delete(repo, file).await?;
            return Err(Error::new(
                bulwark_store::ErrorKind::NotFound,
                format!("{repo}/{file}: not found"),
            ));
        }
        self.inner.delete(repo, file).await
    }
}

const SMALL: [(FileType, usize); 4] = [
    (FileType::Keys, 2),
    (FileType::Data, 12),
    (FileType::Index, 4),
    (FileType::Snapshots, 4),
];

#[test]
fn propagate_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let s = LocalStore::new("/nonexistent-bulwark-test").unwrap();
    let r = repo();
    let mut pending = Pending::new();
    let p = policy(10.0);
    let fut = propagate_deletes(&s, &s, &r, &mut pending, t0(), &p);
    assert_send(&fut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_files_wait_out_the_quarantine_then_go() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    // A lock only the target has is never pending nor deleted.
    let lock = b"{\"hostname\":\"test\"}".to_vec();
    let lock_ref = FileRef::Named(FileType::Locks, name_of(&lock));
    f.dst
        .save(&r, &lock_ref, body(&lock), u64::MAX)
        .await
        .unwrap();

    let mut gone = f.delete_at_source(FileType::Snapshots, 1).await;
    gone.extend(f.delete_at_source(FileType::Index, 1).await);
    gone.extend(f.delete_at_source(FileType::Data, 3).await);
    gone.extend(f.delete_at_source(FileType::Keys, 1).await);
    let before = contents(f.dst.as_ref(), &r).await;
    let mut pending = Pending::new();

    let first = run(&f, &mut pending, t0(), &policy(50.0)).await;
    assert_eq!(
        (first.newly_pending, first.pending, first.eligible),
        (6, 6, 0),
        "{first:?}"
    );
    assert_eq!((first.total, first.cap), (22, 11), "{first:?}");
    assert!(first.deleted.is_empty() && first.is_clean(), "{first:?}");
    assert_eq!(first.next_eligible, Some(at(HOUR)));
    assert_eq!(keys(&pending), set(&gone));
    assert!(pending.values().all(|t| *t == t0()), "{pending:?}");
    assert_eq!(contents(f.dst.as_ref(), &r).await, before);

    // One second before the quarantine ends: still nothing; first-seen kept.
    let second = run(
        &f,
        &mut pending,
        at(HOUR - Duration::from_secs(1)),
        &policy(50.0),
    )
    .await;
    assert_eq!(
        (second.newly_pending, second.pending, second.eligible),
        (0, 6, 0),
        "{second:?}"
    );
    assert!(second.deleted.is_empty(), "{second:?}");
    assert!(pending.values().all(|t| *t == t0()), "{pending:?}");
    assert_eq!(contents(f.dst.as_ref(), &r).await, before);

    let third = run(&f, &mut pending, at(HOUR), &policy(50.0)).await;
    assert!(third.is_clean(), "{third:?}");
    assert_eq!(third.eligible, 6);
    assert_eq!(
        third.deleted,
        in_delete_order(gone.clone()),
        "reported in deletion order"
    );
    assert_eq!((third.pending, third.next_eligible), (0, None));
    assert!(pending.is_empty(), "{pending:?}");
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
    assert!(
        f.dst.stat(&r, &lock_ref).await.unwrap().is_some(),
        "locks are never touched"
    );
    let json = serde_json::to_value(&third).unwrap();
    assert_eq!(json["deleted"][0], gone[0].to_string(), "{json}");
    assert_eq!(json["over_cap"], false, "{json}");

    let fourth = run(&f, &mut pending, at(2 * HOUR), &policy(50.0)).await;
    assert_eq!(
        (
            fourth.total,
            fourth.newly_pending,
            fourth.eligible,
            fourth.deleted.len()
        ),
        (16, 0, 0, 0),
        "{fourth:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_back_at_the_source_is_never_deleted() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    let gone = f.delete_at_source(FileType::Data, 3).await;
    let back = gone[0].clone();
    let back_content = load_all(f.dst.as_ref(), &r, &back.file_ref()).await;
    let mut pending = Pending::new();
    // A stale entry of a type never deleted (locks) is dropped as gone.
    let lock = b"lock".to_vec();
    pending.insert(
        FileId {
            tpe: FileType::Locks,
            name: name_of(&lock),
        },
        t0(),
    );

    let first = run(&f, &mut pending, t0(), &policy(50.0)).await;
    assert_eq!(
        (first.newly_pending, first.pending, first.gone),
        (3, 3, 1),
        "{first:?}"
    );

    // One comes back at the source; one is removed at the target by hand.
    f.src
        .save(&r, &back.file_ref(), body(&back_content), u64::MAX)
        .await
        .unwrap();
    f.dst.delete(&r, &gone[1].file_ref()).await.unwrap();
    let second = run(&f, &mut pending, at(Duration::from_secs(60)), &policy(50.0)).await;
    assert_eq!(
        (
            second.reappeared,
            second.gone,
            second.pending,
            second.newly_pending
        ),
        (1, 1, 1, 0),
        "{second:?}"
    );
    assert_eq!(keys(&pending), set(&gone[2..]));

    let third = run(&f, &mut pending, at(2 * HOUR), &policy(50.0)).await;
    assert_eq!(third.deleted, vec![gone[2].clone()], "{third:?}");
    assert!(pending.is_empty());
    assert_eq!(
        load_all(f.dst.as_ref(), &r, &back.file_ref()).await,
        back_content
    );
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_misses_a_file_is_not_enough_to_delete_it() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    let pack = FileId {
        tpe: FileType::Data,
        name: names(f.src.as_ref(), &r, FileType::Data).await[0].clone(),
    };
    let source = Watched {
        hide: Some(pack.clone()),
        ..Watched::new(f.src.clone())
    };
    let mut pending = Pending::new();
    let first = propagate_deletes(
        &source,
        f.dst.as_ref(),
        &r,
        &mut pending,
        t0(),
        &policy(50.0),
    )
    .await
    .unwrap();
    assert_eq!(first.newly_pending, 1, "{first:?}");
    // The quarantine is over and the listing still misses it, but the
    // last look at the source finds it.
    let second = propagate_deletes(
        &source,
        f.dst.as_ref(),
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(50.0),
    )
    .await
    .unwrap();
    assert_eq!(
        (second.eligible, second.reappeared, second.pending),
        (1, 1, 0),
        "{second:?}"
    );
    assert!(second.deleted.is_empty(), "{second:?}");
    assert!(pending.is_empty());
    assert!(f.dst.stat(&r, &pack.file_ref()).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_nothing_is_deleted() {
    let f = Fixture::synthetic(&[
        (FileType::Keys, 1),
        (FileType::Data, 27),
        (FileType::Index, 6),
        (FileType::Snapshots, 6),
    ])
    .await;
    let r = repo();
    let mut gone = f.delete_at_source(FileType::Snapshots, 2).await;
    gone.extend(f.delete_at_source(FileType::Index, 2).await);
    gone.extend(f.delete_at_source(FileType::Data, 6).await);
    let before = contents(f.dst.as_ref(), &r).await;
    let mut pending = Pending::new();

    let first = run(&f, &mut pending, t0(), &policy(5.0)).await;
    assert_eq!(
        (first.total, first.cap, first.newly_pending, first.eligible),
        (40, 2, 10, 0),
        "{first:?}"
    );
    assert!(!first.over_cap, "nothing eligible yet: {first:?}");
    let snapshot = pending.clone();

    let later = at(2 * HOUR);
    for cap_percent in [5.0, 24.9] {
        let over = run(&f, &mut pending, later, &policy(cap_percent)).await;
        assert!(over.over_cap, "{over:?}");
        assert!(!over.is_clean());
        assert_eq!(over.eligible, 10);
        assert_eq!(over.cap, if cap_percent == 5.0 { 2 } else { 9 }, "{over:?}");
        assert!(over.deleted.is_empty(), "{over:?}");
        assert_eq!(over.pending, 10);
        assert_eq!(pending, snapshot, "pending stays as it was");
        assert_eq!(
            contents(f.dst.as_ref(), &r).await,
            before,
            "nothing deleted"
        );
        assert_eq!(serde_json::to_value(&over).unwrap()["over_cap"], true);
    }

    // Exactly at the cap is allowed (dry run: nothing changes).
    let exact = run(&f, &mut pending, later, &dry(25.0)).await;
    assert_eq!(
        (exact.cap, exact.over_cap, exact.deleted.len()),
        (10, false, 10),
        "{exact:?}"
    );
    assert_eq!(contents(f.dst.as_ref(), &r).await, before);

    let done = run(&f, &mut pending, later, &policy(50.0)).await;
    assert!(done.is_clean(), "{done:?}");
    assert_eq!((done.cap, done.deleted.len()), (20, 10), "{done:?}");
    assert_eq!(set(&done.deleted), set(&gone));
    assert!(pending.is_empty());
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_go_snapshots_then_index_then_data_then_keys() {
    let f = Fixture::synthetic(&[
        (FileType::Keys, 3),
        (FileType::Data, 12),
        (FileType::Index, 4),
        (FileType::Snapshots, 4),
    ])
    .await;
    let r = repo();
    let mut gone = Vec::new();
    // Deleted at the source in copy order, so the order cannot come from it.
    for tpe in [
        FileType::Keys,
        FileType::Data,
        FileType::Index,
        FileType::Snapshots,
    ] {
        gone.extend(f.delete_at_source(tpe, 2).await);
    }
    let target = Watched::new(f.dst.clone());
    let mut pending = Pending::new();
    propagate_deletes(
        f.src.as_ref(),
        &target,
        &r,
        &mut pending,
        t0(),
        &policy(50.0),
    )
    .await
    .unwrap();
    assert!(
        target.deletes.lock().unwrap().is_empty(),
        "nothing deleted during the quarantine"
    );

    let report = propagate_deletes(
        f.src.as_ref(),
        &target,
        &r,
        &mut pending,
        at(HOUR),
        &policy(50.0),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.deleted.len(), 8);
    let order = target.deleted_types();
    let expected = [
        FileType::Snapshots,
        FileType::Snapshots,
        FileType::Index,
        FileType::Index,
        FileType::Data,
        FileType::Data,
        FileType::Keys,
        FileType::Keys,
    ];
    assert_eq!(order, expected, "deleted in this order: {order:?}");
    let asked: BTreeSet<String> = target
        .deletes
        .lock()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    let expected_files: BTreeSet<String> = gone.iter().map(ToString::to_string).collect();
    assert_eq!(asked, expected_files);
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_only_target_keeps_everything_pending() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    let mut gone = f.delete_at_source(FileType::Snapshots, 1).await;
    gone.extend(f.delete_at_source(FileType::Index, 1).await);
    gone.extend(f.delete_at_source(FileType::Data, 2).await);
    gone.extend(f.delete_at_source(FileType::Keys, 1).await);
    let before = contents(f.dst.as_ref(), &r).await;
    let append_only = Watched {
        refuse: DELETE_ORDER.to_vec(),
        ..Watched::new(f.dst.clone())
    };
    let mut pending = Pending::new();
    propagate_deletes(
        f.src.as_ref(),
        &append_only,
        &r,
        &mut pending,
        t0(),
        &policy(50.0),
    )
    .await
    .unwrap();

    let report = propagate_deletes(
        f.src.as_ref(),
        &append_only,
        &r,
        &mut pending,
        at(HOUR),
        &policy(50.0),
    )
    .await
    .unwrap();
    assert!(!report.is_clean(), "{report:?}");
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!(report.errors[0].file, gone[0].to_string());
    assert!(report.errors[0].error.contains("append-only"), "{report:?}");
    assert_eq!(
        report.skipped,
        vec!["index".to_owned(), "data".to_owned(), "keys".to_owned()]
    );
    assert_eq!(
        append_only.deleted_types(),
        vec![FileType::Snapshots],
        "nothing after a failed snapshot delete is tried"
    );
    assert_eq!(keys(&pending), set(&gone), "everything stays pending");
    assert!(pending.values().all(|t| *t == t0()));
    assert_eq!(contents(f.dst.as_ref(), &r).await, before);

    // Once the target allows deletes, the next run finishes the job.
    let report = run(&f, &mut pending, at(2 * HOUR), &policy(50.0)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.deleted, in_delete_order(gone));
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_index_delete_keeps_the_packs() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    let snaps = f.delete_at_source(FileType::Snapshots, 2).await;
    let index = f.delete_at_source(FileType::Index, 2).await;
    let packs = f.delete_at_source(FileType::Data, 3).await;
    let target = Watched {
        refuse: vec![FileType::Index],
        ..Watched::new(f.dst.clone())
    };
    let mut pending = Pending::new();
    propagate_deletes(
        f.src.as_ref(),
        &target,
        &r,
        &mut pending,
        t0(),
        &policy(50.0),
    )
    .await
    .unwrap();

    let report = propagate_deletes(
        f.src.as_ref(),
        &target,
        &r,
        &mut pending,
        at(HOUR),
        &policy(50.0),
    )
    .await
    .unwrap();
    assert_eq!(report.deleted, snaps, "{report:?}");
    assert_eq!(report.errors.len(), 2, "both index files tried: {report:?}");
    assert_eq!(report.skipped, vec!["data".to_owned()], "{report:?}");
    assert!(!target.deleted_types().contains(&FileType::Data));
    for pack in &packs {
        assert!(
            f.dst.stat(&r, &pack.file_ref()).await.unwrap().is_some(),
            "{pack} must stay"
        );
    }
    let mut still: Vec<FileId> = index.clone();
    still.extend(packs.iter().cloned());
    assert_eq!(keys(&pending), set(&still));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_source_is_never_a_reason_to_delete() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    f.delete_at_source(FileType::Data, 2).await;
    let mut pending = Pending::new();
    run(&f, &mut pending, t0(), &policy(100.0)).await;
    let kept = pending.clone();
    let before = contents(f.dst.as_ref(), &r).await;
    let dir = repo_dir(&f.src_root(), &r);

    // Packs, index, snapshots and keys gone but the config left behind (an
    // object store lists an empty prefix without an error).
    for tpe in DELETE_ORDER {
        std::fs::remove_dir_all(dir.join(tpe.as_str())).unwrap();
    }
    let err = propagate_deletes(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SourceNotFound, "{err}");
    assert_eq!(pending, kept);

    // No config.
    std::fs::remove_file(dir.join("config")).unwrap();
    let err = propagate_deletes(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SourceNotFound, "{err}");
    assert_eq!(pending, kept);

    // The whole repository removed; also with nothing pending yet.
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!f.src.repo_exists(&r).await.unwrap());
    let err = propagate_deletes(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SourceNotFound, "{err}");
    assert_eq!(pending, kept);
    let mut empty = Pending::new();
    let err = propagate_deletes(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &mut empty,
        t0(),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SourceNotFound, "{err}");
    assert!(empty.is_empty());

    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        before,
        "the target is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_says_it_has_no_repository_is_believed() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    f.delete_at_source(FileType::Data, 2).await;
    let mut pending = Pending::new();
    run(&f, &mut pending, t0(), &policy(100.0)).await;
    let kept = pending.clone();
    // Its config and files are still readable, but the store says the
    // repository is not there: delete nothing.
    let source = Watched {
        no_repo: true,
        ..Watched::new(f.src.clone())
    };
    let target = Watched::new(f.dst.clone());
    let err = propagate_deletes(
        &source,
        &target,
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SourceNotFound, "{err}");
    assert_eq!(pending, kept);
    assert!(target.deletes.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_wiped_while_it_is_listed_deletes_nothing() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    f.delete_at_source(FileType::Data, 2).await;
    let mut pending = Pending::new();
    run(&f, &mut pending, t0(), &policy(100.0)).await;
    let kept = pending.clone();
    let source = Watched {
        lose_config: true,
        ..Watched::new(f.src.clone())
    };
    let target = Watched::new(f.dst.clone());
    let err = propagate_deletes(
        &source,
        &target,
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::SourceNotFound, "{err}");
    assert_eq!(pending, kept);
    assert!(target.deletes.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_already_gone_at_the_target_counts_as_deleted() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    let mut gone = f.delete_at_source(FileType::Snapshots, 1).await;
    gone.extend(f.delete_at_source(FileType::Data, 2).await);
    let target = Watched {
        gone_first: true,
        ..Watched::new(f.dst.clone())
    };
    let mut pending = Pending::new();
    propagate_deletes(
        f.src.as_ref(),
        &target,
        &r,
        &mut pending,
        t0(),
        &policy(50.0),
    )
    .await
    .unwrap();
    let report = propagate_deletes(
        f.src.as_ref(),
        &target,
        &r,
        &mut pending,
        at(HOUR),
        &policy(50.0),
    )
    .await
    .unwrap();
    assert!(report.is_clean(), "NotFound is not an error: {report:?}");
    assert_eq!(report.deleted, in_delete_order(gone));
    assert!(pending.is_empty(), "{pending:?}");
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        contents(f.src.as_ref(), &r).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_repository_at_either_side_is_refused() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    f.delete_at_source(FileType::Data, 2).await;
    let mut pending = Pending::new();
    run(&f, &mut pending, t0(), &policy(100.0)).await;
    let kept = pending.clone();
    let before = contents(f.dst.as_ref(), &r).await;

    // The source path now holds a different repository (re-initialised).
    let src_config = repo_dir(&f.src_root(), &r).join("config");
    let original = std::fs::read(&src_config).unwrap();
    std::fs::write(&src_config, random_bytes(155)).unwrap();
    let err = propagate_deletes(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConfigMismatch, "{err}");
    assert_eq!(pending, kept);
    std::fs::write(&src_config, original).unwrap();

    // The target has no config: its identity cannot be confirmed.
    std::fs::remove_file(repo_dir(&f.dst_root(), &r).join("config")).unwrap();
    let err = propagate_deletes(
        f.src.as_ref(),
        f.dst.as_ref(),
        &r,
        &mut pending,
        at(2 * HOUR),
        &policy(100.0),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConfigMismatch, "{err}");
    assert_eq!(pending, kept);
    let mut without_config = before.clone();
    without_config.remove("config");
    assert_eq!(
        named_contents(f.dst.as_ref(), &r).await,
        without_config,
        "nothing deleted"
    );
}

/// [`contents`] without `config` (for a repository that has none).
async fn named_contents(
    store: &dyn Store,
    repo: &RepoPath,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for tpe in DELETE_ORDER {
        for name in names(store, repo, tpe).await {
            let file = FileRef::Named(tpe, name);
            out.insert(file.to_string(), load_all(store, repo, &file).await);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_listing_deletes_nothing() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    f.delete_at_source(FileType::Data, 2).await;
    let mut pending = Pending::new();
    run(&f, &mut pending, t0(), &policy(100.0)).await;
    let kept = pending.clone();
    let before = contents(f.dst.as_ref(), &r).await;

    for tpe in DELETE_ORDER {
        let source = Watched {
            fail_list: Some(tpe),
            ..Watched::new(f.src.clone())
        };
        let err = propagate_deletes(
            &source,
            f.dst.as_ref(),
            &r,
            &mut pending,
            at(2 * HOUR),
            &policy(100.0),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Store, "{err}");
        assert!(err.to_string().contains("listing failed"), "{err}");
        let target = Watched {
            fail_list: Some(tpe),
            ..Watched::new(f.dst.clone())
        };
        let err = propagate_deletes(
            f.src.as_ref(),
            &target,
            &r,
            &mut pending,
            at(2 * HOUR),
            &policy(100.0),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Store, "{err}");
        assert!(target.deletes.lock().unwrap().is_empty());
        assert_eq!(pending, kept);
    }
    assert_eq!(contents(f.dst.as_ref(), &r).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    let gone = f.delete_at_source(FileType::Data, 3).await;
    let before = contents(f.dst.as_ref(), &r).await;
    let mut pending = Pending::new();

    let report = run(&f, &mut pending, t0(), &dry(50.0)).await;
    assert!(report.dry_run);
    assert_eq!(
        (report.newly_pending, report.pending),
        (3, 3),
        "what a real run would do: {report:?}"
    );
    assert!(
        pending.is_empty(),
        "a dry run does not touch pending: {pending:?}"
    );

    run(&f, &mut pending, t0(), &policy(50.0)).await;
    let kept = pending.clone();
    assert_eq!(kept.len(), 3);

    let report = run(&f, &mut pending, at(HOUR), &dry(50.0)).await;
    assert_eq!(report.deleted, gone, "would delete: {report:?}");
    assert_eq!((report.eligible, report.pending), (3, 0), "{report:?}");
    assert_eq!(pending, kept);
    assert_eq!(
        contents(f.dst.as_ref(), &r).await,
        before,
        "nothing deleted"
    );

    // A dry run over the cap says so and still changes nothing.
    let report = run(&f, &mut pending, at(HOUR), &dry(1.0)).await;
    assert!(report.over_cap && report.deleted.is_empty(), "{report:?}");
    assert_eq!(pending, kept);

    let report = run(&f, &mut pending, at(HOUR), &policy(50.0)).await;
    assert_eq!(report.deleted, gone);
    assert!(!report.dry_run && pending.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_cap_is_rejected() {
    let f = Fixture::synthetic(&SMALL).await;
    let r = repo();
    let gone = f.delete_at_source(FileType::Data, 1).await;
    let mut pending = Pending::new();
    pending.insert(gone[0].clone(), t0());
    for bad in [
        0.0,
        -5.0,
        100.000_1,
        1e9,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let err = propagate_deletes(
            f.src.as_ref(),
            f.dst.as_ref(),
            &r,
            &mut pending,
            at(2 * HOUR),
            &policy(bad),
        )
        .await
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidOptions, "{bad}: {err}");
        assert_eq!(pending.len(), 1);
        assert!(
            f.dst.stat(&r, &gone[0].file_ref()).await.unwrap().is_some(),
            "{bad}"
        );
    }
    let ok = run(&f, &mut pending, at(2 * HOUR), &policy(100.0)).await;
    assert_eq!(ok.deleted, gone, "{ok:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restic_prune_reaches_the_target_and_restic_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo();
    let src = make_repo(&tmp.path().join("src"), &r).await;
    std::fs::create_dir_all(tmp.path().join("dst")).unwrap();
    let dst = LocalStore::new(tmp.path().join("dst")).unwrap();
    let opts = MirrorOptions::default();
    assert!(mirror_repo(src.as_ref(), &dst, &r, &opts)
        .await
        .unwrap()
        .is_complete());

    let src_dir = repo_dir(&tmp.path().join("src"), &r);
    restic(&src_dir, &["forget", "--keep-last", "1", "--prune"]);
    assert!(mirror_repo(src.as_ref(), &dst, &r, &opts)
        .await
        .unwrap()
        .is_complete());

    let mut pending = Pending::new();
    let first = propagate_deletes(src.as_ref(), &dst, &r, &mut pending, t0(), &policy(100.0))
        .await
        .unwrap();
    assert!(
        first.newly_pending >= 2,
        "at least a snapshot and an index file: {first:?}"
    );
    assert!(first.deleted.is_empty());
    let done = propagate_deletes(
        src.as_ref(),
        &dst,
        &r,
        &mut pending,
        at(HOUR),
        &policy(100.0),
    )
    .await
    .unwrap();
    assert!(done.is_clean(), "{done:?}");
    assert_eq!(done.deleted.len(), first.newly_pending);
    assert!(pending.is_empty());
    assert_eq!(contents(&dst, &r).await, contents(src.as_ref(), &r).await);

    let dst_dir = repo_dir(&tmp.path().join("dst"), &r);
    let snapshots: serde_json::Value =
        serde_json::from_str(&restic(&dst_dir, &["snapshots", "--json"])).unwrap();
    assert_eq!(snapshots.as_array().unwrap().len(), 1, "{snapshots}");
    restic(&dst_dir, &["check", "--read-data"]);
}
