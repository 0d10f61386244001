//! `bulwark agent`, `up`, `status`, `trigger` and `maintenance`: wiring of the
//! agent and the hub's control plane.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Result;
use bulwark_agent::{Agent, AgentOptions, ConfigSource, HubClient, ProcessExecutor, SystemClock};
use bulwark_engine::{CheckData, ProgressSink, RepoSpec, SnapshotFilter};
use clap::Args;
use jiff::Timestamp;

use crate::{
    cli::Global,
    context::{fail, load_config},
    exit,
};

/// `bulwark agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The hub's control API, e.g. https://hub.lan:8000 [default: [agent] hub_url].
    #[arg(long, env = "BULWARK_HUB", value_name = "URL")]
    pub(crate) hub: Option<String>,
    /// File holding this host's hub token [default: [hosts.NAME] token_file].
    #[arg(long, env = "BULWARK_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// This host's name [default: [settings] host, else the machine's host name].
    #[arg(long, value_name = "NAME")]
    pub(crate) host: Option<String>,
    /// Where the agent keeps its state [default: [agent] state_dir, else /var/lib/bulwark/agent].
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Longest wait of one long-poll to the hub, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub(crate) poll_wait: u64,
    /// The public key (`ed25519:…` from `bulwark config keygen`, or a file
    /// holding it) the hub's configuration must be signed with [default:
    /// [agent] config_key]. Required when the configuration comes from the hub.
    #[arg(long, env = "BULWARK_CONFIG_KEY", value_name = "KEY")]
    pub(crate) config_key: Option<String>,
}

/// `bulwark up`.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Where everything lives [default: $XDG_DATA_HOME/bulwark].
    #[arg(long, env = "BULWARK_HOME", value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Address of the hub (status page, control API, REST repositories).
    #[arg(long, default_value = "127.0.0.1:8130", value_name = "ADDR")]
    pub(crate) listen: String,
}

/// `bulwark status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The hub [default: [agent] hub_url, else the local `bulwark up`].
    #[arg(long, env = "BULWARK_HUB", value_name = "URL")]
    pub(crate) hub: Option<String>,
    /// File holding an admin (or host) token [default: the local `bulwark up`'s].
    #[arg(long, env = "BULWARK_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
}

/// `bulwark alerts`.
#[derive(Debug, Args)]
pub(crate) struct AlertsArgs {
    /// Also resolved alerts (the history), newest first.
    #[arg(long)]
    pub(crate) all: bool,
    /// At most this many (1-1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) limit: u32,
    /// The hub [default: [agent] hub_url, else the local `bulwark up`].
    #[arg(long, env = "BULWARK_HUB", value_name = "URL")]
    pub(crate) hub: Option<String>,
    /// File holding an admin token [default: the local `bulwark up`'s].
    #[arg(long, env = "BULWARK_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) action: Option<AlertsCmd>,
}

/// `bulwark alerts resolve`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AlertsCmd {
    /// Resolve (acknowledge) an open alert, e.g. a `replication.shrink` you
    /// have looked into.
    Resolve {
        /// The alert's id (the `#N` in `bulwark alerts`).
        id: i64,
    },
}

