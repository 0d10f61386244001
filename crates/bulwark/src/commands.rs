//! One function per subcommand: resolve inputs, call the engine, print.

use std::{io::Write, path::PathBuf, sync::Arc};

use anyhow::{Context, Result};
use bulwark_config::{CommandLine, Config, Job};
use bulwark_engine::{
    BackupRequest, BackupSummary, CheckData, CommandSource, KeepPolicy, ProgressSink, Repo,
    RepoSpec, RestoreRequest, SnapshotFilter,
};
use serde::Serialize;

use crate::{
    cli::{self, Cmd, ConfigCmd, FilterArgs, Global},
    context::{self, fail, load_config, repo_spec, Pending, PENDING},
    exit, hooks, output, Exit,
};

pub(crate) fn dispatch(cli: cli::Cli) -> Result<u8> {
    let g = &cli.global;
    let progress = output::progress(g.quiet, g.json);
    match cli.command {
        Cmd::Config(ConfigCmd::Check { file }) => config_check(g, file),
        Cmd::Config(ConfigCmd::Keygen { output }) => config_keygen(&output),
        Cmd::Config(ConfigCmd::Sign { file, key }) => config_sign(g, &file, &key),
        Cmd::Run(args) => run(g, &args, progress),
        Cmd::Hub(args) => crate::hub_cmd::run(g, args),
        Cmd::Agent(args) => crate::agent_cmd::agent(g, args),
        Cmd::Up(args) => crate::agent_cmd::up(g, args),
        Cmd::Status(args) => crate::agent_cmd::status(g, args),
        Cmd::Trigger(args) => crate::agent_cmd::trigger(g, args),
        Cmd::Alerts(args) => crate::agent_cmd::alerts(g, args),
        Cmd::Monitors(args) => crate::monitor_cmd::monitors(g, args),
        Cmd::Notify(cmd) => crate::monitor_cmd::notify(g, cmd),
        Cmd::Replicate(args) => crate::replicate_cmd::replicate(g, args),
        Cmd::Report(args) => crate::replicate_cmd::report(g, args),
        Cmd::SqliteBackup { path } => crate::dbsource::sqlite_backup(&path),
        Cmd::Maintenance { name } => crate::agent_cmd::maintenance(g, &name, progress),
        cmd => {
            let cfg = load_config(g)?;
            let spec = repo_spec(g, cfg.as_ref(), progress)?;
            match cmd {
                Cmd::Init => init(g, &spec),
                Cmd::Backup(a) => {
                    let repo = spec.open()?;
                    backup(g, cfg.as_ref(), &repo, &a)
                }
                Cmd::Snapshots(f) => snapshots(g, &spec.open()?, &f),
                Cmd::Ls {
                    snapshot,
                    path,
                    filter,
                } => ls(g, &spec.open()?, &snapshot, path, &filter),
                Cmd::Diff {
                    snapshot1,
                    snapshot2,
                } => diff(g, &spec.open()?, &snapshot1, &snapshot2),
                Cmd::Restore(a) => restore(g, &spec.open()?, &a),
                Cmd::Dump {
                    snapshot,
                    path,
                    filter,
                } => {
                    let repo = spec.open()?;
                    let mut out = std::io::stdout().lock();
                    repo.dump(&snapshot, &filter_of(&filter), &path, &mut out)?;
                    Ok(exit::OK)
                }
                Cmd::Forget(a) => forget(g, cfg.as_ref(), &spec.open()?, &a),
                Cmd::Prune { dry_run } => prune(g, &spec.open()?, dry_run),
                Cmd::Check(a) => check(g, &spec.open()?, &a),
                Cmd::Copy(a) => copy(g, &spec, &a),
                Cmd::Unlock { all } => {
                    let n = spec.open()?.unlock(all)?;
                    if g.json {
                        output::json(&serde_json::json!({ "removed": n }))?;
                    } else {
                        println!("removed {n} lock(s)");
                    }
                    Ok(exit::OK)
                }
                Cmd::Config(_)
                | Cmd::Maintenance { .. }
                | Cmd::Run(_)
                | Cmd::Hub(_)
                | Cmd::Agent(_)
                | Cmd::Up(_)
                | Cmd::Status(_)
                | Cmd::Trigger(_)
                | Cmd::Alerts(_)
                | Cmd::Monitors(_)
                | Cmd::Notify(_)
                | Cmd::Replicate(_)
                | Cmd::Report(_)
                | Cmd::SqliteBackup { .. } => unreachable!("handled above"),
            }
        }
    }
}

