//! Local → S3 (a moto server the test starts itself; feature `s3`).
#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use bulwark_replicate::{mirror_repo, repair, verify_sample, MirrorOptions, Sample};
use bulwark_store::{
    s3::{S3Config, S3Store},
    FileRef, FileType, Store,
};
use common::*;

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
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {bin} (install it with `pip install 'moto[server]'`): {e}")
            });
        let mut moto = Moto { child, port };
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
        while moto.http("PUT", "/mirror").is_err() {
            assert!(Instant::now() < deadline, "moto_server does not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn http(&self, method: &str, path: &str) -> std::io::Result<u16> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port))?;
        conn.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(conn, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port)?;
        let mut response = Vec::new();
        conn.read_to_end(&mut response)?;
        let text = String::from_utf8_lossy(&response);
        text.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad response: {text}")))
    }

    fn store(&self) -> S3Store {
        S3Store::new(S3Config {
            endpoint: format!("http://127.0.0.1:{}", self.port),
            region: "us-east-1".into(),
            bucket: "mirror".into(),
            prefix: "offsite".into(),
            access_key_id: "test-key".into(),
            secret_access_key: "test-secret".into(),
        })
        .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_to_s3_mirror_verify_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let r = repo();
    let src = make_repo(&tmp.path().join("src"), &r).await;
    let moto = Moto::start();
    let dst = moto.store();

    let total = count_named(src.as_ref(), &r).await;
    let report = mirror_repo(src.as_ref(), &dst, &r, &MirrorOptions::default())
        .await
        .unwrap();
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.copied_files(), total);
    assert!(!report.target.contains("test-secret"));
    assert_eq!(contents(&dst, &r).await, contents(src.as_ref(), &r).await);

    let again = mirror_repo(src.as_ref(), &dst, &r, &MirrorOptions::default())
        .await
        .unwrap();
    assert_eq!(again.copied_files(), 0);
    assert_eq!(again.present_files(), total);

    let found = verify_sample(&dst, &r, Sample::Fraction(0.5), 1)
        .await
        .unwrap();
    assert!(found.is_clean(), "{found:?}");

    // Replace a snapshot at the target with garbage (S3 allows deletes),
    // then verify finds it and repair restores it.
    let snap = names(&dst, &r, FileType::Snapshots).await[0].clone();
    let file = FileRef::Named(FileType::Snapshots, snap.clone());
    dst.delete(&r, &file).await.unwrap();
    let garbage = b"not the snapshot".to_vec();
    // The store verifies names, so store the garbage through a raw object
    // write: put it under the right key with an unsigned request.
    let key = format!("/mirror/offsite/{r}/snapshots/{snap}");
    let status = {
        let mut conn = TcpStream::connect(("127.0.0.1", moto.port)).unwrap();
        write!(conn, "PUT {key} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", moto.port, garbage.len()).unwrap();
        conn.write_all(&garbage).unwrap();
        let mut resp = Vec::new();
        conn.read_to_end(&mut resp).unwrap();
        String::from_utf8_lossy(&resp)
            .split(' ')
            .nth(1)
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(status, "200");
    let found = verify_sample(&dst, &r, Sample::Count(1), 1).await.unwrap();
    assert_eq!(found.corrupt.len(), 1, "{found:?}");
    let fixed = repair(src.as_ref(), &dst, &r, &found, &MirrorOptions::default())
        .await
        .unwrap();
    assert!(fixed.is_complete(), "{fixed:?}");
    assert!(verify_sample(&dst, &r, Sample::All, 1)
        .await
        .unwrap()
        .is_clean());
    assert_eq!(contents(&dst, &r).await, contents(src.as_ref(), &r).await);
}
