//! The control plan: what the hub's configuration says about hosts, jobs,
//! maintenance and ping checks, and each host's agent configuration text.
//! Built from the typed config by [`ControlPlan::from_config`]; the hub holds
//! it in a `tokio::sync::watch` channel so the binary can swap it when the
//! file changes.

use std::{collections::BTreeMap, time::Duration};

use bulwark_api::{AgentConfig, RunKind};
use bulwark_config::{
    Alerts, Config, JobSchedule, MonitorDecl, NotifierDecl, RepoUrl, Silence, Target,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A host the configuration declares.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanHost {
    /// Its name.
    pub name: String,
    /// Its agent configuration (None when the hub serves none for it).
    pub config: Option<AgentConfig>,
}

/// A job or maintenance the configuration declares.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanJob {
    /// Its name.
    pub name: String,
    /// The host that runs it.
    pub host: String,
    /// Backup or maintenance.
    pub kind: RunKind,
    /// The repository name.
    pub repository: Option<String>,
    /// When it runs (None: only when triggered).
    pub schedule: Option<JobSchedule>,
    /// Where its repository is (backups only).
    pub repo_url: Option<RepoUrl>,
    /// Its declared recovery point objective (backups only).
    pub rpo: Option<Duration>,
}

/// A ping check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPing {
    /// Its name.
    pub name: String,
    /// The secret part of its URL.
    pub uuid: String,
    /// Expected every this long ...
    pub period: Option<Duration>,
    /// ... or on this schedule.
    pub schedule: Option<JobSchedule>,
    /// Tolerance.
    pub grace: Duration,
}

/// Everything the control plane takes from the configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlPlan {
    /// Hosts by name.
    pub hosts: BTreeMap<String, PlanHost>,
    /// Jobs and maintenance by name.
    pub jobs: BTreeMap<String, PlanJob>,
    /// Ping checks by name.
    pub pings: BTreeMap<String, PlanPing>,
    /// Replication targets by name (`[targets.NAME]`).
    pub targets: BTreeMap<String, Target>,
    /// `[monitors.NAME]`, notifiers, routes, silences and `[alerts]`: what
    /// the hub's monitoring runs (see `crate::monitoring`).
    pub monitoring: Monitoring,
    /// The `[[hub.acl]]` entries when the file has a `[hub]` section: they
    /// replace [`crate::HubConfig::acl`] from the next request on, so a
    /// reloaded file changes access at once. `None`: the configured
    /// entries apply.
    pub hub_acl: Option<Vec<crate::AclEntry>>,
    /// Each host's lease keys: the repositories its own jobs and
    /// maintenance use (see [`bulwark_config::RepoUrl::lease_key`]).
    pub lease_keys: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// The hub's ACL entries of a `[hub]` section.
pub fn hub_acl(hub: &bulwark_config::Hub) -> Vec<crate::AclEntry> {
    hub.acl
        .iter()
        .map(|e| crate::AclEntry {
            user: e.user.clone(),
            repo: e.repo.clone(),
            access: match e.access {
                bulwark_config::HubAccess::Read => crate::Access::Read,
                bulwark_config::HubAccess::Append => crate::Access::Append,
                bulwark_config::HubAccess::Modify => crate::Access::Modify,
            },
        })
        .collect()
}

/// The monitoring part of the plan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Monitoring {
    /// Every declared monitor (disabled ones included; they don't run).
    pub monitors: BTreeMap<String, MonitorDecl>,
    /// `[notifiers.NAME]` (secrets only referenced; built by the hub).
    pub notifiers: BTreeMap<String, NotifierDecl>,
    /// The routes in effect.
    pub routes: Vec<bulwark_notify::Route>,
    /// `[[silences]]`.
    pub silences: Vec<Silence>,
    /// `[alerts]`.
    pub alerts: Alerts,
}

/// `version` of an agent configuration: the first 16 hex digits of the
/// SHA-256 of its text.
pub fn config_version(text: &str) -> String {
    let mut h = hex::encode(Sha256::digest(text.as_bytes()));
    h.truncate(16);
    h
}

/// This host's part of the file: `bulwark_config::extract_host` — or, in a
/// single-machine file without `[hosts]` (what `bulwark up` runs), the whole
/// file. Either way: paths to secret files, never secrets.
fn extract_host(cfg: &Config, text: &str, host: &str) -> Result<String, String> {
    if cfg.hosts.is_empty() {
        return Ok(text.to_owned());
    }
    bulwark_config::extract_host(text, &cfg.source, host).map_err(|e| e.to_string())
}

impl ControlPlan {
    /// An empty plan: no hosts, jobs or pings (agents' jobs are still learned
    /// from their reports).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The plan of a configuration whose text is `text`. Jobs without a host
    /// (a single-machine file without `[hosts]`) are left out; use
    /// [`ControlPlan::from_config_with_default_host`] to give them one.
    pub fn from_config(cfg: &Config, text: &str) -> Self {
        Self::from_config_with_default_host(cfg, text, None)
    }

