//! restic 0.14 end to end through an in-process hub: append-only
//! credentials can back up but not forget; modify credentials can; TLS.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use bulwark_hub::{Access, AclEntry, TlsFiles};
use common::{config, Server};

const RESTIC: &str = "/usr/bin/restic";

/// Runs restic (under `timeout`, since it retries refused requests for a
/// long time) against `repo` with `extra` arguments.
async fn restic(repo: String, home: PathBuf, secs: u32, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg(secs.to_string())
            .arg(RESTIC)
            .args(["-r", &repo, "--no-cache", "--json"])
            .args(&args)
            .env("RESTIC_PASSWORD", "repo-password")
            .env("HOME", &home)
            .env_remove("RESTIC_REPOSITORY")
            .output()
            .expect("run restic")
    })
    .await
    .unwrap()
}

fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "restic {what} failed ({:?}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// Deterministic test data: a few MB in a handful of files.
fn make_source(dir: &Path) {
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    let mut x: u64 = 0x1234_5678;
    for (i, size) in [3_000_000usize, 1_000_000, 70_000, 10, 0]
        .into_iter()
        .enumerate()
    {
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let p = if i % 2 == 0 {
            dir.join(format!("f{i}"))
        } else {
            dir.join(format!("sub/deeper/g{i}"))
        };
        std::fs::write(p, data).unwrap();
    }
}

fn snapshot_count(o: &Output) -> usize {
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array().unwrap().len()
}

fn same_tree(a: &Path, b: &Path) {
    let ta = common::tree(a);
    let tb = common::tree(b);
    assert_eq!(ta, tb);
    for (rel, _) in ta.iter().filter(|(r, _)| !r.ends_with('/')) {
        assert_eq!(
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)).unwrap(),
            "{rel}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_through_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    common::htpasswd(
        &c.htpasswd_path(),
        &[("alice", "pw-alice"), ("appender", "pw-app")],
    );
    c.acl = vec![AclEntry {
        user: "appender".into(),
        repo: "alice/laptop".into(),
        access: Access::Append,
    }];
    let server = Server::start(c).await;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let append = format!("rest:http://appender:pw-app@{}/alice/laptop/", server.addr);
    let modify = format!("rest:http://alice:pw-alice@{}/alice/laptop/", server.addr);

    ok(
        &restic(append.clone(), home.clone(), 60, args(&["init"])).await,
        "init",
    );
    let src_s = src.to_string_lossy().into_owned();
    ok(
        &restic(append.clone(), home.clone(), 120, args(&["backup", &src_s])).await,
        "backup",
    );
    std::fs::write(src.join("f4"), "changed").unwrap();
    ok(
        &restic(append.clone(), home.clone(), 120, args(&["backup", &src_s])).await,
        "second backup",
    );
    ok(
        &restic(
            append.clone(),
            home.clone(),
            120,
            args(&["check", "--read-data"]),
        )
        .await,
        "check",
    );

    let target = dir.path().join("restore");
    ok(
        &restic(
            append.clone(),
            home.clone(),
            120,
            args(&["restore", "latest", "--target", &target.to_string_lossy()]),
        )
        .await,
        "restore",
    );
    same_tree(&src, &target.join(src.strip_prefix("/").unwrap()));

    // append-only credentials cannot remove snapshots
    let o = restic(
        append.clone(),
        home.clone(),
        20,
        args(&["forget", "--keep-last", "1"]),
    )
    .await;
    assert!(
        !o.status.success(),
        "forget with append credentials succeeded"
    );
    ok(
        &restic(modify.clone(), home.clone(), 60, args(&["unlock"])).await,
        "unlock",
    );
    let snaps = restic(modify.clone(), home.clone(), 60, args(&["snapshots"])).await;
    ok(&snaps, "snapshots");
    assert_eq!(snapshot_count(&snaps), 2);

    // modify credentials can
    ok(
        &restic(
            modify.clone(),
            home.clone(),
            60,
            args(&["forget", "--keep-last", "1", "--prune"]),
        )
        .await,
        "forget --prune",
    );
    let snaps = restic(modify.clone(), home.clone(), 60, args(&["snapshots"])).await;
    ok(&snaps, "snapshots");
    assert_eq!(snapshot_count(&snaps), 1);
    ok(
        &restic(modify.clone(), home.clone(), 120, args(&["prune"])).await,
        "prune",
    );
    ok(
        &restic(modify, home.clone(), 120, args(&["check", "--read-data"])).await,
        "check after prune",
    );

    // the data dir is a plain restic repository (rest-server layout)
    let local = server
        .data
        .join("alice/laptop")
        .to_string_lossy()
        .into_owned();
    ok(
        &restic(local, home, 60, args(&["snapshots"])).await,
        "snapshots of the data dir",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restic_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut c = config(dir.path());
    c.tls = Some(TlsFiles {
        cert: cert.clone(),
        key,
    });
    let server = Server::start(c).await;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let src = dir.path().join("src");
    make_source(&src);
    let repo = format!("rest:https://alice:pw-alice@{}/alice/", server.addr);
    let cacert = cert.to_string_lossy().into_owned();
    ok(
        &restic(
            repo.clone(),
            home.clone(),
            60,
            args(&["--cacert", &cacert, "init"]),
        )
        .await,
        "init over TLS",
    );
    ok(
        &restic(
            repo.clone(),
            home.clone(),
            120,
            args(&["--cacert", &cacert, "backup", &src.to_string_lossy()]),
        )
        .await,
        "backup over TLS",
    );
    ok(
        &restic(
            repo.clone(),
            home.clone(),
            120,
            args(&["--cacert", &cacert, "check", "--read-data"]),
        )
        .await,
        "check over TLS",
    );
    // without trusting the certificate restic refuses
    let o = restic(repo, home, 20, args(&["snapshots"])).await;
    assert!(!o.status.success());
    // plain HTTP to the TLS port gets nothing useful
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = s
            .write_all(b"GET /alice/config HTTP/1.1\r\nHost: h\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    })
    .await
    .unwrap();
    assert!(!r.starts_with(b"HTTP/1.1 200"));
    server.stop().await;
}
