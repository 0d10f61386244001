//! Terminal output: progress bars on a TTY, tables, JSON.

use std::{
    io::{IsTerminal, Write},
    sync::Arc,
};

use bulwark_engine::{Phase, ProgressSink, Quiet, Unit};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress bars on stderr, only when it is a terminal.
#[derive(Debug)]
pub(crate) struct Bars(MultiProgress);

#[derive(Debug)]
struct Bar(ProgressBar);

impl Phase for Bar {
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ProgressSink for Bars {
    fn begin(&self, title: &str, unit: Unit) -> Box<dyn Phase> {
        let style = match unit {
            Unit::Spinner => ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}]"),
            Unit::Count => ProgressStyle::with_template("{prefix:20} [{elapsed_precise}] {bar:30} {pos}/{len}"),
            Unit::Bytes => ProgressStyle::with_template(
                "{prefix:20} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
        }
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = self.0.add(
            ProgressBar::new(0)
                .with_style(style)
                .with_prefix(title.to_string()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Box::new(Bar(bar))
    }
}

/// The progress sink for this run.
pub(crate) fn progress(quiet: bool, json: bool) -> Arc<dyn ProgressSink> {
    if quiet || json || !std::io::stderr().is_terminal() {
        Arc::new(Quiet)
    } else {
        Arc::new(Bars(MultiProgress::with_draw_target(
            ProgressDrawTarget::stderr(),
        )))
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// A plain text table with aligned columns.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Human size.
pub(crate) fn size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}
