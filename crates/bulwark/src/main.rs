//! The `bulwark` binary: argument parsing, wiring and exit codes. All the
//! work happens in the library crates (`bulwark-config`, `bulwark-engine`).

mod agent_cmd;
mod cli;
mod commands;
mod context;
mod dbsource;
mod hooks;
mod hub_cmd;
mod monitor_cmd;
mod output;
mod replicate_cmd;
mod up;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes (documented in `--help` and the README).
pub(crate) mod exit {
    pub(crate) const OK: u8 = 0;
    pub(crate) const FATAL: u8 = 1;
    pub(crate) const INCOMPLETE: u8 = 3;
    pub(crate) const NO_REPO: u8 = 10;
    pub(crate) const WRONG_PASSWORD: u8 = 11;
    pub(crate) const LOCKED: u8 = 12;
    pub(crate) const UNAUTHORIZED: u8 = 13;
    pub(crate) const FORBIDDEN: u8 = 14;
    pub(crate) const INTERRUPTED: u8 = 130;
}

/// An error that carries the exit code it must end the process with.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) code: u8,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Exit {}

impl From<bulwark_engine::Error> for Exit {
    fn from(e: bulwark_engine::Error) -> Self {
        use bulwark_engine::ErrorKind as K;
        let code = match e.kind {
            K::RepoNotFound => exit::NO_REPO,
            K::WrongPassword => exit::WRONG_PASSWORD,
            K::Locked => exit::LOCKED,
            K::Unauthorized => exit::UNAUTHORIZED,
            K::Forbidden => exit::FORBIDDEN,
            K::Interrupted => exit::INTERRUPTED,
            _ => exit::FATAL,
        };
        Self {
            code,
            message: e.message,
            hint: e.hint,
        }
    }
}

fn init_logging(g: &cli::Global, server: bool) {
    use tracing_subscriber::{fmt, EnvFilter};
    // A server logs one line per request by default.
    let default = match g.verbose.max(u8::from(server)) {
        0 => "warn,rustic_core=off,rustic_backend=off,opendal=error",
        1 => "info,rustic_core=warn,rustic_backend=warn,opendal=warn",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("BULWARK_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_log::LogTracer::init();
    // colours only for a person at a terminal, never into log files
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match g.log_format {
        cli::LogFormat::Json => builder.json().try_init(),
        cli::LogFormat::Text => builder.without_time().with_target(false).try_init(),
    };
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // long-running services: log a line per event by default, and handle
    // SIGINT/SIGTERM themselves (graceful shutdown)
    let service = matches!(
        cli.command,
        cli::Cmd::Hub(_) | cli::Cmd::Agent(_) | cli::Cmd::Up(_)
    );
    init_logging(&cli.global, service);
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        // a panic is a bug; say so in one line instead of a backtrace
        std::panic::set_hook(Box::new(|info| {
            eprintln!("bulwark: internal error: {info} (set RUST_BACKTRACE=1 for details, and please report it)");
        }));
    }
    if !service {
        context::install_interrupt_handler();
    }
    match commands::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                // the reader went away (`bulwark ls | head`): not an error
                return ExitCode::from(exit::OK);
            }
            if err
                .downcast_ref::<bulwark_engine::Error>()
                .is_some_and(|e| e.kind == bulwark_engine::ErrorKind::OutputClosed)
            {
                return ExitCode::from(exit::OK);
            }
            let err = match err.downcast::<bulwark_engine::Error>() {
                Ok(e) => anyhow::Error::new(Exit::from(e)),
                Err(e) => e,
            };
            let (code, msg, hint) = match err.downcast::<Exit>() {
                Ok(e) => (e.code, e.message, e.hint),
                Err(e) => (exit::FATAL, format!("{e:#}"), None),
            };
            eprintln!("bulwark: {msg}");
            if let Some(h) = hint {
                eprintln!("  hint: {h}");
            }
            ExitCode::from(code)
        }
    }
}
