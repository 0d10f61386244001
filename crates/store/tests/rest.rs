//! `RestStore` (feature `rest`) against a real `rclone serve restic` the
//! test starts itself (`RCLONE` names the binary, default `rclone`): the
//! shared conformance suite, what ends up on the server's disk, basic
//! authentication, and an unreachable server.
//!
//! Conformance checks skipped for this server, and why (see
//! [`suite::Limits`]):
//! - `list_repos`: restic's REST protocol has no request that lists
//!   repositories, so `RestStore::list_repos` always fails (checked below).
//! - "a repository never created does not exist / its listing is
//!   `NotFound`": `rclone serve restic` answers `200 []` for the listing of
//!   a missing directory, so no client can tell a missing repository from
//!   an empty one there (the hub and rest-server answer 404, which
//!   `RestStore` maps to `NotFound` / `false`).
//! - `too_large`, `body_errors`, `partial_uploads_invisible`: rclone 1.60
//!   writes uploads in place, and when the client aborts a large upload
//!   mid-body (too large, failing body, cancelled) a truncated file can stay
//!   under the final name although rclone logs that it removed it. No
//!   client can prevent that; `rest_client_side_checks` below checks the
//!   client's side (the right error kinds, the request aborted) instead.
//!   Against such a server a leftover truncated file would later look
//!   "already there" to a replicator: prefer the hub or rest-server.
//!
//! Everything else runs as for the local store, although rclone neither
//! verifies hashes nor refuses overwrites: `RestStore` enforces both on the
//! client side, which the on-disk check below confirms.

#![cfg(feature = "rest")]

mod suite;

