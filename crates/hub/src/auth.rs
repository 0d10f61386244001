//! HTTP Basic authentication against an htpasswd file (bcrypt entries),
//! reloaded when the file changes; a cache of verified credentials; failed
//! authentication rate limiting per source address; `htpasswd` editing.

use std::{
    collections::{HashMap, HashSet},
    io::Write,
    net::IpAddr,
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::HubError;

/// How often the htpasswd file's metadata is checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// Window for counting failed authentications.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a source address is refused once over the limit.
const BLOCK_FOR: Duration = Duration::from_secs(60);
/// Cap on the verified-credentials cache (cleared when full).
const CACHE_MAX: usize = 10_000;
/// A bcrypt hash of a random string, verified against when the user does
/// not exist, so unknown users cost as much time as wrong passwords.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        bcrypt::hash(
            hex::encode(rand::random::<[u8; 16]>()),
            bcrypt::DEFAULT_COST,
        )
        .unwrap_or_else(|_| {
            "$2b$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinv".to_owned()
        })
    })
}

/// Credentials taken from an `Authorization: Basic` header.
pub(crate) struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

/// Parses an `Authorization` header value. `None` for anything that is not
/// well-formed Basic credentials.
pub(crate) fn parse_basic(value: &[u8]) -> Option<Credentials> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some(Credentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// The bearer token of an `Authorization: Bearer` header.
pub(crate) fn parse_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    Some(rest.trim_ascii())
}

/// Compares two secrets in constant time (for equal lengths).
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Parses htpasswd text: `user:hash` lines; blank lines and `#` comments
/// ignored. Only bcrypt hashes (`$2a$`, `$2b$`, `$2y$`) are accepted.
pub fn parse_htpasswd(text: &str, path: &Path) -> Result<HashMap<String, String>, HubError> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: String| HubError::BadFile {
            path: path.to_path_buf(),
            message: format!("line {}: {message}", i + 1),
        };
        let Some((user, hash)) = line.split_once(':') else {
            return Err(bad("expected user:hash".into()));
        };
        if user.is_empty() {
            return Err(bad("empty user name".into()));
        }
        if !(hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$")) {
            return Err(bad(format!("the entry of user {user:?} is not a bcrypt hash (create entries with `bulwark hub passwd` or `htpasswd -B`)")));
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    mtime: Option<SystemTime>,
    size: u64,
    ino: u64,
}

#[derive(Debug)]
struct Loaded {
    users: Arc<HashMap<String, String>>,
    stamp: Option<FileStamp>,
}

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The credentials match the file.
    Valid,
    /// Unknown user or wrong password.
    Invalid,
    /// Too many password checks at once: refused without checking.
    Busy,
}

/// The htpasswd file, its users, and the cache of verified credentials.
///
/// The file is watched by a thread of its own (never on the async
/// runtime): a changed file is re-read and swapped in, and the cache of
/// verified credentials is emptied in the same step, so the very next
/// request is judged by the new file.
pub(crate) struct Htpasswd {
    inner: Arc<Inner>,
    /// Password checks admitted (running or waiting for a CPU slot).
    admitted: Arc<tokio::sync::Semaphore>,
    /// Password checks running at once.
    running: Arc<tokio::sync::Semaphore>,
    /// The cap of `admitted` (for the refusal's sentence).
    max_checks: usize,
}

struct Inner {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    /// SHA-256 of (user, password, stored hash) of credentials verified
    /// against the current file.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for Htpasswd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never the hashes nor the cache
        f.debug_struct("Htpasswd")
            .field("path", &self.inner.path)
            .field("max_checks", &self.max_checks)
            .finish_non_exhaustive()
    }
}

fn stamp(path: &Path) -> std::io::Result<FileStamp> {
    let m = std::fs::metadata(path)?;
    Ok(FileStamp {
        mtime: m.modified().ok(),
        size: m.len(),
        ino: m.ino(),
    })
}

