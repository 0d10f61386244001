//! Shared helpers: an in-process hub on a loopback port, a raw HTTP/1.1
//! client (so hostile paths reach the server byte for byte), fixtures.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use base64::Engine;
use bulwark_hub::{HubConfig, HubError};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

pub const V2: &str = "application/vnd.x.restic.rest.v2";

/// A running in-process hub.
pub struct Server {
    pub addr: SocketAddr,
    pub data: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), HubError>>>,
}

impl Server {
    /// Starts a hub with `config` on 127.0.0.1:0.
    pub async fn start(config: HubConfig) -> Server {
        Self::try_start(config).await.expect("hub starts")
    }

    pub async fn try_start(config: HubConfig) -> Result<Server, HubError> {
        let data = config.data.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hub = bulwark_hub::Hub::new(config).await?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(hub.run(listener, async move {
            let _ = rx.await;
        }));
        Ok(Server {
            addr,
            data,
            stop: Some(tx),
            task: Some(task),
        })
    }

    /// Stops the hub and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("hub ran");
        }
    }
}

/// Writes an htpasswd file with cheap bcrypt entries.
pub fn htpasswd(path: &Path, users: &[(&str, &str)]) {
    let mut text = String::new();
    for (u, p) in users {
        text.push_str(&format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap()));
    }
    std::fs::write(path, text).unwrap();
}

/// A config over a fresh data dir with users alice/bob/metrics (password `pw-<user>`).
pub fn config(dir: &Path) -> HubConfig {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    htpasswd(
        &data.join(".htpasswd"),
        &[
            ("alice", "pw-alice"),
            ("bob", "pw-bob"),
            ("metrics", "pw-metrics"),
        ],
    );
    let mut c = HubConfig::new(data);
    c.scrub_interval = None;
    c
}

pub fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

pub fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw bytes as a request and reads the response until the server
/// closes the connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // The server may answer (and close) before the whole body is sent.
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .expect("response in time");
    parse(&buf)
}

pub fn parse(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = BTreeMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let mut body = buf[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 4 + n..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// A request with optional auth, extra headers and body (Content-Length set).
pub async fn req(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some((u, p)) = auth {
        r.push_str(&format!("Authorization: {}\r\n", basic(u, p)));
    }
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" || !body.is_empty() {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes).await
}

/// Every file below `dir` (relative path → size), for "nothing changed" checks.
pub fn tree(dir: &Path) -> BTreeMap<String, u64> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, u64>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                out.insert(format!("{rel}/"), 0);
                walk(base, &p, out);
            } else {
                out.insert(rel, m.len());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}
