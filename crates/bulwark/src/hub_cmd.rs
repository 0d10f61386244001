//! `bulwark hub`: serve repositories over restic's REST protocol (flags as
//! rest-server's) and, with a configuration file or `--state`, the control
//! API (`/api/v1`, `/ping`); `hub passwd` (htpasswd entries), `hub scrub`,
//! `hub token` (control API tokens).

use std::{
    io::{BufRead, IsTerminal},
    net::{SocketAddr, ToSocketAddrs},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use bulwark_hub::{ControlConfig, ControlPlan, HubConfig, TlsFiles, TokenKind};
use clap::{Args, Subcommand};

use crate::{cli::Global, exit};

const HUB_HELP: &str = "\
Flags are rest-server's, so an existing rest-server setup (data directory,
htpasswd file, flags) works unchanged. With -c bulwark.toml the [hub] section
is used and flags override it. Authentication uses <data>/.htpasswd unless
--htpasswd is given; create entries with `bulwark hub passwd FILE USER`.

With -c (or --state DIR) the hub also serves the control API under /api/v1
and pings under /ping (so no repository may be named `api` or `ping`); its
run history lives in <state>/control.sqlite, --state defaulting to
<data>/.bulwark. The configuration file is re-read when it changes.

EXAMPLES:
    bulwark hub --data /srv/bulwark --listen :8000 --append-only
    bulwark -c /etc/bulwark/bulwark.toml hub
    bulwark -c /etc/bulwark/bulwark.toml hub token create --host nas --output /root/nas.token
    bulwark hub passwd /srv/bulwark/.htpasswd alice
    bulwark hub scrub --data /srv/bulwark --json     (exit code 3: damaged files found)";

/// `bulwark hub ...`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = HUB_HELP)]
pub(crate) struct HubArgs {
    #[command(subcommand)]
    pub(crate) command: Option<HubCmd>,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// The hub's subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum HubCmd {
    /// Add a user to an htpasswd file or change their password (bcrypt).
    ///
    /// The password is read from standard input when it is not a terminal
    /// (one line), otherwise prompted for twice. The file is replaced
    /// atomically and has mode 0600. A running hub picks the change up
    /// within a second.
    Passwd {
        /// The htpasswd file (created if missing).
        file: PathBuf,
        /// The user name.
        user: String,
    },
    /// Re-hash every stored file and report those whose content no longer
    /// matches its name (bit rot, tampering). Needs no repository key.
    /// Exit code 3 if any file is damaged or unreadable.
    Scrub {
        /// The hub's data directory.
        #[arg(long, visible_alias = "path", value_name = "DIR")]
        data: PathBuf,
    },
    /// Create, list or revoke control API tokens.
    Token {
        #[command(subcommand)]
        action: TokenCmd,
        /// The control plane's state directory [default: <data>/.bulwark].
        #[arg(long, global = true, value_name = "DIR")]
        state: Option<PathBuf>,
        /// The hub's data directory (to find the default state directory).
        #[arg(long, global = true, visible_alias = "path", value_name = "DIR")]
        data: Option<PathBuf>,
    },
}

/// `bulwark hub token ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCmd {
    /// Create a token: --admin (everything) or --host NAME (that agent only).
    ///
    /// The token is shown once. With --output it is written to FILE (mode
    /// 0600, atomically) instead of standard output.
    Create {
        /// An admin token.
        #[arg(long, conflicts_with = "host", required_unless_present = "host")]
        admin: bool,
        /// A host token for this host's agent.
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
        /// Write the token to this file (0600) instead of printing it.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; a running hub refuses it from the next request on.
    Revoke {
        /// The token's id (see `list`).
        id: i64,
    },
}

