//! Replication: `[targets.NAME]` and a job's `rpo` — the model, the
//! defaults, every bad input with its position and hint, and that agents
//! never receive targets.

#![allow(clippy::unwrap_used)]

mod common;

use common::{case, check_cases, diagnostics, Case};

use std::{path::Path, time::Duration};

use bulwark_config::*;

/// The example of the replication design (docs/configuration.md, "Replication
/// targets"), with deletions propagated so that `quarantine` and
/// `delete_cap` apply, plus a hub and a job with an `rpo`.
const FULL: &str = r#"
[hub]
data = "/srv/bulwark"

[repositories.nas]
url = "rest:https://hub.lan:8000/nas/main"
password_file = "/etc/bulwark/nas.pass"

[jobs.nas]
repository = "nas"
paths = ["/srv/photos"]
schedule = "daily"
rpo = "26h"

[targets.cloud]                      # an S3-compatible bucket (B2, R2, Wasabi, MinIO, Garage, AWS)
url = "s3:https://s3.eu-central-1.wasabisys.com/my-bucket/bulwark"
medium = "cloud"                     # disk | cloud | peer | removable   (required)
offsite = true                       # required
region = "eu-central-1"              # s3 only, default us-east-1
access_key_id_file = "/etc/bulwark/wasabi.id"          # or access_key_id_env
secret_access_key_file = "/etc/bulwark/wasabi.secret"  # or secret_access_key_env
repositories = ["nas/main", "vps/main"]   # hub repository paths to copy; default: all ("*" allowed)
schedule = "*-*-* 04:00:00"          # when to replicate (plus soon after new snapshots); default "hourly"
bandwidth = "20 MiB"                 # per second; optional (same size syntax as [hub] max_size: parse_size)
parallel = 4                         # concurrent copies, 1-64, default 4
verify = "weekly"                    # schedule of the verify pass (re-hash a sample); default "weekly"
verify_sample = "5%"                 # fraction of data packs re-hashed per verify (1-100 %), default 5%
propagate_deletes = true             # default false
quarantine = "7d"                    # only with propagate_deletes; default 7d
delete_cap = "5%"                    # only with propagate_deletes; max share of files deleted per run, default 5%

[targets.friend]                     # a peer Bulwark hub or any restic REST server
url = "rest:https://friend.example.net:8000/alice"
medium = "peer"
offsite = true
username = "alice"                   # rest only; optional
password_file = "/etc/bulwark/friend.pass"   # rest only; or password_env

[targets.usb]                        # a local path: USB disk, NAS mount
url = "/mnt/usb/bulwark"
medium = "removable"
offsite = false
"#;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A schedule as parsing `expression` with no other keys gives it.
fn sched(expression: &str) -> JobSchedule {
    JobSchedule {
        expression: expression.into(),
        schedule: schedule::Schedule {
            calendar: schedule::Calendar::parse(expression).unwrap(),
            randomized_delay: Duration::ZERO,
            persistent: true,
        },
        late_after: secs(3600),
    }
}

/// Everything at its default.
fn defaults(name: &str, url: RepoUrl, medium: Medium, offsite: bool) -> Target {
    Target {
        name: name.into(),
        url,
        medium,
        offsite,
        s3: None,
        rest: None,
        repositories: vec![],
        schedule: sched("hourly"),
        bandwidth: None,
        parallel: 4,
        verify: sched("weekly"),
        verify_sample_percent: 5.0,
        propagate_deletes: false,
        quarantine: secs(7 * 86_400),
        delete_cap_percent: 5.0,
        after_upload: Some(secs(60)),
    }
}

