//! Prometheus metrics (text exposition on `GET /metrics`).

use std::{
    sync::atomic::AtomicU64,
    time::{SystemTime, UNIX_EPOCH},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::usage::{Usage, SLOT_NAMES};

/// `{repo}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RepoLabel {
    pub(crate) repo: String,
}

/// `{repo, type}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RepoTypeLabels {
    pub(crate) repo: String,
    pub(crate) r#type: String,
}

/// `{repo, method}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) repo: String,
    pub(crate) method: String,
}

/// `{repo, method, code}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    pub(crate) repo: String,
    pub(crate) method: String,
    pub(crate) code: String,
}

/// `{target, repo}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetRepoLabels {
    pub(crate) target: String,
    pub(crate) repo: String,
}

/// `{job}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobLabel {
    pub(crate) job: String,
}

/// `{kind, severity}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct AlertLabels {
    pub(crate) kind: String,
    pub(crate) severity: String,
}

/// `{monitor, item, type}` labels (item: a built-in monitor's job or alert;
/// empty for probe and disk monitors).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MonitorLabels {
    pub(crate) monitor: String,
    pub(crate) item: String,
    pub(crate) r#type: String,
}

/// `{monitor, vantage}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct VantageLabels {
    pub(crate) monitor: String,
    pub(crate) vantage: String,
}

/// `{job, host}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct JobHostLabels {
    pub(crate) job: String,
    pub(crate) host: String,
}

/// `{notifier}` labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct NotifierLabel {
    pub(crate) notifier: String,
}

pub(crate) type FloatGauge = Gauge<f64, AtomicU64>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

