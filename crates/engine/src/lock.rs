//! restic-compatible repository locks.
//!
//! rustic_core 0.13 takes no locks, so a prune could delete data a running
//! backup is about to reference. Bulwark writes the same lock files restic
//! does (`locks/<sha256 of content>`, encrypted JSON with time, exclusive,
//! hostname, username, pid, uid, gid), so Bulwark and restic respect each
//! other: backups and reads take a shared lock, forget and prune an exclusive
//! one. A lock is stale after 30 minutes without refresh, or when its process
//! is gone on this host; locks are refreshed every 5 minutes while held.

use std::{
    path::PathBuf,
    sync::{mpsc, Arc, Mutex},
    thread::JoinHandle,
    time::Duration,
};

use aes256ctr_poly1305aes::{
    aead::{Aead, AeadInPlace},
    Aes256CtrPoly1305Aes,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, ErrorKind, Result},
    local::write_atomic,
    repo::{Location, Repo},
};

/// A lock as restic writes it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    /// When it was written (RFC 3339).
    pub time: String,
    /// Exclusive (forget, prune) or shared (backup, restore, ...).
    #[serde(default)]
    pub exclusive: bool,
    /// Host of the holder.
    #[serde(default)]
    pub hostname: String,
    /// User of the holder.
    #[serde(default)]
    pub username: String,
    /// Process id of the holder.
    #[serde(default)]
    pub pid: i64,
    /// Uid of the holder.
    #[serde(default)]
    pub uid: u32,
    /// Gid of the holder.
    #[serde(default)]
    pub gid: u32,
}

const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// Largest lock file read from a server, and largest decompressed lock
/// plaintext: a lock is a few hundred bytes of JSON.
const MAX_LOCK_BYTES: u64 = 1 << 20;
/// Largest `locks/` listing read from a server (about 11,000 entries).
const MAX_LISTING_BYTES: u64 = 1 << 20;

/// A lock file name: 64 lowercase hex digits (restic's SHA-256 names). Names
/// a server lists are checked with this before they go into a URL.
fn is_lock_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads at most `max` bytes of `body`; more is an error (a hostile or broken
/// server must not make us buffer without bound).
fn read_capped(body: impl std::io::Read, max: u64, what: &str) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    body.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::new(ErrorKind::Backend, format!("cannot read {what}: {e}")))?;
    if out.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::Backend,
            format!("{what} is larger than {max} bytes; the server is broken or hostile"),
        ));
    }
    Ok(out)
}
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

impl LockInfo {
    fn new(exclusive: bool) -> Self {
        let uid = nix::unistd::getuid();
        let username = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        Self {
            time: jiff::Zoned::now()
                .strftime("%Y-%m-%dT%H:%M:%S%.9f%:z")
                .to_string(),
            exclusive,
            hostname: hostname(),
            username,
            pid: i64::from(std::process::id()),
            uid: uid.as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        }
    }

    /// Stale: older than 30 minutes, or its process is gone on this host.
    pub fn is_stale(&self) -> bool {
        let age_ok = self
            .time
            .parse::<jiff::Timestamp>()
            .ok()
            .and_then(|t| jiff::Timestamp::now().duration_since(t).try_into().ok())
            .is_some_and(|d: Duration| d < STALE_AFTER);
        if !age_ok {
            return true;
        }
        if self.hostname == hostname() {
            if let Ok(pid) = i32::try_from(self.pid) {
                if pid > 0 {
                    return matches!(
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                        Err(nix::errno::Errno::ESRCH)
                    );
                }
            }
        }
        false
    }

    fn describe(&self) -> String {
        format!(
            "{} lock held by PID {} on {} (user {}) since {}",
            if self.exclusive { "an exclusive" } else { "a" },
            self.pid,
            self.hostname,
            if self.username.is_empty() {
                "?"
            } else {
                &self.username
            },
            self.time
        )
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// Raw access to the `locks/` directory of a repository.
#[derive(Debug, Clone)]
enum LockDir {
    Local(PathBuf),
    Rest {
        base: String,
        client: reqwest::blocking::Client,
    },
    /// Backends where we can't write locks yet (S3): locking is skipped.
    None,
}

fn http_err(e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Backend, format!("lock request failed: {e}"))
}

impl LockDir {
    fn for_location(loc: &Location) -> Result<Self> {
        crate::rest::install_tls_provider();
        Ok(match loc {
            Location::Local(p) => Self::Local(p.join("locks")),
            Location::Rest { url, ca_file } => Self::Rest {
                base: format!("{}/locks/", url.trim_end_matches('/')),
                client: crate::repo::http_client(ca_file.as_deref(), Duration::from_secs(60))?,
            },
            Location::S3 { .. } => Self::None,
        })
    }

