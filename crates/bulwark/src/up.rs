//! `bulwark up`: hub and agent in one process on one machine, from an
//! embedded default — the quickest way from nothing to scheduled, reported,
//! restorable backups.
//!
//! Everything lives under one directory (`--home`, default
//! `$XDG_DATA_HOME/bulwark`):
//!
//! ```text
//! bulwark.toml          the configuration (written from the embedded default
//!                       on first start; edit it: changes apply while running)
//! repo/, repo.password  the default repository and its generated password
//! hub/state/            the control plane's SQLite database (run history)
//! hub/data/             the hub's REST repositories (for other machines)
//! agent/                the agent's state (report queue, last runs)
//! up/url, up/*.token    how `bulwark status` / `trigger` find this hub
//! ```

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use bulwark_agent::{Agent, AgentOptions, ConfigSource, HubClient, ProcessExecutor, SystemClock};
use bulwark_config::{Config, RepoUrl, SecretSource};
use bulwark_hub::{ControlConfig, ControlPlan, HubConfig, TokenKind};

use crate::{
    agent_cmd::{machine_host, up_home, UpArgs},
    cli::Global,
    context::fail,
    exit,
};

pub(crate) fn run(g: &Global, a: UpArgs) -> Result<u8> {
    let home = up_home(a.home)?;
    let listen: std::net::SocketAddr = a.listen.parse().map_err(|_| {
        fail(
            format!("`{}` is not an address", a.listen),
            "give it as 127.0.0.1:8130",
        )
    })?;
    let cfg_path = home.join("bulwark.toml");
    let first_start = !cfg_path.exists();
    if first_start {
        std::fs::create_dir_all(&home)
            .with_context(|| format!("cannot create {}", home.display()))?;
        let text = bulwark_config::DEFAULT_CONFIG.replace("@DATA@", &home.to_string_lossy());
        bulwark_agent::write_atomic(&cfg_path, text.as_bytes(), 0o644)?;
    }
    let text = std::fs::read_to_string(&cfg_path)
        .with_context(|| format!("cannot read {}", cfg_path.display()))?;
    let cfg = bulwark_config::parse(&text, &cfg_path).map_err(|e| {
        fail(
            format!("{} is not valid:\n{e}", cfg_path.display()),
            format!(
                "fix it, or move it away to start again from the embedded default ({})",
                cfg_path.display()
            ),
        )
    })?;
    ensure_local_repositories(&cfg)?;
    let host = cfg.settings.host.clone().unwrap_or_else(machine_host);
    let state = home.join("hub/state");
    let up = home.join("up");
    std::fs::create_dir_all(&up)?;
    std::fs::create_dir_all(home.join("hub/data"))?;
    // REST users for other machines' repositories: none yet (add them with
    // `bulwark hub passwd HOME/hub/data/.htpasswd USER`; reloaded on change)
    let htpasswd = home.join("hub/data/.htpasswd");
    if !htpasswd.exists() {
        bulwark_agent::write_atomic(&htpasswd, b"", 0o600)?;
    }
    let admin_file = up.join("admin.token");
    let agent_file = up.join("agent.token");
    let known = bulwark_hub::list_tokens(&state)
        .map_err(|e| fail(e.to_string(), "check the hub state directory"))?;
    if known.is_empty() || !admin_file.exists() || !agent_file.exists() {
        let (_, admin) = bulwark_hub::create_token(&state, TokenKind::Admin)
            .map_err(|e| fail(e.to_string(), "check the hub state directory"))?;
        let (_, agent) = bulwark_hub::create_token(&state, TokenKind::Host(host.clone()))
            .map_err(|e| fail(e.to_string(), "check the hub state directory"))?;
        crate::commands::write_secret(&admin_file, &admin)?;
        crate::commands::write_secret(&agent_file, &agent)?;
    }
    let url = format!("http://{listen}");
    bulwark_agent::write_atomic(&up.join("url"), format!("{url}\n").as_bytes(), 0o644)?;

    let plan = ControlPlan::from_config_with_default_host(&cfg, &text, Some(&host));
    let (mut control, plan_tx) = ControlConfig::new(&state, plan);
    control.replication = Some(bulwark_hub::ReplicationSettings::new(
        crate::replicate_cmd::opener(),
    ));
    control.monitoring = Some(bulwark_hub::MonitoringSettings::default());
    let mut hub_config = HubConfig::new(home.join("hub/data"));
    hub_config.listen = listen;
    hub_config.control = Some(control);
    let agent_token = bulwark_agent::read_token(&agent_file)
        .map_err(|e| fail(e.to_string(), "delete the up/ directory to start over"))?;
    let admin_token = bulwark_agent::read_token(&admin_file)
        .map_err(|e| fail(e.to_string(), "delete the up/ directory to start over"))?;
    let exe = std::env::current_exe().map_err(|e| {
        fail(
            format!("cannot find the bulwark binary: {e}"),
            "run it by its full path",
        )
    })?;
    let mut extra = Vec::new();
    if let Some(d) = &g.cache_dir {
        extra.push("--cache-dir".to_string());
        extra.push(d.display().to_string());
    }
    let never_ran = !home.join("agent/last_runs.json").exists();

    let rt = crate::hub_cmd::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            fail(
                format!("cannot listen on {listen}: {e}"),
                "is another `bulwark up` running? pick another --listen",
            )
        })?;
        // SIGTERM stops both; so does a failing hub
        let (stop_tx, stop) = crate::agent_cmd::stop_on_signal();
        let mut hub_stop = stop.clone();
        let hub_failed = stop_tx.clone();
        let hub = tokio::spawn(async move {
            let result = bulwark_hub::serve(listener, hub_config, async move {
                let _ = hub_stop.wait_for(|s| *s).await;
            })
            .await;
            if let Err(e) = &result {
                tracing::error!("the hub stopped: {e}");
                let _ = hub_failed.send(true);
            }
            result
        });
        // the hub's view of the file follows it, like the agent's
        let cfg_path2 = cfg_path.clone();
        let host2 = host.clone();
        tokio::spawn(async move {
            let stamp = |p: &Path| {
                std::fs::metadata(p)
                    .ok()
                    .map(|m| (m.modified().ok(), m.len()))
            };
            let mut last = stamp(&cfg_path2);
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let now = stamp(&cfg_path2);
                if now == last {
                    continue;
                }
                last = now;
                let Ok(text) = std::fs::read_to_string(&cfg_path2) else {
                    continue;
                };
                match bulwark_config::parse(&text, &cfg_path2) {
                    Ok(cfg) => {
                        let _ = plan_tx.send(Arc::new(ControlPlan::from_config_with_default_host(
                            &cfg,
                            &text,
                            Some(&host2),
                        )));
                    }
                    Err(e) => tracing::error!(
                        "{} changed but is not valid; keeping the previous version:\n{e}",
                        cfg_path2.display()
                    ),
                }
            }
        });
        // this process's own hub (plain http on the --listen address)
        let hub_client = HubClient::with_options(&url, agent_token, None, true)
            .map_err(|e| fail(e.to_string(), "this is a bug"))?;
        let opts = AgentOptions {
            host: Some(host.clone()),
            state_dir: home.join("agent"),
            config: ConfigSource::File(cfg_path.clone()),
            poll_wait: Duration::from_secs(30),
            reload_every: Duration::from_secs(2),
            config_key: None,
        };
        let exec = ProcessExecutor {
            program: exe,
            config: cfg_path.clone(),
            extra_args: extra,
            stop_grace: Duration::from_secs(120),
        };
        let agent = Agent::new(
            opts,
            Some(hub_client),
            Arc::new(exec),
            Arc::new(SystemClock),
            stop.clone(),
        )
        .map_err(|e| fail(e.to_string(), "check the agent state directory"))?;
        agent
            .load_config()
            .await
            .map_err(|e| fail(e.to_string(), format!("fix {}", cfg_path.display())))?;
        let agent = tokio::spawn(agent.run());
        eprintln!("Bulwark is up on {url} (host `{host}`).");
        eprintln!(
            "  configuration: {} (changes apply while running)",
            cfg_path.display()
        );
        eprintln!("  status:        bulwark status        run a job now: bulwark trigger JOB");
        eprintln!(
            "  jobs:          {}",
            cfg.jobs.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        if never_ran {
            // first start: run every job once now, so the status shows a real result
            let admin = HubClient::with_options(&url, admin_token, None, true)
                .map_err(|e| fail(e.to_string(), "this is a bug"))?;
            for job in cfg.jobs.keys() {
                match admin.trigger(job).await {
                    Ok(_) => eprintln!("  first start: running `{job}` now"),
                    Err(e) => tracing::warn!("could not trigger the first run of {job}: {e}"),
                }
            }
        }
        let agent_result = agent.await;
        if let Ok(Err(e)) = hub.await {
            return Err(fail(format!("the hub failed: {e}"), "see the log above"));
        }
        match agent_result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(fail(e.to_string(), "see the log above")),
            Err(e) => Err(fail(format!("the agent stopped: {e}"), "this is a bug")),
        }
    })?;
    Ok(exit::OK)
}

/// Local repositories whose password file is missing get a generated one,
/// and are created — what makes the embedded default work with no setup.
fn ensure_local_repositories(cfg: &Config) -> Result<()> {
    for repo in cfg.repositories.values() {
        let (RepoUrl::Local(dir), SecretSource::File(pw)) = (&repo.url, &repo.password) else {
            continue;
        };
        if dir.join("config").exists() {
            continue;
        }
        if let Some(parent) = pw.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if !pw.exists() {
            use rand::Rng;
            let p: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(40)
                .map(char::from)
                .collect();
            crate::commands::write_secret(pw, &p)?;
        }
        let password =
            std::fs::read_to_string(pw).with_context(|| format!("cannot read {}", pw.display()))?;
        bulwark_engine::RepoSpec::new(
            bulwark_engine::Location::Local(dir.clone()),
            password.trim_end_matches('\n'),
        )
        .init()?;
        eprintln!("************************************************************************");
        eprintln!(
            "Created the repository `{}` at {}",
            repo.name,
            dir.display()
        );
        eprintln!("Its password is in {} (mode 0600).", pw.display());
        eprintln!("COPY THAT FILE SOMEWHERE SAFE: without it nobody can restore anything.");
        eprintln!("************************************************************************");
    }
    Ok(())
}
