//! Many hosts in one file: `[hosts]`, `[agent]`, job schedules, database
//! sources, `[maintenance]`, `[pings]`, and `extract_host`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{case, check_cases, Case};

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use bulwark_config::*;

/// The example of docs/configuration.md ("Many hosts in one file"), plus a
/// `[hub]` section and a ping, which no agent gets.
const HOMELAB: &str = r#"
[agent]
hub_url = "https://hub.lan:8000/"
ca_file = "/etc/bulwark/hub-ca.pem"
state_dir = "/var/lib/bulwark"

[hosts.hub]
token_file = "/etc/bulwark/agent.token"
[hosts.nas]
token_file = "/etc/bulwark/agent.token"
[hosts.vps]
token_file = "/etc/bulwark/agent.token"

[repositories.nas]
url = "rest:https://hub.lan:8000/homelab/nas"
password_file = "/etc/bulwark/nas.pass"
[repositories.nas.rest]
username = "nas"
password_file = "/etc/bulwark/hub-http.pass"

[repositories.vps]
url = "rest:https://hub.lan:8000/homelab/vps"
password_file = "/etc/bulwark/vps.pass"
[repositories.vps.rest]
username = "vps"
password_file = "/etc/bulwark/hub-http.pass"

[repositories.nas-admin]
url = "rest:https://hub.lan:8000/homelab/nas"
password_file = "/etc/bulwark/nas.pass"
[repositories.nas-admin.rest]
username = "admin"
password_file = "/etc/bulwark/hub-admin.pass"

[repositories.vps-admin]
url = "rest:https://hub.lan:8000/homelab/vps"
password_file = "/etc/bulwark/vps.pass"
[repositories.vps-admin.rest]
username = "admin"
password_file = "/etc/bulwark/hub-admin.pass"

[jobs.nas]
host = "nas"
repository = "nas"
schedule = "*-*-* 02:00"
randomized_delay = "30m"
paths = ["/etc", "/srv/photos"]
exclude_if_present = [".nobackup"]

[[jobs.nas.databases]]
type = "postgres"
database = "immich"
user = "postgres"
format = "custom"

[[jobs.nas.databases]]
type = "postgresql"
user = "postgres"
fail_on_stderr = ["ERROR"]

[[jobs.nas.commands]]
command = ["zfs", "list", "-H"]
filename = "zfs/list.txt"
fail_on_stderr = ["cannot open"]

[jobs.vps]
host = "vps"
repository = "vps"
schedule = "daily"
persistent = false
late_after = "3h"
paths = ["/etc/headscale"]

[[jobs.vps.databases]]
type = "sqlite"
path = "/var/lib/headscale/db.sqlite"

[maintenance.nas-prune]
host = "hub"
repository = "nas-admin"
schedule = "Sun 05:00"
check = true
[maintenance.nas-prune.retention]
keep_daily = 7
keep_weekly = 4
keep_monthly = 12

[maintenance.vps-prune]
host = "hub"
repository = "vps-admin"
schedule = "Sun 06:00"
[maintenance.vps-prune.retention]
keep_daily = 14
prune = false

[pings.router]
uuid = "2f6d3c1a-8b7e-4e0f-9a55-0c1d2e3f4a5b"
period = "1d"
grace = "2h"

[pings.offsite-sync]
uuid = "offsite-sync-check-0123"
schedule = "Sat 04:00"
randomized_delay = "10m"

