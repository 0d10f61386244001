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
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
    // create the bucket (moto accepts unsigned requests); a moto that has
    // just opened its port may not answer yet on a busy machine: retry
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = Command::new("curl")
            .args(["-sf", "-X", "PUT"])
            .arg(format!("http://127.0.0.1:{port}/backups"))
            .status()
            .unwrap();
        if st.success() {
            break;
        }
        assert!(Instant::now() < deadline, "could not create the bucket");
        std::thread::sleep(Duration::from_millis(200));
    }
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
        c.env("BULWARK_REPO", &url)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    b(&["init"]).ok();
    b(&["backup", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("b"), b"changed").unwrap();
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
    let f = b(&["--json", "forget", "--keep-last", "1", "--prune"]);
    assert_eq!(
        f.ok().json()["forget"]["removed"].as_array().unwrap().len(),
        1
    );

    let mut r = Command::new("restic");
    s3(&mut r);
    let out: Out = r
        .args(["--no-cache", "-r", url.as_str(), "--password-file"])
        .arg(&env.pw)
        .args(["check", "--read-data"])
        .output()
        .unwrap()
        .into();
    out.ok();
}

/// `bulwark hub --data s3:…`: the hub fronts a bucket. restic backs up
/// through the hub; the bucket holds restic's S3 layout, so restic can also
/// read it directly (no hub needed in a disaster).
#[test]
fn hub_fronts_an_s3_bucket() {
    let env = Env::new();
    let (_moto, moto_port) = moto();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut hub = Command::new(BIN);
    hub.args([
        "hub",
        "--no-auth",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data",
    ])
    .arg(format!("s3:http://127.0.0.1:{moto_port}/backups/hub"))
    .env("AWS_ACCESS_KEY_ID", "test")
    .env("AWS_SECRET_ACCESS_KEY", "test")
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let hub = Moto(hub.spawn().unwrap()); // killed on drop, like moto
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the hub did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), random_bytes(6, 2_000_000)).unwrap();
    std::fs::write(src.join("b"), b"small").unwrap();
    let rest = format!("rest:http://127.0.0.1:{port}/alice/laptop");
    let restic = |repo: &str, args: &[&str]| -> Out {
        let mut r = Command::new("timeout");
        r.args(["120", "restic", "--no-cache", "-r", repo, "--password-file"])
            .arg(&env.pw)
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_CA_BUNDLE");
        r.output().unwrap().into()
    };
    restic(&rest, &["init"]).ok();
    restic(&rest, &["backup", src.to_str().unwrap()]).ok();
    restic(&rest, &["check", "--read-data"]).ok();
    let target = env.path("out");
    restic(
        &rest,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    )
    .ok();
    assert_same_tree(&src, &under(&target, &src));

    // the same repository straight from the bucket
    let direct = format!("s3:http://127.0.0.1:{moto_port}/backups/hub/alice/laptop");
    restic(&direct, &["check", "--read-data"]).ok();
    let snaps = restic(&direct, &["snapshots", "--json"]).ok().json();
    assert_eq!(snaps.as_array().unwrap().len(), 1, "{snaps}");
    drop(hub);
}

/// The issue's cloud copy: a hub started from the config file replicates by
/// itself to an S3 bucket soon after a backup uploads its snapshot through
/// the hub; restic restores straight from the bucket with its own `s3:`
/// backend; `bulwark report` counts the bucket as a current offsite copy.
#[test]
fn the_hub_copies_to_a_bucket_by_itself_and_restic_restores_from_it() {
    let env = Env::new();
    let (_moto, moto_port) = moto();
    let port = free_port();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), random_bytes(21, 700_000)).unwrap();
    std::fs::write(src.join("sub/b"), b"small file").unwrap();
    let data = env.path("hubdata");
    let cfg = env.path("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[hub]\ndata = \"{data}\"\nlisten = \"127.0.0.1:{port}\"\nno_auth = true\n\n\
             [repositories.nas]\nurl = \"rest:http://127.0.0.1:{port}/nas/main\"\npassword_file = \"{pw}\"\n\n\
             [jobs.nas]\nrepository = \"nas\"\npaths = [\"{src}\"]\nschedule = \"daily\"\nrpo = \"2d\"\n\n\
             [targets.cloud]\nurl = \"s3:http://127.0.0.1:{moto_port}/backups/offsite\"\nmedium = \"cloud\"\noffsite = true\nafter_upload = \"1s\"\n",
            data = data.display(),
            pw = env.pw.display(),
            src = src.display(),
        ),
    )
    .unwrap();
    let s3 = |cmd: &mut Command| {
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_CA_BUNDLE");
    };
    let bw = |args: &[&str]| -> Out {
        let mut c = env.cmd();
        s3(&mut c);
        c.env_remove("BULWARK_REPO")
            .arg("-c")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    std::fs::create_dir_all(&data).unwrap();
    let mut hub = env.cmd();
    s3(&mut hub);
    let mut hub = hub
        .env_remove("BULWARK_REPO")
        .arg("-c")
        .arg(&cfg)
        .arg("hub")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.path("hub.log")).unwrap())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the hub did not start: {}",
            std::fs::read_to_string(env.path("hub.log")).unwrap_or_default()
        );
        assert!(
            hub.try_wait().unwrap().is_none(),
            "the hub exited: {}",
            std::fs::read_to_string(env.path("hub.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let hub = Kill(hub);
    bw(&["--job", "nas", "init"]).ok();
    bw(&["--job", "nas", "run"]).ok();

    // the bucket receives the copy without anyone asking
    let copy = format!("s3:http://127.0.0.1:{moto_port}/backups/offsite/nas/main");
    let restic = |args: &[&str]| -> Out {
        let mut r = Command::new("restic");
        s3(&mut r);
        r.args(["--no-cache", "-r", copy.as_str(), "--password-file"])
            .arg(&env.pw)
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = restic(&["snapshots", "--json"]);
        if o.code == 0
            && serde_json::from_str::<serde_json::Value>(&o.stdout)
                .is_ok_and(|v| v.as_array().is_some_and(|a| a.len() == 1))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no copy in the bucket after 60 s: {}\nhub log:\n{}",
            o.stderr,
            std::fs::read_to_string(env.path("hub.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    restic(&["check", "--read-data"]).ok();
    let out = env.path("restored");
    restic(&["restore", "latest", "--target", out.to_str().unwrap()]).ok();
    assert_same_tree(&src, &under(&out, &src));

    // the report: hub + bucket are current, the bucket is offsite; the
    // hub's record of the copy is there too
    let rep = bw(&["--json", "report"]);
    let r = rep.json();
    let job = &r["jobs"][0];
    assert_eq!(
        (job["copies"].as_u64(), job["offsite"].as_u64()),
        (Some(2), Some(1)),
        "{r:#}"
    );
    assert_eq!(job["replication_lag_seconds"], 0, "{r:#}");
    let cloud = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "cloud")
        .unwrap();
    assert!(cloud["last_success"].is_string(), "{r:#}");
    assert_eq!(
        rep.code, 3,
        "2 copies is still a 3-2-1 violation: {}",
        rep.stdout
    );
    drop(hub);
}
