//! No secret is reachable through `Debug`, `Display` or `Serialize`: a
//! configuration full of distinctive secret values — inline where the file
//! allows credentials (repository, target and hub URLs), and in every kind
//! of secret file (repository and REST passwords, S3 keys, notifier tokens
//! and passwords, secret webhook URLs, monitor secret headers) — is parsed,
//! every secret is loaded the way Bulwark uses it (notifiers built,
//! monitors' secret headers loaded), and everything is printed and
//! serialized; no secret value may appear.
#![allow(missing_docs, clippy::unwrap_used)]

use bulwark_config::{parse, MonitorCheck};

/// Every secret value planted; each is unique and never a substring of
/// anything else in the output.
const SECRETS: &[&str] = &[
    "urluserQ1",
    "urlpassQ2",
    "tgtuserQ3",
    "tgtpassQ4",
    "s3urluserQ5",
    "s3urlpassQ6",
    "hubtokenQ7",
    "repopwQ8",
    "restpwQ9",
    "s3keyidQ10",
    "s3secretQ11",
    "ntfytokenQ12",
    "gotifytokenQ13",
    "smtppwQ14",
    "discordQ15",
    "apikeyQ16",
    "cookieQ17",
    "webhookhdrQ18",
    "pingurlQ19",
];

fn config_text(dir: &std::path::Path) -> String {
    let file = |name: &str, value: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{value}\n")).unwrap();
        p.display().to_string()
    };
    format!(
        r#"
[hosts.nas]
[agent]
hub_url = "https://hub.lan:8000/"

[repositories.inline]
url = "rest:https://urluserQ1:urlpassQ2@hub.lan:8000/alice/nas"
password_file = "{repo_pw}"
[repositories.inline.rest]
username = "alice"
password_file = "{rest_pw}"

[repositories.token]
url = "rest:https://hubtokenQ7@hub.lan:8000/alice/nas2"
password_file = "{repo_pw}"

[repositories.cloud]
url = "s3:https://s3urluserQ5:s3urlpassQ6@s3.example.com/bucket/nas"
password_file = "{repo_pw}"
[repositories.cloud.s3]
region = "eu-central-1"
access_key_id_file = "{s3_id}"
secret_access_key_file = "{s3_secret}"

[jobs.etc]
host = "nas"
repository = "inline"
paths = ["/etc"]

[hub]
data = "/srv/bulwark"

[targets.friend]
url = "rest:https://tgtuserQ3:tgtpassQ4@friend.example.net:8000/alice"
medium = "peer"
offsite = true

[monitors.web]
type = "http"
url = "https://nas.lan/"
on = ["nas"]
header_files = {{ "X-Api-Key" = "{api_key}", "Cookie" = "{cookie}" }}

[notifiers.phone]
type = "ntfy"
topic = "alerts"
token_file = "{ntfy}"

[notifiers.gotify]
type = "gotify"
url = "https://gotify.lan"
token_file = "{gotify}"

[notifiers.mail]
type = "email"
host = "127.0.0.1"
security = "none"
username = "bulwark"
password_file = "{smtp}"
from = "b@example.org"
to = ["me@example.org"]

[notifiers.chat]
type = "discord"
url_file = "{discord}"

[notifiers.hook]
type = "webhook"
url = "https://hooks.lan/x"
header_files = {{ "Authorization" = "{hook_hdr}" }}

[[routes]]
notifiers = ["phone", "gotify", "mail", "chat", "hook"]

[alerts]
hub_ping_url_file = "{ping}"
"#,
        repo_pw = file("repo.pw", "repopwQ8"),
        rest_pw = file("rest.pw", "restpwQ9"),
        s3_id = file("s3.id", "s3keyidQ10"),
        s3_secret = file("s3.secret", "s3secretQ11"),
        ntfy = file("ntfy.token", "ntfytokenQ12"),
        gotify = file("gotify.token", "gotifytokenQ13"),
        smtp = file("smtp.pw", "smtppwQ14"),
        discord = file(
            "discord.url",
            "https://discord.com/api/webhooks/1/discordQ15"
        ),
        api_key = file("api.key", "apikeyQ16"),
        cookie = file("cookie", "cookieQ17"),
        hook_hdr = file("hook.hdr", "Bearer webhookhdrQ18"),
        ping = file("ping.url", "https://hc.lan/ping/pingurlQ19"),
    )
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

#[test]
fn no_secret_in_debug_display_or_serialize() {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path());
    let cfg = parse(&text, &dir.path().join("bulwark.toml")).unwrap_or_else(|e| panic!("{e}"));

    // The whole model, and each part that holds a secret or a source of one.
    assert_clean("Config's Debug", &format!("{cfg:?}"));
    assert_clean("Config's pretty Debug", &format!("{cfg:#?}"));
    for (name, r) in &cfg.repositories {
        assert_clean(name, &format!("{} {:?} {:?}", r.url, r.url, r));
        // Loaded secrets: Debug of the loaded value.
        let pw = r.password.load().unwrap();
        assert_clean("a loaded Secret", &format!("{pw:?}"));
    }
    for t in cfg.targets.values() {
        assert_clean("a target", &format!("{} {:?} {:?}", t.url, t.url, t));
    }
    assert_clean("[agent]", &format!("{:?}", cfg.agent));

    // Notifiers, built with their secrets loaded.
    for n in cfg.notifiers.values() {
        let built = n.build().unwrap_or_else(|e| panic!("{}: {e}", n.name));
        assert_clean(&n.name, &format!("{n:?} {built:?} {built:#?} {built}"));
    }

    // Monitors: the declared spec (Debug and Serialize) and the spec with its
    // secret headers loaded (Debug; it is never serialized).
    for m in cfg.monitors.values() {
        assert_clean(&m.name, &format!("{m:?}"));
        if let MonitorCheck::Probe(p) = &m.check {
            assert_clean(
                "a probe spec's JSON",
                &serde_json::to_string(&p.spec).unwrap(),
            );
            let loaded = p.load().unwrap_or_else(|e| panic!("{e}"));
            assert_clean("a loaded probe spec", &format!("{loaded:?} {loaded:#?}"));
            // The loaded spec really holds the secrets (so the checks above
            // are not vacuous).
            let bulwark_monitor::Probe::Http(h) = &loaded.probe else {
                panic!("http")
            };
            assert_eq!(
                h.headers.get("X-Api-Key").map(String::as_str),
                Some("apikeyQ16")
            );
        }
    }
    assert_clean("[alerts]", &format!("{:?}", cfg.alerts));
}
