//! The conformance suite every [`Store`] implementation must pass, run
//! against [`LocalStore`] and (feature `s3`) an `S3Store` on a moto server
//! the test starts itself; plus local-only tests (symlinks, temporary
//! files, a full disk).

use std::{path::Path, sync::Arc, time::Duration};

use bulwark_store::{local::LocalStore, ByteStream, Entry, ErrorKind, FileRef, FileType, Name, Range, RepoPath, Store};
use bytes::Bytes;
use futures::{channel::mpsc, SinkExt, StreamExt};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------- helpers

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::fill(&mut v[..]);
    v
}

fn name_of(data: &[u8]) -> Name {
    Name::parse(&hex::encode(Sha256::digest(data))).expect("a hex digest is a valid name")
}

fn repo(s: &str) -> RepoPath {
    RepoPath::parse(s).expect("valid repository path")
}

fn named(tpe: FileType, data: &[u8]) -> FileRef {
    FileRef::Named(tpe, name_of(data))
}

/// `data` as a stream of 64 KiB chunks.
fn body(data: &[u8]) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> = data.chunks(64 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn load_all(store: &dyn Store, repo: &RepoPath, file: &FileRef, range: Range) -> bulwark_store::Result<Vec<u8>> {
    let mut stream = store.load(repo, file, range).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.map_err(|e| bulwark_store::Error::new(ErrorKind::Io, e.to_string()))?);
    }
    Ok(out)
}

async fn save(store: &dyn Store, repo: &RepoPath, file: &FileRef, data: &[u8]) -> bulwark_store::Result<u64> {
    store.save(repo, file, body(data), u64::MAX).await
}

fn kind<T: std::fmt::Debug>(r: bulwark_store::Result<T>) -> ErrorKind {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind,
    }
}

