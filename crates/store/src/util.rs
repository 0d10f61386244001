//! Small helpers shared by the implementations.

use crate::{Error, ErrorKind, Range, Result};

/// Turns `range` into `(offset, length)` for a file of `size` bytes: an
/// offset past the end is [`ErrorKind::RangeNotSatisfiable`] (an offset equal
/// to the size gives an empty read, so a zero-byte file can be read), a
/// length past the end is cut.
pub(crate) fn resolve_range(
    size: u64,
    range: Range,
    what: &dyn std::fmt::Display,
) -> Result<(u64, u64)> {
    if range.offset > size {
        return Err(Error::new(
            ErrorKind::RangeNotSatisfiable,
            format!(
                "range starting at byte {} is past the end of {what} ({size} bytes)",
                range.offset
            ),
        ));
    }
    let left = size - range.offset;
    let length = range.length.map_or(left, |l| l.min(left));
    Ok((range.offset, length))
}

/// The error for a body that grew past `max_len`.
pub(crate) fn too_large(what: &dyn std::fmt::Display, max_len: u64) -> Error {
    Error::new(
        ErrorKind::TooLarge,
        format!("upload of {what} is larger than the allowed {max_len} bytes"),
    )
}

/// The error for content whose SHA-256 is not its name.
pub(crate) fn hash_mismatch(what: &dyn std::fmt::Display, actual: &str) -> Error {
    Error::new(
        ErrorKind::HashMismatch,
        format!("content of {what} has SHA-256 {actual}, not its name"),
    )
}

/// The error for a failing upload body.
pub(crate) fn body_error(what: &dyn std::fmt::Display, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Body,
        format!("reading the upload of {what} failed: {e}"),
    )
}

/// The error for a file that is already there.
pub(crate) fn already_exists(what: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!("{what} already exists and files are never overwritten"),
    )
}

/// The error for a missing file.
pub(crate) fn not_found(what: &dyn std::fmt::Display) -> Error {
    Error::new(ErrorKind::NotFound, format!("{what} does not exist"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |offset, length| Range { offset, length };
        assert_eq!(resolve_range(10, r(0, None), &"f").ok(), Some((0, 10)));
        assert_eq!(resolve_range(10, r(3, Some(4)), &"f").ok(), Some((3, 4)));
        assert_eq!(resolve_range(10, r(8, Some(4)), &"f").ok(), Some((8, 2)));
        assert_eq!(resolve_range(10, r(10, None), &"f").ok(), Some((10, 0)));
        assert_eq!(resolve_range(0, r(0, None), &"f").ok(), Some((0, 0)));
        assert_eq!(
            resolve_range(10, r(11, None), &"f")
                .map_err(|e| e.kind)
                .err(),
            Some(ErrorKind::RangeNotSatisfiable)
        );
    }
}
