//! `bulwark agent`, `up`, `status`, `trigger` and `maintenance`: wiring of the
//! agent and the hub's control plane.

use std::{path::PathBuf, sync::Arc};

use anyhow::Result;
use bulwark_engine::ProgressSink;
use clap::Args;

use crate::{cli::Global, context::fail};

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

pub(crate) fn agent(_g: &Global, _a: AgentArgs) -> Result<u8> {
    Err(fail("not yet", "wait"))
}

pub(crate) fn up(_g: &Global, _a: UpArgs) -> Result<u8> {
    Err(fail("not yet", "wait"))
}

pub(crate) fn status(_g: &Global, _a: StatusArgs) -> Result<u8> {
    Err(fail("not yet", "wait"))
}

pub(crate) fn trigger(_g: &Global, _a: TriggerArgs) -> Result<u8> {
    Err(fail("not yet", "wait"))
}

pub(crate) fn maintenance(_g: &Global, _name: &str, _progress: Arc<dyn ProgressSink>) -> Result<u8> {
    Err(fail("not yet", "wait"))
}
