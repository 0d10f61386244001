//! Records the real size of streamed files (command sources) in a snapshot.
//!
//! rustic_core 0.13 takes a file node's size from the source *before* it
//! reads the content and never updates it. A streamed file's size is unknown
//! until the stream ends, so it is recorded as 0 — and restic's `restore`
//! creates files of size 0 empty without reading their content. After such a
//! backup we rewrite the trees on the path to each streamed file with the
//! size we counted while streaming:
//!
//! 1. the changed trees go into one new pack (uncompressed tree blobs, valid
//!    in repository versions 1 and 2), written atomically by the backend;
//! 2. an index file naming that pack;
//! 3. the snapshot saved again with the new root tree;
//! 4. the first snapshot removed.
//!
//! A crash between any two steps leaves a valid repository: an unreferenced
//! pack (prune removes it) or, at worst, both snapshots.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use aes256ctr_poly1305aes::{aead::AeadInPlace, Aes256CtrPoly1305Aes};
use rustic_core::{
    repofile::{MasterKey, SnapshotFile},
    FileType, Id, IndexedTree, Repository, TreeId, WriteBackend,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// restic's index file format (design.rst, "Index files").
#[derive(Serialize)]
struct IndexJson {
    packs: Vec<PackJson>,
}

#[derive(Serialize)]
struct PackJson {
    id: String,
    blobs: Vec<BlobJson>,
}

#[derive(Serialize)]
struct BlobJson {
    id: String,
    #[serde(rename = "type")]
    tpe: &'static str,
    offset: u32,
    length: u32,
}

fn write(be: &Arc<dyn WriteBackend>, tpe: FileType, data: Vec<u8>, what: &str) -> Result<Id> {
    let id = Id::new(Sha256::digest(&data).into());
    be.write_bytes(tpe, &id, tpe != FileType::Pack, data.into())
        .map_err(|e| Error::from_rustic(&format!("cannot save {what}"), &e))?;
    Ok(id)
}

use crate::error::{Error, ErrorKind, Result};

fn internal(what: &str) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("cannot record the size of a command source: {what}"),
    )
}

/// restic's encryption: IV (16) || AES-256-CTR ciphertext || Poly1305-AES MAC (16).
fn encrypt(key: &MasterKey, plain: &[u8]) -> Result<Vec<u8>> {
    if key.encrypt.len() != 32 || key.mac.k.len() != 16 || key.mac.r.len() != 16 {
        return Err(internal("unexpected master key layout"));
    }
    let mut k = aes256ctr_poly1305aes::Key::default();
    k[..32].copy_from_slice(&key.encrypt);
    k[32..48].copy_from_slice(&key.mac.k);
    k[48..].copy_from_slice(&key.mac.r);
    let iv: [u8; 16] = rand::random();
    let nonce = aes256ctr_poly1305aes::aead::Nonce::<Aes256CtrPoly1305Aes>::clone_from_slice(&iv);
    let mut out = Vec::with_capacity(plain.len() + 32);
    out.extend_from_slice(&iv);
    out.extend_from_slice(plain);
    let tag = Aes256CtrPoly1305Aes::new(&k)
        .encrypt_in_place_detached(&nonce, &[], &mut out[16..])
        .map_err(|_| internal("encryption failed"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Rewrites the trees under `tree_id` (at `prefix`) whose files need a new
/// size; collects each new tree's (id, JSON). `None` if nothing changed.
fn rewrite<S: IndexedTree>(
    repo: &Repository<S>,
    tree_id: TreeId,
    prefix: &Path,
    sizes: &BTreeMap<PathBuf, u64>,
    new_trees: &mut Vec<(TreeId, Vec<u8>)>,
) -> Result<Option<TreeId>> {
    let mut tree = repo
        .get_tree(&tree_id)
        .map_err(|e| Error::from_rustic("cannot read a tree", &e))?;
    let mut changed = false;
    for node in &mut tree.nodes {
        let path = prefix.join::<&std::ffi::OsStr>(node.name().as_ref());
        if node.is_file() {
            if let Some(size) = sizes.get(&path) {
                if node.meta.size != *size {
                    node.meta.size = *size;
                    changed = true;
                }
            }
        } else if node.is_dir() && sizes.keys().any(|p| p.starts_with(&path)) {
            if let Some(sub) = node.subtree {
                if let Some(new) = rewrite(repo, sub, &path, sizes, new_trees)? {
                    node.subtree = Some(new);
                    changed = true;
                }
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    let (json, id) = tree
        .serialize()
        .map_err(|_| internal("cannot serialize a tree"))?;
    if !new_trees.iter().any(|(t, _)| *t == id) {
        new_trees.push((id, json));
    }
    Ok(Some(id))
}

/// Saves `snap` again with the real sizes of the files in `sizes` (absolute
/// snapshot paths), and removes the original. Returns the new snapshot.
pub(crate) fn fix_sizes<S: IndexedTree>(
    repo: &Repository<S>,
    be: &Arc<dyn WriteBackend>,
    snap: SnapshotFile,
    sizes: &BTreeMap<PathBuf, u64>,
) -> Result<SnapshotFile> {
    let mut new_trees = Vec::new();
    let Some(root) = rewrite(repo, snap.tree, Path::new("/"), sizes, &mut new_trees)? else {
        return Ok(snap);
    };
    let key = repo.key();

    // 1. the pack: encrypted blobs, encrypted header, header length
    let mut pack = Vec::new();
    let mut header = Vec::new();
    let mut blobs = Vec::new();
    for (id, json) in &new_trees {
        let blob = encrypt(&key, json)?;
        let offset = u32::try_from(pack.len()).map_err(|_| internal("pack too large"))?;
        let length = u32::try_from(blob.len()).map_err(|_| internal("tree too large"))?;
        header.push(1u8); // tree blob, uncompressed
        header.extend_from_slice(&length.to_le_bytes());
        let hex_id = id.to_hex().to_string();
        header.extend_from_slice(&hex::decode(&hex_id).map_err(|_| internal("bad tree id"))?);
        blobs.push(BlobJson {
            id: hex_id,
            tpe: "tree",
            offset,
            length,
        });
        pack.extend_from_slice(&blob);
    }
    let header = encrypt(&key, &header)?;
    pack.extend_from_slice(&header);
    let header_len = u32::try_from(header.len()).map_err(|_| internal("header too large"))?;
    pack.extend_from_slice(&header_len.to_le_bytes());
    let pack_id = write(be, FileType::Pack, pack, "the corrected trees")?;

    // 2. the index file naming it
    let index = IndexJson {
        packs: vec![PackJson {
            id: pack_id.to_hex().to_string(),
            blobs,
        }],
    };
    let json = serde_json::to_vec(&index).map_err(|_| internal("cannot serialize the index"))?;
    write(
        be,
        FileType::Index,
        encrypt(&key, &json)?,
        "the index of the corrected trees",
    )?;

    // 3. the snapshot with the new tree, 4. the first one removed
    let old = snap.id;
    let mut new = snap;
    new.tree = root;
    new.id = rustic_core::repofile::SnapshotId::default();
    let json = serde_json::to_vec(&new).map_err(|_| internal("cannot serialize the snapshot"))?;
    let id = write(
        be,
        FileType::Snapshot,
        encrypt(&key, &json)?,
        "the snapshot",
    )?;
    new.id = id.into();
    be.remove(FileType::Snapshot, &old, true)
        .map_err(|e| Error::from_rustic("cannot remove the first snapshot", &e))?;
    Ok(new)
}
