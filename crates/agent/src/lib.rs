//! Bulwark's agent: runs a host's jobs on their schedules, reports every run
//! to the hub, and takes triggers.
