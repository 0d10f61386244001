//! The path probe: exists, is a mountpoint, answers reads — without hanging.
//!
//! A hung NFS (or CIFS, or FUSE) mount blocks `stat`, `open` and `read`
//! forever, in the kernel, where no timeout or cancellation reaches. So the
//! filesystem work runs on a dedicated thread and the probe stops waiting
//! after its timeout. A stuck thread cannot be killed; it stays until the
//! syscall returns. To not pile them up, a path whose earlier check is still
//! stuck is reported down at once without starting another thread.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::duration::human;
use crate::{ProbeResult, SpecError};

/// The name of the threads that do path checks (as seen in
/// `/proc/self/task/*/comm`).
pub(crate) const THREAD_NAME: &str = "bwk-path-check";

/// What a path probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathCheck {
    /// The path exists (symlinks followed).
    Exists,
    /// The path is a mountpoint: its device differs from its parent's, or it
    /// is listed in `/proc/self/mountinfo` (bind mounts).
    Mountpoint,
    /// The path answers reads: stat, then list a directory's first entry or
    /// read a file's first 4 KiB. The default.
    #[default]
    Readable,
}

/// Checks a local path, in a way that survives a hung mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathProbe {
    /// An absolute path.
    pub path: PathBuf,
    /// What to check (default `readable`).
    #[serde(default)]
    pub check: PathCheck,
}

impl PathProbe {
    /// A probe of `path` with `check`.
    pub fn new(path: impl Into<PathBuf>, check: PathCheck) -> Self {
        PathProbe {
            path: path.into(),
            check,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        if self.path.as_os_str().is_empty() {
            return Err(SpecError::Empty { field: "path" });
        }
        if !self.path.is_absolute() {
            return Err(SpecError::invalid(
                "path",
                self.path.display(),
                "must be absolute",
            ));
        }
        Ok(())
    }
}

/// Paths whose check thread has been started and has not returned, with
/// when it started.
fn in_flight() -> MutexGuard<'static, BTreeMap<PathBuf, Instant>> {
    static IN_FLIGHT: Mutex<BTreeMap<PathBuf, Instant>> = Mutex::new(BTreeMap::new());
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The paths whose check thread is running right now, with how long it has
/// been running. A path listed for longer than its timeout is stuck in the
/// kernel (a hung mount); no new thread is started for it until it returns.
/// (The threads are named `bwk-path-check`.)
pub fn hung_path_checks() -> Vec<(PathBuf, Duration)> {
    in_flight()
        .iter()
        .map(|(p, since)| (p.clone(), since.elapsed()))
        .collect()
}

/// Removes the path from the in-flight set when the thread ends, however it
/// ends.
struct InFlight(PathBuf);

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight().remove(&self.0);
    }
}

pub(crate) async fn run(p: &PathProbe, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let shown = p.path.display().to_string();
    // One key per path however it is spelled (`/mnt/nas/`, `/mnt//nas`);
    // no syscall here: resolving symlinks could itself hang.
    let key: PathBuf = p.path.components().collect();
    {
        let mut map = in_flight();
        if let Some(since) = map.get(&key) {
            return ProbeResult::down(
                start.elapsed(),
                format!(
                    "{shown} did not answer: an earlier check has been stuck for {} (hung mount?); not starting another",
                    human(since.elapsed())
                ),
            );
        }
        map.insert(key.clone(), start);
    }
    let guard = InFlight(key);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spec = p.clone();
    let spawned = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            let outcome = check(&spec.path, spec.check);
            // Free the path *before* answering: a caller that checks again
            // as soon as it has the answer must not find it still in flight.
            drop(guard);
            // The probe may have given up waiting; then nobody listens.
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        // The closure (and the guard in it) was dropped: the path is free.
        return ProbeResult::down(
            start.elapsed(),
            format!("cannot start a thread to check {shown}: {e}"),
        );
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Ok(seen))) => ProbeResult::up(start.elapsed(), format!("{shown} {seen}")),
        Ok(Ok(Err(e))) => ProbeResult::down(start.elapsed(), e),
        Ok(Err(_)) => ProbeResult::down(
            start.elapsed(),
            format!("the check of {shown} ended without an answer"),
        ),
        Err(_) => ProbeResult::down(
            start.elapsed(),
            format!(
                "{shown} did not answer within {} (hung mount?)",
                human(timeout)
            ),
        ),
    }
}

