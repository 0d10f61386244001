//! `bulwark hub` as a process: Bulwark's own CLI and restic through it,
//! `hub passwd`, `hub scrub`, SIGTERM, and kill -9 during a backup.

#![allow(clippy::unwrap_used)]

mod common;

use std::{
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::*;

/// A running `bulwark hub`; killed when dropped.
struct Hub {
    child: Child,
    port: u16,
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_hub(data: &Path, port: u16, extra: &[&str]) -> Hub {
    let mut child = Command::new(BIN)
        .args(["hub", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .args(["--scrub-interval", "0"])
        .args(extra)
        .env("BULWARK_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("bulwark hub exited early: {status}");
        }
        assert!(Instant::now() < deadline, "bulwark hub did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Hub { child, port }
}

/// `bulwark hub passwd FILE USER` with the password on stdin.
fn passwd(file: &Path, user: &str, password: &str) {
    let mut child = Command::new(BIN)
        .args(["hub", "passwd"])
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out: Out = child.wait_with_output().unwrap().into();
    out.ok();
}

fn data_dir(env: &Env) -> PathBuf {
    let data = env.path("hubdata");
    std::fs::create_dir_all(&data).unwrap();
    passwd(&data.join(".htpasswd"), "alice", "pw-alice");
    passwd(&data.join(".htpasswd"), "bob", "pw-bob");
    data
}

fn restic_rest(url: &str, pw: &Path, secs: u32, args: &[&str]) -> Out {
    let mut c = Command::new("timeout");
    c.arg(secs.to_string())
        .arg("restic")
        .args(["--no-cache", "-r", url, "--password-file"])
        .arg(pw)
        .args(args)
        .env("HOME", pw.parent().unwrap());
    run(&mut c, TIMEOUT)
}

#[test]
fn bulwark_cli_and_restic_through_the_hub() {
    let env = Env::new();
    let data = data_dir(&env);
    let port = free_port();
    let mut hub = start_hub(&data, port, &["--private-repos"]);
    let url = format!(
        "rest:http://alice:pw-alice@127.0.0.1:{}/alice/repo",
        hub.port
    );
    let src = env.path("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("a"), random_bytes(7, 3_000_000)).unwrap();
    std::fs::write(src.join("d/b"), b"small file").unwrap();

    let b = |args: &[&str]| -> Out { run(env.cmd().env("BULWARK_REPO", &url).args(args), TIMEOUT) };
    b(&["init"]).ok();
    b(&["backup", src.to_str().unwrap()]).ok();
    std::fs::write(src.join("d/c"), b"another").unwrap();
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
    restic_rest(&url, &env.pw, 120, &["check", "--read-data"]).ok();

    // bob may not touch alice's repositories (private repos)
    let bob = format!("rest:http://bob:pw-bob@127.0.0.1:{}/alice/repo", hub.port);
    let out = run(
        env.cmd().env("BULWARK_REPO", &bob).args(["snapshots"]),
        TIMEOUT,
    );
    assert_ne!(out.code, 0, "bob read alice's repository: {}", out.stdout);

    // the data directory is scrubbed clean; a flipped byte is found (exit 3)
    let scrub = run(
        Command::new(BIN)
            .args(["--json", "hub", "scrub", "--data"])
            .arg(&data),
        TIMEOUT,
    );
    scrub.ok();
    assert_eq!(scrub.json()["corrupt"], 0);
    let pack = std::fs::read_dir(data.join("alice/repo/data"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    let scrub = run(
        Command::new(BIN)
            .args(["--json", "hub", "scrub", "--data"])
            .arg(&data),
        TIMEOUT,
    );
    assert_eq!(scrub.code, 3, "{}", scrub.stderr);
    assert_eq!(scrub.json()["corrupt"], 1);

    // SIGTERM: graceful shutdown, exit 0
    let st = Command::new("kill")
        .args(["-TERM", &hub.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = hub.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "hub did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn kill_9_during_a_backup_leaves_a_valid_repository() {
    let env = Env::new();
    let data = data_dir(&env);
    let port = free_port();
    let hub = start_hub(&data, port, &["--append-only"]);
    let url = format!("rest:http://alice:pw-alice@127.0.0.1:{port}/alice/big");
    restic_rest(&url, &env.pw, 60, &["init"]).ok();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..6 {
        urandom_file(&src.join(format!("f{i}")), 8 << 20);
    }
    let mut backup = Command::new("timeout")
        .args(["120", "restic", "--no-cache", "-r", &url, "--password-file"])
        .arg(&env.pw)
        .arg("backup")
        .arg(&src)
        .env("HOME", env.path(""))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // wait until some packs have landed, then kill -9 the hub mid-upload
    let packs = data.join("alice/big/data");
    let count = || -> usize {
        std::fs::read_dir(&packs)
            .map(|d| {
                d.flatten()
                    .map(|s| std::fs::read_dir(s.path()).map(|f| f.count()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count() < 2 {
        assert!(Instant::now() < deadline, "no packs uploaded");
        assert!(
            backup.try_wait().unwrap().is_none(),
            "backup finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let st = Command::new("kill")
        .args(["-KILL", &hub.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    drop(hub);
    // restic keeps retrying; stop it too (the host died, say)
    std::thread::sleep(Duration::from_millis(200));
    let _ = backup.kill();
    let _ = backup.wait();

    // restart on the same data dir: the repository is valid, the next backup works
    let _hub = start_hub(&data, port, &["--append-only"]);
    restic_rest(&url, &env.pw, 60, &["unlock"]).ok();
    restic_rest(&url, &env.pw, 300, &["check", "--read-data"]).ok();
    restic_rest(&url, &env.pw, 300, &["backup", src.to_str().unwrap()]).ok();
    restic_rest(&url, &env.pw, 300, &["check", "--read-data"]).ok();
    // no temporary file is visible under a final name
    let mut stack = vec![data.join("alice/big")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                assert!(
                    name == "config" || name.starts_with(".tmp-") || name.len() == 64,
                    "unexpected file {}",
                    e.path().display()
                );
            }
        }
    }
}

/// Plain HTTP on a non-loopback address: the hub warns at start with a
/// sentence saying why and what to do; on loopback it does not.
#[test]
fn plain_http_on_a_non_loopback_address_warns_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let start = |listen: &str, log: &Path| {
        let port = listen.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let child = Command::new(BIN)
            .args([
                "hub",
                "--no-auth",
                "--scrub-interval",
                "0",
                "--listen",
                listen,
                "--data",
            ])
            .arg(&data)
            .env("BULWARK_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut hub = Hub { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                hub.child.try_wait().unwrap().is_none(),
                "the hub exited early"
            );
            assert!(Instant::now() < deadline, "bulwark hub did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // the warning comes before the "hub listening" line
        while !std::fs::read_to_string(log)
            .unwrap()
            .contains("hub listening on")
        {
            assert!(Instant::now() < deadline, "no start line");
            std::thread::sleep(Duration::from_millis(20));
        }
        hub.child.kill().unwrap();
        hub.child.wait().unwrap();
        std::fs::read_to_string(log).unwrap()
    };
    let wide = start(
        &format!("0.0.0.0:{}", free_port()),
        &dir.path().join("wide.log"),
    );
    let line = wide
        .lines()
        .find(|l| l.contains("plain HTTP"))
        .unwrap_or_else(|| panic!("no warning in:\n{wide}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("not a loopback address"), "{line}");
    assert!(line.contains("--tls-cert"), "says how to fix it: {line}");
    let local = start(
        &format!("127.0.0.1:{}", free_port()),
        &dir.path().join("local.log"),
    );
    assert!(!local.contains("plain HTTP"), "{local}");
}

/// The hub grants leases only on the repositories a host's own jobs use,
/// by the name agents ask with: the agent's `lease_key` and the config's
/// `RepoUrl::lease_key` (which the hub uses) must agree.
#[test]
fn agent_and_hub_name_leases_alike() {
    for url in [
        "/srv/repo",
        "rest:https://u:pw@Hub.Example:8000/nas/",
        "rest:http://hub:8000/a/b",
        "s3:https://s3.example.com/bucket/prefix/",
        "s3:http://127.0.0.1:9000/b",
    ] {
        let u = bulwark_config::RepoUrl::parse(url, Path::new("/")).unwrap();
        assert_eq!(
            bulwark_agent::lease_key(&u, "nas"),
            u.lease_key("nas"),
            "{url}"
        );
    }
}

/// Every file of a repository on the hub's disk (except locks) with its content.
fn repo_files(repo: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                if e.file_name() != "locks" {
                    stack.push(e.path());
                }
            } else {
                out.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// A job with a command source (a streamed dump) and a local path, backed up
/// to an append-only user of the hub: succeeds, leaves exactly one snapshot, keeps
/// every repository file it found, and restic restores the dump at its full
/// size (the size is recorded when the tree is written: vendor/README.md).
#[test]
fn append_only_hub_backup_with_command_source_leaves_one_snapshot() {
    let env = Env::new();
    let data = data_dir(&env);
    let port = free_port();
    let _hub = start_hub(&data, port, &["--append-only"]);
    let url = format!("rest:http://alice:pw-alice@127.0.0.1:{port}/alice/db");
    let b = |args: &[&str]| -> Out { run(env.cmd().env("BULWARK_REPO", &url).args(args), TIMEOUT) };
    b(&["init"]).ok();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("notes.txt"), b"local file").unwrap();
    let dump = env.path("dump-data");
    std::fs::write(&dump, random_bytes(13, 3_000_000)).unwrap();
    // a job with a local path and a command source, as an agent runs it
    let cfg = env.path("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[repositories.hub]\nurl = \"{url}\"\npassword_file = \"{}\"\n\n\
             [jobs.app]\nrepository = \"hub\"\npaths = [\"{}\"]\n\
             [[jobs.app.commands]]\ncommand = \"cat '{}'\"\nfilename = \"db/dump.sql\"\n",
            env.pw.display(),
            src.display(),
            dump.display()
        ),
    )
    .unwrap();

    for round in 0..2 {
        let before = repo_files(&data.join("alice/db"));
        let out = env.bulwark_cfg(&cfg, &["--job", "app", "--json", "backup"]);
        out.ok();
        assert_eq!(out.json()["status"], "success", "{}", out.stdout);
        assert!(
            !out.stderr.contains("403") && !out.stderr.contains("remove"),
            "{}",
            out.stderr
        );
        let after = repo_files(&data.join("alice/db"));
        for (path, content) in &before {
            assert!(
                after.get(path) == Some(content),
                "round {round}: the backup removed or rewrote {}",
                path.display()
            );
        }
        let snaps = after
            .keys()
            .filter(|p| p.parent().unwrap().ends_with("snapshots"))
            .count();
        assert_eq!(
            snaps,
            round + 1,
            "round {round}: one new snapshot per backup"
        );
        let id = out.json()["backup"]["snapshot"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            after.keys().any(|p| p.ends_with(&id)),
            "round {round}: the reported snapshot {id} is the one stored"
        );
    }

    let ls = b(&["--json", "ls", "latest", "/db/dump.sql"]).ok().json();
    assert_eq!(ls["entries"][0]["size"], 3_000_000, "{ls}");
    let rt = env.path("rt");
    restic_rest(
        &url,
        &env.pw,
        120,
        &["restore", "latest", "--target", rt.to_str().unwrap()],
    )
    .ok();
    let got = std::fs::read(rt.join("db/dump.sql")).unwrap_or_default();
    assert!(
        got == random_bytes(13, 3_000_000),
        "restic restore gives {} bytes instead of 3000000",
        got.len()
    );
    assert_eq!(
        std::fs::read(under(&rt, &src).join("notes.txt")).unwrap(),
        b"local file"
    );
    restic_rest(&url, &env.pw, 120, &["check", "--read-data"]).ok();
}
