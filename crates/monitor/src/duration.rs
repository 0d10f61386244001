//! Durations in specs and messages.
//!
//! In JSON a duration is a friendly string such as `"5s"`, `"1m 30s"` or
//! `"250ms"` (ISO 8601 `"PT5S"` is accepted too), so a spec reads the same in
//! a config file, in the hub's API and in logs.

use std::time::Duration;

/// Formats a duration for a message: `250ms`, `5s`, `1.5s`, `2m 5s`.
pub(crate) fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        if d > Duration::ZERO && ms == 0 {
            return format!("{}µs", d.as_micros());
        }
        return format!("{ms}ms");
    }
    if d.as_secs() < 60 {
        if ms.is_multiple_of(1000) {
            return format!("{}s", d.as_secs());
        }
        return format!("{:.1}s", d.as_secs_f64());
    }
    let secs = d.as_secs();
    match (secs / 60, secs % 60) {
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    }
}

/// Parses a friendly (`"5s"`, `"1m 30s"`) or ISO 8601 (`"PT5S"`) duration.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    use jiff::fmt::{friendly, temporal};
    static FRIENDLY: friendly::SpanParser = friendly::SpanParser::new();
    static ISO: temporal::SpanParser = temporal::SpanParser::new();
    match FRIENDLY.parse_unsigned_duration(s) {
        Ok(d) => Ok(d),
        Err(friendly_err) => ISO
            .parse_unsigned_duration(s)
            .map_err(|_| format!("invalid duration {s:?}: {friendly_err}")),
    }
}

fn print(d: &Duration) -> String {
    use jiff::fmt::friendly;
    static PRINTER: friendly::SpanPrinter = friendly::SpanPrinter::new();
    PRINTER.unsigned_duration_to_string(d)
}

/// `#[serde(with = "serde_duration")]` for a `Duration`.
pub(crate) mod serde_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::print(d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `#[serde(with = "serde_opt_duration")]` for an `Option<Duration>`.
pub(crate) mod serde_opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::print(d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => super::parse(&s).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_formats() {
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(5)), "5s");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(125)), "2m 5s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn parse_and_print_round_trip() {
        for (text, d) in [
            ("5s", Duration::from_secs(5)),
            ("1m 30s", Duration::from_secs(90)),
            ("250ms", Duration::from_millis(250)),
            ("PT10S", Duration::from_secs(10)),
        ] {
            assert_eq!(parse(text).unwrap(), d, "{text}");
            assert_eq!(parse(&print(&d)).unwrap(), d);
        }
        assert!(parse("soon").is_err());
        assert!(parse("-5s").is_err());
    }
}
