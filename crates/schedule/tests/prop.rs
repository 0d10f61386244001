//! Property tests of the schedule parser: it never panics on any text, its
//! errors point inside the text, and for every expression it accepts
//! `next_after` is strictly later than its argument and monotonic.
#![allow(missing_docs, clippy::unwrap_used)]

use bulwark_schedule::Calendar;
use jiff::{tz::TimeZone, Timestamp, Zoned};
use proptest::prelude::*;

/// Pieces of `OnCalendar` expressions, valid and not, for generating text
/// that gets past the tokenizer far more often than random bytes do.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("daily".to_owned()),
        Just("hourly".to_owned()),
        Just("minutely".to_owned()),
        Just("weekly".to_owned()),
        Just("monthly".to_owned()),
        Just("quarterly".to_owned()),
        Just("semiannually".to_owned()),
        Just("yearly".to_owned()),
        Just("UTC".to_owned()),
        Just("Europe/Berlin".to_owned()),
        Just("America/New_York".to_owned()),
        Just("Australia/Lord_Howe".to_owned()),
        Just("*-*-*".to_owned()),
        Just("*-02-29".to_owned()),
        Just("*-*-31".to_owned()),
        Just("*-*~01".to_owned()),
        "(Mon|Tue|Wed|Thu|Fri|Sat|Sun)(\\.\\.(Mon|Fri|Sun))?(,(Sat|Sun))?",
        "[0-9*]{1,2}:[0-9*]{1,2}(/[0-9]{1,2})?(:[0-9*]{1,2})?",
        "(\\*|[0-9]{1,2})(\\.\\.[0-9]{1,2})?:[0-5][0-9]",
        "(\\*|20[0-9]{2}(\\.\\.20[0-9]{2})?)-(\\*|[0-9]{1,2}(,[0-9]{1,2})*)-(\\*|[0-9]{1,2}(/[0-9]{1,2})?)",
        "[ -~]{0,6}",
    ]
}

fn expression() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..5).prop_map(|w| w.join(" "))
}

/// An instant between 1990 and 2100, in UTC or a zone with DST.
fn instant() -> impl Strategy<Value = Zoned> {
    (
        631_152_000i64..4_102_444_800i64,
        prop_oneof![
            Just("UTC"),
            Just("Europe/Berlin"),
            Just("America/New_York"),
            Just("Australia/Lord_Howe")
        ],
    )
        .prop_map(|(s, tz)| {
            Timestamp::from_second(s)
                .unwrap()
                .to_zoned(TimeZone::get(tz).unwrap())
        })
}

fn check_column(text: &str, cal: &Result<Calendar, bulwark_schedule::ScheduleError>) {
    if let Err(e) = cal {
        assert!(
            e.column() <= text.chars().count() + 1,
            "{text:?}: column {} past the end: {e}",
            e.column()
        );
        assert!(!e.to_string().is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_errs(text in "\\PC{0,40}") {
        let r = Calendar::parse(&text);
        check_column(&text, &r);
    }

    #[test]
    fn any_bytes_as_text(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        let text = String::from_utf8_lossy(&bytes);
        let r = Calendar::parse(&text);
        check_column(&text, &r);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn next_after_is_later_and_monotonic(expr in expression(), a in instant(), gap in 0i64..90_000_000) {
        let r = Calendar::parse(&expr);
        check_column(&expr, &r);
        let Ok(cal) = r else { return Ok(()); };
        let tz = a.time_zone().clone();
        let b = Timestamp::from_second(a.timestamp().as_second() + gap).unwrap().to_zoned(tz);
        let na = cal.next_after(a.clone());
        let nb = cal.next_after(b.clone());
        if let Some(na) = &na {
            prop_assert!(*na > a, "{expr}: next_after({a}) = {na}");
            // The next fire time after a fire time is later still.
            if let Some(nn) = cal.next_after(na.clone()) {
                prop_assert!(nn > *na, "{expr}: next_after({na}) = {nn}");
            }
        }
        if let Some(nb) = &nb {
            prop_assert!(*nb > b, "{expr}: next_after({b}) = {nb}");
            // a <= b  =>  next_after(a) <= next_after(b), and a fire time
            // exists after a whenever one exists after b.
            let na = na.as_ref();
            prop_assert!(na.is_some(), "{expr}: fires after {b} but not after {a}");
            prop_assert!(na.is_some_and(|na| na <= nb), "{expr}: next_after({a}) = {na:?} > next_after({b}) = {nb}");
        }
    }
}
