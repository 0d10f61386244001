//! Property tests of the config reader (`bulwark_config::parse`): on any
//! text, and on a valid many-host configuration mutated at random (bytes
//! deleted or inserted, lines dropped, duplicated or replaced, text cut
//! short), it never panics and returns either a `Config` or a non-empty
//! list of diagnostics, each pointing at a line of the text.
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;

use bulwark_config::{parse, ConfigError};
use proptest::prelude::*;

/// A valid configuration touching most tables. Secrets are referenced by
/// files that need not exist (they are read only when used).
const VALID: &str = r#"
[settings]
host = "nas"

[hosts.nas]
[hosts.vps]

[repositories.home]
url = "backups/home"
password_file = "home.pass"

[repositories.hub]
url = "rest:https://hub.lan:8000/alice/nas/"
password_env = "HUB_REPO_PW"
[repositories.hub.rest]
username = "alice"
password_file = "/etc/bulwark/hub-http.pass"

[repositories.cloud]
url = "s3:https://s3.example.com/bucket/nas/restic"
password_file = "/etc/bulwark/cloud.pass"
[repositories.cloud.s3]
region = "eu-central-1"
access_key_id_env = "AWS_KEY"
secret_access_key_file = "/etc/bulwark/s3.secret"

[jobs.etc]
host = "nas"
repository = "home"
paths = ["/etc"]
schedule = "Mon..Fri 03:00 Europe/Berlin"
exclude = ["*.tmp"]

[[jobs.etc.commands]]
command = ["pg_dumpall", "-U", "postgres"]
filename = "postgres/all.sql"

[jobs.etc.hooks]
before = ["true"]
timeout = "10m"

[jobs.etc.retention]
keep_daily = 7
keep_within = "2d12h"
prune = true

[jobs.web]
host = "vps"
repository = "hub"
paths = ["/var/www"]
"#;

fn origin() -> &'static Path {
    Path::new("/nonexistent-bulwark-prop/bulwark.toml")
}

/// Parses and checks the contract: `Ok`, or `Invalid` with diagnostics that
/// each name a line of the text (never another kind of error).
fn check(text: &str) -> Result<(), TestCaseError> {
    match parse(text, origin()) {
        Ok(_) => {}
        Err(ConfigError::Invalid(diags)) => {
            prop_assert!(!diags.is_empty(), "refused without a diagnostic");
            let lines = text.split('\n').count().max(1);
            for d in &diags {
                prop_assert!(
                    d.line >= 1 && d.line <= lines,
                    "line {} of {}: {}",
                    d.line,
                    lines,
                    d
                );
                prop_assert!(!d.message.is_empty());
            }
        }
        Err(other) => prop_assert!(false, "parse returned {other:?}"),
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    DropLine(usize),
    DupLine(usize),
    ReplaceLine(usize, String),
    Truncate(usize),
}

fn toml_noise() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("[[jobs.etc.commands]]".to_owned()),
        Just("[jobs.etc]".to_owned()),
        Just("\"".to_owned()),
        Just("'''".to_owned()),
        Just("= ".to_owned()),
        Just("\n".to_owned()),
        Just("host = \"nas\"".to_owned()),
        Just("repository = \"nope\"".to_owned()),
        Just("schedule = \"25:00\"".to_owned()),
        Just("keep_daily = -1".to_owned()),
        Just("paths = []".to_owned()),
        Just("url = \"rest:ftp://x\"".to_owned()),
        Just("x = 1e999".to_owned()),
        Just("t = 1979-05-27T07:32:00Z".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("é🦀".to_owned()),
        "\\PC{0,12}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), toml_noise()).prop_map(|(a, s)| Mutation::Insert(a, s)),
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::DupLine),
        (any::<usize>(), toml_noise()).prop_map(|(a, s)| Mutation::ReplaceLine(a, s)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// The char boundary at or before `i % (len + 1)`.
fn boundary(s: &str, i: usize) -> usize {
    let mut i = i % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, m: &Mutation) {
    match m {
        Mutation::Delete(a, n) => {
            let a = boundary(text, *a);
            let b = boundary(text, a + n.min(&(text.len() - a)));
            if a < b {
                text.replace_range(a..b, "");
            }
        }
        Mutation::Insert(a, s) => {
            let a = boundary(text, *a);
            text.insert_str(a, s);
        }
        Mutation::DropLine(i) | Mutation::DupLine(i) | Mutation::ReplaceLine(i, _) => {
            let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
            let i = i % lines.len();
            match m {
                Mutation::DropLine(_) => {
                    lines.remove(i);
                }
                Mutation::DupLine(_) => {
                    let l = lines[i].clone();
                    lines.insert(i, l);
                }
                Mutation::ReplaceLine(_, s) => lines[i] = s.clone(),
                _ => {}
            }
            *text = lines.join("\n");
        }
        Mutation::Truncate(a) => {
            let a = boundary(text, *a);
            text.truncate(a);
        }
    }
}

#[test]
fn the_base_text_is_valid() {
    parse(VALID, origin()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn any_text(text in "\\PC{0,120}") {
        check(&text)?;
    }

    #[test]
    fn toml_like_text(parts in prop::collection::vec(toml_noise(), 0..20)) {
        check(&parts.concat())?;
    }

    #[test]
    fn mutated_valid_config(ms in prop::collection::vec(mutation(), 1..6)) {
        let mut text = VALID.to_owned();
        for m in &ms {
            apply(&mut text, m);
        }
        check(&text)?;
    }
}