[hub]
listen = ":8000"
data = "/srv/bulwark"
htpasswd = "/etc/bulwark/htpasswd"
"#;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_homelab_of_three_hosts_parses_into_the_model() {
    let cfg = parse(HOMELAB, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    assert_eq!(
        cfg.agent,
        AgentSettings {
            hub_url: Some("https://hub.lan:8000".into()),
            ca_file: Some("/etc/bulwark/hub-ca.pem".into()),
            state_dir: Some("/var/lib/bulwark".into()),
            ..AgentSettings::default()
        }
    );
    assert_eq!(cfg.hosts.keys().collect::<Vec<_>>(), ["hub", "nas", "vps"]);
    assert_eq!(
        cfg.hosts["nas"],
        HostDecl {
            name: "nas".into(),
            token_file: Some("/etc/bulwark/agent.token".into())
        }
    );

    let nas = cfg.job("nas").unwrap();
    assert_eq!(nas.host.as_deref(), Some("nas"));
    let s = nas.schedule.as_ref().unwrap();
    assert_eq!(s.expression, "*-*-* 02:00");
    assert_eq!(
        s.schedule.calendar,
        schedule::Calendar::parse("*-*-* 02:00").unwrap()
    );
    assert_eq!(s.schedule.randomized_delay, secs(30 * 60));
    assert!(s.schedule.persistent, "persistent defaults to true");
    assert_eq!(s.late_after, secs(3600), "late_after defaults to 1h");
    assert_eq!(
        nas.databases,
        vec![
            DatabaseSource {
                kind: DatabaseKind::Postgres {
                    database: Some("immich".into()),
                    host: None,
                    port: None,
                    user: Some("postgres".into()),
                    password: None,
                    format: PgFormat::Custom,
                },
                filename: "databases/postgres/immich.dump".into(),
                options: vec![],
                fail_on_stderr: vec![],
            },
            DatabaseSource {
                kind: DatabaseKind::Postgres {
                    database: None,
                    host: None,
                    port: None,
                    user: Some("postgres".into()),
                    password: None,
                    format: PgFormat::Plain,
                },
                filename: "databases/postgres/all.sql".into(),
                options: vec![],
                fail_on_stderr: vec!["ERROR".into()],
            },
        ]
    );
    assert_eq!(nas.commands[0].fail_on_stderr, vec!["cannot open"]);
    assert_eq!(
        nas.paths,
        vec![PathBuf::from("/etc"), PathBuf::from("/srv/photos")]
    );

    let vps = cfg.job("vps").unwrap();
    let s = vps.schedule.as_ref().unwrap();
    assert_eq!(
        (s.expression.as_str(), s.schedule.persistent, s.late_after),
        ("daily", false, secs(3 * 3600))
    );
    assert_eq!(s.schedule.randomized_delay, Duration::ZERO);
    assert_eq!(
        vps.databases,
        vec![DatabaseSource {
            kind: DatabaseKind::Sqlite {
                path: "/var/lib/headscale/db.sqlite".into()
            },
            filename: "databases/sqlite/db.sqlite".into(),
            options: vec![],
            fail_on_stderr: vec![],
        }]
    );

    let m = &cfg.maintenance["nas-prune"];
    assert_eq!(
        (m.host.as_deref(), m.repository.as_str(), m.check),
        (Some("hub"), "nas-admin", true)
    );
    assert_eq!(m.schedule.as_ref().unwrap().expression, "Sun 05:00");
    assert_eq!(
        m.retention,
        Retention {
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(12),
            prune: true,
            ..Default::default()
        },
        "maintenance prunes by default"
    );
    let m = &cfg.maintenance["vps-prune"];
    assert!(!m.check && !m.retention.prune);

    assert_eq!(
        cfg.pings["router"],
        Ping {
            name: "router".into(),
            uuid: "2f6d3c1a-8b7e-4e0f-9a55-0c1d2e3f4a5b".into(),
            period: Some(secs(86400)),
            schedule: None,
            grace: secs(7200),
        }
    );
    let p = &cfg.pings["offsite-sync"];
    let s = p.schedule.as_ref().unwrap();
    assert_eq!((p.period, p.grace), (None, secs(3600)));
    assert_eq!(
        (
            s.schedule.randomized_delay,
            s.schedule.persistent,
            s.late_after
        ),
        (secs(600), false, secs(3600))
    );

    assert_eq!(
        cfg.jobs_of("nas")
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>(),
        ["nas"]
    );
    assert_eq!(cfg.jobs_of("hub").count(), 0);
    assert_eq!(cfg.maintenance_of("hub").count(), 2);
    assert!(cfg.hub.is_some());
}