fn sorted(mut v: Vec<Entry>) -> Vec<Entry> {
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

async fn list_names(store: &dyn Store, repo: &RepoPath, tpe: FileType) -> Vec<Name> {
    let mut v: Vec<Name> = store.list(repo, tpe).await.expect("list").into_iter().map(|e| e.name).collect();
    v.sort();
    v
}

/// Asserts that `file` is absent everywhere: stat, load, list.
async fn assert_absent(store: &dyn Store, repo: &RepoPath, file: &FileRef) {
    assert_eq!(store.stat(repo, file).await.expect("stat"), None, "{file} should not exist");
    assert_eq!(kind(load_all(store, repo, file, Range::default()).await), ErrorKind::NotFound, "{file}");
    if let FileRef::Named(tpe, name) = file {
        assert!(!list_names(store, repo, *tpe).await.contains(name), "{file} must not be listed");
    }
}

// ---------------------------------------------------------------- the suite

/// Runs every conformance check against `store`, which must be empty.
pub async fn conformance(store: Arc<dyn Store>) {
    let s = store.as_ref();
    names_and_paths();
    repositories(s).await;
    save_and_load(s).await;
    ranges(s).await;
    listing(s).await;
    deleting(s).await;
    wrong_hash(s).await;
    no_overwrite(s).await;
    concurrent_saves(store.clone()).await;
    too_large(s).await;
    body_errors(s).await;
    partial_uploads_invisible(store.clone()).await;
    config_file(s).await;
}

fn names_and_paths() {
    for bad in ["", "..", ".", ".hidden", "a/.hidden", "a/b/c", "data", "keys", "a/config", "config", "a/index", "/a", "a/", "a//b", "a b", "a\\b", "ä"] {
        let r = RepoPath::parse(bad);
        assert_eq!(r.map_err(|e| e.kind).err(), Some(ErrorKind::InvalidName), "repository path {bad:?} must be refused");
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
        assert_eq!(Name::parse(&bad).map_err(|e| e.kind).err(), Some(ErrorKind::InvalidName), "name {bad:?} must be refused");
    }
    assert_eq!(FileType::parse("config"), None);
    assert_eq!(FileType::parse("Data"), None);
    for t in FileType::ALL {
        assert_eq!(FileType::parse(t.as_str()), Some(t));
    }
}

async fn repositories(s: &dyn Store) {
    assert!(!s.describe().is_empty());
    assert_eq!(s.list_repos().await.expect("list_repos"), vec![], "the store must start empty");
    let (alice, laptop, desktop, bob) = (repo("alice"), repo("bob/laptop"), repo("bob/desktop"), repo("bob"));
    assert!(!s.repo_exists(&alice).await.expect("exists"));
    assert_eq!(kind(s.list(&alice, FileType::Keys).await), ErrorKind::NotFound);
    assert_eq!(s.stat(&alice, &FileRef::Config).await.expect("stat"), None);
    assert_eq!(kind(load_all(s, &alice, &FileRef::Config, Range::default()).await), ErrorKind::NotFound);

    for r in [&alice, &laptop, &desktop] {
        s.create_repo(r).await.expect("create_repo");
        s.create_repo(r).await.expect("create_repo is idempotent");
        assert!(s.repo_exists(r).await.expect("exists"), "{r}");
        for t in FileType::ALL {
            assert_eq!(s.list(r, t).await.expect("list"), vec![], "{r}/{t} starts empty");
        }
    }
    assert!(!s.repo_exists(&bob).await.expect("exists"), "a user directory is not a repository");
    assert_eq!(kind(s.list(&bob, FileType::Data).await), ErrorKind::NotFound);
    assert_eq!(s.list_repos().await.expect("list_repos"), vec![alice.clone(), desktop.clone(), laptop.clone()]);

    // A file stored in a nested repository does not make its parent one.
    let data = random_bytes(100);
    save(s, &laptop, &named(FileType::Keys, &data), &data).await.expect("save");
    assert!(!s.repo_exists(&bob).await.expect("exists"));
    assert_eq!(s.list_repos().await.expect("list_repos").len(), 3);
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
        assert_eq!(save(s, &r, &file, &data).await.expect("save"), len as u64, "{file}");
        assert_eq!(s.stat(&r, &file).await.expect("stat"), Some(len as u64), "{file}");
        assert_eq!(load_all(s, &r, &file, Range::default()).await.expect("load"), data, "{file}");
        let listed = s.list(&r, tpe).await.expect("list");
        assert!(listed.contains(&Entry { name: name_of(&data), size: len as u64 }), "{file} listed with its size: {listed:?}");
        // Other types don't see it.
        let other = if tpe == FileType::Index { FileType::Keys } else { FileType::Index };
        assert!(!list_names(s, &r, other).await.contains(&name_of(&data)));
    }

    // A pack bigger than one S3 multipart chunk, streamed in odd-sized chunks.
    let big = random_bytes(12 * 1024 * 1024 + 12345);
    let file = named(FileType::Data, &big);
    let chunks: Vec<std::io::Result<Bytes>> = big.chunks(1_000_003).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let n = s.save(&r, &file, Box::pin(futures::stream::iter(chunks)), big.len() as u64).await.expect("save big");
    assert_eq!(n, big.len() as u64);
    assert_eq!(s.stat(&r, &file).await.expect("stat"), Some(big.len() as u64));
    let loaded = load_all(s, &r, &file, Range::default()).await.expect("load big");
    assert!(loaded == big, "big file content differs");
    let mid = 8 * 1024 * 1024 - 5;
    let part = load_all(s, &r, &file, Range { offset: mid as u64, length: Some(20) }).await.expect("range across parts");
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
    assert_eq!(load(100, Some(50)).await.expect("offset+length"), &data[100..150]);
    assert_eq!(load(0, Some(1)).await.expect("first byte"), &data[..1]);
    assert_eq!(load(999, Some(1)).await.expect("last byte"), &data[999..]);
    assert_eq!(load(990, Some(100)).await.expect("length past end is cut"), &data[990..]);
    assert_eq!(load(0, Some(5000)).await.expect("length past end is cut"), data);
    assert_eq!(load(1000, None).await.expect("offset at the end"), Vec::<u8>::new());
    assert_eq!(load(10, Some(0)).await.expect("zero length"), Vec::<u8>::new());
    assert_eq!(kind(load(1001, None).await), ErrorKind::RangeNotSatisfiable);
    assert_eq!(kind(load(5000, Some(10)).await), ErrorKind::RangeNotSatisfiable);
    // Ranges on config too.
    let config = b"not a real config, just bytes".to_vec();
    save(s, &r, &FileRef::Config, &config).await.expect("save config");
    let part = load_all(s, &r, &FileRef::Config, Range { offset: 4, length: Some(4) }).await.expect("config range");
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
            expected.push(Entry { name: name_of(&data), size: data.len() as u64 });
        }
        assert_eq!(sorted(s.list(&r, tpe).await.expect("list")), sorted(expected), "{tpe}");
    }
    // Config is not listed under any type.
    save(s, &r, &FileRef::Config, b"cfg").await.expect("save config");
    for tpe in FileType::ALL {
        assert_eq!(s.list(&r, tpe).await.expect("list").len(), 7);
    }
}

