//! Repository addresses: local paths, `rest:` and `s3:` URLs.

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// Where a repository lives, as written by the user.
///
/// `Display` gives the user-facing form (`/path`, `rest:…`, `s3:…`); it and
/// `Debug` show a password embedded in a URL as `***`.
#[derive(Clone, PartialEq, Eq)]
pub enum RepoUrl {
    /// A local (or mounted) directory; always absolute after parsing.
    Local(PathBuf),
    /// A restic REST server / Bulwark hub: the URL after `rest:`.
    Rest(String),
    /// An S3-compatible bucket.
    S3 {
        /// `http(s)://host[:port]`
        endpoint: String,
        /// Bucket name.
        bucket: String,
        /// Prefix inside the bucket ("" for none).
        prefix: String,
    },
}

/// Checks `http(s)://host…`; never echoes the URL (it may hold a password).
fn check_http(url: &str, what: &str) -> Result<(), String> {
    let example = if what == "rest" {
        "rest:https://host:8000/repo"
    } else {
        "s3:https://s3.example.com/bucket"
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("`{what}:` must be followed by http:// or https://; e.g. {example}")
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("the {what} URL has no host; e.g. {example}"));
    }
    Ok(())
}

impl RepoUrl {
    /// Parses a repository address: a local path, `rest:http(s)://…` or
    /// `s3:http(s)://endpoint/bucket[/prefix]`. Relative local paths are
    /// resolved against `base_dir`. The error is one sentence, then `; ` and
    /// a hint; it never repeats the address (which may hold a password).
    pub fn parse(s: &str, base_dir: &Path) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the repository address is empty; give a path, rest:URL or s3:URL".into());
        }
        if let Some(url) = s.strip_prefix("rest:") {
            check_http(url, "rest")?;
            return Ok(Self::Rest(url.trim_end_matches('/').to_string()));
        }
        if let Some(url) = s.strip_prefix("s3:") {
            check_http(url, "s3")?;
            let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
            let mut parts = rest.splitn(3, '/');
            let host = parts.next().unwrap_or_default();
            let bucket = parts.next().unwrap_or_default();
            let prefix = parts.next().unwrap_or_default().trim_matches('/');
            if bucket.is_empty() {
                return Err(
                    "the s3 URL names no bucket; use s3:http(s)://endpoint/bucket[/prefix]".into(),
                );
            }
            return Ok(Self::S3 {
                endpoint: format!("{scheme}://{host}"),
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some((scheme, _)) = s.split_once(':') {
            if !scheme.contains('/') && scheme.len() > 1 {
                return Err(format!(
                    "unknown repository type `{scheme}:`; use a local path (write ./{scheme}:… for a relative one), rest:https://… or s3:https://…"
                ));
            }
        }
        let p = Path::new(s);
        Ok(Self::Local(if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        }))
    }

    /// The name under which `host` asks the hub for a lease on this
    /// repository: the address without credentials, lower-case host; a
    /// local path is qualified by the host (another host's `/srv/repo` is
    /// another repository). Agents and the hub both use this, so the hub
    /// can tell which repositories a host's own jobs use.
    pub fn lease_key(&self, host: &str) -> String {
        match self {
            Self::Local(p) => format!("local:{host}:{}", p.display()),
            Self::Rest(u) => {
                let (scheme, rest) = u.split_once("://").unwrap_or(("http", u));
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
                format!(
                    "rest:{scheme}://{}/{}",
                    host_port.to_ascii_lowercase(),
                    path.trim_end_matches('/')
                )
            }
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } => {
                let ep = endpoint
                    .split_once("://")
                    .map_or(endpoint.as_str(), |(_, r)| r);
                let ep = ep.rsplit_once('@').map_or(ep, |(_, h)| h);
                format!("s3:{ep}/{bucket}/{}", prefix.trim_matches('/'))
            }
        }
    }
}

/// Hides user name and password: the workspace's one redactor
/// ([`bulwark_api::redact_url`]).
fn redact(url: &str) -> String {
    bulwark_api::redact_url(url)
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Rest(u) => write!(f, "rest:{}", redact(u)),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } if prefix.is_empty() => write!(f, "s3:{}/{bucket}", redact(endpoint)),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } => write!(f, "s3:{}/{bucket}/{prefix}", redact(endpoint)),
        }
    }
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => f.debug_tuple("Local").field(p).finish(),
            Self::Rest(u) => f.debug_tuple("Rest").field(&redact(u)).finish(),
            Self::S3 {
                endpoint,
                bucket,
                prefix,
            } => f
                .debug_struct("S3")
                .field("endpoint", &redact(endpoint))
                .field("bucket", bucket)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lease_keys_carry_no_credentials() {
        let b = Path::new("/");
        let k = |s: &str| RepoUrl::parse(s, b).unwrap().lease_key("nas");
        assert_eq!(
            k("rest:https://u:pw@Hub:8000/nas/"),
            "rest:https://hub:8000/nas"
        );
        assert_eq!(k("/srv/repo"), "local:nas:/srv/repo");
        assert_eq!(k("s3:https://s3.example.com/b/p/"), "s3:s3.example.com/b/p");
    }

    #[test]
    fn redaction() {
        // User name and password are both hidden (a token is often given
        // as the user name).
        assert_eq!(redact("https://u:pw@h:1/x"), "https://***@h:1/x");
        assert_eq!(redact("https://TOKEN@h/x"), "https://***@h/x");
        assert_eq!(redact("https://h/x@y"), "https://h/x@y");
        for u in [
            RepoUrl::Rest("https://u:hunter2@h/x".into()),
            RepoUrl::Rest("https://hunter2@h/x".into()),
            RepoUrl::S3 {
                endpoint: "https://hunter2:x@h".into(),
                bucket: "b".into(),
                prefix: String::new(),
            },
        ] {
            assert!(!format!("{u:?}{u}").contains("hunter2"), "{u}");
        }
    }

    #[test]
    fn errors_do_not_echo_the_url() {
        for s in [
            "rest:ftp://u:hunter2@h",
            "s3:https://u:hunter2@h",
            "rest:https://u:hunter2@/x",
        ] {
            let e = RepoUrl::parse(s, Path::new("/")).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
