//! Keyless integrity checks: re-hash stored files and compare with their names.
//!
//! Every file but `config` is named by the SHA-256 of its content, so
//! bit rot, truncation or a tampered file can be found without the
//! repository password. (This does not check that the repository is
//! *complete* — that needs the key; see `bulwark check`.)

use futures::StreamExt;
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};

use crate::{ErrorKind, FileRef, FileType, Name, Range, RepoPath, Result, Store};

/// What [`scrub_repo`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Files read to the end and hashed.
    pub checked: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Files whose content does not hash to their name.
    pub corrupt: Vec<(FileType, Name)>,
    /// Files that could not be read, with the reason.
    pub unreadable: Vec<(FileType, Name, String)>,
}

impl ScrubReport {
    /// True when nothing corrupt or unreadable was found.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.unreadable.is_empty()
    }
}

/// Streams `file` and returns its SHA-256 and length.
async fn hash_file(store: &dyn Store, repo: &RepoPath, file: &FileRef) -> Result<([u8; 32], u64)> {
    let mut stream = store.load(repo, file, Range::default()).await?;
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| crate::Error::new(ErrorKind::Io, format!("reading {repo}/{file}: {e}")))?;
        len += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hasher.finalize().into(), len))
}

/// True if the content of `tpe/name` in `repo` hashes to `name`.
pub async fn verify(
    store: &dyn Store,
    repo: &RepoPath,
    tpe: FileType,
    name: &Name,
) -> Result<bool> {
    let (hash, _) = hash_file(store, repo, &FileRef::Named(tpe, name.clone())).await?;
    Ok(hex::encode(hash) == name.as_str())
}

