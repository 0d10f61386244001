//! The hub's request-path parser: never panics, and every path it accepts
//! round-trips (printing what it addresses and parsing that again gives the
//! same target).
#![no_main]

use bulwark_hub::route::{parse, Target};
use libfuzzer_sys::fuzz_target;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(repo: &str) -> String {
    repo.split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

fn print(t: &Target) -> String {
    match t {
        Target::Metrics => "/metrics".to_owned(),
        Target::Repo(r) => format!("/{}/", enc(&r.to_string())),
        Target::Config(r) => format!("/{}/config", enc(&r.to_string())),
        Target::List(r, t) => format!("/{}/{t}/", enc(&r.to_string())),
        Target::File(r, t, n) => format!("/{}/{t}/{n}", enc(&r.to_string())),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(target) = parse(raw) {
        let again = print(&target);
        assert_eq!(parse(&again).as_ref(), Ok(&target), "{raw:?} -> {again:?}");
    }
});