async fn deleting(s: &dyn Store) {
    let r = repo("deleting");
    s.create_repo(&r).await.expect("create_repo");
    let keep = random_bytes(50);
    save(s, &r, &named(FileType::Snapshots, &keep), &keep).await.expect("save");
    for tpe in FileType::ALL {
        let data = random_bytes(123);
        let file = named(tpe, &data);
        save(s, &r, &file, &data).await.expect("save");
        s.delete(&r, &file).await.expect("delete");
        assert_absent(s, &r, &file).await;
        assert_eq!(kind(s.delete(&r, &file).await), ErrorKind::NotFound, "second delete of {file}");
        // It can be stored again after deletion.
        save(s, &r, &file, &data).await.expect("save again");
        assert_eq!(load_all(s, &r, &file, Range::default()).await.expect("load"), data);
    }
    assert_eq!(kind(s.delete(&r, &named(FileType::Data, b"never stored")).await), ErrorKind::NotFound);
    assert_eq!(kind(s.delete(&repo("nobody"), &named(FileType::Data, b"x")).await), ErrorKind::NotFound);
    assert!(list_names(s, &r, FileType::Snapshots).await.contains(&name_of(&keep)), "other files survive");
}

async fn wrong_hash(s: &dyn Store) {
    let r = repo("wronghash");
    s.create_repo(&r).await.expect("create_repo");
    let data = random_bytes(3000);
    let other = random_bytes(3000);
    for tpe in FileType::ALL {
        let file = named(tpe, &other);
        assert_eq!(kind(save(s, &r, &file, &data).await), ErrorKind::HashMismatch, "{file}");
        assert_absent(s, &r, &file).await;
        assert_eq!(s.list(&r, tpe).await.expect("list"), vec![], "nothing stored for {tpe}");
        // The name is still free for the right content.
        save(s, &r, &file, &other).await.expect("save the right content");
    }
    // Empty content under a non-empty hash.
    let file = named(FileType::Data, b"something");
    assert_eq!(kind(save(s, &r, &file, b"").await), ErrorKind::HashMismatch);
    assert_absent(s, &r, &file).await;
}

