//! restic's REST protocol against an in-process hub: request sequences in
//! the style of rest-server's handler tests, v1/v2 listings, ranges, quotas,
//! metrics, htpasswd reload.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use bulwark_hub::{Access, AclEntry};
use common::{config, req, sha, Server, V2};

const ALICE: Option<(&str, &str)> = Some(("alice", "pw-alice"));
const BOB: Option<(&str, &str)> = Some(("bob", "pw-bob"));

struct Step {
    method: &'static str,
    path: String,
    body: Vec<u8>,
    auth: Option<(&'static str, &'static str)>,
    want: u16,
}

fn step(
    method: &'static str,
    path: impl Into<String>,
    body: &[u8],
    auth: Option<(&'static str, &'static str)>,
    want: u16,
) -> Step {
    Step {
        method,
        path: path.into(),
        body: body.to_vec(),
        auth,
        want,
    }
}

async fn run(server: &Server, steps: &[Step]) {
    for (i, s) in steps.iter().enumerate() {
        let r = req(server.addr, s.method, &s.path, s.auth, &[], &s.body).await;
        assert_eq!(
            r.status,
            s.want,
            "step {i}: {} {} -> {} ({})",
            s.method,
            s.path,
            r.status,
            r.text()
        );
    }
}

#[tokio::test]
async fn append_only_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.append_only = true;
    let server = Server::start(c).await;
    let data = b"file content";
    let name = sha(data);
    let wrong = sha(b"something else");
    for tpe in ["data", "keys", "locks", "snapshots", "index"] {
        let p = format!("/alice/{tpe}/{name}");
        let mut steps = vec![
            step("POST", "/alice/?create=true", b"", ALICE, 200),
            step("GET", p.clone(), b"", ALICE, 404),
            step("HEAD", p.clone(), b"", ALICE, 404),
            step("POST", format!("/alice/{tpe}/{wrong}"), data, ALICE, 400),
            step("GET", format!("/alice/{tpe}/{wrong}"), b"", ALICE, 404),
            step("POST", p.clone(), data, ALICE, 200),
            step("GET", p.clone(), b"", ALICE, 200),
            step("HEAD", p.clone(), b"", ALICE, 200),
            step("POST", p.clone(), data, ALICE, 403), // never overwrite
        ];
        if tpe == "locks" {
            steps.push(step("DELETE", p.clone(), b"", ALICE, 200));
            steps.push(step("GET", p.clone(), b"", ALICE, 404));
        } else {
            steps.push(step("DELETE", p.clone(), b"", ALICE, 403));
            steps.push(step("GET", p.clone(), b"", ALICE, 200));
        }
        run(&server, &steps).await;
    }
    // config: created once, never replaced, never deleted in append-only
    run(
        &server,
        &[
            step("HEAD", "/alice/config", b"", ALICE, 404),
            step("POST", "/alice/config", b"cfg", ALICE, 200),
            step("HEAD", "/alice/config", b"", ALICE, 200),
            step("POST", "/alice/config", b"other", ALICE, 403),
            step("DELETE", "/alice/config", b"", ALICE, 403),
            step("DELETE", "/alice/", b"", ALICE, 403),
        ],
    )
    .await;
    let r = req(server.addr, "GET", "/alice/config", ALICE, &[], b"").await;
    assert_eq!(r.body, b"cfg");
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    server.stop().await;
}

