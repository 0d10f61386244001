//! The config reader (`bulwark_config::parse`: TOML text → Config or
//! diagnostics): never panics, and a refusal always lists at least one
//! diagnostic, each with a line number inside the text.
#![no_main]

use bulwark_config::ConfigError;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The origin's directory is the base for relative secret files; keep it
    // somewhere that holds none.
    let origin = std::path::Path::new("/nonexistent-bulwark-fuzz/bulwark.toml");
    match bulwark_config::parse(text, origin) {
        Ok(_) => {}
        Err(ConfigError::Invalid(diags)) => {
            assert!(!diags.is_empty(), "refused without a diagnostic: {text:?}");
            let lines = text.split('\n').count().max(1);
            for d in &diags {
                assert!(
                    d.line >= 1 && d.line <= lines,
                    "line {} of {lines}: {d}",
                    d.line
                );
            }
        }
        Err(other) => panic!("parse returned {other:?}"),
    }
});
