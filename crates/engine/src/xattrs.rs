//! Extended attributes: read for the directories the engine records itself,
//! and set again on restore.
//!
//! Restored: `user.*` always; as root also `security.capability` (file
//! capabilities, e.g. `ping`'s `cap_net_raw`) and the POSIX ACLs
//! `system.posix_acl_access` / `system.posix_acl_default`. Other namespaces
//! (`trusted.*`, `security.selinux`, ...) belong to the system restored onto
//! and are left alone. Nothing here follows a symlink.

use std::path::Path;

use base64::Engine;

/// The extended attributes of `path` itself (a symlink is not followed), as
/// the JSON of a tree node's `extended_attributes` (value in base64): rustic
/// does not export its attribute type, so the caller deserializes this into
/// the node's field. A file system without xattr support, or one that
/// refuses to list them, gives none — as rustic_core does for every other
/// node.
pub(crate) fn read(path: &Path) -> serde_json::Value {
    let Ok(names) = xattr::list(path) else {
        return serde_json::Value::Array(Vec::new());
    };
    names
        .filter_map(|name| {
            let value = xattr::get(path, &name).ok()?;
            Some(serde_json::json!({
                "name": name.to_string_lossy(),
                "value": value.map(|v| base64::engine::general_purpose::STANDARD.encode(v)),
            }))
        })
        .collect()
}

/// Whether an attribute with this name is set again on restore.
pub(crate) fn restorable(name: &str, as_root: bool) -> bool {
    name.starts_with("user.")
        || (as_root
            && matches!(
                name,
                "security.capability" | "system.posix_acl_access" | "system.posix_acl_default"
            ))
}

/// Sets the restorable attributes of `attrs` (name, value) on `dest` (not
/// following a symlink). Returns one message per attribute that could not be
/// set.
pub(crate) fn restore<'a>(
    dest: &Path,
    attrs: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
    as_root: bool,
) -> Vec<String> {
    attrs
        .filter(|(name, _)| restorable(name, as_root))
        .filter_map(|(name, value)| {
            xattr::set(dest, name, value.unwrap_or_default())
                .err()
                .map(|e| format!("extended attribute {name}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::restorable;

    #[test]
    fn which_attributes_are_restored() {
        assert!(restorable("user.comment", false));
        assert!(!restorable("security.capability", false));
        assert!(restorable("security.capability", true));
        assert!(restorable("system.posix_acl_access", true));
        assert!(restorable("system.posix_acl_default", true));
        assert!(!restorable("security.selinux", true));
        assert!(!restorable("trusted.overlay.opaque", true));
    }
}
