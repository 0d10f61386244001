//! The table-driven check shared by the config tests: each bad input must be
//! refused with its exact `line:column`, message and hint.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use bulwark_config::{parse, ConfigError, Diagnostic};

/// One bad input and what the first diagnostic must say.
pub struct Case {
    pub input: String,
    pub at: &'static str,
    pub message: &'static str,
    pub hint: &'static str,
}

pub fn case(
    input: impl Into<String>,
    at: &'static str,
    message: &'static str,
    hint: &'static str,
) -> Case {
    Case {
        input: input.into(),
        at,
        message,
        hint,
    }
}

/// Checks every case (at least `min` of them), listing all failures at once.
pub fn check_cases(cases: Vec<Case>, min: usize) {
    assert!(cases.len() >= min, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for Case {
        input,
        at,
        message,
        hint,
    } in cases
    {
        let err = match parse(&input, Path::new("bulwark.toml")) {
            Ok(_) => {
                failures.push(format!("accepted:\n{input}"));
                continue;
            }
            Err(e) => e.to_string(),
        };
        let first = err.lines().next().unwrap_or_default();
        let ok = first.starts_with(&format!("bulwark.toml:{at}: "))
            && first.contains(message)
            && err.lines().nth(1).unwrap_or_default().contains(hint);
        if !ok {
            failures.push(format!(
                "input:\n{input}\nexpected {at} `{message}` / hint `{hint}`\ngot:\n{err}\n"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}

/// All diagnostics of an input that must be invalid.
pub fn diagnostics(input: &str) -> Vec<Diagnostic> {
    match parse(input, Path::new("x.toml")) {
        Err(ConfigError::Invalid(d)) => d,
        other => panic!("expected Invalid, got {other:?}"),
    }
}
