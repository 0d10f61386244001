//! A hung mount, played by a FIFO: opening it for reading blocks until a
//! writer comes, like a syscall on a dead NFS server. Alone in this test
//! binary, so the check threads of this process can be counted.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bulwark_monitor::{hung_path_checks, probe, PathCheck, PathProbe, Probe};

/// Threads of this process doing path checks.
fn check_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.trim() == "bwk-path-check")
                .unwrap_or(false)
        })
        .count()
}

/// Waits (bounded) until `f` holds.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens the FIFO for writing on a thread (that open blocks until a reader
/// comes), writes `data`, closes.
fn writer(fifo: &Path, data: &'static [u8]) -> std::thread::JoinHandle<()> {
    let fifo: PathBuf = fifo.to_path_buf();
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        f.write_all(data).unwrap();
    })
}

#[tokio::test]
async fn hung_path_times_out_and_does_not_pile_up_threads() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("hung");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let spec = Probe::Path(PathProbe::new(&fifo, PathCheck::Readable));
    let timeout = Duration::from_millis(300);
    assert_eq!(check_threads(), 0);

    // 1. The first check blocks in open(2): down after the timeout.
    let start = Instant::now();
    let r = probe(&spec, timeout).await;
    let took = start.elapsed();
    assert!(!r.up);
    assert_eq!(
        r.message,
        format!(
            "{} did not answer within 300ms (hung mount?)",
            fifo.display()
        )
    );
    assert!(
        took >= timeout && took < Duration::from_millis(1000),
        "took {took:?}"
    );
    assert_eq!(check_threads(), 1, "the stuck thread stays");
    let hung = hung_path_checks();
    assert_eq!(hung.len(), 1);
    assert_eq!(hung[0].0, fifo);
    assert!(hung[0].1 >= timeout);

    // 2. While it is stuck, more checks of the same path answer at once and
    //    start no thread.
    for _ in 0..3 {
        let start = Instant::now();
        let r = probe(&spec, timeout).await;
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
        assert!(!r.up);
        assert!(
            r.message.starts_with(&format!(
                "{} did not answer: an earlier check has been stuck for ",
                fifo.display()
            )),
            "{}",
            r.message
        );
        assert!(
            r.message.ends_with("(hung mount?); not starting another"),
            "{}",
            r.message
        );
        assert_eq!(check_threads(), 1);
    }

    // 3. Other paths are not held up by it.
    let r = probe(
        &Probe::Path(PathProbe::new(dir.path(), PathCheck::Readable)),
        timeout,
    )
    .await;
    assert!(r.up, "{r:?}");
    eventually("the other path's thread ends", || check_threads() == 1).await;

    // 4. The "mount" comes back: the stuck thread finishes and is gone.
    writer(&fifo, b"").join().unwrap();
    eventually("the stuck thread ends", || {
        check_threads() == 0 && hung_path_checks().is_empty()
    })
    .await;

    // 5. A new check starts a thread again, and with a writer it answers.
    let w = writer(&fifo, b"hello");
    let r = probe(&spec, Duration::from_secs(5)).await;
    w.join().unwrap();
    assert!(r.up, "{r:?}");
    assert_eq!(
        r.message,
        format!(
            "{} is readable (special file, read 5 bytes)",
            fifo.display()
        )
    );
    eventually("no check thread left", || check_threads() == 0).await;
}
