//! `bulwark replicate`: the hub's repositories copied to a local target
//! (a USB disk), verified, repaired, never spreading a wipe — and restic
//! restores straight from the copy.

#![allow(clippy::unwrap_used)]

mod common;

use std::{path::Path, process::Command};

use common::*;

fn b(cfg: &Path, args: &[&str]) -> Out {
    let mut c = Command::new(BIN);
    c.arg("-c")
        .arg(cfg)
        .args(args)
        .env_remove("BULWARK_CONFIG")
        .env("XDG_CACHE_HOME", cfg.parent().unwrap().join("cache"));
    run(&mut c, TIMEOUT)
}

#[test]
fn a_usb_copy_that_restic_restores_and_that_survives_a_wiped_hub() {
    let dir = tempfile::tempdir().unwrap();
    let d = |r: &str| dir.path().join(r);
    std::fs::create_dir_all(d("src/sub")).unwrap();
    for i in 0..10 {
        std::fs::write(d(&format!("src/sub/f{i}")), random_bytes(i, 200_000)).unwrap();
    }
    std::fs::write(d("pw"), "repository password\n").unwrap();
    let cfg = d("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[hub]\ndata = \"{data}\"\n\n[repositories.nas]\nurl = \"{data}/nas/main\"\npassword_file = \"{pw}\"\n\n[jobs.nas]\nrepository = \"nas\"\npaths = [\"{src}\"]\nschedule = \"daily\"\nrpo = \"1h\"\n\n[targets.usb]\nurl = \"{usb}\"\nmedium = \"removable\"\noffsite = false\nverify_sample = \"100%\"\n",
            data = d("data").display(),
            pw = d("pw").display(),
            src = d("src").display(),
            usb = d("usb").display()
        ),
    )
    .unwrap();
    b(&cfg, &["--job", "nas", "init"]).ok();
    b(&cfg, &["--job", "nas", "run"]).ok();

    // the USB disk is not mounted (its directory is missing): nothing is
    // written anywhere, not even in a dry run, and the error says why
    for args in [&["replicate", "--dry-run"][..], &["replicate"][..]] {
        let out = b(&cfg, args);
        assert_eq!(out.code, 1, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stdout.contains("is the disk mounted?")
                || out.stderr.contains("is the disk mounted?"),
            "{}{}",
            out.stdout,
            out.stderr
        );
        assert!(!d("usb").exists(), "{args:?} created the target directory");
    }
    std::fs::create_dir_all(d("usb")).unwrap();

    // first copy: everything; the copy is a repository restic reads
    let out = b(&cfg, &["--json", "replicate"]);
    out.ok();
    let r = out.json();
    assert_eq!(r[0]["repo"], "nas/main", "{r:#}");
    let copied: u64 = r[0]["mirror"]["types"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["copied"].as_u64().unwrap())
        .sum();
    assert!(
        copied >= 4,
        "config aside, keys, data, index and snapshots: {r:#}"
    );
    let copy = d("usb/nas/main");
    restic_at(&copy, &d("pw"), &["check", "--read-data"]).ok();
    restic_at(
        &copy,
        &d("pw"),
        &[
            "restore",
            "latest",
            "--target",
            d("restored").to_str().unwrap(),
        ],
    )
    .ok();
    assert_same_tree(&d("src"), &under(&d("restored"), &d("src")));

    // the 3-2-1 report: hub + USB disk are 2 copies on 2 media, none offsite
    let rep = b(&cfg, &["--json", "report"]);
    assert_eq!(
        rep.code, 3,
        "violations exit 3: {}{}",
        rep.stdout, rep.stderr
    );
    let line = &rep.json()["jobs"][0];
    assert_eq!(
        (line["job"].as_str(), line["repo"].as_str()),
        (Some("nas"), Some("nas/main")),
        "{line:#}"
    );
    assert_eq!(
        (
            line["copies"].as_u64(),
            line["media"].as_u64(),
            line["offsite"].as_u64()
        ),
        (Some(2), Some(2), Some(0)),
        "{line:#}"
    );
    assert_eq!(line["interval_seconds"], 86400);
    let v = line["violations"].to_string();
    assert!(
        v.contains("needs 3")
            && v.contains("no current offsite copy")
            && v.contains("exceeds the job's rpo"),
        "{v}"
    );
    // a new snapshot the USB disk doesn't have yet: it falls behind
    std::fs::write(d("src/new"), "new").unwrap();
    b(&cfg, &["--job", "nas", "run"]).ok();
    let rep = b(&cfg, &["report"]);
    assert!(
        rep.stdout.contains("usb (removable) BEHIND") && rep.stdout.contains("VIOLATION"),
        "{}",
        rep.stdout
    );
    let line = &b(&cfg, &["--json", "report"]).json()["jobs"][0];
    assert_eq!(line["copies"], 1, "{line:#}");
    assert_eq!(line["places"][1]["missing_snapshots"], 1, "{line:#}");
    b(&cfg, &["replicate"]).ok();

    // nothing new: nothing copied
    let again = b(&cfg, &["--json", "replicate"]).json();
    let copied: u64 = again[0]["mirror"]["types"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["copied"].as_u64().unwrap())
        .sum();
    assert_eq!(copied, 0, "{again:#}");

    // a pack rots on the USB disk: --verify finds it and copies it again
    let pack = std::fs::read_dir(copy.join("data"))
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&pack, &bytes).unwrap();
    let out = b(&cfg, &["replicate", "--verify"]);
    out.ok();
    assert!(
        out.stdout.contains("1 corrupt") && out.stdout.contains("1 re-copied"),
        "{}",
        out.stdout
    );
    restic_at(&copy, &d("pw"), &["check", "--read-data"]).ok();

    // the hub is wiped (ransomware, a bad rm): the copy keeps everything
    for sub in ["data", "index", "snapshots"] {
        std::fs::remove_dir_all(d(&format!("data/nas/main/{sub}"))).unwrap();
        std::fs::create_dir_all(d(&format!("data/nas/main/{sub}"))).unwrap();
    }
    b(&cfg, &["replicate"]);
    restic_at(&copy, &d("pw"), &["check", "--read-data"]).ok();
    let snaps = restic_at(&copy, &d("pw"), &["snapshots", "--json"]);
    snaps.ok();
    assert_eq!(snaps.json().as_array().unwrap().len(), 2);

    // unknown target: a clear error
    let bad = b(&cfg, &["replicate", "--target", "cloud"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("usb"), "{}", bad.stderr);
}

