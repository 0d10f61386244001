//! The conformance suite every [`Store`] implementation must pass, and the
//! helpers the store tests share. Included by `tests/conformance.rs` (local
//! and S3 stores) and `tests/rest.rs` (the REST client) as `mod suite;`.

#![allow(dead_code)] // each test binary uses a different part

use std::{sync::Arc, time::Duration};

use bulwark_store::{
    ByteStream, Entry, ErrorKind, FileRef, FileType, Name, Range, RepoPath, Store,
};
use bytes::Bytes;
use futures::{channel::mpsc, SinkExt, StreamExt};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- helpers

pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::fill(&mut v[..]);
    v
}

pub fn name_of(data: &[u8]) -> Name {
    Name::parse(&hex::encode(Sha256::digest(data))).expect("a hex digest is a valid name")
}

pub fn repo(s: &str) -> RepoPath {
    RepoPath::parse(s).expect("valid repository path")
}

pub fn named(tpe: FileType, data: &[u8]) -> FileRef {
    FileRef::Named(tpe, name_of(data))
}

/// `data` as a stream of 64 KiB chunks.
pub fn body(data: &[u8]) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

pub async fn load_all(
    store: &dyn Store,
    repo: &RepoPath,
    file: &FileRef,
    range: Range,
) -> bulwark_store::Result<Vec<u8>> {
    let mut stream = store.load(repo, file, range).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(
            &chunk.map_err(|e| bulwark_store::Error::new(ErrorKind::Io, e.to_string()))?,
        );
    }
    Ok(out)
}

pub async fn save(
    store: &dyn Store,
    repo: &RepoPath,
    file: &FileRef,
    data: &[u8],
) -> bulwark_store::Result<u64> {
    store.save(repo, file, body(data), u64::MAX).await
}

pub fn kind<T: std::fmt::Debug>(r: bulwark_store::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind,
    }
}

pub fn sorted(mut v: Vec<Entry>) -> Vec<Entry> {
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

pub async fn list_names(store: &dyn Store, repo: &RepoPath, tpe: FileType) -> Vec<Name> {
    let mut v: Vec<Name> = store
        .list(repo, tpe)
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.name)
        .collect();
    v.sort();
    v
}

/// Asserts that `file` is absent everywhere: stat, load, list.
pub async fn assert_absent(store: &dyn Store, repo: &RepoPath, file: &FileRef) {
    assert_eq!(
        store.stat(repo, file).await.expect("stat"),
        None,
        "{file} should not exist"
    );
    assert_eq!(
        kind(load_all(store, repo, file, Range::default()).await),
        ErrorKind::NotFound,
        "{file}"
    );
    if let FileRef::Named(tpe, name) = file {
        assert!(
            !list_names(store, repo, *tpe).await.contains(name),
            "{file} must not be listed"
        );
    }
}

// ---------------------------------------------------------------- the suite

/// Checks a store cannot pass because of what its protocol or server can
/// express. `Limits::default()` (nothing skipped) is the full contract; a
/// test that sets a field must say why.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// The store cannot list repositories (restic's REST protocol has no
    /// request for it): `list_repos` checks are skipped.
    pub no_list_repos: bool,
    /// The server cannot tell a missing repository from an empty one
    /// (`rclone serve restic` lists a missing directory as empty): the
    /// checks that `repo_exists` is false and `list` is `NotFound` for a
    /// repository never created are skipped.
    pub no_missing_repo: bool,
    /// The server writes an upload in place and may keep a truncated file
    /// under the final name when the client aborts the upload (seen with
    /// `rclone serve restic` 1.60 on a local directory: it logs "Removing
    /// partially written file" yet the file stays). Absence after a failed
    /// upload is awaited (up to 10 s) where the server does clean up (small
    /// bodies: `wrong_hash`), and `too_large`, `body_errors` and
    /// `partial_uploads_invisible`, which abort large uploads mid-body, are
    /// skipped.
    pub aborted_uploads_linger: bool,
}

