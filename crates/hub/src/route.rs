//! Request paths → what they address.
//!
//! The path is percent-decoded once, split at `/`, and every piece is
//! validated by [`RepoPath::parse`] / [`Name::parse`], so `..`, `%2e%2e`,
//! backslashes, NUL bytes and the like never reach the store.

use bulwark_store::{FileType, Name, RepoPath};

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/metrics`.
    Metrics,
    /// `/{repo}/` (create with `?create=true`, or delete).
    Repo(RepoPath),
    /// `/{repo}/config`.
    Config(RepoPath),
    /// `/{repo}/{type}/`.
    List(RepoPath, FileType),
    /// `/{repo}/{type}/{name}`.
    File(RepoPath, FileType, Name),
}

impl Target {
    /// The repository addressed, if any.
    pub fn repo(&self) -> Option<&RepoPath> {
        match self {
            Target::Metrics => None,
            Target::Repo(r) | Target::Config(r) | Target::List(r, _) | Target::File(r, _, _) => {
                Some(r)
            }
        }
    }
}

/// Why a path is refused (always 400 or 404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPath(pub String);

/// Parses the raw (still percent-encoded) path of a request.
pub fn parse(raw: &str) -> Result<Target, BadPath> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| BadPath("the path is not valid UTF-8".into()))?;
    if decoded
        .bytes()
        .any(|b| b == 0 || b == b'\\' || b.is_ascii_control())
    {
        return Err(BadPath(
            "the path contains control characters or backslashes".into(),
        ));
    }
    let Some(rest) = decoded.strip_prefix('/') else {
        return Err(BadPath("the path must start with '/'".into()));
    };
    if rest == "metrics" {
        return Ok(Target::Metrics);
    }
    let (rest, trailing_slash) = match rest.strip_suffix('/') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let mut segs: Vec<&str> = rest.split('/').collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(BadPath("empty path segment".into()));
    }
    let repo_of = |segs: &[&str]| RepoPath::parse(&segs.join("/")).map_err(|e| BadPath(e.message));
    let last = segs.pop().unwrap_or_default();
    if last == "config" && !trailing_slash && !segs.is_empty() {
        return Ok(Target::Config(repo_of(&segs)?));
    }
    if let Some(tpe) = FileType::parse(last) {
        if !segs.is_empty() {
            if !trailing_slash {
                // `/{repo}/data` without the slash: restic always sends it.
                return Err(BadPath(format!("listing {last} needs a trailing '/'")));
            }
            return Ok(Target::List(repo_of(&segs)?, tpe));
        }
    }
    if segs.len() >= 2 {
        if let Some(tpe) = FileType::parse(segs[segs.len() - 1]) {
            if trailing_slash {
                return Err(BadPath("a file path must not end with '/'".into()));
            }
            let name = Name::parse(last).map_err(|e| BadPath(e.message))?;
            segs.pop();
            return Ok(Target::File(repo_of(&segs)?, tpe, name));
        }
    }
    segs.push(last);
    Ok(Target::Repo(repo_of(&segs)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn good_paths() {
        let r = |s: &str| RepoPath::parse(s).expect("repo");
        assert_eq!(parse("/alice/"), Ok(Target::Repo(r("alice"))));
        assert_eq!(parse("/alice/laptop/"), Ok(Target::Repo(r("alice/laptop"))));
        assert_eq!(parse("/alice/laptop"), Ok(Target::Repo(r("alice/laptop"))));
        assert_eq!(parse("/alice/config"), Ok(Target::Config(r("alice"))));
        assert_eq!(
            parse("/alice/laptop/data/"),
            Ok(Target::List(r("alice/laptop"), FileType::Data))
        );
        let n = Name::parse(H).expect("name");
        assert_eq!(
            parse(&format!("/a/b/locks/{H}")),
            Ok(Target::File(r("a/b"), FileType::Locks, n.clone()))
        );
        assert_eq!(
            parse(&format!("/a/keys/{H}")),
            Ok(Target::File(r("a"), FileType::Keys, n))
        );
        assert_eq!(parse("/metrics"), Ok(Target::Metrics));
    }

    #[test]
    fn hostile_paths() {
        for p in [
            "/",
            "//",
            "/../etc/passwd",
            "/alice/../bob/config",
            "/%2e%2e/config",
            "/alice/%2e%2e/config",
            "/alice%2f..%2fbob/config",
            "/alice/%00/config",
            "/alice\\..\\bob/config",
            "/.htpasswd",
            "/a/b/c/config",
            "/a/data/xyz",
            &format!("/a/data/{}", &H[..63]),
            &format!("/a/data/{}", H.to_uppercase()),
            &format!("/a/secrets/{H}"),
            "/a/data",
            "/a/%ff/config",
            "relative/config",
            "/config",
            "/data/",
        ] {
            assert!(parse(p).is_err(), "{p} was accepted: {:?}", parse(p));
        }
    }
}
