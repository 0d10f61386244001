//! Bulwark's retention decisions equal restic 0.14's for the same snapshots
//! and the same flags.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::*;

/// 40 snapshot times spread over two years, with clusters (several per day,
/// per hour) and gaps, all in the past.
fn times() -> Vec<String> {
    let mut t = Vec::new();
    let days = [
        "2023-01-02",
        "2023-01-09",
        "2023-02-14",
        "2023-03-31",
        "2023-06-30",
        "2023-07-01",
        "2023-12-31",
        "2024-01-01",
        "2024-02-29",
        "2024-03-01",
        "2024-03-04",
        "2024-03-10",
        "2024-03-11",
        "2024-03-17",
        "2024-03-18",
        "2024-03-19",
        "2024-03-20",
        "2024-03-21",
        "2024-03-22",
        "2024-03-23",
        "2024-03-24",
        "2024-04-30",
        "2024-05-01",
        "2024-10-05",
        "2024-10-06",
        "2024-11-11",
        "2024-12-30",
        "2024-12-31",
    ];
    for d in days {
        t.push(format!("{d} 10:15:00"));
    }
    for h in [
        "2024-03-24 10:45:00",
        "2024-03-24 11:05:00",
        "2024-03-24 23:59:00",
        "2024-03-23 00:00:01",
        "2024-12-31 08:00:00",
        "2024-12-31 08:30:00",
        "2024-12-31 20:00:00",
        "2023-12-31 23:00:00",
        "2024-10-06 01:00:00",
        "2024-05-01 00:30:00",
        "2024-02-29 18:00:00",
        "2023-01-02 11:00:00",
    ] {
        t.push(h.to_string());
    }
    t
}

fn kept_ids_restic(env: &Env, flags: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["forget", "--dry-run", "--json"];
    args.extend_from_slice(flags);
    let out = env.restic(&args);
    let v: serde_json::Value = serde_json::from_str(&out.ok().stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["keep"].as_array().cloned().unwrap_or_default())
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn kept_ids_bulwark(env: &Env, flags: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["--json", "forget", "--dry-run"];
    args.extend_from_slice(flags);
    let out = env.bulwark(&args).ok().json();
    assert_eq!(out["forget"]["dry_run"], true);
    out["forget"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["snapshots"].as_array().unwrap().clone())
        .filter(|d| d["keep"] == true)
        .map(|d| d["snapshot"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn same_choices_as_restic() {
    let env = Env::new();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"tiny").unwrap();
    env.restic(&["init"]).ok();
    for t in times() {
        env.restic(&["backup", "--host", "h", "--time", &t, src.to_str().unwrap()])
            .ok();
    }
    // a second group (other host): policies apply per host + paths, and
    // keep-within counts from each group's newest snapshot
    for t in [
        "2023-05-05 05:05:05",
        "2023-05-20 08:00:00",
        "2023-06-01 12:00:00",
        "2023-06-02 12:00:00",
    ] {
        env.restic(&["backup", "--host", "h2", "--time", t, src.to_str().unwrap()])
            .ok();
    }
    assert_eq!(
        env.bulwark(&["--json", "snapshots"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        44
    );

    let policies: [&[&str]; 10] = [
        &[
            "--keep-daily",
            "7",
            "--keep-weekly",
            "4",
            "--keep-monthly",
            "6",
        ],
        &["--keep-within", "30d"],
        &["--keep-within", "2d12h", "--keep-monthly", "3"],
        &["--keep-last", "3", "--keep-daily", "2"],
        &[
            "--keep-daily",
            "7",
            "--keep-weekly",
            "4",
            "--keep-monthly",
            "6",
            "--keep-yearly",
            "2",
        ],
        &["--keep-last", "3"],
        &["--keep-hourly", "10"],
        &["--keep-within", "1m"],
        &["--keep-within", "1y2m3d4h", "--keep-last", "1"],
        &["--keep-weekly", "30", "--keep-yearly", "10"],
    ];
    for flags in policies {
        let (r, b) = (kept_ids_restic(&env, flags), kept_ids_bulwark(&env, flags));
        assert!(!r.is_empty());
        assert!(
            r.len() < 44,
            "{flags:?} keeps everything; not a useful comparison"
        );
        assert_eq!(
            b,
            r,
            "kept sets differ for {flags:?}: only restic keeps {:?}, only bulwark keeps {:?}",
            r.difference(&b).collect::<Vec<_>>(),
            b.difference(&r).collect::<Vec<_>>()
        );
    }

    // and applying it really removes exactly the others
    let flags = [
        "--keep-daily",
        "7",
        "--keep-weekly",
        "4",
        "--keep-monthly",
        "6",
    ];
    let expected = kept_ids_restic(&env, &flags);
    let mut args = vec!["forget"];
    args.extend_from_slice(&flags);
    env.bulwark(&args).ok();
    let now: BTreeSet<String> = env
        .bulwark(&["--json", "snapshots"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(now, expected);
    env.restic(&["check"]).ok();
}

#[test]
fn forget_without_a_policy_refuses() {
    let env = Env::new();
    env.init();
    let out = env.bulwark(&["forget"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no retention policy given"),
        "{}",
        out.stderr
    );
}
