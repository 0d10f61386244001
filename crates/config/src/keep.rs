//! restic-style durations for `keep_within`: `1y6m`, `30d`, `2d12h`.

use std::{fmt, str::FromStr};

/// A calendar span: years, months, days, hours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeepWithin {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
}

const HINT: &str = "expected e.g. 30d, 1y6m or 2d12h (units: y, m, d, h)";

/// Parses `1y6m`, `30d`, `2d12h`: one or more `<N><unit>` with units `y`, `m`,
/// `d`, `h`, each at most once. The error is a sentence, `; `, and a hint.
impl FromStr for KeepWithin {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err(format!("empty duration; {HINT}"));
        }
        let mut out = Self::default();
        let mut num = String::new();
        let mut seen = String::new();
        for c in s.chars() {
            if c.is_whitespace() {
                return Err(format!("`{s}` contains a space; {HINT}"));
            }
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: u32 = num
                .parse()
                .map_err(|_| format!("`{s}` is not a duration; {HINT}"))?;
            num.clear();
            if seen.contains(c) {
                return Err(format!("`{s}` gives `{c}` twice; {HINT}"));
            }
            seen.push(c);
            match c {
                'y' => out.years = n,
                'm' => out.months = n,
                'd' => out.days = n,
                'h' => out.hours = n,
                _ => return Err(format!("`{s}` has an unknown unit `{c}`; {HINT}")),
            }
        }
        if !num.is_empty() {
            return Err(format!("`{s}` ends without a unit; {HINT}"));
        }
        if out == Self::default() {
            return Err(format!("`{s}` is zero; {HINT}"));
        }
        Ok(out)
    }
}

/// The canonical form: units in the order y, m, d, h, zero parts left out.
impl fmt::Display for KeepWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{u}")?;
            }
        }
        Ok(())
    }
}
