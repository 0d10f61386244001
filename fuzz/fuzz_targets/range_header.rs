//! The hub's `Range` header handling, through its public entry point: an
//! in-process hub (no auth) on 127.0.0.1 serves one 1000-byte data file,
//! and each input is sent as the `Range` header of a GET for it over a
//! fresh connection. The hub must answer (never crash or hang), with 200
//! (whole file), 206 (a slice that matches `Content-Range` and the file's
//! bytes), 400 (a header hyper refuses) or 416.
#![no_main]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    sync::OnceLock,
    time::Duration,
};

use libfuzzer_sys::fuzz_target;
use sha2::Digest;

const SIZE: usize = 1000;

struct Fixture {
    addr: SocketAddr,
    path: String,
    content: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let content: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
        let name = hex::encode(sha2::Sha256::digest(&content));
        let file = data.join("r/data").join(&name[..2]);
        std::fs::create_dir_all(&file).expect("mkdir");
        std::fs::write(file.join(&name), &content).expect("write");
        std::fs::write(data.join("r/config"), b"x").expect("config");
        for t in ["keys", "locks", "snapshots", "index"] {
            std::fs::create_dir_all(data.join("r").join(t)).expect("mkdir");
        }
        let mut config = bulwark_hub::HubConfig::new(&data);
        config.no_auth = true;
        config.scrub_interval = None;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send");
                bulwark_hub::serve(listener, config, std::future::pending())
                    .await
                    .expect("serve");
            });
        });
        let addr = rx.recv().expect("hub address");
        Fixture {
            addr,
            path: format!("/r/data/{name}"),
            content,
            _dir: dir,
        }
    })
}

fn get(f: &Fixture, range: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(f.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nRange: ",
        f.path
    )
    .into_bytes();
    req.extend_from_slice(range);
    req.extend_from_slice(b"\r\n\r\n");
    let _ = s.write_all(&req);
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("the hub answers in time");
    buf
}

fuzz_target!(|data: &[u8]| {
    // Header values cannot hold CR or LF (that would be another header).
    if data.len() > 200 || data.iter().any(|&b| b == b'\r' || b == b'\n') {
        return;
    }
    let f = fixture();
    let resp = get(f, data);
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&resp)));
    let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
    let body = &resp[end + 4..];
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    match status {
        200 => assert_eq!(body, &f.content[..]),
        206 => {
            let cr = head
                .lines()
                .find_map(|l| l.strip_prefix("content-range: bytes "))
                .unwrap_or_else(|| panic!("206 without content-range: {head}"));
            let (span, total) = cr.split_once('/').expect("a/b");
            let (a, b) = span.split_once('-').expect("a-b");
            let (a, b): (usize, usize) = (a.parse().expect("a"), b.parse().expect("b"));
            assert_eq!(total, SIZE.to_string());
            assert!(a <= b && b < SIZE, "{cr}");
            assert_eq!(body, &f.content[a..=b], "{cr}");
        }
        400 | 416 => {}
        other => panic!(
            "status {other} for Range {:?}: {head}",
            String::from_utf8_lossy(data)
        ),
    }
});