#[test]
fn defaults_without_hosts() {
    let text = r#"
[repositories.r]
url = "/srv/r"
password_file = "/p"

[jobs.db]
repository = "r"
host = "any name"
[[jobs.db.databases]]
type = "mariadb"
port = 3307
socket = "/run/mysqld/mysqld.sock"
password_env = "DB_PASSWORD"
options = ["--routines"]
[[jobs.db.databases]]
type = "mysql"
database = "shop"
host = "db.lan"
filename = "shop.sql"

[maintenance.prune]
repository = "r"
[maintenance.prune.retention]
keep_last = 3
"#;
    // No [hosts]: `host` is the free-form snapshot host name again, but it
    // still must not contain spaces.
    let err = parse(text, Path::new("b.toml")).unwrap_err().to_string();
    assert!(
        err.starts_with("b.toml:8:8: `host` must be a non-empty name without spaces"),
        "{err}"
    );

    let cfg = parse(&text.replace("any name", "db1"), Path::new("b.toml")).unwrap();
    let j = cfg.job("db").unwrap();
    assert_eq!(
        (j.host.as_deref(), j.schedule.as_ref(), j.retention.as_ref()),
        (Some("db1"), None, None)
    );
    assert_eq!(
        j.databases[0],
        DatabaseSource {
            kind: DatabaseKind::Mysql {
                database: None,
                host: None,
                port: Some(3307),
                socket: Some("/run/mysqld/mysqld.sock".into()),
                user: None,
                password: Some(SecretSource::Env("DB_PASSWORD".into())),
            },
            filename: "databases/mysql/all.sql".into(),
            options: vec!["--routines".into()],
            fail_on_stderr: vec![],
        }
    );
    assert_eq!(j.databases[1].filename, "shop.sql");
    assert!(
        matches!(&j.databases[1].kind, DatabaseKind::Mysql { database: Some(d), host: Some(h), .. } if d == "shop" && h == "db.lan")
    );
    assert!(
        j.paths.is_empty() && j.commands.is_empty(),
        "a job of database sources alone is valid"
    );
    let m = &cfg.maintenance["prune"];
    assert_eq!(
        (m.host.as_ref(), m.schedule.as_ref(), m.check),
        (None, None, false)
    );
    assert!(m.retention.prune);
    assert!(cfg.hosts.is_empty() && cfg.pings.is_empty());
    assert_eq!(cfg.agent, AgentSettings::default());
    assert_eq!(
        cfg.jobs_of("whatever").count(),
        1,
        "without [hosts], every job runs on the one machine"
    );
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let text = r#"
[agent]
ca_file = "ca.pem"
state_dir = "state"
[hosts.nas]
token_file = "nas.token"
[repositories.r]
url = "/srv/r"
password_file = "/p"
[jobs.j]
host = "nas"
repository = "r"
[[jobs.j.databases]]
type = "postgres"
password_file = "pg.pass"
"#;
    let cfg = parse(text, Path::new("/etc/bulwark/bulwark.toml")).unwrap();
    assert_eq!(
        cfg.agent.ca_file,
        Some(PathBuf::from("/etc/bulwark/ca.pem"))
    );
    assert_eq!(
        cfg.agent.state_dir,
        Some(PathBuf::from("/etc/bulwark/state"))
    );
    assert_eq!(
        cfg.hosts["nas"].token_file,
        Some(PathBuf::from("/etc/bulwark/nas.token"))
    );
    assert!(matches!(
        &cfg.jobs["j"].databases[0].kind,
        DatabaseKind::Postgres { password: Some(SecretSource::File(p)), .. } if p == Path::new("/etc/bulwark/pg.pass")
    ));
}

/// Lines 1–5: hosts `nas` and `vps`, repository `r`; a body starts on line 6.
const BASE: &str =
    "[hosts.nas]\n[hosts.vps]\n[repositories.r]\nurl = \"/srv/r\"\npassword_file = \"/p\"\n";

fn multi(body: &str) -> String {
    format!("{BASE}{body}")
}

/// A job `j` on host `nas` (lines 6–8); `body` starts on line 9.
fn job(body: &str) -> String {
    multi(&format!(
        "[jobs.j]\nhost = \"nas\"\nrepository = \"r\"\n{body}"
    ))
}

/// A job with one database source: `[[jobs.j.databases]]` is line 9, `body` starts on line 10.
fn db(body: &str) -> String {
    job(&format!("[[jobs.j.databases]]\n{body}"))
}

/// A maintenance `m` on host `nas` (lines 6–7); `body` starts on line 8.
fn maint(body: &str) -> String {
    multi(&format!("[maintenance.m]\nhost = \"nas\"\n{body}"))
}

const RETENTION: &str = "[maintenance.m.retention]\nkeep_daily = 7\n";

