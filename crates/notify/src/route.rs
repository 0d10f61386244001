//! Routes: which messages go to which notifiers. Pure: no IO, no clock.

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::{Message, Severity};

/// One rule: messages about `subjects` at `min_severity` or worse go to `notifiers`.
///
/// Subjects are glob patterns (`*`, `?`, `[abc]`, `{a,b}`; `*` also
/// matches `/`) matched against [`Message::subject`], case-sensitively; an
/// empty list matches every subject.
///
/// A recovery ([`Event::Up`](crate::Event::Up)) should carry the severity of
/// the alert it ends, so it reaches the notifiers that were told about the
/// problem. Test messages are sent to one named notifier directly, not routed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Names of the notifiers to tell.
    pub notifiers: Vec<String>,
    /// Glob patterns of subjects; empty = all.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// The least severity that is sent.
    #[serde(default = "least")]
    pub min_severity: Severity,
}

fn least() -> Severity {
    Severity::Info
}

/// A subject pattern that is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the subject pattern `{pattern}` is not a valid glob: {reason}")]
pub struct RouteError {
    /// The pattern.
    pub pattern: String,
    /// What globset said.
    pub reason: String,
}

impl Route {
    /// Compiles the subject patterns, or says which one is wrong. Call it
    /// when reading the configuration: [`targets`] skips a route whose
    /// patterns don't compile.
    pub fn validate(&self) -> Result<(), RouteError> {
        self.globs().map(|_| ())
    }

    fn globs(&self) -> Result<Option<GlobSet>, RouteError> {
        if self.subjects.is_empty() {
            return Ok(None);
        }
        let mut b = GlobSetBuilder::new();
        for p in &self.subjects {
            let g = Glob::new(p).map_err(|e| RouteError {
                pattern: p.clone(),
                reason: e.kind().to_string(),
            })?;
            b.add(g);
        }
        b.build().map(Some).map_err(|e| RouteError {
            pattern: self.subjects.join(", "),
            reason: e.to_string(),
        })
    }

    /// True when `msg` is at least `min_severity` and its subject matches.
    pub fn matches(&self, msg: &Message) -> bool {
        if msg.severity < self.min_severity {
            return false;
        }
        match self.globs() {
            Ok(None) => true,
            Ok(Some(set)) => set.is_match(&msg.subject),
            Err(_) => false,
        }
    }
}

/// The notifiers `msg` goes to: those of every matching route, in the order
/// of the routes and of their lists, each name once.
pub fn targets(routes: &[Route], msg: &Message) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in routes.iter().filter(|r| r.matches(msg)) {
        for n in &r.notifiers {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    fn route(notifiers: &[&str], subjects: &[&str], min: Severity) -> Route {
        Route {
            notifiers: notifiers.iter().map(|s| s.to_string()).collect(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            min_severity: min,
        }
    }

    fn msg(subject: &str, severity: Severity) -> Message {
        Message::new(Event::Down, severity, subject, "t", "b")
    }

    #[test]
    fn empty_subjects_match_everything_at_or_above_min_severity() {
        let routes = [route(&["ops"], &[], Severity::Warning)];
        assert_eq!(
            targets(&routes, &msg("anything", Severity::Warning)),
            ["ops"]
        );
        assert_eq!(
            targets(&routes, &msg("anything", Severity::Critical)),
            ["ops"]
        );
        assert!(targets(&routes, &msg("anything", Severity::Info)).is_empty());
    }

    #[test]
    fn globs_select_subjects() {
        let routes = [
            route(&["db-team"], &["db-*", "postgres?"], Severity::Info),
            route(&["web"], &["web/{front,back}"], Severity::Info),
        ];
        assert_eq!(
            targets(&routes, &msg("db-main", Severity::Info)),
            ["db-team"]
        );
        assert_eq!(
            targets(&routes, &msg("postgres1", Severity::Info)),
            ["db-team"]
        );
        assert!(targets(&routes, &msg("postgres12", Severity::Info)).is_empty());
        assert_eq!(targets(&routes, &msg("web/front", Severity::Info)), ["web"]);
        assert!(targets(&routes, &msg("web/admin", Severity::Info)).is_empty());
        // case-sensitive
        assert!(targets(&routes, &msg("DB-main", Severity::Info)).is_empty());
    }

    #[test]
    fn deduplicated_in_stable_order() {
        let routes = [
            route(&["slack", "ntfy"], &[], Severity::Info),
            route(&["email", "ntfy"], &["nas*"], Severity::Warning),
            route(&["pager", "slack"], &["nas"], Severity::Critical),
        ];
        assert_eq!(
            targets(&routes, &msg("nas", Severity::Critical)),
            ["slack", "ntfy", "email", "pager"]
        );
        assert_eq!(
            targets(&routes, &msg("nas", Severity::Warning)),
            ["slack", "ntfy", "email"]
        );
        assert_eq!(
            targets(&routes, &msg("nas", Severity::Info)),
            ["slack", "ntfy"]
        );
        assert!(targets(&[], &msg("nas", Severity::Critical)).is_empty());
    }

    #[test]
    fn bad_patterns_are_reported_and_never_match() {
        let bad = route(&["x"], &["ok", "db-[a"], Severity::Info);
        let e = bad.validate().unwrap_err();
        assert_eq!(e.pattern, "db-[a");
        assert!(e.to_string().contains("not a valid glob"), "{e}");
        assert!(targets(&[bad], &msg("ok", Severity::Critical)).is_empty());
        assert!(route(&["x"], &["db-*"], Severity::Info).validate().is_ok());
    }

    #[test]
    fn routes_deserialize_with_defaults() {
        let r: Route = serde_json::from_str(r#"{"notifiers": ["a"]}"#).unwrap();
        assert_eq!(r, route(&["a"], &[], Severity::Info));
        let r: Route = serde_json::from_str(
            r#"{"notifiers": ["a"], "subjects": ["x*"], "min_severity": "critical"}"#,
        )
        .unwrap();
        assert_eq!(r.min_severity, Severity::Critical);
    }
}
