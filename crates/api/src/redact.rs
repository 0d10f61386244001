//! The one URL redactor of the workspace.
//!
//! It lives here, in the leaf crate every other crate may depend on without
//! pulling anything new (`serde`, `serde_json`, `jiff` only), so that the
//! config model (`bulwark-config`) and the engine (`bulwark-engine`), which
//! must not depend on each other, share one implementation.

/// Hides the whole user information of `scheme://userinfo@host/…` — the user
/// name *and* the password — as `***`: `https://TOKEN@host/x` and
/// `https://alice:pw@host/x` both become `https://***@host/x`. A token is
/// often given as the user name, so the user name is a secret too.
///
/// The authority ends at the first `/`, `?` or `#` after `://` (RFC 3986),
/// so an `@` in the path or query is left alone. Text without `://` is
/// returned unchanged.
///
/// ```
/// use bulwark_api::redact_url;
/// assert_eq!(redact_url("https://alice:hunter2@hub:8000/x"), "https://***@hub:8000/x");
/// assert_eq!(redact_url("https://ghp_TOKEN@hub/x"), "https://***@hub/x");
/// assert_eq!(redact_url("https://hub/x@y"), "https://hub/x@y");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn hides_user_and_password() {
        for (url, want) in [
            ("https://u:pw@h:1/x", "https://***@h:1/x"),
            ("https://TOKEN@h/x", "https://***@h/x"),
            ("http://TOKEN@h", "http://***@h"),
            ("https://u:p@ss@h/x", "https://***@h/x"),
            ("https://:pw@h/", "https://***@h/"),
            ("https://u:pw@h?q=1", "https://***@h?q=1"),
            ("https://u:pw@h#f", "https://***@h#f"),
            ("https://h/x@y", "https://h/x@y"),
            ("https://h/x?u=a@b", "https://h/x?u=a@b"),
            ("https://h", "https://h"),
            ("/srv/backup", "/srv/backup"),
            ("", ""),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn no_secret_survives() {
        for url in [
            "https://SECRET@h/",
            "https://SECRET:x@h/",
            "https://x:SECRET@h/",
            "https://x:SECRET@h",
            "s3:https://SECRET:SECRET@h/b",
            "rest:https://SECRET@[::1]:80/r",
        ] {
            let out = redact_url(url);
            assert!(!out.contains("SECRET"), "{url} -> {out}");
        }
    }
}
