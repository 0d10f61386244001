//! Repository leases: who may work on a repository now.
//!
//! - Backup leases are **shared**: any number of backups may write to a
//!   repository at once (restic's own locks allow it).
//! - A maintenance lease is **exclusive**: forget + prune runs alone — no
//!   backup and no other maintenance on that repository.
//! - **Writer preference**: once a maintenance request was refused because
//!   backups hold the repository, new backup leases on it are refused for up
//!   to [`MAINTENANCE_PRIORITY`] (or until that maintenance got its lease).
//!   Running backups finish, the repository drains, maintenance gets in;
//!   without this a busy repository could starve maintenance forever.
//! - Every lease lapses after its TTL, so a crashed agent can't block a
//!   repository for good.
//!
//! Leases live in memory: after a hub restart every lease is gone, which
//! only lets work start a little early (restic's own lock files still
//! protect the repository).

use std::{collections::HashMap, time::Duration};

use bulwark_api::LeaseKind;
use jiff::Timestamp;

/// How long a refused maintenance keeps new backups out.
pub(crate) const MAINTENANCE_PRIORITY: Duration = Duration::from_secs(15 * 60);

/// Suggested wait after a refusal (seconds).
const RETRY_AFTER: u64 = 30;

/// One granted lease.
#[derive(Debug, Clone)]
struct Held {
    id: String,
    host: String,
    kind: LeaseKind,
    expires: Timestamp,
}

#[derive(Debug, Default)]
struct Repo {
    held: Vec<Held>,
    /// A maintenance was refused because of backups at this time.
    maintenance_waiting: Option<Timestamp>,
}

/// Every repository's leases.
#[derive(Debug)]
pub(crate) struct Leases {
    ttl: Duration,
    repos: HashMap<String, Repo>,
}

/// A refusal: try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy {
    pub(crate) retry_after: u64,
    pub(crate) reason: &'static str,
}

impl Leases {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            repos: HashMap::new(),
        }
    }

    fn purge(&mut self, now: Timestamp) {
        self.repos.retain(|_, r| {
            r.held.retain(|h| h.expires > now);
            if r.maintenance_waiting.is_some_and(|t| {
                t.checked_add(MAINTENANCE_PRIORITY)
                    .is_ok_and(|end| end <= now)
            }) {
                r.maintenance_waiting = None;
            }
            !r.held.is_empty() || r.maintenance_waiting.is_some()
        });
    }

    /// Asks for a lease: `(id, expires)` or a refusal.
    pub(crate) fn acquire(
        &mut self,
        repository: &str,
        kind: LeaseKind,
        host: &str,
        id: String,
        now: Timestamp,
    ) -> Result<(String, Timestamp), Busy> {
        self.purge(now);
        let r = self.repos.entry(repository.to_owned()).or_default();
        let maintenance_held = r.held.iter().any(|h| h.kind == LeaseKind::Maintenance);
        match kind {
            LeaseKind::Backup => {
                if maintenance_held {
                    return Err(Busy {
                        retry_after: RETRY_AFTER,
                        reason: "maintenance is running on this repository",
                    });
                }
                if r.maintenance_waiting.is_some() {
                    return Err(Busy {
                        retry_after: RETRY_AFTER,
                        reason:
                            "maintenance is waiting for this repository; new backups wait for it",
                    });
                }
            }
            LeaseKind::Maintenance => {
                if maintenance_held {
                    return Err(Busy {
                        retry_after: RETRY_AFTER,
                        reason: "another maintenance is running on this repository",
                    });
                }
                if !r.held.is_empty() {
                    r.maintenance_waiting.get_or_insert(now);
                    return Err(Busy {
                        retry_after: RETRY_AFTER,
                        reason: "backups are running on this repository; new backups now wait for this maintenance",
                    });
                }
                r.maintenance_waiting = None;
            }
        }
        let expires = now.checked_add(self.ttl).unwrap_or(Timestamp::MAX);
        r.held.push(Held {
            id: id.clone(),
            host: host.to_owned(),
            kind,
            expires,
        });
        Ok((id, expires))
    }

    /// How many leases `host` holds now.
    pub(crate) fn held_by(&mut self, host: &str, now: Timestamp) -> usize {
        self.purge(now);
        self.repos
            .values()
            .map(|r| r.held.iter().filter(|h| h.host == host).count())
            .sum()
    }

    /// Releases lease `id` held by `host`; false if there is no such lease
    /// (or another host holds it).
    pub(crate) fn release(&mut self, id: &str, host: &str, now: Timestamp) -> bool {
        self.purge(now);
        for r in self.repos.values_mut() {
            if let Some(i) = r.held.iter().position(|h| h.id == id && h.host == host) {
                r.held.remove(i);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn shared_exclusive_and_writer_preference() {
        let mut l = Leases::new(Duration::from_secs(3600));
        let b1 = l
            .acquire("r", LeaseKind::Backup, "a", "b1".into(), t(0))
            .unwrap();
        l.acquire("r", LeaseKind::Backup, "b", "b2".into(), t(1))
            .unwrap();
        // other repositories are independent
        l.acquire("other", LeaseKind::Maintenance, "m", "x".into(), t(1))
            .unwrap();
        let e = l
            .acquire("r", LeaseKind::Maintenance, "m", "m1".into(), t(2))
            .unwrap_err();
        assert!(e.retry_after > 0);
        // writer preference: a new backup waits
        assert!(l
            .acquire("r", LeaseKind::Backup, "c", "b3".into(), t(3))
            .is_err());
        assert!(!l.release(&b1.0, "wrong-host", t(4)));
        assert!(l.release(&b1.0, "a", t(4)));
        assert!(l.release("b2", "b", t(5)));
        l.acquire("r", LeaseKind::Maintenance, "m", "m1".into(), t(6))
            .unwrap();
        assert!(l
            .acquire("r", LeaseKind::Backup, "c", "b4".into(), t(7))
            .is_err());
        assert!(l
            .acquire("r", LeaseKind::Maintenance, "n", "m2".into(), t(7))
            .is_err());
        assert!(l.release("m1", "m", t(8)));
        l.acquire("r", LeaseKind::Backup, "c", "b5".into(), t(9))
            .unwrap();
    }

    #[test]
    fn priority_and_leases_lapse() {
        let mut l = Leases::new(Duration::from_secs(3600));
        l.acquire("r", LeaseKind::Backup, "a", "b1".into(), t(0))
            .unwrap();
        assert!(l
            .acquire("r", LeaseKind::Maintenance, "m", "m1".into(), t(1))
            .is_err());
        assert!(l
            .acquire("r", LeaseKind::Backup, "c", "b2".into(), t(2))
            .is_err());
        // after 15 minutes the waiting maintenance no longer keeps backups out
        l.acquire("r", LeaseKind::Backup, "c", "b3".into(), t(1 + 15 * 60))
            .unwrap();
        // after the TTL the leases are gone: maintenance gets in
        l.acquire("r", LeaseKind::Maintenance, "m", "m2".into(), t(2 * 3600))
            .unwrap();
    }
}
