//! `bulwark monitors` (every monitor's state, from the hub's control API)
//! and `bulwark notify test NAME` (one test message through a notifier of
//! the config file, to check its settings and secrets).

use std::path::PathBuf;

use anyhow::Result;
use bulwark_api::{MonitorHealth, MonitorStatus, MonitorsView, VantageStatus};
use bulwark_config::{BuildError, Config};
use bulwark_notify::Message;
use clap::{Args, Subcommand};
use jiff::Timestamp;

use crate::{
    agent_cmd::{age, control_client, hub_call_error},
    cli::Global,
    context::{fail, load_config},
    exit, Exit,
};

/// Exit codes of `bulwark monitors` (its `--help`).
pub(crate) const MONITORS_EXIT_CODES: &str = "\
EXIT CODES:
    0    no monitor is down (each is up, or unknown: not enough fresh results yet)
    1    the hub could not be asked (the message says why)
    3    at least one monitor is down (also with --json), so a script or a cron
         job can act on it: `bulwark monitors > /dev/null || echo something is down`";

/// The examples and exit codes in `bulwark monitors --help`.
pub(crate) fn monitors_after_help() -> String {
    format!(
        "EXAMPLES:
    bulwark monitors                          the local `bulwark up`
    bulwark monitors --hub https://hub.lan:8000 --token-file /etc/bulwark/admin.token
    bulwark monitors --json                   the same as GET /api/v1/monitors

{MONITORS_EXIT_CODES}"
    )
}

/// `bulwark monitors`.
#[derive(Debug, Args)]
pub(crate) struct MonitorsArgs {
    /// The hub [default: [agent] hub_url, else the local `bulwark up`].
    #[arg(long, env = "BULWARK_HUB", value_name = "URL")]
    pub(crate) hub: Option<String>,
    /// File holding an admin token [default: the local `bulwark up`'s].
    #[arg(long, env = "BULWARK_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
}

/// `bulwark notify`.
#[derive(Debug, Subcommand)]
pub(crate) enum NotifyCmd {
    /// Send a test message through a notifier of the config file.
    ///
    /// Reads `[notifiers.NAME]` from the configuration file (-c), loads its
    /// secrets (token_file, url_file, password_file, header_files, ...
    /// and the *_env variables) and sends one message, titled "Bulwark test
    /// notification (NAME)", the way the hub sends alerts. Routes and
    /// silences are not consulted, and nothing is recorded at the hub.
    ///
    /// Run it where the hub runs, as the hub's user: the secret files must be
    /// readable here and the message leaves from this machine's network, so
    /// a test that works here means the hub's alerts get through too.
    ///
    /// A secret that cannot be read, settings the notifier refuses, or a
    /// server that refuses the message (wrong token, unknown topic, HTTP 500)
    /// is an error saying which, with exit code 1; no secret is ever printed.
    #[command(after_help = "EXAMPLES:
    bulwark -c /etc/bulwark/bulwark.toml notify test phone
        sent a test message through phone (ntfy)
    bulwark -c bulwark.toml --json notify test team
        {\"notifier\": \"team\", \"kind\": \"discord\", \"sent\": true}")]
    Test {
        /// The notifier: NAME of a `[notifiers.NAME]` table.
        name: String,
    },
}

/// `bulwark monitors`.
pub(crate) fn monitors(g: &Global, a: MonitorsArgs) -> Result<u8> {
    let client = control_client(g, a.hub, a.token_file)?;
    let view = crate::hub_cmd::runtime()?
        .block_on(client.monitors())
        .map_err(hub_call_error)?;
    if g.json {
        crate::output::json(&view)?;
    } else {
        print!("{}", render_monitors(&view, Timestamp::now()));
    }
    Ok(monitors_exit(&view))
}

/// 3 when a monitor is down, else 0.
pub(crate) fn monitors_exit(view: &MonitorsView) -> u8 {
    if view.monitors.iter().any(|m| m.state == MonitorHealth::Down) {
        exit::INCOMPLETE
    } else {
        exit::OK
    }
}

