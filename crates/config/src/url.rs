//! Repository addresses: local paths, `rest:` and `s3:` URLs.

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// Where a repository lives, as written by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
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

fn check_http(url: &str, what: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{what} must start with http:// or https://, e.g. `{what}:https://host:8000/repo`"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{what} URL `{url}` has no host"));
    }
    Ok(())
}

impl RepoUrl {
    /// Parses a repository address. Relative local paths are resolved
    /// against `base_dir`.
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
                return Err(format!("s3 URL `{s}` names no bucket; use s3:http(s)://endpoint/bucket[/prefix]"));
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
                    "unknown repository type `{scheme}:`; use a local path, rest:https://… or s3:https://…"
                ));
            }
        }
        let p = Path::new(s);
        Ok(Self::Local(if p.is_absolute() { p.to_path_buf() } else { base_dir.join(p) }))
    }
}

fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let end = rest.find('/').unwrap_or(rest.len());
    match rest[..end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[end..])
        }
        None => url.to_string(),
    }
}

impl fmt::Display for RepoUrl {
    /// The user-facing form; a password inside a rest URL shows as `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local(p) => write!(f, "{}", p.display()),
            Self::Rest(u) => write!(f, "rest:{}", redact(u)),
            Self::S3 { endpoint, bucket, prefix } if prefix.is_empty() => write!(f, "s3:{endpoint}/{bucket}"),
            Self::S3 { endpoint, bucket, prefix } => write!(f, "s3:{endpoint}/{bucket}/{prefix}"),
        }
    }
}