/// Serving flags (rest-server's names).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: :8000].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Data directory (one directory per repository, rest-server's layout).
    #[arg(long, visible_alias = "path", value_name = "DIR")]
    data: Option<PathBuf>,
    /// htpasswd file (bcrypt entries) [default: <data>/.htpasswd].
    #[arg(long, visible_alias = "htpasswd-file", value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// Everyone may only add files (and remove locks): nothing can be deleted.
    #[arg(long)]
    append_only: bool,
    /// Users may only use repositories under /<their user name>/ (the default;
    /// accepted for rest-server compatibility).
    #[arg(long, conflicts_with = "shared_repos")]
    private_repos: bool,
    /// Any user may use any repository not covered by an ACL entry
    /// (rest-server's default; Bulwark's default is private repositories).
    #[arg(long)]
    shared_repos: bool,
    /// No authentication at all.
    #[arg(long)]
    no_auth: bool,
    /// Serve HTTPS (with --tls-cert/--tls-key, default <data>/public_key and <data>/private_key).
    #[arg(long)]
    tls: bool,
    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Maximum bytes stored in the whole data directory.
    #[arg(long, value_name = "BYTES")]
    max_size: Option<u64>,
    /// Maximum size of one uploaded file [default: 128 MiB].
    #[arg(long, value_name = "BYTES")]
    max_file_size: Option<u64>,
    /// How often to scrub every repository (e.g. 7d, 12h; 0 disables) [default: 7d].
    #[arg(long, value_name = "DURATION")]
    scrub_interval: Option<String>,
    /// File holding a bearer token that may read /metrics.
    #[arg(long, value_name = "FILE")]
    metrics_token_file: Option<PathBuf>,
    /// Accepted for rest-server compatibility (metrics are always served on /metrics).
    #[arg(long, hide = true)]
    prometheus: bool,
    /// Serve /metrics without authentication.
    #[arg(long)]
    prometheus_no_auth: bool,
    /// Enable the control API with its state (run history, tokens) in DIR
    /// [default with -c: <data>/.bulwark].
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Connections served at once; more get a 503 [default: 512].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
}

/// Runs `bulwark hub ...`.
pub(crate) fn run(g: &Global, args: HubArgs) -> Result<u8> {
    match args.command {
        Some(HubCmd::Passwd { file, user }) => passwd(&file, &user),
        Some(HubCmd::Scrub { data }) => scrub(g, data),
        Some(HubCmd::Token {
            action,
            state,
            data,
        }) => token(g, action, state, data),
        None => serve(g, args.serve),
    }
}

/// The async runtime of the long-running commands (hub, agent, up).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn parse_listen(s: &str) -> Result<SocketAddr> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_owned()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .with_context(|| format!("--listen {s:?}: expected HOST:PORT or :PORT"))
}

fn parse_interval(s: &str) -> Result<Option<Duration>> {
    let s = s.trim();
    if s == "0" || s.eq_ignore_ascii_case("off") || s.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let d = humantime::parse_duration(s).with_context(|| {
        format!("--scrub-interval {s:?}: expected a duration like 7d or 12h, or 0")
    })?;
    Ok((!d.is_zero()).then_some(d))
}

