//! A complete config parses into the expected structs; secrets, durations
//! and repository URLs behave.

#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use bulwark_config::*;

const FULL: &str = r#"
[settings]
host = "nas"

[repositories.home]
url = "backups/home"
password_file = "home.pass"

[repositories.hub]
url = "rest:https://alice:pw@hub.lan:8000/alice/nas/"
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

[jobs.vaultwarden]
repository = "home"
host = "vault"
tags = ["vaultwarden", "daily"]
paths = ["/var/lib/vaultwarden"]
exclude = ["*.tmp", "/var/lib/vaultwarden/icon_cache"]
exclude_if_present = [".nobackup"]
one_file_system = true

[[jobs.vaultwarden.commands]]
command = ["pg_dumpall", "-U", "postgres"]
filename = "postgres/all.sql"

[[jobs.vaultwarden.commands]]
command = "sqlite3 /var/lib/x.db .dump"
filename = "x.sql"

[jobs.vaultwarden.hooks]
before = ["systemctl stop vaultwarden"]
after = ["systemctl start vaultwarden"]
on_failure = ["curl -fsS https://hc/fail"]
finally = ["true"]
timeout = "10m"

[jobs.vaultwarden.retention]
keep_daily = 7
keep_weekly = 4
keep_monthly = 6
keep_within = "2d12h"
prune = true
"#;

