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
