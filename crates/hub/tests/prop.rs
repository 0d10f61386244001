//! Property tests of the hub's parsers: request paths (never panic; valid
//! paths parse to what they address and round-trip), htpasswd text (never
//! panics; well-formed files give exactly their users), and the `Range`
//! header, through a real in-process hub (always 200, 206 with the right
//! bytes, or 416; well-formed ranges give exactly the bytes asked for).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use bulwark_hub::route::{parse, Target};
use bulwark_store::{FileType, Name, RepoPath};
use proptest::{prelude::*, test_runner::TestRunner};

use common::{req, sha, Server};

// ------------------------------------------------------------------ paths

const TYPES: [&str; 5] = ["data", "keys", "locks", "snapshots", "index"];

fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-][A-Za-z0-9._-]{0,11}".prop_filter("not a reserved name", |s| {
        s != "config" && !TYPES.contains(&s.as_str())
    })
}

fn repo() -> impl Strategy<Value = RepoPath> {
    prop::collection::vec(segment(), 1..=2).prop_map(|s| RepoPath::parse(&s.join("/")).unwrap())
}

fn file_type() -> impl Strategy<Value = FileType> {
    prop::sample::select(TYPES.to_vec()).prop_map(|t| FileType::parse(t).unwrap())
}

fn name() -> impl Strategy<Value = Name> {
    "[0-9a-f]{64}".prop_map(|s| Name::parse(&s).unwrap())
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Metrics),
        repo().prop_map(Target::Repo),
        repo().prop_map(Target::Config),
        (repo(), file_type()).prop_map(|(r, t)| Target::List(r, t)),
        (repo(), file_type(), name()).prop_map(|(r, t, n)| Target::File(r, t, n)),
    ]
}

/// Percent-encodes the bytes of `s` chosen by `mask` (any byte may be
/// encoded; the hub decodes once).
fn encode_some(s: &str, mask: &[bool]) -> String {
    s.bytes()
        .zip(mask.iter().cycle())
        .map(|(b, &e)| {
            if e && b != b'/' {
                format!("%{b:02X}")
            } else {
                (b as char).to_string()
            }
        })
        .collect()
}