/// Re-hashes the files of every type in `repo`: all of them, or with
/// `sample = Some(f)` a random fraction `f` (0.0–1.0, at least one file per
/// non-empty type when `f > 0`). Files that vanish while scrubbing (e.g.
/// locks) are skipped; other read errors are reported as unreadable. Fails
/// only if a listing fails.
pub async fn scrub_repo(
    store: &dyn Store,
    repo: &RepoPath,
    sample: Option<f64>,
) -> Result<ScrubReport> {
    let mut report = ScrubReport::default();
    for tpe in FileType::ALL {
        let mut entries = store.list(repo, tpe).await?;
        if let Some(fraction) = sample {
            let fraction = if fraction.is_nan() {
                0.0
            } else {
                fraction.clamp(0.0, 1.0)
            };
            // The float-to-int cast saturates; the product is at most len.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let keep = (entries.len() as f64 * fraction).ceil() as usize;
            entries.shuffle(&mut rand::rng());
            entries.truncate(keep);
        }
        for entry in entries {
            let file = FileRef::Named(tpe, entry.name.clone());
            match hash_file(store, repo, &file).await {
                Ok((hash, len)) => {
                    report.checked += 1;
                    report.bytes += len;
                    if hex::encode(hash) != entry.name.as_str() {
                        tracing::warn!(
                            "{repo}/{file} is corrupt: its content does not hash to its name"
                        );
                        report.corrupt.push((tpe, entry.name));
                    }
                }
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!("{repo}/{file} is unreadable: {e}");
                    report.unreadable.push((tpe, entry.name, e.message));
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::{fs, sync::Arc};

    use bytes::Bytes;

    use super::*;
    use crate::local::LocalStore;

    fn body(data: Vec<u8>) -> crate::ByteStream {
        Box::pin(futures::stream::iter([Ok(Bytes::from(data))]))
    }

    fn name_of(data: &[u8]) -> Name {
        Name::parse(&hex::encode(Sha256::digest(data))).expect("hex digest is a name")
    }

    async fn setup() -> (
        tempfile::TempDir,
        Arc<LocalStore>,
        RepoPath,
        Vec<(FileType, Name)>,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(LocalStore::new(dir.path()).expect("store"));
        let repo = RepoPath::parse("alice/laptop").expect("repo");
        store.create_repo(&repo).await.expect("create");
        let mut files = Vec::new();
        for (i, tpe) in [
            FileType::Data,
            FileType::Data,
            FileType::Index,
            FileType::Snapshots,
            FileType::Keys,
        ]
        .into_iter()
        .enumerate()
        {
            let data: Vec<u8> = (0..1000 + i * 777).map(|j| (j * 31 + i) as u8).collect();
            let name = name_of(&data);
            store
                .save(
                    &repo,
                    &FileRef::Named(tpe, name.clone()),
                    body(data),
                    u64::MAX,
                )
                .await
                .expect("save");
            files.push((tpe, name));
        }
        (dir, store, repo, files)
    }

    #[tokio::test]
    async fn clean_repository_scrubs_clean() {
        let (_dir, store, repo, files) = setup().await;
        let report = scrub_repo(store.as_ref(), &repo, None)
            .await
            .expect("scrub");
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.checked, files.len() as u64);
        assert!(report.bytes > 5000);
        for (tpe, name) in &files {
            assert!(verify(store.as_ref(), &repo, *tpe, name)
                .await
                .expect("verify"));
        }
    }

    #[tokio::test]
    async fn flipped_byte_is_reported_corrupt() {
        let (dir, store, repo, files) = setup().await;
        let (tpe, name) = files[1].clone();
        assert_eq!(tpe, FileType::Data);
        let path = dir
            .path()
            .join("alice/laptop/data")
            .join(&name.as_str()[..2])
            .join(name.as_str());
        let mut content = fs::read(&path).expect("read pack");
        content[500] ^= 0x01;
        fs::write(&path, content).expect("write pack");

        assert!(!verify(store.as_ref(), &repo, tpe, &name)
            .await
            .expect("verify"));
        let report = scrub_repo(store.as_ref(), &repo, None)
            .await
            .expect("scrub");
        assert_eq!(report.corrupt, vec![(tpe, name)]);
        assert!(report.unreadable.is_empty(), "{report:?}");
        assert_eq!(report.checked, files.len() as u64);

        // Sampling everything finds it too; sampling nothing checks nothing.
        let full = scrub_repo(store.as_ref(), &repo, Some(1.0))
            .await
            .expect("scrub");
        assert_eq!(full.corrupt.len(), 1);
        let none = scrub_repo(store.as_ref(), &repo, Some(0.0))
            .await
            .expect("scrub");
        assert_eq!(none.checked, 0);
        let some = scrub_repo(store.as_ref(), &repo, Some(0.5))
            .await
            .expect("scrub");
        // ceil(2 * 0.5) data + 1 of each other non-empty type.
        assert_eq!(some.checked, 4);
    }

    #[tokio::test]
    async fn truncated_file_is_reported_corrupt() {
        let (dir, store, repo, files) = setup().await;
        let (tpe, name) = files[2].clone();
        let path = dir
            .path()
            .join("alice/laptop")
            .join(tpe.as_str())
            .join(name.as_str());
        let content = fs::read(&path).expect("read");
        fs::write(&path, &content[..10]).expect("truncate");
        let report = scrub_repo(store.as_ref(), &repo, None)
            .await
            .expect("scrub");
        assert_eq!(report.corrupt, vec![(tpe, name)]);
    }

    /// Delegates to a [`LocalStore`] but fails reading one file midway.
    #[derive(Debug)]
    struct FailingStore(Arc<LocalStore>, Name);

    #[async_trait::async_trait]
    impl Store for FailingStore {
        fn describe(&self) -> String {
            self.0.describe()
        }
        async fn create_repo(&self, repo: &RepoPath) -> Result<()> {
            self.0.create_repo(repo).await
        }
        async fn repo_exists(&self, repo: &RepoPath) -> Result<bool> {
            self.0.repo_exists(repo).await
        }
        async fn list_repos(&self) -> Result<Vec<RepoPath>> {
            self.0.list_repos().await
        }
        async fn list(&self, repo: &RepoPath, tpe: FileType) -> Result<Vec<crate::Entry>> {
            self.0.list(repo, tpe).await
        }
        async fn stat(&self, repo: &RepoPath, file: &FileRef) -> Result<Option<u64>> {
            self.0.stat(repo, file).await
        }
        async fn load(
            &self,
            repo: &RepoPath,
            file: &FileRef,
            range: Range,
        ) -> Result<crate::ByteStream> {
            let inner = self.0.load(repo, file, range).await?;
            if matches!(file, FileRef::Named(_, n) if *n == self.1) {
                let failing =
                    inner
                        .take(1)
                        .chain(futures::stream::iter([Err(std::io::Error::other(
                            "disk read error",
                        ))]));
                return Ok(Box::pin(failing));
            }
            Ok(inner)
        }
        async fn save(
            &self,
            repo: &RepoPath,
            file: &FileRef,
            body: crate::ByteStream,
            max_len: u64,
        ) -> Result<u64> {
            self.0.save(repo, file, body, max_len).await
        }
        async fn delete(&self, repo: &RepoPath, file: &FileRef) -> Result<()> {
            self.0.delete(repo, file).await
        }
    }

    #[tokio::test]
    async fn read_error_is_reported_unreadable() {
        let (_dir, store, repo, files) = setup().await;
        let (tpe, name) = files[3].clone();
        let failing = FailingStore(store, name.clone());
        let report = scrub_repo(&failing, &repo, None).await.expect("scrub");
        assert!(report.corrupt.is_empty(), "{report:?}");
        assert_eq!(report.unreadable.len(), 1, "{report:?}");
        assert_eq!(
            (report.unreadable[0].0, &report.unreadable[0].1),
            (tpe, &name)
        );
        assert!(
            report.unreadable[0].2.contains("disk read error"),
            "{report:?}"
        );
        assert_eq!(report.checked, files.len() as u64 - 1);
    }

    #[tokio::test]
    async fn missing_repository_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path()).expect("store");
        let repo = RepoPath::parse("nobody").expect("repo");
        let err = scrub_repo(&store, &repo, None).await.expect_err("no repo");
        assert_eq!(err.kind, ErrorKind::NotFound);
    }
}