async fn no_overwrite(s: &dyn Store) {
    let r = repo("overwrite");
    s.create_repo(&r).await.expect("create_repo");
    for tpe in FileType::ALL {
        let data = random_bytes(777);
        let file = named(tpe, &data);
        save(s, &r, &file, &data).await.expect("save");
        assert_eq!(kind(save(s, &r, &file, &data).await), ErrorKind::AlreadyExists, "same content again: {file}");
        assert_eq!(kind(save(s, &r, &file, b"other").await), ErrorKind::AlreadyExists, "other content: {file}");
        assert_eq!(load_all(s, &r, &file, Range::default()).await.expect("load"), data, "{file} unchanged");
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
    assert_eq!(load_all(store.as_ref(), &r, &file, Range::default()).await.expect("load"), *data);
    assert_eq!(store.list(&r, FileType::Data).await.expect("list"), vec![Entry { name: name_of(&data), size: data.len() as u64 }]);

    // Different names in parallel all succeed.
    let mut tasks = Vec::new();
    let mut expected = Vec::new();
    for i in 0..10 {
        let data = random_bytes(1000 + i);
        expected.push(name_of(&data));
        let (store, r) = (store.clone(), r.clone());
        tasks.push(tokio::spawn(async move { save(store.as_ref(), &r, &named(FileType::Index, &data), &data).await }));
    }
    for t in tasks {
        t.await.expect("task").expect("parallel save");
    }
    expected.sort();
    assert_eq!(list_names(store.as_ref(), &r, FileType::Index).await, expected);
}

async fn too_large(s: &dyn Store) {
    let r = repo("toolarge");
    s.create_repo(&r).await.expect("create_repo");
    let data = random_bytes(1000);
    let file = named(FileType::Data, &data);
    assert_eq!(kind(s.save(&r, &file, body(&data), 999).await), ErrorKind::TooLarge);
    assert_absent(s, &r, &file).await;
    assert_eq!(kind(s.save(&r, &FileRef::Config, body(&data), 10).await), ErrorKind::TooLarge, "config too");
    assert_absent(s, &r, &FileRef::Config).await;
    // Exactly max_len is fine.
    assert_eq!(s.save(&r, &file, body(&data), 1000).await.expect("save at the limit"), 1000);

    // Past a multipart chunk: the started upload must be dropped.
    let big = random_bytes(11 * 1024 * 1024);
    let file = named(FileType::Data, &big);
    assert_eq!(kind(s.save(&r, &file, body(&big), 10 * 1024 * 1024).await), ErrorKind::TooLarge);
    assert_absent(s, &r, &file).await;

    // The store stops reading: an endless body must not hang.
    let endless = futures::stream::repeat_with(|| Ok(Bytes::from(vec![0u8; 64 * 1024])));
    let res = tokio::time::timeout(Duration::from_secs(60), s.save(&r, &file, Box::pin(endless), 1024 * 1024)).await;
    assert_eq!(kind(res.expect("save of an endless body must stop")), ErrorKind::TooLarge);
    assert_absent(s, &r, &file).await;
    assert_eq!(s.list(&r, FileType::Data).await.expect("list").len(), 1);
}

async fn body_errors(s: &dyn Store) {
    let r = repo("bodyerror");
    s.create_repo(&r).await.expect("create_repo");
    for (tpe, len) in [(FileType::Data, 200_000), (FileType::Keys, 100), (FileType::Data, 9 * 1024 * 1024)] {
        let data = random_bytes(len);
        let file = named(tpe, &data);
        let half = Bytes::copy_from_slice(&data[..len / 2]);
        let failing = futures::stream::iter([Ok(half), Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away"))]);
        let err = s.save(&r, &file, Box::pin(failing), u64::MAX).await.expect_err("a failing body must fail the save");
        assert_eq!(err.kind, ErrorKind::Body, "{err}");
        assert_absent(s, &r, &file).await;
        save(s, &r, &file, &data).await.expect("the name is still free");
    }
    let failing = futures::stream::iter([Err(std::io::Error::other("immediately"))]);
    assert_eq!(kind(s.save(&r, &FileRef::Config, Box::pin(failing), u64::MAX).await), ErrorKind::Body);
    assert_absent(s, &r, &FileRef::Config).await;
}

async fn partial_uploads_invisible(store: Arc<dyn Store>) {
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
    tx.send(Ok(Bytes::copy_from_slice(&data[..50_000]))).await.expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_absent(store.as_ref(), &r, &file).await;
    tx.send(Ok(Bytes::copy_from_slice(&data[50_000..]))).await.expect("send");
    drop(tx);
    assert_eq!(task.await.expect("task").expect("save"), data.len() as u64);
    assert_eq!(load_all(store.as_ref(), &r, &file, Range::default()).await.expect("load"), data);

    // A cancelled upload leaves nothing and doesn't block the name.
    let data = random_bytes(100_000);
    let file = named(FileType::Snapshots, &data);
    let (mut tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(1);
    let task = {
        let (store, r, file) = (store.clone(), r.clone(), file.clone());
        tokio::spawn(async move { store.save(&r, &file, Box::pin(rx), u64::MAX).await })
    };
    tx.send(Ok(Bytes::copy_from_slice(&data[..50_000]))).await.expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    assert_absent(store.as_ref(), &r, &file).await;
    save(store.as_ref(), &r, &file, &data).await.expect("save after a cancelled upload");
    assert_eq!(store.list(&r, FileType::Snapshots).await.expect("list").len(), 2);
}

async fn config_file(s: &dyn Store) {
    let r = repo("cfg/repo");
    s.create_repo(&r).await.expect("create_repo");
    assert_absent(s, &r, &FileRef::Config).await;
    let config = random_bytes(155); // config is not content-addressed
    assert_eq!(save(s, &r, &FileRef::Config, &config).await.expect("save config"), 155);
    assert_eq!(s.stat(&r, &FileRef::Config).await.expect("stat"), Some(155));
    assert_eq!(load_all(s, &r, &FileRef::Config, Range::default()).await.expect("load"), config);
    assert_eq!(kind(save(s, &r, &FileRef::Config, b"another config").await), ErrorKind::AlreadyExists);
    assert_eq!(kind(save(s, &r, &FileRef::Config, &config).await), ErrorKind::AlreadyExists);
    assert_eq!(load_all(s, &r, &FileRef::Config, Range::default()).await.expect("load"), config, "config unchanged");
    assert!(s.repo_exists(&r).await.expect("exists"));
    for tpe in FileType::ALL {
        assert_eq!(s.list(&r, tpe).await.expect("list"), vec![]);
    }
    s.delete(&r, &FileRef::Config).await.expect("delete config");
    assert_absent(s, &r, &FileRef::Config).await;
    assert_eq!(kind(s.delete(&r, &FileRef::Config).await), ErrorKind::NotFound);
}

// ---------------------------------------------------------------- local

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path().join("store")).expect("store");
    conformance(Arc::new(store)).await;
    // Nothing but final names is left behind by all the failed uploads.
    let mut stray = Vec::new();
    find_temps(&dir.path().join("store"), &mut stray);
    assert!(stray.is_empty(), "temporary files left behind: {stray:?}");
}

fn find_temps(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = entry.file_type().expect("file type");
        if ft.is_dir() {
            find_temps(&entry.path(), out);
        } else if name != "config" && Name::parse(&name).is_err() {
            out.push(entry.path().display().to_string());
        }
    }
}

#[tokio::test]
async fn local_layout_is_rest_servers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path()).expect("store");
    let r = repo("alice/laptop");
    store.create_repo(&r).await.expect("create");
    let base = dir.path().join("alice/laptop");
    for sub in ["keys", "locks", "snapshots", "index", "data/00", "data/7f", "data/ff"] {
        assert!(base.join(sub).is_dir(), "{sub}");
    }
    assert_eq!(std::fs::read_dir(base.join("data")).expect("data").count(), 256);
    let data = random_bytes(10);
    let name = name_of(&data);
    save(&store, &r, &FileRef::Named(FileType::Data, name.clone()), &data).await.expect("save");
    save(&store, &r, &FileRef::Named(FileType::Keys, name.clone()), &data).await.expect("save");
    save(&store, &r, &FileRef::Config, b"cfg").await.expect("save");
    assert_eq!(std::fs::read(base.join("data").join(&name.as_str()[..2]).join(name.as_str())).expect("pack"), data);
    assert_eq!(std::fs::read(base.join("keys").join(name.as_str())).expect("key"), data);
    assert_eq!(std::fs::read(base.join("config")).expect("config"), b"cfg");
}

