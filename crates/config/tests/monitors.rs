//! Monitoring: `[monitors.NAME]`, `[notifiers.NAME]`, `[[routes]]`,
//! `[[silences]]` and `[alerts]` — the documented example as a model, the
//! defaults, every bad input with its position and hint, secrets kept out
//! of messages, building notifiers, and what agents receive.

#![allow(clippy::unwrap_used)]

mod common;

use common::{case, check_cases, diagnostics, Case};

use std::{collections::BTreeMap, path::Path, time::Duration};

use bulwark_config::*;
use bulwark_monitor::{
    CommandLine, CommandProbe, DnsProbe, HttpProbe, JsonCheck, MonitorSpec, PathCheck, PathProbe,
    Probe, Rcode, RecordType, StatusRange, TcpProbe, TlsProbe, Vantage,
};
use bulwark_notify::{Channel, Route, Severity, SmtpSecurity, WebhookMethod};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

const ORIGIN: &str = "/etc/bulwark/bulwark.toml";

/// The full example of docs/monitoring.md.
fn full() -> String {
    let doc = include_str!("../../../docs/monitoring.md");
    let start = doc.find("## A full example").unwrap();
    let block = &doc[start..];
    let block = &block[block.find("```toml\n").unwrap() + 8..];
    block[..block.find("\n```").unwrap()].to_string()
}

fn spec(name: &str, probe: Probe) -> MonitorSpec {
    MonitorSpec::new(name, probe)
}

fn probe(spec: MonitorSpec) -> MonitorCheck {
    MonitorCheck::Probe(ProbeCheck {
        spec,
        secret_headers: BTreeMap::new(),
    })
}

fn monitor(name: &str, check: MonitorCheck) -> MonitorDecl {
    MonitorDecl {
        name: name.into(),
        check,
        severity: Severity::Warning,
        remind_every: Some(secs(12 * 3600)), // the example's [alerts] remind_every
        recovery: true,
        enabled: true,
    }
}

fn agent(name: &str) -> Vantage {
    Vantage::Agent(name.into())
}

fn file(p: &str) -> SecretSource {
    SecretSource::File(p.into())
}

