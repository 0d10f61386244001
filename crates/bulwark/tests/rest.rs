//! REST repositories (`rest:http://…`) against a real restic REST server
//! (`rclone serve restic`), and a clear error for an unreachable one.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(dir: &std::path::Path) -> (Server, String) {
    let port = free_port();
    let child = Command::new("rclone")
        .args(["serve", "restic", "--addr", &format!("127.0.0.1:{port}")])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rclone is needed for this test (scripts/test.sh installs it)");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rclone serve restic did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (Server(child), format!("rest:http://127.0.0.1:{port}/repo"))
}

#[test]
fn backup_restore_and_locks_over_rest() {
    let env = Env::new();
    let served = env.path("served");
    std::fs::create_dir_all(&served).unwrap();
    let (_server, url) = serve(&served);
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), random_bytes(1, 2_000_000)).unwrap();
    std::fs::write(src.join("b"), b"small").unwrap();

    let b = |args: &[&str]| -> Out {
        env.cmd()
            .env("BULWARK_REPO", &url)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    b(&["init"]).ok();
    b(&["backup", src.to_str().unwrap()]).ok();
    let target = env.path("out");
    b(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ])
    .ok();
    assert_same_tree(&src, &under(&target, &src));
    b(&["forget", "--keep-last", "1", "--prune"]).ok();
    assert_eq!(
        std::fs::read_dir(served.join("repo/locks"))
            .map(|d| d.count())
            .unwrap_or(0),
        0,
        "locks are released over REST"
    );

    let restic: Out = Command::new("restic")
        .args(["--no-cache", "-r", url.as_str(), "--password-file"])
        .arg(&env.pw)
        .args(["check", "--read-data"])
        .output()
        .unwrap()
        .into();
    restic.ok();
}

#[test]
fn unreachable_server_is_one_sentence_and_quick() {
    let env = Env::new();
    let port = free_port(); // nothing listens here
    let start = Instant::now();
    let out: Out = env
        .cmd()
        .env("BULWARK_REPO", format!("rest:http://127.0.0.1:{port}/x"))
        .arg("snapshots")
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("cannot reach rest:http://127.0.0.1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("Connection refused"), "{}", out.stderr);
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "no minute of retries for a refused connection"
    );
}