#[tokio::test]
async fn local_symlinks_are_not_followed() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let store = LocalStore::new(root).expect("store");

    // A real repository outside the root, with a file in every type.
    let other = LocalStore::new(outside.path()).expect("other store");
    let target = repo("target");
    other.create_repo(&target).await.expect("create");
    let data = random_bytes(64);
    let name = name_of(&data);
    for tpe in FileType::ALL {
        save(&other, &target, &FileRef::Named(tpe, name.clone()), &data).await.expect("save");
    }
    save(&other, &target, &FileRef::Config, b"cfg").await.expect("save config");

    // 1. The repository directory is a symlink.
    symlink(outside.path().join("target"), root.join("evil")).expect("symlink");
    let evil = repo("evil");
    assert!(!store.repo_exists(&evil).await.expect("exists"));
    assert_eq!(kind(store.list(&evil, FileType::Keys).await), ErrorKind::NotFound);
    assert_eq!(store.stat(&evil, &FileRef::Config).await.expect("stat"), None);
    assert_eq!(kind(load_all(&store, &evil, &FileRef::Config, Range::default()).await), ErrorKind::NotFound);
    let keys_file = FileRef::Named(FileType::Keys, name.clone());
    assert_eq!(kind(load_all(&store, &evil, &keys_file, Range::default()).await), ErrorKind::NotFound);
    assert_eq!(kind(store.delete(&evil, &keys_file).await), ErrorKind::NotFound);
    let fresh = random_bytes(64);
    assert!(save(&store, &evil, &named(FileType::Keys, &fresh), &fresh).await.is_err(), "no writes through a symlink");
    assert!(store.create_repo(&evil).await.is_err(), "create_repo must not accept a symlink");
    assert_eq!(store.list_repos().await.expect("list_repos"), vec![]);
    assert_eq!(other.list(&target, FileType::Keys).await.expect("list").len(), 1, "target untouched");

    // 2. A user directory that is a symlink (two-segment path).
    symlink(outside.path(), root.join("mallory")).expect("symlink");
    let nested = repo("mallory/target");
    assert!(!store.repo_exists(&nested).await.expect("exists"));
    assert_eq!(kind(store.list(&nested, FileType::Data).await), ErrorKind::NotFound);
    assert_eq!(kind(load_all(&store, &nested, &FileRef::Config, Range::default()).await), ErrorKind::NotFound);
    assert_eq!(store.list_repos().await.expect("list_repos"), vec![]);

    // 3. Type directories and a data subdirectory that are symlinks.
    let real = repo("real");
    store.create_repo(&real).await.expect("create");
    let base = root.join("real");
    std::fs::remove_dir(base.join("index")).expect("rmdir");
    symlink(outside.path().join("target/index"), base.join("index")).expect("symlink");
    let sub = name.as_str()[..2].to_owned();
    let sub = sub.as_str();
    // New content whose name falls into the symlinked data subdirectory.
    let fresh = loop {
        let d = random_bytes(64);
        if name_of(&d).as_str().starts_with(sub) {
            break d;
        }
    };
    std::fs::remove_dir(base.join("data").join(sub)).expect("rmdir");
    symlink(outside.path().join("target/data").join(sub), base.join("data").join(sub)).expect("symlink");
    assert!(store.list(&real, FileType::Index).await.map(|v| v.is_empty()).unwrap_or(true), "symlinked index dir not listed");
    assert_eq!(store.list(&real, FileType::Data).await.expect("list"), vec![], "symlinked data subdir not listed");
    for tpe in [FileType::Index, FileType::Data] {
        let file = FileRef::Named(tpe, name.clone());
        assert_eq!(store.stat(&real, &file).await.expect("stat"), None, "{file}");
        assert_eq!(kind(load_all(&store, &real, &file, Range::default()).await), ErrorKind::NotFound, "{file}");
        assert_eq!(kind(store.delete(&real, &file).await), ErrorKind::NotFound, "{file}");
        assert!(save(&store, &real, &FileRef::Named(tpe, name_of(&fresh)), &fresh).await.is_err(), "no writes into a symlinked dir");
    }
    assert!(!outside.path().join("target/index").join(name_of(&fresh).as_str()).exists());
    assert!(!outside.path().join("target/data").join(sub).join(name_of(&fresh).as_str()).exists());

    // 4. Files (and config) that are symlinks.
    symlink(outside.path().join("target/keys").join(name.as_str()), base.join("keys").join(name.as_str())).expect("symlink");
    symlink(outside.path().join("target/config"), base.join("config")).expect("symlink");
    assert_eq!(store.list(&real, FileType::Keys).await.expect("list"), vec![], "symlinked file not listed");
    for file in [&keys_file, &FileRef::Config] {
        assert_eq!(store.stat(&real, file).await.expect("stat"), None, "{file}");
        assert_eq!(kind(load_all(&store, &real, file, Range::default()).await), ErrorKind::NotFound, "{file}");
        assert_eq!(kind(store.delete(&real, file).await), ErrorKind::NotFound, "{file}");
        assert_eq!(kind(save(&store, &real, file, &data).await), ErrorKind::AlreadyExists, "{file}");
    }
    assert!(outside.path().join("target/keys").join(name.as_str()).is_file(), "symlink target untouched");
    assert!(outside.path().join("target/config").is_file(), "symlink target untouched");
}

