//! Signed configuration files: the administrator signs `bulwark.toml` with a
//! private key (`bulwark config sign`), the hub only stores and relays the
//! file and its detached signature `bulwark.toml.sig`, and an agent that
//! takes its configuration from the hub runs it only when the signature
//! verifies under the public key it holds (`[agent] config_key`,
//! `--config-key`). A taken-over hub or a man in the middle can therefore not
//! make an agent run a hook, a command source or a database command it would
//! not have run anyway.
//!
//! Formats (one line each, ASCII):
//!
//! - public key: `ed25519:<base64 of the 32-byte key>`
//! - private key file (mode 0600): `ed25519-secret:<base64 of the 32-byte seed>`
//! - signature file: `bulwark-signature v1 ed25519 <key id> <base64 of the 64-byte signature>`
//!
//! The signature covers the exact bytes of the file. The key id is the first
//! 16 hex digits of the SHA-256 of the public key; it names the key in
//! messages and lets an agent say "signed with another key" instead of "bad
//! signature".

use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{AgentError, Result};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";
const SIG_PREFIX: &str = "bulwark-signature v1 ed25519 ";

/// A public key that configuration files must be signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigKey(VerifyingKey);

impl std::fmt::Debug for ConfigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigKey({})", self.id())
    }
}

impl std::fmt::Display for ConfigKey {
    /// The one-line form (`ed25519:…`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", B64.encode(self.0.as_bytes()))
    }
}

impl ConfigKey {
    /// Parses `ed25519:<base64>`, or reads it from a file holding that line.
    pub fn parse_or_read(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.starts_with(PUBLIC_PREFIX) {
            return Self::parse(t);
        }
        let path = Path::new(t);
        if path.is_file() {
            let content = std::fs::read_to_string(path).map_err(|e| AgentError::Setup {
                message: format!("cannot read the configuration key file {}: {e}", path.display()),
                hint: "give the public key printed by `bulwark config keygen` (ed25519:…), or a readable file holding it".into(),
            })?;
            return Self::parse(content.trim());
        }
        Self::parse(t)
    }

    /// Parses `ed25519:<base64>`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            AgentError::Setup {
            message: format!("`{}` is not a configuration key: {why}", shorten(text)),
            hint: "give the public key printed by `bulwark config keygen`: one line `ed25519:` followed by 44 base64 characters".into(),
        }
        };
        let b64 = text
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| bad("it does not start with `ed25519:`"))?;
        let bytes = B64
            .decode(b64)
            .map_err(|_| bad("the part after `ed25519:` is not base64"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("an ed25519 public key is 32 bytes"))?;
        VerifyingKey::from_bytes(&arr)
            .map(Self)
            .map_err(|_| bad("not a valid ed25519 point"))
    }

    /// The key id: first 16 hex digits of the SHA-256 of the key.
    pub fn id(&self) -> String {
        key_id(&self.0)
    }

    /// Checks `signature_file` (the text of `FILE.sig`) over `bytes`.
    pub fn verify(&self, bytes: &[u8], signature_file: Option<&str>) -> Result<(), SignatureError> {
        let text = signature_file.ok_or(SignatureError::Unsigned)?;
        let (id, sig) = parse_signature(text)?;
        if id != self.id() {
            return Err(SignatureError::OtherKey {
                signed_with: id,
                trusted: self.id(),
            });
        }
        self.0
            .verify(bytes, &sig)
            .map_err(|_| SignatureError::Mismatch { key: id })
    }
}

/// Why a configuration's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// There is no signature at all.
    #[error("the configuration is not signed")]
    Unsigned,
    /// The signature file is not in the expected form.
    #[error("the signature file is damaged: {0}")]
    Malformed(String),
    /// Signed, but with another key than the one this agent trusts.
    #[error("the configuration is signed with key {signed_with}, but this agent trusts only key {trusted}")]
    OtherKey {
        /// The key id in the signature.
        signed_with: String,
        /// The key id the agent holds.
        trusted: String,
    },
    /// The right key, but the bytes are not the ones that were signed.
    #[error("the signature (key {key}) does not match the configuration: the file was changed after it was signed")]
    Mismatch {
        /// The key id.
        key: String,
    },
}

