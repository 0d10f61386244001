//! Writing restic key files (`keys/<id>`): the master key encrypted with a
//! key derived from the password by scrypt.

use aes256ctr_poly1305aes::{aead::AeadInPlace, Aes256CtrPoly1305Aes};
use base64::{engine::general_purpose::STANDARD, Engine};
use rustic_core::{repofile::MasterKey, FileType, Id, WriteBackend};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};

/// scrypt cost: 2^15 × r 8 → 32 MiB and ~0.1 s per open on a small machine.
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 4;

#[derive(Serialize)]
struct KeyFile {
    created: String,
    username: String,
    hostname: String,
    kdf: &'static str,
    #[serde(rename = "N")]
    n: u32,
    r: u32,
    p: u32,
    salt: String,
    data: String,
}

fn crypto_err(what: &str) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("cannot create the key: {what}"),
    )
}

/// Encrypts `master` under `password` and stores it as a new key file.
pub(crate) fn write_key(be: &dyn WriteBackend, master: &MasterKey, password: &str) -> Result<()> {
    let salt: [u8; 64] = rand::random();
    let params =
        scrypt::Params::new(LOG_N, R, P).map_err(|_| crypto_err("bad scrypt parameters"))?;
    let mut derived = [0u8; 64];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived)
        .map_err(|_| crypto_err("scrypt failed"))?;
    let plain = serde_json::to_vec(master).map_err(|e| crypto_err(&e.to_string()))?;

    let key = aes256ctr_poly1305aes::Key::clone_from_slice(&derived);
    let nonce_bytes: [u8; 16] = rand::random();
    let nonce =
        aes256ctr_poly1305aes::aead::Nonce::<Aes256CtrPoly1305Aes>::clone_from_slice(&nonce_bytes);
    let mut data = Vec::with_capacity(plain.len() + 32);
    data.extend_from_slice(&nonce_bytes);
    data.extend_from_slice(&plain);
    let tag = Aes256CtrPoly1305Aes::new(&key)
        .encrypt_in_place_detached(&nonce, &[], &mut data[16..])
        .map_err(|_| crypto_err("encryption failed"))?;
    data.extend_from_slice(&tag);

    let uid = nix::unistd::getuid();
    let file = KeyFile {
        created: jiff::Zoned::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.9f%:z")
            .to_string(),
        username: nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default(),
        hostname: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
        kdf: "scrypt",
        n: 1 << LOG_N,
        r: R,
        p: P,
        salt: STANDARD.encode(salt),
        data: STANDARD.encode(&data),
    };
    let json = serde_json::to_vec(&file).map_err(|e| crypto_err(&e.to_string()))?;
    let id = Id::new(Sha256::digest(&json).into());
    be.write_bytes(FileType::Key, &id, false, json.into())
        .map_err(|e| Error::from_rustic("cannot write the key file", &e))
}
