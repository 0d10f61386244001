//! Certificates: days left from a DER certificate, PEM CA files.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

const SECONDS_PER_DAY: f64 = 86_400.0;

/// What we read from a leaf certificate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CertInfo {
    /// notAfter as a Unix timestamp (seconds).
    pub not_after: i64,
}

impl CertInfo {
    /// Days from `now` (Unix seconds) until notAfter; negative when expired.
    pub fn days_left(&self, now: i64) -> f64 {
        (self.not_after.saturating_sub(now)) as f64 / SECONDS_PER_DAY
    }

    /// notAfter as RFC 3339, for messages.
    pub fn not_after_text(&self) -> String {
        jiff::Timestamp::from_second(self.not_after)
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|_| format!("{}s after 1970", self.not_after))
    }
}

/// Parses a DER certificate (never panics on garbage).
pub(crate) fn parse(der: &[u8]) -> Result<CertInfo, String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => Ok(CertInfo {
            not_after: cert.validity().not_after.timestamp(),
        }),
        Err(e) => Err(format!("unreadable certificate: {e}")),
    }
}

/// The current Unix time in seconds.
pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// "expires in 3.0 days (2026-01-01 00:00 UTC)" / "expired 2.0 days ago (...)".
pub(crate) fn describe_days(days: f64, info: &CertInfo) -> String {
    if days >= 0.0 {
        format!(
            "certificate expires in {days:.1} days ({})",
            info.not_after_text()
        )
    } else {
        format!(
            "certificate expired {:.1} days ago ({})",
            -days,
            info.not_after_text()
        )
    }
}

/// Reads every certificate of a PEM file (at most 1 MiB).
pub(crate) fn read_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
    if meta.len() > 1 << 20 {
        return Err(format!("ca_file {} is larger than 1 MiB", path.display()));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    let certs = certs.map_err(|e| format!("ca_file {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("ca_file {} holds no certificate", path.display()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse(b"").is_err());
        assert!(parse(&[0x30, 0x82, 0xff, 0xff, 0x00]).is_err());
        assert!(parse(&[0u8; 64]).is_err());
    }

    #[test]
    fn days_left_sign() {
        let info = CertInfo {
            not_after: 1_000_000,
        };
        assert!((info.days_left(1_000_000 - 3 * 86_400) - 3.0).abs() < 1e-9);
        assert!(info.days_left(1_000_000 + 86_400) < 0.0);
        assert!(describe_days(-1.0, &info).contains("expired 1.0 days ago"));
        assert!(describe_days(3.0, &info).contains("expires in 3.0 days (1970-01-12"));
    }

    #[test]
    fn pem_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        assert!(read_pem_file(&missing)
            .unwrap_err()
            .contains("cannot read ca_file"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "hello\n").unwrap();
        assert!(read_pem_file(&empty)
            .unwrap_err()
            .contains("holds no certificate"));
    }
}