#[tokio::test]
async fn modify_sequences_and_acl() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.acl = vec![
        AclEntry {
            user: "bob".into(),
            repo: "alice".into(),
            access: Access::Read,
        },
        AclEntry {
            user: "alice".into(),
            repo: "alice/app".into(),
            access: Access::Append,
        },
    ];
    c.private_repos = true;
    let server = Server::start(c).await;
    let data = b"pack";
    let name = sha(data);
    run(
        &server,
        &[
            step("POST", "/alice/laptop/?create=true", b"", ALICE, 200),
            step("POST", "/alice/app/?create=true", b"", ALICE, 200),
            step(
                "POST",
                format!("/alice/laptop/data/{name}"),
                data,
                ALICE,
                200,
            ),
            step(
                "DELETE",
                format!("/alice/laptop/data/{name}"),
                b"",
                ALICE,
                200,
            ),
            step("GET", format!("/alice/laptop/data/{name}"), b"", ALICE, 404),
            step(
                "DELETE",
                format!("/alice/laptop/data/{name}"),
                b"",
                ALICE,
                404,
            ),
            step(
                "POST",
                format!("/alice/laptop/data/{name}"),
                data,
                ALICE,
                200,
            ),
            // bob: read-only on alice's repositories
            step("GET", format!("/alice/laptop/data/{name}"), b"", BOB, 200),
            step("GET", "/alice/laptop/data/", b"", BOB, 200),
            step("POST", format!("/alice/laptop/keys/{name}"), data, BOB, 403),
            step(
                "DELETE",
                format!("/alice/laptop/data/{name}"),
                b"",
                BOB,
                403,
            ),
            step("POST", "/alice/other/?create=true", b"", BOB, 403),
            // bob's own repositories (private repos)
            step("POST", "/bob/?create=true", b"", BOB, 200),
            step("POST", "/carol/?create=true", b"", BOB, 403),
            step("GET", "/bob/data/", b"", ALICE, 403),
            // alice is append-only on alice/app by ACL
            step("POST", format!("/alice/app/data/{name}"), data, ALICE, 200),
            step("DELETE", format!("/alice/app/data/{name}"), b"", ALICE, 403),
            step("POST", format!("/alice/app/locks/{name}"), data, ALICE, 200),
            step(
                "DELETE",
                format!("/alice/app/locks/{name}"),
                b"",
                ALICE,
                200,
            ),
            // missing repository
            step("POST", format!("/alice/nope/data/{name}"), data, ALICE, 404),
            step("GET", "/alice/nope/data/", b"", ALICE, 404),
        ],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn listing_v1_and_v2() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await;
    run(
        &server,
        &[step("POST", "/alice/?create=true", b"", ALICE, 200)],
    )
    .await;
    let mut names = Vec::new();
    for i in 0..3u8 {
        let data = vec![i; 100 + usize::from(i)];
        let n = sha(&data);
        run(
            &server,
            &[step("POST", format!("/alice/data/{n}"), &data, ALICE, 200)],
        )
        .await;
        names.push((n, 100 + u64::from(i)));
    }
    names.sort();
    let r = req(server.addr, "GET", "/alice/data/", ALICE, &[], b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.x.restic.rest.v1")
    );
    let v1: Vec<String> = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v1, names.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());

    let r = req(
        server.addr,
        "GET",
        "/alice/data/",
        ALICE,
        &[("Accept", V2)],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(V2));
    let v2: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
    let got: Vec<(String, u64)> = v2
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_owned(),
                v["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, names);

    let r = req(
        server.addr,
        "GET",
        "/alice/keys/",
        ALICE,
        &[("Accept", V2)],
        b"",
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "[]"));
    server.stop().await;
}

#[tokio::test]
async fn range_reads() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(config(dir.path())).await;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let n = sha(&data);
    let p = format!("/alice/data/{n}");
    run(
        &server,
        &[
            step("POST", "/alice/?create=true", b"", ALICE, 200),
            step("POST", p.clone(), &data, ALICE, 200),
        ],
    )
    .await;
    type Case = (&'static str, u16, Option<(usize, usize)>);
    let cases: &[Case] = &[
        ("bytes=0-9", 206, Some((0, 9))),
        ("bytes=10-", 206, Some((10, 999))),
        ("bytes=990-5000", 206, Some((990, 999))),
        ("bytes=-5", 206, Some((995, 999))),
        ("bytes=1000-", 416, None),
        ("bytes=5-2", 416, None),
    ];
    for (range, want, span) in cases {
        let r = req(server.addr, "GET", &p, ALICE, &[("Range", range)], b"").await;
        assert_eq!(r.status, *want, "{range}");
        match span {
            Some((a, b)) => {
                assert_eq!(r.body, &data[*a..=*b], "{range}");
                assert_eq!(
                    r.header("content-range"),
                    Some(format!("bytes {a}-{b}/1000").as_str())
                );
                assert_eq!(
                    r.header("content-length"),
                    Some((b - a + 1).to_string().as_str())
                );
            }
            None => assert_eq!(r.header("content-range"), Some("bytes */1000")),
        }
    }
    let r = req(server.addr, "GET", &p, ALICE, &[], b"").await;
    assert_eq!((r.status, r.body.len()), (200, 1000));
    let r = req(server.addr, "HEAD", &p, ALICE, &[], b"").await;
    assert_eq!((r.status, r.header("content-length")), (200, Some("1000")));
    server.stop().await;
}