fn cases() -> Vec<Case> {
    vec![
        // hosts
        case(multi("[jobs.j]\nhost = \"nsa\"\nrepository = \"r\"\npaths = [\"/a\"]\n"), "7:8", "unknown host `nsa` in job `j`", "did you mean `nas`? (declared hosts: nas, vps)"),
        case(multi("[jobs.j]\nhost = \"laptop\"\nrepository = \"r\"\npaths = [\"/a\"]\n"), "7:8", "unknown host `laptop` in job `j`", "declared hosts: nas, vps; declare another one with [hosts.NAME]"),
        case(multi("[jobs.j]\nrepository = \"r\"\npaths = [\"/a\"]\n"), "6:7", "job `j` has no host", "add host = \"nas\" (declared hosts: nas, vps)"),
        case(multi(&format!("[maintenance.m]\nrepository = \"r\"\n{RETENTION}")), "6:14", "maintenance `m` has no host", "add host = \"nas\""),
        case(multi(&format!("[maintenance.m]\nhost = \"vsp\"\nrepository = \"r\"\n{RETENTION}")), "7:8", "unknown host `vsp` in maintenance `m`", "did you mean `vps`?"),
        case("[hosts.\"my box\"]\n", "1:8", "`my box` is not a valid host name", "letters"),
        case("[hosts.nas]\ntoken = \"/t\"\n", "2:1", "unknown key `token`", "did you mean `token_file`?"),
        case("[hosts.nas]\ntoken_file = \"\"\n", "2:14", "`token_file` is empty", ""),
        case("[hosts]\nnas = \"x\"\n", "2:7", "wrong type for `hosts.nas`: expected a table, found a string", "[hosts.nas]"),
        // agent
        case("[agent]\nhub_url = \"hub.lan:8000\"\n", "2:11", "`agent.hub_url` must start with http:// or https://", "https://hub.lan:8000"),
        case("[agent]\nhub_url = \"https://hub.lan:8000/?token=x\"\n", "2:11", "`agent.hub_url` must not have a query", "base URL"),
        case("[agent]\nhub_url = \"https://agent:hunter2@hub.lan\"\n", "2:11", "must not contain a user name or password", "token_file"),
        case("[agent]\nhuburl = \"https://h\"\n", "2:1", "unknown key `huburl`", "did you mean `hub_url`?"),
        case("[agent]\nstate_dir = 5\n", "2:13", "wrong type for `state_dir`: expected a string (a directory path), found an integer", "/var/lib/bulwark"),
        // schedules
        case(job("paths = [\"/a\"]\nschedule = \"Mon..Fri 25:00\"\n"), "10:22", "bad schedule: `25:00`: hour must be 0-23, not 25", "write midnight as `00:00`"),
        case(job("paths = [\"/a\"]\nschedule = \"dialy\"\n"), "10:13", "bad schedule: `dialy`", "did you mean `daily`?"),
        case(job("paths = [\"/a\"]\nschedule = 'Mon-Fri'\n"), "10:13", "bad schedule: `Mon-Fri`", "Mon..Fri"),
        case(job("paths = [\"/a\"]\nschedule = \"*-02-30\"\n"), "10:12", "the schedule `*-02-30` never fires", "check the date"),
        case(job("paths = [\"/a\"]\nschedule = \"2020-01-01\"\n"), "10:12", "the schedule `2020-01-01` never fires", ""),
        case(job("paths = [\"/a\"]\nschedule = \"9999-01-01\"\n"), "10:12", "the schedule `9999-01-01` does not fire within 5 years", "check the date"),
        case(job("paths = [\"/a\"]\nrandomized_delay = \"30m\"\n"), "10:20", "`randomized_delay` only makes sense with `schedule`", "add schedule = \"daily\""),
        case(job("paths = [\"/a\"]\npersistent = false\n"), "10:14", "`persistent` only makes sense with `schedule`", ""),
        case(job("paths = [\"/a\"]\nlate_after = \"2h\"\n"), "10:14", "`late_after` only makes sense with `schedule`", ""),
        case(job("paths = [\"/a\"]\nschedule = \"daily\"\nrandomized_delay = \"half an hour\"\n"), "11:20", "`half an hour` is not a duration", "randomized_delay = \"30m\""),
        case(job("paths = [\"/a\"]\nschedule = \"daily\"\nlate_after = \"0s\"\n"), "11:14", "`late_after` must not be zero", ""),
        case(job("paths = [\"/a\"]\nschedule = \"daily\"\npersistent = \"yes\"\n"), "11:14", "wrong type for `persistent`: expected a boolean", "persistent = true"),
        case(job("paths = [\"/a\"]\nschedul = \"daily\"\n"), "10:1", "unknown key `schedul`", "did you mean `schedule`?"),
        // database sources
        case(db("type = \"sqlite\"\n"), "9:1", "a sqlite source of job `j` has no `path`", "path = \"/var/lib/app/db.sqlite\""),
        case(db("database = \"app\"\n"), "9:1", "a database source of job `j` has no `type`", "\"postgres\", \"mysql\" or \"sqlite\""),
        case(db("type = \"Postgres\"\n"), "10:8", "unknown database type `Postgres`", "did you mean `postgres`?"),
        case(db("type = \"oracle\"\n"), "10:8", "unknown database type `oracle`", "\"postgresql\" and \"mariadb\" work too"),
        case(db("type = \"postgres\"\npath = \"/var/lib/pg\"\n"), "11:8", "`path` does not apply to a postgres database", "`path` is for sqlite"),
        case(db("type = \"sqlite\"\npath = \"/d.sqlite\"\ndatabase = \"x\"\n"), "12:12", "`database` does not apply to a sqlite database", "one file"),
        case(db("type = \"mysql\"\nformat = \"custom\"\n"), "11:10", "`format` does not apply to a mysql database", "only postgres has dump formats"),
        case(db("type = \"postgres\"\nsocket = \"/run/x\"\n"), "11:10", "`socket` does not apply to a postgres database", "host = \"/run/postgresql\""),
        case(db("type = \"postgres\"\nformat = \"custom\"\n"), "11:10", "format = \"custom\" needs a `database`", "add database = \"NAME\""),
        case(db("type = \"postgres\"\ndatabase = \"a\"\nformat = \"tar\"\n"), "12:10", "`format` must be \"plain\" or \"custom\"", "pg_restore"),
        case(db("type = \"postgres\"\npassword_file = \"/p\"\npassword_env = \"PW\"\n"), "12:16", "both `password_file` and `password_env` are set", "keep one of them"),
        case(db("type = \"postgres\"\nport = 0\n"), "11:8", "`port` must be 1-65535", "port = 5432"),
        case(db("type = \"mysql\"\nport = 70000\n"), "11:8", "`port` must be 1-65535", "port = 3306"),
        case(db("type = \"postgres\"\nport = \"5432\"\n"), "11:8", "wrong type for `port`: expected an integer (1-65535), found a string", "port = 5432"),
        case(db("type = \"mysql\"\nsocket = \"mysqld.sock\"\n"), "11:10", "`socket` must be an absolute path", ""),
        case(db("type = \"sqlite\"\npath = \"db.sqlite\"\n"), "11:8", "`path` must be an absolute path", ""),
        case(db("type = \"postgres\"\ndatabase = \"\"\n"), "11:12", "`database` is empty", "dump all of them"),
        case(db("type = \"postgres\"\nfilename = \"../x.sql\"\n"), "11:12", "`../x.sql` is not a valid filename inside the snapshot", "without `.` or `..`"),
        case(db("type = \"postgres\"\ndatabase = \"a/b\"\n"), "11:12", "the database name `a/b` gives no valid default filename", "set filename"),
        case(db("type = \"postgres\"\nfail_on_stderr = [\"\"]\n"), "11:19", "empty pattern in `fail_on_stderr`", "match every line"),
        case(db("type = \"postgres\"\npasword_file = \"/p\"\n"), "11:1", "unknown key `pasword_file`", "did you mean `password_file`?"),
        case(db("type = \"sqlite\"\npath = \"/d.sqlite\"\noptions = [\"-x\"]\n"), "12:11", "`options` does not apply to a sqlite database", "backup API"),
        case(job("[[jobs.j.commands]]\ncommand = \"x\"\nfilename = \"databases/postgres/app.sql\"\n[[jobs.j.databases]]\ntype = \"postgres\"\ndatabase = \"app\"\n"), "12:1", "a command source and a database source of job `j` both write `databases/postgres/app.sql`", "set `filename`"),
        case(job("[[jobs.j.databases]]\ntype = \"postgres\"\n[[jobs.j.databases]]\ntype = \"postgres\"\nhost = \"other\"\n"), "11:1", "two database sources of job `j` write `databases/postgres/all.sql`", "set `filename` on one of them"),
        case(job("[[jobs.j.databases]]\ntype = \"sqlite\"\npath = \"/a/db\"\nfilename = \"x\"\n[[jobs.j.commands]]\ncommand = \"c\"\nfilename = \"x/y\"\n"), "15:12", "`x` cannot be both a file and the directory of `x/y`", "don't nest"),
        case(job("[[jobs.j.commands]]\ncommand = \"x\"\nfilename = \"x.sql\"\nfail_on_stderr = [\"\"]\n"), "12:19", "empty pattern in `fail_on_stderr`", ""),
        case(job("[[jobs.j.commands]]\ncommand = \"x\"\nfilename = \"x.sql\"\nfail_on_stderr = \"ERROR\"\n"), "12:18", "wrong type for `fail_on_stderr`: expected an array of strings", "fail_on_stderr = [\"ERROR\"]"),
        case(job("databases = 1\n"), "9:13", "wrong type for `databases`: expected an array of tables", "[[jobs.NAME.databases]]"),
        case(job("tags = [\"x\"]\n"), "6:7", "job `j` backs up nothing", "or a [[jobs.j.databases]] source"),
        // maintenance
        case(maint(&format!("repository = \"rr\"\n{RETENTION}")), "8:14", "maintenance `m` uses repository `rr`, which is not declared", "did you mean `r`?"),
        case(maint(RETENTION), "6:14", "maintenance `m` has no `repository`", ""),
        case(maint("repository = \"r\"\n"), "6:14", "maintenance `m` has no retention policy", "add a [maintenance.m.retention] table"),
        case(maint("repository = \"r\"\n[maintenance.m.retention]\nprune = true\n"), "9:1", "the retention of maintenance `m` keeps nothing", "keep_daily"),
        case(maint(&format!("repository = \"r\"\ncheck = 1\n{RETENTION}")), "9:9", "wrong type for `check`: expected a boolean", ""),
        case(maint(&format!("repository = \"r\"\nrandomized_delay = \"5m\"\n{RETENTION}")), "9:20", "`randomized_delay` only makes sense with `schedule`", ""),
        case(maint(&format!("repository = \"r\"\nschedule = \"Sun 25:00\"\n{RETENTION}")), "9:17", "bad schedule: `25:00`", ""),
        case(job(&format!("paths = [\"/a\"]\n[maintenance.j]\nhost = \"nas\"\nrepository = \"r\"\n{}", RETENTION.replace(".m.", ".j."))), "10:14", "`j` is the name of both a job and a maintenance task", "[jobs.j] comes first"),
        case(multi(&format!("[maintenance.j]\nhost = \"nas\"\nrepository = \"r\"\n{}[jobs.j]\nhost = \"nas\"\nrepository = \"r\"\npaths = [\"/a\"]\n", RETENTION.replace(".m.", ".j."))), "11:7", "`j` is the name of both a job and a maintenance task", "[maintenance.j] comes first"),
        // pings
        case("[pings.p]\nuuid = \"0123456789abcdef\"\n", "1:8", "ping `p` has neither `period` nor `schedule`", "period = \"1d\""),
        case("[pings.p]\nuuid = \"0123456789abcdef\"\nperiod = \"1d\"\nschedule = \"daily\"\n", "4:12", "ping `p` has both `period` and `schedule`", "keep one"),
        case("[pings.p]\nperiod = \"1d\"\n", "1:8", "ping `p` has no `uuid`", "uuidgen"),
        case("[pings.p]\nuuid = \"short\"\nperiod = \"1d\"\n", "2:8", "the uuid of ping `p` must be 16-64 letters, digits, `-` or `_`", "uuidgen"),
        case("[pings.p]\nuuid = \"0123456789abcdef\"\nperiod = \"0s\"\n", "3:10", "`period` must not be zero", ""),
        case("[pings.p]\nuuid = \"0123456789abcdef\"\nperiod = \"1d\"\nrandomized_delay = \"5m\"\n", "4:20", "`randomized_delay` only makes sense with `schedule`", ""),
        case("[pings.p]\nuuid = \"0123456789abcdef\"\nperiod = \"1d\"\ngrace = \"soon\"\n", "4:9", "`soon` is not a duration", "grace = \"1h\""),
        case("[pings.p]\nuuid = \"0123456789abcdef\"\nschedule = \"daily\"\nlate_after = \"1h\"\n", "4:1", "unknown key `late_after`", "valid keys here: uuid, period, schedule, randomized_delay, grace"),
        case("[pings.a]\nuuid = \"0123456789abcdef\"\nperiod = \"1d\"\n[pings.b]\nuuid = \"0123456789abcdef\"\nperiod = \"1d\"\n", "5:8", "the uuid of ping `b` is also used by ping `a`", "its own uuid"),
        // top level
        case("[ping.p]\n", "1:2", "unknown key `ping`", "did you mean `pings`?"),
        case("[maintainance.m]\n", "1:2", "unknown key `maintainance`", "did you mean `maintenance`?"),
    ]
}