#[test]
fn the_documented_example_parses_into_the_model() {
    let cfg = parse(&full(), Path::new(ORIGIN)).unwrap();
    let m = &cfg.monitors;
    assert_eq!(
        m.keys().collect::<Vec<_>>(),
        [
            "backups",
            "dns-no-leak",
            "dns-pihole",
            "grafana",
            "hub-disk",
            "mail-cert",
            "nas-mount",
            "nextcloud",
            "offsite",
            "photos",
            "raid",
            "ssh-vps",
            "zpool"
        ]
    );

    let nextcloud = HttpProbe {
        method: "GET".into(),
        headers: [("Accept".to_string(), "application/json".to_string())].into(),
        expected_status: vec![StatusRange { min: 200, max: 299 }],
        body_contains: Some("installed".into()),
        json: Some(JsonCheck {
            pointer: "/maintenance".into(),
            equals: false.into(),
        }),
        max_response_time: Some(secs(3)),
        min_cert_days: Some(14),
        follow_redirects: false,
        ..HttpProbe::new("https://cloud.example.org/status.php")
    };
    assert_eq!(
        m["nextcloud"],
        MonitorDecl {
            severity: Severity::Critical,
            ..monitor(
                "nextcloud",
                probe(MonitorSpec {
                    interval: secs(30),
                    timeout: secs(5),
                    vantage: vec![Vantage::Hub, agent("nas"), agent("vps")],
                    quorum: 2,
                    ..spec("nextcloud", Probe::Http(nextcloud))
                })
            )
        }
    );
    assert_eq!(m["nextcloud"].kind(), MonitorKind::Http);

    let grafana = HttpProbe {
        ca_file: Some("/etc/bulwark/lan-ca.pem".into()),
        expected_status: vec![StatusRange::single(200), StatusRange::single(204)],
        ..HttpProbe::new("https://grafana.lan/api/health")
    };
    assert_eq!(
        m["grafana"].check,
        MonitorCheck::Probe(ProbeCheck {
            spec: MonitorSpec {
                vantage: vec![agent("nas")],
                ..spec("grafana", Probe::Http(grafana))
            },
            secret_headers: [(
                "Authorization".to_string(),
                file("/etc/bulwark/grafana.auth")
            )]
            .into(),
        })
    );
    assert!(!format!("{:?}", m["grafana"]).contains("Bearer"));

    assert_eq!(
        m["ssh-vps"],
        monitor(
            "ssh-vps",
            probe(MonitorSpec {
                failure_threshold: 5,
                success_threshold: 1,
                ..spec(
                    "ssh-vps",
                    Probe::Tcp(TcpProbe {
                        host: "vps.example.org".into(),
                        port: 22
                    })
                )
            })
        )
    );
    let pihole = DnsProbe {
        expected_answers: vec!["192.168.1.10".into()],
        ..DnsProbe::new("192.168.1.2:53".parse().unwrap(), "nas.home.arpa")
    };
    assert_eq!(
        m["dns-pihole"],
        monitor(
            "dns-pihole",
            probe(MonitorSpec {
                vantage: vec![agent("nas")],
                ..spec("dns-pihole", Probe::Dns(pihole))
            })
        )
    );
    let leak = DnsProbe {
        expected_rcode: Rcode::NxDomain,
        ..DnsProbe::new("192.168.1.2:53".parse().unwrap(), "internal.example.org")
    };
    assert_eq!(
        m["dns-no-leak"],
        MonitorDecl {
            severity: Severity::Info,
            ..monitor("dns-no-leak", probe(spec("dns-no-leak", Probe::Dns(leak))))
        }
    );
    assert_eq!(
        m["mail-cert"],
        MonitorDecl {
            remind_every: None,
            ..monitor(
                "mail-cert",
                probe(spec(
                    "mail-cert",
                    Probe::Tls(TlsProbe {
                        min_days: 21,
                        ..TlsProbe::new("mail.example.org", 993)
                    })
                ))
            )
        }
    );
    assert_eq!(
        m["nas-mount"],
        monitor(
            "nas-mount",
            probe(MonitorSpec {
                timeout: secs(5),
                vantage: vec![agent("vps")],
                ..spec(
                    "nas-mount",
                    Probe::Path(PathProbe::new("/mnt/nas", PathCheck::Mountpoint))
                )
            })
        )
    );
    assert_eq!(
        m["raid"],
        monitor(
            "raid",
            probe(MonitorSpec {
                interval: secs(300),
                timeout: secs(60),
                vantage: vec![agent("nas")],
                ..spec(
                    "raid",
                    Probe::Command(CommandProbe::argv(["/usr/local/bin/check-raid", "--quiet"]))
                )
            })
        )
    );
    assert_eq!(
        m["zpool"],
        MonitorDecl {
            enabled: false,
            ..monitor(
                "zpool",
                probe(MonitorSpec {
                    vantage: vec![agent("nas")],
                    ..spec(
                        "zpool",
                        Probe::Command(CommandProbe {
                            command: CommandLine::Shell(
                                "zpool status -x | grep -q 'all pools are healthy'".into()
                            ),
                            expected_exit_code: 0,
                        })
                    )
                })
            )
        }
    );
    assert_eq!(
        m["backups"],
        monitor(
            "backups",
            MonitorCheck::Backup(BackupCheck {
                jobs: vec![],
                max_age: secs(26 * 3600),
                interval: secs(60)
            })
        )
    );
    assert_eq!(
        m["photos"],
        MonitorDecl {
            severity: Severity::Critical,
            ..monitor(
                "photos",
                MonitorCheck::Backup(BackupCheck {
                    jobs: vec!["nas".into()],
                    max_age: secs(48 * 3600),
                    interval: secs(60)
                })
            )
        }
    );
    assert_eq!(
        m["offsite"],
        MonitorDecl {
            recovery: false,
            ..monitor(
                "offsite",
                MonitorCheck::Replication(ReplicationCheck {
                    targets: vec!["usb".into()],
                    jobs: vec!["nas".into()]
                })
            )
        }
    );
    assert_eq!(
        m["hub-disk"],
        monitor(
            "hub-disk",
            MonitorCheck::Disk(DiskCheck {
                min_free: MinFree::Bytes(50 << 30),
                interval: secs(60)
            })
        )
    );
    for builtin in ["backups", "photos", "offsite", "hub-disk"] {
        assert!(
            m[builtin].runs_on(&Vantage::Hub) && !m[builtin].runs_on(&agent("nas")),
            "{builtin}"
        );
        assert!(m[builtin].spec().is_none() && !m[builtin].kind().is_probe());
    }
    // On the agents: the enabled probe monitors naming them.
    let names = |host| {
        cfg.monitors_of(host)
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names("nas"),
        ["dns-pihole", "grafana", "nextcloud", "raid"],
        "zpool is disabled"
    );
    assert_eq!(names("vps"), ["nas-mount", "nextcloud"]);

    // Notifiers.
    let n = &cfg.notifiers;
    assert_eq!(
        n.keys().collect::<Vec<_>>(),
        ["discord", "gotify", "hook", "mail", "phone", "slack"]
    );
    assert_eq!(
        n["phone"].settings,
        NotifierSettings::Ntfy {
            server: "https://ntfy.example.org".into(),
            topic: "homelab-alerts".into(),
            token: Some(file("/etc/bulwark/ntfy.token")),
            tags: vec!["homelab".into()],
            ca_file: None,
        }
    );
    assert_eq!(
        n["gotify"].settings,
        NotifierSettings::Gotify {
            url: "https://gotify.lan".into(),
            token: SecretSource::Env("GOTIFY_TOKEN".into()),
            ca_file: None
        }
    );
    assert_eq!(
        n["discord"].settings,
        NotifierSettings::Discord {
            url: file("/etc/bulwark/discord.url")
        }
    );
    assert_eq!(
        n["slack"].settings,
        NotifierSettings::Slack {
            url: SecretSource::Env("SLACK_WEBHOOK_URL".into()),
            text_only: true
        }
    );
    assert_eq!(
        n["mail"].settings,
        NotifierSettings::Email {
            host: "smtp.example.org".into(),
            port: Some(587),
            security: SmtpSecurity::Starttls,
            username: Some("bulwark@example.org".into()),
            password: Some(file("/etc/bulwark/smtp.pass")),
            from: "Bulwark <bulwark@example.org>".into(),
            to: vec!["me@example.org".into()],
            ca_file: None,
        }
    );
    assert_eq!(
        n["hook"].settings,
        NotifierSettings::Webhook {
            url: WebhookUrl::Plain("https://hooks.example.org/bulwark".into()),
            method: WebhookMethod::Post,
            headers: BTreeMap::new(),
            secret_headers: [("Authorization".to_string(), file("/etc/bulwark/hook.auth"))].into(),
            template: Some(
                r#"{"text": "{{title}}", "severity": "{{severity}}", "monitor": "{{subject}}"}"#
                    .into()
            ),
            ca_file: None,
        }
    );
    assert_eq!(n["hook"].settings.kind(), "webhook");

    // Routes, in file order.
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        cfg.routes,
        [
            Route {
                notifiers: strings(&["phone"]),
                subjects: vec![],
                min_severity: Severity::Critical
            },
            Route {
                notifiers: strings(&["discord", "mail"]),
                subjects: strings(&["backups", "photos", "offsite"]),
                min_severity: Severity::Info
            },
            Route {
                notifiers: strings(&["slack", "gotify", "hook"]),
                subjects: strings(&["nextcloud", "dns-*"]),
                min_severity: Severity::Warning
            },
        ]
    );

    // Silences, in file order.
    let s = &cfg.silences;
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].monitors, ["nextcloud"]);
    assert_eq!(s[0].reason.as_deref(), Some("weekly Nextcloud updates"));
    let SilenceWindow::Recurring { calendar, duration } = &s[0].window else {
        panic!("{:?}", s[0])
    };
    assert_eq!((calendar.as_str(), *duration), ("Sun 03:00", secs(3600)));
    assert_eq!(
        s[1],
        Silence {
            monitors: strings(&["nas-*", "raid"]),
            window: SilenceWindow::Once {
                from: ts("2026-12-01T01:00:00Z"),
                until: ts("2026-12-01T05:00:00Z")
            },
            reason: Some("moving the NAS".into()),
        }
    );
    assert_eq!(
        s[2],
        Silence {
            monitors: vec![],
            window: SilenceWindow::Once {
                from: ts("2026-12-24T00:00:00Z"),
                until: ts("2026-12-27T00:00:00Z")
            },
            reason: None,
        }
    );
    assert!(cfg.silenced("nas-mount", ts("2026-12-01T03:00:00Z")));
    assert!(cfg.silenced("raid", ts("2026-12-01T01:00:00Z")));
    assert!(!cfg.silenced("raid", ts("2026-12-01T05:00:00Z")));
    assert!(!cfg.silenced("nextcloud", ts("2026-12-01T03:00:00Z")));
    assert!(
        cfg.silenced("nextcloud", ts("2026-12-25T12:00:00Z")),
        "the third silence covers every monitor"
    );

    // [alerts].
    assert_eq!(
        cfg.alerts,
        Alerts {
            hub_ping: Some(file("/etc/bulwark/hc-ping.url")),
            hub_ping_interval: secs(300),
            connectivity: vec![
                Probe::Tcp(TcpProbe {
                    host: "1.1.1.1".into(),
                    port: 53
                }),
                Probe::Tcp(TcpProbe {
                    host: "9.9.9.9".into(),
                    port: 53
                }),
                Probe::Http(HttpProbe {
                    expected_status: vec![StatusRange { min: 100, max: 599 }],
                    insecure: true,
                    follow_redirects: false,
                    ..HttpProbe::new("http://192.168.1.1")
                }),
            ],
            remind_every: Some(secs(12 * 3600)),
        }
    );
}