#[tokio::test]
async fn quota_is_enforced_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.quotas.insert("alice/q".into(), 10_000);
    let server = Server::start(c.clone()).await;
    run(
        &server,
        &[step("POST", "/alice/q/?create=true", b"", ALICE, 200)],
    )
    .await;
    let mut used = 0;
    for i in 0..3u8 {
        let data = vec![i; 3000];
        run(
            &server,
            &[step(
                "POST",
                format!("/alice/q/data/{}", sha(&data)),
                &data,
                ALICE,
                200,
            )],
        )
        .await;
        used += 3000;
    }
    let before = common::tree(&server.data);
    // 9000 used: 1001 more bytes don't fit, with Content-Length…
    let big = vec![9u8; 1001];
    let r = req(
        server.addr,
        "POST",
        &format!("/alice/q/data/{}", sha(&big)),
        ALICE,
        &[],
        &big,
    )
    .await;
    assert_eq!(r.status, 507, "{}", r.text());
    // …nor streamed without one (chunked).
    let body = format!("{:x}\r\n", big.len());
    let mut chunked = format!(
        "POST /alice/q/data/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
        sha(&big),
        common::basic("alice", "pw-alice")
    )
    .into_bytes();
    chunked.extend_from_slice(&big);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = common::raw(server.addr, &chunked).await;
    assert_eq!(r.status, 507, "{}", r.text());
    assert_eq!(
        common::tree(&server.data),
        before,
        "a refused upload left something behind"
    );
    // exactly to the limit is fine
    let fits = vec![7u8; 1000];
    run(
        &server,
        &[step(
            "POST",
            format!("/alice/q/data/{}", sha(&fits)),
            &fits,
            ALICE,
            200,
        )],
    )
    .await;
    used += 1000;
    let one = b"x";
    run(
        &server,
        &[step(
            "POST",
            format!("/alice/q/data/{}", sha(one)),
            one,
            ALICE,
            507,
        )],
    )
    .await;
    // other repositories are not limited
    run(
        &server,
        &[step("POST", "/alice/free/?create=true", b"", ALICE, 200)],
    )
    .await;
    run(
        &server,
        &[step(
            "POST",
            format!("/alice/free/data/{}", sha(&big)),
            &big,
            ALICE,
            200,
        )],
    )
    .await;
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains(&format!(
            "bulwark_hub_repo_bytes{{repo=\"alice/q\",type=\"data\"}} {used}"
        )),
        "{metrics}"
    );
    server.stop().await;

    // after a restart the usage is counted from the store: still full
    let server = Server::start(c).await;
    let metrics = metrics_text(&server).await;
    assert!(
        metrics.contains(&format!(
            "bulwark_hub_repo_bytes{{repo=\"alice/q\",type=\"data\"}} {used}"
        )),
        "{metrics}"
    );
    run(
        &server,
        &[step(
            "POST",
            format!("/alice/q/data/{}", sha(one)),
            one,
            ALICE,
            507,
        )],
    )
    .await;
    // deleting frees space
    let data0 = vec![0u8; 3000];
    run(
        &server,
        &[step(
            "DELETE",
            format!("/alice/q/data/{}", sha(&data0)),
            b"",
            ALICE,
            200,
        )],
    )
    .await;
    run(
        &server,
        &[step(
            "POST",
            format!("/alice/q/data/{}", sha(one)),
            one,
            ALICE,
            200,
        )],
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn max_size_limits_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.max_size = Some(5000);
    let server = Server::start(c).await;
    let a = vec![1u8; 3000];
    let b = vec![2u8; 3000];
    run(
        &server,
        &[
            step("POST", "/alice/?create=true", b"", ALICE, 200),
            step("POST", "/bob/?create=true", b"", BOB, 200),
            step("POST", format!("/alice/data/{}", sha(&a)), &a, ALICE, 200),
            step("POST", format!("/bob/data/{}", sha(&b)), &b, BOB, 507),
        ],
    )
    .await;
    server.stop().await;
}