fn key_id(k: &VerifyingKey) -> String {
    let mut h = hex::encode(Sha256::digest(k.as_bytes()));
    h.truncate(16);
    h
}

fn shorten(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 60 {
        s.chars().take(60).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

fn parse_signature(text: &str) -> Result<(String, Signature), SignatureError> {
    let line = text.trim();
    let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
        SignatureError::Malformed(format!("it must start with `{}`", SIG_PREFIX.trim_end()))
    })?;
    let (id, b64) = rest
        .split_once(' ')
        .ok_or_else(|| SignatureError::Malformed("no key id".into()))?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed(
            "the key id is not 16 hex digits".into(),
        ));
    }
    let bytes = B64
        .decode(b64.trim())
        .map_err(|_| SignatureError::Malformed("the signature is not base64".into()))?;
    let arr: [u8; 64] = bytes
        .try_into()
        .map_err(|_| SignatureError::Malformed("an ed25519 signature is 64 bytes".into()))?;
    Ok((id.to_ascii_lowercase(), Signature::from_bytes(&arr)))
}

/// A private signing key (never printed; `Debug` shows only its id).
pub struct SigningSecret(SigningKey);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret({})", key_id(&self.0.verifying_key()))
    }
}

impl SigningSecret {
    /// A new random key.
    pub fn generate() -> Self {
        let seed: [u8; 32] = rand::random();
        Self(SigningKey::from_bytes(&seed))
    }

    /// The public half.
    pub fn public(&self) -> ConfigKey {
        ConfigKey(self.0.verifying_key())
    }

    /// The private key file's text (one line).
    pub fn to_file_text(&self) -> String {
        format!("{SECRET_PREFIX}{}\n", B64.encode(self.0.to_bytes()))
    }

    /// Reads a private key file written by [`SigningSecret::to_file_text`].
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| AgentError::Setup {
            message: format!("cannot read the signing key {}: {e}", path.display()),
            hint: "give the private key file written by `bulwark config keygen`".into(),
        })?;
        let bad = || {
            AgentError::Setup {
            message: format!("{} is not a Bulwark signing key", path.display()),
            hint: "give the private key file written by `bulwark config keygen` (one line `ed25519-secret:…`), not the public key".into(),
        }
        };
        let b64 = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(bad)?;
        let bytes = B64.decode(b64).map_err(|_| bad())?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        Ok(Self(SigningKey::from_bytes(&arr)))
    }

    /// The signature file's text for `bytes` (one line).
    pub fn sign(&self, bytes: &[u8]) -> String {
        let sig = self.0.sign(bytes);
        format!(
            "{SIG_PREFIX}{} {}\n",
            key_id(&self.0.verifying_key()),
            B64.encode(sig.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_verifies_only_over_the_signed_bytes_and_key() {
        let k = SigningSecret::generate();
        let public = ConfigKey::parse(&k.public().to_string()).unwrap();
        let sig = k.sign(b"[jobs.a]\n");
        assert_eq!(public.verify(b"[jobs.a]\n", Some(&sig)), Ok(()));
        assert!(matches!(
            public.verify(b"[jobs.a]\nhooks = 1\n", Some(&sig)),
            Err(SignatureError::Mismatch { .. })
        ));
        assert_eq!(public.verify(b"x", None), Err(SignatureError::Unsigned));
        let other = SigningSecret::generate();
        assert!(matches!(
            public.verify(b"[jobs.a]\n", Some(&other.sign(b"[jobs.a]\n"))),
            Err(SignatureError::OtherKey { .. })
        ));
        assert!(matches!(
            public.verify(b"x", Some("garbage")),
            Err(SignatureError::Malformed(_))
        ));
        // the private key file round-trips
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, k.to_file_text()).unwrap();
        let back = SigningSecret::read(&p).unwrap();
        assert_eq!(back.public(), k.public());
        assert!(!format!("{back:?}").contains(&B64.encode(k.0.to_bytes())));
        assert!(ConfigKey::parse("ed25519:AAAA").is_err());
        assert!(SigningSecret::read(&dir.path().join("none")).is_err());
    }
}