pub(crate) fn alerts(g: &Global, a: AlertsArgs) -> Result<u8> {
    let client = control_client(g, a.hub, a.token_file)?;
    let rt = crate::hub_cmd::runtime()?;
    if let Some(AlertsCmd::Resolve { id }) = a.action {
        let al = rt
            .block_on(client.resolve_alert(id))
            .map_err(hub_call_error)?;
        if g.json {
            crate::output::json(&al)?;
        } else {
            println!("resolved #{} {} {}", al.id, al.kind, al.subject);
        }
        return Ok(exit::OK);
    }
    let list = rt
        .block_on(client.alerts(if a.all { None } else { Some(true) }, a.limit))
        .map_err(hub_call_error)?;
    if g.json {
        crate::output::json(&list)?;
        return Ok(exit::OK);
    }
    if list.is_empty() {
        println!("{}", if a.all { "no alerts" } else { "no open alerts" });
        return Ok(exit::OK);
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|al| {
            vec![
                format!("#{}", al.id),
                al.severity.as_str().to_uppercase(),
                al.kind.clone(),
                al.subject.clone(),
                age(al.opened, now),
                al.resolved
                    .map_or("open".into(), |r| format!("resolved {}", age(r, now))),
                al.message.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::output::table(
            &["ID", "SEVERITY", "KIND", "SUBJECT", "OPENED", "STATE", "MESSAGE"],
            &rows
        )
    );
    Ok(exit::OK)
}

/// `bulwark trigger`.
#[derive(Debug, Args)]
pub(crate) struct TriggerArgs {
    /// The job (or maintenance) to run now.
    pub(crate) job: String,
    /// The hub [default: [agent] hub_url, else the local `bulwark up`].
    #[arg(long, env = "BULWARK_HUB", value_name = "URL")]
    pub(crate) hub: Option<String>,
    /// File holding an admin token [default: the local `bulwark up`'s].
    #[arg(long, env = "BULWARK_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
}

/// This machine's name as a Bulwark host name: the host name up to the first
/// dot, with anything but letters, digits, `-` and `_` replaced by `-`.
pub(crate) fn machine_host() -> String {
    let raw = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let short = raw.split('.').next().unwrap_or_default();
    let name: String = short
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// A stop flag that SIGINT/SIGTERM (or the returned sender) turns true.
pub(crate) fn stop_on_signal() -> (
    tokio::sync::watch::Sender<bool>,
    tokio::sync::watch::Receiver<bool>,
) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let on_signal = tx.clone();
    tokio::spawn(async move {
        crate::hub_cmd::shutdown_signal().await;
        eprintln!("bulwark: stopping (a running job finishes its cleanup hooks first)");
        let _ = on_signal.send(true);
    });
    (tx, rx)
}

fn agent_error(e: bulwark_agent::AgentError) -> anyhow::Error {
    match e.hint() {
        Some(h) => {
            let h = h.to_string();
            fail(e.to_string(), h)
        }
        None => fail(e.to_string(), "see docs/agent.md"),
    }
}

/// The CA file for connections to the hub: --ca-file, else [agent] ca_file.
pub(crate) fn ca_file(g: &Global, cfg: Option<&bulwark_config::Config>) -> Option<PathBuf> {
    g.ca_file
        .clone()
        .or_else(|| cfg.and_then(|c| c.agent.ca_file.clone()))
}

/// --allow-insecure-http, or [agent] allow_insecure_http.
pub(crate) fn allow_insecure(g: &Global, cfg: Option<&bulwark_config::Config>) -> bool {
    g.allow_insecure_http || cfg.is_some_and(|c| c.agent.allow_insecure_http)
}

/// Default state directory: /var/lib/bulwark/agent for root, else under $XDG_STATE_HOME.
fn default_state_dir() -> PathBuf {
    if nix::unistd::Uid::effective().is_root() {
        return PathBuf::from("/var/lib/bulwark/agent");
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("bulwark/agent")
}

/// Arguments every job process inherits from the agent's command line.
fn child_args(g: &Global) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(d) = &g.cache_dir {
        v.push("--cache-dir".into());
        v.push(d.display().to_string());
    }
    if g.no_cache {
        v.push("--no-cache".into());
    }
    if let Some(ca) = &g.ca_file {
        v.push("--ca-file".into());
        v.push(ca.display().to_string());
    }
    if g.allow_insecure_http {
        v.push("--allow-insecure-http".into());
    }
    v
}

pub(crate) fn agent(g: &Global, a: AgentArgs) -> Result<u8> {
    let cfg = load_config(g)?;
    let host = a
        .host
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.settings.host.clone()))
        .or_else(|| cfg.is_some().then(machine_host));
    let hub_url = a
        .hub
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.agent.hub_url.clone()));
    let token_file = a.token_file.clone().or_else(|| {
        let (c, h) = (cfg.as_ref()?, host.as_ref()?);
        c.hosts.get(h)?.token_file.clone()
    });
    let state_dir = a
        .state_dir
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.agent.state_dir.clone()))
        .unwrap_or_else(default_state_dir);
    let ca_file = ca_file(g, cfg.as_ref());
    let config_key = a
        .config_key
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.agent.config_key.clone()))
        .map(|k| bulwark_agent::ConfigKey::parse_or_read(&k).map_err(agent_error))
        .transpose()?;
    let source = match &g.config {
        Some(p) => ConfigSource::File(p.clone()),
        None if hub_url.is_some() => ConfigSource::Hub,
        None => {
            return Err(fail(
                "the agent needs a configuration",
                "give -c bulwark.toml (a local copy), or --hub URL --token-file FILE to fetch this host's part from the hub",
            ))
        }
    };
    let hub = match (&hub_url, &token_file) {
        (Some(url), Some(tf)) => {
            let token = bulwark_agent::read_token(tf).map_err(agent_error)?;
            Some(
                bulwark_agent::HubClient::with_options(
                    url,
                    token,
                    ca_file.as_deref(),
                    allow_insecure(g, cfg.as_ref()),
                )
                .map_err(agent_error)?,
            )
        }
        (Some(_), None) => {
            return Err(fail(
                "a hub is configured but no token file",
                "pass --token-file FILE, or set token_file in this host's [hosts.NAME] table",
            ))
        }
        (None, _) => None,
    };
    if source == ConfigSource::Hub && config_key.is_none() {
        return Err(fail(
            "this agent would take its configuration from the hub without a key to check its signature: \
             a hub (or a network in the middle) could then make it run any command",
            "pass --config-key ed25519:… (or BULWARK_CONFIG_KEY), the public key `bulwark config keygen` printed; \
             or give the agent its own file with -c",
        ));
    }
    if hub.is_none() {
        tracing::warn!(
            "no hub configured: jobs run on their schedules, but runs are only logged here"
        );
    }
    let config_for_children = match &source {
        ConfigSource::File(p) => std::path::absolute(p).unwrap_or_else(|_| p.clone()),
        ConfigSource::Hub => state_dir.join("config.toml"),
    };
    let opts = AgentOptions {
        host: host.clone(),
        state_dir,
        config: source,
        poll_wait: Duration::from_secs(a.poll_wait.clamp(1, bulwark_api::MAX_POLL_WAIT)),
        reload_every: Duration::from_secs(2),
        config_key,
    };
    let exec = ProcessExecutor {
        program: std::env::current_exe().map_err(|e| {
            fail(
                format!("cannot find the bulwark binary: {e}"),
                "run it by its full path",
            )
        })?,
        config: config_for_children,
        extra_args: child_args(g),
        stop_grace: Duration::from_secs(120),
    };
    let rt = crate::hub_cmd::runtime()?;
    rt.block_on(async move {
        let (_stop_tx, stop) = stop_on_signal();
        let agent = Agent::new(opts, hub, Arc::new(exec), Arc::new(SystemClock), stop)
            .map_err(agent_error)?;
        agent.load_config().await.map_err(agent_error)?;
        tracing::info!(host = ?host, "agent started");
        agent.run().await.map_err(agent_error)
    })?;
    Ok(exit::OK)
}