use std::{
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bulwark_store::{ErrorKind, FileRef, FileType, Name, Range, RestStore, Store};
use sha2::{Digest, Sha256};
use suite::*;

/// An `rclone serve restic` on a free loopback port, killed on drop.
struct Rclone {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Rclone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rclone {
    fn start(extra: &[&str]) -> Rclone {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let bin = std::env::var("RCLONE").unwrap_or_else(|_| "rclone".to_owned());
        let child = Command::new(&bin)
            .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
            .args(extra)
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (install rclone): {e}"));
        let mut rclone = Rclone { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = rclone.child.try_wait() {
                panic!("{bin} exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "rclone did not start listening on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        rclone
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

/// Every regular file under `dir` must be a `config` or content named by
/// its SHA-256: nothing partial, unverified or temporary was left behind.
fn check_disk(dir: &Path, files: &mut usize) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if entry.file_type().expect("file type").is_dir() {
            check_disk(&path, files);
            continue;
        }
        *files += 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "config" {
            continue;
        }
        assert!(Name::parse(&name).is_ok(), "stray file {}", path.display());
        let content = std::fs::read(&path).expect("read");
        assert_eq!(
            hex::encode(Sha256::digest(&content)),
            name,
            "{} holds other content",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rest_conformance_rclone() {
    let rclone = Rclone::start(&[]);
    let store = RestStore::new(&rclone.url(), None, None).expect("store");
    let limits = Limits {
        no_list_repos: true,
        no_missing_repo: true,
        aborted_uploads_linger: true,
    };
    conformance_with(Arc::new(store.clone()), limits).await;

    let err = store
        .list_repos()
        .await
        .expect_err("the REST protocol cannot list repositories");
    assert_eq!(err.kind, ErrorKind::Io, "{err}");
    assert!(err.message.contains("no way to list repositories"), "{err}");

    let mut files = 0;
    check_disk(rclone.dir.path(), &mut files);
    assert!(files > 50, "the suite stored files ({files})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_layout_and_prefix() {
    let rclone = Rclone::start(&[]);
    // A path prefix in the base URL, without the trailing slash.
    let store = RestStore::new(&format!("http://127.0.0.1:{}/pre", rclone.port), None, None)
        .expect("store");
    let r = repo("alice/laptop");
    store.create_repo(&r).await.expect("create");
    let data = random_bytes(10);
    let name = name_of(&data);
    save(
        &store,
        &r,
        &FileRef::Named(FileType::Data, name.clone()),
        &data,
    )
    .await
    .expect("save");
    save(&store, &r, &FileRef::Config, b"cfg")
        .await
        .expect("save config");
    let base = rclone.dir.path().join("pre/alice/laptop");
    assert_eq!(std::fs::read(base.join("config")).expect("config"), b"cfg");
    // rclone's restic layout: data/<first two hex digits>/<name>.
    assert_eq!(
        std::fs::read(
            base.join("data")
                .join(&name.as_str()[..2])
                .join(name.as_str())
        )
        .expect("pack"),
        data
    );
    // Loading with a range from a server that honours Range.
    let part = load_all(
        &store,
        &r,
        &FileRef::Named(FileType::Data, name),
        Range {
            offset: 2,
            length: Some(3),
        },
    )
    .await;
    assert_eq!(part.expect("range"), &data[2..5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_basic_auth() {
    let password = "s3cret-Pa55";
    let work = tempfile::tempdir().expect("tempdir");
    let out = Command::new("openssl")
        .args(["passwd", "-apr1", password])
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl passwd failed");
    let hash = String::from_utf8(out.stdout).expect("utf-8");
    let htpasswd = work.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{}\n", hash.trim())).expect("write htpasswd");
    let rclone = Rclone::start(&["--htpasswd", htpasswd.to_str().expect("utf-8 path")]);
    let r = repo("alice");

    // Credentials in the URL.
    let store = RestStore::new(
        &format!("http://alice:{password}@127.0.0.1:{}/", rclone.port),
        None,
        None,
    )
    .expect("store");
    assert!(!format!("{store:?}").contains(password));
    assert!(!store.describe().contains(password));
    store
        .create_repo(&r)
        .await
        .expect("create with the right password");
    let data = random_bytes(1000);
    save(&store, &r, &named(FileType::Keys, &data), &data)
        .await
        .expect("save");
    assert_eq!(
        load_all(&store, &r, &named(FileType::Keys, &data), Range::default())
            .await
            .expect("load"),
        data
    );

    // Credentials given separately.
    let store = RestStore::new(&rclone.url(), Some(("alice".into(), password.into())), None)
        .expect("store");
    assert_eq!(store.list(&r, FileType::Keys).await.expect("list").len(), 1);

    // A wrong password, and none at all: a clear error without secrets.
    let wrong = "wrong-Pa55word";
    for store in [
        RestStore::new(
            &format!("http://alice:{wrong}@127.0.0.1:{}/", rclone.port),
            None,
            None,
        )
        .expect("store"),
        RestStore::new(&rclone.url(), Some(("alice".into(), wrong.into())), None).expect("store"),
        RestStore::new(&rclone.url(), None, None).expect("store"),
    ] {
        let other = random_bytes(10);
        let results = [
            store.create_repo(&r).await.err(),
            store.list(&r, FileType::Keys).await.err(),
            store.stat(&r, &FileRef::Config).await.err(),
            load_all(&store, &r, &named(FileType::Keys, &data), Range::default())
                .await
                .err(),
            save(&store, &r, &named(FileType::Keys, &other), &other)
                .await
                .err(),
            store.delete(&r, &named(FileType::Keys, &data)).await.err(),
        ];
        for err in results {
            let err = err.expect("refused without the right password");
            assert_eq!(err.kind, ErrorKind::Io, "{err}");
            assert!(
                err.message.contains("authentication failed") && err.message.contains("401"),
                "{err}"
            );
            let dbg = format!("{err:?}");
            assert!(!dbg.contains(wrong) && !dbg.contains(password), "{dbg}");
        }
    }
}

/// What `RestStore` itself refuses while streaming an upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_client_side_checks() {
    let rclone = Rclone::start(&[]);
    let store = RestStore::new(&rclone.url(), None, None).expect("store");
    let r = repo("client");
    store.create_repo(&r).await.expect("create");
    let data = random_bytes(1000);
    let file = named(FileType::Data, &data);
    assert_eq!(
        kind(store.save(&r, &file, body(&data), 999).await),
        ErrorKind::TooLarge
    );
    let endless = futures::stream::repeat_with(|| Ok(bytes::Bytes::from(vec![0u8; 64 * 1024])));
    let res = tokio::time::timeout(
        Duration::from_secs(60),
        store.save(&r, &file, Box::pin(endless), 1024 * 1024),
    )
    .await;
    assert_eq!(
        kind(res.expect("an endless body must stop")),
        ErrorKind::TooLarge
    );
    let failing = futures::stream::iter([
        Ok(bytes::Bytes::from_static(b"half")),
        Err(std::io::Error::other("gone")),
    ]);
    assert_eq!(
        kind(
            store
                .save(&r, &FileRef::Config, Box::pin(failing), u64::MAX)
                .await
        ),
        ErrorKind::Body
    );
    assert_eq!(
        kind(save(&store, &r, &named(FileType::Keys, b"other"), &data).await),
        ErrorKind::HashMismatch
    );
}

#[tokio::test]
async fn rest_unreachable_is_an_io_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let store =
        RestStore::new(&format!("http://u:hunter2@127.0.0.1:{port}"), None, None).expect("store");
    let err = store
        .repo_exists(&repo("alice"))
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Io, "{err}");
    assert!(!err.message.contains("hunter2"), "{err}");
    let err = save(&store, &repo("alice"), &FileRef::Config, b"x")
        .await
        .expect_err("nothing listens");
    assert_eq!(err.kind, ErrorKind::Io, "{err}");
}

#[test]
fn rest_bad_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let err = RestStore::new("https://h/", None, Some(&missing)).expect_err("missing CA file");
    assert_eq!(err.kind, ErrorKind::Io);
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, b"not a certificate").expect("write");
    assert!(
        RestStore::new("https://h/", None, Some(&junk)).is_err(),
        "a file without certificates is refused"
    );
}