    fn list(&self) -> Result<Vec<String>> {
        match self {
            Self::Local(dir) => match std::fs::read_dir(dir) {
                Ok(rd) => Ok(rd
                    .filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| is_lock_name(n))
                    .collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(Error::io("cannot list the repository's locks", &e)),
            },
            Self::Rest { base, client } => {
                let resp = client
                    .get(base)
                    .header("Accept", "application/vnd.x.restic.rest.v2")
                    .send()
                    .map_err(http_err)?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Vec::new());
                }
                let resp = resp.error_for_status().map_err(http_err)?;
                // v2 answers [{"name":…,"size":…}], v1 servers a list of names
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Item {
                    V2 { name: String },
                    V1(String),
                }
                let body = read_capped(resp, MAX_LISTING_BYTES, "the server's list of locks")?;
                let items: Vec<Item> = serde_json::from_slice(&body).map_err(http_err)?;
                let mut names = Vec::with_capacity(items.len());
                for Item::V2 { name } | Item::V1(name) in items {
                    if is_lock_name(&name) {
                        names.push(name);
                    } else {
                        // Never put a server's text into a URL unchecked.
                        tracing::warn!(
                            name = %name.escape_debug().to_string().chars().take(80).collect::<String>(),
                            "the server listed a lock name that is not 64 hex digits; ignored"
                        );
                    }
                }
                Ok(names)
            }
            Self::None => Ok(Vec::new()),
        }
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        if !is_lock_name(name) {
            return Ok(None);
        }
        match self {
            Self::Local(dir) => match std::fs::read(dir.join(name)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::io("cannot read a lock", &e)),
            },
            Self::Rest { base, client } => {
                let resp = client
                    .get(format!("{base}{name}"))
                    .send()
                    .map_err(http_err)?;
                if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                let resp = resp.error_for_status().map_err(http_err)?;
                Ok(Some(read_capped(resp, MAX_LOCK_BYTES, "a lock file")?))
            }
            Self::None => Ok(None),
        }
    }

    fn write(&self, name: &str, data: Vec<u8>) -> Result<()> {
        match self {
            Self::Local(dir) => write_atomic(dir, name, &[data.into()])
                .map_err(|e| Error::io("cannot write a lock file", &e)),
            Self::Rest { base, client } => {
                client
                    .post(format!("{base}{name}"))
                    .body(data)
                    .send()
                    .map_err(http_err)?
                    .error_for_status()
                    .map_err(http_err)?;
                Ok(())
            }
            Self::None => Ok(()),
        }
    }

    fn remove(&self, name: &str) {
        if !is_lock_name(name) {
            return;
        }
        match self {
            Self::Local(dir) => {
                let _ = std::fs::remove_file(dir.join(name));
            }
            Self::Rest { base, client } => {
                let _ = client.delete(format!("{base}{name}")).send();
            }
            Self::None => {}
        }
    }
}

/// Encrypts/decrypts lock files with the repository's master key.
#[derive(Clone)]
struct Crypto(aes256ctr_poly1305aes::Key);

impl Crypto {
    fn new(repo: &Repo) -> Self {
        let mk = repo.inner.key();
        let mut key = aes256ctr_poly1305aes::Key::default();
        key[0..32].copy_from_slice(&mk.encrypt);
        key[32..48].copy_from_slice(&mk.mac.k);
        key[48..64].copy_from_slice(&mk.mac.r);
        Self(key)
    }

    fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = aes256ctr_poly1305aes::aead::Nonce::<Aes256CtrPoly1305Aes>::default();
        nonce.copy_from_slice(&rand::random::<[u8; 16]>());
        let mut out = Vec::with_capacity(plain.len() + 32);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let tag = Aes256CtrPoly1305Aes::new(&self.0)
            .encrypt_in_place_detached(&nonce, &[], &mut out[16..])
            .map_err(|_| Error::new(ErrorKind::Internal, "cannot encrypt a lock"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    fn decrypt(&self, data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < 32 {
            return None;
        }
        let nonce =
            aes256ctr_poly1305aes::aead::Nonce::<Aes256CtrPoly1305Aes>::from_slice(&data[..16]);
        Aes256CtrPoly1305Aes::new(&self.0)
            .decrypt(nonce, &data[16..])
            .ok()
    }
}

/// Every lock this process holds, so an interrupt handler can release them
/// before exiting (`release_all_locks`).
static HELD: Mutex<Vec<(LockDir, CurrentLock)>> = Mutex::new(Vec::new());

/// The name of a held lock's current file (it changes on every refresh).
type CurrentLock = Arc<Mutex<Option<String>>>;

/// Deletes the lock files of every lock this process holds. For a Ctrl-C
/// handler that exits without unwinding; a normal exit releases locks by
/// dropping them.
pub fn release_all_locks() {
    if let Ok(held) = HELD.lock() {
        for (dir, current) in held.iter() {
            if let Some(name) = current.lock().ok().and_then(|mut c| c.take()) {
                dir.remove(&name);
            }
        }
    }
}

/// A held lock; released (its file deleted) when dropped.
pub struct RepoLock {
    dir: LockDir,
    current: CurrentLock,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RepoLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoLock")
            .field("current", &self.current)
            .finish()
    }
}

fn write_lock(dir: &LockDir, crypto: &Crypto, exclusive: bool) -> Result<String> {
    let json = serde_json::to_vec(&LockInfo::new(exclusive))
        .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
    let data = crypto.encrypt(&json)?;
    let name = hex::encode(Sha256::digest(&data));
    dir.write(&name, data)?;
    Ok(name)
}

/// Lock plaintext: JSON, or in repository format 2 a `0x02` byte followed by
/// zstd-compressed JSON (restic compresses it).
/// The decompressed JSON is capped at [`MAX_LOCK_BYTES`] (a zstd bomb is
/// treated as an unreadable lock).
fn parse_lock(plain: &[u8]) -> Option<LockInfo> {
    match plain.first()? {
        2 => {
            let decoder = zstd::stream::read::Decoder::new(&plain[1..]).ok()?;
            let json = read_capped(decoder, MAX_LOCK_BYTES, "a lock").ok()?;
            serde_json::from_slice(&json).ok()
        }
        _ => serde_json::from_slice(plain).ok(),
    }
}

impl Repo {
    /// Existing locks and whether each is stale (unreadable ones are skipped).
    pub fn locks(&self) -> Result<Vec<(String, LockInfo)>> {
        let dir = LockDir::for_location(self.location())?;
        let crypto = Crypto::new(self);
        let mut out = Vec::new();
        for name in dir.list()? {
            if let Some(data) = dir.read(&name)? {
                if let Some(info) = crypto.decrypt(&data).and_then(|p| parse_lock(&p)) {
                    out.push((name, info));
                }
            }
        }
        Ok(out)
    }