fn filter_of(f: &FilterArgs) -> SnapshotFilter {
    SnapshotFilter {
        hosts: f.hosts.clone(),
        tags: f.tags.clone(),
        paths: f.paths.clone(),
    }
}

/// `bulwark config keygen --output FILE`.
fn config_keygen(output: &std::path::Path) -> Result<u8> {
    if output.exists() {
        return Err(fail(
            format!("{} already exists; it is not overwritten", output.display()),
            "choose another --output (a lost private key means re-signing with a new one and giving agents the new public key)",
        ));
    }
    let secret = bulwark_agent::SigningSecret::generate();
    let public = secret.public();
    bulwark_agent::write_atomic(output, secret.to_file_text().as_bytes(), 0o600)
        .map_err(|e| fail(e.to_string(), "choose a writable --output path"))?;
    let pub_path = crate::hub_cmd::with_suffix(output, ".pub");
    bulwark_agent::write_atomic(&pub_path, format!("{public}\n").as_bytes(), 0o644)
        .map_err(|e| fail(e.to_string(), "choose a writable --output path"))?;
    eprintln!(
        "private key (key id {}) written to {} (mode 0600: keep it on the admin machine, not on the hub)",
        public.id(),
        output.display()
    );
    eprintln!(
        "public key written to {}; give it to every agent as `config_key` (or --config-key):",
        pub_path.display()
    );
    println!("{public}");
    Ok(exit::OK)
}

/// `bulwark config sign FILE --key KEY`.
fn config_sign(g: &Global, file: &std::path::Path, key: &std::path::Path) -> Result<u8> {
    let secret = bulwark_agent::SigningSecret::read(key).map_err(|e| {
        fail(
            e.to_string(),
            e.hint().unwrap_or("give the private key file").to_string(),
        )
    })?;
    let bytes = std::fs::read(file).map_err(|e| {
        fail(
            format!("cannot read {}: {e}", file.display()),
            "check the path",
        )
    })?;
    // never sign a file the agents would refuse to parse
    let text = String::from_utf8(bytes.clone()).map_err(|_| {
        fail(
            format!("{} is not UTF-8 text", file.display()),
            "give the bulwark.toml file",
        )
    })?;
    if let Err(e) = bulwark_config::parse(&text, file) {
        return Err(fail(
            format!("{} is not valid; it was not signed:\n{e}", file.display()),
            format!(
                "fix it (`bulwark config check {}`), then sign it",
                file.display()
            ),
        ));
    }
    let sig_path = crate::hub_cmd::signature_path(file);
    bulwark_agent::write_atomic(&sig_path, secret.sign(&bytes).as_bytes(), 0o644).map_err(|e| {
        fail(
            e.to_string(),
            "the signature is written next to the file: make that directory writable",
        )
    })?;
    if g.json {
        output::json(&serde_json::json!({
            "file": file, "signature": sig_path, "key": secret.public().id(),
        }))?;
    } else {
        eprintln!(
            "signed {} with key {}: {}",
            file.display(),
            secret.public().id(),
            sig_path.display()
        );
    }
    Ok(exit::OK)
}

fn config_check(g: &Global, file: Option<PathBuf>) -> Result<u8> {
    let path = file
        .or_else(|| g.config.clone())
        .unwrap_or_else(|| PathBuf::from("bulwark.toml"));
    match bulwark_config::load(&path) {
        Ok(cfg) => {
            if g.json {
                output::json(&serde_json::json!({
                    "file": path, "valid": true,
                    "repositories": cfg.repositories.keys().collect::<Vec<_>>(),
                    "jobs": cfg.jobs.keys().collect::<Vec<_>>(),
                }))?;
            } else {
                println!(
                    "{}: valid ({} repositories, {} jobs)",
                    path.display(),
                    cfg.repositories.len(),
                    cfg.jobs.len()
                );
            }
            Ok(exit::OK)
        }
        Err(e) => {
            if g.json {
                output::json(
                    &serde_json::json!({ "file": path, "valid": false, "errors": e.to_string().lines().collect::<Vec<_>>() }),
                )?;
            } else {
                eprintln!("{e}");
            }
            Ok(exit::FATAL)
        }
    }
}