/// The hub's settings: `[hub]` of the config file (if -c), then flags.
fn hub_config(g: &Global, a: ServeArgs) -> Result<HubConfig> {
    let from_file = match &g.config {
        Some(path) => bulwark_config::load(path)?.hub,
        None => None,
    };
    let data = a
        .data
        .clone()
        .or_else(|| from_file.as_ref().and_then(|h| h.data.clone()))
        .context(
            "no data directory: pass --data DIR (or set `data` in [hub] of the config file)",
        )?;
    let mut c = HubConfig::new(data);
    if let Some(h) = from_file {
        if let Some(l) = &h.listen {
            c.listen = parse_listen(l)?;
        }
        c.htpasswd = h.htpasswd;
        c.append_only = h.append_only;
        c.private_repos = h.private_repos;
        c.no_auth = h.no_auth;
        if let (Some(cert), Some(key)) = (h.tls_cert, h.tls_key) {
            c.tls = Some(TlsFiles { cert, key });
        }
        c.max_size = h.max_size;
        if let Some(m) = h.max_file_size {
            c.max_file_size = m;
        }
        if let Some(d) = h.scrub_interval {
            c.scrub_interval = (!d.is_zero()).then_some(d);
        }
        c.quotas = h.quota;
        c.acl = h
            .acl
            .into_iter()
            .map(|e| bulwark_hub::AclEntry {
                user: e.user,
                repo: e.repo,
                access: match e.access {
                    bulwark_config::HubAccess::Read => bulwark_hub::Access::Read,
                    bulwark_config::HubAccess::Append => bulwark_hub::Access::Append,
                    bulwark_config::HubAccess::Modify => bulwark_hub::Access::Modify,
                },
            })
            .collect();
        if !h.metrics_users.is_empty() {
            c.metrics.users = h.metrics_users;
        }
        c.metrics.token_file = h.metrics_token_file;
        if let Some(n) = h.max_connections {
            c.max_connections = n as usize;
        }
    }
    if let Some(l) = &a.listen {
        c.listen = parse_listen(l)?;
    }
    if a.htpasswd.is_some() {
        c.htpasswd = a.htpasswd;
    }
    c.append_only |= a.append_only;
    if a.shared_repos {
        c.private_repos = false;
    }
    if a.private_repos {
        c.private_repos = true;
    }
    c.no_auth |= a.no_auth;
    match (a.tls_cert, a.tls_key) {
        (Some(cert), Some(key)) => c.tls = Some(TlsFiles { cert, key }),
        (None, None) if a.tls => {
            c.tls = Some(TlsFiles {
                cert: c.data.join("public_key"),
                key: c.data.join("private_key"),
            });
        }
        (None, None) => {}
        _ => bail!("--tls-cert and --tls-key go together"),
    }
    if a.max_size.is_some() {
        c.max_size = a.max_size;
    }
    if let Some(m) = a.max_file_size {
        c.max_file_size = m;
    }
    if let Some(s) = &a.scrub_interval {
        c.scrub_interval = parse_interval(s)?;
    }
    if a.metrics_token_file.is_some() {
        c.metrics.token_file = a.metrics_token_file;
    }
    c.metrics.public |= a.prometheus_no_auth;
    if let Some(n) = a.max_connections {
        c.max_connections = n as usize;
    }
    Ok(c)
}

/// The control plane's state directory: `--state`, else `<data>/.bulwark`
/// for a local data directory.
fn state_dir(state: Option<PathBuf>, data: &Path) -> Result<PathBuf> {
    if let Some(s) = state {
        return Ok(s);
    }
    if data.to_str().is_some_and(|d| d.starts_with("s3:")) {
        bail!("with s3: data the control plane needs --state DIR (a local directory for its database)");
    }
    Ok(data.join(".bulwark"))
}

/// The plan of the config file at `path` (text and typed config).
fn load_plan(path: &Path) -> Result<ControlPlan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let cfg = bulwark_config::parse(&text, path)?;
    // the administrator's detached signature, relayed to the agents as it is
    // (the hub holds no key and checks nothing; see docs/agent.md)
    let sig_path = signature_path(path);
    let signature = match std::fs::read_to_string(&sig_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", sig_path.display())),
    };
    Ok(ControlPlan::from_config(&cfg, &text).with_signed_file(&text, signature.as_deref(), path))
}

/// `FILE.sig` next to `FILE`.
pub(crate) fn signature_path(path: &Path) -> PathBuf {
    with_suffix(path, ".sig")
}

/// `FILE<suffix>`.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Re-reads the config file when its mtime or size changes (checked every
/// 2 s) and publishes the new plan; an invalid file keeps the old plan.
async fn watch_plan(path: PathBuf, tx: tokio::sync::watch::Sender<Arc<ControlPlan>>) {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    // the signature is watched too: signing after an edit must reach agents
    let sig = signature_path(&path);
    let both = |p: &Path| (stamp(p), stamp(&sig));
    let mut last = both(&path);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = both(&path);
        if now == last {
            continue;
        }
        last = now;
        match load_plan(&path) {
            Ok(plan) => {
                tracing::info!("{} changed: control plan reloaded", path.display());
                if tx.send(Arc::new(plan)).is_err() {
                    return;
                }
            }
            Err(e) => tracing::error!(
                "{} changed but cannot be used; keeping the previous plan: {e:#}",
                path.display()
            ),
        }
    }
}