#[test]
fn defaults() {
    let text = r#"
[monitors.web]
type = "http"
url = "https://nas.lan/"

[monitors.ssh]
type = "tcp"
host = "::1"
port = 22

[monitors.dns]
type = "dns"
server = "[2620:fe::fe]"
name = "example.org"
record = "aaaa"
expect = ["2606:2800:220:1:248:1893:25c8:1946"]

[monitors.cert]
type = "tls"
host = "nas.lan"

[monitors.mnt]
type = "path"
path = "/mnt/nas"

[monitors.script]
type = "command"
command = "true"

[monitors.jobs]
type = "backup"

[monitors.disk]
type = "disk"

[monitors.quota]
type = "disk"
min_free = 10737418240
interval = "5m"

[monitors.tight]
type = "disk"
min_free = "2.5 %"
remind_every = "1h"

[notifiers.only]
type = "ntfy"
topic = "alerts"
"#;
    let cfg = parse(text, Path::new("x.toml")).unwrap();
    let m = &cfg.monitors;
    let d = |name: &str, p: Probe| MonitorDecl {
        name: name.into(),
        check: probe(spec(name, p)),
        severity: Severity::Warning,
        remind_every: Some(DEFAULT_REMIND_EVERY),
        recovery: true,
        enabled: true,
    };
    assert_eq!(
        m["web"],
        d("web", Probe::Http(HttpProbe::new("https://nas.lan/")))
    );
    let MonitorCheck::Probe(p) = &m["web"].check else {
        panic!()
    };
    assert_eq!(
        (
            p.spec.interval,
            p.spec.timeout,
            p.spec.failure_threshold,
            p.spec.success_threshold,
            p.spec.quorum
        ),
        (secs(60), secs(10), 3, 2, 1)
    );
    assert_eq!(p.spec.vantage, [Vantage::Hub]);
    assert_eq!(
        m["ssh"],
        d(
            "ssh",
            Probe::Tcp(TcpProbe {
                host: "::1".into(),
                port: 22
            })
        )
    );
    assert_eq!(
        m["dns"],
        d(
            "dns",
            Probe::Dns(DnsProbe {
                record_type: RecordType::AAAA,
                expected_answers: vec!["2606:2800:220:1:248:1893:25c8:1946".into()],
                ..DnsProbe::new("[2620:fe::fe]:53".parse().unwrap(), "example.org")
            })
        )
    );
    assert_eq!(
        m["cert"],
        d("cert", Probe::Tls(TlsProbe::new("nas.lan", 443)))
    );
    assert_eq!(
        m["mnt"],
        d(
            "mnt",
            Probe::Path(PathProbe::new("/mnt/nas", PathCheck::Readable))
        )
    );
    assert_eq!(
        m["script"],
        d("script", Probe::Command(CommandProbe::shell("true")))
    );
    assert_eq!(
        m["jobs"].check,
        MonitorCheck::Backup(BackupCheck {
            jobs: vec![],
            max_age: DEFAULT_MAX_AGE,
            interval: secs(60)
        })
    );
    assert_eq!(DEFAULT_MAX_AGE, secs(48 * 3600));
    assert_eq!(
        m["disk"].check,
        MonitorCheck::Disk(DiskCheck {
            min_free: MinFree::Percent(10.0),
            interval: secs(60)
        })
    );
    assert_eq!(
        m["quota"].check,
        MonitorCheck::Disk(DiskCheck {
            min_free: MinFree::Bytes(10 << 30),
            interval: secs(300)
        })
    );
    assert_eq!(
        m["tight"].check,
        MonitorCheck::Disk(DiskCheck {
            min_free: MinFree::Percent(2.5),
            interval: secs(60)
        })
    );
    assert_eq!(m["tight"].remind_every, Some(secs(3600)));

    // One notifier and no routes: everything goes to it.
    assert_eq!(
        cfg.routes,
        [Route {
            notifiers: vec!["only".into()],
            subjects: vec![],
            min_severity: Severity::Info
        }]
    );
    assert_eq!(
        cfg.notifiers["only"].settings,
        NotifierSettings::Ntfy {
            server: DEFAULT_NTFY_SERVER.into(),
            topic: "alerts".into(),
            token: None,
            tags: vec![],
            ca_file: None
        }
    );
    assert_eq!(cfg.alerts, Alerts::default());
    assert_eq!(
        (
            cfg.alerts.hub_ping.as_ref(),
            cfg.alerts.hub_ping_interval,
            cfg.alerts.remind_every
        ),
        (None, secs(60), Some(secs(24 * 3600)))
    );
    assert!(cfg.silences.is_empty());

    // Without any of it.
    let cfg = parse("[settings]\n", Path::new("x.toml")).unwrap();
    assert!(
        cfg.monitors.is_empty()
            && cfg.notifiers.is_empty()
            && cfg.routes.is_empty()
            && cfg.silences.is_empty()
    );
    assert_eq!(cfg.alerts, Alerts::default());

    // `[alerts] remind_every = "off"` turns reminders off by default; a monitor can turn them back on.
    let cfg = parse(
        "[alerts]\nremind_every = \"off\"\n[monitors.a]\ntype = \"disk\"\n[monitors.b]\ntype = \"disk\"\nremind_every = \"2h\"\n",
        Path::new("x.toml"),
    )
    .unwrap();
    assert_eq!(
        (
            cfg.monitors["a"].remind_every,
            cfg.monitors["b"].remind_every
        ),
        (None, Some(secs(7200)))
    );
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let text = r#"
[monitors.web]
type = "http"
url = "https://nas.lan/"
ca_file = "lan-ca.pem"
header_files = { "X-Api-Key" = "secrets/key" }
header_envs = { "Cookie" = "APP_COOKIE" }

[notifiers.mail]
type = "email"
host = "127.0.0.1"
security = "none"
username = "bulwark"
password_file = "smtp.pass"
from = "b@example.org"
to = ["me@example.org"]
ca_file = "ca.pem"

[alerts]
hub_ping_url_file = "hc.url"
"#;
    let cfg = parse(text, Path::new(ORIGIN)).unwrap();
    let MonitorCheck::Probe(p) = &cfg.monitors["web"].check else {
        panic!()
    };
    let Probe::Http(h) = &p.spec.probe else {
        panic!()
    };
    assert_eq!(
        h.ca_file.as_deref(),
        Some(Path::new("/etc/bulwark/lan-ca.pem"))
    );
    assert_eq!(
        p.secret_headers,
        BTreeMap::from([
            ("Cookie".to_string(), SecretSource::Env("APP_COOKIE".into())),
            ("X-Api-Key".to_string(), file("/etc/bulwark/secrets/key")),
        ])
    );
    let NotifierSettings::Email {
        password,
        ca_file,
        security,
        ..
    } = &cfg.notifiers["mail"].settings
    else {
        panic!()
    };
    assert_eq!(
        password,
        &Some(file("/etc/bulwark/smtp.pass")),
        "a password over plain SMTP to localhost is fine"
    );
    assert_eq!(
        (ca_file.as_deref(), *security),
        (Some(Path::new("/etc/bulwark/ca.pem")), SmtpSecurity::None)
    );
    assert_eq!(cfg.alerts.hub_ping, Some(file("/etc/bulwark/hc.url")));
}

// ---------------------------------------------------------------- bad inputs

/// A monitor `m` whose table starts on line 2.
fn mon(body: &str) -> String {
    format!("[monitors.m]\n{body}")
}

/// An http monitor `m` on lines 1–3; `body` starts on line 4.
fn http(body: &str) -> String {
    mon(&format!(
        "type = \"http\"\nurl = \"https://nas.lan/health\"\n{body}"
    ))
}

/// Hosts `nas` and `vps`, and a tcp monitor `m` on lines 3–6; `body` starts on line 7.
fn hosts(body: &str) -> String {
    format!(
        "[hosts.nas]\n[hosts.vps]\n[monitors.m]\ntype = \"tcp\"\nhost = \"h\"\nport = 22\n{body}"
    )
}

