//! `type = "command"`: a local command's exit code.

use bulwark_monitor::{CommandLine as ProbeCommand, CommandProbe};
use serde_spanned::Spanned;

use super::{int, missing, MonitorKind};
use crate::{
    raw::{RawCommandLine, RawMonitor},
    read::Ctx,
};

pub(super) fn command(
    cx: &mut Ctx<'_>,
    r: &RawMonitor,
    name: &Spanned<String>,
    clean: bool,
) -> Option<CommandProbe> {
    let command = match &r.command {
        None => {
            missing(
                cx,
                clean,
                name,
                MonitorKind::Command,
                "command",
                "command = [\"/usr/local/bin/check-raid\"] (or a string run with sh -c)",
            );
            None
        }
        Some(c) => match c.get_ref() {
            RawCommandLine::Shell(s) if s.trim().is_empty() => {
                cx.err_at(c, "empty command", "give the command to run");
                None
            }
            RawCommandLine::Argv(v) if v.first().is_none_or(String::is_empty) => {
                cx.err_at(
                    c,
                    "empty command array",
                    "give the program and its arguments, e.g. [\"/usr/local/bin/check-raid\"]",
                );
                None
            }
            RawCommandLine::Shell(s) => Some(ProbeCommand::Shell(s.clone())),
            RawCommandLine::Argv(v) => Some(ProbeCommand::Argv(v.clone())),
        },
    };
    let exit = r.exit_code.as_ref().map_or(Some(0), |e| {
        int(cx, e, "exit_code", (0, 255), "exit_code = 0")
    });
    Some(CommandProbe {
        command: command?,
        expected_exit_code: exit?,
    })
}