fn serve(g: &Global, a: ServeArgs) -> Result<u8> {
    let state = a.state.clone();
    let mut config = hub_config(g, a)?;
    let mut plan_source = None;
    if g.config.is_some() || state.is_some() {
        let dir = state_dir(state, &config.data)?;
        let plan = match &g.config {
            Some(path) => load_plan(path)?,
            None => ControlPlan::empty(),
        };
        let (mut control, tx) = ControlConfig::new(dir, plan);
        control.replication = Some(bulwark_hub::ReplicationSettings::new(
            crate::replicate_cmd::opener(),
        ));
        control.monitoring = Some(bulwark_hub::MonitoringSettings::default());
        if let Some(path) = &g.config {
            if let Some(d) = bulwark_config::load(path)?.hub.and_then(|h| h.run_history) {
                control.run_history = (!d.is_zero()).then_some(d);
            }
        }
        config.control = Some(control);
        plan_source = g.config.clone().map(|p| (p, tx));
    }
    let rt = runtime()?;
    let store = store_for(&config.data)?;
    rt.block_on(async move {
        let hub = match store {
            Some(store) => bulwark_hub::Hub::with_store(config.clone(), store).await?,
            None => bulwark_hub::Hub::new(config.clone()).await?,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let watcher = plan_source.map(|(path, tx)| tokio::spawn(watch_plan(path, tx)));
        hub.run(listener, shutdown_signal()).await?;
        if let Some(w) = watcher {
            w.abort();
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(exit::OK)
}

/// `--data s3:http(s)://ENDPOINT/BUCKET[/PREFIX]`: the hub fronts an
/// S3-compatible bucket (MinIO, Garage, Ceph, B2, ...) instead of a local
/// directory. Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
/// region from AWS_REGION / AWS_DEFAULT_REGION. `None` for a local path.
fn store_for(data: &std::path::Path) -> Result<Option<std::sync::Arc<dyn bulwark_store::Store>>> {
    let Some(url) = data.to_str().and_then(|d| d.strip_prefix("s3:")) else {
        return Ok(None);
    };
    s3_store(url).map(Some)
}

#[cfg(feature = "s3")]
fn s3_store(url: &str) -> Result<std::sync::Arc<dyn bulwark_store::Store>> {
    let bad = || anyhow::anyhow!("--data s3:{url}: expected s3:http(s)://ENDPOINT/BUCKET[/PREFIX]");
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let mut parts = rest.splitn(3, '/');
    let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    let bucket = parts.next().filter(|b| !b.is_empty()).ok_or_else(bad)?;
    let prefix = parts.next().unwrap_or("").trim_matches('/');
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(access_key_id), Some(secret_access_key)) =
        (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
    else {
        anyhow::bail!(
            "--data s3:…: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the bucket"
        );
    };
    let store = bulwark_store::s3::S3Store::new(bulwark_store::s3::S3Config {
        endpoint: format!("{scheme}://{host}"),
        region: env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .unwrap_or_default(),
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        access_key_id,
        secret_access_key,
    })
    .with_context(|| format!("cannot use the bucket at s3:{scheme}://{host}/{bucket}"))?;
    Ok(std::sync::Arc::new(store))
}

#[cfg(not(feature = "s3"))]
fn s3_store(_url: &str) -> Result<std::sync::Arc<dyn bulwark_store::Store>> {
    anyhow::bail!("this bulwark was built without S3 support: build it with `cargo build --release -p bulwark --features s3`")
}

/// Completes on SIGINT or SIGTERM.
/// Resolves on SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("signal received: shutting down");
}

fn passwd(file: &std::path::Path, user: &str) -> Result<u8> {
    let password = if std::io::stdin().is_terminal() {
        let p1 = rpassword::prompt_password(format!("password for {user}: "))
            .context("cannot read the password")?;
        let p2 = rpassword::prompt_password("again: ").context("cannot read the password")?;
        if p1 != p2 {
            bail!("the passwords differ");
        }
        p1
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    let existed = bulwark_hub::set_password(file, user, &password)?;
    eprintln!(
        "{} user {user} in {}",
        if existed { "updated" } else { "added" },
        file.display()
    );
    Ok(exit::OK)
}

fn token(
    g: &Global,
    action: TokenCmd,
    state: Option<PathBuf>,
    data: Option<PathBuf>,
) -> Result<u8> {
    let data = match data {
        Some(d) => Some(d),
        None => match &g.config {
            Some(path) => bulwark_config::load(path)?.hub.and_then(|h| h.data),
            None => None,
        },
    };
    let dir = match (state, data) {
        (Some(s), _) => s,
        (None, Some(d)) => state_dir(None, &d)?,
        (None, None) => bail!(
            "no state directory: pass --state DIR (or --data DIR, or -c with `data` in [hub])"
        ),
    };
    match action {
        TokenCmd::Create {
            admin,
            host,
            output,
        } => {
            let kind = match (admin, host) {
                (_, Some(h)) => TokenKind::Host(h),
                (true, None) => TokenKind::Admin,
                (false, None) => bail!("pass --admin or --host NAME"),
            };
            let what = match &kind {
                TokenKind::Admin => "admin token".to_owned(),
                TokenKind::Host(h) => format!("token for host {h}"),
            };
            let (id, secret) = bulwark_hub::create_token(&dir, kind)?;
            match output {
                Some(file) => {
                    // a token whose file could not be written is revoked at
                    // once: a retry must not leave a second live token
                    if let Err(e) = write_secret_file(&file, &format!("{secret}\n")) {
                        let undo = match bulwark_hub::revoke_token(&dir, id) {
                            Ok(_) => format!("the token (id {id}) was revoked again"),
                            Err(r) => format!(
                                "the token (id {id}) could not be revoked ({r}); revoke it with `bulwark hub token revoke {id}`"
                            ),
                        };
                        return Err(crate::context::fail(
                            format!("{e:#}; {undo}"),
                            "fix the --output path and run the command again",
                        ));
                    }
                    eprintln!("created {what} (id {id}) in {}", file.display());
                }
                None => {
                    eprintln!("created {what} (id {id}); it is shown only now, store it safely:");
                    println!("{secret}");
                }
            }
            Ok(exit::OK)
        }
        TokenCmd::List => {
            let tokens = bulwark_hub::list_tokens(&dir)?;
            if g.json {
                crate::output::json(&tokens)?;
            } else if tokens.is_empty() {
                println!("no tokens (create one with `bulwark hub token create --admin`)");
            } else {
                println!("{:>4}  {:<20} {:<25} LAST USED", "ID", "KIND", "CREATED");
                for t in &tokens {
                    let kind = match &t.kind {
                        TokenKind::Admin => "admin".to_owned(),
                        TokenKind::Host(h) => format!("host {h}"),
                    };
                    let last = t
                        .last_used
                        .map_or_else(|| "never".to_owned(), |l| l.to_string());
                    println!(
                        "{:>4}  {:<20} {:<25} {last}",
                        t.id,
                        kind,
                        t.created.to_string()
                    );
                }
            }
            Ok(exit::OK)
        }
        TokenCmd::Revoke { id } => {
            if bulwark_hub::revoke_token(&dir, id)? {
                eprintln!("revoked token {id}");
                Ok(exit::OK)
            } else {
                bail!("there is no token {id} (see `bulwark hub token list`)")
            }
        }
    }
}

/// Writes `text` to `path` with mode 0600, atomically (temporary file,
/// fsync, rename, fsync of the directory).
fn write_secret_file(path: &Path, text: &str) -> Result<()> {
    bulwark_agent::write_atomic(path, text.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))
}

fn scrub(g: &Global, data: PathBuf) -> Result<u8> {
    let summary = runtime()?.block_on(bulwark_hub::scrub_dir(&data))?;
    if g.json {
        crate::output::json(&summary)?;
    } else {
        for r in &summary.repos {
            let bad = r.corrupt.len() + r.unreadable.len();
            println!(
                "{:<30} {:>8} files {:>12} bytes  {}",
                r.repo,
                r.checked,
                r.bytes,
                if bad == 0 && r.error.is_none() {
                    "ok"
                } else {
                    "DAMAGED"
                }
            );
            for f in &r.corrupt {
                println!("    corrupt: {} ({})", f.file, f.problem);
            }
            for f in &r.unreadable {
                println!("    unreadable: {} ({})", f.file, f.problem);
            }
            if let Some(e) = &r.error {
                println!("    error: {e}");
            }
        }
        println!(
            "checked {} files ({} bytes) in {} repositories: {} corrupt, {} unreadable",
            summary.checked,
            summary.bytes,
            summary.repos.len(),
            summary.corrupt,
            summary.unreadable
        );
    }
    Ok(if summary.is_clean() {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}
