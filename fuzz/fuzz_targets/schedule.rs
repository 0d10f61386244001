//! The schedule parser: never panics; for a parsed calendar, `next_after` is
//! strictly after its argument and monotonic (the next fire time after a
//! fire time is later still).
#![no_main]

use bulwark_schedule::Calendar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first 4 bytes choose the starting instant, the rest is the text.
    if data.len() < 4 {
        return;
    }
    let Ok(text) = std::str::from_utf8(&data[4..]) else {
        return;
    };
    let Ok(cal) = Calendar::parse(text) else {
        return;
    };
    let secs = i64::from(u32::from_le_bytes([data[0], data[1], data[2], data[3]]));
    // 1970..2106, in the calendar's zone or UTC.
    let Ok(ts) = jiff::Timestamp::from_second(secs) else {
        return;
    };
    let tz = cal.time_zone().cloned().unwrap_or(jiff::tz::TimeZone::UTC);
    let mut t = ts.to_zoned(tz);
    for _ in 0..4 {
        let Some(next) = cal.next_after(t.clone()) else {
            break;
        };
        assert!(next > t, "{text:?}: next_after({t}) = {next}");
        t = next;
    }
});