    /// Removes stale locks (all locks with `all`); returns how many.
    pub fn unlock(&self, all: bool) -> Result<usize> {
        let dir = LockDir::for_location(self.location())?;
        let mut n = 0;
        for (name, info) in self.locks()? {
            if all || info.is_stale() {
                dir.remove(&name);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Takes a shared or exclusive lock, like restic: write ours, then look
    /// for conflicting live locks; on conflict remove ours and fail with
    /// `ErrorKind::Locked`.
    pub fn lock(&self, exclusive: bool) -> Result<RepoLock> {
        let dir = LockDir::for_location(self.location())?;
        let crypto = Crypto::new(self);
        // Locks of crashed processes (ours or restic's) would block restic
        // forever (restic 0.14 never ignores stale locks); clear them.
        if let Ok(locks) = self.locks() {
            for (name, info) in locks.iter().filter(|(_, i)| i.is_stale()) {
                tracing::info!(lock = %name, pid = info.pid, host = %info.hostname, "removing stale lock");
                dir.remove(name);
            }
        }
        let ours = write_lock(&dir, &crypto, exclusive)?;
        let conflict = self.locks().map(|locks| {
            locks.into_iter().find(|(name, info)| {
                *name != ours && !info.is_stale() && (exclusive || info.exclusive)
            })
        });
        match conflict {
            Ok(None) => {}
            Ok(Some((_, info))) => {
                dir.remove(&ours);
                return Err(Error::new(ErrorKind::Locked, format!("the repository is in use: {}", info.describe()))
                    .hint("wait for that process to finish; if it is gone, remove its lock with `bulwark unlock`"));
            }
            Err(e) => {
                dir.remove(&ours);
                return Err(e);
            }
        }
        let current = Arc::new(Mutex::new(Some(ours)));
        let (tx, rx) = mpsc::channel::<()>();
        let refresher = {
            let (dir, current, crypto) = (dir.clone(), current.clone(), crypto.clone());
            std::thread::Builder::new()
                .name("bulwark-lock-refresh".into())
                .spawn(move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(REFRESH_EVERY)
                    {
                        if let Ok(new) = write_lock(&dir, &crypto, exclusive) {
                            if let Ok(mut cur) = current.lock() {
                                if let Some(old) = cur.replace(new) {
                                    dir.remove(&old);
                                }
                            }
                        }
                    }
                })
                .ok()
        };
        if let Ok(mut held) = HELD.lock() {
            held.push((dir.clone(), current.clone()));
        }
        Ok(RepoLock {
            dir,
            current,
            stop: Some(tx),
            refresher,
        })
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        if let Some(name) = self.current.lock().ok().and_then(|mut c| c.take()) {
            self.dir.remove(&name);
        }
        if let Ok(mut held) = HELD.lock() {
            held.retain(|(_, c)| !Arc::ptr_eq(c, &self.current));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::{
        io::{BufRead, BufReader, Write},
        net::TcpListener,
    };

    use super::*;

    const GOOD: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn lock_names() {
        assert!(is_lock_name(GOOD));
        for bad in [
            "",
            "../../config",
            &GOOD[..63],
            &GOOD.to_uppercase(),
            &format!("{}/x", &GOOD[..62]),
            &format!("{GOOD}0"),
        ] {
            assert!(!is_lock_name(bad), "{bad}");
        }
    }

    #[test]
    fn compressed_locks_are_capped() {
        let json = serde_json::to_vec(&LockInfo::new(false)).unwrap();
        let mut plain = vec![2];
        plain.extend(zstd::encode_all(&json[..], 3).unwrap());
        assert!(parse_lock(&plain).is_some());
        // A valid lock padded with 2 MiB of whitespace: compresses to a few
        // hundred bytes, decompresses past the cap, so it is not read.
        let mut bomb = json[..json.len() - 1].to_vec();
        bomb.extend(std::iter::repeat_n(b' ', 2 << 20));
        bomb.push(b'}');
        assert!(serde_json::from_slice::<LockInfo>(&bomb).is_ok());
        let mut plain = vec![2];
        plain.extend(zstd::encode_all(&bomb[..], 3).unwrap());
        assert!(plain.len() < 4096);
        assert!(parse_lock(&plain).is_none());
    }

    /// A hostile REST server: lists names that are paths, and answers a lock
    /// read with 2 MiB. Returns its base URL and the request lines it saw.
    fn hostile_server() -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                }
                log.lock().unwrap().push(first.trim().to_owned());
                let body: Vec<u8> = if first.starts_with("GET /r/locks/ ") {
                    format!(
                        r#"[{{"name":"../../data/{GOOD}","size":1}},{{"name":"{GOOD}","size":1}},{{"name":"x?y=1","size":1}}]"#
                    )
                    .into_bytes()
                } else {
                    vec![b'x'; 2 << 20]
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            }
        });
        (format!("http://{addr}/r/locks/"), seen)
    }

    #[test]
    fn hostile_rest_server() {
        let (base, seen) = hostile_server();
        let dir = LockDir::Rest {
            base,
            client: {
                crate::rest::install_tls_provider();
                reqwest::blocking::Client::new()
            },
        };
        // Only the well-formed name survives the listing.
        assert_eq!(dir.list().unwrap(), vec![GOOD.to_owned()]);
        // A 2 MiB "lock" is refused, not buffered.
        let err = dir.read(GOOD).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
        // A bad name never reaches the server.
        dir.remove("../../config");
        assert_eq!(dir.read("../../config").unwrap(), None);
        let seen = seen.lock().unwrap().clone();
        assert!(seen.iter().all(|l| !l.contains("..")), "{seen:?}");
    }
}