/// The `bulwark monitors` table, with the hub's warnings above it.
pub(crate) fn render_monitors(view: &MonitorsView, now: Timestamp) -> String {
    let mut out = String::new();
    if !view.connectivity {
        out.push_str(
            "the hub's network canaries all fail: alerts are held back until one answers again\n",
        );
    }
    if view.pending_notifications > 0 {
        let n = view.pending_notifications;
        out.push_str(&format!(
            "{n} notification{} waiting to be delivered (retried; see the hub's log)\n",
            if n == 1 { "" } else { "s" }
        ));
    }
    if view.monitors.is_empty() {
        out.push_str("no monitors: declare them as [monitors.NAME] in the hub's bulwark.toml (see docs/monitoring.md)\n");
        return out;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let rows: Vec<Vec<String>> = view.monitors.iter().map(|m| row(m, now)).collect();
    out.push_str(&crate::output::table(
        &["NAME", "TYPE", "STATE", "SINCE", "VANTAGES", "MESSAGE"],
        &rows,
    ));
    out
}

fn row(m: &MonitorStatus, now: Timestamp) -> Vec<String> {
    let name = match &m.item {
        Some(item) => format!("{}/{item}", m.name),
        None => m.name.clone(),
    };
    let mut state = m.state.as_str().to_uppercase();
    if m.silenced {
        state.push_str(" (silenced)");
    }
    let since = m.since.map_or_else(|| "-".to_string(), |t| age(t, now));
    let vantages = if m.vantages.is_empty() {
        "-".to_string()
    } else {
        m.vantages
            .iter()
            .map(vantage)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let message: String = m.message.chars().take(160).collect();
    vec![name, m.kind.clone(), state, since, vantages, message]
}

/// `hub:up 12ms`, `nas:down`, `vps:unknown (stale)`.
fn vantage(v: &VantageStatus) -> String {
    let mut s = format!("{}:{}", v.vantage, v.state.as_str());
    if let (Some(true), Some(ms)) = (v.last_up, v.latency_ms) {
        if ms < 10.0 {
            s.push_str(&format!(" {ms:.1}ms"));
        } else {
            s.push_str(&format!(" {ms:.0}ms"));
        }
    }
    if v.stale {
        s.push_str(" (stale)");
    }
    s
}

/// `bulwark notify ...`.
pub(crate) fn notify(g: &Global, cmd: NotifyCmd) -> Result<u8> {
    match cmd {
        NotifyCmd::Test { name } => notify_test(g, &name),
    }
}

/// What `bulwark notify test --json` prints.
#[derive(Debug, serde::Serialize)]
struct Sent<'a> {
    notifier: &'a str,
    kind: &'static str,
    sent: bool,
}

fn notify_test(g: &Global, name: &str) -> Result<u8> {
    let cfg = load_config(g)?.ok_or_else(|| {
        fail(
            "`notify test` needs the configuration file that declares the notifier",
            "give it with -c FILE (or BULWARK_CONFIG), e.g. `bulwark -c /etc/bulwark/bulwark.toml notify test phone`",
        )
    })?;
    let decl = cfg
        .notifiers
        .get(name)
        .ok_or_else(|| unknown_notifier(name, &cfg))?;
    let kind = decl.settings.kind();
    let notifier = decl.build().map_err(|e| {
        let hint = match &e {
            BuildError::Secret { .. } => Some(
                "the notifier's secrets are read where this command runs: run it on the hub's machine, as the hub's user"
                    .to_string(),
            ),
            _ => None,
        };
        anyhow::Error::new(Exit { code: exit::FATAL, message: e.to_string(), hint })
    })?;
    let rt = crate::hub_cmd::runtime()?;
    // the error names the notifier, quotes the server and gives a hint; never a secret
    rt.block_on(notifier.send(&Message::test(name)))
        .map_err(|e| {
            anyhow::Error::new(Exit {
                code: exit::FATAL,
                message: e.to_string(),
                hint: None,
            })
        })?;
    if g.json {
        crate::output::json(&Sent {
            notifier: name,
            kind,
            sent: true,
        })?;
    } else {
        println!("sent a test message through {name} ({kind})");
    }
    Ok(exit::OK)
}

fn unknown_notifier(name: &str, cfg: &Config) -> anyhow::Error {
    let declared: Vec<&str> = cfg.notifiers.keys().map(String::as_str).collect();
    let message = format!("there is no [notifiers.{name}] in {}", cfg.source.display());
    let hint = if declared.is_empty() {
        "no notifiers are declared; add a [notifiers.NAME] table (see docs/monitoring.md#notifiers)"
            .to_string()
    } else {
        let list = declared.join(", ");
        match bulwark_config::closest(name, &declared) {
            Some(c) => format!("did you mean `{c}`? (declared: {list})"),
            None => format!("declared: {list}"),
        }
    };
    fail(message, hint)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bulwark_api::Severity;

    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn vantage(
        name: &str,
        state: MonitorHealth,
        last_up: Option<bool>,
        latency_ms: Option<f64>,
        stale: bool,
    ) -> VantageStatus {
        VantageStatus {
            vantage: name.into(),
            state,
            last_check: Some(ts("2026-11-23T11:59:50Z")),
            last_up,
            latency_ms,
            message: String::new(),
            cert_days_left: None,
            stale,
        }
    }

    fn monitor(name: &str, item: Option<&str>, kind: &str, state: MonitorHealth) -> MonitorStatus {
        MonitorStatus {
            name: name.into(),
            item: item.map(Into::into),
            kind: kind.into(),
            state,
            since: Some(ts("2026-11-23T09:55:00Z")),
            severity: Severity::Warning,
            message: String::new(),
            silenced: false,
            notified: None,
            vantages: vec![],
        }
    }

    #[test]
    fn the_table_shows_state_vantages_and_the_hubs_warnings() {
        let now = ts("2026-11-23T12:00:00Z");
        let mut web = monitor("web", None, "http", MonitorHealth::Down);
        web.message = "expected status 200-399, got 502".into();
        web.silenced = true;
        web.vantages = vec![
            vantage("hub", MonitorHealth::Up, Some(true), Some(12.4), false),
            vantage(
                "nas",
                MonitorHealth::Down,
                Some(false),
                Some(10_000.0),
                false,
            ),
            vantage("vps", MonitorHealth::Unknown, None, None, true),
        ];
        let mut photos = monitor("backups", Some("photos"), "backup", MonitorHealth::Up);
        photos.since = None;
        let view = MonitorsView {
            monitors: vec![
                photos,
                web,
                monitor("dns", None, "dns", MonitorHealth::Unknown),
            ],
            connectivity: false,
            pending_notifications: 2,
        };
        let text = render_monitors(&view, now);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "the hub's network canaries all fail: alerts are held back until one answers again",
            "{text}"
        );
        assert_eq!(
            lines[1],
            "2 notifications waiting to be delivered (retried; see the hub's log)"
        );
        assert!(
            lines[3].starts_with("NAME") && lines[3].contains("VANTAGES"),
            "{text}"
        );
        assert!(
            lines[5].starts_with("backups/photos  backup  UP ") && lines[5].contains(" -  "),
            "{text}"
        );
        assert!(
            lines[6].contains("DOWN (silenced)") && lines[6].contains("2h 5m ago"),
            "{text}"
        );
        assert!(
            lines[6].contains("hub:up 12ms, nas:down, vps:unknown (stale)"),
            "latency only of an up probe: {text}"
        );
        assert!(
            lines[6].ends_with("expected status 200-399, got 502"),
            "{text}"
        );
        assert!(
            lines[7].starts_with("dns ") && lines[7].contains("UNKNOWN"),
            "{text}"
        );
        assert_eq!(monitors_exit(&view), exit::INCOMPLETE, "a monitor is down");

        let fine = MonitorsView {
            monitors: view.monitors[..1].to_vec(),
            connectivity: true,
            pending_notifications: 0,
        };
        let text = render_monitors(&fine, now);
        assert!(
            text.starts_with("NAME"),
            "no warnings when all is well: {text}"
        );
        assert_eq!(monitors_exit(&fine), exit::OK);
        let unknown = MonitorsView {
            monitors: view.monitors[2..].to_vec(),
            connectivity: true,
            pending_notifications: 0,
        };
        assert_eq!(monitors_exit(&unknown), exit::OK, "unknown is not down");

        let none = MonitorsView {
            monitors: vec![],
            connectivity: true,
            pending_notifications: 1,
        };
        let text = render_monitors(&none, now);
        assert!(
            text.starts_with("1 notification waiting")
                && text.contains("no monitors: declare them"),
            "{text}"
        );
    }

    #[test]
    fn small_latencies_keep_a_decimal() {
        assert_eq!(
            super::vantage(&vantage(
                "hub",
                MonitorHealth::Up,
                Some(true),
                Some(0.42),
                false
            )),
            "hub:up 0.4ms"
        );
        assert_eq!(
            super::vantage(&vantage(
                "hub",
                MonitorHealth::Down,
                Some(true),
                Some(130.2),
                false
            )),
            "hub:down 130ms"
        );
    }
}
