//! Control API tokens: `bwk_` followed by 64 hex digits (32 random bytes).
//! Only their SHA-256 is stored; a request's token is looked up by its hash
//! and the stored hash compared in constant time. An *admin* token may do
//! everything; a *host* token only reports, polls and reads for its host.

use std::path::Path;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::db;
use crate::HubError;

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "bwk_";

/// What a token may do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "host", rename_all = "snake_case")]
pub enum TokenKind {
    /// Everything.
    Admin,
    /// Report, poll, take leases and read for this host only.
    Host(String),
}

/// A stored token (its secret is never stored).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Its id (for `revoke`).
    pub id: i64,
    /// What it may do.
    #[serde(flatten)]
    pub kind: TokenKind,
    /// When it was created.
    pub created: Timestamp,
    /// When it was last used (updated at most once a minute).
    pub last_used: Option<Timestamp>,
}

/// The stored form of a token: hex SHA-256.
pub(crate) fn hash(token: &[u8]) -> String {
    hex::encode(Sha256::digest(token))
}

fn new_secret() -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()))
}

pub(crate) fn info(r: db::TokenRow) -> TokenInfo {
    TokenInfo {
        id: r.id,
        kind: match r.host {
            Some(h) => TokenKind::Host(h),
            None => TokenKind::Admin,
        },
        created: db::ts(r.created),
        last_used: r.last_used.map(db::ts),
    }
}

fn db_err(state_dir: &Path, e: db::DbError) -> HubError {
    HubError::Control(format!("{} ({})", e, state_dir.display()))
}

/// Creates a token in the control database of `state_dir` (created if
/// missing): `(id, token)`. The token is shown only here; store it safely.
pub fn create_token(state_dir: &Path, kind: TokenKind) -> Result<(i64, String), HubError> {
    if let TokenKind::Host(h) = &kind {
        if !bulwark_api::valid_name(h) {
            return Err(HubError::Config(format!(
                "invalid host name {h:?}: use 1-64 letters, digits, `-` or `_`"
            )));
        }
    }
    let conn = db::open(state_dir).map_err(|e| db_err(state_dir, e))?;
    let token = new_secret();
    let host = match &kind {
        TokenKind::Admin => None,
        TokenKind::Host(h) => Some(h.as_str()),
    };
    let id = db::token_insert(&conn, &hash(token.as_bytes()), host, Timestamp::now())
        .map_err(|e| db_err(state_dir, e))?;
    Ok((id, token))
}

/// Every token of the control database of `state_dir`.
pub fn list_tokens(state_dir: &Path) -> Result<Vec<TokenInfo>, HubError> {
    let conn = db::open(state_dir).map_err(|e| db_err(state_dir, e))?;
    Ok(db::token_list(&conn)
        .map_err(|e| db_err(state_dir, e))?
        .into_iter()
        .map(info)
        .collect())
}

/// Revokes token `id`; false if there was none. A running hub refuses it
/// from its next request on.
pub fn revoke_token(state_dir: &Path, id: i64) -> Result<bool, HubError> {
    let conn = db::open(state_dir).map_err(|e| db_err(state_dir, e))?;
    db::token_revoke(&conn, id).map_err(|e| db_err(state_dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn create_list_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let (id, tok) = create_token(dir.path(), TokenKind::Host("nas".into())).unwrap();
        assert!(tok.starts_with(TOKEN_PREFIX) && tok.len() == 68);
        let (id2, tok2) = create_token(dir.path(), TokenKind::Admin).unwrap();
        assert_ne!(tok, tok2);
        let l = list_tokens(dir.path()).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].kind, TokenKind::Host("nas".into()));
        assert_eq!(l[1].id, id2);
        let json = serde_json::to_value(&l[0]).unwrap();
        assert_eq!(json["kind"], "host");
        assert_eq!(json["host"], "nas");
        assert!(revoke_token(dir.path(), id).unwrap());
        assert!(!revoke_token(dir.path(), id).unwrap());
        assert!(create_token(dir.path(), TokenKind::Host("a b".into())).is_err());
        // the database never holds the token itself
        let raw = std::fs::read(dir.path().join(db::FILE_NAME)).unwrap();
        assert!(!raw.windows(tok2.len()).any(|w| w == tok2.as_bytes()));
    }
}