/// A job `nas` with an rpo, a job `plain` without, and a target `usb` on
/// lines 1–14; a monitor `m` starts on line 15, its `body` on line 16.
fn jobs(body: &str) -> String {
    format!(
        "[repositories.r]\nurl = \"/r\"\npassword_file = \"/p\"\n[jobs.nas]\nrepository = \"r\"\npaths = [\"/a\"]\nrpo = \"26h\"\n[jobs.plain]\nrepository = \"r\"\npaths = [\"/b\"]\n[targets.usb]\nurl = \"/mnt/usb\"\nmedium = \"disk\"\noffsite = false\n[monitors.m]\n{body}"
    )
}

/// A notifier `n` whose table starts on line 2.
fn notifier(body: &str) -> String {
    format!("[notifiers.n]\n{body}")
}

/// An email notifier `n` on lines 1–5; `body` starts on line 6.
fn email(body: &str) -> String {
    notifier(&format!(
        "type = \"email\"\nhost = \"smtp.example.org\"\nfrom = \"b@example.org\"\nto = [\"me@example.org\"]\n{body}"
    ))
}

/// A monitor `web`, notifiers `phone` and `mail` on lines 1–8; `body` starts on line 9.
fn routed(body: &str) -> String {
    format!(
        "[monitors.web]\ntype = \"disk\"\n[notifiers.phone]\ntype = \"ntfy\"\ntopic = \"t\"\n[notifiers.mail]\ntype = \"slack\"\nurl_env = \"SLACK_URL\"\n{body}"
    )
}

/// A monitor `web` on lines 1–2, then `[[silences]]` on line 3; `body` starts on line 4.
fn silence(body: &str) -> String {
    format!("[monitors.web]\ntype = \"disk\"\n[[silences]]\n{body}")
}