/// Every metric the hub exports.
pub(crate) struct Metrics {
    registry: Registry,
    repo_bytes: Family<RepoTypeLabels, Gauge>,
    repo_files: Family<RepoTypeLabels, Gauge>,
    repo_quota: Family<RepoLabel, Gauge>,
    store_bytes: Gauge,
    store_max_size: Gauge,
    pub(crate) last_snapshot: Family<RepoLabel, FloatGauge>,
    pub(crate) reads: Family<RepoTypeLabels, Counter>,
    pub(crate) read_bytes: Family<RepoTypeLabels, Counter>,
    pub(crate) writes: Family<RepoTypeLabels, Counter>,
    pub(crate) write_bytes: Family<RepoTypeLabels, Counter>,
    pub(crate) deletes: Family<RepoTypeLabels, Counter>,
    pub(crate) delete_bytes: Family<RepoTypeLabels, Counter>,
    pub(crate) requests: Family<StatusLabels, Counter>,
    pub(crate) latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pub(crate) auth_failures: Family<RepoLabel, Counter>,
    pub(crate) scrub_checked: Family<RepoLabel, Counter>,
    pub(crate) scrub_corrupt: Family<RepoLabel, Gauge>,
    pub(crate) scrub_unreadable: Family<RepoLabel, Gauge>,
    pub(crate) scrub_last: Family<RepoLabel, FloatGauge>,
    pub(crate) repl_last_success: Family<TargetRepoLabels, FloatGauge>,
    pub(crate) repl_last_verified: Family<TargetRepoLabels, FloatGauge>,
    pub(crate) repl_lag: Family<TargetRepoLabels, Gauge>,
    pub(crate) repl_failures: Family<TargetRepoLabels, Gauge>,
    pub(crate) repl_pending_deletes: Family<TargetRepoLabels, Gauge>,
    pub(crate) repl_copied_files: Family<TargetRepoLabels, Counter>,
    pub(crate) repl_copied_bytes: Family<TargetRepoLabels, Counter>,
    pub(crate) repl_deleted_files: Family<TargetRepoLabels, Counter>,
    pub(crate) job_copies: Family<JobLabel, Gauge>,
    pub(crate) job_media: Family<JobLabel, Gauge>,
    pub(crate) job_offsite: Family<JobLabel, Gauge>,
    pub(crate) job_effective_rpo: Family<JobLabel, Gauge>,
    pub(crate) job_rpo: Family<JobLabel, Gauge>,
    pub(crate) alerts_open: Family<AlertLabels, Gauge>,
    pub(crate) monitor_up: Family<MonitorLabels, Gauge>,
    pub(crate) monitor_silenced: Family<MonitorLabels, Gauge>,
    pub(crate) probe_up: Family<VantageLabels, Gauge>,
    pub(crate) probe_latency: Family<VantageLabels, FloatGauge>,
    pub(crate) probe_cert_days: Family<VantageLabels, FloatGauge>,
    pub(crate) probe_last: Family<VantageLabels, FloatGauge>,
    pub(crate) connectivity: Gauge,
    pub(crate) notifications_sent: Family<NotifierLabel, Counter>,
    pub(crate) notifications_failed: Family<NotifierLabel, Counter>,
    pub(crate) notifications_pending: Gauge,
    pub(crate) job_last_success: Family<JobHostLabels, FloatGauge>,
    pub(crate) job_last_run: Family<JobHostLabels, FloatGauge>,
    pub(crate) job_last_duration: Family<JobHostLabels, FloatGauge>,
    pub(crate) job_last_bytes_added: Family<JobHostLabels, Gauge>,
    pub(crate) job_last_files: Family<JobHostLabels, Gauge>,
    pub(crate) job_last_result: Family<JobHostLabels, Gauge>,
    pub(crate) job_late: Family<JobHostLabels, Gauge>,
    pub(crate) disk_free: Gauge,
    pub(crate) disk_size: Gauge,
    rss: Gauge,
    cpu: FloatGauge,
    open_fds: Gauge,
    start_time: FloatGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// A `sysconf` value (the page size, clock ticks per second), or `default`
/// where the system does not say.
#[allow(clippy::useless_conversion)]
fn sys_value(var: nix::unistd::SysconfVar, default: i64) -> i64 {
    match nix::unistd::sysconf(var) {
        Ok(Some(v)) if v > 0 => i64::from(v),
        _ => default,
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(crate) fn rt(repo: &str, t: &str) -> RepoTypeLabels {
    RepoTypeLabels {
        repo: repo.to_owned(),
        r#type: t.to_owned(),
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut m = Self {
            registry: Registry::default(),
            repo_bytes: Family::default(),
            repo_files: Family::default(),
            repo_quota: Family::default(),
            store_bytes: Gauge::default(),
            store_max_size: Gauge::default(),
            last_snapshot: Family::default(),
            reads: Family::default(),
            read_bytes: Family::default(),
            writes: Family::default(),
            write_bytes: Family::default(),
            deletes: Family::default(),
            delete_bytes: Family::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            auth_failures: Family::default(),
            scrub_checked: Family::default(),
            scrub_corrupt: Family::default(),
            scrub_unreadable: Family::default(),
            scrub_last: Family::default(),
            repl_last_success: Family::default(),
            repl_last_verified: Family::default(),
            repl_lag: Family::default(),
            repl_failures: Family::default(),
            repl_pending_deletes: Family::default(),
            repl_copied_files: Family::default(),
            repl_copied_bytes: Family::default(),
            repl_deleted_files: Family::default(),
            job_copies: Family::default(),
            job_media: Family::default(),
            job_offsite: Family::default(),
            job_effective_rpo: Family::default(),
            job_rpo: Family::default(),
            alerts_open: Family::default(),
            monitor_up: Family::default(),
            monitor_silenced: Family::default(),
            probe_up: Family::default(),
            probe_latency: Family::default(),
            probe_cert_days: Family::default(),
            probe_last: Family::default(),
            connectivity: Gauge::default(),
            notifications_sent: Family::default(),
            notifications_failed: Family::default(),
            notifications_pending: Gauge::default(),
            job_last_success: Family::default(),
            job_last_run: Family::default(),
            job_last_duration: Family::default(),
            job_last_bytes_added: Family::default(),
            job_last_files: Family::default(),
            job_last_result: Family::default(),
            job_late: Family::default(),
            disk_free: Gauge::default(),
            disk_size: Gauge::default(),
            rss: Gauge::default(),
            cpu: FloatGauge::default(),
            open_fds: Gauge::default(),
            start_time: FloatGauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "bulwark_hub_repo_bytes",
            "Bytes stored per repository and file type",
            m.repo_bytes.clone(),
        );
        r.register(
            "bulwark_hub_repo_files",
            "Files stored per repository and file type",
            m.repo_files.clone(),
        );
        r.register(
            "bulwark_hub_repo_quota_bytes",
            "Configured quota per repository",
            m.repo_quota.clone(),
        );
        r.register(
            "bulwark_hub_store_bytes",
            "Bytes stored in all repositories",
            m.store_bytes.clone(),
        );
        r.register(
            "bulwark_hub_store_max_size_bytes",
            "Configured limit of the whole data directory (0: none)",
            m.store_max_size.clone(),
        );
        r.register(
            "bulwark_hub_last_snapshot_upload_timestamp_seconds",
            "Time of the last snapshot file uploaded to the repository (Unix seconds)",
            m.last_snapshot.clone(),
        );
        r.register(
            "bulwark_hub_blob_reads",
            "Files read (GET) per repository and type",
            m.reads.clone(),
        );
        r.register(
            "bulwark_hub_blob_read_bytes",
            "Bytes read per repository and type",
            m.read_bytes.clone(),
        );
        r.register(
            "bulwark_hub_blob_writes",
            "Files written per repository and type",
            m.writes.clone(),
        );
        r.register(
            "bulwark_hub_blob_write_bytes",
            "Bytes written per repository and type",
            m.write_bytes.clone(),
        );
        r.register(
            "bulwark_hub_blob_deletes",
            "Files deleted per repository and type",
            m.deletes.clone(),
        );
        r.register(
            "bulwark_hub_blob_delete_bytes",
            "Bytes deleted per repository and type",
            m.delete_bytes.clone(),
        );
        r.register(
            "bulwark_hub_requests",
            "Requests per repository, method and status code",
            m.requests.clone(),
        );
        r.register(
            "bulwark_hub_request_duration_seconds",
            "Time to the response headers, per repository and method",
            m.latency.clone(),
        );
        r.register(
            "bulwark_hub_auth_failures",
            "Failed authentications (by addressed repository; empty if none)",
            m.auth_failures.clone(),
        );
        r.register(
            "bulwark_hub_scrub_files_checked",
            "Files re-hashed by scrubbing",
            m.scrub_checked.clone(),
        );
        r.register(
            "bulwark_hub_scrub_corrupt_files",
            "Files whose content did not match their name at the last scrub",
            m.scrub_corrupt.clone(),
        );
        r.register(
            "bulwark_hub_scrub_unreadable_files",
            "Files that could not be read at the last scrub",
            m.scrub_unreadable.clone(),
        );
        r.register(
            "bulwark_hub_scrub_last_timestamp_seconds",
            "End of the last scrub of the repository (Unix seconds)",
            m.scrub_last.clone(),
        );
        r.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            m.rss.clone(),
        );
        r.register(
            "process_cpu_seconds",
            "User and system CPU time spent in seconds",
            m.cpu.clone(),
        );
        r.register(
            "process_open_fds",
            "Number of open file descriptors",
            m.open_fds.clone(),
        );
        r.register(
            "bulwark_replication_last_success_timestamp_seconds",
            "End of the last complete copy pass per target and repository (Unix seconds)",
            m.repl_last_success.clone(),
        );
        r.register(
            "bulwark_replication_last_verified_timestamp_seconds",
            "End of the last verify pass (re-hash of a sample) per target and repository (Unix seconds)",
            m.repl_last_verified.clone(),
        );
        r.register(
            "bulwark_replication_lag_seconds",
            "How far the target is behind the hub (0: holds every snapshot)",
            m.repl_lag.clone(),
        );
        r.register(
            "bulwark_replication_consecutive_failures",
            "Failed copy passes since the last complete one",
            m.repl_failures.clone(),
        );
        r.register(
            "bulwark_replication_pending_deletes",
            "Files deleted at the hub that wait out the quarantine at the target",
            m.repl_pending_deletes.clone(),
        );
        r.register(
            "bulwark_replication_copied_files",
            "Files copied to the target since the hub started",
            m.repl_copied_files.clone(),
        );
        r.register(
            "bulwark_replication_copied_bytes",
            "Bytes copied to the target since the hub started",
            m.repl_copied_bytes.clone(),
        );
        r.register(
            "bulwark_replication_deleted_files",
            "Files deleted at the target (propagated deletions) since the hub started",
            m.repl_deleted_files.clone(),
        );
        r.register(
            "bulwark_job_copies",
            "Current copies of the job's repository (hub + targets holding every snapshot)",
            m.job_copies.clone(),
        );
        r.register(
            "bulwark_job_media",
            "Distinct media among the current copies of the job's repository",
            m.job_media.clone(),
        );
        r.register(
            "bulwark_job_offsite_copies",
            "Current offsite copies of the job's repository",
            m.job_offsite.clone(),
        );
        r.register(
            "bulwark_job_effective_rpo_seconds",
            "Schedule interval + replication lag of the best offsite copy",
            m.job_effective_rpo.clone(),
        );
        r.register(
            "bulwark_job_rpo_seconds",
            "The job's declared rpo",
            m.job_rpo.clone(),
        );
        r.register(
            "bulwark_alerts_open",
            "Open alerts by kind and severity",
            m.alerts_open.clone(),
        );
        r.register(
            "bulwark_monitor_up",
            "Confirmed state of a monitor after thresholds and quorum: 1 up, 0 down, -1 unknown",
            m.monitor_up.clone(),
        );
        r.register(
            "bulwark_monitor_silenced",
            "1 while a maintenance window holds the monitor's alerts back",
            m.monitor_silenced.clone(),
        );
        r.register(
            "bulwark_monitor_probe_up",
            "Result of the last probe at a vantage point: 1 up, 0 down",
            m.probe_up.clone(),
        );
        r.register(
            "bulwark_monitor_latency_seconds",
            "Duration of the last probe at a vantage point",
            m.probe_latency.clone(),
        );
        r.register(
            "bulwark_monitor_cert_days_left",
            "Days left on the server certificate at the last probe (https and tls monitors)",
            m.probe_cert_days.clone(),
        );
        r.register(
            "bulwark_monitor_last_check_timestamp_seconds",
            "Time of the last probe at a vantage point (Unix seconds)",
            m.probe_last.clone(),
        );
        r.register(
            "bulwark_hub_connectivity_up",
            "0 while every connectivity canary of the hub fails (alerts are held back), else 1",
            m.connectivity.clone(),
        );
        r.register(
            "bulwark_notifications_sent",
            "Notifications delivered per notifier",
            m.notifications_sent.clone(),
        );
        r.register(
            "bulwark_notifications_failed",
            "Failed delivery attempts per notifier (each is retried)",
            m.notifications_failed.clone(),
        );
        r.register(
            "bulwark_notifications_pending",
            "Notifications waiting to be delivered",
            m.notifications_pending.clone(),
        );
        r.register(
            "bulwark_job_last_success_timestamp_seconds",
            "End of the job's last successful run (Unix seconds)",
            m.job_last_success.clone(),
        );
        r.register(
            "bulwark_job_last_run_timestamp_seconds",
            "End of the job's last run, whatever its result (Unix seconds)",
            m.job_last_run.clone(),
        );
        r.register(
            "bulwark_job_last_run_duration_seconds",
            "Duration of the job's last run",
            m.job_last_duration.clone(),
        );
        r.register(
            "bulwark_job_last_run_bytes_added",
            "Bytes the job's last run added to the repository (after deduplication and compression)",
            m.job_last_bytes_added.clone(),
        );
        r.register(
            "bulwark_job_last_run_files",
            "Files the job's last run processed",
            m.job_last_files.clone(),
        );
        r.register(
            "bulwark_job_last_run_success",
            "Result of the job's last run: 1 success (also with warnings), 0 failure",
            m.job_last_result.clone(),
        );
        r.register(
            "bulwark_job_late",
            "1 while a scheduled run of the job has not been seen",
            m.job_late.clone(),
        );
        r.register(
            "bulwark_hub_disk_free_bytes",
            "Free space in the file system of the hub's data directory",
            m.disk_free.clone(),
        );
        r.register(
            "bulwark_hub_disk_size_bytes",
            "Size of the file system of the hub's data directory",
            m.disk_size.clone(),
        );
        r.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds",
            m.start_time.clone(),
        );
        m.start_time.set(now_secs());
        m.connectivity.set(1);
        m
    }

    /// Refreshes the usage, disk and process gauges and renders everything.
    /// Blocking (statvfs, /proc): call it on a blocking thread.
    pub(crate) fn render(&self, usage: &Usage, data: &std::path::Path) -> String {
        if let Ok((free, total)) = crate::monitoring::disk_space(data) {
            self.disk_free.set(i64::try_from(free).unwrap_or(i64::MAX));
            self.disk_size.set(i64::try_from(total).unwrap_or(i64::MAX));
        }
        for (repo, u) in usage.snapshot() {
            let name = repo.to_string();
            for (i, t) in SLOT_NAMES.iter().enumerate() {
                self.repo_bytes
                    .get_or_create(&rt(&name, t))
                    .set(i64::try_from(u.bytes[i]).unwrap_or(i64::MAX));
                self.repo_files
                    .get_or_create(&rt(&name, t))
                    .set(i64::try_from(u.files[i]).unwrap_or(i64::MAX));
            }
        }
        for (repo, q) in usage.quotas() {
            self.repo_quota
                .get_or_create(&RepoLabel { repo: repo.clone() })
                .set(i64::try_from(*q).unwrap_or(i64::MAX));
        }
        self.store_bytes
            .set(i64::try_from(usage.grand_total()).unwrap_or(i64::MAX));
        self.store_max_size.set(
            usage
                .max_size()
                .map_or(0, |m| i64::try_from(m).unwrap_or(i64::MAX)),
        );
        self.update_process();
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encoding metrics: {e}");
        }
        out
    }

    /// RSS, CPU time and open descriptors from /proc/self (Linux; left at
    /// zero elsewhere).
    fn update_process(&self) {
        let page = sys_value(nix::unistd::SysconfVar::PAGE_SIZE, 4096);
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            if let Some(rss) = statm
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<i64>().ok())
            {
                self.rss.set(rss * page);
            }
        }
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name (which may contain spaces).
            if let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) {
                let f: Vec<&str> = after.split_whitespace().collect();
                // utime and stime are fields 14 and 15 (1-based) of the
                // whole line: indexes 11 and 12 after the name.
                let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                #[allow(clippy::cast_precision_loss)]
                let hz = sys_value(nix::unistd::SysconfVar::CLK_TCK, 100) as f64;
                self.cpu.set((ticks(11) + ticks(12)) / hz);
            }
        }
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds
                .set(i64::try_from(rd.count()).unwrap_or(i64::MAX));
        }
    }
}