#[tokio::test]
async fn local_temp_files_are_hidden_and_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let store = LocalStore::new(root).expect("store");
    let (r, nested) = (repo("alice"), repo("bob/laptop"));
    store.create_repo(&r).await.expect("create");
    store.create_repo(&nested).await.expect("create");
    let data = random_bytes(100);
    save(&store, &r, &named(FileType::Keys, &data), &data).await.expect("save");

    let hex64 = "ab".repeat(32);
    let stale = [
        root.join("alice/keys/.tmp-0123456789abcdef0123456789abcdef"),
        root.join("alice/data/ab/.tmp-deadbeef"),
        root.join("alice/.tmp-config"),
        root.join("bob/laptop/data/00/.tmp-x"),
        root.join("bob/laptop/snapshots/.tmp-y"),
    ];
    let fresh = [root.join("alice/keys/.tmp-fresh"), root.join("bob/laptop/data/ab/.tmp-fresh")];
    let two_hours_ago = filetime::FileTime::from_system_time(std::time::SystemTime::now() - Duration::from_secs(7200));
    for p in &stale {
        std::fs::write(p, b"partial").expect("write");
        filetime::set_file_mtime(p, two_hours_ago).expect("mtime");
    }
    for p in &fresh {
        std::fs::write(p, b"partial").expect("write");
    }
    // Other junk that is not a name is not listed either.
    std::fs::write(root.join("alice/keys/README"), b"x").expect("write");
    std::fs::write(root.join("alice/keys").join(hex64.to_uppercase()), b"x").expect("write");
    std::fs::write(root.join("alice/data/00").join(&hex64), b"x").expect("misplaced pack");

    let listed = store.list(&r, FileType::Keys).await.expect("list");
    assert_eq!(listed, vec![Entry { name: name_of(&data), size: 100 }]);
    assert_eq!(store.list(&r, FileType::Data).await.expect("list"), vec![]);
    assert_eq!(store.list(&nested, FileType::Data).await.expect("list"), vec![]);
    assert_eq!(store.list(&nested, FileType::Snapshots).await.expect("list"), vec![]);

    // Reopening removes the stale ones and keeps uploads that may be running.
    let _store = LocalStore::new(root).expect("reopen");
    for p in &stale {
        assert!(!p.exists(), "{} should have been removed", p.display());
    }
    for p in &fresh {
        assert!(p.exists(), "{} is recent and must be kept", p.display());
    }
    assert!(root.join("alice/keys/README").exists(), "only temporary files are removed");
    assert!(root.join("alice/keys").join(name_of(&data).as_str()).exists());
}

