//! Resolving which repository and password a command uses, the config file,
//! and what happens on Ctrl-C.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::Result;
use bulwark_config::{Config, RepoUrl, SecretSource};
use bulwark_engine::{Location, ProgressSink, RepoSpec};

use crate::{cli::Global, exit, hooks, Exit};

pub(crate) fn fail(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code: exit::FATAL,
        message: message.into(),
        hint: Some(hint.into()),
    })
}

/// Loads the config file named by -c / BULWARK_CONFIG, if any.
pub(crate) fn load_config(g: &Global) -> Result<Option<Config>> {
    match &g.config {
        Some(p) => Ok(Some(bulwark_config::load(p).map_err(|e| Exit {
            code: exit::FATAL,
            message: format!("the configuration is not valid:\n{e}"),
            hint: Some(format!(
                "fix it, then check it with `bulwark config check {}`",
                p.display()
            )),
        })?)),
        None => Ok(None),
    }
}

pub(crate) fn cache_dir(g: &Global) -> Option<PathBuf> {
    if g.no_cache {
        return None;
    }
    g.cache_dir.clone().or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .map(|d| d.join("bulwark"))
    })
}

fn load_secret(src: &SecretSource) -> Result<String> {
    src.load().map(|s| s.expose().to_string()).map_err(|e| {
        anyhow::Error::new(Exit {
            code: exit::FATAL,
            message: e.to_string(),
            hint: None,
        })
    })
}

fn read_password_file(p: &Path) -> Result<String> {
    load_secret(&SecretSource::File(p.to_path_buf()))
}

/// Turns a config repository into an engine location.
/// `ca_file`: the CA to trust for a REST repository (--ca-file, else
/// `[agent] ca_file`: one CA file for every connection to the hub).
pub(crate) fn location(
    repo: &bulwark_config::Repository,
    ca_file: Option<PathBuf>,
) -> Result<Location> {
    location_of(&repo.url, repo.rest.as_ref(), repo.s3.as_ref(), ca_file)
}

pub(crate) fn location_of(
    url: &RepoUrl,
    rest: Option<&bulwark_config::RestAuth>,
    s3: Option<&bulwark_config::S3Settings>,
    ca_file: Option<PathBuf>,
) -> Result<Location> {
    Ok(match url {
        RepoUrl::Local(p) => Location::Local(p.clone()),
        RepoUrl::Rest(u) => {
            let mut url = u.clone();
            if let Some(auth) = rest {
                let pw = load_secret(&auth.password)?;
                if let Some((scheme, rest)) = url.split_once("://") {
                    url = format!("{scheme}://{}:{}@{rest}", enc(&auth.username), enc(&pw));
                }
            }
            Location::Rest { url, ca_file }
        }
        RepoUrl::S3 {
            endpoint,
            bucket,
            prefix,
        } => {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let (mut key, mut secret, mut region) = (
                env("AWS_ACCESS_KEY_ID"),
                env("AWS_SECRET_ACCESS_KEY"),
                env("AWS_DEFAULT_REGION"),
            );
            if let Some(s) = s3 {
                region = Some(s.region.clone());
                if let Some(k) = &s.access_key_id {
                    key = Some(load_secret(k)?);
                }
                if let Some(k) = &s.secret_access_key {
                    secret = Some(load_secret(k)?);
                }
            }
            Location::S3 {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                region: region.unwrap_or_else(|| "us-east-1".into()),
                access_key_id: key,
                secret_access_key: secret,
            }
        }
    })
}

/// Percent-encodes userinfo characters that would break a URL.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Which repository and password this invocation uses.
pub(crate) fn repo_spec(
    g: &Global,
    cfg: Option<&Config>,
    progress: Arc<dyn ProgressSink>,
) -> Result<RepoSpec> {
    let cfg_repo = match (cfg, &g.job) {
        (Some(c), Some(job)) => {
            let j = c
                .job(job)
                .map_err(|e| fail(e.to_string(), "see the jobs with `bulwark config check`"))?;
            Some(c.repository_for(j))
        }
        (Some(c), None) if c.repositories.len() == 1 => c.repositories.values().next(),
        _ => None,
    };
    if g.job.is_some() && cfg.is_none() {
        return Err(fail(
            "--job needs a configuration file",
            "give it with -c FILE or BULWARK_CONFIG",
        ));
    }
    let location = match (&g.repo, cfg_repo) {
        (Some(r), _) => {
            let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            let url = RepoUrl::parse(r, &base).map_err(|m| {
                fail(
                    format!("bad repository `{r}`: {m}"),
                    "see `bulwark --help` for the accepted forms",
                )
            })?;
            location_of(&url, None, None, crate::agent_cmd::ca_file(g, cfg))?
        }
        (None, Some(repo)) => location(repo, crate::agent_cmd::ca_file(g, cfg))?,
        (None, None) => {
            return Err(fail(
                "no repository given",
                "use -r/--repo PATH, set BULWARK_REPO, or give -c FILE --job NAME",
            ))
        }
    };
    let password = if let Some(f) = &g.password_file {
        read_password_file(f)?
    } else if let Ok(p) = std::env::var("BULWARK_PASSWORD") {
        if p.is_empty() {
            return Err(fail(
                "BULWARK_PASSWORD is empty",
                "set it to the repository password, or use --password-file",
            ));
        }
        p
    } else if let (None, Some(repo)) = (&g.repo, cfg_repo) {
        load_secret(&repo.password)?
    } else {
        return Err(fail(
            "no repository password given",
            "use --password-file FILE, BULWARK_PASSWORD_FILE or BULWARK_PASSWORD",
        ));
    };
    Ok(RepoSpec {
        location,
        password,
        cache_dir: cache_dir(g),
        progress,
    })
}

/// Hooks to run if the process is interrupted in the middle of a job.
pub(crate) struct Pending {
    pub(crate) on_failure: Vec<String>,
    pub(crate) finally: Vec<String>,
    pub(crate) env: hooks::HookEnv,
    pub(crate) timeout: std::time::Duration,
}

/// Called by the main thread at each step of a job: once interrupted, the
/// handler owns the cleanup hooks and the exit; the main thread just waits.
pub(crate) fn park_if_interrupted() {
    while bulwark_engine::is_cancelled() {
        std::thread::park();
    }
}

pub(crate) static PENDING: Mutex<Option<Pending>> = Mutex::new(None);

/// Ctrl-C / SIGTERM: run the interrupted job's on_failure and finally hooks,
/// then exit 130. Repository writes are atomic, so stopping anywhere is safe.
pub(crate) fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        eprintln!("bulwark: interrupted");
        // no more repository writes (no snapshot lands), stop dumps; the
        // repository stays valid because every write is atomic
        bulwark_engine::cancel();
        bulwark_engine::stop_running_commands();
        if let Some(p) = PENDING.lock().ok().and_then(|mut g| g.take()) {
            let mut env = p.env;
            env.status = "failed".into();
            env.error = Some("interrupted".into());
            let _ = hooks::run("on_failure", &p.on_failure, &env, p.timeout);
            let _ = hooks::run("finally", &p.finally, &env, p.timeout);
        }
        // don't leave locks behind that would block restic until `unlock`
        bulwark_engine::release_all_locks();
        std::process::exit(i32::from(exit::INTERRUPTED));
    });
}