#[test]
fn the_full_example_parses_into_the_model() {
    let cfg = parse(FULL, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    assert_eq!(
        cfg.targets.keys().collect::<Vec<_>>(),
        ["cloud", "friend", "usb"]
    );
    assert_eq!(
        cfg.targets["cloud"],
        Target {
            name: "cloud".into(),
            url: RepoUrl::S3 {
                endpoint: "https://s3.eu-central-1.wasabisys.com".into(),
                bucket: "my-bucket".into(),
                prefix: "bulwark".into(),
            },
            medium: Medium::Cloud,
            offsite: true,
            s3: Some(S3Settings {
                region: "eu-central-1".into(),
                access_key_id: Some(SecretSource::File("/etc/bulwark/wasabi.id".into())),
                secret_access_key: Some(SecretSource::File("/etc/bulwark/wasabi.secret".into())),
            }),
            rest: None,
            repositories: vec!["nas/main".into(), "vps/main".into()],
            schedule: sched("*-*-* 04:00:00"),
            bandwidth: Some(20 << 20),
            parallel: 4,
            verify: sched("weekly"),
            verify_sample_percent: 5.0,
            propagate_deletes: true,
            quarantine: secs(7 * 86_400),
            delete_cap_percent: 5.0,
            after_upload: Some(secs(60)),
        }
    );
    assert_eq!(
        cfg.targets["friend"],
        Target {
            rest: Some(TargetRestAuth {
                username: Some("alice".into()),
                password: Some(SecretSource::File("/etc/bulwark/friend.pass".into())),
            }),
            ..defaults(
                "friend",
                RepoUrl::Rest("https://friend.example.net:8000/alice".into()),
                Medium::Peer,
                true
            )
        }
    );
    assert_eq!(
        cfg.targets["usb"],
        defaults(
            "usb",
            RepoUrl::Local("/mnt/usb/bulwark".into()),
            Medium::Removable,
            false
        )
    );
    assert_eq!(cfg.jobs["nas"].rpo, Some(secs(26 * 3600)));
}

#[test]
fn defaults_and_other_forms() {
    let text = r#"
[targets.b2]
url = "s3:https://s3.us-west-004.backblazeb2.com/bucket"
medium = "cloud"
offsite = true
access_key_id_env = "B2_KEY_ID"
secret_access_key_env = "B2_KEY"
repositories = ["*"]
bandwidth = 1000000
parallel = 64
verify_sample = "100%"
propagate_deletes = true
quarantine = "1h 30m"
delete_cap = "0.5 %"
after_upload = "off"

[targets.anon]
url = "rest:http://10.0.0.2:8000/"
medium = "peer"
offsite = false
verify = "Sun 03:00"

[targets.nas]
url = "backups/mirror"
medium = "disk"
offsite = true
schedule = "daily"
after_upload = "5s"
"#;
    let cfg = parse(text, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    let b2 = &cfg.targets["b2"];
    assert_eq!(
        b2.s3,
        Some(S3Settings {
            region: "us-east-1".into(),
            access_key_id: Some(SecretSource::Env("B2_KEY_ID".into())),
            secret_access_key: Some(SecretSource::Env("B2_KEY".into())),
        })
    );
    assert!(
        b2.repositories.is_empty(),
        "[\"*\"] is stored as empty (all)"
    );
    assert_eq!(
        (b2.bandwidth, b2.parallel, b2.verify_sample_percent),
        (Some(1_000_000), 64, 100.0)
    );
    assert_eq!(
        (b2.propagate_deletes, b2.quarantine, b2.delete_cap_percent),
        (true, secs(5400), 0.5)
    );
    assert!(matches!(&b2.url, RepoUrl::S3 { prefix, .. } if prefix.is_empty()));
    assert_eq!(
        b2.after_upload, None,
        "after_upload = \"off\": only on schedule"
    );
    assert_eq!(cfg.targets["nas"].after_upload, Some(secs(5)));
    assert_eq!(b2.rest, None);

    let anon = &cfg.targets["anon"];
    assert_eq!(anon.url, RepoUrl::Rest("http://10.0.0.2:8000".into()));
    assert_eq!(
        anon.rest,
        Some(TargetRestAuth {
            username: None,
            password: None
        }),
        "Some for every rest: url"
    );
    assert_eq!(
        (anon.medium, anon.offsite, anon.s3.as_ref()),
        (Medium::Peer, false, None)
    );
    assert_eq!(anon.verify, sched("Sun 03:00"));
    assert_eq!(anon.schedule, sched("hourly"));

    let nas = &cfg.targets["nas"];
    assert_eq!(
        nas.url,
        RepoUrl::Local("/etc/bulwark/backups/mirror".into()),
        "relative to the file"
    );
    assert_eq!(
        (nas.medium, nas.offsite),
        (Medium::Disk, true),
        "disk + offsite is allowed"
    );
    assert_eq!(nas.schedule.expression, "daily");
    assert_eq!((nas.s3.as_ref(), nas.rest.as_ref()), (None, None));

    // No targets, no rpo.
    let cfg = parse(
        "[repositories.r]\nurl = \"/r\"\npassword_file = \"/p\"\n[jobs.j]\nrepository = \"r\"\npaths = [\"/a\"]\n",
        Path::new("x.toml"),
    )
    .unwrap();
    assert!(cfg.targets.is_empty());
    assert_eq!(cfg.jobs["j"].rpo, None);
}

#[test]
fn mediums() {
    assert_eq!(
        Medium::ALL.map(Medium::as_str),
        ["disk", "cloud", "peer", "removable"]
    );
    assert_eq!(Medium::Removable.to_string(), "removable");
}

/// Lines 1–3: a valid local target `t`; `body` starts on line 4.
fn target(body: &str) -> String {
    format!("[targets.t]\nmedium = \"disk\"\noffsite = false\n{body}")
}

/// An s3 target `t` on lines 1–4; `body` starts on line 5.
fn s3(body: &str) -> String {
    target(&format!(
        "url = \"s3:https://s3.example.com/bucket\"\n{body}"
    ))
}

/// A rest target `t` on lines 1–4; `body` starts on line 5.
fn rest(body: &str) -> String {
    target(&format!(
        "url = \"rest:https://peer.example.net:8000/alice\"\n{body}"
    ))
}

/// A local target `t` on lines 1–4; `body` starts on line 5.
fn local(body: &str) -> String {
    target(&format!("url = \"/mnt/usb\"\n{body}"))
}

/// A job `j` (lines 1–6) whose line 7 is `body`.
fn job(body: &str) -> String {
    format!("[repositories.r]\nurl = \"/srv/r\"\npassword_file = \"/p\"\n[jobs.j]\nrepository = \"r\"\npaths = [\"/a\"]\n{body}")
}

fn cases() -> Vec<Case> {
    vec![
        // required keys
        case(
            "[targets.t]\nurl = \"/mnt/usb\"\noffsite = true\n",
            "1:10",
            "target `t` has no `medium`",
            "medium = \"disk\", \"cloud\", \"peer\" or \"removable\"",
        ),
        case(
            "[targets.t]\nurl = \"/mnt/usb\"\nmedium = \"removable\"\n",
            "1:10",
            "target `t` does not say whether it is offsite",
            "offsite = true for copies outside this building",
        ),
        case(target(""), "1:10", "target `t` has no `url`", "rest:https://"),
        case(
            "[targets.\"my usb\"]\nurl = \"/mnt/usb\"\nmedium = \"disk\"\noffsite = false\n",
            "1:10",
            "`my usb` is not a valid target name",
            "letters",
        ),
        // unknown keys and wrong types
        case(local("bandwith = \"1 MiB\"\n"), "5:1", "unknown key `bandwith`", "did you mean `bandwidth`?"),
        case(
            local("propagate_delete = true\n"),
            "5:1",
            "unknown key `propagate_delete`",
            "did you mean `propagate_deletes`?",
        ),
        case("[target.t]\n", "1:2", "unknown key `target`", "did you mean `targets`?"),
        case(
            rest("password = \"hunter2\"\n"),
            "5:1",
            "unknown key `password`",
            "set `password_file`, or name an environment variable that holds it with `password_env`",
        ),
        case(
            local("offsite = \"yes\"\n").replace("offsite = false\n", ""),
            "4:11",
            "wrong type for `offsite`: expected a boolean (true or false), found a string",
            "e.g. offsite = true",
        ),
        case(
            local("repositories = \"nas/main\"\n"),
            "5:16",
            "wrong type for `repositories`: expected an array of strings, found a string",
            "repositories = [\"nas/main\"",
        ),
        case(
            local("repositories = [\"nas/main\", 7]\n"),
            "5:29",
            "wrong type in `repositories`: expected an array of strings, but this element is an integer",
            "",
        ),
        case(
            local("parallel = \"4\"\n"),
            "5:12",
            "wrong type for `parallel`: expected an integer (1-64), found a string",
            "e.g. parallel = 4",
        ),
        case(
            local("verify_sample = 5\n"),
            "5:17",
            "wrong type for `verify_sample`: expected a string (a percentage), found an integer",
            "verify_sample = \"5%\"",
        ),
        case("[targets]\nt = \"/mnt/usb\"\n", "2:5", "wrong type for `targets.t`: expected a table", "[targets.t]"),
        // values
        case(target("url = \"ftp:host/x\"\n"), "4:7", "bad url: unknown repository type `ftp:`", "rest:https://"),
        case(local("").replace("\"disk\"", "\"clod\""), "2:10", "`clod` is not a medium", "did you mean `cloud`?"),
        case(local("").replace("\"disk\"", "\"tape\""), "2:10", "`tape` is not a medium", "use medium = \"disk\""),
        case(local("parallel = 0\n"), "5:12", "`parallel` must be between 1 and 64", "parallel = 4"),
        case(local("parallel = 65\n"), "5:12", "`parallel` must be between 1 and 64", ""),
        case(local("bandwidth = \"fast\"\n"), "5:13", "`bandwidth` is not a size", "bandwidth = \"20 MiB\""),
        case(local("bandwidth = 0\n"), "5:13", "`bandwidth` must not be zero", "remove it for no limit"),
        case(
            local("verify_sample = \"0%\"\n"),
            "5:17",
            "`verify_sample` must be more than 0% and at most 100%",
            "verify_sample = \"5%\"",
        ),
        case(local("verify_sample = \"150%\"\n"), "5:17", "`verify_sample` must be more than 0% and at most 100%", ""),
        case(local("verify_sample = \"0.05\"\n"), "5:17", "`0.05` is not a percentage", "followed by `%`"),
        case(
            local("propagate_deletes = true\ndelete_cap = \"-1%\"\n"),
            "6:14",
            "`delete_cap` must be more than 0% and at most 100%",
            "delete_cap = \"5%\"",
        ),
        case(
            local("propagate_deletes = true\nquarantine = \"a week\"\n"),
            "6:14",
            "`a week` is not a duration",
            "quarantine = \"7d\"",
        ),
        case(local("after_upload = \"soon\"\n"), "5:16", "`soon` is not a duration", "after_upload = \"1m\""),
        case(local("after_upload = 60\n"), "5:16", "expected a string (a duration, or \"off\")", "after_upload = \"1m\""),
        case(local("schedule = \"dialy\"\n"), "5:13", "bad schedule: `dialy`", "did you mean `daily`?"),
        case(local("verify = \"Sun 25:00\"\n"), "5:15", "bad `verify` schedule: `25:00`: hour must be 0-23", ""),
        case(local("verify = \"*-02-30\"\n"), "5:10", "the `verify` schedule `*-02-30` never fires", "check the date"),
        // repositories
        case(local("repositories = []\n"), "5:16", "`repositories` is empty", "remove it to copy every repository"),
        case(local("repositories = [\"nas/../etc\"]\n"), "5:17", "`nas/../etc` is not a repository path", "no `..`"),
        case(
            local("repositories = [\"nas/main\", \"/vps\"]\n"),
            "5:29",
            "`/vps` is not a repository path",
            "e.g. \"nas/main\"",
        ),
        case(
            local("repositories = [\"nas/main\", \"nas/main\"]\n"),
            "5:29",
            "`nas/main` is listed twice in `repositories`",
            "remove one",
        ),
        case(
            local("repositories = [\"nas/main\", \"*\"]\n"),
            "5:29",
            "`*` already means every repository",
            "remove the other entries",
        ),
        // keys for another kind of url
        case(
            local("region = \"eu-central-1\"\n"),
            "5:10",
            "`region` only applies to an s3: url, and the url of target `t` is a local path",
            "s3:https://",
        ),
        case(
            rest("access_key_id_file = \"/k\"\n"),
            "5:22",
            "`access_key_id_file` only applies to an s3: url, and the url of target `t` is a rest: url",
            "",
        ),
        case(
            s3("username = \"alice\"\n"),
            "5:12",
            "`username` only applies to a rest: url, and the url of target `t` is an s3: url",
            "rest:https://",
        ),
        case(
            local("password_env = \"PEER_PASS\"\n"),
            "5:16",
            "`password_env` only applies to a rest: url, and the url of target `t` is a local path",
            "",
        ),
        // secrets
        case(rest("password_file = \"/p\"\n"), "5:17", "target `t` has a password but no `username`", "add username"),
        case(
            rest("username = \"a\"\npassword_file = \"/p\"\npassword_env = \"P\"\n"),
            "7:16",
            "both `password_file` and `password_env` are set",
            "keep one",
        ),
        case(
            s3("secret_access_key_env = \"not a name\"\n"),
            "5:25",
            "`secret_access_key_env` must be the name of an environment variable",
            "secret_access_key_env = \"SECRET_ACCESS_KEY\"",
        ),
        case(s3("access_key_id_file = \"\"\n"), "5:22", "`access_key_id_file` is empty", ""),
        case(s3("region = \" \"\n"), "5:10", "`region` is empty", "us-east-1"),
        // deletions
        case(
            local("quarantine = \"7d\"\n"),
            "5:14",
            "`quarantine` only applies with propagate_deletes = true",
            "add propagate_deletes = true",
        ),
        case(
            local("propagate_deletes = false\ndelete_cap = \"5%\"\n"),
            "6:14",
            "`delete_cap` only applies with propagate_deletes = true",
            "",
        ),
        // the place
        case(
            format!("[hub]\ndata = \"/srv/bulwark\"\n{}", target("url = \"/srv/bulwark/\"\n")),
            "6:7",
            "the url of target `t` is the hub's data directory (`[hub] data`)",
            "onto themselves",
        ),
        case(
            format!("[hub]\ndata = \"/srv/bulwark\"\n{}", target("url = \"/srv/bulwark/mirror\"\n")),
            "6:7",
            "is inside the hub's data directory",
            "",
        ),
        case(
            format!("[hub]\ndata = \"bulwark\"\n{}", target("url = \"./bulwark\"\n")),
            "6:7",
            "is the hub's data directory",
            "",
        ),
        case(
            format!("{}[targets.u]\nurl = \"/mnt/usb/\"\nmedium = \"disk\"\noffsite = false\n", local("")),
            "6:7",
            "target `u` has the same url as target `t`",
            "give this one another url",
        ),
        // rpo
        case(job("rpo = \"a day\"\n"), "7:7", "`a day` is not a duration", "rpo = \"26h\""),
        case(job("rpo = \"0s\"\n"), "7:7", "`rpo` must not be zero", "rpo = \"26h\""),
        case(
            job("rpo = 26\n"),
            "7:7",
            "wrong type for `rpo`: expected a string (a duration), found an integer",
            "e.g. rpo = \"26h\"",
        ),
    ]
}

#[test]
fn every_bad_input_gets_its_position_message_and_hint() {
    check_cases(cases(), 10);
}

#[test]
fn all_problems_of_targets_are_reported_together() {
    let input = "\
[targets.a]
url = \"/mnt/a\"
medium = \"tape\"
offsite = \"yes\"
parallel = 100
bandwith = 5

[targets.b]
url = \"s3:https://s3.example.com/b\"
medium = \"cloud\"
offsite = true
username = \"alice\"
quarantine = \"7d\"

[targets.c]
url = \"/mnt/a\"
";
    let got: Vec<String> = diagnostics(input)
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "3:10 `tape` is not a medium",
            "4:11 wrong type for `offsite`: expected a boolean (true or false), found a string",
            "5:12 `parallel` must be between 1 and 64",
            "6:1 unknown key `bandwith`",
            "12:12 `username` only applies to a rest: url, and the url of target `b` is an s3: url",
            "13:14 `quarantine` only applies with propagate_deletes = true",
            "15:10 target `c` has no `medium`",
            "15:10 target `c` does not say whether it is offsite",
            "16:7 target `c` has the same url as target `a`",
        ]
    );
    // target `a` lost a key (`offsite`): no "does not say whether it is offsite" on top.
}