#[tokio::test]
async fn local_save_into_missing_repository_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path()).expect("store");
    let data = random_bytes(10);
    assert_eq!(kind(save(&store, &repo("ghost"), &named(FileType::Keys, &data), &data).await), ErrorKind::NotFound);
    assert_eq!(kind(save(&store, &repo("ghost"), &FileRef::Config, &data).await), ErrorKind::NotFound);
    assert!(!dir.path().join("ghost").exists());
}

/// Unmounts a tmpfs on drop.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn local_no_space() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping local_no_space: cannot mount a small tmpfs here (needs root)");
        return;
    }
    let _guard = Mount(mnt.clone());
    let store = LocalStore::new(&mnt).expect("store");
    let r = repo("full");
    store.create_repo(&r).await.expect("create");
    let big = random_bytes(2 * 1024 * 1024);
    let file = named(FileType::Data, &big);
    let err = save(&store, &r, &file, &big).await.expect_err("does not fit");
    assert_eq!(err.kind, ErrorKind::NoSpace, "{err}");
    assert_absent(&store, &r, &file).await;
    let mut stray = Vec::new();
    find_temps(&mnt, &mut stray);
    assert!(stray.is_empty(), "nothing left behind: {stray:?}");
    // The space is free again: a small file fits.
    let small = random_bytes(1000);
    save(&store, &r, &named(FileType::Data, &small), &small).await.expect("small save after ENOSPC");
}

// ---------------------------------------------------------------- s3

#[cfg(feature = "s3")]
mod s3 {
    use std::{
        io::{Read, Write},
        net::{TcpListener, TcpStream},
        process::{Child, Command, Stdio},
        time::Instant,
    };

    use bulwark_store::s3::{S3Config, S3Store};

    use super::*;

    /// A moto S3 server on a free loopback port, killed on drop.
    struct Moto {
        child: Child,
        port: u16,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Moto {
        fn start() -> Moto {
            let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
            let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
            let child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin} (install it with `pip install 'moto[server]'`): {e}"));
            let mut moto = Moto { child, port };
            let deadline = Instant::now() + Duration::from_secs(60);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = moto.child.try_wait() {
                    panic!("{bin} exited early: {status}");
                }
                assert!(Instant::now() < deadline, "moto_server did not start listening on port {port}");
                std::thread::sleep(Duration::from_millis(100));
            }
            // Wait until it answers HTTP.
            while moto.http("GET", "/").is_err() {
                assert!(Instant::now() < deadline, "moto_server does not answer");
                std::thread::sleep(Duration::from_millis(100));
            }
            moto
        }