#[test]
fn every_bad_input_gets_its_position_message_and_hint() {
    check_cases(cases(), 15);
}

#[test]
fn capability_secrets_never_appear_in_errors() {
    let uuid = "hunter2hunter2hunter2";
    let text = format!("[pings.a]\nuuid = \"{uuid}\"\nperiod = \"1d\"\n[pings.b]\nuuid = \"{uuid}\"\nperiod = \"1d\"\n");
    let err = parse(&text, Path::new("x.toml")).unwrap_err();
    assert!(!format!("{err}{err:?}").contains("hunter2"), "{err}");
    let err = parse(
        "[pings.a]\nuuid = \"hunter2 is not valid\"\nperiod = \"1d\"\n",
        Path::new("x.toml"),
    )
    .unwrap_err();
    assert!(!format!("{err}{err:?}").contains("hunter2"), "{err}");
    for url in [
        "https://agent:hunter2@hub.lan",
        "hunter2://hub",
        "https://hub/?t=hunter2",
        "https://hub/#hunter2",
    ] {
        let err = parse(
            &format!("[agent]\nhub_url = \"{url}\"\n"),
            Path::new("x.toml"),
        )
        .unwrap_err();
        assert!(!format!("{err}{err:?}").contains("hunter2"), "{err}");
    }
}