    /// Like [`ControlPlan::from_config`], with jobs and maintenance that name
    /// no host assigned to `default_host` (`settings.host` is tried first),
    /// which also gets an agent configuration when no `[hosts]` is declared
    /// (what `bulwark up` runs on one machine).
    pub fn from_config_with_default_host(
        cfg: &Config,
        text: &str,
        default_host: Option<&str>,
    ) -> Self {
        let default_host = cfg.settings.host.as_deref().or(default_host);
        let mut plan = Self::default();
        let mut host_names: Vec<String> = cfg.hosts.keys().cloned().collect();
        if cfg.hosts.is_empty() {
            if let Some(h) = default_host {
                host_names.push(h.to_owned());
            }
        }
        for name in host_names {
            let config = match extract_host(cfg, text, &name) {
                Ok(toml) => Some(AgentConfig {
                    host: name.clone(),
                    version: config_version(&toml),
                    toml,
                    file: None,
                    signature: None,
                    source: None,
                }),
                Err(e) => {
                    tracing::warn!("no agent configuration for host {name}: {e}");
                    None
                }
            };
            plan.hosts.insert(name.clone(), PlanHost { name, config });
        }
        let host_of = |h: &Option<String>| h.as_deref().or(default_host).map(str::to_owned);
        for j in cfg.jobs.values() {
            let Some(host) = host_of(&j.host) else {
                tracing::debug!("job {} names no host; the control plane ignores it", j.name);
                continue;
            };
            plan.jobs.insert(
                j.name.clone(),
                PlanJob {
                    name: j.name.clone(),
                    host,
                    kind: RunKind::Backup,
                    repository: Some(j.repository.clone()),
                    schedule: j.schedule.clone(),
                    repo_url: cfg.repositories.get(&j.repository).map(|r| r.url.clone()),
                    rpo: j.rpo,
                },
            );
        }
        for m in cfg.maintenance.values() {
            let Some(host) = host_of(&m.host) else {
                continue;
            };
            plan.jobs.insert(
                m.name.clone(),
                PlanJob {
                    name: m.name.clone(),
                    host,
                    kind: RunKind::Maintenance,
                    repository: Some(m.repository.clone()),
                    schedule: m.schedule.clone(),
                    repo_url: None,
                    rpo: None,
                },
            );
        }
        for j in plan.jobs.values() {
            let url = j
                .repository
                .as_ref()
                .and_then(|r| cfg.repositories.get(r))
                .map(|r| &r.url);
            if let Some(url) = url {
                plan.lease_keys
                    .entry(j.host.clone())
                    .or_default()
                    .insert(url.lease_key(&j.host));
            }
        }
        plan.hub_acl = cfg.hub.as_ref().map(hub_acl);
        plan.targets = cfg.targets.clone();
        plan.monitoring = Monitoring {
            monitors: cfg.monitors.clone(),
            notifiers: cfg.notifiers.clone(),
            routes: cfg.routes.clone(),
            silences: cfg.silences.clone(),
            alerts: cfg.alerts.clone(),
        };
        for p in cfg.pings.values() {
            plan.pings.insert(
                p.name.clone(),
                PlanPing {
                    name: p.name.clone(),
                    uuid: p.uuid.clone(),
                    period: p.period,
                    schedule: p.schedule.clone(),
                    grace: p.grace,
                },
            );
        }
        plan
    }

    /// Relays the whole file (`text`, exactly as read) and its detached
    /// signature (`FILE.sig`, None when absent) to every agent, which
    /// verifies them itself: the hub holds no signing key and checks
    /// nothing. The version changes when the signature does, so agents
    /// fetch a file that was signed after it was edited.
    #[must_use]
    pub fn with_signed_file(
        mut self,
        text: &str,
        signature: Option<&str>,
        source: &std::path::Path,
    ) -> Self {
        for h in self.hosts.values_mut() {
            if let Some(c) = &mut h.config {
                c.file = Some(text.to_owned());
                c.signature = signature.map(str::to_owned);
                c.source = Some(source.to_string_lossy().into_owned());
                c.version = config_version(&format!("{}\n{}", c.toml, signature.unwrap_or("")));
            }
        }
        self
    }

    /// The jobs `host` runs according to the plan.
    pub fn jobs_of<'a>(&'a self, host: &'a str) -> impl Iterator<Item = &'a PlanJob> + 'a {
        self.jobs.values().filter(move |j| j.host == host)
    }

    /// The agent configuration served to `host`.
    pub fn agent_config(&self, host: &str) -> Option<&AgentConfig> {
        self.hosts.get(host).and_then(|h| h.config.as_ref())
    }

    /// The ping check whose uuid is `uuid` (compared in constant time).
    pub fn ping_by_uuid(&self, uuid: &str) -> Option<&PlanPing> {
        let mut found = None;
        for p in self.pings.values() {
            if bool::from(p.uuid.as_bytes().ct_eq(uuid.as_bytes())) {
                found = Some(p);
            }
        }
        found
    }
}
