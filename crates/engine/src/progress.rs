//! Progress events out of the engine, without any terminal code.
//!
//! The engine reports phases ("backing up", "restoring file contents", ...)
//! through a [`ProgressSink`]; the CLI draws bars on a TTY and stays quiet
//! otherwise. rustic_core's own progress trait is bridged here so callers never
//! see it.

use std::{fmt::Debug, sync::Arc};

use rustic_core::{Progress as RProgress, ProgressBars, ProgressType, RusticProgress};

/// What a phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// No meaningful count: show activity only.
    Spinner,
    /// Items (files, snapshots, packs).
    Count,
    /// Bytes.
    Bytes,
}

/// One running phase.
pub trait Phase: Send + Sync + Debug {
    /// Sets the expected total.
    fn set_length(&self, len: u64);
    /// Adds progress.
    fn inc(&self, n: u64);
    /// Marks the phase as done.
    fn finish(&self);
}

/// Receives phases from the engine.
pub trait ProgressSink: Send + Sync + Debug + 'static {
    /// Starts a phase titled `title` counting `unit`.
    fn begin(&self, title: &str, unit: Unit) -> Box<dyn Phase>;
}

/// A sink that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

#[derive(Debug)]
struct QuietPhase;

impl Phase for QuietPhase {
    fn set_length(&self, _: u64) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}

impl ProgressSink for Quiet {
    fn begin(&self, _: &str, _: Unit) -> Box<dyn Phase> {
        Box::new(QuietPhase)
    }
}

/// Bridges rustic_core's progress trait to a [`ProgressSink`].
#[derive(Debug, Clone)]
pub(crate) struct Bridge(pub(crate) Arc<dyn ProgressSink>);

#[derive(Debug)]
struct BridgePhase(Box<dyn Phase>);

impl RusticProgress for BridgePhase {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, _title: &str) {}
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

impl ProgressBars for Bridge {
    fn progress(&self, progress_type: ProgressType, prefix: &str) -> RProgress {
        let unit = match progress_type {
            ProgressType::Spinner => Unit::Spinner,
            ProgressType::Counter => Unit::Count,
            ProgressType::Bytes => Unit::Bytes,
        };
        RProgress::new(BridgePhase(self.0.begin(prefix, unit)))
    }
}