async fn metrics_text(server: &Server) -> String {
    let r = req(
        server.addr,
        "GET",
        "/metrics",
        Some(("metrics", "pw-metrics")),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

#[tokio::test]
async fn metrics_need_auth_and_show_repositories() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let mut c = config(dir.path());
    c.metrics.token_file = Some(token);
    let server = Server::start(c).await;
    let snap = b"snapshot file";
    let pack = vec![5u8; 4096];
    run(
        &server,
        &[
            step("POST", "/alice/laptop/?create=true", b"", ALICE, 200),
            step(
                "POST",
                format!("/alice/laptop/snapshots/{}", sha(snap)),
                snap,
                ALICE,
                200,
            ),
            step(
                "POST",
                format!("/alice/laptop/data/{}", sha(&pack)),
                &pack,
                ALICE,
                200,
            ),
            step(
                "GET",
                format!("/alice/laptop/data/{}", sha(&pack)),
                b"",
                ALICE,
                200,
            ),
            step(
                "GET",
                "/alice/laptop/config",
                b"",
                Some(("alice", "wrong")),
                401,
            ),
        ],
    )
    .await;
    assert_eq!(
        req(server.addr, "GET", "/metrics", None, &[], b"")
            .await
            .status,
        401
    );
    assert_eq!(
        req(server.addr, "GET", "/metrics", ALICE, &[], b"")
            .await
            .status,
        403
    );
    assert_eq!(
        req(
            server.addr,
            "GET",
            "/metrics",
            None,
            &[("Authorization", "Bearer wrong")],
            b""
        )
        .await
        .status,
        401
    );
    let by_token = req(
        server.addr,
        "GET",
        "/metrics",
        None,
        &[("Authorization", "Bearer s3cret-token")],
        b"",
    )
    .await;
    assert_eq!(by_token.status, 200);
    let m = metrics_text(&server).await;
    for want in [
        "bulwark_hub_repo_bytes{repo=\"alice/laptop\",type=\"data\"} 4096",
        "bulwark_hub_repo_files{repo=\"alice/laptop\",type=\"snapshots\"} 1",
        "bulwark_hub_last_snapshot_upload_timestamp_seconds{repo=\"alice/laptop\"}",
        "bulwark_hub_blob_writes_total{repo=\"alice/laptop\",type=\"data\"} 1",
        "bulwark_hub_blob_write_bytes_total{repo=\"alice/laptop\",type=\"data\"} 4096",
        "bulwark_hub_blob_reads_total{repo=\"alice/laptop\",type=\"data\"} 1",
        "bulwark_hub_blob_read_bytes_total{repo=\"alice/laptop\",type=\"data\"} 4096",
        "bulwark_hub_auth_failures_total{repo=\"alice/laptop\"} 1",
        "bulwark_hub_request_duration_seconds_bucket{",
        "bulwark_hub_requests_total{repo=\"alice/laptop\",method=\"POST\",code=\"200\"} 3",
        "process_resident_memory_bytes ",
    ] {
        assert!(m.contains(want), "missing {want:?} in\n{m}");
    }
    server.stop().await;

    // after a restart the freshness comes from the stored snapshot file
    let mut c = config(dir.path());
    c.metrics.token_file = Some(dir.path().join("token"));
    let server = Server::start(c).await;
    let m = metrics_text(&server).await;
    let line = m
        .lines()
        .find(|l| {
            l.starts_with(
                "bulwark_hub_last_snapshot_upload_timestamp_seconds{repo=\"alice/laptop\"}",
            )
        })
        .unwrap_or_else(|| panic!("no freshness after a restart in\n{m}"));
    let t: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - t).abs() < 600.0,
        "freshness {t} is not the upload time (now {now})"
    );
    server.stop().await;
}

