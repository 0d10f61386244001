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
    checked: Instant,
}

/// The htpasswd file, its users, and the cache of verified credentials.
#[derive(Debug)]
pub(crate) struct Htpasswd {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    /// SHA-256 of (user, password, stored hash) of credentials verified
    /// against the current file.
    verified: Mutex<HashSet<[u8; 32]>>,
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

impl Htpasswd {
    /// Loads `path` (it must exist and parse).
    pub(crate) fn open(path: PathBuf) -> Result<Self, HubError> {
        let (users, st) = load(&path)?;
        tracing::info!("loaded {} user(s) from {}", users.len(), path.display());
        Ok(Self {
            path,
            loaded: Mutex::new(Loaded {
                users: Arc::new(users),
                stamp: Some(st),
                checked: Instant::now(),
            }),
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// The current users, reloading the file if it changed (checked at most
    /// once a second). A file that became unreadable or invalid keeps the
    /// previous users (and is logged).
    fn users(&self) -> Arc<HashMap<String, String>> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.checked.elapsed() >= RELOAD_CHECK {
            loaded.checked = Instant::now();
            let now = stamp(&self.path).ok();
            if now != loaded.stamp {
                match load(&self.path) {
                    Ok((users, st)) => {
                        tracing::info!(
                            "reloaded {} user(s) from {}",
                            users.len(),
                            self.path.display()
                        );
                        loaded.users = Arc::new(users);
                        loaded.stamp = Some(st);
                        self.verified
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .clear();
                    }
                    Err(e) => {
                        tracing::error!("keeping the previous users: {e}");
                        loaded.stamp = now;
                    }
                }
            }
        }
        Arc::clone(&loaded.users)
    }

    /// True if the credentials match the file. bcrypt runs on the blocking
    /// pool; successes are cached (keyed by a SHA-256 of user, password and
    /// stored hash, so a changed entry is verified again).
    pub(crate) async fn check(&self, creds: &Credentials) -> bool {
        let users = self.users();
        let (hash, known) = match users.get(&creds.user) {
            Some(h) => (h.clone(), true),
            None => (String::new(), false),
        };
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
        if known
            && self
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&key)
        {
            return true;
        }
        let password = creds.password.clone();
        let hash2 = hash.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let hash = if known { hash2.as_str() } else { dummy_hash() };
            bcrypt::verify(password, hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if ok && known {
            let mut verified = self
                .verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if verified.len() >= CACHE_MAX {
                verified.clear();
            }
            verified.insert(key);
        }
        ok && known
    }
}

#[derive(Debug, Default)]
struct Failures {
    window_start: Option<Instant>,
    count: u32,
    blocked_until: Option<Instant>,
}

/// Counts failed authentications per source address.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: u32,
    map: Mutex<HashMap<IpAddr, Failures>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// True while `ip` is refused.
    pub(crate) fn blocked(&self, ip: IpAddr) -> bool {
        if self.limit == 0 {
            return false;
        }
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&ip)
            .and_then(|f| f.blocked_until)
            .is_some_and(|t| Instant::now() < t)
    }

    /// Records a failure; true if `ip` is now blocked.
    pub(crate) fn failed(&self, ip: IpAddr) -> bool {
        if self.limit == 0 {
            return false;
        }
        let now = Instant::now();
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 10_000 {
            map.retain(|_, f| {
                f.blocked_until.is_some_and(|t| now < t)
                    || f.window_start
                        .is_some_and(|s| now.duration_since(s) < FAILURE_WINDOW)
            });
        }
        let f = map.entry(ip).or_default();
        match f.window_start {
            Some(s) if now.duration_since(s) < FAILURE_WINDOW => f.count += 1,
            _ => {
                f.window_start = Some(now);
                f.count = 1;
            }
        }
        if f.count >= self.limit {
            f.blocked_until = Some(now + BLOCK_FOR);
            f.count = 0;
            f.window_start = None;
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
