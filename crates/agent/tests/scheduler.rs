//! The agent's scheduler under paused tokio time: days of schedule in
//! milliseconds, with the real planning, state files and run bookkeeping —
//! only the job itself is a recorder instead of a `bulwark run` process.
#![allow(clippy::unwrap_used)]

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use bulwark_agent::{
    Agent, AgentOptions, Clock, ConfigSource, Executor, Loaded, RunOutcome, RunRequest, TokioClock,
};
use bulwark_api::{RunStatus, Trigger};
use bulwark_config::{
    schedule::{Calendar, Schedule},
    JobSchedule,
};
use jiff::{Timestamp, Zoned};
use tokio::sync::watch;

#[derive(Clone)]
struct Recorder {
    clock: Arc<TokioClock>,
    runs: Arc<Mutex<Vec<(String, Trigger, Timestamp)>>>,
}

impl Executor for Recorder {
    fn execute(
        &self,
        req: RunRequest,
        _stop: watch::Receiver<bool>,
    ) -> Pin<Box<dyn Future<Output = RunOutcome> + Send>> {
        let this = self.clone();
        Box::pin(async move {
            this.runs.lock().unwrap().push((
                req.job.clone(),
                req.trigger,
                this.clock.now().timestamp(),
            ));
            // a backup takes a while
            tokio::time::sleep(Duration::from_secs(90)).await;
            RunOutcome {
                status: RunStatus::Success,
                ..RunOutcome::failed("")
            }
        })
    }
}

fn config(dir: &std::path::Path, expr: &str, delay: Duration, persistent: bool) -> Loaded {
    let text = format!(
        "[repositories.r]\nurl = \"{}/repo\"\npassword_file = \"{}/pw\"\n\n[jobs.photos]\nrepository = \"r\"\npaths = [\"/srv\"]\n",
        dir.display(),
        dir.display()
    );
    let mut cfg = bulwark_config::parse(&text, &dir.join("bulwark.toml")).unwrap();
    let schedule = Schedule {
        calendar: Calendar::parse(expr).unwrap(),
        randomized_delay: delay,
        persistent,
    };
    cfg.jobs.get_mut("photos").unwrap().schedule = Some(JobSchedule {
        expression: expr.into(),
        schedule,
        late_after: Duration::from_secs(3600),
    });
    Loaded {
        config: Arc::new(cfg),
        path: dir.join("bulwark.toml"),
        version: None,
        host: "nas".into(),
    }
}

/// Runs an agent from `start` for `span` of (paused) time; returns its runs.
async fn drive(
    state: &std::path::Path,
    loaded: Loaded,
    start: &str,
    span: Duration,
) -> Vec<(String, Trigger, Timestamp)> {
    let start: Zoned = start.parse().unwrap();
    let clock = Arc::new(TokioClock::starting_at(start));
    let runs = Arc::new(Mutex::new(Vec::new()));
    let exec = Recorder {
        clock: clock.clone(),
        runs: runs.clone(),
    };
    let (stop_tx, stop) = watch::channel(false);
    let opts = AgentOptions {
        host: Some("nas".into()),
        state_dir: state.to_path_buf(),
        config: ConfigSource::Hub, // not used: the config is given
        poll_wait: Duration::from_secs(30),
        reload_every: Duration::from_secs(5),
        config_key: None,
    };
    let agent = Agent::new(opts, None, Arc::new(exec), clock, stop).unwrap();
    agent.use_config(loaded);
    let task = tokio::spawn(agent.run());
    tokio::time::sleep(span).await;
    stop_tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    let v = runs.lock().unwrap().clone();
    v
}

#[tokio::test(start_paused = true)]
async fn daily_with_random_delay_runs_once_a_day_inside_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = config(
        dir.path(),
        "*-*-* 02:00:00 UTC",
        Duration::from_secs(30 * 60),
        true,
    );
    let runs = drive(
        dir.path(),
        loaded,
        "2026-01-05T00:00:00+00:00[UTC]",
        Duration::from_secs(3 * 86400),
    )
    .await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    for (i, (job, trigger, at)) in runs.iter().enumerate() {
        assert_eq!((job.as_str(), *trigger), ("photos", Trigger::Schedule));
        let day: Timestamp = format!("2026-01-0{}T02:00:00Z", 5 + i).parse().unwrap();
        assert!(
            *at >= day && *at < day + Duration::from_secs(30 * 60),
            "run {i} at {at}"
        );
    }
    // the delay is fixed per (job, day) but differs between days
    let offsets: Vec<i64> = runs.iter().map(|(_, _, t)| t.as_second() % 86400).collect();
    assert!(offsets.windows(2).any(|w| w[0] != w[1]), "{offsets:?}");
    // and the start of each run is remembered for the next start
    let saved = std::fs::read_to_string(dir.path().join("last_runs.json")).unwrap();
    assert!(saved.contains(&runs[2].2.to_string()), "{saved}");
}

#[tokio::test(start_paused = true)]
async fn three_day_outage_gives_one_catch_up_run() {
    let dir = tempfile::tempdir().unwrap();
    // the host last ran the job 3 days before it comes back at noon
    std::fs::write(
        dir.path().join("last_runs.json"),
        r#"{"photos":"2026-01-02T02:10:00Z"}"#,
    )
    .unwrap();
    let loaded = config(
        dir.path(),
        "*-*-* 02:00:00 UTC",
        Duration::from_secs(30 * 60),
        true,
    );
    let runs = drive(
        dir.path(),
        loaded,
        "2026-01-05T12:00:00+00:00[UTC]",
        Duration::from_secs(6 * 3600),
    )
    .await;
    assert_eq!(runs.len(), 1, "one catch-up, not three: {runs:?}");
    let back: Timestamp = "2026-01-05T12:00:00Z".parse().unwrap();
    assert_eq!(runs[0].1, Trigger::CatchUp);
    assert!(
        runs[0].2 >= back && runs[0].2 < back + Duration::from_secs(5 * 60),
        "{:?}",
        runs[0]
    );
}

#[tokio::test(start_paused = true)]
async fn without_persistent_the_missed_runs_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("last_runs.json"),
        r#"{"photos":"2026-01-02T02:10:00Z"}"#,
    )
    .unwrap();
    let loaded = config(dir.path(), "*-*-* 02:00:00 UTC", Duration::ZERO, false);
    let runs = drive(
        dir.path(),
        loaded,
        "2026-01-05T12:00:00+00:00[UTC]",
        Duration::from_secs(15 * 3600),
    )
    .await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].1, Trigger::Schedule);
    assert_eq!(
        runs[0].2,
        "2026-01-06T02:00:00Z".parse::<Timestamp>().unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn every_fifteen_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = config(dir.path(), "*:0/15", Duration::ZERO, true);
    let runs = drive(
        dir.path(),
        loaded,
        "2026-01-05T00:02:00+00:00[UTC]",
        Duration::from_secs(3600),
    )
    .await;
    let mins: Vec<i64> = runs
        .iter()
        .map(|(_, _, t)| (t.as_second() % 3600) / 60)
        .collect();
    assert_eq!(mins, vec![15, 30, 45, 0], "{runs:?}");
}