#[test]
fn all_problems_of_the_new_sections_are_reported_together() {
    let text = multi(
        "[jobs.a]\nrepository = \"r\"\nschedule = \"25:00\"\n[[jobs.a.databases]]\ntype = \"sqlite\"\n\
         [maintenance.m]\nhost = \"nas\"\nrepository = \"x\"\n\
         [pings.p]\nuuid = \"0123456789abcdef\"\n",
    );
    let d = match parse(&text, Path::new("x.toml")) {
        Err(ConfigError::Invalid(d)) => d,
        other => panic!("{other:?}"),
    };
    let got: Vec<String> = d
        .iter()
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        got,
        vec![
            "6:7 job `a` has no host",
            "8:13 bad schedule: `25:00`: hour must be 0-23, not 25",
            "9:1 a sqlite source of job `a` has no `path`",
            "11:14 maintenance `m` has no retention policy",
            "13:14 maintenance `m` uses repository `x`, which is not declared",
            "14:8 ping `p` has neither `period` nor `schedule`",
        ],
        "{d:#?}"
    );
}

#[test]
fn a_schedule_with_escapes_is_reported_at_its_start() {
    let err = parse(
        &job("paths = [\"/a\"]\nschedule = \"\\u004Don..Fri 25:00\"\n"),
        Path::new("b.toml"),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("b.toml:10:12: bad schedule: `25:00`"),
        "{err}"
    );
}

