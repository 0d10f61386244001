//! Architecture invariant: the hub never holds a repository key, so it must
//! not even be able to decrypt — it depends on no crate that can.

#![allow(clippy::unwrap_used)]

#[test]
fn the_hub_cannot_link_the_engine_or_any_restic_crypto() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    for forbidden in [
        "bulwark-engine",
        "rustic_core",
        "rustic_backend",
        "aes256ctr_poly1305aes",
        "scrypt",
    ] {
        assert!(
            !manifest.contains(forbidden),
            "crates/hub depends on {forbidden}: the hub must stay keyless"
        );
    }
    let lock =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
    // the hub's own entry in Cargo.lock lists its direct dependencies
    let entry = lock
        .split("\n[[package]]\n")
        .find(|p| p.starts_with("name = \"bulwark-hub\""))
        .unwrap();
    assert!(
        !entry.contains("bulwark-engine") && !entry.contains("rustic"),
        "{entry}"
    );
}
