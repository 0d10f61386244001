//! Atomic file writes: temp file, fsync, rename, fsync the directory.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

use crate::error::{AgentError, Result};

/// Writes `bytes` to `path` so that a crash leaves either the old or the new
/// content, never a mix. `mode` is applied to the new file (e.g. 0o600).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    // `nas.token` has the parent "" (not "."): fsync "." then
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let io = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| AgentError::State {
            action,
            path: p,
            source,
        }
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("cannot create", &tmp))?;
    f.write_all(bytes).map_err(io("cannot write", &tmp))?;
    f.sync_all().map_err(io("cannot sync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io("cannot rename into", path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync", dir))?;
    Ok(())
}

/// Creates a directory (and parents) with mode 0700 for new ones.
pub fn private_dir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| AgentError::State {
            action: "cannot create",
            path: path.to_path_buf(),
            source,
        })
}

use std::os::unix::fs::DirBuilderExt;
