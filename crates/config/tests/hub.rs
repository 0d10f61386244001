//! The `[hub]` section: a full example parses into the model; bad values
//! get file:line:col messages.

#![allow(clippy::unwrap_used)]

use std::{path::Path, time::Duration};

use bulwark_config::{parse, ConfigError, HubAccess, HubAcl};

const GOOD: &str = r#"[hub]
listen = ":8000"
data = "/srv/bulwark"
htpasswd = "/etc/bulwark/htpasswd"
append_only = true
private_repos = true
tls_cert = "/etc/bulwark/cert.pem"
tls_key = "/etc/bulwark/key.pem"
max_size = "2 TiB"
max_file_size = 1000000
scrub_interval = "7d"
metrics_users = ["prom"]

[[hub.acl]]
user = "laptop"
repo = "alice/laptop"
access = "append"

[[hub.acl]]
user = "*"
repo = "shared/*"
access = "read"

[hub.quota]
"alice/laptop" = "100 GiB"
"bob" = 5000
"#;

#[test]
fn full_hub_section() {
    let c = parse(GOOD, Path::new("/etc/bulwark.toml")).unwrap();
    let h = c.hub.unwrap();
    assert_eq!(h.listen.as_deref(), Some(":8000"));
    assert_eq!(h.data.as_deref(), Some(Path::new("/srv/bulwark")));
    assert_eq!(
        h.htpasswd.as_deref(),
        Some(Path::new("/etc/bulwark/htpasswd"))
    );
    assert!(h.append_only && h.private_repos && !h.no_auth);
    assert_eq!(
        h.tls_cert.as_deref(),
        Some(Path::new("/etc/bulwark/cert.pem"))
    );
    assert_eq!(h.max_size, Some(2 << 40));
    assert_eq!(h.max_file_size, Some(1_000_000));
    assert_eq!(h.scrub_interval, Some(Duration::from_secs(7 * 86400)));
    assert_eq!(h.metrics_users, vec!["prom".to_owned()]);
    assert_eq!(
        h.acl,
        vec![
            HubAcl {
                user: "laptop".into(),
                repo: "alice/laptop".into(),
                access: HubAccess::Append
            },
            HubAcl {
                user: "*".into(),
                repo: "shared/*".into(),
                access: HubAccess::Read
            },
        ]
    );
    assert_eq!(h.quota.get("alice/laptop"), Some(&(100 << 30)));
    assert_eq!(h.quota.get("bob"), Some(&5000));
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let c = parse(
        "[hub]\ndata = \"data\"\n",
        Path::new("/etc/bulwark/bulwark.toml"),
    )
    .unwrap();
    assert_eq!(
        c.hub.unwrap().data.as_deref(),
        Some(Path::new("/etc/bulwark/data"))
    );
    assert!(parse("[settings]\n", Path::new("/x.toml"))
        .unwrap()
        .hub
        .is_none());
}

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("/etc/bulwark.toml")) {
        Err(ConfigError::Invalid(diags)) => diags
            .iter()
            .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
            .collect(),
        other => panic!("expected problems, got {other:?}"),
    }
}

#[test]
fn connection_cap_and_run_history() {
    let c = parse(
        "[hub]\nmax_connections = 64\nrun_history = \"30d\"\n",
        Path::new("/b.toml"),
    )
    .unwrap();
    let h = c.hub.unwrap();
    assert_eq!(h.max_connections, Some(64));
    assert_eq!(h.run_history, Some(Duration::from_secs(30 * 86400)));
    let c = parse("[hub]\nrun_history = \"forever\"\n", Path::new("/b.toml")).unwrap();
    assert_eq!(c.hub.unwrap().run_history, Some(Duration::ZERO));
}

#[test]
fn bad_hub_values_are_all_reported_with_positions() {
    let cases: &[(&str, &str)] = &[
        (
            "[hub]\nlisten = \"8000\"\n",
            "2:10 `hub.listen` must be HOST:PORT or :PORT",
        ),
        (
            "[hub]\nmax_size = \"lots\"\n",
            "2:12 `max_size` is not a size",
        ),
        ("[hub]\nmax_size = -1\n", "2:12 `max_size` is not a size"),
        (
            "[hub]\nscrub_interval = \"weekly\"\n",
            "2:18 `hub.scrub_interval` is not a duration",
        ),
        (
            "[hub]\ntls_cert = \"/c.pem\"\n",
            "2:12 `hub.tls_cert` without `hub.tls_key`",
        ),
        ("[hub]\ncolour = 1\n", "2:1 unknown key `colour`"),
        (
            "[hub]\nmax_connections = 0\n",
            "2:19 `hub.max_connections` must be a whole number from 1",
        ),
        (
            "[hub]\nrun_history = \"long\"\n",
            "2:15 `hub.run_history` is not a duration",
        ),
        ("[hub]\nappend_only = \"yes\"\n", "2:15"),
        (
            "[[hub.acl]]\nuser = \"a\"\nrepo = \"a\"\naccess = \"write\"\n",
            "4:10 `access` must be \"read\", \"append\" or \"modify\"",
        ),
        (
            "[[hub.acl]]\nuser = \"a\"\nrepo = \"../etc\"\naccess = \"read\"\n",
            "3:8 `repo` must be a repository path",
        ),
        (
            "[[hub.acl]]\nuser = \"a\"\naccess = \"read\"\n",
            "`[[hub.acl]]` entry needs `user`, `repo` and `access`",
        ),
        (
            "[[hub.acl]]\nuser = \"a\"\nrepo = \"a\"\naccess = \"read\"\nextra = 1\n",
            "5:1 unknown key `extra`",
        ),
        (
            "[hub.quota]\n\"a/b/c\" = \"1 GiB\"\n",
            "2:11 `hub.quota` names an invalid repository path \"a/b/c\"",
        ),
        (
            "[hub.quota]\n\"alice\" = \"much\"\n",
            "2:11 `hub.quota.\"alice\"` is not a size",
        ),
    ];
    for (input, want) in cases {
        let got = problems(input);
        assert!(
            got.iter().any(|p| p.contains(want)),
            "input:\n{input}\nwanted {want:?}\ngot {got:?}"
        );
    }
    // several at once
    let got = problems("[hub]\nlisten = \"x\"\nmax_size = \"y\"\n");
    assert_eq!(got.len(), 2, "{got:?}");
}