fn load(path: &Path) -> Result<(HashMap<String, String>, FileStamp), HubError> {
    let before = stamp(path).map_err(|source| HubError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = std::fs::read_to_string(path).map_err(|source| HubError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((parse_htpasswd(&text, path)?, before))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Inner {
    /// Re-reads the file if its metadata changed (blocking: called from the
    /// watcher thread only). A file that became unreadable or invalid keeps
    /// the previous users (and is logged).
    fn reload_if_changed(&self) {
        let now = stamp(&self.path).ok();
        if now == lock(&self.loaded).stamp {
            return;
        }
        match load(&self.path) {
            Ok((users, st)) => {
                tracing::info!(
                    "reloaded {} user(s) from {}",
                    users.len(),
                    self.path.display()
                );
                let mut loaded = lock(&self.loaded);
                loaded.users = Arc::new(users);
                loaded.stamp = Some(st);
                // in the same critical section: no request sees the new
                // users with the old cache
                lock(&self.verified).clear();
            }
            Err(e) => {
                tracing::error!("keeping the previous users: {e}");
                lock(&self.loaded).stamp = now;
            }
        }
    }
}

impl Htpasswd {
    /// Loads `path` (it must exist and parse) and starts watching it; at
    /// most `max_checks` password checks are admitted at once (the rest are
    /// refused as [`Verdict::Busy`]).
    pub(crate) fn open(path: PathBuf, max_checks: usize) -> Result<Self, HubError> {
        let (users, st) = load(&path)?;
        tracing::info!("loaded {} user(s) from {}", users.len(), path.display());
        let inner = Arc::new(Inner {
            path,
            loaded: Mutex::new(Loaded {
                users: Arc::new(users),
                stamp: Some(st),
            }),
            verified: Mutex::new(HashSet::new()),
        });
        let weak = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("htpasswd-watch".into())
            .spawn(move || loop {
                std::thread::sleep(RELOAD_CHECK);
                // ends when the hub is gone
                let Some(inner) = weak.upgrade() else { return };
                inner.reload_if_changed();
            });
        if let Err(e) = spawned {
            return Err(HubError::Config(format!(
                "cannot start the thread that watches the htpasswd file: {e}"
            )));
        }
        let max_checks = max_checks.max(1);
        let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Ok(Self {
            inner,
            admitted: Arc::new(tokio::sync::Semaphore::new(max_checks)),
            running: Arc::new(tokio::sync::Semaphore::new(cpus.min(max_checks))),
            max_checks,
        })
    }

    /// The cap on password checks at once.
    pub(crate) fn max_checks(&self) -> usize {
        self.max_checks
    }

    /// The current users (as last loaded by the watcher).
    fn users(&self) -> Arc<HashMap<String, String>> {
        Arc::clone(&lock(&self.inner.loaded).users)
    }

    /// Whether the credentials match the file. bcrypt runs on the blocking
    /// pool, at most as many at once as there are CPUs, with at most
    /// `max_checks` admitted (running or waiting); beyond that the answer
    /// is [`Verdict::Busy`] at once. Successes are cached (keyed by a
    /// SHA-256 of user, password and stored hash, so a changed entry is
    /// verified again).
    pub(crate) async fn check(&self, creds: &Credentials) -> Verdict {
        let users = self.users();
        let (hash, known) = match users.get(&creds.user) {
            Some(h) => (h.clone(), true),
            None => (String::new(), false),
        };
        drop(users);
        let mut hasher = Sha256::new();
        for part in [
            creds.user.as_bytes(),
            creds.password.as_bytes(),
            hash.as_bytes(),
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        let key: [u8; 32] = hasher.finalize().into();
        if known && lock(&self.inner.verified).contains(&key) {
            return Verdict::Valid;
        }
        let Ok(_admitted) = Arc::clone(&self.admitted).try_acquire_owned() else {
            return Verdict::Busy;
        };
        let Ok(_running) = Arc::clone(&self.running).acquire_owned().await else {
            return Verdict::Busy;
        };
        let password = creds.password.clone();
        let hash2 = hash.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let hash = if known { hash2.as_str() } else { dummy_hash() };
            bcrypt::verify(password, hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if !(ok && known) {
            return Verdict::Invalid;
        }
        // still the same entry? (the file may have changed meanwhile)
        if self.users().get(&creds.user) != Some(&hash) {
            return Verdict::Invalid;
        }
        let mut verified = lock(&self.inner.verified);
        if verified.len() >= CACHE_MAX {
            verified.clear();
        }
        verified.insert(key);
        Verdict::Valid
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    window_start: Instant,
    count: u32,
    blocked_until: Option<Instant>,
    /// Insertion order (for evicting the oldest entry).
    seq: u64,
}

/// What the failure counter is keyed by: an IPv4 address, or the /64 of an
/// IPv6 address (one host usually holds a whole /64, so rotating addresses
/// inside it gains nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6Net(u64),
}

fn source_of(ip: IpAddr) -> Source {
    match ip {
        IpAddr::V4(a) => Source::V4(u32::from(a)),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Source::V4(u32::from(v4)),
            None => Source::V6Net((u128::from(a) >> 64) as u64),
        },
    }
}

#[derive(Debug, Default)]
struct Table {
    map: HashMap<Source, Failures>,
    order: std::collections::VecDeque<(Source, u64)>,
    next_seq: u64,
}

/// Counts failed authentications per source (IPv4 address or IPv6 /64).
/// The table holds at most `capacity` sources: expired entries go first,
/// then the oldest; it never grows past the cap.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: u32,
    capacity: usize,
    table: Mutex<Table>,
}

/// Default cap on the sources the failure counter remembers.
pub(crate) const LIMITER_CAPACITY: usize = 10_000;

impl RateLimiter {
    pub(crate) fn new(limit: u32) -> Self {
        Self::with_capacity(limit, LIMITER_CAPACITY)
    }

    pub(crate) fn with_capacity(limit: u32, capacity: usize) -> Self {
        Self {
            limit,
            capacity: capacity.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    /// How many sources the table holds now.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.table).map.len()
    }

    /// True while `ip` is refused.
    pub(crate) fn blocked(&self, ip: IpAddr) -> bool {
        if self.limit == 0 {
            return false;
        }
        lock(&self.table)
            .map
            .get(&source_of(ip))
            .and_then(|f| f.blocked_until)
            .is_some_and(|t| Instant::now() < t)
    }

    /// Records a failure; true if `ip` is now blocked.
    pub(crate) fn failed(&self, ip: IpAddr) -> bool {
        if self.limit == 0 {
            return false;
        }
        let now = Instant::now();
        let key = source_of(ip);
        let mut t = lock(&self.table);
        let t = &mut *t;
        if !t.map.contains_key(&key) {
            if t.map.len() >= self.capacity {
                let live = |f: &Failures| {
                    f.blocked_until.is_some_and(|b| now < b)
                        || now.duration_since(f.window_start) < FAILURE_WINDOW
                };
                t.map.retain(|_, f| live(f));
                // still full: evict the oldest
                while t.map.len() >= self.capacity {
                    let Some((k, seq)) = t.order.pop_front() else {
                        break;
                    };
                    if t.map.get(&k).is_some_and(|f| f.seq == seq) {
                        t.map.remove(&k);
                    }
                }
            }
            // forget order entries of removed sources now and then
            if t.order.len() > 2 * self.capacity {
                let map = &t.map;
                t.order
                    .retain(|(k, seq)| map.get(k).is_some_and(|f| f.seq == *seq));
            }
            let seq = t.next_seq;
            t.next_seq += 1;
            t.order.push_back((key, seq));
            t.map.insert(
                key,
                Failures {
                    window_start: now,
                    count: 0,
                    blocked_until: None,
                    seq,
                },
            );
        }
        let Some(f) = t.map.get_mut(&key) else {
            return false;
        };
        if now.duration_since(f.window_start) < FAILURE_WINDOW {
            f.count += 1;
        } else {
            f.window_start = now;
            f.count = 1;
        }
        if f.count >= self.limit {
            f.blocked_until = Some(now + BLOCK_FOR);
            f.count = 0;
            f.window_start = now;
            true
        } else {
            false
        }
    }
}

/// Adds or replaces `user`'s entry in the htpasswd file at `path` (created
/// if missing) with a bcrypt hash of `password`. The file is written
/// atomically (temporary file, fsync, rename, fsync of the directory) with
/// mode 0600. Returns true if the user existed.
pub fn set_password(path: &Path, user: &str, password: &str) -> Result<bool, HubError> {
    if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
        return Err(HubError::Config(format!(
            "invalid user name {user:?}: must be non-empty, without ':' or control characters"
        )));
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(HubError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    parse_htpasswd(&existing, path)?;
    let hash = bcrypt::hash(password, bcrypt::DEFAULT_COST)
        .map_err(|e| HubError::Config(format!("bcrypt: {e}")))?;
    let mut out = String::new();
    let mut found = false;
    for line in existing.lines() {
        if line.trim().split_once(':').is_some_and(|(u, _)| u == user) {
            if !found {
                out.push_str(&format!("{user}:{hash}\n"));
            }
            found = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !found {
        out.push_str(&format!("{user}:{hash}\n"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "htpasswd".into());
    let temp = dir.join(format!(".{file_name}.tmp-{:016x}", rand::random::<u64>()));
    let werr = |source| HubError::Write {
        path: path.to_path_buf(),
        source,
    };
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        f.write_all(out.as_bytes())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&temp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map_err(werr)?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parsing() {
        let enc = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let c = parse_basic(enc("alice:se:cret").as_bytes()).expect("valid");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "se:cret"));
        assert!(parse_basic(b"Basic").is_none());
        assert!(parse_basic(b"Basic !!!!").is_none());
        assert!(parse_basic(b"Bearer abc").is_none());
        assert!(parse_basic(enc("nocolon").as_bytes()).is_none());
        assert!(parse_basic(enc(":pw").as_bytes()).is_none());
        assert!(parse_basic(&[0xff, 0xfe]).is_none());
        assert_eq!(parse_bearer(b"Bearer  tok "), Some(&b"tok"[..]));
    }

    #[test]
    fn dummy_hash_is_valid_bcrypt() {
        assert!(!bcrypt::verify("x", dummy_hash()).expect("valid hash"));
    }

    #[test]
    fn htpasswd_rejects_non_bcrypt() {
        let p = Path::new("h");
        assert!(parse_htpasswd("alice:{SHA}abc\n", p).is_err());
        assert!(parse_htpasswd("# c\n\nalice:$2y$05$abc\n", p).is_ok());
    }

    #[test]
    fn rate_limiter_keys_by_ipv6_64_and_never_outgrows_its_cap() {
        let rl = RateLimiter::with_capacity(2, 100);
        // rotating addresses inside one /64 is one source
        for i in 0..10u16 {
            rl.failed(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i).into());
        }
        assert!(rl.blocked(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 1).into()));
        assert!(!rl.blocked(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1).into()));
        // IPv4-mapped IPv6 is the IPv4 address
        let v4: IpAddr = [10, 0, 0, 1].into();
        rl.failed(v4);
        rl.failed(std::net::Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().into());
        assert!(rl.blocked(v4));
        // 100,000 distinct sources: the table stays at its cap
        for i in 0..100_000u32 {
            rl.failed(std::net::Ipv4Addr::from(0x0b00_0000 + i).into());
            assert!(rl.len() <= 100);
        }
        assert_eq!(rl.len(), 100);
        // the newest is remembered: its second failure blocks it
        assert!(rl.failed(std::net::Ipv4Addr::from(0x0b00_0000 + 99_999).into()));
        assert!(!rl.blocked(v4), "the oldest entry was evicted");
    }

    #[test]
    fn rate_limiter_blocks_after_limit() {
        let rl = RateLimiter::new(3);
        let ip: IpAddr = [127, 0, 0, 9].into();
        assert!(!rl.failed(ip));
        assert!(!rl.failed(ip));
        assert!(!rl.blocked(ip));
        assert!(rl.failed(ip));
        assert!(rl.blocked(ip));
        assert!(!rl.blocked([127, 0, 0, 10].into()));
    }

    #[test]
    fn set_password_adds_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("htpasswd");
        assert!(!set_password(&p, "alice", "one").expect("add"));
        assert!(!set_password(&p, "bob", "two").expect("add"));
        assert!(set_password(&p, "alice", "three").expect("replace"));
        let users = parse_htpasswd(&std::fs::read_to_string(&p).expect("read"), &p).expect("parse");
        assert_eq!(users.len(), 2);
        assert!(bcrypt::verify("three", &users["alice"]).expect("verify"));
        assert!(bcrypt::verify("two", &users["bob"]).expect("verify"));
        let mode = std::fs::metadata(&p).expect("meta").mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(set_password(&p, "a:b", "x").is_err());
    }
}