#[test]
fn full_example() {
    let cfg = parse(FULL, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    assert_eq!(cfg.settings.host.as_deref(), Some("nas"));
    let home = &cfg.repositories["home"];
    assert_eq!(
        home.url,
        RepoUrl::Local(PathBuf::from("/etc/bulwark/backups/home")),
        "relative paths resolve against the config's directory"
    );
    assert_eq!(
        home.password,
        SecretSource::File("/etc/bulwark/home.pass".into()),
        "so do relative secret files"
    );
    let hub = &cfg.repositories["hub"];
    assert_eq!(
        hub.url,
        RepoUrl::Rest("https://alice:pw@hub.lan:8000/alice/nas".into())
    );
    assert_eq!(
        hub.url.to_string(),
        "rest:https://***@hub.lan:8000/alice/nas"
    );
    assert_eq!(hub.password, SecretSource::Env("HUB_REPO_PW".into()));
    assert_eq!(hub.rest.as_ref().unwrap().username, "alice");
    let cloud = &cfg.repositories["cloud"];
    assert_eq!(
        cloud.url,
        RepoUrl::S3 {
            endpoint: "https://s3.example.com".into(),
            bucket: "bucket".into(),
            prefix: "nas/restic".into()
        }
    );
    let s3 = cloud.s3.as_ref().unwrap();
    assert_eq!(s3.region, "eu-central-1");
    assert_eq!(s3.access_key_id, Some(SecretSource::Env("AWS_KEY".into())));
    assert_eq!(
        s3.secret_access_key,
        Some(SecretSource::File("/etc/bulwark/s3.secret".into()))
    );
    assert_eq!(
        hub.rest,
        Some(RestAuth {
            username: "alice".into(),
            password: SecretSource::File("/etc/bulwark/hub-http.pass".into())
        })
    );

    let job = cfg.job("vaultwarden").unwrap();
    assert_eq!(cfg.repository_for(job).name, "home");
    assert_eq!(job.host.as_deref(), Some("vault"));
    assert_eq!(job.tags, vec!["vaultwarden", "daily"]);
    assert_eq!(job.paths, vec![PathBuf::from("/var/lib/vaultwarden")]);
    assert!(job.one_file_system);
    assert_eq!(job.commands.len(), 2);
    assert_eq!(
        job.commands[0].command,
        CommandLine::Argv(vec!["pg_dumpall".into(), "-U".into(), "postgres".into()])
    );
    assert_eq!(
        job.commands[1].command,
        CommandLine::Shell("sqlite3 /var/lib/x.db .dump".into())
    );
    assert_eq!(
        job.exclude,
        vec!["*.tmp", "/var/lib/vaultwarden/icon_cache"]
    );
    assert_eq!(job.exclude_if_present, vec![".nobackup"]);
    assert_eq!(job.commands[0].filename, "postgres/all.sql");
    assert_eq!(
        job.hooks,
        Hooks {
            before: vec!["systemctl stop vaultwarden".into()],
            after: vec!["systemctl start vaultwarden".into()],
            on_failure: vec!["curl -fsS https://hc/fail".into()],
            finally: vec!["true".into()],
            timeout: Duration::from_secs(600),
        }
    );
    assert_eq!(job.hooks.timeout, Duration::from_secs(600));
    let r = job.retention.as_ref().unwrap();
    assert_eq!(
        (r.keep_daily, r.keep_weekly, r.keep_monthly, r.keep_last),
        (Some(7), Some(4), Some(6), None)
    );
    assert_eq!(
        r.keep_within,
        Some(KeepWithin {
            years: 0,
            months: 0,
            days: 2,
            hours: 12
        })
    );
    assert!(r.prune);
    assert!(!r.is_empty());
    assert!(matches!(
        cfg.job("nope"),
        Err(ConfigError::UnknownJob { .. })
    ));
    assert_eq!(cfg.source, PathBuf::from("/etc/bulwark/bulwark.toml"));
}

#[test]
fn defaults() {
    let cfg = parse(
        "[repositories.r]\nurl = \"s3:http://minio:9000/b\"\npassword_env = \"PW\"\n[repositories.r.s3]\n[jobs.j]\nrepository = \"r\"\npaths = [\"/a\"]\n",
        Path::new("b.toml"),
    )
    .unwrap();
    assert_eq!(cfg.settings, Settings { host: None });
    let s3 = cfg.repositories["r"].s3.as_ref().unwrap();
    assert_eq!(
        (s3.region.as_str(), &s3.access_key_id, &s3.secret_access_key),
        ("us-east-1", &None, &None)
    );
    let j = cfg.job("j").unwrap();
    assert_eq!(
        (j.host.as_deref(), j.one_file_system, j.retention.as_ref()),
        (None, false, None)
    );
    assert!(j.tags.is_empty() && j.exclude.is_empty() && j.commands.is_empty());
    assert_eq!(j.hooks, Hooks::default());
    assert_eq!(j.hooks.timeout, Duration::from_secs(3600));
    assert!(Retention::default().is_empty());
    assert!(!Retention {
        keep_within: Some(KeepWithin {
            hours: 1,
            ..Default::default()
        }),
        ..Default::default()
    }
    .is_empty());
}

#[test]
fn command_lines() {
    let argv = CommandLine::Argv(vec![
        "pg_dumpall".into(),
        "-U".into(),
        "post gres".into(),
        "it's".into(),
    ]);
    assert_eq!(argv.display(), "pg_dumpall -U 'post gres' 'it'\\''s'");
    let out = CommandLine::Argv(vec!["echo".into(), "a b".into()])
        .to_command()
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"a b\n");
    let shell = CommandLine::Shell("echo $((1+2)) | tr 3 x".into());
    assert_eq!(shell.display(), "echo $((1+2)) | tr 3 x");
    assert_eq!(shell.to_command().output().unwrap().stdout, b"x\n");
    assert!(
        CommandLine::Argv(vec![]).to_command().output().is_err(),
        "an empty argv fails to spawn instead of panicking"
    );
}