fn print(t: &Target) -> String {
    match t {
        Target::Metrics => "/metrics".to_owned(),
        Target::Repo(r) => format!("/{r}/"),
        Target::Config(r) => format!("/{r}/config"),
        Target::List(r, t) => format!("/{r}/{t}/"),
        Target::File(r, t, n) => format!("/{r}/{t}/{n}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_path_parses_or_errs(raw in "\\PC{0,60}") {
        let _ = parse(&raw);
    }

    #[test]
    fn hostile_looking_paths_never_escape(
        parts in prop::collection::vec(
            prop_oneof![
                Just("/"), Just(".."), Just("."), Just("%2e"), Just("%2E%2e"), Just("%2f"),
                Just("%00"), Just("%5c"), Just("\\"), Just("config"), Just("data"),
                Just("keys"), Just("a"), Just("alice"), Just("%ff"), Just("%"), Just("%e2%80%ae"),
                Just("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ],
            0..12,
        )
    ) {
        let raw = parts.concat();
        if let Ok(t) = parse(&raw) {
            // Whatever is accepted names only well-formed pieces, so it can
            // never point outside the data directory.
            if let Some(r) = t.repo() {
                for s in r.segments() {
                    prop_assert!(!s.starts_with('.') && !s.contains(['/', '\\', '\0']), "{raw:?} -> {t:?}");
                }
            }
            prop_assert_eq!(parse(&print(&t)), Ok(t));
        }
    }

    #[test]
    fn valid_paths_round_trip(t in target(), mask in prop::collection::vec(any::<bool>(), 1..8)) {
        let path = print(&t);
        prop_assert_eq!(parse(&path), Ok(t.clone()), "{}", path);
        // The same path with some bytes percent-encoded addresses the same.
        if t != Target::Metrics {
            let encoded = encode_some(&path, &mask);
            prop_assert_eq!(parse(&encoded), Ok(t), "{}", encoded);
        }
    }
}

// --------------------------------------------------------------- htpasswd

fn hash() -> impl Strategy<Value = String> {
    "\\$2[aby]\\$[01][0-9]\\$[./A-Za-z0-9]{53}"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_htpasswd_text_parses_or_errs(text in "\\PC{0,200}") {
        if let Ok(users) = bulwark_hub::parse_htpasswd(&text, std::path::Path::new("t")) {
            for (u, h) in users {
                prop_assert!(!u.is_empty() && !u.contains(':'));
                prop_assert!(h.starts_with("$2"));
            }
        }
    }

    #[test]
    fn htpasswd_lines_mixed(lines in prop::collection::vec(
        prop_oneof![
            (segment(), hash()).prop_map(|(u, h)| format!("{u}:{h}")),
            Just(String::new()),
            "#[ -~]{0,20}",
            "[ -~]{0,30}",
            "  [a-z]{1,5}:\\$2b\\$04\\$[ -~]{0,10}  ",
        ],
        0..10,
    )) {
        let _ = bulwark_hub::parse_htpasswd(&lines.join("\n"), std::path::Path::new("t"));
    }

    #[test]
    fn well_formed_htpasswd_gives_its_users(
        entries in prop::collection::vec((segment(), hash(), any::<bool>()), 0..8),
        crlf in any::<bool>(),
    ) {
        let mut text = String::from("# users\n\n");
        let mut want = HashMap::new();
        for (u, h, comment) in &entries {
            text.push_str(&format!("{u}:{h}{}", if crlf { "\r\n" } else { "\n" }));
            if *comment {
                text.push_str("# a comment\n   \n");
            }
            want.insert(u.clone(), h.clone());
        }
        let got = bulwark_hub::parse_htpasswd(&text, std::path::Path::new("t")).unwrap();
        prop_assert_eq!(got, want);
    }
}

// ------------------------------------------------------------------ Range

const SIZE: u64 = 1000;

/// A `Range` header value: mostly well-formed single ranges (with numbers
/// near the interesting edges), some malformed or multi-range ones.
fn range_value() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        0u64..5,
        995u64..1005,
        0u64..2000,
        Just(u64::MAX),
        Just(SIZE)
    ];
    prop_oneof![
        4 => (num.clone(), num.clone()).prop_map(|(a, b)| format!("bytes={a}-{b}")),
        2 => num.clone().prop_map(|a| format!("bytes={a}-")),
        2 => num.clone().prop_map(|n| format!("bytes=-{n}")),
        1 => (num.clone(), num.clone(), num).prop_map(|(a, b, c)| format!("bytes={a}-{b},{c}-")),
        1 => "(bytes|items|BYTES)? ?=? ?[0-9a-z ,-]{0,12}",
        1 => "bytes=99999999999999999999999-[0-9]{0,3}",
    ]
}

/// What a well-formed single range must give: `Some((first, last))`, or
/// `None` for 416.
fn expected(v: &str) -> Option<Option<(u64, u64)>> {
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let a: Option<u64> = if a.is_empty() {
        None
    } else {
        Some(a.parse().ok()?)
    };
    let b: Option<u64> = if b.is_empty() {
        None
    } else {
        Some(b.parse().ok()?)
    };
    Some(match (a, b) {
        (Some(a), None) if a < SIZE => Some((a, SIZE - 1)),
        (Some(a), Some(b)) if a <= b && a < SIZE => Some((a, b.min(SIZE - 1))),
        (None, Some(n)) if n > 0 => Some((SIZE - n.min(SIZE), SIZE - 1)),
        _ => None,
    })
}

#[test]
fn range_requests_through_the_hub() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.no_auth = true;
    let content: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let name = sha(&content);
    let path = format!("/r/data/{name}");
    let server = rt.block_on(async {
        let server = Server::start(config).await;
        assert_eq!(
            req(server.addr, "POST", "/r/?create=true", None, &[], b"")
                .await
                .status,
            200
        );
        assert_eq!(
            req(server.addr, "POST", &path, None, &[], &content)
                .await
                .status,
            200
        );
        server
    });
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    });
    runner
        .run(&range_value(), |v| {
            let resp = rt.block_on(req(server.addr, "GET", &path, None, &[("Range", &v)], b""));
            match resp.status {
                200 => prop_assert_eq!(&resp.body, &content),
                206 => {
                    let cr = resp
                        .header("content-range")
                        .expect("Content-Range")
                        .to_owned();
                    let span = cr
                        .strip_prefix("bytes ")
                        .and_then(|s| s.strip_suffix("/1000"));
                    let (a, b) = span
                        .and_then(|s| s.split_once('-'))
                        .expect("bytes a-b/1000");
                    let (a, b): (u64, u64) = (a.parse().unwrap(), b.parse().unwrap());
                    prop_assert!(a <= b && b < SIZE, "{}", cr);
                    prop_assert_eq!(&resp.body[..], &content[a as usize..=b as usize]);
                    if let Some(want) = expected(&v) {
                        prop_assert_eq!(Some((a, b)), want, "{}", v);
                    }
                }
                416 => {
                    if let Some(want) = expected(&v) {
                        prop_assert_eq!(want, None, "{} gave 416", v);
                    }
                }
                other => prop_assert!(false, "{v:?}: status {other}"),
            }
            // A well-formed satisfiable range is never ignored.
            if let Some(Some(_)) = expected(&v) {
                prop_assert_eq!(resp.status, 206, "{}", v);
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(server.stop());
}