fn init(g: &Global, spec: &RepoSpec) -> Result<u8> {
    let repo = spec.init()?;
    if g.json {
        output::json(
            &serde_json::json!({ "id": repo.id(), "location": repo.location().to_string() }),
        )?;
    } else {
        println!(
            "created repository {} at {}",
            &repo.id()[..10.min(repo.id().len())],
            repo.location()
        );
        println!("Keep the password safe: without it the backups cannot be read, by anyone.");
    }
    Ok(exit::OK)
}

fn shell(cmd: &str) -> CommandSource {
    CommandSource {
        program: "sh".into(),
        args: vec!["-c".into(), cmd.into()],
        display: cmd.into(),
        ..CommandSource::default()
    }
}

fn command_source(c: &bulwark_config::CommandSource) -> CommandSource {
    let mut src = match &c.command {
        CommandLine::Shell(s) => shell(s),
        CommandLine::Argv(v) => match v.split_first() {
            Some((program, args)) => CommandSource {
                program: program.clone(),
                args: args.to_vec(),
                display: c.command.display(),
                ..CommandSource::default()
            },
            // the parser never produces an empty argv; fail the source, not the process
            None => CommandSource {
                unavailable: Some("the command is empty".into()),
                ..CommandSource::default()
            },
        },
    };
    src.filename = c.filename.clone();
    src.fail_on_stderr = c.fail_on_stderr.clone();
    src
}

fn backup_request(cfg_host: Option<&str>, job: Option<&Job>, a: &cli::BackupArgs) -> BackupRequest {
    let mut req = BackupRequest::default();
    if let Some(j) = job {
        req.paths = j.paths.clone();
        req.commands = j.commands.iter().map(command_source).collect();
        // database dumps after the job's own commands
        req.commands
            .extend(j.databases.iter().map(crate::dbsource::command_source));
        req.excludes = j.exclude.clone();
        req.exclude_if_present = j.exclude_if_present.clone();
        req.one_file_system = j.one_file_system;
        req.tags = j.tags.clone();
        req.host = j.host.clone();
    }
    if req.host.is_none() {
        req.host = cfg_host.map(str::to_string);
    }
    req.paths.extend(a.paths.iter().cloned());
    req.excludes.extend(a.excludes.iter().cloned());
    req.exclude_if_present
        .extend(a.exclude_if_present.iter().cloned());
    req.one_file_system |= a.one_file_system;
    req.tags.extend(a.tags.iter().cloned());
    if a.host.is_some() {
        req.host = a.host.clone();
    }
    if let Some(cmd) = &a.stdin_from_command {
        let mut src = shell(cmd);
        src.filename = a.stdin_filename.clone();
        req.commands.push(src);
    }
    req
}

/// The outcome of one job (JSON for `run` and `backup --job`).
#[derive(Debug, Serialize)]
struct JobReport {
    job: String,
    status: &'static str,
    backup: Option<BackupSummary>,
    forget: Option<bulwark_engine::ForgetSummary>,
    prune: Option<bulwark_engine::PruneSummary>,
    /// All errors, joined with "; " (for people).
    error: Option<String>,
    /// The same, one per entry (for programs: the agent reads these).
    errors: Vec<String>,
}