fn cases() -> Vec<Case> {
    vec![
        // types and names
        case(mon("type = \"htp\"\n"), "2:8", "`htp` is not a monitor type", "did you mean `http`?"),
        case(mon("type = \"ping\"\n"), "2:8", "`ping` is not a monitor type", "types: http, tcp, dns, tls, path, command, backup, replication, disk"),
        case(mon("url = \"https://x.org\"\n"), "1:11", "monitor `m` has no `type`", "add type = \"http\""),
        case("[monitors.\"my web\"]\ntype = \"disk\"\n", "1:11", "`my web` is not a valid monitor name", "letters"),
        case("[monitors]\nm = 1\n", "2:5", "wrong type for `monitors.m`: expected a table", "[monitors.m]"),
        case("[monitor.m]\ntype = \"disk\"\n", "1:2", "unknown key `monitor`", "did you mean `monitors`?"),
        case(http("body_contain = \"ok\"\n"), "4:1", "unknown key `body_contain`", "did you mean `body_contains`?"),
        // keys of another type
        case(http("port = 443\n"), "4:8", "`port` does not apply to a `http` monitor", "`port` applies to `tcp`, `tls` monitors"),
        case(mon("type = \"backup\"\non = [\"hub\"]\n"), "3:6", "`on` does not apply to a `backup` monitor", "evaluated by the hub itself"),
        case(jobs("type = \"replication\"\ninterval = \"1m\"\n"), "17:12", "`interval` does not apply to a `replication` monitor", "routes the alerts the hub raises"),
        case(mon("type = \"disk\"\njob = \"nas\"\n"), "3:7", "`job` does not apply to a `disk` monitor", "`job` applies to `backup` monitors"),
        // common keys
        case(http("interval = \"often\"\n"), "4:12", "`often` is not a duration", "interval = \"60s\""),
        case(http("timeout = \"0s\"\n"), "4:11", "`timeout` must not be zero", "timeout = \"10s\""),
        case(http("timeout = \"2m\"\n"), "4:11", "`timeout` (2m) is longer than `interval` (1m)", "make the timeout shorter"),
        case(http("interval = \"5s\"\n"), "4:12", "`interval` (5s) is shorter than the default timeout (10s)", "set timeout = \"5s\" or less"),
        case(http("failure_threshold = 0\n"), "4:21", "`failure_threshold` must be at least 1", "failure_threshold = 3"),
        case(
            http("success_threshold = \"2\"\n"),
            "4:21",
            "wrong type for `success_threshold`: expected an integer (at least 1), found a string",
            "e.g. success_threshold = 2",
        ),
        case(http("severity = \"urgent\"\n"), "4:12", "`urgent` is not a severity", "severity = \"info\", \"warning\" or \"critical\""),
        case(http("severity = \"warn\"\n"), "4:12", "`warn` is not a severity", "did you mean `warning`?"),
        case(http("remind_every = \"0s\"\n"), "4:16", "`remind_every` must not be zero", "remind_every = \"off\""),
        case(http("enabled = \"no\"\n"), "4:11", "wrong type for `enabled`: expected a boolean", "enabled = true"),
        // vantage points and quorum
        case(hosts("on = [\"hub\", \"nsa\"]\n"), "7:14", "unknown host `nsa` in `on`", "did you mean `nas`?"),
        case(http("on = [\"nas\"]\n"), "4:7", "unknown host `nas` in `on`", "declare it with [hosts.NAME]"),
        case(hosts("on = [\"nas\", \"nas\"]\n"), "7:14", "`nas` is listed twice in `on`", "remove one"),
        case(hosts("on = []\n"), "7:6", "`on` is empty", "remove it to run the monitor on the hub"),
        case(
            hosts("on = [\"hub\", \"nas\"]\nquorum = 3\n"),
            "8:10",
            "`quorum` is 3, but monitor `m` runs on only 2 vantage points",
            "at most 2 here (on = [\"hub\", \"nas\"])",
        ),
        case(http("quorum = 2\n"), "4:10", "`quorum` is 2, but monitor `m` runs on only 1 vantage point", "at most 1 here"),
        case(http("quorum = 0\n"), "4:10", "`quorum` must be at least 1", "quorum = 2"),
        // http
        case(mon("type = \"http\"\n"), "1:11", "http monitor `m` has no `url`", "add url = \"https://"),
        case(mon("type = \"http\"\nurl = \"nas.lan/health\"\n"), "3:7", "`url` must start with http:// or https://", "url = \"https://nas.lan:8443/health\""),
        case(
            mon("type = \"http\"\nurl = \"https://admin:hunter2@nas.lan/\"\n"),
            "3:7",
            "`url` must not contain a user name or password",
            "header_files = { \"Authorization\"",
        ),
        case(mon("type = \"http\"\nurl = \"https://exa mple.org/\"\n"), "3:7", "monitor `m`: invalid url \"https://exa mple.org/\"", "url = \"https://"),
        case(http("method = \"GE T\"\n"), "4:10", "monitor `m`: invalid method \"GE T\": not an HTTP method", "method = \"HEAD\""),
        case(
            http("headers = { Authorization = \"Bearer hunter2\" }\n"),
            "4:13",
            "the value of header `Authorization` is a credential",
            "header_files = { \"Authorization\" = \"/etc/bulwark/authorization.header\" }",
        ),
        case(http("headers = { Accept = \"a\" }\nheader_envs = { accept = \"ACCEPT\" }\n"), "5:17", "header `accept` is set twice (also in `headers`)", "keep one"),
        case(
            http("header_envs = { Authorization = \"Bearer x\" }\n"),
            "4:33",
            "a value in `header_envs` must be the name of an environment variable",
            "header_envs = { \"Authorization\" = \"APP_AUTH\" }",
        ),
        case(http("header_files = { \"X-Token\" = \"\" }\n"), "4:30", "`header_files` is empty", "give the path of a file"),
        case(http("headers = { Accept = 1 }\n"), "4:22", "wrong type in `headers`: expected a table of strings, but this element is an integer", ""),
        case(http("expected_status = \"600\"\n"), "4:19", "bad `expected_status`: \"600\" is not an HTTP status (100-599)", "or a range such as \"200-299\""),
        case(http("expected_status = \"299-200\"\n"), "4:19", "the range is empty", ""),
        case(
            http("expected_status = true\n"),
            "4:19",
            "wrong type for `expected_status`: expected a status such as 200 or \"200-299\", or an array of them, found a boolean",
            "expected_status = [\"200-299\", 401]",
        ),
        case(http("body_contains = \"\"\n"), "4:17", "`body_contains` is empty", ""),
        case(http("json_pointer = \"/status\"\n"), "4:16", "`json_pointer` without `json_equals`", "json_equals = \"ok\""),
        case(http("json_equals = 1\n"), "4:15", "`json_equals` without `json_pointer`", "json_pointer = \"/status\""),
        case(http("json_pointer = \"status\"\njson_equals = \"ok\"\n"), "4:16", "`status` is not a JSON pointer", "json_pointer = \"/status\""),
        case(
            http("json_pointer = \"/date\"\njson_equals = 2026-01-01\n"),
            "5:15",
            "`json_equals` can't be a TOML date/time",
            "json_equals = \"2026-01-01\"",
        ),
        case(http("max_response_time = \"20s\"\n"), "4:21", "`max_response_time` (20s) is longer than the timeout (10s)", "raise the timeout"),
        case(mon("type = \"http\"\nurl = \"http://nas.lan\"\nmin_cert_days = 14\n"), "4:17", "`min_cert_days` needs an https:// url", ""),
        case(http("min_cert_days = -1\n"), "4:17", "`min_cert_days` must be between 0 and 3650", "min_cert_days = 14"),
        case(http("ca_file = \"/ca.pem\"\ninsecure = true\n"), "5:12", "`insecure = true` and `ca_file` together", "keep `ca_file`"),
        // tcp, tls
        case(mon("type = \"tcp\"\nhost = \"nas.lan\"\n"), "1:11", "tcp monitor `m` has no `port`", "add port = 22"),
        case(mon("type = \"tcp\"\nport = 22\n"), "1:11", "tcp monitor `m` has no `host`", "host = \"nas.lan\""),
        case(mon("type = \"tcp\"\nhost = \"nas.lan:22\"\nport = 22\n"), "3:8", "`host` must not include a port or scheme", "port in `port`"),
        case(mon("type = \"tcp\"\nhost = \"nas lan\"\nport = 22\n"), "3:8", "monitor `m`: invalid host \"nas lan\"", "a host name or IP address"),
        case(mon("type = \"tls\"\nhost = \"nas.lan\"\nport = 70000\n"), "4:8", "`port` must be between 1 and 65535", "port = 443"),
        case(mon("type = \"tls\"\nhost = \"nas.lan\"\nmin_days = -1\n"), "4:12", "`min_days` must be between 0 and 3650", "min_days = 14"),
        // dns
        case(mon("type = \"dns\"\nname = \"x.org\"\n"), "1:11", "dns monitor `m` has no `server`", "the DNS server to ask"),
        case(mon("type = \"dns\"\nserver = \"dns.google\"\nname = \"x.org\"\n"), "3:10", "`dns.google` is not an IP address", "server = \"192.168.1.1:53\""),
        case(mon("type = \"dns\"\nserver = \"1.1.1.1\"\nname = \"x.org\"\nrecord = \"AAA\"\n"), "5:10", "`AAA` is not a record type", "did you mean `AAAA`?"),
        case(mon("type = \"dns\"\nserver = \"1.1.1.1\"\nname = \"x.org\"\nrcode = \"NXDOMIAN\"\n"), "5:9", "`NXDOMIAN` is not a DNS response code", "did you mean `NXDOMAIN`?"),
        case(mon("type = \"dns\"\nserver = \"1.1.1.1\"\nname = \"x.org\"\nexpect = [\"nas\"]\n"), "5:11", "`nas` is not an IP address, and A answers are", "record = \"CNAME\""),
        case(mon("type = \"dns\"\nserver = \"1.1.1.1\"\nname = \"bad..name\"\n"), "4:8", "monitor `m`: invalid name \"bad..name\"", "name = \"nas.home.arpa\""),
        // path, command
        case(mon("type = \"path\"\npath = \"mnt/nas\"\n"), "3:8", "path `mnt/nas` is relative", "use an absolute path"),
        case(mon("type = \"path\"\npath = \"/mnt/nas\"\ncheck = \"mountpoit\"\n"), "4:9", "`mountpoit` is not a path check", "did you mean `mountpoint`?"),
        case(mon("type = \"command\"\ncommand = []\n"), "3:11", "empty command array", "give the program"),
        case(mon("type = \"command\"\ncommand = 5\n"), "3:11", "expected a string (run with sh -c) or an array of strings", ""),
        case(mon("type = \"command\"\ncommand = \"true\"\nexit_code = 256\n"), "4:13", "`exit_code` must be between 0 and 255", "exit_code = 0"),
        // built-ins
        case(jobs("type = \"backup\"\njob = \"nsa\"\n"), "17:7", "unknown job `nsa`", "did you mean `nas`?"),
        case(jobs("type = \"backup\"\njob = \"nas\"\njobs = [\"plain\"]\n"), "18:8", "both `job` and `jobs` are set", "keep one"),
        case(jobs("type = \"backup\"\njobs = []\n"), "17:8", "`jobs` is empty", "remove it to watch every job"),
        case(jobs("type = \"backup\"\nmax_age = \"0h\"\n"), "17:11", "`max_age` must not be zero", "max_age = \"48h\""),
        case(mon("type = \"replication\"\n"), "1:11", "monitor `m` watches replication, but no [targets.NAME] is declared", "it would never fire"),
        case(jobs("type = \"replication\"\njobs = [\"plain\"]\n"), "17:9", "job `plain` has no `rpo`", "add rpo = \"26h\" to [jobs.plain]"),
        case(jobs("type = \"replication\"\ntargets = [\"usbb\"]\n"), "17:12", "unknown target `usbb`", "did you mean `usb`?"),
        case(mon("type = \"disk\"\nmin_free = \"150%\"\n"), "3:12", "`min_free` must be more than 0% and less than 100%", "min_free = \"10%\""),
        case(mon("type = \"disk\"\nmin_free = \"lots\"\n"), "3:12", "`min_free` is not a percentage or a size", "\"50 GiB\""),
        case(mon("type = \"disk\"\nmin_free = 0\n"), "3:12", "`min_free` must be more than zero", ""),
        // notifiers
        case(notifier("type = \"ntfyy\"\n"), "2:8", "`ntfyy` is not a notifier type", "did you mean `ntfy`?"),
        case(notifier("topic = \"t\"\n"), "1:12", "notifier `n` has no `type`", "add type = \"ntfy\""),
        case(
            notifier("type = \"discord\"\nurl = \"https://discord.com/api/webhooks/1/hunter2\"\n"),
            "3:7",
            "a discord notifier takes its webhook URL from `url_file` or `url_env`, not `url`",
            "a Discord webhook URL is a secret: whoever has it can post to your channel",
        ),
        case(notifier("type = \"discord\"\n"), "1:12", "discord notifier `n` has no `url_file` or `url_env`", "a Discord webhook URL is a secret"),
        case(
            notifier("type = \"slack\"\nurl_env = \"https://hooks.slack.com/services/T/B/hunter2\"\n"),
            "3:11",
            "`url_env` must be the name of an environment variable",
            "url_env = \"URL\"",
        ),
        case(
            notifier("type = \"ntfy\"\ntopic = \"t\"\ntoken = \"tk_hunter2\"\n"),
            "4:1",
            "unknown key `token`",
            "set `token_file`, or name an environment variable that holds it with `token_env`",
        ),
        case(notifier("type = \"ntfy\"\n"), "1:12", "ntfy notifier `n` has no `topic`", "topic = \"homelab-alerts\""),
        case(notifier("type = \"ntfy\"\ntopic = \"a/b\"\n"), "3:9", "`a/b` is not an ntfy topic", "1 to 64 letters"),
        case(notifier("type = \"ntfy\"\ntopic = \"t\"\nhost = \"x\"\n"), "4:8", "`host` does not apply to a `ntfy` notifier", "`host` applies to `email` notifiers"),
        case(notifier("type = \"gotify\"\nurl = \"https://gotify.lan\"\n"), "1:12", "gotify notifier `n` has no `token_file` or `token_env`", "application token"),
        case(notifier("type = \"gotify\"\nurl = \"ftp://gotify.lan\"\ntoken_env = \"T\"\n"), "3:7", "`url` must start with http:// or https://", ""),
        case(email("security = \"ssl\"\n"), "6:12", "`ssl` is not an SMTP security mode", "security = \"tls\" (port 465)"),
        case(email("port = 0\n"), "6:8", "`port` must be between 1 and 65535", "465 tls"),
        case(email("username = \"b\"\n"), "6:12", "`username` without a password", "password_file"),
        case(email("password_env = \"SMTP_PASS\"\n"), "6:16", "a password without `username`", "add username"),
        case(
            email("security = \"none\"\nusername = \"b\"\npassword_file = \"/p\"\n"),
            "8:17",
            "a password would be sent unencrypted (security = \"none\")",
            "only for a relay on this machine",
        ),
        case(notifier("type = \"email\"\nhost = \"h\"\nfrom = \"b@x.org\"\nto = []\n"), "5:6", "`to` is empty", "to = [\"me@example.org\"]"),
        case(email("").replace("\"b@example.org\"", "\"bulwark\""), "4:8", "`bulwark` is not an email address", "from = \"Bulwark <"),
        case(email("").replace("[\"me@example.org\"]", "[\"me@\"]"), "1:12", "notifier `n`: recipient `me@` is not an email address", "ops@example.org"),
        case(
            notifier("type = \"webhook\"\nurl = \"https://h.org/x\"\ntemplate = '{\"t\": \"{{titel}}\"}'\n"),
            "4:12",
            "bad `template`: unknown placeholder `{{titel}}`",
            "placeholders inside strings",
        ),
        case(notifier("type = \"webhook\"\nurl = \"https://h.org/x\"\ntemplate = '{{title}}'\n"), "4:12", "after substitution the body is not JSON", ""),
        case(notifier("type = \"webhook\"\nurl = \"https://h.org/x\"\nurl_env = \"HOOK\"\n"), "3:7", "both `url` and `url_file`/`url_env` are set", "keep one"),
        case(notifier("type = \"webhook\"\nurl = \"https://h.org/x\"\nmethod = \"GET\"\n"), "4:10", "`GET` is not a webhook method", "\"POST\""),
        case(
            notifier("type = \"webhook\"\nurl = \"https://user:hunter2@h.org/x\"\n"),
            "3:7",
            "`url` must not contain a user name or password",
            "header_files = { \"Authorization\"",
        ),
        case(
            "[notifiers.a]\ntype = \"ntfy\"\ntopic = \"a\"\n[notifiers.b]\ntype = \"ntfy\"\ntopic = \"b\"\n",
            "4:12",
            "notifiers `a` and `b` are declared, but no [[routes]] says which messages go to them",
            "with one notifier everything goes to it",
        ),
        // routes
        case(routed("[[routes]]\nnotifiers = [\"phnoe\"]\n"), "10:14", "unknown notifier `phnoe` in a route", "did you mean `phone`?"),
        case(routed("[[routes]]\nnotifiers = [\"phone\", \"phone\"]\n"), "10:23", "notifier `phone` is listed twice", "remove one"),
        case(routed("[[routes]]\nmin_severity = \"info\"\n"), "9:1", "a route has no `notifiers`", "notifiers = [\"phone\"]"),
        case(routed("[[routes]]\nnotifiers = []\n"), "10:13", "`notifiers` is empty", ""),
        case(
            routed("[[routes]]\nnotifiers = [\"phone\"]\nmonitors = [\"wbe\"]\n"),
            "11:13",
            "the route names monitor `wbe`, which is not declared",
            "did you mean `web`?",
        ),
        case(routed("[[routes]]\nnotifiers = [\"phone\"]\nmonitors = [\"web-[\"]\n"), "11:13", "`web-[` is not a valid pattern", "`{a,b}`"),
        case(routed("[[routes]]\nnotifiers = [\"phone\"]\nmin_severity = \"high\"\n"), "11:16", "`high` is not a severity", "min_severity = \"info\""),
        case(routed("[[routes]]\nnotifiers = [\"phone\"]\nnotifier = [\"mail\"]\n"), "11:1", "unknown key `notifier`", "did you mean `notifiers`?"),
        case(routed("[routes]\nnotifiers = [\"phone\"]\n"), "9:1", "wrong type for `routes`: expected an array of tables, found a table", "[[routes]]"),
        // silences
        case(silence("from = \"2026-12-01 02:00\"\n"), "4:8", "a silence with `from` needs `until`", "until = \""),
        case(silence("until = \"2026-12-01 02:00\"\n"), "4:9", "a silence with `until` needs `from`", "from = \""),
        case(
            silence("from = \"2026-12-01T06:00:00Z\"\nuntil = \"2026-12-01 06:00 Europe/Berlin\"\n"),
            "5:9",
            "`until` is not after `from`",
            "check the dates",
        ),
        case(silence("from = \"next monday\"\nuntil = \"2026-12-01\"\n"), "4:8", "`next monday` is not a date and time", "\"2026-12-01 02:00 Europe/Berlin\""),
        case(silence("from = \"2026-02-30 02:00\"\nuntil = \"2026-03-01\"\n"), "4:8", "`2026-02-30 02:00` is not a date and time", ""),
        case(silence("from = 02:00:00\nuntil = 2026-12-01\n"), "4:8", "`from` has a time but no date", "schedule = \"*-*-* 02:00\""),
        case(silence("from = 5\nuntil = 2026-12-01\n"), "4:8", "wrong type for `from`: expected a date and time", "from = \"2026-12-01 02:00\""),
        case(silence("schedule = \"Sun 03:00\"\n"), "4:12", "a recurring silence needs `duration`", "duration = \"2h\""),
        case(silence("schedule = \"Sun 03:00\"\nduration = \"0s\"\n"), "5:12", "`duration` must not be zero", ""),
        case(silence("schedule = \"Sun 25:00\"\nduration = \"1h\"\n"), "4:17", "bad schedule: `25:00`: hour must be 0-23", ""),
        case(
            silence("schedule = \"Sun 03:00\"\nduration = \"1h\"\nfrom = \"2026-12-01\"\n"),
            "6:8",
            "`from` and `schedule` together",
            "either one-off",
        ),
        case(silence("from = \"2026-12-01\"\nuntil = \"2026-12-02\"\nduration = \"1h\"\n"), "6:12", "`duration` only applies with `schedule`", ""),
        case(silence("reason = \"x\"\n"), "3:1", "a silence needs a time", "schedule = \"Sun 03:00\" and duration"),
        case(silence("monitors = []\nschedule = \"daily\"\nduration = \"1h\"\n"), "4:12", "`monitors` is empty", "every monitor"),
        case(silence("monitors = [\"wbe\"]\nschedule = \"daily\"\nduration = \"1h\"\n"), "4:13", "the silence names monitor `wbe`, which is not declared", "did you mean `web`?"),
        case(silence("schedule = \"daily\"\nduration = \"1h\"\nreason = \" \"\n"), "6:10", "`reason` is empty", ""),
        // [alerts]
        case(
            "[alerts]\nhub_ping_url = \"https://hc-ping.com/0b1e3c\"\n",
            "2:1",
            "unknown key `hub_ping_url`",
            "set `hub_ping_url_file`, or name an environment variable that holds it with `hub_ping_url_env`",
        ),
        case("[alerts]\nhub_ping_interval = \"1m\"\n", "2:21", "`hub_ping_interval` only applies with a ping URL", "hub_ping_url_file"),
        case(
            "[alerts]\nhub_ping_url_env = \"https://hc-ping.com/0b1e3c\"\n",
            "2:20",
            "`hub_ping_url_env` must be the name of an environment variable",
            "hub_ping_url_env = \"HUB_PING_URL\"",
        ),
        case("[alerts]\nconnectivity = [\"1.1.1.1\"]\n", "2:17", "`1.1.1.1` is not a connectivity check", "\"tcp:1.1.1.1:53\""),
        case("[alerts]\nconnectivity = [\"tcp:1.1.1.1\"]\n", "2:17", "`tcp:1.1.1.1` is not tcp:HOST:PORT", ""),
        case("[alerts]\nconnectivity = \"tcp:1.1.1.1:53\"\n", "2:16", "wrong type for `connectivity`: expected an array of strings", ""),
        case("[alerts]\nremind_every = \"soon\"\n", "2:16", "`soon` is not a duration", "remind_every = \"24h\""),
        case("[alert]\n", "1:2", "unknown key `alert`", "did you mean `alerts`?"),
    ]
}

