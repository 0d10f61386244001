//! A damaged or missing pack never crashes a restore: every intact file comes
//! back, the others are listed and removed.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use bulwark_engine::{BackupRequest, CheckData, Location, RepoSpec, RestoreRequest};

fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn packs(repo: &std::path::Path) -> BTreeSet<std::path::PathBuf> {
    let mut out = BTreeSet::new();
    for d in std::fs::read_dir(repo.join("data")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            out.insert(f.unwrap().path());
        }
    }
    out
}

fn scenario(damage: impl Fn(&std::path::Path)) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for i in 0..4 {
        std::fs::write(a.join(format!("a{i}")), random_bytes(i, 300_000)).unwrap();
        std::fs::write(b.join(format!("b{i}")), random_bytes(100 + i, 300_000)).unwrap();
    }
    let repo_dir = tmp.path().join("repo");
    let repo = RepoSpec::new(Location::Local(repo_dir.clone()), "pw")
        .init()
        .unwrap();
    repo.backup(&BackupRequest {
        paths: vec![a.clone()],
        ..Default::default()
    })
    .unwrap();
    let before = packs(&repo_dir);
    repo.backup(&BackupRequest {
        paths: vec![a.clone(), b.clone()],
        ..Default::default()
    })
    .unwrap();
    // the biggest new pack holds b's data (the small one holds trees)
    let new = packs(&repo_dir)
        .difference(&before)
        .cloned()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    assert!(std::fs::metadata(&new).unwrap().len() > 1_000_000);
    damage(&new);
    let out = tmp.path().join("out");
    let r = repo
        .restore(&RestoreRequest {
            snapshot: "latest".into(),
            target: out.clone(),
            verify: true,
            ..Default::default()
        })
        .unwrap();
    assert!(r.incomplete);
    for i in 0..4 {
        let restored =
            std::fs::read(out.join(a.strip_prefix("/").unwrap()).join(format!("a{i}"))).unwrap();
        assert_eq!(
            restored,
            random_bytes(i, 300_000),
            "intact file a{i} restored exactly"
        );
        let lost = out.join(b.strip_prefix("/").unwrap()).join(format!("b{i}"));
        assert!(
            !lost.exists(),
            "a file that could not be restored is not left half-written"
        );
    }
    let failed: Vec<&str> = r.failed.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(failed.len(), 4, "{:?}", r.failed);
    assert!(failed.iter().all(|p| p.contains("/b/b")), "{failed:?}");
    let c = repo.check(CheckData::All).unwrap();
    assert!(
        !c.ok && !c.errors.is_empty(),
        "check must report the damage: {c:?}"
    );
}

#[test]
fn corrupted_pack() {
    scenario(|p| {
        let mut data = std::fs::read(p).unwrap();
        // flip a byte every 50 kB: every blob of the pack (one per 300 kB file) is hit
        for i in (0..data.len()).step_by(50_000) {
            data[i] ^= 0x5a;
        }
        std::fs::write(p, data).unwrap();
    });
}

#[test]
fn missing_pack() {
    scenario(|p| std::fs::remove_file(p).unwrap());
}

#[test]
fn damaged_tree_pack_is_an_error_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    std::fs::create_dir_all(a.join("sub")).unwrap();
    std::fs::write(a.join("sub/f"), random_bytes(1, 1000)).unwrap();
    let repo_dir = tmp.path().join("repo");
    let repo = RepoSpec::new(Location::Local(repo_dir.clone()), "pw")
        .init()
        .unwrap();
    repo.backup(&BackupRequest {
        paths: vec![a.clone()],
        ..Default::default()
    })
    .unwrap();
    // with one small file, every pack is tiny: damage them all (trees included)
    for p in packs(&repo_dir) {
        let mut data = std::fs::read(&p).unwrap();
        for b in data.iter_mut().take(200) {
            *b ^= 0xff;
        }
        std::fs::write(&p, data).unwrap();
    }
    let out = tmp.path().join("out");
    match repo.restore(&RestoreRequest {
        snapshot: "latest".into(),
        target: out,
        ..Default::default()
    }) {
        Ok(r) => assert!(r.incomplete && !r.failed.is_empty(), "{r:?}"),
        Err(e) => assert!(!e.message.is_empty()),
    }
    assert!(repo
        .ls("latest", &Default::default(), None)
        .map_or(true, |(_, _, errs)| !errs.is_empty()));
}