/// The blocking part; Ok is the rest of an "up" sentence.
fn check(path: &Path, what: PathCheck) -> Result<String, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match what {
        PathCheck::Exists => format!("expected {shown} to exist, got: {e}"),
        PathCheck::Mountpoint => format!("expected {shown} to be a mountpoint, got: {e}"),
        PathCheck::Readable => format!("expected {shown} to be readable, got: {e}"),
    })?;
    let kind = if meta.is_dir() {
        "directory"
    } else if meta.is_file() {
        "file"
    } else {
        "special file"
    };
    match what {
        PathCheck::Exists => Ok(format!("exists ({kind})")),
        PathCheck::Mountpoint => {
            if is_mountpoint(path, &meta)? {
                Ok("is a mountpoint".into())
            } else {
                Err(format!("expected {shown} to be a mountpoint, got a plain {kind} (nothing mounted there)"))
            }
        }
        PathCheck::Readable => {
            let fail = |e: std::io::Error| format!("expected {shown} to be readable, got: {e}");
            if meta.is_dir() {
                let mut entries = std::fs::read_dir(path).map_err(fail)?;
                match entries.next() {
                    Some(Err(e)) => Err(fail(e)),
                    Some(Ok(_)) => Ok("is readable (directory listed)".into()),
                    None => Ok("is readable (empty directory)".into()),
                }
            } else {
                let mut f = std::fs::File::open(path).map_err(fail)?;
                let mut buf = [0u8; 4096];
                let n = f.read(&mut buf).map_err(fail)?;
                Ok(format!("is readable ({kind}, read {n} bytes)"))
            }
        }
    }
}

fn is_mountpoint(path: &Path, meta: &std::fs::Metadata) -> Result<bool, String> {
    let shown = path.display();
    let real = std::fs::canonicalize(path)
        .map_err(|e| format!("expected {shown} to be a mountpoint, got: {e}"))?;
    let Some(parent) = real.parent() else {
        return Ok(true); // "/"
    };
    let pmeta =
        std::fs::metadata(parent).map_err(|e| format!("cannot stat {}: {e}", parent.display()))?;
    if pmeta.dev() != meta.dev() {
        return Ok(true);
    }
    // Bind mounts of the same filesystem keep the device: ask the kernel.
    match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(text) => Ok(mountinfo_lists(&text, &real)),
        Err(_) => Ok(false),
    }
}

/// Whether `/proc/self/mountinfo` text has `path` as a mount point (field 5,
/// with `\040`-style octal escapes).
fn mountinfo_lists(text: &str, path: &Path) -> bool {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|field| Path::new(&unescape_octal(field)) == path)
}

fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = &bytes[i + 1..(i + 4).min(bytes.len())];
            if digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(b) = u8::try_from(v) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parsing() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 0:35 / /mnt/my\\040nas rw - nfs srv:/x rw\n";
        assert!(mountinfo_lists(text, Path::new("/mnt/my nas")));
        assert!(mountinfo_lists(text, Path::new("/")));
        assert!(!mountinfo_lists(text, Path::new("/mnt")));
        assert!(!mountinfo_lists("garbage\n\n", Path::new("/")));
    }

    #[test]
    fn unescape() {
        assert_eq!(unescape_octal("a\\040b"), "a b");
        assert_eq!(unescape_octal("tab\\011x"), "tab\tx");
        assert_eq!(unescape_octal("trail\\"), "trail\\");
        assert_eq!(unescape_octal("short\\04"), "short\\04");
        assert_eq!(unescape_octal("bad\\999"), "bad\\999");
    }

    #[test]
    fn relative_paths_are_refused() {
        assert!(PathProbe::new("relative/x", PathCheck::Exists)
            .validate()
            .is_err());
        assert!(PathProbe::new("", PathCheck::Exists).validate().is_err());
        PathProbe::new("/tmp", PathCheck::Exists)
            .validate()
            .unwrap();
    }
}