#[test]
fn secrets_from_files_and_env() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("pw");
    std::fs::write(&f, "s3cret\n").unwrap();
    assert_eq!(
        SecretSource::File(f.clone()).load().unwrap().expose(),
        "s3cret"
    );
    std::fs::write(&f, "two\nlines\r\n").unwrap();
    assert_eq!(
        SecretSource::File(f.clone()).load().unwrap().expose(),
        "two\nlines",
        "only one trailing newline is removed"
    );
    std::fs::write(&f, "\n").unwrap();
    assert!(matches!(
        SecretSource::File(f.clone()).load(),
        Err(SecretError::EmptyFile(_))
    ));
    let missing = SecretSource::File(tmp.path().join("none"))
        .load()
        .unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    let secret = SecretSource::File(tmp.path().join("none"))
        .load()
        .map(|s| format!("{s:?}"));
    assert!(secret.is_err());
    std::fs::write(&f, "a\n\n").unwrap();
    assert_eq!(
        SecretSource::File(f.clone()).load().unwrap().expose(),
        "a\n",
        "only ONE trailing newline"
    );
    std::fs::write(&f, "crlf\r\n").unwrap();
    assert_eq!(
        SecretSource::File(f.clone()).load().unwrap().expose(),
        "crlf"
    );
    std::fs::write(&f, "").unwrap();
    let empty = SecretSource::File(f.clone()).load().unwrap_err();
    assert!(
        empty.to_string().contains(&f.display().to_string()),
        "{empty}"
    );
    assert!(
        missing.to_string().contains("install -m 600"),
        "says how to create one: {missing}"
    );
    std::fs::write(&f, "hunter2").unwrap();
    assert_eq!(
        format!("{:?}", SecretSource::File(f).load().unwrap()),
        "Secret(***)"
    );
    let err = SecretSource::Env("BULWARK_TEST_UNSET_VAR_4711".into())
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("BULWARK_TEST_UNSET_VAR_4711"));
    assert_eq!(format!("{:?}", Secret::new("x".into())), "Secret(***)");
    assert_eq!(Secret::new("x".into()).expose(), "x");
    assert_eq!(
        SecretSource::Env("PATH".into()).load().unwrap().expose(),
        std::env::var("PATH").unwrap()
    );
}

