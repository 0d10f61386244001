//! The conformance suite every [`Store`] implementation must pass (in
//! `suite/mod.rs`, shared with `tests/rest.rs`), run against [`LocalStore`]
//! and (feature `s3`) an `S3Store` on a moto server the test starts itself;
//! plus local-only tests (symlinks, temporary files, a full disk).

mod suite;

use std::{path::Path, sync::Arc, time::Duration};

use bulwark_store::{local::LocalStore, Entry, ErrorKind, FileRef, FileType, Name, Range, Store};
use suite::*;

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
    for sub in [
        "keys",
        "locks",
        "snapshots",
        "index",
        "data/00",
        "data/7f",
        "data/ff",
    ] {
        assert!(base.join(sub).is_dir(), "{sub}");
    }
    assert_eq!(
        std::fs::read_dir(base.join("data")).expect("data").count(),
        256
    );
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
    save(
        &store,
        &r,
        &FileRef::Named(FileType::Keys, name.clone()),
        &data,
    )
    .await
    .expect("save");
    save(&store, &r, &FileRef::Config, b"cfg")
        .await
        .expect("save");
    assert_eq!(
        std::fs::read(
            base.join("data")
                .join(&name.as_str()[..2])
                .join(name.as_str())
        )
        .expect("pack"),
        data
    );
    assert_eq!(
        std::fs::read(base.join("keys").join(name.as_str())).expect("key"),
        data
    );
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
        save(&other, &target, &FileRef::Named(tpe, name.clone()), &data)
            .await
            .expect("save");
    }
    save(&other, &target, &FileRef::Config, b"cfg")
        .await
        .expect("save config");

    // 1. The repository directory is a symlink.
    symlink(outside.path().join("target"), root.join("evil")).expect("symlink");
    let evil = repo("evil");
    assert!(!store.repo_exists(&evil).await.expect("exists"));
    assert_eq!(
        kind(store.list(&evil, FileType::Keys).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.stat(&evil, &FileRef::Config).await.expect("stat"),
        None
    );
    assert_eq!(
        kind(load_all(&store, &evil, &FileRef::Config, Range::default()).await),
        ErrorKind::NotFound
    );
    let keys_file = FileRef::Named(FileType::Keys, name.clone());
    assert_eq!(
        kind(load_all(&store, &evil, &keys_file, Range::default()).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(store.delete(&evil, &keys_file).await),
        ErrorKind::NotFound
    );
    let fresh = random_bytes(64);
    assert!(
        save(&store, &evil, &named(FileType::Keys, &fresh), &fresh)
            .await
            .is_err(),
        "no writes through a symlink"
    );
    assert!(
        store.create_repo(&evil).await.is_err(),
        "create_repo must not accept a symlink"
    );
    assert_eq!(store.list_repos().await.expect("list_repos"), vec![]);
    assert_eq!(
        other
            .list(&target, FileType::Keys)
            .await
            .expect("list")
            .len(),
        1,
        "target untouched"
    );

    // 2. A user directory that is a symlink (two-segment path).
    symlink(outside.path(), root.join("mallory")).expect("symlink");
    let nested = repo("mallory/target");
    assert!(!store.repo_exists(&nested).await.expect("exists"));
    assert_eq!(
        kind(store.list(&nested, FileType::Data).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(load_all(&store, &nested, &FileRef::Config, Range::default()).await),
        ErrorKind::NotFound
    );
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
    symlink(
        outside.path().join("target/data").join(sub),
        base.join("data").join(sub),
    )
    .expect("symlink");
    assert!(
        store
            .list(&real, FileType::Index)
            .await
            .map(|v| v.is_empty())
            .unwrap_or(true),
        "symlinked index dir not listed"
    );
    assert_eq!(
        store.list(&real, FileType::Data).await.expect("list"),
        vec![],
        "symlinked data subdir not listed"
    );
    for tpe in [FileType::Index, FileType::Data] {
        let file = FileRef::Named(tpe, name.clone());
        assert_eq!(
            store.stat(&real, &file).await.expect("stat"),
            None,
            "{file}"
        );
        assert_eq!(
            kind(load_all(&store, &real, &file, Range::default()).await),
            ErrorKind::NotFound,
            "{file}"
        );
        assert_eq!(
            kind(store.delete(&real, &file).await),
            ErrorKind::NotFound,
            "{file}"
        );
        assert!(
            save(&store, &real, &FileRef::Named(tpe, name_of(&fresh)), &fresh)
                .await
                .is_err(),
            "no writes into a symlinked dir"
        );
    }
    assert!(!outside
        .path()
        .join("target/index")
        .join(name_of(&fresh).as_str())
        .exists());
    assert!(!outside
        .path()
        .join("target/data")
        .join(sub)
        .join(name_of(&fresh).as_str())
        .exists());

    // 4. Files (and config) that are symlinks.
    symlink(
        outside.path().join("target/keys").join(name.as_str()),
        base.join("keys").join(name.as_str()),
    )
    .expect("symlink");
    symlink(outside.path().join("target/config"), base.join("config")).expect("symlink");
    assert_eq!(
        store.list(&real, FileType::Keys).await.expect("list"),
        vec![],
        "symlinked file not listed"
    );
    for file in [&keys_file, &FileRef::Config] {
        assert_eq!(store.stat(&real, file).await.expect("stat"), None, "{file}");
        assert_eq!(
            kind(load_all(&store, &real, file, Range::default()).await),
            ErrorKind::NotFound,
            "{file}"
        );
        assert_eq!(
            kind(store.delete(&real, file).await),
            ErrorKind::NotFound,
            "{file}"
        );
        assert_eq!(
            kind(save(&store, &real, file, &data).await),
            ErrorKind::AlreadyExists,
            "{file}"
        );
    }
    assert!(
        outside
            .path()
            .join("target/keys")
            .join(name.as_str())
            .is_file(),
        "symlink target untouched"
    );
    assert!(
        outside.path().join("target/config").is_file(),
        "symlink target untouched"
    );
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
    save(&store, &r, &named(FileType::Keys, &data), &data)
        .await
        .expect("save");

    let hex64 = "ab".repeat(32);
    let stale = [
        root.join("alice/keys/.tmp-0123456789abcdef0123456789abcdef"),
        root.join("alice/data/ab/.tmp-deadbeef"),
        root.join("alice/.tmp-config"),
        root.join("bob/laptop/data/00/.tmp-x"),
        root.join("bob/laptop/snapshots/.tmp-y"),
    ];
    let fresh = [
        root.join("alice/keys/.tmp-fresh"),
        root.join("bob/laptop/data/ab/.tmp-fresh"),
    ];
    let two_hours_ago = filetime::FileTime::from_system_time(
        std::time::SystemTime::now() - Duration::from_secs(7200),
    );
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
    assert_eq!(
        listed,
        vec![Entry {
            name: name_of(&data),
            size: 100
        }]
    );
    assert_eq!(store.list(&r, FileType::Data).await.expect("list"), vec![]);
    assert_eq!(
        store.list(&nested, FileType::Data).await.expect("list"),
        vec![]
    );
    assert_eq!(
        store
            .list(&nested, FileType::Snapshots)
            .await
            .expect("list"),
        vec![]
    );

    // Reopening removes the stale ones and keeps uploads that may be running.
    let _store = LocalStore::new(root).expect("reopen");
    for p in &stale {
        assert!(!p.exists(), "{} should have been removed", p.display());
    }
    for p in &fresh {
        assert!(p.exists(), "{} is recent and must be kept", p.display());
    }
    assert!(
        root.join("alice/keys/README").exists(),
        "only temporary files are removed"
    );
    assert!(root
        .join("alice/keys")
        .join(name_of(&data).as_str())
        .exists());
}

#[tokio::test]
async fn local_save_into_missing_repository_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStore::new(dir.path()).expect("store");
    let data = random_bytes(10);
    assert_eq!(
        kind(save(&store, &repo("ghost"), &named(FileType::Keys, &data), &data).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(save(&store, &repo("ghost"), &FileRef::Config, &data).await),
        ErrorKind::NotFound
    );
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
    let err = save(&store, &r, &file, &big)
        .await
        .expect_err("does not fit");
    assert_eq!(err.kind, ErrorKind::NoSpace, "{err}");
    assert_absent(&store, &r, &file).await;
    let mut stray = Vec::new();
    find_temps(&mnt, &mut stray);
    assert!(stray.is_empty(), "nothing left behind: {stray:?}");
    // The space is free again: a small file fits.
    let small = random_bytes(1000);
    save(&store, &r, &named(FileType::Data, &small), &small)
        .await
        .expect("small save after ENOSPC");
}

// ---------------------------------------------------------------- s3

#[cfg(feature = "s3")]
mod s3 {
    use std::{
        collections::BTreeMap,
        io::{Read, Write},
        net::{Shutdown, TcpListener, TcpStream},
        process::{Child, Command, Stdio},
        sync::atomic::{AtomicUsize, Ordering},
        time::Instant,
    };

    use bulwark_store::s3::{S3Config, S3Store};
    use bytes::Bytes;

    use super::*;

    /// A moto S3 server on a free loopback port, killed on drop. Its log
    /// (one line per request) goes to a temporary file, for [`Moto::requests`].
    struct Moto {
        child: Child,
        port: u16,
        log: tempfile::NamedTempFile,
        /// Number of the last mark request and the log length it ended at.
        mark: std::sync::Mutex<(usize, usize)>,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Moto {
        fn start() -> Moto {
            let port = TcpListener::bind("127.0.0.1:0")
                .expect("bind")
                .local_addr()
                .expect("addr")
                .port();
            let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
            let log = tempfile::NamedTempFile::new().expect("moto log file");
            let out = log.as_file().try_clone().expect("log handle");
            let err = log.as_file().try_clone().expect("log handle");
            let child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err))
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {bin} (install it with `pip install 'moto[server]'`): {e}")
                });
            let mut moto = Moto {
                child,
                port,
                log,
                mark: std::sync::Mutex::new((0, 0)),
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = moto.child.try_wait() {
                    panic!("{bin} exited early: {status}");
                }
                assert!(
                    Instant::now() < deadline,
                    "moto_server did not start listening on port {port}"
                );
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
            self.http_text(method, path).map(|(status, _)| status)
        }

        /// [`Moto::http`], returning the status code and the whole response.
        fn http_text(&self, method: &str, path: &str) -> std::io::Result<(u16, String)> {
            let mut conn = TcpStream::connect(("127.0.0.1", self.port))?;
            conn.set_read_timeout(Some(Duration::from_secs(30)))?;
            write!(conn, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)?;
            let mut response = Vec::new();
            conn.read_to_end(&mut response)?;
            let text = String::from_utf8_lossy(&response).into_owned();
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("bad response: {text}")))?;
            Ok((status, text))
        }

        /// The requests moto answered since the previous call (or its
        /// start), by method, e.g. `{"HEAD": 1, "PUT": 1}`. Sends a marker
        /// request and reads the log up to its line: werkzeug logs a request
        /// when it sends the status line, so every request whose response
        /// the caller has received is in the log before the marker.
        fn requests(&self) -> BTreeMap<String, usize> {
            let mut mark = self.mark.lock().expect("mark");
            let n = mark.0 + 1;
            let marker = format!("/bulwark-test-mark-{n}");
            self.http("GET", &marker).expect("marker request");
            let deadline = Instant::now() + Duration::from_secs(10);
            let needle = format!("{marker} ");
            let text = loop {
                let log = std::fs::read_to_string(self.log.path()).expect("read moto log");
                if let Some(at) = log[mark.1..].find(&needle).map(|i| mark.1 + i) {
                    let end = log[at..].find('\n').map_or(log.len(), |i| at + i + 1);
                    let text = log[mark.1..at].to_owned();
                    *mark = (n, end);
                    break text;
                }
                assert!(
                    Instant::now() < deadline,
                    "moto did not log the marker request"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut counts = BTreeMap::new();
            for line in text.lines() {
                let Some((_, request)) = line.split_once('"') else {
                    continue;
                };
                let mut words = request.split_whitespace();
                let (Some(method), Some(path), Some(proto)) =
                    (words.next(), words.next(), words.next())
                else {
                    continue;
                };
                if proto.starts_with("HTTP/1.") && !path.starts_with("/bulwark-test-mark-") {
                    *counts.entry(method.to_owned()).or_insert(0) += 1;
                }
            }
            counts
        }

        /// A plain opendal operator on `bucket` (independent of `S3Store`).
        fn plain_op(&self, bucket: &str) -> opendal::Operator {
            plain_op_at(self.port, bucket)
        }

        /// The unfinished multipart uploads in `bucket` (ListMultipartUploads).
        fn open_uploads(&self, bucket: &str) -> usize {
            let (status, text) = self
                .http_text("GET", &format!("/{bucket}?uploads"))
                .expect("list uploads");
            assert_eq!(status, 200, "{text}");
            text.matches("<UploadId>").count()
        }

        /// Every object key in `bucket`, sorted, read with a plain opendal
        /// operator (independent of `S3Store`'s key mapping).
        async fn all_keys(&self, bucket: &str) -> Vec<String> {
            let op = self.plain_op(bucket);
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
            self.store_via(self.port, bucket, prefix)
        }

        /// [`Moto::store`] with the store talking to `port` (a proxy).
        fn store_via(&self, port: u16, bucket: &str, prefix: &str) -> S3Store {
            assert_eq!(
                self.http("PUT", &format!("/{bucket}"))
                    .expect("create bucket"),
                200
            );
            S3Store::new(S3Config {
                endpoint: format!("http://127.0.0.1:{port}"),
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
        save(
            &store,
            &r,
            &FileRef::Named(FileType::Data, name.clone()),
            &data,
        )
        .await
        .expect("save");
        save(
            &store,
            &r,
            &FileRef::Named(FileType::Snapshots, name.clone()),
            &data,
        )
        .await
        .expect("save");
        save(&store, &r, &FileRef::Config, b"cfg")
            .await
            .expect("save");
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
        save(&top, &repo("bob"), &FileRef::Config, b"cfg")
            .await
            .expect("save");
        assert_eq!(
            moto.all_keys("top").await,
            vec!["bob/config".to_owned(), "bob/keys/".to_owned()]
        );
        assert_eq!(
            top.list_repos().await.expect("list_repos"),
            vec![repo("bob")]
        );
        // Failed uploads leave no objects.
        let data = random_bytes(100);
        let err = save(&top, &repo("bob"), &named(FileType::Keys, b"other"), &data)
            .await
            .expect_err("wrong hash");
        assert_eq!(err.kind, ErrorKind::HashMismatch);
        assert_eq!(moto.all_keys("top").await.len(), 2);
    }

    #[tokio::test]
    async fn s3_unreachable_is_an_io_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let store = S3Store::new(S3Config {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "nothing".into(),
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            ..S3Config::default()
        })
        .expect("s3 store");
        let err = store
            .repo_exists(&repo("alice"))
            .await
            .expect_err("nothing listens");
        assert_eq!(err.kind, ErrorKind::Io, "{err}");
    }

    /// A plain opendal operator on `bucket` at a moto (or proxy) on `port`.
    fn plain_op_at(port: u16, bucket: &str) -> opendal::Operator {
        opendal::install_default(); // the HTTP transport, as S3Store::new does
        let builder = opendal::services::S3::default()
            .endpoint(&format!("http://127.0.0.1:{port}"))
            .region("us-east-1")
            .bucket(bucket)
            .access_key_id("test-key")
            .secret_access_key("test-secret")
            .disable_config_load()
            .disable_ec2_metadata();
        opendal::Operator::new(builder).expect("operator")
    }

    // ------------------------------------------------ requests per save

    /// The largest body `S3Store` sends in one PUT (`SINGLE_PUT_MAX` in
    /// s3.rs); above it, multipart uploads of 16 MiB parts.
    const SINGLE_PUT_MAX: usize = 32 * 1024 * 1024;

    fn reqs(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(m, n)| ((*m).to_owned(), *n)).collect()
    }

    fn data_key(prefix: &str, r: &str, data: &[u8]) -> String {
        let name = name_of(data);
        format!("{prefix}{r}/data/{}/{name}", &name.as_str()[..2])
    }

    /// What each kind of save costs on a server that honours
    /// `If-None-Match: *` (moto 5), around the single-PUT threshold too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_requests_per_save() {
        let moto = Moto::start();
        let store = moto.store("requests", "pre");
        let r = repo("alice");
        store.create_repo(&r).await.expect("create");
        moto.requests();

        // The first save probes (two conditional PUTs of one object, the
        // second refused, then its DELETE); config always gets its HEAD.
        save(&store, &r, &FileRef::Config, b"cfg")
            .await
            .expect("config");
        assert_eq!(
            moto.requests(),
            reqs(&[("DELETE", 1), ("HEAD", 1), ("PUT", 3)]),
            "probe + config"
        );

        // Content-addressed files up to the threshold: one PUT each.
        for len in [0, 1, 411, 65 * 1024 + 17, 300 * 1024] {
            let data = random_bytes(len);
            save(&store, &r, &named(FileType::Data, &data), &data)
                .await
                .expect("save small");
        }
        assert_eq!(moto.requests(), reqs(&[("PUT", 5)]), "small files");

        // Exactly at the threshold: still one PUT (a single-part ETag).
        let at = random_bytes(SINGLE_PUT_MAX);
        assert_eq!(
            save(&store, &r, &named(FileType::Data, &at), &at)
                .await
                .expect("save at the threshold"),
            at.len() as u64
        );
        assert_eq!(moto.requests(), reqs(&[("PUT", 1)]), "at the threshold");
        // One byte more: a multipart upload, parts of 16 + 16 MiB + 1 byte:
        // HEAD as the body passes the threshold, create, 3 parts, HEAD, complete.
        let above = random_bytes(SINGLE_PUT_MAX + 1);
        assert_eq!(
            save(&store, &r, &named(FileType::Data, &above), &above)
                .await
                .expect("save above"),
            above.len() as u64
        );
        assert_eq!(
            moto.requests(),
            reqs(&[("HEAD", 2), ("POST", 2), ("PUT", 3)]),
            "above the threshold"
        );

        let op = moto.plain_op("requests");
        let etag = |key: String| {
            let op = op.clone();
            async move {
                op.stat(&key)
                    .await
                    .expect("stat")
                    .etag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_owned()
            }
        };
        assert!(
            !etag(data_key("pre/", "alice", &at)).await.contains('-'),
            "uploaded in one PUT"
        );
        assert!(
            etag(data_key("pre/", "alice", &above))
                .await
                .ends_with("-3"),
            "uploaded in 3 parts"
        );
        let (at_file, above_file) = (named(FileType::Data, &at), named(FileType::Data, &above));
        assert!(
            load_all(&store, &r, &at_file, Range::default())
                .await
                .expect("load")
                == at,
            "content at the threshold"
        );
        assert!(
            load_all(&store, &r, &above_file, Range::default())
                .await
                .expect("load")
                == above,
            "content above the threshold"
        );
        let mid = 16 * 1024 * 1024 - 3;
        let part = load_all(
            &store,
            &r,
            &above_file,
            Range {
                offset: mid as u64,
                length: Some(10),
            },
        )
        .await
        .expect("range across parts");
        assert_eq!(part, &above[mid..mid + 10]);
        let last = load_all(
            &store,
            &r,
            &above_file,
            Range {
                offset: SINGLE_PUT_MAX as u64 - 1,
                length: None,
            },
        )
        .await
        .expect("last bytes");
        assert_eq!(last, &above[SINGLE_PUT_MAX - 1..]);
        moto.requests();

        // Refusals. An existing content-addressed name: the server refuses
        // the conditional PUT (412), no HEAD.
        let small = random_bytes(777);
        let small_file = named(FileType::Keys, &small);
        save(&store, &r, &small_file, &small).await.expect("save");
        moto.requests();
        assert_eq!(
            kind(save(&store, &r, &small_file, &small).await),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            moto.requests(),
            reqs(&[("PUT", 1)]),
            "refused by the server"
        );
        // Other content under it: refused as existing (one HEAD, to tell).
        assert_eq!(
            kind(save(&store, &r, &small_file, b"other").await),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            moto.requests(),
            reqs(&[("HEAD", 1)]),
            "existing name, wrong content"
        );
        // config: its HEAD refuses it, nothing is sent.
        assert_eq!(
            kind(save(&store, &r, &FileRef::Config, b"another").await),
            ErrorKind::AlreadyExists
        );
        assert_eq!(moto.requests(), reqs(&[("HEAD", 1)]), "existing config");
        // A large body for an existing name: refused before any upload.
        assert_eq!(
            kind(save(&store, &r, &named(FileType::Data, &above), &above).await),
            ErrorKind::AlreadyExists
        );
        assert_eq!(moto.requests(), reqs(&[("HEAD", 1)]), "existing large file");
        // Wrong hash or too large on a free name: nothing sent (the HEAD
        // only tells "exists" apart).
        let fresh = random_bytes(5000);
        assert_eq!(
            kind(save(&store, &r, &named(FileType::Index, b"x"), &fresh).await),
            ErrorKind::HashMismatch
        );
        assert_eq!(
            kind(
                store
                    .save(&r, &named(FileType::Index, &fresh), body(&fresh), 4999)
                    .await
            ),
            ErrorKind::TooLarge
        );
        assert_eq!(moto.requests(), reqs(&[("HEAD", 2)]), "refused content");

        // Nothing else in the bucket: no probe object, no unfinished upload.
        assert_eq!(moto.open_uploads("requests"), 0);
        let keys = moto.all_keys("requests").await;
        assert_eq!(
            keys.len(),
            10,
            "config, keys/ marker, 7 data files, 1 key file: {keys:?}"
        );
        assert!(keys.iter().all(|k| k.starts_with("pre/alice/")), "{keys:?}");

        // A probe object left behind by an earlier process that could not
        // delete it: the first conditional PUT is refused, a HEAD confirms
        // the object, and the verdict is the same.
        let left = moto.store("leftover", "");
        moto.plain_op("leftover")
            .write(".bulwark-conditional-write-probe", "old")
            .await
            .expect("leftover probe");
        left.create_repo(&r).await.expect("create");
        moto.requests();
        let data = random_bytes(100);
        save(&left, &r, &named(FileType::Snapshots, &data), &data)
            .await
            .expect("save");
        assert_eq!(
            moto.requests(),
            reqs(&[("DELETE", 1), ("HEAD", 1), ("PUT", 2)]),
            "probe with a leftover object + save"
        );
        save(&left, &r, &named(FileType::Snapshots, b"more"), b"more")
            .await
            .expect("save");
        assert_eq!(
            moto.requests(),
            reqs(&[("PUT", 1)]),
            "conditional writes used after that probe"
        );
        assert_eq!(
            moto.all_keys("leftover").await.len(),
            3,
            "probe object gone"
        );
    }

    /// Multipart uploads (bodies above the single-PUT threshold) that fail
    /// leave nothing, not even an unfinished upload; racing ones are safe.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn s3_multipart_failures_leave_nothing() {
        let moto = Moto::start();
        let store = Arc::new(moto.store("multipart", ""));
        let r = repo("bob");
        store.create_repo(&r).await.expect("create");
        let big = Arc::new(random_bytes(SINGLE_PUT_MAX + 5 * 1024 * 1024 + 3));
        let file = named(FileType::Data, &big);

        // Wrong hash: parts were uploaded, the complete is never sent.
        let wrong = named(FileType::Data, b"not this content");
        assert_eq!(
            kind(save(store.as_ref(), &r, &wrong, &big).await),
            ErrorKind::HashMismatch
        );
        assert_absent(store.as_ref(), &r, &wrong).await;
        // Too large, noticed after the switch to multipart.
        let limit = SINGLE_PUT_MAX as u64 + 1024 * 1024;
        assert_eq!(
            kind(store.save(&r, &file, body(&big), limit).await),
            ErrorKind::TooLarge
        );
        assert_absent(store.as_ref(), &r, &file).await;
        // An endless body stops at the limit.
        let endless = futures::stream::repeat_with(|| Ok(Bytes::from(vec![0u8; 64 * 1024])));
        let res = tokio::time::timeout(
            Duration::from_secs(120),
            store.save(&r, &file, Box::pin(endless), limit),
        )
        .await;
        assert_eq!(kind(res.expect("must stop")), ErrorKind::TooLarge);
        // A body failing after the switch.
        let mut chunks: Vec<std::io::Result<Bytes>> = big[..SINGLE_PUT_MAX + 2 * 1024 * 1024]
            .chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        chunks.push(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client went away",
        )));
        let err = store
            .save(&r, &file, Box::pin(futures::stream::iter(chunks)), u64::MAX)
            .await
            .expect_err("failing body");
        assert_eq!(err.kind, ErrorKind::Body, "{err}");
        assert_absent(store.as_ref(), &r, &file).await;
        assert_eq!(
            moto.open_uploads("multipart"),
            0,
            "every failed multipart upload was aborted"
        );

        // Racing multipart uploads of the same name.
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let (store, r, file, big) = (store.clone(), r.clone(), file.clone(), big.clone());
            tasks.push(tokio::spawn(async move {
                save(store.as_ref(), &r, &file, &big).await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(n) => {
                    assert_eq!(n, big.len() as u64);
                    ok += 1;
                }
                Err(e) => assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}"),
            }
        }
        assert!(ok >= 1, "one of the racing uploads succeeds");
        assert!(
            load_all(store.as_ref(), &r, &file, Range::default())
                .await
                .expect("load")
                == *big,
            "content"
        );
        assert_eq!(
            store.list(&r, FileType::Data).await.expect("list"),
            vec![Entry {
                name: name_of(&big),
                size: big.len() as u64
            }]
        );
        assert_eq!(
            moto.open_uploads("multipart"),
            0,
            "refused racing uploads were aborted"
        );
    }

    // ------------------------------------------------ a server ignoring If-None-Match

    /// A TCP proxy to `upstream` that renames every `If-None-Match` request
    /// header (to `X-Ignored-Hdr`, same length): moto behind it acts like an
    /// S3-compatible server that ignores conditional writes. Its threads
    /// live until the test process ends.
    fn header_renaming_proxy(upstream: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(mut client2), Ok(mut server2)) = (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                std::thread::spawn(move || rename_header(client, server));
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server2, &mut client2);
                    let _ = client2.shutdown(Shutdown::Write);
                });
            }
        });
        port
    }

    /// Copies `from` to `to`, replacing `if-none-match:` (any case). Bytes
    /// that could be the start of a match split across reads are held back
    /// until the next read, or flushed after 20 ms without one.
    fn rename_header(mut from: TcpStream, mut to: TcpStream) {
        const PATTERN: &[u8] = b"if-none-match:";
        const REPLACEMENT: &[u8] = b"x-ignored-hdr:";
        static RENAMED: AtomicUsize = AtomicUsize::new(0);
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let wait = if pending.is_empty() {
                None
            } else {
                Some(Duration::from_millis(20))
            };
            if from.set_read_timeout(wait).is_err() {
                return;
            }
            match from.read(&mut buf) {
                Ok(0) | Err(_) if pending.is_empty() => {
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(0) => {
                    let _ = to.write_all(&pending);
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    let mut i = 0;
                    while i + PATTERN.len() <= pending.len() {
                        if pending[i..i + PATTERN.len()].eq_ignore_ascii_case(PATTERN) {
                            pending[i..i + PATTERN.len()].copy_from_slice(REPLACEMENT);
                            RENAMED.fetch_add(1, Ordering::Relaxed);
                            i += PATTERN.len();
                        } else {
                            i += 1;
                        }
                    }
                    // Hold back the longest tail that starts the pattern.
                    let keep = (1..PATTERN.len().min(pending.len() + 1))
                        .rev()
                        .find(|&k| pending[pending.len() - k..].eq_ignore_ascii_case(&PATTERN[..k]))
                        .unwrap_or(0);
                    let send = pending.len() - keep;
                    if to.write_all(&pending[..send]).is_err() {
                        return;
                    }
                    pending.drain(..send);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    if to.write_all(&pending).is_err() {
                        return;
                    }
                    pending.clear();
                }
                Err(_) => {
                    let _ = to.write_all(&pending);
                    let _ = to.shutdown(Shutdown::Write);
                    return;
                }
            }
        }
    }

    /// On a server that ignores `If-None-Match` the probe says so, every
    /// save makes its HEAD, and the whole conformance suite still passes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn s3_conformance_when_conditional_writes_are_ignored() {
        let moto = Moto::start();
        let proxy = header_renaming_proxy(moto.port);

        // The proxy really makes conditional writes unconditional.
        assert_eq!(moto.http("PUT", "/check").expect("bucket"), 200);
        let plain = moto.plain_op("check");
        let via_proxy = plain_op_at(proxy, "check");
        plain
            .write_with("k", "one")
            .if_not_exists(true)
            .await
            .expect("first write");
        let direct = plain
            .write_with("k", "two")
            .if_not_exists(true)
            .await
            .expect_err("moto honours the header");
        assert_eq!(direct.kind(), opendal::ErrorKind::ConditionNotMatch);
        via_proxy
            .write_with("k", "three")
            .if_not_exists(true)
            .await
            .expect("through the proxy the header is ignored");
        assert_eq!(plain.read("k").await.expect("read").to_vec(), b"three");

        let store = moto.store_via(proxy, "ignored", "");
        let r = repo("carol");
        store.create_repo(&r).await.expect("create");
        moto.requests();
        // The probe: both PUTs accepted (the second overwrote the probe
        // object), DELETE; then config's HEAD + PUT.
        save(&store, &r, &FileRef::Config, b"cfg")
            .await
            .expect("config");
        assert_eq!(
            moto.requests(),
            reqs(&[("DELETE", 1), ("HEAD", 1), ("PUT", 3)]),
            "probe + config"
        );
        let data = random_bytes(1234);
        let file = named(FileType::Index, &data);
        save(&store, &r, &file, &data).await.expect("save");
        assert_eq!(
            moto.requests(),
            reqs(&[("HEAD", 1), ("PUT", 1)]),
            "HEAD + PUT per file"
        );
        assert_eq!(
            kind(save(&store, &r, &file, &data).await),
            ErrorKind::AlreadyExists
        );
        assert_eq!(moto.requests(), reqs(&[("HEAD", 1)]), "refused by the HEAD");
        assert_eq!(
            moto.all_keys("ignored").await.len(),
            3,
            "config, marker, index file; no probe object"
        );

        conformance(Arc::new(moto.store_via(
            proxy,
            "ignored-suite",
            "/some/prefix/",
        )))
        .await;
    }
}