/// A friend's Bulwark hub as the offsite peer: the copy lands under the
/// friend's user through the REST protocol, and restic restores from it.
/// (A Bulwark hub, like rest-server with private repos, serves `user/repo`:
/// a one-segment repository `nas` becomes `alice/nas` there.)
#[test]
fn a_peer_hub_copy_that_restic_restores() {
    let dir = tempfile::tempdir().unwrap();
    let d = |r: &str| dir.path().join(r);
    std::fs::create_dir_all(d("src")).unwrap();
    for i in 0..5 {
        std::fs::write(d(&format!("src/f{i}")), random_bytes(100 + i, 150_000)).unwrap();
    }
    std::fs::write(d("pw"), "repository password\n").unwrap();
    std::fs::write(d("friend.pass"), "friend-http-secret\n").unwrap();
    // the friend's hub: user alice, who may only use /alice/...
    std::fs::create_dir_all(d("friend")).unwrap();
    let mut c = Command::new(BIN);
    c.args(["hub", "passwd"])
        .arg(d("friend/.htpasswd"))
        .arg("alice")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"friend-http-secret\n").unwrap();
    assert!(child.wait().unwrap().success());
    let port = free_port();
    let mut peer = Command::new(BIN)
        .args(["hub", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(d("friend"))
        .args(["--append-only", "--scrub-interval", "0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the peer hub did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let cfg = d("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[hub]\ndata = \"{data}\"\n\n[repositories.nas]\nurl = \"{data}/nas\"\npassword_file = \"{pw}\"\n\n[jobs.nas]\nrepository = \"nas\"\npaths = [\"{src}\"]\n\n[targets.friend]\nurl = \"rest:http://127.0.0.1:{port}/alice\"\nmedium = \"peer\"\noffsite = true\nusername = \"alice\"\npassword_file = \"{fp}\"\n",
            data = d("data").display(),
            pw = d("pw").display(),
            src = d("src").display(),
            fp = d("friend.pass").display(),
        ),
    )
    .unwrap();
    b(&cfg, &["--job", "nas", "init"]).ok();
    b(&cfg, &["--job", "nas", "run"]).ok();
    let out = b(&cfg, &["replicate", "--verify"]);
    out.ok();
    assert!(
        out.stdout.contains("nas → friend (peer, offsite)"),
        "{}",
        out.stdout
    );
    // restic restores straight from the friend's hub over its REST protocol
    // (the friend's append-only account allows it: restore only adds a lock)
    let mut c = Command::new("restic");
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env(
            "RESTIC_REPOSITORY",
            format!("rest:http://alice:friend-http-secret@127.0.0.1:{port}/alice/nas"),
        )
        .env("RESTIC_PASSWORD_FILE", d("pw"))
        .args(["--no-cache", "restore", "latest", "--target"])
        .arg(d("restored-rest"));
    let restored = run(&mut c, TIMEOUT);
    let _ = peer.kill();
    let _ = peer.wait();
    restored.ok();
    assert_same_tree(&d("src"), &under(&d("restored-rest"), &d("src")));
    // the copy is on the friend's disk under alice/, a plain repository
    let copy = d("friend/alice/nas");
    restic_at(
        &copy,
        &d("pw"),
        &[
            "restore",
            "latest",
            "--target",
            d("restored").to_str().unwrap(),
        ],
    )
    .ok();
    assert_same_tree(&d("src"), &under(&d("restored"), &d("src")));
}

/// `bulwark -c FILE hub` replicates by itself, and a repository that
/// vanishes from the hub raises `replication.shrink`, which `bulwark alerts`
/// lists and `bulwark alerts resolve` acknowledges; the copy stays whole.
#[test]
fn a_vanished_repository_is_an_alert_the_cli_lists_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let d = |r: &str| dir.path().join(r);
    std::fs::create_dir_all(d("src")).unwrap();
    std::fs::create_dir_all(d("usb")).unwrap();
    std::fs::create_dir_all(d("data")).unwrap();
    std::fs::write(d("src/a"), random_bytes(77, 200_000)).unwrap();
    std::fs::write(d("pw"), "repository password\n").unwrap();
    let port = free_port();
    let cfg = d("bulwark.toml");
    std::fs::write(
        &cfg,
        format!(
            "[hub]\ndata = \"{data}\"\nlisten = \"127.0.0.1:{port}\"\nno_auth = true\n\n[repositories.nas]\nurl = \"{data}/nas/main\"\npassword_file = \"{pw}\"\n\n[jobs.nas]\nrepository = \"nas\"\npaths = [\"{src}\"]\n\n[targets.usb]\nurl = \"{usb}\"\nmedium = \"removable\"\noffsite = true\n",
            data = d("data").display(),
            pw = d("pw").display(),
            src = d("src").display(),
            usb = d("usb").display(),
        ),
    )
    .unwrap();
    b(&cfg, &["--job", "nas", "init"]).ok();
    b(&cfg, &["--job", "nas", "run"]).ok();
    b(
        &cfg,
        &[
            "hub",
            "token",
            "create",
            "--admin",
            "--output",
            d("admin.token").to_str().unwrap(),
        ],
    )
    .ok();
    let start_hub = || {
        let mut c = Command::new(BIN);
        c.arg("-c")
            .arg(&cfg)
            .arg("hub")
            .env_remove("BULWARK_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = c.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the hub did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child
    };
    let wait_until = |what: &str, secs: u64, f: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while !f() {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    };
    let hub_url = format!("http://127.0.0.1:{port}");
    let alerts = |args: &[&str]| {
        let token = d("admin.token");
        let mut all = vec![
            "alerts",
            "--hub",
            hub_url.as_str(),
            "--token-file",
            token.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        b(&cfg, &all)
    };

    // the hub's catch-up pass right after it starts copies the repository
    let mut hub = start_hub();
    let snaps = |p: &str| std::fs::read_dir(d(p)).map(|r| r.count()).unwrap_or(0);
    wait_until("the catch-up copy", 60, &|| {
        snaps("usb/nas/main/snapshots") == 1
    });
    assert_eq!(alerts(&[]).ok().stdout.trim(), "no open alerts");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(hub.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert!(
        hub.wait().unwrap().success(),
        "SIGTERM stops the hub cleanly"
    );

    // the repository vanishes while the hub is down; the next start notices
    std::fs::remove_dir_all(d("data/nas")).unwrap();
    let mut hub = start_hub();
    wait_until("replication.shrink", 60, &|| {
        alerts(&["--json"])
            .json()
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let list = alerts(&["--json"]).ok().json();
    let alert = &list[0];
    assert_eq!(
        (
            alert["kind"].as_str(),
            alert["subject"].as_str(),
            alert["severity"].as_str()
        ),
        (
            Some("replication.shrink"),
            Some("nas/main"),
            Some("critical")
        ),
        "{list:#}"
    );
    assert!(
        alert["message"].as_str().unwrap().contains("vanished"),
        "{alert:#}"
    );
    let table = alerts(&[]).ok().stdout.clone();
    assert!(
        table.contains("CRITICAL")
            && table.contains("replication.shrink")
            && table.contains("nas/main"),
        "{table}"
    );
    // the copy is untouched, and restic still reads it
    assert_eq!(snaps("usb/nas/main/snapshots"), 1);
    restic_at(&d("usb/nas/main"), &d("pw"), &["check", "--read-data"]).ok();
    // `bulwark report` shows the open alert and exits 3
    let rep = b(&cfg, &["report"]);
    assert_eq!(rep.code, 3, "{}{}", rep.stdout, rep.stderr);
    assert!(
        rep.stdout.contains("OPEN ALERTS") && rep.stdout.contains("replication.shrink"),
        "{}",
        rep.stdout
    );

    let id = alert["id"].as_i64().unwrap().to_string();
    assert!(alerts(&["resolve", &id]).ok().stdout.contains("resolved"));
    assert_eq!(alerts(&[]).ok().stdout.trim(), "no open alerts");
    let history = alerts(&["--all"]).ok().stdout.clone();
    assert!(
        history.contains("replication.shrink") && history.contains("resolved"),
        "{history}"
    );
    let missing = alerts(&["resolve", "999999"]);
    assert_ne!(
        missing.code, 0,
        "an unknown id is an error: {}",
        missing.stdout
    );
    let _ = hub.kill();
    let _ = hub.wait();
}