// ---- extract_host ----

fn tables(text: &str, section: &str) -> Vec<String> {
    let t: toml::Table = text.parse().unwrap();
    t.get(section)
        .and_then(|v| v.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

fn top(text: &str) -> Vec<String> {
    let t: toml::Table = text.parse().unwrap();
    t.keys().cloned().collect()
}

#[test]
fn extract_host_gives_each_agent_exactly_its_part() {
    let origin = Path::new("/etc/bulwark/bulwark.toml");
    let nas = extract_host(HOMELAB, origin, "nas").unwrap();
    assert_eq!(
        top(&nas),
        ["agent", "hosts", "jobs", "repositories"],
        "{nas}"
    );
    assert_eq!(tables(&nas, "hosts"), ["nas"]);
    assert_eq!(tables(&nas, "jobs"), ["nas"]);
    assert_eq!(tables(&nas, "repositories"), ["nas"]);
    assert!(
        !nas.contains("[hub]") && !nas.contains("pings") && !nas.contains("2f6d3c1a"),
        "{nas}"
    );
    let cfg = parse(&nas, origin).unwrap();
    let full = parse(HOMELAB, origin).unwrap();
    assert_eq!(
        cfg.jobs["nas"], full.jobs["nas"],
        "the job is the same after the round trip"
    );
    assert_eq!(cfg.repositories["nas"], full.repositories["nas"]);
    assert_eq!(cfg.agent, full.agent);
    assert_eq!(cfg.hosts["nas"], full.hosts["nas"]);
    assert!(cfg.hub.is_none() && cfg.pings.is_empty() && cfg.maintenance.is_empty());

    let hub = extract_host(HOMELAB, origin, "hub").unwrap();
    assert_eq!(
        top(&hub),
        ["agent", "hosts", "maintenance", "repositories"],
        "{hub}"
    );
    assert_eq!(tables(&hub, "maintenance"), ["nas-prune", "vps-prune"]);
    assert_eq!(tables(&hub, "repositories"), ["nas-admin", "vps-admin"]);
    let cfg = parse(&hub, origin).unwrap();
    assert_eq!(cfg.maintenance, full.maintenance);
    assert!(cfg.jobs.is_empty());

    let vps = extract_host(HOMELAB, origin, "vps").unwrap();
    assert_eq!(tables(&vps, "jobs"), ["vps"]);
    assert_eq!(parse(&vps, origin).unwrap().jobs["vps"], full.jobs["vps"]);
}

#[test]
fn extract_host_makes_relative_paths_absolute_and_keeps_settings() {
    let text = r#"
[settings]
host = "ignored-by-agents"
[agent]
hub_url = "https://hub.lan:8000"
ca_file = "ca.pem"
[hosts.nas]
token_file = "tokens/nas"
[hosts.other]
[repositories.local]
url = "backups/nas"
password_file = "local.pass"
[repositories.s3]
url = "s3:https://s3.example.com/bucket"
password_env = "PW"
[repositories.s3.s3]
access_key_id_file = "s3.id"
secret_access_key_env = "S3_SECRET"
[repositories.unused]
url = "/srv/unused"
password_file = "unused.pass"
[jobs.db]
host = "nas"
repository = "local"
[[jobs.db.databases]]
type = "postgres"
password_file = "pg.pass"
[jobs.offsite]
host = "nas"
repository = "s3"
paths = ["/etc"]
[jobs.other]
host = "other"
repository = "unused"
paths = ["/etc"]
"#;
    let origin = Path::new("/etc/bulwark/bulwark.toml");
    let out = extract_host(text, origin, "nas").unwrap();
    assert_eq!(
        top(&out),
        ["agent", "hosts", "jobs", "repositories", "settings"],
        "{out}"
    );
    assert_eq!(tables(&out, "repositories"), ["local", "s3"]);
    // Parsed from somewhere else entirely, the paths still point at the same files.
    let cfg = parse(&out, Path::new("/var/lib/bulwark/fetched.toml")).unwrap();
    assert_eq!(
        cfg.agent.ca_file,
        Some(PathBuf::from("/etc/bulwark/ca.pem"))
    );
    assert_eq!(
        cfg.hosts["nas"].token_file,
        Some(PathBuf::from("/etc/bulwark/tokens/nas"))
    );
    assert_eq!(
        cfg.repositories["local"].url,
        RepoUrl::Local("/etc/bulwark/backups/nas".into())
    );
    assert_eq!(
        cfg.repositories["local"].password,
        SecretSource::File("/etc/bulwark/local.pass".into())
    );
    assert_eq!(
        cfg.repositories["s3"].s3.as_ref().unwrap().access_key_id,
        Some(SecretSource::File("/etc/bulwark/s3.id".into()))
    );
    assert!(matches!(
        &cfg.jobs["db"].databases[0].kind,
        DatabaseKind::Postgres { password: Some(SecretSource::File(p)), .. } if p == Path::new("/etc/bulwark/pg.pass")
    ));
    assert_eq!(cfg.settings.host.as_deref(), Some("ignored-by-agents"));

    // A host with nothing to do still gets a valid file.
    let other = extract_host(
        &text.replace("host = \"other\"", "host = \"nas\""),
        origin,
        "other",
    )
    .unwrap();
    assert_eq!(top(&other), ["agent", "hosts", "settings"], "{other}");
    assert!(parse(&other, origin).unwrap().jobs.is_empty());
}

#[test]
fn extract_host_errors() {
    let origin = Path::new("/etc/bulwark/bulwark.toml");
    let err = extract_host(HOMELAB, origin, "laptop").unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownHost { name, available } if name == "laptop" && available == "hub, nas, vps")
    );
    assert_eq!(
        err.to_string(),
        "there is no host `laptop` in the configuration (hosts: hub, nas, vps); declare it as [hosts.laptop]"
    );
    let err = extract_host("[settings]\n", origin, "nas").unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownHost { available, .. } if available == "none"));
    let err =
        extract_host("[hosts.nas]\n[jobs.j]\nrepository = \"r\"\n", origin, "nas").unwrap_err();
    assert!(
        matches!(err, ConfigError::Invalid(_)),
        "an invalid file is not extracted: {err}"
    );
}