#[test]
fn every_bad_input_gets_its_position_message_and_hint() {
    check_cases(cases(), 30);
}

#[test]
fn all_problems_are_reported_together() {
    let input = "\
[hosts.nas]

[monitors.web]
type = \"http\"
url = \"https://nas.lan\"
on = [\"hub\", \"nsa\"]
quorum = 2
port = 80

[monitors.dns]
type = \"dnss\"

[notifiers.team]
type = \"discord\"
url = \"https://discord.com/api/webhooks/1/hunter2\"

[[routes]]
notifiers = [\"teem\"]
monitors = [\"web\", \"db\"]

[[silences]]
from = \"2026-12-02\"
until = \"2026-12-01\"
";
    let got: Vec<String> = diagnostics(input)
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "6:14 unknown host `nsa` in `on`",
            "8:8 `port` does not apply to a `http` monitor",
            "11:8 `dnss` is not a monitor type",
            "15:7 a discord notifier takes its webhook URL from `url_file` or `url_env`, not `url`",
            "18:14 unknown notifier `teem` in a route",
            "19:20 the route names monitor `db`, which is not declared",
            "23:9 `until` is not after `from`",
        ]
    );
    // (the quorum is not judged while `on` has a bad entry)
}

#[test]
fn the_documented_errors_are_real() {
    let doc = include_str!("../../../docs/monitoring.md");
    let section = &doc[doc.find("## Errors look like this").unwrap()..];
    let input = &section[section.find("```toml\n").unwrap() + 8..];
    let input = &input[..input.find("```").unwrap()];
    let output = &section[section
        .find("$ bulwark config check bulwark.toml\n")
        .unwrap()..];
    let output = &output[output.find('\n').unwrap() + 1..];
    let output = &output[..output.find("\n```").unwrap()];
    let err = parse(input, Path::new("bulwark.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(err, output);
}

// ---------------------------------------------------------------- secrets

#[test]
fn secrets_never_appear_in_errors_or_debug() {
    for input in [
        mon("type = \"http\"\nurl = \"https://admin:hunter2@nas.lan/\"\n"),
        http("headers = { Authorization = \"Bearer hunter2\" }\n"),
        http("headers = { \"X-Api-Key\" = \"hunter2\" }\n"),
        http("header_envs = { Authorization = \"Bearer hunter2\" }\n"),
        notifier("type = \"discord\"\nurl = \"https://discord.com/api/webhooks/1/hunter2\"\n"),
        notifier("type = \"slack\"\nurl_env = \"https://hooks.slack.com/services/T/B/hunter2\"\n"),
        notifier("type = \"ntfy\"\ntopic = \"t\"\ntoken = \"hunter2\"\n"),
        notifier("type = \"gotify\"\nurl = \"https://g.lan\"\ntoken_env = \"hunter2 x\"\n"),
        email("username = \"b\"\npassword = \"hunter2\"\n"),
        notifier("type = \"webhook\"\nurl = \"https://u:hunter2@h.org/x\"\n"),
        notifier("type = \"webhook\"\nurl = \"https://h.org/x\"\nheaders = { Authorization = \"hunter2\" }\n"),
        "[alerts]\nhub_ping_url = \"https://hc-ping.com/hunter2\"\n".to_string(),
        "[alerts]\nhub_ping_url_env = \"https://hc-ping.com/hunter2\"\n".to_string(),
        "[alerts]\nconnectivity = [\"http://u:hunter2@192.168.1.1\"]\n".to_string(),
    ] {
        let err = parse(&input, Path::new("x.toml")).unwrap_err();
        assert!(!format!("{err}{err:?}").contains("hunter2"), "{input}\n{err}");
    }
    // A valid configuration holds only references.
    let cfg = parse(&full(), Path::new(ORIGIN)).unwrap();
    let debug = format!("{cfg:?}");
    for reference in [
        "/etc/bulwark/discord.url",
        "SLACK_WEBHOOK_URL",
        "/etc/bulwark/grafana.auth",
        "/etc/bulwark/hc-ping.url",
    ] {
        assert!(debug.contains(reference), "{reference}");
    }
}

#[test]
fn notifiers_are_built_with_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "discord.url",
        "https://discord.com/api/webhooks/123/SeCrEtToKeN\n",
    );
    write("ntfy.token", "tk_SeCrEt\n");
    write("hook.auth", "Bearer HeAdErSeCrEt\n");
    write("hc.url", "https://hc-ping.com/PiNgSeCrEt\n");
    write("app.auth", "Bearer MoNiToRsEcReT\n");
    write("bad.token", "tk_a\nb\n");
    let text = r#"
[notifiers.team]
type = "discord"
url_file = "discord.url"

[notifiers.phone]
type = "ntfy"
topic = "alerts"
token_file = "ntfy.token"

[notifiers.hook]
type = "webhook"
url = "https://hooks.example.org/x"
header_files = { "Authorization" = "hook.auth" }
headers = { "X-Source" = "bulwark" }

[notifiers.missing]
type = "gotify"
url = "https://gotify.lan"
token_file = "nope.token"

[notifiers.broken]
type = "ntfy"
topic = "alerts"
token_file = "bad.token"

[[routes]]
notifiers = ["team", "phone", "hook", "missing", "broken"]

[monitors.app]
type = "http"
url = "https://app.lan/health"
header_files = { "Authorization" = "app.auth" }

[alerts]
hub_ping_url_file = "hc.url"
"#;
    let cfg = parse(text, &dir.path().join("bulwark.toml")).unwrap();
    let team = cfg.notifiers["team"].build().unwrap();
    let Channel::Discord(d) = &team.channel else {
        panic!()
    };
    assert_eq!(
        d.url, "https://discord.com/api/webhooks/123/SeCrEtToKeN",
        "trimmed"
    );
    assert!(!format!("{team:?}{team}").contains("SeCrEt"));

    let phone = cfg.notifiers["phone"].build().unwrap();
    let Channel::Ntfy(n) = &phone.channel else {
        panic!()
    };
    assert_eq!(n.token.as_deref(), Some("tk_SeCrEt"));

    let hook = cfg.notifiers["hook"].build().unwrap();
    let Channel::Webhook(w) = &hook.channel else {
        panic!()
    };
    assert_eq!(w.headers["Authorization"], "Bearer HeAdErSeCrEt");
    assert_eq!(w.headers["X-Source"], "bulwark");

    let err = cfg.notifiers["missing"].build().unwrap_err().to_string();
    assert!(
        err.contains("notifier `missing` (token_file)")
            && err.contains("nope.token")
            && err.contains("does not exist"),
        "{err}"
    );

    let err = cfg.notifiers["broken"].build().unwrap_err();
    assert!(matches!(err, BuildError::Notify(_)), "{err}");
    assert!(!err.to_string().contains("tk_a"), "{err}");

    let pinger = cfg.alerts.pinger().unwrap().unwrap();
    assert_eq!(pinger.url, "https://hc-ping.com/PiNgSeCrEt");
    assert!(!format!("{pinger:?}").contains("PiNgSeCrEt"));
    assert!(Alerts::default().pinger().unwrap().is_none());

    let MonitorCheck::Probe(p) = &cfg.monitors["app"].check else {
        panic!()
    };
    let Probe::Http(before) = &p.spec.probe else {
        panic!()
    };
    assert!(before.headers.is_empty(), "the model holds no secret");
    let loaded = p.load().unwrap();
    let Probe::Http(h) = &loaded.probe else {
        panic!()
    };
    assert_eq!(h.headers["Authorization"], "Bearer MoNiToRsEcReT");

    // Environment variables work the same way (names only in the file).
    let cfg = parse(
        "[notifiers.s]\ntype = \"slack\"\nurl_env = \"BULWARK_TEST_UNSET_SLACK_URL\"\n",
        Path::new("x.toml"),
    )
    .unwrap();
    let err = cfg.notifiers["s"].build().unwrap_err().to_string();
    assert!(
        err.contains("BULWARK_TEST_UNSET_SLACK_URL") && err.contains("is not set"),
        "{err}"
    );
}

// ---------------------------------------------------------------- agents

fn tables(text: &str, section: &str) -> Vec<String> {
    let doc: toml::Table = text.parse().unwrap();
    doc.get(section)
        .and_then(|v| v.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn agents_get_the_probe_monitors_that_run_on_them_and_nothing_else() {
    let text = full();
    let origin = Path::new(ORIGIN);
    let nas = extract_host(&text, origin, "nas").unwrap();
    assert_eq!(
        tables(&nas, "monitors"),
        ["dns-pihole", "grafana", "nextcloud", "raid"]
    );
    let top: Vec<String> = nas
        .parse::<toml::Table>()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for hub_only in ["notifiers", "routes", "silences", "alerts", "targets"] {
        assert!(!top.iter().any(|t| t == hub_only), "{hub_only} in\n{nas}");
    }
    for secret_ref in [
        "discord.url",
        "ntfy.token",
        "smtp.pass",
        "hook.auth",
        "hc-ping.url",
        "GOTIFY_TOKEN",
    ] {
        assert!(!nas.contains(secret_ref), "{secret_ref} in\n{nas}");
    }
    // As the agent parses it: on = [its host], no quorum or alerting.
    let cfg = parse(&nas, origin).unwrap();
    let full_cfg = parse(&text, origin).unwrap();
    let nextcloud = cfg.monitors["nextcloud"].spec().unwrap();
    assert_eq!(
        (nextcloud.vantage.as_slice(), nextcloud.quorum),
        (&[agent("nas")][..], 1)
    );
    let original = full_cfg.monitors["nextcloud"].spec().unwrap();
    assert_eq!(
        nextcloud,
        &MonitorSpec {
            vantage: vec![agent("nas")],
            quorum: 1,
            ..original.clone()
        }
    );
    assert_eq!(
        cfg.monitors["nextcloud"].severity,
        Severity::Warning,
        "severity stays with the hub"
    );
    assert_eq!(
        cfg.monitors["grafana"].check, full_cfg.monitors["grafana"].check,
        "ca_file and header_files kept"
    );
    assert_eq!(cfg.monitors["raid"].check, full_cfg.monitors["raid"].check);
    assert!(cfg.notifiers.is_empty() && cfg.routes.is_empty() && cfg.silences.is_empty());
    assert_eq!(cfg.alerts, Alerts::default());

    let vps = extract_host(&text, origin, "vps").unwrap();
    assert_eq!(tables(&vps, "monitors"), ["nas-mount", "nextcloud"]);
    assert!(!vps.contains("zpool") && !vps.contains("check-raid"));
}

#[test]
fn agents_get_absolute_paths() {
    let text = r#"
[hosts.nas]

[monitors.app]
type = "http"
url = "https://app.lan/"
ca_file = "lan-ca.pem"
header_files = { "Authorization" = "app.auth" }
on = ["nas"]
remind_every = "off"
enabled = true

[monitors.cert]
type = "tls"
host = "app.lan"
ca_file = "/srv/ca.pem"
on = ["hub"]
"#;
    let origin = Path::new(ORIGIN);
    let nas = extract_host(text, origin, "nas").unwrap();
    assert_eq!(
        tables(&nas, "monitors"),
        ["app"],
        "`cert` runs on the hub only"
    );
    assert!(
        nas.contains("ca_file = \"/etc/bulwark/lan-ca.pem\""),
        "{nas}"
    );
    assert!(
        nas.contains("Authorization = \"/etc/bulwark/app.auth\""),
        "{nas}"
    );
    assert!(
        !nas.contains("remind_every") && !nas.contains("enabled"),
        "{nas}"
    );
    // A host without monitors gets no [monitors] at all.
    let text = text.replace("on = [\"nas\"]", "on = [\"hub\"]");
    let nas = extract_host(&text, origin, "nas").unwrap();
    assert!(tables(&nas, "monitors").is_empty(), "{nas}");
}

#[test]
fn kinds() {
    assert_eq!(
        MonitorKind::ALL.map(MonitorKind::as_str),
        [
            "http",
            "tcp",
            "dns",
            "tls",
            "path",
            "command",
            "backup",
            "replication",
            "disk"
        ]
    );
    assert_eq!(MonitorKind::ALL.iter().filter(|k| k.is_probe()).count(), 6);
    assert_eq!(MonitorKind::Replication.to_string(), "replication");
}
