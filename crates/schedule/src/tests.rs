#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jiff::{Timestamp, ToSpan, Zoned};

use super::*;

fn z(s: &str) -> Zoned {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test instant {s}: {e}"))
}

fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"))
}

fn cal(s: &str) -> Calendar {
    Calendar::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn next(expr: &str, from: &str) -> Option<String> {
    cal(expr).next_after(z(from)).map(|t| t.to_string())
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_good_expressions() {
    let good = [
        "minutely",
        "hourly",
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "annually",
        "quarterly",
        "semiannually",
        "DAILY",
        "daily UTC",
        "weekly Europe/Berlin",
        "*-*-* 02:00:00",
        "*-*-* 02:00",
        "Mon..Fri 03:00",
        "mon..fri 03:00",
        "Monday..Friday 03:00",
        "Sat,Sun 10:00",
        "Mon,Wed..Fri *-*-* 03:00:30",
        "*:0/15",
        "*:*:0/10",
        "*-*-1/2",
        "*-*-01 00:00",
        "2025-12-25 08:30",
        "2024/2-01-01",
        "2025..2030-06-01",
        "12-25",
        "*-01,04,07,10-01",
        "8..17:00",
        "8..17/3:00",
        "*/6:00",
        "*-*~1",
        "*-02~03",
        "Mon *-05~07/1",
        "*-*-* 02:00 Europe/Berlin",
        "Mon..Fri 03:00 America/New_York",
        "   daily  ",
        "03:00",
        "Fri",
    ];
    for g in good {
        assert!(Calendar::parse(g).is_ok(), "{g}: {:?}", Calendar::parse(g));
    }
}

#[test]
fn rejects_bad_expressions_with_position_and_hint() {
    let bad = [
        ("", "`` (column 1): empty calendar expression; examples: `daily`, `*-*-* 02:00:00`, `Mon..Fri 03:00`, `*:0/15`"),
        ("25:00", "`25:00` (column 1): hour must be 0-23, not 25; write midnight as `00:00`"),
        ("Mon..Fri 25:00", "`25:00` (column 10): hour must be 0-23, not 25; write midnight as `00:00`"),
        ("*:60", "`*:60` (column 3): minute must be 0-59, not 60; `*:0/15` is every 15 minutes"),
        ("*:00:61", "`*:00:61` (column 6): second must be 0-59, not 61; seconds are whole numbers 0-59"),
        ("*-13-01", "`*-13-01` (column 3): month must be 1-12, not 13; months are numbers: `*-03-01` is March 1st"),
        ("*-*-32", "`*-*-32` (column 5): day must be 1-31, not 32; days of the month are 1-31; `*-*~1` is the last day"),
        ("*-*-0", "`*-*-0` (column 5): day must be 1-31, not 0; days of the month are 1-31; `*-*~1` is the last day"),
        (
            "24-01-01",
            "`24-01-01` (column 1): year must be 1970-9999, not 24; write the year with four digits, or `*` for any year",
        ),
        (
            "dialy",
            "`dialy` (column 1): expected a weekday (`Mon`, `Tue`, ...) or a shorthand (`daily`, `weekly`, ...), found `dialy`; did you mean `daily`?",
        ),
        (
            "Mon..Fir 03:00",
            "`Mon..Fir` (column 6): expected a weekday (`Mon`, `Tue`, ...), found `Fir`; did you mean `Fri`?",
        ),
        (
            "Fri..Mon 03:00",
            "`Fri..Mon` (column 1): weekday range `Fri..Mon` runs backwards; ranges don't wrap around the week: write `Fri..Sun,Mon..Mon`",
        ),
        (
            "Mon-Fri 03:00",
            "`Mon-Fri` (column 1): expected a weekday (`Mon`, `Tue`, ...) or a shorthand (`daily`, `weekly`, ...), found `Mon-Fri`; weekday ranges use `..`: `Mon..Fri`",
        ),
        (
            "*-*-* 03:00 Europe/Berln",
            "`Europe/Berln` (column 13): unknown time zone; did you mean `Europe/Berlin`?",
        ),
        ("*:0/0", "`*:0/0` (column 5): repetition must be at least 1; `*:0/15` is every 15 minutes"),
        (
            "*:x",
            "`*:x` (column 3): expected a number for the minute, found `x`; use a number, `*`, a list `a,b`, a range `a..b` or a repetition `a/step`",
        ),
        ("*:", "`*:` (column 3): expected a number for the minute, found ``; a part is missing; use `*` for any value"),
        (
            "*:*:1.5",
            "`*:*:1.5` (column 5): expected a number for the second, found `1.5`; fractional values are not supported; ranges are written `a..b`",
        ),
        ("1:2:3:4", "`1:2:3:4` (column 1): a time is `HH:MM` or `HH:MM:SS`; e.g. `02:00`, `*:0/15`, `03:30:00`"),
        ("17..8:00", "`17..8:00` (column 1): hour range `17..8` runs backwards; write the smaller value first: `a..b`"),
        (
            "daily 03:00",
            "`03:00` (column 7): `daily` is a complete schedule; nothing may follow it except a time zone; write it out instead, e.g. `*-*-* 02:00:00` for daily at 2am (`daily` = `*-*-* 00:00:00`)",
        ),
        (
            "03:00 *-*-*",
            "`*-*-*` (column 7): the date must come before the time; e.g. `*-*-01 02:00`",
        ),
        ("*-*-* Mon", "`Mon` (column 7): unknown time zone; weekdays must come first: `Mon..Fri *-*-* 03:00`"),
        (
            "2",
            "`2` (column 1): expected a weekday, a date (`YYYY-MM-DD`, `*-*-*`) or a time (`HH:MM[:SS]`); a lone number is ambiguous: write `02:00` for a time or `*-*-02` for a day",
        ),
        ("02:00 03:00", "`03:00` (column 7): a second time; list several times with commas: `02,14:00`"),
        ("*-*~1~2", "`*-*~1~2` (column 4): `~` may only separate the month from the day; `*-*~1` is the last day of every month"),
        ("*-*-*-*", "`*-*-*-*` (column 1): a date has two or three parts separated by `-`; a date is `YYYY-MM-DD`, `MM-DD` or `*-*-*`"),
    ];
    let mut failures = Vec::new();
    for (expr, want) in bad {
        match Calendar::parse(expr) {
            Ok(_) => failures.push(format!("{expr:?}: parsed, expected error {want:?}")),
            Err(e) if e.to_string() != want => failures.push(format!(
                "{expr:?}:\n   got {:?}\n  want {want:?}",
                e.to_string()
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn error_parts_for_config_diagnostics() {
    let e = Calendar::parse("Mon..Fri 25:00").unwrap_err();
    assert_eq!(e.column(), 10);
    assert_eq!(e.message(), "`25:00`: hour must be 0-23, not 25");
    assert_eq!(e.hint(), Some("write midnight as `00:00`"));
}

#[test]
fn display_is_the_expression() {
    assert_eq!(cal("  Mon..Fri 03:00 ").to_string(), "Mon..Fri 03:00");
    let parsed: Calendar = "daily".parse().unwrap();
    assert_eq!(parsed.as_str(), "daily");
}

#[test]
fn shorthands_equal_their_long_forms() {
    let pairs = [
        ("minutely", "*-*-* *:*:00"),
        ("hourly", "*-*-* *:00:00"),
        ("daily", "*-*-* 00:00:00"),
        ("weekly", "Mon *-*-* 00:00:00"),
        ("monthly", "*-*-01 00:00:00"),
        ("yearly", "*-01-01 00:00:00"),
        ("annually", "*-01-01 00:00:00"),
        ("quarterly", "*-01,04,07,10-01 00:00:00"),
        ("semiannually", "*-01,07-01 00:00:00"),
    ];
    for (short, long) in pairs {
        let (a, b) = (cal(short), cal(long));
        let mut t = z("2023-12-30T22:17:00+00:00[UTC]");
        for _ in 0..50 {
            let (na, nb) = (a.next_after(t.clone()), b.next_after(t.clone()));
            assert_eq!(na, nb, "{short} vs {long} after {t}");
            t = na.unwrap();
        }
    }
}

// ------------------------------------------------------------- next_after

#[test]
fn next_after_table() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        // the required expressions
        (
            "hourly",
            "2025-01-15T10:20:00+00:00[UTC]",
            Some("2025-01-15T11:00:00+00:00[UTC]"),
        ),
        (
            "hourly",
            "2025-01-15T10:00:00+00:00[UTC]",
            Some("2025-01-15T11:00:00+00:00[UTC]"),
        ),
        (
            "hourly",
            "2025-12-31T23:30:00+00:00[UTC]",
            Some("2026-01-01T00:00:00+00:00[UTC]"),
        ),
        (
            "daily",
            "2025-01-15T10:20:00+00:00[UTC]",
            Some("2025-01-16T00:00:00+00:00[UTC]"),
        ),
        (
            "daily",
            "2025-01-15T23:59:59.999+00:00[UTC]",
            Some("2025-01-16T00:00:00+00:00[UTC]"),
        ),
        (
            "weekly",
            "2025-01-15T10:20:00+00:00[UTC]",
            Some("2025-01-20T00:00:00+00:00[UTC]"),
        ),
        (
            "weekly",
            "2025-01-20T00:00:00+00:00[UTC]",
            Some("2025-01-27T00:00:00+00:00[UTC]"),
        ),
        (
            "monthly",
            "2025-01-31T12:00:00+00:00[UTC]",
            Some("2025-02-01T00:00:00+00:00[UTC]"),
        ),
        (
            "monthly",
            "2025-12-01T00:00:00+00:00[UTC]",
            Some("2026-01-01T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*-* 02:00:00",
            "2025-01-15T01:59:59.5+00:00[UTC]",
            Some("2025-01-15T02:00:00+00:00[UTC]"),
        ),
        (
            "*-*-* 02:00:00",
            "2025-01-15T02:00:00+00:00[UTC]",
            Some("2025-01-16T02:00:00+00:00[UTC]"),
        ),
        (
            "Mon..Fri 03:00",
            "2025-01-15T02:00:00+00:00[UTC]",
            Some("2025-01-15T03:00:00+00:00[UTC]"),
        ),
        (
            "Mon..Fri 03:00",
            "2025-01-17T04:00:00+00:00[UTC]",
            Some("2025-01-20T03:00:00+00:00[UTC]"),
        ),
        (
            "Mon..Fri 03:00",
            "2025-01-18T02:00:00+00:00[UTC]",
            Some("2025-01-20T03:00:00+00:00[UTC]"),
        ),
        (
            "*:0/15",
            "2025-01-15T10:07:00+00:00[UTC]",
            Some("2025-01-15T10:15:00+00:00[UTC]"),
        ),
        (
            "*:0/15",
            "2025-01-15T10:45:00+00:00[UTC]",
            Some("2025-01-15T11:00:00+00:00[UTC]"),
        ),
        (
            "*:0/15",
            "2025-02-28T23:50:00+00:00[UTC]",
            Some("2025-03-01T00:00:00+00:00[UTC]"),
        ),
        // others
        (
            "minutely",
            "2025-01-15T10:07:30+00:00[UTC]",
            Some("2025-01-15T10:08:00+00:00[UTC]"),
        ),
        (
            "yearly",
            "2025-06-01T00:00:00+00:00[UTC]",
            Some("2026-01-01T00:00:00+00:00[UTC]"),
        ),
        (
            "quarterly",
            "2025-02-10T00:00:00+00:00[UTC]",
            Some("2025-04-01T00:00:00+00:00[UTC]"),
        ),
        (
            "semiannually",
            "2025-02-10T00:00:00+00:00[UTC]",
            Some("2025-07-01T00:00:00+00:00[UTC]"),
        ),
        (
            "Sat,Sun 10:00",
            "2025-01-17T12:00:00+00:00[UTC]",
            Some("2025-01-18T10:00:00+00:00[UTC]"),
        ),
        (
            "Sat,Sun 10:00",
            "2025-01-18T10:00:00+00:00[UTC]",
            Some("2025-01-19T10:00:00+00:00[UTC]"),
        ),
        (
            "*-*-1/2",
            "2025-01-02T00:00:00+00:00[UTC]",
            Some("2025-01-03T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*-1/2",
            "2025-01-31T00:00:00+00:00[UTC]",
            Some("2025-02-01T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*-1/2 01:00",
            "2025-04-29T02:00:00+00:00[UTC]",
            Some("2025-05-01T01:00:00+00:00[UTC]"),
        ),
        (
            "8..17/3:00",
            "2025-01-15T15:00:00+00:00[UTC]",
            Some("2025-01-15T17:00:00+00:00[UTC]"),
        ),
        (
            "8..17/3:00",
            "2025-01-15T17:00:00+00:00[UTC]",
            Some("2025-01-16T08:00:00+00:00[UTC]"),
        ),
        (
            "*:*:0/20",
            "2025-01-15T10:00:41+00:00[UTC]",
            Some("2025-01-15T10:01:00+00:00[UTC]"),
        ),
        (
            "2025-12-25 08:30",
            "2025-01-15T00:00:00+00:00[UTC]",
            Some("2025-12-25T08:30:00+00:00[UTC]"),
        ),
        (
            "2024/2-01-01",
            "2025-01-15T00:00:00+00:00[UTC]",
            Some("2026-01-01T00:00:00+00:00[UTC]"),
        ),
        (
            "12-25",
            "2025-12-25T00:00:00+00:00[UTC]",
            Some("2026-12-25T00:00:00+00:00[UTC]"),
        ),
        // month ends
        (
            "*-*-31",
            "2025-04-01T00:00:00+00:00[UTC]",
            Some("2025-05-31T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*-31",
            "2025-05-31T00:00:00+00:00[UTC]",
            Some("2025-07-31T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*-30",
            "2025-01-31T00:00:00+00:00[UTC]",
            Some("2025-03-30T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*~1",
            "2025-02-10T00:00:00+00:00[UTC]",
            Some("2025-02-28T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*~1",
            "2024-02-10T00:00:00+00:00[UTC]",
            Some("2024-02-29T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*~1",
            "2025-04-30T00:00:00+00:00[UTC]",
            Some("2025-05-31T00:00:00+00:00[UTC]"),
        ),
        (
            "*-02~03",
            "2025-01-01T00:00:00+00:00[UTC]",
            Some("2025-02-26T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*~7..1",
            "2025-04-10T00:00:00+00:00[UTC]",
            Some("2025-04-24T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*~1..7",
            "2025-04-10T00:00:00+00:00[UTC]",
            Some("2025-04-24T00:00:00+00:00[UTC]"),
        ),
        (
            "*-*~1..7",
            "2025-04-30T00:00:00+00:00[UTC]",
            Some("2025-05-25T00:00:00+00:00[UTC]"),
        ),
        // first Sunday of the month
        (
            "Sun *-*-1..7 05:00",
            "2025-01-10T00:00:00+00:00[UTC]",
            Some("2025-02-02T05:00:00+00:00[UTC]"),
        ),
        // last Monday of May
        (
            "Mon *-05~07/1",
            "2025-01-01T00:00:00+00:00[UTC]",
            Some("2025-05-26T00:00:00+00:00[UTC]"),
        ),
        (
            "Mon *-05~07/1",
            "2025-05-26T00:00:00+00:00[UTC]",
            Some("2026-05-25T00:00:00+00:00[UTC]"),
        ),
        // leap years
        (
            "*-02-29",
            "2025-01-01T00:00:00+00:00[UTC]",
            Some("2028-02-29T00:00:00+00:00[UTC]"),
        ),
        (
            "*-02-29",
            "2096-03-01T00:00:00+00:00[UTC]",
            Some("2104-02-29T00:00:00+00:00[UTC]"),
        ),
        (
            "*-02-29",
            "2396-03-01T00:00:00+00:00[UTC]",
            Some("2400-02-29T00:00:00+00:00[UTC]"),
        ),
        (
            "Mon *-02-29",
            "2025-01-01T00:00:00+00:00[UTC]",
            Some("2044-02-29T00:00:00+00:00[UTC]"),
        ),
        // never
        ("*-02-30", "2025-01-01T00:00:00+00:00[UTC]", None),
        ("*-04-31", "2025-01-01T00:00:00+00:00[UTC]", None),
        ("Mon *-02-30", "2025-01-01T00:00:00+00:00[UTC]", None),
        ("2020-*-*", "2025-01-01T00:00:00+00:00[UTC]", None),
        ("2025-01-15 10:00", "2025-01-15T10:00:00+00:00[UTC]", None),
        (
            "9998-12-31 23:59:59",
            "2025-01-01T00:00:00+00:00[UTC]",
            Some("9998-12-31T23:59:59+00:00[UTC]"),
        ),
        // beyond jiff's range (its instants end on 9999-12-30): no panic, just never
        (
            "9999-12-31 23:59:59",
            "2025-01-01T00:00:00+00:00[UTC]",
            None,
        ),
        // time zones: the calendar's own zone wins; otherwise the input's
        (
            "daily Europe/Berlin",
            "2025-01-15T12:00:00+00:00[UTC]",
            Some("2025-01-16T00:00:00+01:00[Europe/Berlin]"),
        ),
        (
            "*-*-* 02:00 UTC",
            "2025-01-15T12:00:00+01:00[Europe/Berlin]",
            Some("2025-01-16T02:00:00+00:00[UTC]"),
        ),
        (
            "daily",
            "2025-01-15T12:00:00-05:00[America/New_York]",
            Some("2025-01-16T00:00:00-05:00[America/New_York]"),
        ),
    ];
    let mut failures = Vec::new();
    for &(expr, from, want) in cases {
        let got = next(expr, from);
        if got.as_deref() != want {
            failures.push(format!("{expr:?} after {from}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn dst_spring_forward_skips_the_missing_time() {
    // 2025-03-30: Berlin clocks jump 02:00 CET -> 03:00 CEST; 02:30 doesn't exist.
    let c = cal("*-*-* 02:30 Europe/Berlin");
    let got = c
        .next_after(z("2025-03-29T03:00:00+01:00[Europe/Berlin]"))
        .unwrap();
    assert_eq!(got.to_string(), "2025-03-31T02:30:00+02:00[Europe/Berlin]");
    // Same without a zone in the expression: the input's zone is used.
    let got = cal("*-*-* 02:30")
        .next_after(z("2025-03-29T03:00:00+01:00[Europe/Berlin]"))
        .unwrap();
    assert_eq!(got.to_string(), "2025-03-31T02:30:00+02:00[Europe/Berlin]");
    // Times around the gap are unaffected.
    assert_eq!(
        next("*:0/15", "2025-03-30T01:45:00+01:00[Europe/Berlin]").unwrap(),
        "2025-03-30T03:00:00+02:00[Europe/Berlin]"
    );
    assert_eq!(
        next("hourly", "2025-03-30T01:00:00+01:00[Europe/Berlin]").unwrap(),
        "2025-03-30T03:00:00+02:00[Europe/Berlin]"
    );
    assert_eq!(
        next("daily", "2025-03-29T12:00:00+01:00[Europe/Berlin]").unwrap(),
        "2025-03-30T00:00:00+01:00[Europe/Berlin]"
    );
}

#[test]
fn dst_fall_back_fires_once() {
    // 2025-10-26: Berlin clocks go 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    let c = cal("*-*-* 02:30 Europe/Berlin");
    let first = c
        .next_after(z("2025-10-26T00:00:00+02:00[Europe/Berlin]"))
        .unwrap();
    assert_eq!(
        first.to_string(),
        "2025-10-26T02:30:00+02:00[Europe/Berlin]"
    );
    let second = c.next_after(first).unwrap();
    assert_eq!(
        second.to_string(),
        "2025-10-27T02:30:00+01:00[Europe/Berlin]"
    );
    // Asked during the repeated hour (after the first 02:30): not again today.
    let during = c
        .next_after(z("2025-10-26T02:10:00+01:00[Europe/Berlin]"))
        .unwrap();
    assert_eq!(
        during.to_string(),
        "2025-10-27T02:30:00+01:00[Europe/Berlin]"
    );
    // hourly: the repeated hour fires nothing, so 02:00 CEST is followed by 03:00 CET.
    assert_eq!(
        next("hourly", "2025-10-26T02:00:00+02:00[Europe/Berlin]").unwrap(),
        "2025-10-26T03:00:00+01:00[Europe/Berlin]"
    );
    assert_eq!(
        next("*:0/15", "2025-10-26T02:45:00+02:00[Europe/Berlin]").unwrap(),
        "2025-10-26T03:00:00+01:00[Europe/Berlin]"
    );
}

#[test]
fn dst_a_daily_job_fires_every_day_across_both_changes() {
    let c = cal("*-*-* 02:30 Europe/Berlin");
    let mut t = z("2025-01-01T00:00:00+01:00[Europe/Berlin]");
    let mut fires = 0;
    while t.year() == 2025 || fires == 0 {
        t = c.next_after(t).unwrap();
        if t.year() == 2025 {
            fires += 1;
        }
    }
    assert_eq!(fires, 364, "365 days minus the spring-forward day");
}

#[test]
fn results_are_strictly_increasing() {
    for expr in [
        "hourly",
        "*:0/15",
        "Mon..Fri 03:00",
        "*-*~1 12:00",
        "*-02-29",
        "*-*-* 02:30 Europe/Berlin",
    ] {
        let c = cal(expr);
        let mut t = z("2023-12-31T00:00:00+00:00[UTC]");
        for _ in 0..200 {
            let n = c.next_after(t.clone()).unwrap();
            assert!(n.timestamp() > t.timestamp(), "{expr}: {n} after {t}");
            t = n;
        }
    }
}

#[test]
fn never_firing_is_fast() {
    let start = std::time::Instant::now();
    for expr in [
        "*-02-30",
        "*-04,06,09,11-31",
        "Mon *-02-30 03:00",
        "2024/4-02-30",
    ] {
        assert_eq!(
            cal(expr).next_after(z("2025-01-01T00:00:00+00:00[UTC]")),
            None,
            "{expr}"
        );
    }
    // Generous bound for a loaded debug build; minute-by-minute iteration would take far longer.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn validate_reports_never_and_too_rare() {
    let now = z("2025-01-01T00:00:00+00:00[UTC]");
    assert_eq!(
        cal("daily").validate(&now).unwrap().to_string(),
        "2025-01-02T00:00:00+00:00[UTC]"
    );
    assert_eq!(
        cal("*-02-29").validate(&now).unwrap().to_string(),
        "2028-02-29T00:00:00+00:00[UTC]"
    );
    assert_eq!(
        cal("*-02-30").validate(&now).unwrap_err().to_string(),
        "`*-02-30` never fires; check the date (is the day in that month, is the year in the past?)"
    );
    assert!(matches!(
        cal("2020-01-01").validate(&now),
        Err(ScheduleError::NeverFires { .. })
    ));
    assert_eq!(
        cal("Mon *-02-29").validate(&now).unwrap_err().to_string(),
        "`Mon *-02-29` does not fire within 5 years (first time: 2044-02-29T00:00:00+00:00[UTC]); check the date and weekday"
    );
}

// --------------------------------------------------------------- Schedule

fn sched(expr: &str, delay_secs: u64, persistent: bool) -> Schedule {
    Schedule {
        calendar: cal(expr),
        randomized_delay: Duration::from_secs(delay_secs),
        persistent,
    }
}

#[test]
fn randomized_delay_is_bounded_whole_seconds_and_deterministic() {
    let s = sched("daily", 3600, false);
    let mut distinct = std::collections::BTreeSet::new();
    for seed in 0..200u64 {
        for day in 0..20 {
            let slot = ts("2025-01-01T00:00:00Z")
                .checked_add((day * 24).hours())
                .unwrap();
            let d = s.delay_for(slot, seed);
            assert!(d < Duration::from_secs(3600), "{d:?}");
            assert_eq!(d.subsec_nanos(), 0);
            assert_eq!(d, s.delay_for(slot, seed), "deterministic");
            distinct.insert(d.as_secs());
        }
    }
    // 4000 draws over 3600 values: well spread.
    assert!(distinct.len() > 2000, "{}", distinct.len());
    // Different fire times of one job get different delays.
    let a = s.delay_for(ts("2025-01-01T00:00:00Z"), 7);
    let b = s.delay_for(ts("2025-01-02T00:00:00Z"), 7);
    let c = s.delay_for(ts("2025-01-03T00:00:00Z"), 7);
    assert!(a != b || b != c);
    // Sub-second bounds keep nanoseconds; zero means none.
    let fine = Schedule {
        randomized_delay: Duration::from_millis(500),
        ..s.clone()
    };
    assert!(fine.delay_for(ts("2025-01-01T00:00:00Z"), 1) < Duration::from_millis(500));
    assert_eq!(
        sched("daily", 0, false).delay_for(ts("2025-01-01T00:00:00Z"), 1),
        Duration::ZERO
    );
}

#[test]
fn seeds_are_stable_and_distinct() {
    assert_eq!(seed_for(&["nas", "photos"]), seed_for(&["nas", "photos"]));
    assert_ne!(seed_for(&["nas", "photos"]), seed_for(&["nas", "photo"]));
    assert_ne!(seed_for(&["ab", "c"]), seed_for(&["a", "bc"]));
    // Frozen: a change here reshuffles every user's delays.
    assert_eq!(seed_for(&[]), 0xcbf2_9ce4_8422_2325);
    assert_eq!(seed_for(&["a"]), {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in [b'a', 0xff] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    });
}

#[test]
fn next_run_without_delay_is_the_fire_time() {
    let s = sched("*-*-* 02:00:00", 0, false);
    let p = s
        .plan(None, z("2025-01-15T12:00:00+00:00[UTC]"), 1)
        .unwrap();
    assert_eq!(p.at.to_string(), "2025-01-16T02:00:00+00:00[UTC]");
    assert_eq!(p.slot, p.at);
    assert!(!p.catch_up);
}

#[test]
fn next_run_with_delay_is_stable_until_it_is_due() {
    let s = sched("daily", 3600, false);
    let seed = seed_for(&["host", "job"]);
    let slot = z("2025-01-16T00:00:00+00:00[UTC]");
    let expected = slot
        .timestamp()
        .checked_add(s.delay_for(slot.timestamp(), seed))
        .unwrap();
    let last = Some(ts("2025-01-15T00:20:00Z"));
    for now in [
        "2025-01-15T12:00:00+00:00[UTC]",
        "2025-01-15T23:59:59+00:00[UTC]",
        "2025-01-16T00:00:00+00:00[UTC]",
    ] {
        let at = s.next_run(last, z(now), seed).unwrap();
        assert_eq!(at.timestamp(), expected, "now = {now}");
    }
    // Re-planned right at (or slightly after) the planned start, it is still
    // the same run: due, not missed.
    for late in [0, 1, 59] {
        let now = expected
            .checked_add(late.seconds())
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!(
            s.next_run(last, now, seed).unwrap().timestamp(),
            expected,
            "{late}s late"
        );
    }
    // Another seed (another job) gets another delay.
    let other = s
        .next_run(last, z("2025-01-15T12:00:00+00:00[UTC]"), seed ^ 1)
        .unwrap();
    assert!(
        other.timestamp() >= slot.timestamp()
            && other.timestamp() < expected.checked_add(3600.seconds()).unwrap()
    );
}

#[test]
fn persistent_catches_up_once_after_an_outage() {
    // Daily at 02:00 with up to 30 min delay; last ran Jan 10; the host was off
    // from Jan 10 noon until Jan 13 09:00 (three fire times missed).
    let s = sched("*-*-* 02:00", 1800, true);
    let seed = 42;
    let last = ts("2025-01-10T02:10:00Z");
    let now = z("2025-01-13T09:00:00+00:00[UTC]");
    let p = s.plan(Some(last), now.clone(), seed).unwrap();
    assert!(p.catch_up);
    assert_eq!(
        p.slot.to_string(),
        "2025-01-11T02:00:00+00:00[UTC]",
        "keyed by the first missed fire time"
    );
    assert!(p.at.timestamp() >= now.timestamp());
    assert!(p.at.timestamp() < now.timestamp().checked_add(CATCH_UP_MAX_DELAY).unwrap());
    // Same inputs, same answer (a restart doesn't reshuffle).
    assert_eq!(s.plan(Some(last), now, seed), Some(p.clone()));
    // After the catch-up ran, the next run is the regular one tomorrow: once, not three times.
    let ran = p.at.timestamp();
    let after = s
        .plan(
            Some(ran),
            ran.checked_add(10.minutes())
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC),
            seed,
        )
        .unwrap();
    assert!(!after.catch_up);
    assert_eq!(after.slot.to_string(), "2025-01-14T02:00:00+00:00[UTC]");
}

#[test]
fn non_persistent_skips_missed_runs() {
    let s = sched("*-*-* 02:00", 1800, false);
    let p = s
        .plan(
            Some(ts("2025-01-10T02:10:00Z")),
            z("2025-01-13T09:00:00+00:00[UTC]"),
            42,
        )
        .unwrap();
    assert!(!p.catch_up);
    assert_eq!(p.slot.to_string(), "2025-01-14T02:00:00+00:00[UTC]");
}

#[test]
fn persistent_without_history_or_without_a_miss_runs_on_schedule() {
    let s = sched("*-*-* 02:00", 0, true);
    // Never ran: nothing to catch up (as systemd without a stamp file).
    let p = s
        .plan(None, z("2025-01-13T09:00:00+00:00[UTC]"), 1)
        .unwrap();
    assert!(!p.catch_up);
    assert_eq!(p.at.to_string(), "2025-01-14T02:00:00+00:00[UTC]");
    // Ran at the last fire time: nothing missed.
    let p = s
        .plan(
            Some(ts("2025-01-13T02:00:00Z")),
            z("2025-01-13T09:00:00+00:00[UTC]"),
            1,
        )
        .unwrap();
    assert!(!p.catch_up);
    assert_eq!(p.at.to_string(), "2025-01-14T02:00:00+00:00[UTC]");
    // Zero randomized delay: the catch-up is immediate.
    let now = z("2025-01-15T09:00:00+00:00[UTC]");
    let p = s
        .plan(Some(ts("2025-01-13T02:00:00Z")), now.clone(), 1)
        .unwrap();
    assert!(p.catch_up);
    assert_eq!(p.at, now);
}

#[test]
fn catch_up_never_later_than_the_next_regular_run() {
    // Every 15 minutes, 10 min delay; the catch-up delay (< 5 min) may exceed
    // the time to the next regular run; the earlier one wins.
    let s = sched("*:0/15", 600, true);
    for seed in 0..50 {
        let now = z("2025-01-13T12:14:00+00:00[UTC]");
        let p = s
            .plan(Some(ts("2025-01-13T10:00:00Z")), now.clone(), seed)
            .unwrap();
        let regular = sched("*:0/15", 600, false)
            .plan(Some(ts("2025-01-13T10:00:00Z")), now.clone(), seed)
            .unwrap();
        assert!(p.at <= regular.at, "seed {seed}");
        assert!(p.at.timestamp() >= now.timestamp().checked_sub(DUE_GRACE).unwrap());
    }
}

#[test]
fn next_run_none_when_calendar_is_exhausted() {
    let s = sched("2025-01-15 10:00", 60, true);
    assert_eq!(
        s.next_run(None, z("2025-02-01T00:00:00+00:00[UTC]"), 1),
        None
    );
    // ... but a persistent job that missed the last fire time still catches up.
    let p = s
        .plan(
            Some(ts("2025-01-01T00:00:00Z")),
            z("2025-02-01T00:00:00+00:00[UTC]"),
            1,
        )
        .unwrap();
    assert!(p.catch_up);
}

/// Drive a simulated agent: plan, jump the clock to the planned time (or to
/// the end of an outage), run for 10 minutes, repeat. Returns the run starts.
fn simulate(s: &Schedule, start: &str, end: &str, outage: Option<(&str, &str)>) -> Vec<Timestamp> {
    let utc = jiff::tz::TimeZone::UTC;
    let (end, outage) = (ts(end), outage.map(|(a, b)| (ts(a), ts(b))));
    let mut now = ts(start);
    let mut last = None;
    let mut runs = Vec::new();
    let seed = seed_for(&["sim"]);
    loop {
        let Some(at) = s.next_run(last, now.to_zoned(utc.clone()), seed) else {
            break;
        };
        let at = at.timestamp().max(now);
        if at >= end {
            break;
        }
        if let Some((down, up)) = outage {
            if at >= down && at < up {
                now = up; // the host was off; the agent starts again and re-plans
                continue;
            }
        }
        runs.push(at);
        last = Some(at);
        now = at.checked_add(10.minutes()).unwrap();
    }
    runs
}

#[test]
fn simulated_week_daily_with_delay() {
    let s = sched("daily", 3600, false);
    // Starts after Jan 1's run window: Jan 1 is skipped, Jan 2..=8 run.
    let runs = simulate(&s, "2025-01-01T01:30:00Z", "2025-01-08T01:00:00Z", None);
    assert_eq!(runs.len(), 7, "{runs:?}");
    for (i, r) in runs.iter().enumerate() {
        let day = ts("2025-01-01T00:00:00Z")
            .checked_add(((i as i64 + 1) * 24).hours())
            .unwrap();
        assert!(*r >= day && *r < day.checked_add(1.hour()).unwrap(), "{r}");
    }
}

#[test]
fn simulated_three_day_outage_fires_once_when_persistent() {
    let outage = Some(("2025-01-02T12:00:00Z", "2025-01-05T09:00:00Z"));
    let s = sched("*-*-* 02:00", 1800, true);
    let runs = simulate(&s, "2025-01-01T03:00:00Z", "2025-01-08T00:00:00Z", outage);
    let in_window = |a: &str, b: &str| runs.iter().filter(|r| **r >= ts(a) && **r < ts(b)).count();
    assert_eq!(
        in_window("2025-01-05T09:00:00Z", "2025-01-05T09:05:00Z"),
        1,
        "one catch-up: {runs:?}"
    );
    // Jan 2, Jan 3.., Jan 4 02:00 missed; one catch-up on Jan 5 09:0x; then Jan 6, Jan 7.
    // Jan 2 02:00 ran before the outage started.
    assert_eq!(runs.len(), 4, "{runs:?}");

    let s = sched("*-*-* 02:00", 1800, false);
    let runs = simulate(&s, "2025-01-01T03:00:00Z", "2025-01-08T00:00:00Z", outage);
    assert_eq!(runs.len(), 3, "missed runs skipped: {runs:?}");
}
