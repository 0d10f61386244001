//! A shared token bucket limiting copy bandwidth.

use std::{
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// A token bucket shared by all parallel copies of a run. Tokens are bytes;
/// the bucket refills at `rate` bytes/s and holds at most a quarter second
/// of burst. A chunk larger than the bucket is allowed: the balance goes
/// negative and the caller (and those after it) wait until it is repaid,
/// so the long-run average never exceeds `rate`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter of `bytes_per_sec` (must be > 0), starting with a full bucket.
    pub fn new(bytes_per_sec: u64) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let rate = bytes_per_sec.max(1) as f64;
        let burst = (rate / 4.0).max(1.0);
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until `n` bytes may pass.
    pub async fn acquire(&self, n: usize) {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let elapsed = now.duration_since(state.1).as_secs_f64();
            state.0 = (state.0 + elapsed * self.rate).min(self.burst);
            state.1 = now;
            #[allow(clippy::cast_precision_loss)]
            let need = n as f64;
            state.0 -= need;
            if state.0 < 0.0 {
                Duration::from_secs_f64(-state.0 / self.rate)
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn limits_the_average_rate() {
        let limiter = RateLimiter::new(1_000_000);
        let start = Instant::now();
        // 250 KB burst + 500 KB at 1 MB/s ≈ 0.5 s.
        for _ in 0..75 {
            limiter.acquire(10_000).await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(450), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
    }

    #[tokio::test]
    async fn a_chunk_larger_than_the_bucket_passes() {
        let limiter = RateLimiter::new(100_000);
        let start = Instant::now();
        limiter.acquire(50_000).await; // 25 KB burst, 25 KB debt = 0.25 s
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }
}