#[test]
fn keep_within_round_trips() {
    for s in ["30d", "1y6m", "2d12h", "1y2m3d4h", "5h"] {
        assert_eq!(s.parse::<KeepWithin>().unwrap().to_string(), s);
    }
    assert_eq!(
        "1y6m".parse::<KeepWithin>().unwrap(),
        KeepWithin {
            years: 1,
            months: 6,
            days: 0,
            hours: 0
        }
    );
    assert_eq!(
        "6m1y".parse::<KeepWithin>().unwrap().to_string(),
        "1y6m",
        "Display is canonical"
    );
    assert_eq!("1y0m".parse::<KeepWithin>().unwrap().to_string(), "1y");
    assert!("3w"
        .parse::<KeepWithin>()
        .unwrap_err()
        .contains("expected e.g. 30d, 1y6m or 2d12h"));
    for bad in [
        "",
        "30",
        "3w",
        "d",
        "1d1d",
        "0d",
        "30 days",
        "-1d",
        "99999999999d",
    ] {
        assert!(
            bad.parse::<KeepWithin>().is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn repo_urls() {
    let base = Path::new("/base");
    assert_eq!(
        RepoUrl::parse("repo", base).unwrap(),
        RepoUrl::Local("/base/repo".into())
    );
    assert_eq!(
        RepoUrl::parse("/abs", base).unwrap(),
        RepoUrl::Local("/abs".into())
    );
    assert_eq!(
        RepoUrl::parse("rest:http://h:8000/", base).unwrap(),
        RepoUrl::Rest("http://h:8000".into())
    );
    assert_eq!(
        RepoUrl::parse("s3:http://127.0.0.1:9000/b", base).unwrap(),
        RepoUrl::S3 {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "b".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        RepoUrl::parse("./a:b", base).unwrap(),
        RepoUrl::Local("/base/./a:b".into())
    );
    assert_eq!(
        RepoUrl::parse("s3:https://s3.example.com/bucket/a/b/", base)
            .unwrap()
            .to_string(),
        "s3:https://s3.example.com/bucket/a/b"
    );
    let rest = RepoUrl::parse("rest:https://alice:s3cr3t@hub.lan:8000/alice/", base).unwrap();
    assert_eq!(
        rest,
        RepoUrl::Rest("https://alice:s3cr3t@hub.lan:8000/alice".into()),
        "the URL keeps its password for use"
    );
    assert_eq!(rest.to_string(), "rest:https://***@hub.lan:8000/alice");
    assert!(!format!("{rest:?}").contains("s3cr3t"));
    assert_eq!(
        RepoUrl::parse("rest:http://bob@h/x", base)
            .unwrap()
            .to_string(),
        "rest:http://***@h/x",
        "a user name alone may be a token: hidden too"
    );
    for (bad, says) in [
        ("sftp:host:/x", "unknown repository type `sftp:`"),
        ("", "empty"),
        ("rest:hub:8000", "http:// or https://"),
        ("rest:https://", "no host"),
        ("s3:https://endpoint", "no bucket"),
    ] {
        let e = RepoUrl::parse(bad, base).unwrap_err();
        assert!(e.contains(says) && e.contains("; "), "{bad:?}: {e}");
    }
}

#[test]
fn embedded_default_parses() {
    let cfg = default_config(Path::new("/data/bulwark")).unwrap();
    let job = cfg.job("default").unwrap();
    assert_eq!(job.paths, vec![PathBuf::from("/etc")]);
    let repo = cfg.repository_for(job);
    assert_eq!(repo.url, RepoUrl::Local("/data/bulwark/repo".into()));
    assert_eq!(
        repo.password,
        SecretSource::File("/data/bulwark/repo.password".into())
    );
    assert_eq!(job.exclude_if_present, vec![".nobackup"]);
    assert_eq!(job.tags, vec!["default"]);
    assert_eq!(repo.name, "default");
    let r = job.retention.as_ref().unwrap();
    assert_eq!(
        (r.keep_daily, r.keep_weekly, r.keep_monthly),
        (Some(7), Some(4), Some(6))
    );
    assert!(r.prune);
    assert_eq!(cfg.source, PathBuf::from("<embedded default>"));
    assert!(DEFAULT_CONFIG.contains("@DATA@") && DEFAULT_CONFIG.contains("# "));
}

#[test]
fn the_commented_out_examples_in_the_default_are_valid_too() {
    let uncommented: String = DEFAULT_CONFIG
        .replace("@DATA@", "/data")
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(t)
                if t.starts_with('[')
                    || t.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
            {
                t
            }
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        uncommented.contains("\n[jobs.default.hooks]\n"),
        "{uncommented}"
    );
    let cfg = parse(&uncommented, Path::new("/etc/bulwark.toml")).unwrap();
    let job = cfg.job("default").unwrap();
    assert_eq!(job.commands.len(), 1);
    assert_eq!(job.hooks.timeout, Duration::from_secs(600));
    assert_eq!(cfg.settings.host.as_deref(), Some("nas"));
    assert!(job.one_file_system);
}

/// The ```toml blocks and the "$ bulwark config check" output in docs/configuration.md.
fn doc_blocks() -> (Vec<String>, String) {
    let doc = include_str!("../../../docs/configuration.md");
    let mut tomls = Vec::new();
    let mut output = String::new();
    let mut rest = doc;
    while let Some(start) = rest.find("\n```") {
        let after = &rest[start + 4..];
        let (lang, body) = after.split_once('\n').unwrap();
        let end = body.find("\n```").unwrap();
        let block = &body[..=end];
        if lang == "toml" {
            tomls.push(block.to_string());
        } else if block.starts_with("$ bulwark config check bulwark.toml\n") {
            output = block.lines().skip(1).collect::<Vec<_>>().join("\n");
        }
        rest = &body[end + 4..];
    }
    (tomls, output)
}

#[test]
fn the_documented_example_parses_and_the_documented_errors_are_real() {
    let (tomls, output) = doc_blocks();
    let cfg = parse(&tomls[0], Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    let job = cfg.job("vaultwarden").unwrap();
    assert_eq!(job.commands[0].filename, "postgres/all.sql");
    let r = job.retention.as_ref().unwrap();
    assert_eq!(
        (r.keep_daily, r.keep_weekly, r.keep_monthly),
        (Some(7), Some(4), Some(6))
    );
    let bad = tomls.iter().find(|t| t.contains("one_file_sytem")).unwrap();
    let err = parse(bad, Path::new("bulwark.toml")).unwrap_err();
    assert_eq!(err.to_string(), output);
}