/// Where `bulwark up` keeps everything.
pub(crate) fn up_home(home: Option<PathBuf>) -> Result<PathBuf> {
    home.or_else(|| {
        std::env::var_os("BULWARK_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    })
    .or_else(|| {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .map(|d| d.join("bulwark"))
    })
    .ok_or_else(|| {
        fail(
            "cannot find a home directory for Bulwark",
            "set BULWARK_HOME or HOME",
        )
    })
}

/// The hub and token `status` and `trigger` talk to: flags, then the
/// config's [agent] hub_url, then the local `bulwark up`.
pub(crate) fn control_client(
    g: &Global,
    hub: Option<String>,
    token_file: Option<PathBuf>,
) -> Result<HubClient> {
    let cfg = load_config(g)?;
    let up = up_home(None).ok();
    let up_url = up
        .as_ref()
        .and_then(|h| std::fs::read_to_string(h.join("up/url")).ok())
        .map(|s| s.trim().to_string());
    let url = hub
        .or_else(|| cfg.as_ref().and_then(|c| c.agent.hub_url.clone()))
        .or(up_url)
        .ok_or_else(|| fail("which hub?", "pass --hub URL (or set [agent] hub_url in -c FILE); with `bulwark up` running here it is found by itself"))?;
    let token_file = token_file
        .or_else(|| {
            up.as_ref()
                .map(|h| h.join("up/admin.token"))
                .filter(|p| p.exists())
        })
        .ok_or_else(|| {
            fail(
                "no token",
                "pass --token-file FILE with an admin token (`bulwark hub token create --admin`)",
            )
        })?;
    let token = bulwark_agent::read_token(&token_file).map_err(agent_error)?;
    let ca = ca_file(g, cfg.as_ref());
    HubClient::with_options(&url, token, ca.as_deref(), allow_insecure(g, cfg.as_ref()))
        .map_err(agent_error)
}

pub(crate) fn hub_call_error(e: bulwark_agent::AgentError) -> anyhow::Error {
    let exit_with = |code: u8, message: String, hint: &str| {
        anyhow::Error::new(crate::Exit {
            code,
            message,
            hint: Some(hint.to_string()),
        })
    };
    match &e {
        bulwark_agent::AgentError::Refused { status: 401, message, .. } => exit_with(
            exit::UNAUTHORIZED,
            format!("the hub refused the token (HTTP 401: {message})"),
            "the token is unknown or revoked on this hub: create a new one on the hub with \
             `bulwark hub token create --admin --output FILE` and pass it with --token-file",
        ),
        bulwark_agent::AgentError::Refused { status: 403, what, message, .. } => exit_with(
            exit::FORBIDDEN,
            format!("the token has no access to {what} (HTTP 403: {message})"),
            "this needs an admin token: `bulwark hub token create --admin --output FILE` on the hub",
        ),
        bulwark_agent::AgentError::Unreachable(_) => {
            fail(e.to_string(), "is the hub running? check --hub")
        }
        _ => agent_error(e),
    }
}

pub(crate) fn up(g: &Global, a: UpArgs) -> Result<u8> {
    crate::up::run(g, a)
}

pub(crate) fn status(g: &Global, a: StatusArgs) -> Result<u8> {
    let client = control_client(g, a.hub, a.token_file)?;
    let status = crate::hub_cmd::runtime()?
        .block_on(client.status())
        .map_err(hub_call_error)?;
    if g.json {
        crate::output::json(&status)?;
    } else {
        print!(
            "{}",
            render_status(
                &status,
                Timestamp::now(),
                std::io::IsTerminal::is_terminal(&std::io::stdout())
            )
        );
    }
    Ok(exit::OK)
}

pub(crate) fn trigger(g: &Global, a: TriggerArgs) -> Result<u8> {
    let client = control_client(g, a.hub, a.token_file)?;
    let t = crate::hub_cmd::runtime()?
        .block_on(client.trigger(&a.job))
        .map_err(hub_call_error)?;
    if g.json {
        crate::output::json(&t)?;
    } else {
        println!(
            "triggered `{}` on host {} (command {}); its agent starts it within seconds",
            t.job, t.host, t.command
        );
        println!("follow it with `bulwark status`");
    }
    Ok(exit::OK)
}

/// "3m ago", "in 2h 5m".
pub(crate) fn age(from: Timestamp, to: Timestamp) -> String {
    let secs = to.as_second() - from.as_second();
    let (future, s) = (secs < 0, secs.unsigned_abs());
    let text = match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// The `bulwark status` table.
pub(crate) fn render_status(s: &bulwark_api::Status, now: Timestamp, color: bool) -> String {
    use std::fmt::Write;
    let paint = |text: String, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text
        }
    };
    let mut out = String::new();
    let _ = writeln!(out, "HOSTS");
    let hw = s
        .hosts
        .iter()
        .map(|h| h.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    for h in &s.hosts {
        let seen = h.last_seen.map_or("never seen".to_string(), |t| {
            format!("last seen {}", age(t, now))
        });
        let state = if h.online {
            paint("online ".into(), "32")
        } else {
            paint("OFFLINE".into(), "31;1")
        };
        let version = h
            .agent_version
            .as_deref()
            .map(|v| format!("  agent {v}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {:hw$}  {state}  {seen}{version}", h.name);
    }
    let _ = writeln!(out, "\nJOBS");
    let jw = s
        .jobs
        .iter()
        .map(|j| j.name.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let hw = s
        .jobs
        .iter()
        .map(|j| j.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        out,
        "  {:jw$}  {:hw$}  {:8}  {:26}  {:14}  NEXT RUN",
        "JOB", "HOST", "STATE", "LAST RUN", "LAST SUCCESS"
    );
    for j in &s.jobs {
        use bulwark_api::JobState as S;
        let state = match j.state {
            S::Ok => paint(format!("{:8}", "ok"), "32"),
            S::Running => paint(format!("{:8}", "running"), "36"),
            S::Pending => format!("{:8}", "pending"),
            S::Partial => paint(format!("{:8}", "PARTIAL"), "33;1"),
            S::Failed => paint(format!("{:8}", "FAILED"), "31;1"),
            S::Late => paint(format!("{:8}", "LATE"), "31;1"),
        };
        let last = j.last_run.as_ref().map_or("-".to_string(), |r| {
            let secs = r
                .report
                .finished
                .duration_since(r.report.started)
                .as_secs_f64();
            let took = if secs < 10.0 {
                format!("{secs:.1}s")
            } else {
                format!("{}s", secs.round())
            };
            format!(
                "{} {} ({took})",
                r.report.status.as_str(),
                age(r.report.finished, now)
            )
        });
        let success = j.last_success.map_or("never".to_string(), |t| age(t, now));
        let next = match (j.running_since, j.next_run, &j.schedule) {
            (Some(t), _, _) => format!("running since {}", age(t, now).trim_end_matches(" ago")),
            // planned at the agent's last poll; a time already past is starting now
            (None, Some(t), _) if t <= now => "due now".into(),
            (None, Some(t), _) => age(t, now),
            (None, None, Some(e)) => format!("({e})"),
            (None, None, None) => "on trigger".into(),
        };
        let _ = writeln!(
            out,
            "  {:jw$}  {:hw$}  {state}  {last:26}  {success:14}  {next}",
            j.name, j.host
        );
        if let Some(since) = j.late_since.filter(|_| j.state == S::Late) {
            let _ = writeln!(
                out,
                "  {:jw$}  {:hw$}  {}",
                "",
                "",
                paint(
                    format!("↳ expected a run by {} ({})", since, age(since, now)),
                    "31"
                )
            );
        }
        if matches!(j.state, S::Failed | S::Partial) {
            if let Some(e) = j.last_run.as_ref().and_then(|r| r.report.errors.first()) {
                let e: String = e.chars().take(160).collect();
                let _ = writeln!(
                    out,
                    "  {:jw$}  {:hw$}  {}",
                    "",
                    "",
                    paint(format!("↳ {e}"), "31")
                );
            }
        }
    }
    if !s.pings.is_empty() {
        let _ = writeln!(out, "\nPINGS");
        let pw = s.pings.iter().map(|p| p.name.len()).max().unwrap_or(4);
        for p in &s.pings {
            use bulwark_api::PingState as P;
            let state = match p.state {
                P::Up => paint(format!("{:8}", "up"), "32"),
                P::New => format!("{:8}", "new"),
                P::Started => paint(format!("{:8}", "started"), "36"),
                P::Down => paint(format!("{:8}", "DOWN"), "31;1"),
                P::Late => paint(format!("{:8}", "LATE"), "31;1"),
            };
            let last = p.last_ping.map_or("never".to_string(), |t| {
                format!("last ping {}", age(t, now))
            });
            let _ = writeln!(out, "  {:pw$}  {state}  {last}", p.name);
        }
    }
    out
}

/// `bulwark maintenance NAME`: forget by the policy (every host/paths group),
/// prune, optionally check — with the repository's own exclusive lock.
pub(crate) fn maintenance(g: &Global, name: &str, progress: Arc<dyn ProgressSink>) -> Result<u8> {
    let cfg = load_config(g)?.ok_or_else(|| {
        fail(
            "maintenance needs a configuration file",
            "give it with -c FILE",
        )
    })?;
    let m = cfg.maintenance.get(name).ok_or_else(|| {
        fail(
            format!(
                "there is no [maintenance.{name}] in {}",
                cfg.source.display()
            ),
            format!(
                "declared: {}",
                if cfg.maintenance.is_empty() {
                    "none".to_string()
                } else {
                    cfg.maintenance
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        )
    })?;
    let mut report = MaintenanceReport {
        job: name.to_string(),
        status: "failed",
        forget: None,
        prune: None,
        check: None,
        error: None,
    };
    let result = (|| -> Result<()> {
        let repo_cfg = cfg
            .repositories
            .get(&m.repository)
            .ok_or_else(|| fail("unknown repository", "config check"))?;
        let password = repo_cfg.password.load().map_err(|e| {
            fail(
                e.to_string(),
                "create the password file, or fix password_file",
            )
        })?;
        let spec = RepoSpec {
            location: crate::context::location(repo_cfg, ca_file(g, Some(&cfg)))?,
            password: password.expose().to_string(),
            cache_dir: crate::context::cache_dir(g),
            progress,
        };
        let repo = spec.open()?;
        let policy = crate::commands::policy_of(&m.retention)
            .map_err(|e| fail(e, "fix the retention policy"))?;
        report.forget = Some(repo.forget(&policy, &SnapshotFilter::default(), false)?);
        if m.retention.prune {
            report.prune = Some(repo.prune(false)?);
        }
        if m.check {
            report.check = Some(repo.check(CheckData::None)?);
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            report.status = if report.check.as_ref().is_some_and(|c| !c.errors.is_empty()) {
                "failed"
            } else {
                "success"
            }
        }
        Err(e) => report.error = Some(format!("{e:#}")),
    }
    if report.status == "failed" && report.error.is_none() {
        report.error = Some("check found damage; run `bulwark check` for details".into());
    }
    if g.json {
        crate::output::json(&report)?;
    } else {
        if let Some(f) = &report.forget {
            println!("retention: removed {} snapshot(s)", f.removed.len());
        }
        if let Some(p) = &report.prune {
            println!(
                "prune: {} packs removed, {} freed",
                p.packs_removed,
                crate::output::size(p.bytes_freed)
            );
        }
        if let Some(e) = &report.error {
            eprintln!("maintenance {name} failed: {e}");
        }
    }
    Ok(if report.status == "success" {
        exit::OK
    } else {
        exit::FATAL
    })
}

/// What `bulwark maintenance --json` prints (the agent reads it).
#[derive(Debug, serde::Serialize)]
struct MaintenanceReport {
    job: String,
    status: &'static str,
    forget: Option<bulwark_engine::ForgetSummary>,
    prune: Option<bulwark_engine::PruneSummary>,
    check: Option<bulwark_engine::CheckSummary>,
    error: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bulwark_api::{Host, Job, JobState, Run, RunKind, RunReport, RunStatus, Status, Trigger};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn ages_read_like_a_person_would_say_them() {
        let now = ts("2026-11-23T12:00:00Z");
        assert_eq!(age(ts("2026-11-23T11:59:30Z"), now), "30s ago");
        assert_eq!(age(ts("2026-11-23T09:55:00Z"), now), "2h 5m ago");
        assert_eq!(age(ts("2026-11-25T13:00:00Z"), now), "in 2d 1h");
    }

    #[test]
    fn status_highlights_late_and_failed_jobs_with_their_reason() {
        let now = ts("2026-11-23T12:00:00Z");
        let run = Run {
            run: 7,
            received: ts("2026-11-23T11:00:05Z"),
            report: RunReport {
                id: "0".repeat(32),
                host: "nas".into(),
                job: "db".into(),
                kind: RunKind::Backup,
                trigger: Trigger::Schedule,
                command_id: None,
                started: ts("2026-11-23T11:00:00Z"),
                finished: ts("2026-11-23T11:00:02.5Z"),
                status: RunStatus::Failed,
                exit_code: Some(1),
                snapshot: None,
                stats: Default::default(),
                skipped: vec![],
                skipped_count: 0,
                errors: vec!["database source postgres `app` failed".into()],
            },
        };
        let job = |name: &str, state, last_run, late_since| Job {
            name: name.into(),
            host: "nas".into(),
            kind: RunKind::Backup,
            repository: Some("hub".into()),
            schedule: Some("daily".into()),
            state,
            late_since,
            running_since: None,
            next_run: Some(ts("2026-11-24T00:00:00Z")),
            last_run,
            last_success: None,
        };
        let s = Status {
            generated: now,
            hosts: vec![Host {
                name: "nas".into(),
                last_seen: Some(ts("2026-11-23T11:59:58Z")),
                agent_version: Some("0.1.0".into()),
                online: true,
                jobs: vec![],
            }],
            jobs: vec![
                job("db", JobState::Failed, Some(run), None),
                job(
                    "photos",
                    JobState::Late,
                    None,
                    Some(ts("2026-11-23T01:00:00Z")),
                ),
            ],
            pings: vec![],
        };
        let text = render_status(&s, now, false);
        assert!(
            text.contains("nas   online   last seen 2s ago  agent 0.1.0"),
            "{text}"
        );
        assert!(
            text.contains("FAILED") && text.contains("failed 59m ago (2.5s)"),
            "{text}"
        );
        assert!(
            text.contains("↳ database source postgres `app` failed"),
            "{text}"
        );
        assert!(
            text.contains("LATE")
                && text.contains("↳ expected a run by 2026-11-23T01:00:00Z (11h 0m ago)"),
            "{text}"
        );
        assert!(text.contains("in 12h 0m"), "{text}");
        assert!(!text.contains('\x1b'), "no colour when not a terminal");
        assert!(render_status(&s, now, true).contains("\x1b[31;1mLATE"));
    }
}
