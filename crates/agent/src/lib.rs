//! Bulwark's agent: the part of Bulwark that runs jobs on a host.
//!
//! Today this crate holds the agent's pure core, the [`schedule`] module:
//! systemd `OnCalendar` expressions, randomized delays and persistent
//! catch-up after downtime. Nothing in it reads the clock, sleeps or does IO —
//! time and a seed go in, an instant comes out — so the agent's timing is
//! tested by driving time, never by waiting.
//!
//! ```
//! use std::time::Duration;
//! use bulwark_agent::schedule::{seed_for, Calendar, Schedule};
//!
//! let calendar = Calendar::parse("Mon..Fri 03:00 Europe/Berlin")?;
//! let now: jiff::Zoned = "2025-03-07T12:00:00+01:00[Europe/Berlin]".parse()?; // a Friday
//! // The next weekday at 03:00 is Monday.
//! let next = calendar.next_after(now.clone()).expect("fires");
//! assert_eq!(next.to_string(), "2025-03-10T03:00:00+01:00[Europe/Berlin]");
//!
//! // With a randomized delay: somewhere in [03:00, 03:30), the same for the
//! // same job and fire time on every call.
//! let schedule = Schedule { calendar, randomized_delay: Duration::from_secs(30 * 60), persistent: true };
//! let seed = seed_for(&["nas", "photos"]);
//! let at = schedule.next_run(None, now.clone(), seed).expect("fires");
//! assert!(at >= next && at < next.checked_add(jiff::Span::new().minutes(30))?);
//! assert_eq!(Some(at), schedule.next_run(None, now, seed));
//!
//! // Errors say where and what.
//! let err = Calendar::parse("Mon..Fri 25:00").unwrap_err();
//! assert_eq!(err.to_string(), "`25:00` (column 10): hour must be 0-23, not 25; write midnight as `00:00`");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod schedule;