#[tokio::test]
async fn scrub_reports_corruption_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let data_dir = c.data.clone();
    let server = Server::start(c.clone()).await;
    let pack = vec![3u8; 2048];
    let name = sha(&pack);
    run(
        &server,
        &[
            step("POST", "/alice/?create=true", b"", ALICE, 200),
            step("POST", format!("/alice/data/{name}"), &pack, ALICE, 200),
        ],
    )
    .await;
    server.stop().await;
    let summary = bulwark_hub::scrub_dir(&data_dir).await.unwrap();
    assert!(summary.is_clean(), "{summary:?}");
    assert_eq!(summary.checked, 1);
    let path = data_dir.join("alice/data").join(&name[..2]).join(&name);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[7] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let summary = bulwark_hub::scrub_dir(&data_dir).await.unwrap();
    assert_eq!(summary.corrupt, 1);
    assert_eq!(summary.repos[0].corrupt[0].file, format!("data/{name}"));

    let hub = bulwark_hub::Hub::new(c).await.unwrap();
    hub.scrub_now().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(hub.run(listener, async move {
        let _ = rx.await;
    }));
    let r = req(
        addr,
        "GET",
        "/metrics",
        Some(("metrics", "pw-metrics")),
        &[],
        b"",
    )
    .await;
    let m = r.text();
    assert!(
        m.contains("bulwark_hub_scrub_corrupt_files{repo=\"alice\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("bulwark_hub_scrub_files_checked_total{repo=\"alice\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("bulwark_hub_scrub_last_timestamp_seconds{repo=\"alice\"}"),
        "{m}"
    );
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// Polls `GET path` until it answers `want` (the htpasswd file is re-read
/// at most once a second); fails after 5 s.
async fn wait_for_status(
    addr: std::net::SocketAddr,
    path: &str,
    creds: Option<(&str, &str)>,
    want: u16,
    what: &str,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = req(addr, "GET", path, creds, &[], b"").await;
        if r.status == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {}",
            r.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn htpasswd_changes_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.private_repos = false; // carol reads alice's repo: this test is about authentication

    let file = c.htpasswd_path();
    let server = Server::start(c).await;
    assert_eq!(
        req(server.addr, "POST", "/alice/?create=true", ALICE, &[], b"")
            .await
            .status,
        200
    );
    let carol = Some(("carol", "pw-carol"));
    assert_eq!(
        req(server.addr, "GET", "/alice/keys/", carol, &[], b"")
            .await
            .status,
        401
    );
    // replace the file: carol added, alice removed
    common::htpasswd(&file, &[("carol", "pw-carol")]);
    wait_for_status(server.addr, "/alice/keys/", carol, 200, "reload not seen").await;
    // alice's cached success must not survive the reload
    assert_eq!(
        req(server.addr, "GET", "/alice/keys/", ALICE, &[], b"")
            .await
            .status,
        401
    );
    // a password change for carol: the old password stops working
    common::htpasswd(&file, &[("carol", "new")]);
    wait_for_status(
        server.addr,
        "/alice/keys/",
        carol,
        401,
        "password change not seen",
    )
    .await;
    assert_eq!(
        req(
            server.addr,
            "GET",
            "/alice/keys/",
            Some(("carol", "new")),
            &[],
            b""
        )
        .await
        .status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn no_auth_mode_and_missing_htpasswd() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    std::fs::remove_file(c.htpasswd_path()).unwrap();
    let err = Server::try_start(c.clone())
        .await
        .err()
        .expect("refuses to start without htpasswd");
    assert!(err.to_string().contains("htpasswd"), "{err}");
    c.no_auth = true;
    let server = Server::start(c).await;
    assert_eq!(
        req(
            server.addr,
            "POST",
            "/anything/?create=true",
            None,
            &[],
            b""
        )
        .await
        .status,
        200
    );
    assert_eq!(
        req(server.addr, "GET", "/metrics", None, &[], b"")
            .await
            .status,
        200
    );
    server.stop().await;
}
