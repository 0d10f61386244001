//! S3-compatible repositories (`s3:http://…`, cargo feature `s3`) against a
//! real S3 server (moto_server), read back by restic's own S3 backend.

#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn moto() -> (Moto, u16) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is needed (scripts/test.sh installs it with pip)");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto_server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // create the bucket (moto accepts unsigned requests)
    let st = Command::new("curl").args(["-sf", "-X", "PUT"]).arg(format!("http://127.0.0.1:{port}/backups")).status().unwrap();
    assert!(st.success(), "could not create the bucket");
    (Moto(child), port)
}

#[test]
fn backup_restore_prune_on_s3_and_restic_checks_it() {
    let env = Env::new();
    let (_moto, port) = moto();
    let url = format!("s3:http://127.0.0.1:{port}/backups/hosts/nas");
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), random_bytes(5, 1_500_000)).unwrap();
    std::fs::write(src.join("b"), b"small").unwrap();
    let s3 = |cmd: &mut Command| {
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_CA_BUNDLE");
    };
    let b = |args: &[&str]| -> Out {
        let mut c = env.cmd();
        s3(&mut c);
        c.env("BULWARK_REPO", &url).args(args).output().unwrap().into()
    };
    b(&["init"]).ok();
    b(&["backup", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("b"), b"changed").unwrap();
    b(&["backup", src.to_str().unwrap()]).ok();
    let target = env.path("out");
    b(&["restore", "latest", "--target", target.to_str().unwrap(), "--verify"]).ok();
    assert_same_tree(&src, &under(&target, &src));
    let f = b(&["--json", "forget", "--keep-last", "1", "--prune"]);
    assert_eq!(f.ok().json()["forget"]["removed"].as_array().unwrap().len(), 1);

    let mut r = Command::new("restic");
    s3(&mut r);
    let out: Out = r.args(["--no-cache", "-r", url.as_str(), "--password-file"]).arg(&env.pw).args(["check", "--read-data"]).output().unwrap().into();
    out.ok();
}