/// [`assert_absent`] after a failed upload, waiting for a server that
/// cleans up asynchronously (see [`Limits::aborted_uploads_linger`]).
async fn assert_gone(store: &dyn Store, repo: &RepoPath, file: &FileRef, limits: Limits) {
    if limits.aborted_uploads_linger {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while store.stat(repo, file).await.expect("stat").is_some()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_absent(store, repo, file).await;
}

/// Runs every conformance check against `store`, which must be empty.
pub async fn conformance(store: Arc<dyn Store>) {
    conformance_with(store, Limits::default()).await;
}

/// [`conformance`] minus the checks `limits` names.
pub async fn conformance_with(store: Arc<dyn Store>, limits: Limits) {
    let s = store.as_ref();
    names_and_paths();
    repositories(s, limits).await;
    save_and_load(s).await;
    ranges(s).await;
    listing(s).await;
    deleting(s).await;
    wrong_hash(s, limits).await;
    no_overwrite(s).await;
    concurrent_saves(store.clone()).await;
    if !limits.aborted_uploads_linger {
        too_large(s, limits).await;
        body_errors(s, limits).await;
        partial_uploads_invisible(store.clone(), limits).await;
    }
    config_file(s).await;
}

fn names_and_paths() {
    for bad in [
        "",
        "..",
        ".",
        ".hidden",
        "a/.hidden",
        "a/b/c",
        "data",
        "keys",
        "a/config",
        "config",
        "a/index",
        "/a",
        "a/",
        "a//b",
        "a b",
        "a\\b",
        "ä",
    ] {
        let r = RepoPath::parse(bad);
        assert_eq!(
            r.map_err(|e| e.kind).err(),
            Some(ErrorKind::InvalidName),
            "repository path {bad:?} must be refused"
        );
    }
    for good in ["alice", "alice/laptop", "a.b-c_D9", "x/y.z"] {
        assert_eq!(repo(good).to_string(), good);
    }
    assert_eq!(repo("alice/laptop").segments(), ["alice", "laptop"]);

    let valid = "0123456789abcdef".repeat(4);
    assert!(Name::parse(&valid).is_ok());
    for bad in [
        valid.to_uppercase(),
        valid[..63].to_owned(),
        format!("{valid}0"),
        format!("{}g", &valid[..63]),
        "z".repeat(64),
        format!("../{}", &valid[..61]),
        String::new(),
        format!("{}/", &valid[..63]),
    ] {
        assert_eq!(
            Name::parse(&bad).map_err(|e| e.kind).err(),
            Some(ErrorKind::InvalidName),
            "name {bad:?} must be refused"
        );
    }
    assert_eq!(FileType::parse("config"), None);
    assert_eq!(FileType::parse("Data"), None);
    for t in FileType::ALL {
        assert_eq!(FileType::parse(t.as_str()), Some(t));
    }
}

async fn repositories(s: &dyn Store, limits: Limits) {
    assert!(!s.describe().is_empty());
    if !limits.no_list_repos {
        assert_eq!(
            s.list_repos().await.expect("list_repos"),
            vec![],
            "the store must start empty"
        );
    }
    let (alice, laptop, desktop, bob) = (
        repo("alice"),
        repo("bob/laptop"),
        repo("bob/desktop"),
        repo("bob"),
    );
    if !limits.no_missing_repo {
        assert!(!s.repo_exists(&alice).await.expect("exists"));
        assert_eq!(
            kind(s.list(&alice, FileType::Keys).await),
            ErrorKind::NotFound
        );
    }
    assert_eq!(s.stat(&alice, &FileRef::Config).await.expect("stat"), None);
    assert_eq!(
        kind(load_all(s, &alice, &FileRef::Config, Range::default()).await),
        ErrorKind::NotFound
    );

    for r in [&alice, &laptop, &desktop] {
        s.create_repo(r).await.expect("create_repo");
        s.create_repo(r).await.expect("create_repo is idempotent");
        assert!(s.repo_exists(r).await.expect("exists"), "{r}");
        for t in FileType::ALL {
            assert_eq!(
                s.list(r, t).await.expect("list"),
                vec![],
                "{r}/{t} starts empty"
            );
        }
    }
    if !limits.no_missing_repo {
        assert!(
            !s.repo_exists(&bob).await.expect("exists"),
            "a user directory is not a repository"
        );
        assert_eq!(
            kind(s.list(&bob, FileType::Data).await),
            ErrorKind::NotFound
        );
    }
    if !limits.no_list_repos {
        assert_eq!(
            s.list_repos().await.expect("list_repos"),
            vec![alice.clone(), desktop.clone(), laptop.clone()]
        );
    }

    // A file stored in a nested repository does not make its parent one.
    let data = random_bytes(100);
    save(s, &laptop, &named(FileType::Keys, &data), &data)
        .await
        .expect("save");
    if !limits.no_missing_repo {
        assert!(!s.repo_exists(&bob).await.expect("exists"));
    }
    if !limits.no_list_repos {
        assert_eq!(s.list_repos().await.expect("list_repos").len(), 3);
    }
}

async fn save_and_load(s: &dyn Store) {
    let r = repo("saveload");
    s.create_repo(&r).await.expect("create_repo");
    for (tpe, len) in [
        (FileType::Data, 0),
        (FileType::Data, 1),
        (FileType::Data, 65 * 1024 + 17),
        (FileType::Keys, 411),
        (FileType::Locks, 190),
        (FileType::Snapshots, 300),
        (FileType::Index, 5000),
    ] {
        let data = random_bytes(len);
        let file = named(tpe, &data);
        assert_eq!(
            save(s, &r, &file, &data).await.expect("save"),
            len as u64,
            "{file}"
        );
        assert_eq!(
            s.stat(&r, &file).await.expect("stat"),
            Some(len as u64),
            "{file}"
        );
        assert_eq!(
            load_all(s, &r, &file, Range::default())
                .await
                .expect("load"),
            data,
            "{file}"
        );
        let listed = s.list(&r, tpe).await.expect("list");
        assert!(
            listed.contains(&Entry {
                name: name_of(&data),
                size: len as u64
            }),
            "{file} listed with its size: {listed:?}"
        );
        // Other types don't see it.
        let other = if tpe == FileType::Index {
            FileType::Keys
        } else {
            FileType::Index
        };
        assert!(!list_names(s, &r, other).await.contains(&name_of(&data)));
    }

    // A pack bigger than one S3 multipart chunk, streamed in odd-sized chunks.
    let big = random_bytes(12 * 1024 * 1024 + 12345);
    let file = named(FileType::Data, &big);
    let chunks: Vec<std::io::Result<Bytes>> = big
        .chunks(1_000_003)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let n = s
        .save(
            &r,
            &file,
            Box::pin(futures::stream::iter(chunks)),
            big.len() as u64,
        )
        .await
        .expect("save big");
    assert_eq!(n, big.len() as u64);
    assert_eq!(
        s.stat(&r, &file).await.expect("stat"),
        Some(big.len() as u64)
    );
    let loaded = load_all(s, &r, &file, Range::default())
        .await
        .expect("load big");
    assert!(loaded == big, "big file content differs");
    let mid = 8 * 1024 * 1024 - 5;
    let part = load_all(
        s,
        &r,
        &file,
        Range {
            offset: mid as u64,
            length: Some(20),
        },
    )
    .await
    .expect("range across parts");
    assert_eq!(part, &big[mid..mid + 20]);
}

async fn ranges(s: &dyn Store) {
    let r = repo("ranges");
    s.create_repo(&r).await.expect("create_repo");
    let data = random_bytes(1000);
    let file = named(FileType::Data, &data);
    save(s, &r, &file, &data).await.expect("save");
    let load = |offset: u64, length: Option<u64>| load_all(s, &r, &file, Range { offset, length });
    assert_eq!(load(0, None).await.expect("full"), data);
    assert_eq!(load(100, None).await.expect("offset"), &data[100..]);
    assert_eq!(
        load(100, Some(50)).await.expect("offset+length"),
        &data[100..150]
    );
    assert_eq!(load(0, Some(1)).await.expect("first byte"), &data[..1]);
    assert_eq!(load(999, Some(1)).await.expect("last byte"), &data[999..]);
    assert_eq!(
        load(990, Some(100)).await.expect("length past end is cut"),
        &data[990..]
    );
    assert_eq!(
        load(0, Some(5000)).await.expect("length past end is cut"),
        data
    );
    assert_eq!(
        load(1000, None).await.expect("offset at the end"),
        Vec::<u8>::new()
    );
    assert_eq!(
        load(10, Some(0)).await.expect("zero length"),
        Vec::<u8>::new()
    );
    assert_eq!(kind(load(1001, None).await), ErrorKind::RangeNotSatisfiable);
    assert_eq!(
        kind(load(5000, Some(10)).await),
        ErrorKind::RangeNotSatisfiable
    );
    // Ranges on config too.
    let config = b"not a real config, just bytes".to_vec();
    save(s, &r, &FileRef::Config, &config)
        .await
        .expect("save config");
    let part = load_all(
        s,
        &r,
        &FileRef::Config,
        Range {
            offset: 4,
            length: Some(4),
        },
    )
    .await
    .expect("config range");
    assert_eq!(part, &config[4..8]);
}

async fn listing(s: &dyn Store) {
    let r = repo("listing/repo");
    s.create_repo(&r).await.expect("create_repo");
    for tpe in FileType::ALL {
        let mut expected = Vec::new();
        for i in 0..7 {
            let data = random_bytes(10 + i * 37);
            save(s, &r, &named(tpe, &data), &data).await.expect("save");
            expected.push(Entry {
                name: name_of(&data),
                size: data.len() as u64,
            });
        }
        assert_eq!(
            sorted(s.list(&r, tpe).await.expect("list")),
            sorted(expected),
            "{tpe}"
        );
    }
    // Config is not listed under any type.
    save(s, &r, &FileRef::Config, b"cfg")
        .await
        .expect("save config");
    for tpe in FileType::ALL {
        assert_eq!(s.list(&r, tpe).await.expect("list").len(), 7);
    }
}

async fn deleting(s: &dyn Store) {
    let r = repo("deleting");
    s.create_repo(&r).await.expect("create_repo");
    let keep = random_bytes(50);
    save(s, &r, &named(FileType::Snapshots, &keep), &keep)
        .await
        .expect("save");
    for tpe in FileType::ALL {
        let data = random_bytes(123);
        let file = named(tpe, &data);
        save(s, &r, &file, &data).await.expect("save");
        s.delete(&r, &file).await.expect("delete");
        assert_absent(s, &r, &file).await;
        assert_eq!(
            kind(s.delete(&r, &file).await),
            ErrorKind::NotFound,
            "second delete of {file}"
        );
        // It can be stored again after deletion.
        save(s, &r, &file, &data).await.expect("save again");
        assert_eq!(
            load_all(s, &r, &file, Range::default())
                .await
                .expect("load"),
            data
        );
    }
    assert_eq!(
        kind(s.delete(&r, &named(FileType::Data, b"never stored")).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            s.delete(&repo("nobody"), &named(FileType::Data, b"x"))
                .await
        ),
        ErrorKind::NotFound
    );
    assert!(
        list_names(s, &r, FileType::Snapshots)
            .await
            .contains(&name_of(&keep)),
        "other files survive"
    );
}

async fn wrong_hash(s: &dyn Store, limits: Limits) {
    let r = repo("wronghash");
    s.create_repo(&r).await.expect("create_repo");
    let data = random_bytes(3000);
    let other = random_bytes(3000);
    for tpe in FileType::ALL {
        let file = named(tpe, &other);
        assert_eq!(
            kind(save(s, &r, &file, &data).await),
            ErrorKind::HashMismatch,
            "{file}"
        );
        assert_gone(s, &r, &file, limits).await;
        assert_eq!(
            s.list(&r, tpe).await.expect("list"),
            vec![],
            "nothing stored for {tpe}"
        );
        // The name is still free for the right content.
        save(s, &r, &file, &other)
            .await
            .expect("save the right content");
    }
    // Empty content under a non-empty hash.
    let file = named(FileType::Data, b"something");
    assert_eq!(kind(save(s, &r, &file, b"").await), ErrorKind::HashMismatch);
    assert_gone(s, &r, &file, limits).await;
}

async fn no_overwrite(s: &dyn Store) {
    let r = repo("overwrite");
    s.create_repo(&r).await.expect("create_repo");
    for tpe in FileType::ALL {
        let data = random_bytes(777);
        let file = named(tpe, &data);
        save(s, &r, &file, &data).await.expect("save");
        assert_eq!(
            kind(save(s, &r, &file, &data).await),
            ErrorKind::AlreadyExists,
            "same content again: {file}"
        );
        assert_eq!(
            kind(save(s, &r, &file, b"other").await),
            ErrorKind::AlreadyExists,
            "other content: {file}"
        );
        assert_eq!(
            load_all(s, &r, &file, Range::default())
                .await
                .expect("load"),
            data,
            "{file} unchanged"
        );
        assert_eq!(s.list(&r, tpe).await.expect("list").len(), 1);
    }
}

async fn concurrent_saves(store: Arc<dyn Store>) {
    let r = repo("concurrent");
    store.create_repo(&r).await.expect("create_repo");
    let data = Arc::new(random_bytes(300 * 1024));
    let file = named(FileType::Data, &data);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, r, file, data) = (store.clone(), r.clone(), file.clone(), data.clone());
        tasks.push(tokio::spawn(async move {
            // Slow bodies so that the uploads overlap.
            let chunks: Vec<Bytes> = data.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
            let body = futures::stream::iter(chunks).then(|c| async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                Ok(c)
            });
            store.save(&r, &file, Box::pin(body), u64::MAX).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(n) => {
                assert_eq!(n, data.len() as u64);
                ok += 1;
            }
            Err(e) => assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}"),
        }
    }
    assert!(ok >= 1, "at least one of the racing uploads must succeed");
    assert_eq!(
        load_all(store.as_ref(), &r, &file, Range::default())
            .await
            .expect("load"),
        *data
    );
    assert_eq!(
        store.list(&r, FileType::Data).await.expect("list"),
        vec![Entry {
            name: name_of(&data),
            size: data.len() as u64
        }]
    );

    // Different names in parallel all succeed.
    let mut tasks = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        let data = random_bytes(1000 + i);
        expected.push(name_of(&data));
        let (store, r) = (store.clone(), r.clone());
        tasks.push(tokio::spawn(async move {
            save(store.as_ref(), &r, &named(FileType::Index, &data), &data).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("parallel save");
    }
    expected.sort();
    assert_eq!(
        list_names(store.as_ref(), &r, FileType::Index).await,
        expected
    );
}

async fn too_large(s: &dyn Store, limits: Limits) {
    let r = repo("toolarge");
    s.create_repo(&r).await.expect("create_repo");
    let data = random_bytes(1000);
    let file = named(FileType::Data, &data);
    assert_eq!(
        kind(s.save(&r, &file, body(&data), 999).await),
        ErrorKind::TooLarge
    );
    assert_gone(s, &r, &file, limits).await;
    assert_eq!(
        kind(s.save(&r, &FileRef::Config, body(&data), 10).await),
        ErrorKind::TooLarge,
        "config too"
    );
    assert_gone(s, &r, &FileRef::Config, limits).await;
    // Exactly max_len is fine.
    assert_eq!(
        s.save(&r, &file, body(&data), 1000)
            .await
            .expect("save at the limit"),
        1000
    );

    // Past a multipart chunk: the started upload must be dropped.
    let big = random_bytes(11 * 1024 * 1024);
    let file = named(FileType::Data, &big);
    assert_eq!(
        kind(s.save(&r, &file, body(&big), 10 * 1024 * 1024).await),
        ErrorKind::TooLarge
    );
    assert_gone(s, &r, &file, limits).await;

    // The store stops reading: an endless body must not hang.
    let endless = futures::stream::repeat_with(|| Ok(Bytes::from(vec![0u8; 64 * 1024])));
    let res = tokio::time::timeout(
        Duration::from_secs(60),
        s.save(&r, &file, Box::pin(endless), 1024 * 1024),
    )
    .await;
    assert_eq!(
        kind(res.expect("save of an endless body must stop")),
        ErrorKind::TooLarge
    );
    assert_gone(s, &r, &file, limits).await;
    assert_eq!(s.list(&r, FileType::Data).await.expect("list").len(), 1);
}

async fn body_errors(s: &dyn Store, limits: Limits) {
    let r = repo("bodyerror");
    s.create_repo(&r).await.expect("create_repo");
    for (tpe, len) in [
        (FileType::Data, 200_000),
        (FileType::Keys, 100),
        (FileType::Data, 9 * 1024 * 1024),
    ] {
        let data = random_bytes(len);
        let file = named(tpe, &data);
        let half = Bytes::copy_from_slice(&data[..len / 2]);
        let failing = futures::stream::iter([
            Ok(half),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ]);
        let err = s
            .save(&r, &file, Box::pin(failing), u64::MAX)
            .await
            .expect_err("a failing body must fail the save");
        assert_eq!(err.kind, ErrorKind::Body, "{err}");
        assert_gone(s, &r, &file, limits).await;
        save(s, &r, &file, &data)
            .await
            .expect("the name is still free");
    }
    let failing = futures::stream::iter([Err(std::io::Error::other("immediately"))]);
    assert_eq!(
        kind(
            s.save(&r, &FileRef::Config, Box::pin(failing), u64::MAX)
                .await
        ),
        ErrorKind::Body
    );
    assert_gone(s, &r, &FileRef::Config, limits).await;
}

async fn partial_uploads_invisible(store: Arc<dyn Store>, limits: Limits) {
    let r = repo("partial");
    store.create_repo(&r).await.expect("create_repo");
    let data = random_bytes(100_000);
    let file = named(FileType::Snapshots, &data);

    // An upload in progress is invisible.
    let (mut tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(1);
    let task = {
        let (store, r, file) = (store.clone(), r.clone(), file.clone());
        tokio::spawn(async move { store.save(&r, &file, Box::pin(rx), u64::MAX).await })
    };
    tx.send(Ok(Bytes::copy_from_slice(&data[..50_000])))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    if !limits.aborted_uploads_linger {
        assert_absent(store.as_ref(), &r, &file).await;
    }
    tx.send(Ok(Bytes::copy_from_slice(&data[50_000..])))
        .await
        .expect("send");
    drop(tx);
    assert_eq!(task.await.expect("task").expect("save"), data.len() as u64);
    assert_eq!(
        load_all(store.as_ref(), &r, &file, Range::default())
            .await
            .expect("load"),
        data
    );

    // A cancelled upload leaves nothing and doesn't block the name.
    let data = random_bytes(100_000);
    let file = named(FileType::Snapshots, &data);
    let (mut tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(1);
    let task = {
        let (store, r, file) = (store.clone(), r.clone(), file.clone());
        tokio::spawn(async move { store.save(&r, &file, Box::pin(rx), u64::MAX).await })
    };
    tx.send(Ok(Bytes::copy_from_slice(&data[..50_000])))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    assert_gone(store.as_ref(), &r, &file, limits).await;
    save(store.as_ref(), &r, &file, &data)
        .await
        .expect("save after a cancelled upload");
    assert_eq!(
        store
            .list(&r, FileType::Snapshots)
            .await
            .expect("list")
            .len(),
        2
    );
}

async fn config_file(s: &dyn Store) {
    let r = repo("cfg/repo");
    s.create_repo(&r).await.expect("create_repo");
    assert_absent(s, &r, &FileRef::Config).await;
    let config = random_bytes(155); // config is not content-addressed
    assert_eq!(
        save(s, &r, &FileRef::Config, &config)
            .await
            .expect("save config"),
        155
    );
    assert_eq!(s.stat(&r, &FileRef::Config).await.expect("stat"), Some(155));
    assert_eq!(
        load_all(s, &r, &FileRef::Config, Range::default())
            .await
            .expect("load"),
        config
    );
    assert_eq!(
        kind(save(s, &r, &FileRef::Config, b"another config").await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(save(s, &r, &FileRef::Config, &config).await),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        load_all(s, &r, &FileRef::Config, Range::default())
            .await
            .expect("load"),
        config,
        "config unchanged"
    );
    assert!(s.repo_exists(&r).await.expect("exists"));
    for tpe in FileType::ALL {
        assert_eq!(s.list(&r, tpe).await.expect("list"), vec![]);
    }
    s.delete(&r, &FileRef::Config).await.expect("delete config");
    assert_absent(s, &r, &FileRef::Config).await;
    assert_eq!(
        kind(s.delete(&r, &FileRef::Config).await),
        ErrorKind::NotFound
    );
}