#[test]
fn the_design_example_with_deletions_off_rejects_quarantine() {
    // As written in the design, `quarantine` and `delete_cap` sit next to
    // `propagate_deletes = false`: they would never apply, so it is an error.
    let text = FULL.replace("propagate_deletes = true ", "propagate_deletes = false");
    let got: Vec<String> = diagnostics(&text)
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "29:14 `quarantine` only applies with propagate_deletes = true",
            "30:14 `delete_cap` only applies with propagate_deletes = true",
        ]
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    for input in [
        rest("password = \"hunter2\"\n"),
        s3("secret_access_key = \"hunter2\"\n"),
        s3("secret_access_key_env = \"hunter2 hunter2\"\n"),
        s3("access_key_id_env = \"hunter2=\"\n"),
        target("url = \"rest:ftp://alice:hunter2@peer:8000/x\"\n"),
        local("password_env = \"hunter2 x\"\n"),
    ] {
        let err = parse(&input, Path::new("x.toml")).unwrap_err();
        assert!(!format!("{err}{err:?}").contains("hunter2"), "{err}");
    }
    let cfg = parse(
        &target("url = \"rest:https://alice:hunter2@peer:8000/x\"\n"),
        Path::new("x.toml"),
    )
    .unwrap();
    assert!(!format!("{cfg:?}").contains("hunter2"));
    assert_eq!(
        cfg.targets["t"].url.to_string(),
        "rest:https://***@peer:8000/x"
    );
    // An inline secret names the keys to use instead.
    let err = parse(
        &s3("secret_access_key = \"hunter2\"\n"),
        Path::new("x.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`secret_access_key_file`") && err.contains("`secret_access_key_env`"),
        "{err}"
    );
}

