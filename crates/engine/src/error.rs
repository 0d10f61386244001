//! Engine errors: a small set of kinds the CLI maps to exit codes, plus a
//! human sentence and a hint that says how to fix the problem.

use std::fmt;

/// What went wrong, coarsely. Callers branch on this (exit codes, retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The repository does not exist (no `config` file at the location).
    RepoNotFound,
    /// The password does not open any key of the repository.
    WrongPassword,
    /// Another process holds a lock that conflicts with this operation.
    Locked,
    /// The storage backend could not be reached or answered with an error.
    Backend,
    /// The server (a hub, a REST server) refused the credentials (HTTP 401).
    Unauthorized,
    /// The credentials are valid but lack the access needed (HTTP 403).
    Forbidden,
    /// A local file or directory could not be read or written.
    Io,
    /// The caller asked for something that does not make sense (bad snapshot id, bad path, ...).
    InvalidInput,
    /// The repository content is damaged (bad MAC, missing pack, bad tree).
    Damaged,
    /// The operation was interrupted (Ctrl-C, SIGTERM).
    Interrupted,
    /// The reader of our output went away (`bulwark dump … | head`); not a failure.
    OutputClosed,
    /// A bug or an unexpected state; the message says what happened.
    Internal,
}

/// An engine error: a kind, one sentence naming the problem, and an optional fix.
#[derive(Debug, Clone)]
pub struct Error {
    /// The coarse category.
    pub kind: ErrorKind,
    /// One sentence naming the problem.
    pub message: String,
    /// How to fix it, when we know.
    pub hint: Option<String>,
}

impl Error {
    /// Creates an error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint telling the user how to fix the problem.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Converts a rustic_core error, keeping its text but classifying it.
    pub(crate) fn from_rustic(context: &str, err: &rustic_core::RusticError) -> Self {
        let log = err.display_log();
        // rustic_core exposes its error kind only through the text
        // ("... (kind: related to the backend, code: C002)").
        let kind_text = log
            .split("(kind: related to ")
            .nth(1)
            .and_then(|rest| rest.split([',', ')']).next())
            .unwrap_or("");
        let kind = if err.is_incorrect_password() {
            ErrorKind::WrongPassword
        } else {
            match kind_text {
                "credentials handling" | "a key" => ErrorKind::WrongPassword,
                "the backend" => ErrorKind::Backend,
                "input/output operations" => ErrorKind::Io,
                "invalid user input"
                | "missing user input"
                | "the configuration"
                | "unsupported operations" => ErrorKind::InvalidInput,
                "cryptographic operations" | "verification" | "the repository" => {
                    ErrorKind::Damaged
                }
                _ => ErrorKind::Internal,
            }
        };
        let text = summarize(&log);
        Self::new(kind, format!("{context}: {text}"))
    }

    pub(crate) fn io(context: impl fmt::Display, err: &std::io::Error) -> Self {
        let kind = if err.kind() == std::io::ErrorKind::Interrupted {
            ErrorKind::Interrupted
        } else {
            ErrorKind::Io
        };
        let mut e = Self::new(kind, format!("{context}: {err}"));
        if err.raw_os_error() == Some(28) {
            e = e.hint("the disk is full: free some space (or restore to another disk) and run the command again");
        } else if err.kind() == std::io::ErrorKind::PermissionDenied {
            e = e.hint("check the permissions, or run as a user who may access this path");
        }
        e
    }
}

/// rustic's log text is long; keep the sentence a user can act on and the cause.
fn summarize(log: &str) -> String {
    let text = log.strip_prefix("Error: ").unwrap_or(log);
    let (head, cause) = match text.split_once(" (kind: related to ") {
        Some((head, rest)) => (head, rest.split_once(": caused by: ").map(|(_, c)| c)),
        None => (text, None),
    };
    let mut out = head
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(cause) = cause {
        out.push_str(" (");
        out.push_str(cause.trim());
        out.push(')');
    }
    one_line(&out)
}

/// Makes any error text one line a person can read: rustic_core's
/// multi-section reports ("Message:", "Context:", "Caused by:",
/// "Backtrace:") become `what: message (cause)`; other multi-line text is
/// joined; the result is capped so a damaged repository can't flood the
/// terminal.
pub(crate) fn one_line(text: &str) -> String {
    #[derive(PartialEq)]
    enum Sec {
        Head,
        Message,
        Cause,
        Skip,
    }
    let mut sec = Sec::Head;
    let (mut head, mut message, mut cause) = (Vec::new(), Vec::new(), None);
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line {
            "Message:" => sec = Sec::Message,
            "Caused by:" => sec = Sec::Cause,
            "Context:" | "Backtrace:" => sec = Sec::Skip,
            l if l.starts_with("Some additional details")
                || l.starts_with("For more information") =>
            {
                if l.starts_with("Some") {
                    sec = Sec::Skip;
                }
            }
            l => match sec {
                Sec::Head => head.push(l),
                Sec::Message => message.push(l),
                Sec::Cause if cause.is_none() => cause = Some(l),
                _ => {}
            },
        }
    }
    let mut out = head.join(" ");
    if let Some(at) = out.find("`rustic_core` experienced") {
        out.truncate(at);
    }
    let mut out = out.trim_end().trim_end_matches(['(', ':', ' ']).to_string();
    if !message.is_empty() {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(message.join(" ").trim_end_matches('.'));
    }
    if let Some(c) = cause {
        out.push_str(" (");
        out.push_str(c);
        out.push(')');
    }
    const MAX: usize = 400;
    if out.chars().count() > MAX {
        out = out.chars().take(MAX).collect::<String>() + "…";
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Engine result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs `f`, turning a panic inside rustic_core into an `Internal`/`Damaged` error
/// instead of taking the process down. Damaged repositories must never crash us.
pub(crate) fn guard<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Error::new(
                ErrorKind::Damaged,
                format!("{what} failed inside the storage engine: {msg}"),
            )
            .hint("the repository may be damaged: run `bulwark check --read-data` to find out"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn rustic_reports_become_one_line() {
        let text = "chunk e6 could not be read: error processing Pack:66 (`rustic_core` experienced an error related to `cryptographic operations`.\n\nMessage:\nData decryption failed, MAC check failed.\n\nFor more information, see: https://rustic.cli.rs/docs/errors/C001\n\n\nSome additional details ...\n\nContext:\n- nonce: [1, 2]\n\nCaused by:\naead::Error\n\n\nBacktrace:\ndisabled backtrace\n";
        assert_eq!(one_line(text), "chunk e6 could not be read: error processing Pack:66: Data decryption failed, MAC check failed (aead::Error)");
    }

    #[test]
    fn plain_text_is_kept_and_long_text_is_capped() {
        assert_eq!(
            one_line("cannot open x: No such file"),
            "cannot open x: No such file"
        );
        assert_eq!(one_line("a\n  b"), "a b");
        assert!(one_line(&"x".repeat(5000)).chars().count() <= 401);
    }
}