#[test]
fn the_documented_many_hosts_example_parses_and_splits() {
    let doc = include_str!("../../../docs/configuration.md");
    let start = doc.find("## Many hosts in one file").unwrap();
    let block = &doc[start..];
    let block = &block[block.find("```toml\n").unwrap() + 8..];
    let block = &block[..block.find("\n```").unwrap()];
    let origin = Path::new("/etc/bulwark/bulwark.toml");
    let cfg = parse(block, origin).unwrap();
    assert_eq!(cfg.hosts.keys().collect::<Vec<_>>(), ["hub", "nas", "vps"]);
    assert_eq!(
        cfg.jobs["nas"].databases[0].filename,
        "databases/postgres/immich.dump"
    );
    assert_eq!(
        cfg.jobs["vps"].databases[0].filename,
        "databases/sqlite/db.sqlite"
    );
    assert!(cfg
        .maintenance
        .values()
        .all(|m| m.retention.prune && m.host.as_deref() == Some("hub")));
    assert!(cfg.hub.is_some() && cfg.pings.contains_key("router"));
    for (host, jobs, maintenance, repositories) in [
        (
            "hub",
            vec![],
            vec!["nas-prune", "vps-prune"],
            vec!["nas-admin", "vps-admin"],
        ),
        ("nas", vec!["nas"], vec![], vec!["nas"]),
        ("vps", vec!["vps"], vec![], vec!["vps"]),
    ] {
        let part = extract_host(block, origin, host).unwrap();
        assert_eq!(tables(&part, "hosts"), [host]);
        assert_eq!(tables(&part, "jobs"), jobs, "{part}");
        assert_eq!(tables(&part, "maintenance"), maintenance, "{part}");
        assert_eq!(tables(&part, "repositories"), repositories, "{part}");
        assert!(
            !top(&part).iter().any(|t| t == "hub" || t == "pings"),
            "{part}"
        );
        parse(&part, origin).unwrap();
    }
}
