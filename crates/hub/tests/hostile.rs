//! Hostile input: each request is refused with the right status and
//! changes nothing on disk.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{basic, config, raw, req, sha, tree, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE: Option<(&str, &str)> = Some(("alice", "pw-alice"));

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r =
        format!("{method} {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        r.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    r.extend_from_slice(b"\r\n");
    r.extend_from_slice(body);
    r
}

#[tokio::test]
async fn hostile_requests_are_refused_without_effect() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("keys")).unwrap();
    std::fs::write(outside.join("config"), "secret config").unwrap();
    let mut c = config(dir.path());
    c.max_file_size = 1000;
    c.private_repos = true;
    c.auth_failure_limit = 0; // this test sends many bad credentials on purpose
    let server = Server::start(c).await;
    assert_eq!(
        req(server.addr, "POST", "/alice/?create=true", ALICE, &[], b"")
            .await
            .status,
        200
    );
    assert_eq!(
        req(server.addr, "POST", "/alice/config", ALICE, &[], b"cfg")
            .await
            .status,
        200
    );
    std::os::unix::fs::symlink(&outside, server.data.join("evil")).unwrap();
    std::os::unix::fs::symlink(&outside, server.data.join("alice/linked")).unwrap();

    let auth = basic("alice", "pw-alice");
    let a = ("Authorization", auth.as_str());
    let data = b"some data";
    let h = sha(data);
    let big = vec![1u8; 2000];
    let hb = sha(&big);
    let cl = |n: usize| n.to_string();
    let (c9, c2000) = (cl(data.len()), cl(big.len()));
    let mut chunked_big = format!("{:x}\r\n", big.len()).into_bytes();
    chunked_big.extend_from_slice(&big);
    chunked_big.extend_from_slice(b"\r\n0\r\n\r\n");
    let many_headers: Vec<(String, String)> = (0..150)
        .map(|i| (format!("X-H{i}"), "v".to_owned()))
        .collect();
    let mut many: Vec<(&str, &str)> = many_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    many.push(a);
    let long_auth = format!("Basic {}", "A".repeat(20_000));
    let bob = basic("bob", "pw-bob");

    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "dot-dot",
            request(
                "POST",
                &format!("/alice/../bob/keys/{h}"),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "leading dot-dot",
            request("GET", "/../etc/passwd", &[a], b""),
            400,
        ),
        (
            "encoded dot-dot",
            request(
                "POST",
                "/%2e%2e/alice/config",
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "encoded dot-dot in repo",
            request(
                "POST",
                "/alice/%2E%2E/config",
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "encoded slashes",
            request(
                "POST",
                "/alice%2f..%2f..%2ftmp/config",
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "NUL byte",
            request(
                "POST",
                &format!("/alice%00/keys/{h}"),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "backslashes",
            request(
                "POST",
                &format!("/alice%5c..%5cbob/keys/{h}"),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "double slash",
            request(
                "POST",
                &format!("//alice/keys/{h}"),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "too deep",
            request(
                "POST",
                "/alice/a/b/?create=true",
                &[a, ("Content-Length", "0")],
                b"",
            ),
            400,
        ),
        ("htpasswd", request("GET", "/.htpasswd", &[a], b""), 400),
        (
            "dot repo",
            request(
                "POST",
                "/.hidden/?create=true",
                &[a, ("Content-Length", "0")],
                b"",
            ),
            400,
        ),
        (
            "short name",
            request(
                "POST",
                "/alice/keys/abc",
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "upper-case name",
            request(
                "POST",
                &format!("/alice/keys/{}", h.to_uppercase()),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "long name",
            request(
                "POST",
                &format!("/alice/keys/{h}0"),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "unknown type",
            request(
                "POST",
                &format!("/alice/secrets/{h}"),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "wrong hash",
            request(
                "POST",
                &format!("/alice/keys/{}", sha(b"other")),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            400,
        ),
        (
            "no content-length",
            request("POST", &format!("/alice/keys/{h}"), &[a], b""),
            400,
        ),
        (
            "bad content-length",
            request(
                "POST",
                &format!("/alice/keys/{h}"),
                &[a, ("Content-Length", "nine")],
                data,
            ),
            400,
        ),
        (
            "oversized body",
            request(
                "POST",
                &format!("/alice/data/{hb}"),
                &[a, ("Content-Length", &c2000)],
                &big,
            ),
            413,
        ),
        (
            "oversized chunked body",
            request(
                "POST",
                &format!("/alice/data/{hb}"),
                &[a, ("Transfer-Encoding", "chunked")],
                &chunked_big,
            ),
            413,
        ),
        (
            "overwrite config",
            request("POST", "/alice/config", &[a, ("Content-Length", &c9)], data),
            403,
        ),
        (
            "symlinked repo elsewhere",
            request("GET", "/evil/config", &[a], b""),
            403,
        ),
        (
            "symlinked repo below",
            request("GET", "/alice/linked/config", &[a], b""),
            404,
        ),
        (
            "no auth",
            request(
                "POST",
                &format!("/alice/keys/{h}"),
                &[("Content-Length", &c9)],
                data,
            ),
            401,
        ),
        (
            "wrong password",
            request(
                "GET",
                "/alice/config",
                &[("Authorization", &basic("alice", "nope"))],
                b"",
            ),
            401,
        ),
        (
            "unknown user",
            request(
                "GET",
                "/alice/config",
                &[("Authorization", &basic("mallory", "x"))],
                b"",
            ),
            401,
        ),
        (
            "auth without credentials",
            request("GET", "/alice/config", &[("Authorization", "Basic")], b""),
            401,
        ),
        (
            "auth not base64",
            request(
                "GET",
                "/alice/config",
                &[("Authorization", "Basic !!!***")],
                b"",
            ),
            401,
        ),
        (
            "auth without colon",
            request(
                "GET",
                "/alice/config",
                &[("Authorization", "Basic YWxpY2U=")],
                b"",
            ),
            401,
        ),
        (
            "bearer auth",
            request(
                "GET",
                "/alice/config",
                &[("Authorization", "Bearer abc")],
                b"",
            ),
            401,
        ),
        (
            "huge auth",
            request(
                "GET",
                "/alice/config",
                &[("Authorization", &long_auth)],
                b"",
            ),
            401,
        ),
        (
            "private repos",
            request(
                "POST",
                "/alice/other/?create=true",
                &[("Authorization", &bob), ("Content-Length", "0")],
                b"",
            ),
            403,
        ),
        (
            "private repos read",
            request("GET", "/alice/config", &[("Authorization", &bob)], b""),
            403,
        ),
        (
            "too many headers",
            request("GET", "/alice/config", &many, b""),
            431,
        ),
        (
            "delete repository",
            request("DELETE", "/alice/", &[a], b""),
            501,
        ),
        (
            "repo without create",
            request("POST", "/alice/", &[a, ("Content-Length", "0")], b""),
            400,
        ),
        (
            "unknown method",
            request(
                "PUT",
                &format!("/alice/keys/{h}"),
                &[a, ("Content-Length", &c9)],
                data,
            ),
            405,
        ),
    ];
    let before = tree(dir.path());
    for (what, bytes, want) in cases {
        let r = raw(server.addr, &bytes).await;
        assert_eq!(r.status, want, "{what}: {}", r.text());
        assert_eq!(tree(dir.path()), before, "{what} changed the disk");
    }
    // Non-UTF-8 bytes in the Authorization header.
    let mut bytes = b"GET /alice/config HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAuthorization: Basic \xff\xfe\xfd\r\n\r\n".to_vec();
    let r = raw(server.addr, &bytes).await;
    assert_eq!(r.status, 401);
    bytes.clear();
    assert_eq!(tree(dir.path()), before);
    server.stop().await;
}

#[tokio::test]
async fn failed_logins_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.auth_failure_limit = 5;
    let server = Server::start(c).await;
    for _ in 0..5 {
        assert_eq!(
            req(
                server.addr,
                "GET",
                "/alice/config",
                Some(("alice", "bad")),
                &[],
                b""
            )
            .await
            .status,
            401
        );
    }
    // now even the right password is refused for a while
    assert_eq!(
        req(server.addr, "GET", "/alice/config", ALICE, &[], b"")
            .await
            .status,
        429
    );
    server.stop().await;
}

#[tokio::test]
async fn slow_clients_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.header_read_timeout = Duration::from_millis(500);
    c.body_idle_timeout = Duration::from_millis(500);
    let server = Server::start(c).await;
    assert_eq!(
        req(server.addr, "POST", "/alice/?create=true", ALICE, &[], b"")
            .await
            .status,
        200
    );
    let before = tree(&server.data);

    // Headers that never end: the connection is closed.
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /alice/config HTTP/1.1\r\nHost: h\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("closed in time")
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(4));

    // A body that stalls: refused, and no temporary file is left.
    let data = vec![4u8; 1000];
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /alice/data/{} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAuthorization: {}\r\nContent-Length: 1000\r\n\r\n",
        sha(&data),
        basic("alice", "pw-alice")
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&data[..100]).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    let r = common::parse(&buf);
    assert_eq!(r.status, 400, "{}", r.text());
    // the temporary file is removed when the upload fails
    let deadline = Instant::now() + Duration::from_secs(2);
    while tree(&server.data) != before {
        assert!(
            Instant::now() < deadline,
            "left behind: {:?}",
            tree(&server.data)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_uploads_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let server = Server::start(c).await;
    assert_eq!(
        req(server.addr, "POST", "/alice/?create=true", ALICE, &[], b"")
            .await
            .status,
        200
    );
    let data = vec![6u8; 100_000];
    let name = sha(&data);
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /alice/data/{name} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
        basic("alice", "pw-alice"),
        data.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&data[..50_000]).await.unwrap();
    // wait until the upload has started (its temporary file exists)
    let dir_of = server.data.join("alice/data").join(&name[..2]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_dir(&dir_of).unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "upload did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // no new connections are accepted
    assert!(tokio::net::TcpStream::connect(addr).await.is_err() || !stopping.is_finished());
    s.write_all(&data[50_000..]).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    assert_eq!(common::parse(&buf).status, 200);
    stopping.await.unwrap();
    assert_eq!(std::fs::read(dir_of.join(&name)).unwrap(), data);
}