#[test]
fn agents_never_receive_targets() {
    let text = format!(
        "[hosts.nas]\n[hosts.hub]\n{}\n[jobs.nas]\nhost = \"nas\"\nrpo = \"26h\"\n{}",
        "[repositories.nas]\nurl = \"rest:https://hub.lan:8000/nas/main\"\npassword_file = \"/etc/bulwark/nas.pass\"\n",
        "repository = \"nas\"\npaths = [\"/srv\"]\n\n[targets.usb]\nurl = \"/mnt/usb\"\nmedium = \"removable\"\noffsite = false\n\n[targets.cloud]\nurl = \"s3:https://s3.example.com/b\"\nmedium = \"cloud\"\noffsite = true\nsecret_access_key_file = \"/etc/bulwark/s3.secret\"\naccess_key_id_file = \"/etc/bulwark/s3.id\"\n",
    );
    let origin = Path::new("/etc/bulwark/bulwark.toml");
    assert_eq!(parse(&text, origin).unwrap().targets.len(), 2);
    for host in ["nas", "hub"] {
        let part = extract_host(&text, origin, host).unwrap();
        let top: Vec<String> = part
            .parse::<toml::Table>()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert!(!top.iter().any(|t| t == "targets"), "{part}");
        assert!(
            !part.contains("/mnt/usb") && !part.contains("s3.secret"),
            "{part}"
        );
        assert!(parse(&part, origin).unwrap().targets.is_empty());
    }
    // The job's rpo travels with the job.
    let nas = parse(&extract_host(&text, origin, "nas").unwrap(), origin).unwrap();
    assert_eq!(nas.jobs["nas"].rpo, Some(secs(26 * 3600)));
}

#[test]
fn the_documented_example_parses() {
    let doc = include_str!("../../../docs/configuration.md");
    let start = doc.find("## Replication targets").unwrap();
    let block = &doc[start..];
    let block = &block[block.find("```toml\n").unwrap() + 8..];
    let block = &block[..block.find("\n```").unwrap()];
    let cfg = parse(block, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    let full = parse(FULL, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    // The same as the full example, except that deletions are not propagated.
    let cloud = Target {
        propagate_deletes: false,
        ..full.targets["cloud"].clone()
    };
    assert_eq!(cfg.targets["cloud"], cloud);
    assert_eq!(cfg.targets["friend"], full.targets["friend"]);
    assert_eq!(cfg.targets["usb"], full.targets["usb"]);
    assert_eq!(cfg.jobs["nas"].rpo, Some(secs(26 * 3600)));
    // The design's example, uncommented, is the error shown above.
    let uncommented = block
        .replace("# quarantine", "quarantine")
        .replace("# delete_cap", "delete_cap");
    let err = parse(&uncommented, Path::new("b.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`quarantine` only applies with propagate_deletes = true"),
        "{err}"
    );
}