        /// A plain unsigned HTTP request (moto doesn't check signatures);
        /// returns the status code.
        fn http(&self, method: &str, path: &str) -> std::io::Result<u16> {
            let mut conn = TcpStream::connect(("127.0.0.1", self.port))?;
            conn.set_read_timeout(Some(Duration::from_secs(30)))?;
            write!(conn, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)?;
            let mut response = Vec::new();
            conn.read_to_end(&mut response)?;
            let text = String::from_utf8_lossy(&response);
            text.split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad response: {text}")))
        }

        /// Every object key in `bucket`, sorted, read with a plain opendal
        /// operator (independent of `S3Store`'s key mapping).
        async fn all_keys(&self, bucket: &str) -> Vec<String> {
            let builder = opendal::services::S3::default()
                .endpoint(&format!("http://127.0.0.1:{}", self.port))
                .region("us-east-1")
                .bucket(bucket)
                .access_key_id("test-key")
                .secret_access_key("test-secret")
                .disable_config_load()
                .disable_ec2_metadata();
            let op = opendal::Operator::new(builder).expect("operator");
            let mut keys: Vec<String> = op
                .list_with("/")
                .recursive(true)
                .await
                .expect("list bucket")
                .into_iter()
                .map(|e| e.path().to_owned())
                .filter(|p| p != "/")
                .collect();
            keys.sort();
            keys
        }

        fn store(&self, bucket: &str, prefix: &str) -> S3Store {
            assert_eq!(self.http("PUT", &format!("/{bucket}")).expect("create bucket"), 200);
            S3Store::new(S3Config {
                endpoint: format!("http://127.0.0.1:{}", self.port),
                region: "us-east-1".into(),
                bucket: bucket.into(),
                prefix: prefix.into(),
                access_key_id: "test-key".into(),
                secret_access_key: "test-secret".into(),
            })
            .expect("s3 store")
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn s3_conformance() {
        let moto = Moto::start();
        let store = moto.store("conformance", "/some/prefix/");
        assert!(!format!("{store:?}").contains("test-secret"));
        assert!(!store.describe().contains("test-secret"));
        conformance(Arc::new(store)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_layout_is_restics() {
        let moto = Moto::start();
        let store = moto.store("layout", "pre");
        let r = repo("alice/laptop");
        store.create_repo(&r).await.expect("create");
        let data = random_bytes(10);
        let name = name_of(&data);
        save(&store, &r, &FileRef::Named(FileType::Data, name.clone()), &data).await.expect("save");
        save(&store, &r, &FileRef::Named(FileType::Snapshots, name.clone()), &data).await.expect("save");
        save(&store, &r, &FileRef::Config, b"cfg").await.expect("save");
        let expected = vec![
            "pre/alice/laptop/config".to_owned(),
            format!("pre/alice/laptop/data/{}/{name}", &name.as_str()[..2]),
            "pre/alice/laptop/keys/".to_owned(),
            format!("pre/alice/laptop/snapshots/{name}"),
        ];
        assert_eq!(moto.all_keys("layout").await, expected);

        // An empty prefix puts repositories at the top of the bucket.
        let top = moto.store("top", "");
        top.create_repo(&repo("bob")).await.expect("create");
        save(&top, &repo("bob"), &FileRef::Config, b"cfg").await.expect("save");
        assert_eq!(moto.all_keys("top").await, vec!["bob/config".to_owned(), "bob/keys/".to_owned()]);
        assert_eq!(top.list_repos().await.expect("list_repos"), vec![repo("bob")]);
        // Failed uploads leave no objects.
        let data = random_bytes(100);
        let err = save(&top, &repo("bob"), &named(FileType::Keys, b"other"), &data).await.expect_err("wrong hash");
        assert_eq!(err.kind, ErrorKind::HashMismatch);
        assert_eq!(moto.all_keys("top").await.len(), 2);
    }

    #[tokio::test]
    async fn s3_unreachable_is_an_io_error() {
        let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let store = S3Store::new(S3Config {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "nothing".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            ..S3Config::default()
        })
        .expect("s3 store");
        let err = store.repo_exists(&repo("alice")).await.expect_err("nothing listens");
        assert_eq!(err.kind, ErrorKind::Io, "{err}");
    }
}