/// Runs a job's backup with its hooks; `retention` also applies forget/prune.
fn run_job(
    cfg: &Config,
    job: &Job,
    repo: &Repo,
    a: &cli::BackupArgs,
    retention: bool,
) -> JobReport {
    let mut env = hooks::HookEnv {
        job: job.name.clone(),
        repo: job.repository.clone(),
        repo_url: repo.location().to_string(),
        status: "running".into(),
        ..Default::default()
    };
    let timeout = job.hooks.timeout;
    if let Ok(mut p) = PENDING.lock() {
        *p = Some(Pending {
            on_failure: job.hooks.on_failure.clone(),
            finally: job.hooks.finally.clone(),
            env: env.clone(),
            timeout,
        });
    }
    let mut report = JobReport {
        job: job.name.clone(),
        status: "failed",
        backup: None,
        forget: None,
        prune: None,
        error: None,
        errors: Vec::new(),
    };
    let mut errors: Vec<String> = Vec::new();
    match hooks::run("before", &job.hooks.before, &env, timeout) {
        Err(e) => errors.push(e),
        Ok(()) => {
            let req = backup_request(cfg.settings.host.as_deref(), Some(job), a);
            let result = repo.backup(&req);
            context::park_if_interrupted();
            match result {
                Ok(s) => {
                    env.snapshot_id = Some(s.snapshot.id.clone());
                    // A command or database source that failed fails the job:
                    // its dump is not in the snapshot (a truncated dump is
                    // never stored), and that is not a "partial" success.
                    // Files unreadable on disk only make it partial.
                    let mut sources: Vec<(PathBuf, String)> = job
                        .commands
                        .iter()
                        .map(|c| {
                            (
                                c.filename.clone(),
                                format!("command source `{}`", c.command.display()),
                            )
                        })
                        .chain(
                            job.databases
                                .iter()
                                .map(|d| (d.filename.clone(), crate::dbsource::describe(d))),
                        )
                        .map(|(f, label)| (std::path::Path::new("/").join(f), label))
                        .collect();
                    if let Some(cmd) = &a.stdin_from_command {
                        sources.push((
                            std::path::Path::new("/").join(&a.stdin_filename),
                            format!("command source `{cmd}`"),
                        ));
                    }
                    let mut failed_sources = 0;
                    for f in &s.skipped {
                        let path = std::path::Path::new(&f.path);
                        if let Some((_, label)) = sources
                            .iter()
                            .find(|(p, _)| !f.path.is_empty() && p == path)
                        {
                            failed_sources += 1;
                            errors.push(format!("{label} failed: {}", f.error));
                        }
                    }
                    let unreadable = s.skipped.len() - failed_sources;
                    report.status = if failed_sources > 0 {
                        "failed"
                    } else if s.incomplete {
                        "partial"
                    } else {
                        "success"
                    };
                    if unreadable > 0 {
                        errors.push(format!("{unreadable} file(s) could not be backed up"));
                    }
                    report.backup = Some(s);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    context::park_if_interrupted();
    env.status = report.status.to_string();
    env.error = (!errors.is_empty()).then(|| errors.join("; "));
    if report.backup.is_some() {
        if let Err(e) = hooks::run("after", &job.hooks.after, &env, timeout) {
            errors.push(e);
            report.status = "failed";
        }
    }
    if retention && report.status != "failed" {
        if let Some(r) = &job.retention {
            let filter = SnapshotFilter {
                hosts: Vec::new(),
                tags: job.tags.clone(),
                paths: Vec::new(),
            };
            match policy_of(r) {
                Ok(policy) => match repo.forget(&policy, &filter, false) {
                    Ok(f) => {
                        report.forget = Some(f);
                        if r.prune {
                            match repo.prune(false) {
                                Ok(p) => report.prune = Some(p),
                                Err(e) => errors.push(format!("prune: {e}")),
                            }
                        }
                    }
                    Err(e) => errors.push(format!("forget: {e}")),
                },
                Err(e) => errors.push(e),
            }
        }
    }
    env.status = report.status.to_string();
    env.error = (!errors.is_empty()).then(|| errors.join("; "));
    context::park_if_interrupted();
    if report.status != "success" {
        if let Err(e) = hooks::run("on_failure", &job.hooks.on_failure, &env, timeout) {
            errors.push(e);
        }
    }
    context::park_if_interrupted();
    if let Ok(mut p) = PENDING.lock() {
        *p = None;
    }
    if let Err(e) = hooks::run("finally", &job.hooks.finally, &env, timeout) {
        errors.push(e);
    }
    report.error = (!errors.is_empty()).then(|| errors.join("; "));
    report.errors = errors;
    report
}

fn print_backup(s: &BackupSummary) {
    let snap = &s.snapshot;
    if let Some(m) = &snap.summary {
        println!(
            "Files: {} new, {} changed, {} unmodified",
            m.files_new, m.files_changed, m.files_unmodified
        );
        println!(
            "Dirs:  {} new, {} changed, {} unmodified",
            m.dirs_new, m.dirs_changed, m.dirs_unmodified
        );
        println!(
            "Added to the repository: {} ({} stored)",
            output::size(m.data_added),
            output::size(m.data_added_packed)
        );
        println!(
            "processed {} files, {} in {:.1}s",
            m.total_files_processed,
            output::size(m.total_bytes_processed),
            m.backup_duration
        );
    }
    println!("snapshot {} saved", snap.short_id);
    if !s.skipped.is_empty() {
        eprintln!(
            "WARNING: {} file(s) could not be backed up and are missing from the snapshot:",
            s.skipped.len()
        );
        for f in &s.skipped {
            eprintln!(
                "  {}: {}",
                if f.path.is_empty() {
                    "(unknown path)"
                } else {
                    &f.path
                },
                f.error
            );
        }
    }
}

fn job_exit(reports: &[JobReport]) -> u8 {
    if reports.iter().any(|r| r.status == "failed") {
        exit::FATAL
    } else if reports
        .iter()
        .any(|r| r.status == "partial" || r.error.is_some())
    {
        exit::INCOMPLETE
    } else {
        exit::OK
    }
}

fn print_job(r: &JobReport) {
    if let Some(b) = &r.backup {
        print_backup(b);
    }
    if let Some(f) = &r.forget {
        println!("retention: removed {} snapshot(s)", f.removed.len());
    }
    if let Some(p) = &r.prune {
        println!(
            "prune: {} packs removed, {} freed",
            p.packs_removed,
            output::size(p.bytes_freed)
        );
    }
    if let Some(e) = &r.error {
        eprintln!("job {} {}: {e}", r.job, r.status);
    }
}

fn backup(g: &Global, cfg: Option<&Config>, repo: &Repo, a: &cli::BackupArgs) -> Result<u8> {
    if let (Some(cfg), Some(name)) = (cfg, &g.job) {
        let job = cfg
            .job(name)
            .map_err(|e| fail(e.to_string(), "list the jobs with `bulwark config check`"))?;
        let report = run_job(cfg, job, repo, a, false);
        if g.json {
            output::json(&report)?;
        } else {
            print_job(&report);
        }
        return Ok(job_exit(std::slice::from_ref(&report)));
    }
    let req = backup_request(cfg.and_then(|c| c.settings.host.as_deref()), None, a);
    let s = repo.backup(&req)?;
    if g.json {
        output::json(&s)?;
    } else {
        print_backup(&s);
    }
    Ok(if s.incomplete {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

fn run(g: &Global, a: &cli::RunArgs, progress: Arc<dyn ProgressSink>) -> Result<u8> {
    if a.print_default_config {
        print!("{}", bulwark_config::DEFAULT_CONFIG);
        return Ok(exit::OK);
    }
    let cfg = match load_config(g)? {
        Some(c) => c,
        None if std::path::Path::new("bulwark.toml").is_file() => {
            bulwark_config::load(std::path::Path::new("bulwark.toml")).map_err(|e| {
                fail(
                    format!("./bulwark.toml is not valid:\n{e}"),
                    "fix it, or run elsewhere to use the embedded default",
                )
            })?
        }
        None => default_setup(a)?,
    };
    let jobs: Vec<&Job> = match &g.job {
        Some(name) => vec![cfg
            .job(name)
            .map_err(|e| fail(e.to_string(), "list the jobs with `bulwark config check`"))?],
        None => cfg.jobs.values().collect(),
    };
    if jobs.is_empty() {
        return Err(fail(
            "the configuration has no jobs",
            "add a [jobs.NAME] table",
        ));
    }
    let empty = cli::BackupArgs {
        paths: vec![],
        tags: vec![],
        host: None,
        excludes: vec![],
        exclude_if_present: vec![],
        one_file_system: false,
        stdin_from_command: None,
        stdin_filename: "stdin".into(),
    };
    let mut reports = Vec::new();
    // exit codes of repositories that could not be opened (no repository,
    // wrong password, refused credentials, ...)
    let mut open_codes = Vec::new();
    let ca = crate::agent_cmd::ca_file(g, Some(&cfg));
    for job in jobs {
        let repo_cfg = cfg.repository_for(job);
        let password = repo_cfg.password.load().map_err(|e| {
            fail(
                e.to_string(),
                "create the password file, or fix password_file in the config",
            )
        })?;
        let spec = RepoSpec {
            location: context::location(repo_cfg, ca.clone())?,
            password: password.expose().to_string(),
            cache_dir: context::cache_dir(g),
            progress: progress.clone(),
        };
        let repo = match spec.open() {
            Ok(r) => r,
            Err(e) => {
                if !g.json {
                    // never silent: the reason and the fix, as for one command
                    eprintln!("job {} failed: {}", job.name, e.message);
                    if let Some(h) = &e.hint {
                        eprintln!("  hint: {h}");
                    }
                }
                open_codes.push(Exit::from(e.clone()).code);
                reports.push(JobReport {
                    job: job.name.clone(),
                    status: "failed",
                    backup: None,
                    forget: None,
                    prune: None,
                    error: Some(e.to_string()),
                    errors: vec![e.to_string()],
                });
                continue;
            }
        };
        if !g.json {
            println!("== job {} -> {}", job.name, repo.location());
        }
        let r = run_job(&cfg, job, &repo, &empty, true);
        if !g.json {
            print_job(&r);
        }
        reports.push(r);
    }
    if g.json {
        output::json(&reports)?;
    }
    let code = job_exit(&reports);
    // when every failure is a repository that could not be opened for the
    // same reason, exit with that reason's code (10, 11, 13, 14, ...)
    let failed = reports.iter().filter(|r| r.status == "failed").count();
    if code == exit::FATAL
        && failed == open_codes.len()
        && open_codes.windows(2).all(|w| w[0] == w[1])
    {
        if let Some(c) = open_codes.first() {
            return Ok(*c);
        }
    }
    Ok(code)
}

/// The embedded default: repository and generated password under the data dir.
fn default_setup(a: &cli::RunArgs) -> Result<Config> {
    let home = a.home.clone().or_else(|| {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .map(|d| d.join("bulwark"))
    });
    let home = home.ok_or_else(|| {
        fail(
            "cannot find a home for the default repository",
            "set BULWARK_HOME or HOME",
        )
    })?;
    let cfg =
        bulwark_config::default_config(&home).map_err(|e| fail(e.to_string(), "this is a bug"))?;
    let repo_cfg = cfg
        .repositories
        .get("default")
        .ok_or_else(|| fail("embedded default has no repository", "this is a bug"))?;
    let bulwark_config::SecretSource::File(pw_file) = &repo_cfg.password else {
        return Err(fail(
            "embedded default has no password file",
            "this is a bug",
        ));
    };
    let bulwark_config::RepoUrl::Local(repo_dir) = &repo_cfg.url else {
        return Err(fail("embedded default is not local", "this is a bug"));
    };
    if !repo_dir.join("config").exists() {
        std::fs::create_dir_all(&home)
            .with_context(|| format!("cannot create {}", home.display()))?;
        if !pw_file.exists() {
            use rand::Rng;
            let pw: String = rand::rng()
                .sample_iter(rand::distr::Alphanumeric)
                .take(40)
                .map(char::from)
                .collect();
            write_secret(pw_file, &pw)?;
        }
        let password = std::fs::read_to_string(pw_file)
            .with_context(|| format!("cannot read {}", pw_file.display()))?;
        RepoSpec::new(
            bulwark_engine::Location::Local(repo_dir.clone()),
            password.trim_end_matches('\n'),
        )
        .init()?;
        eprintln!("************************************************************************");
        eprintln!("Created the default repository at {}", repo_dir.display());
        eprintln!(
            "Its password was generated into {} (mode 0600).",
            pw_file.display()
        );
        eprintln!("COPY THAT FILE SOMEWHERE SAFE: without it nobody can restore anything.");
        eprintln!("************************************************************************");
    }
    Ok(cfg)
}

pub(crate) fn write_secret(path: &std::path::Path, secret: &str) -> Result<()> {
    bulwark_agent::write_atomic(path, format!("{secret}\n").as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// RFC 3339 → "2024-05-01 02:00:13" in local time, for tables.
fn human_time(t: &str) -> String {
    t.parse::<jiff::Timestamp>()
        .map(|ts| {
            ts.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_string())
}

fn snapshots(g: &Global, repo: &Repo, f: &FilterArgs) -> Result<u8> {
    let snaps = repo.snapshots(&filter_of(f))?;
    if g.json {
        output::json(&snaps)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = snaps
        .iter()
        .map(|s| {
            vec![
                s.short_id.clone(),
                human_time(&s.time),
                s.hostname.clone(),
                s.tags.join(","),
                s.summary
                    .as_ref()
                    .map(|m| output::size(m.total_bytes_processed))
                    .unwrap_or_default(),
                s.paths.join(", "),
            ]
        })
        .collect();
    print!(
        "{}",
        output::table(&["ID", "Time", "Host", "Tags", "Size", "Paths"], &rows)
    );
    println!("{} snapshot(s)", snaps.len());
    Ok(exit::OK)
}

fn ls(
    g: &Global,
    repo: &Repo,
    snapshot: &str,
    path: Option<PathBuf>,
    f: &FilterArgs,
) -> Result<u8> {
    let (snap, entries, failures) = repo.ls(snapshot, &filter_of(f), path.as_deref())?;
    if g.json {
        output::json(
            &serde_json::json!({ "snapshot": snap, "entries": entries, "errors": failures }),
        )?;
    } else {
        let mut out = std::io::stdout().lock();
        for e in &entries {
            writeln!(out, "{}", e.path)?;
        }
        for f in &failures {
            eprintln!("error: {} {}", f.path, f.error);
        }
    }
    Ok(if failures.is_empty() {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}

fn diff(g: &Global, repo: &Repo, a: &str, b: &str) -> Result<u8> {
    let d = repo.diff(a, b, &SnapshotFilter::default())?;
    if g.json {
        output::json(&d)?;
    } else {
        let mut out = std::io::stdout().lock();
        for c in &d.changes {
            writeln!(out, "{}    {}", c.change, c.path)?;
        }
        writeln!(
            out,
            "\n{} added, {} removed, {} modified, {} metadata only, {} type changed",
            d.added, d.removed, d.modified, d.metadata, d.type_changed
        )?;
    }
    Ok(exit::OK)
}

fn restore(g: &Global, repo: &Repo, a: &cli::RestoreArgs) -> Result<u8> {
    let req = RestoreRequest {
        snapshot: a.snapshot.clone(),
        filter: filter_of(&a.filter),
        target: a.target.clone(),
        includes: a.includes.clone(),
        verify: a.verify,
        workers: a.workers,
    };
    let s = repo.restore(&req)?;
    if g.json {
        output::json(&s)?;
    } else {
        println!(
            "restored snapshot {} to {}: {} files, {} dirs, {} other, {}",
            s.snapshot.short_id,
            s.target,
            s.files_restored,
            s.dirs_restored,
            s.special_restored,
            output::size(s.bytes_restored)
        );
        if let Some(n) = s.files_verified {
            println!("verified {n} files against the snapshot");
        }
        for w in &s.metadata_warnings {
            eprintln!("warning: {}: {}", w.path, w.error);
        }
        if !s.failed.is_empty() {
            eprintln!(
                "ERROR: {} path(s) could not be restored or verified:",
                s.failed.len()
            );
            for f in &s.failed {
                eprintln!("  {}: {}", f.path, f.error);
            }
        }
    }
    Ok(if s.incomplete {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

pub(crate) fn policy_of(r: &bulwark_config::Retention) -> Result<KeepPolicy, String> {
    Ok(KeepPolicy {
        last: r.keep_last,
        hourly: r.keep_hourly,
        daily: r.keep_daily,
        weekly: r.keep_weekly,
        monthly: r.keep_monthly,
        yearly: r.keep_yearly,
        within: r.keep_within.as_ref().map(span_of).transpose()?,
    })
}

fn span_of(k: &bulwark_config::KeepWithin) -> Result<jiff::Span, String> {
    jiff::Span::new()
        .try_years(i64::from(k.years))
        .and_then(|s| s.try_months(i64::from(k.months)))
        .and_then(|s| s.try_days(i64::from(k.days)))
        .and_then(|s| s.try_hours(i64::from(k.hours)))
        .map_err(|e| format!("keep_within {k} is out of range: {e}"))
}

fn forget(g: &Global, cfg: Option<&Config>, repo: &Repo, a: &cli::ForgetArgs) -> Result<u8> {
    let within = match &a.keep_within {
        Some(s) => {
            let k: bulwark_config::KeepWithin = s.parse().map_err(|m: String| {
                fail(
                    format!("bad --keep-within `{s}`: {m}"),
                    "e.g. --keep-within 30d",
                )
            })?;
            Some(span_of(&k).map_err(|m| fail(m, "use a smaller duration"))?)
        }
        None => None,
    };
    let mut policy = KeepPolicy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within,
    };
    let mut filter = filter_of(&a.filter);
    let mut prune_after = a.prune;
    if policy.is_empty() {
        if let (Some(cfg), Some(name)) = (cfg, &g.job) {
            let job = cfg
                .job(name)
                .map_err(|e| fail(e.to_string(), "list the jobs with `bulwark config check`"))?;
            let r = job.retention.as_ref().ok_or_else(|| {
                fail(
                    format!("job `{name}` has no [retention] table"),
                    "add one, or give --keep-* flags",
                )
            })?;
            policy = policy_of(r).map_err(|m| fail(m, "fix keep_within"))?;
            prune_after |= r.prune;
            if filter.tags.is_empty() {
                filter.tags = job.tags.clone();
            }
        }
    }
    let f = repo.forget(&policy, &filter, a.dry_run)?;
    let p = if prune_after && !a.dry_run {
        Some(repo.prune(false)?)
    } else {
        None
    };
    if g.json {
        output::json(&serde_json::json!({ "forget": f, "prune": p }))?;
    } else {
        for grp in &f.groups {
            println!("host {} paths [{}]:", grp.host, grp.paths.join(", "));
            let rows: Vec<Vec<String>> = grp
                .snapshots
                .iter()
                .map(|d| {
                    vec![
                        d.snapshot.short_id.clone(),
                        human_time(&d.snapshot.time),
                        if d.keep {
                            "keep".into()
                        } else {
                            "remove".into()
                        },
                        d.reasons.join(", "),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["ID", "Time", "Decision", "Reasons"], &rows)
            );
        }
        let verb = if a.dry_run { "would remove" } else { "removed" };
        println!("{verb} {} snapshot(s)", f.removed.len());
        if let Some(p) = &p {
            println!(
                "prune: {} packs removed, {} repacked, {} freed",
                p.packs_removed,
                p.packs_repacked,
                output::size(p.bytes_freed)
            );
        }
    }
    Ok(exit::OK)
}

fn prune(g: &Global, repo: &Repo, dry_run: bool) -> Result<u8> {
    let p = repo.prune(dry_run)?;
    if g.json {
        output::json(&p)?;
    } else {
        let verb = if dry_run { "would free" } else { "freed" };
        println!(
            "{} packs removed, {} repacked, {} kept; {verb} {}, {} in use",
            p.packs_removed,
            p.packs_repacked,
            p.packs_kept,
            output::size(p.bytes_freed),
            output::size(p.bytes_used)
        );
    }
    Ok(exit::OK)
}

fn check(g: &Global, repo: &Repo, a: &cli::CheckArgs) -> Result<u8> {
    let data = match (&a.read_data, &a.read_data_subset) {
        (true, _) => CheckData::All,
        (false, Some(s)) => {
            let pct: f64 = s.trim_end_matches('%').trim().parse().map_err(|_| {
                fail(
                    format!("bad --read-data-subset `{s}`"),
                    "give a percentage, e.g. --read-data-subset 10%",
                )
            })?;
            if !(pct > 0.0 && pct <= 100.0) {
                return Err(fail(
                    format!("--read-data-subset {s} is out of range"),
                    "give a percentage between 0 and 100",
                ));
            }
            CheckData::Percent(pct)
        }
        (false, None) => CheckData::None,
    };
    let c = repo.check(data)?;
    if g.json {
        output::json(&c)?;
    } else {
        for w in &c.warnings {
            eprintln!("warning: {w}");
        }
        for e in &c.errors {
            eprintln!("error: {e}");
        }
        if c.ok {
            println!(
                "no errors were found{}",
                if c.read_data {
                    " (data read and verified)"
                } else {
                    ""
                }
            );
        } else {
            println!(
                "check found {} error(s): the repository is damaged",
                c.errors.len()
            );
        }
    }
    if c.ok {
        Ok(exit::OK)
    } else {
        Err(anyhow::Error::new(Exit {
            code: exit::FATAL,
            message: format!("check found {} error(s)", c.errors.len()),
            hint: Some("see the errors above; restore what you can from another copy".into()),
        }))
    }
}

fn copy(g: &Global, spec: &RepoSpec, a: &cli::CopyArgs) -> Result<u8> {
    let src = spec.open()?;
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let url = bulwark_config::RepoUrl::parse(&a.to, &base).map_err(|m| {
        fail(
            format!("bad destination `{}`: {m}", a.to),
            "see `bulwark --help` for the accepted forms",
        )
    })?;
    let password = bulwark_config::SecretSource::File(a.to_password_file.clone())
        .load()
        .map_err(|e| {
            fail(
                e.to_string(),
                "give the destination's password file with --to-password-file",
            )
        })?;
    let dest_spec = RepoSpec {
        location: context::location_of(&url, None, None, crate::agent_cmd::ca_file(g, None))?,
        password: password.expose().to_string(),
        cache_dir: spec.cache_dir.clone(),
        progress: spec.progress.clone(),
    };
    let dest = dest_spec.open().map_err(|e| {
        let mut x: Exit = e.into();
        x.message = format!("destination: {}", x.message);
        x
    })?;
    let c = src.copy_to(&dest, &a.snapshots, &filter_of(&a.filter))?;
    if g.json {
        output::json(&c)?;
    } else {
        println!(
            "copied {} snapshot(s), {} already there",
            c.copied.len(),
            c.skipped.len()
        );
    }
    Ok(exit::OK)
}
