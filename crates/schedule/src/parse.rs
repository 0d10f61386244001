//! `OnCalendar` text → [`Calendar`].
//!
//! Grammar (systemd.time(7), "Calendar Events"):
//!
//! ```text
//! calendar  = shorthand [tz] | [weekdays] [date] [time] [tz]   (at least one of the three)
//! shorthand = minutely | hourly | daily | weekly | monthly | yearly | annually
//!           | quarterly | semiannually
//! weekdays  = wd-item ("," wd-item)*        wd-item = name | name ".." name
//! date      = [year "-"] month ("-" | "~") day
//! time      = hour ":" minute [":" second]
//! year, month, day, hour, minute, second = item ("," item)*
//! item      = "*" | "*/" step | n | n "/" step | n ".." m | n ".." m "/" step
//! tz        = an IANA time zone name (`Europe/Berlin`, `UTC`)
//! ```
//!
//! A missing date is `*-*-*`; a missing time is `00:00:00`; missing seconds are
//! `00`. `~` counts days from the end of the month (`~1` = the last day).

use jiff::tz::TimeZone;

use super::calendar::{Calendar, Days, Item, MAX_YEAR, MIN_YEAR};
use super::error::ScheduleError;

const SHORTHANDS: [(&str, &str); 9] = [
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

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

const EXAMPLES: &str = "examples: `daily`, `*-*-* 02:00:00`, `Mon..Fri 03:00`, `*:0/15`";

/// A numeric field of the date or time.
#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    hint: &'static str,
}

const YEAR: Field = Field {
    name: "year",
    min: MIN_YEAR,
    max: MAX_YEAR,
    hint: "write the year with four digits, or `*` for any year",
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    hint: "months are numbers: `*-03-01` is March 1st",
};
const DAY: Field = Field {
    name: "day",
    min: 1,
    max: 31,
    hint: "days of the month are 1-31; `*-*~1` is the last day",
};
const DAY_FROM_END: Field = Field {
    name: "day counted from the month's end",
    min: 1,
    max: 31,
    hint: "`~1` is the last day, `~2` the one before",
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    hint: "write midnight as `00:00`",
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    hint: "`*:0/15` is every 15 minutes",
};
const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    hint: "seconds are whole numbers 0-59",
};

/// A whitespace-separated word of the expression.
#[derive(Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    /// Byte offset in the whole expression.
    at: usize,
}

struct Ctx<'a> {
    expr: &'a str,
}

impl Ctx<'_> {
    /// An error about `word`, pointing at byte `offset` inside it.
    fn err(
        &self,
        word: Word<'_>,
        offset: usize,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> ScheduleError {
        let byte = (word.at + offset).min(self.expr.len());
        let column = self.expr.get(..byte).map_or(1, |s| s.chars().count() + 1);
        ScheduleError::syntax(column, word.text, message, hint)
    }
}

fn words(s: &str) -> Vec<Word<'_>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(st)) => {
                out.push(Word {
                    text: &s[st..i],
                    at: st,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(st) = start {
        out.push(Word {
            text: &s[st..],
            at: st,
        });
    }
    out
}

impl Calendar {
    /// Parse a systemd `OnCalendar` expression.
    ///
    /// Supported: the shorthands `minutely`, `hourly`, `daily`, `weekly`,
    /// `monthly`, `yearly`/`annually`, `quarterly`, `semiannually`; the full
    /// form `[weekdays] [date] [time] [time zone]` with `*`, lists `a,b`,
    /// ranges `a..b`, repetitions `a/step` and `a..b/step`, weekday names
    /// (`Mon`, `monday`) and ranges (`Mon..Fri`), `~` for days counted from
    /// the end of the month, and a trailing IANA zone name (`Europe/Berlin`,
    /// `UTC`). Not supported: fractional seconds, two-digit years.
    ///
    /// ```
    /// use bulwark_schedule::Calendar;
    /// assert!(Calendar::parse("Mon..Fri 03:00").is_ok());
    /// let err = Calendar::parse("25:00").unwrap_err();
    /// assert_eq!(err.to_string(), "`25:00` (column 1): hour must be 0-23, not 25; write midnight as `00:00`");
    /// ```
    pub fn parse(expr: &str) -> Result<Calendar, ScheduleError> {
        let ctx = Ctx { expr };
        let mut ws = words(expr);
        let Some(&last) = ws.last() else {
            return Err(ScheduleError::syntax(
                1,
                expr,
                "empty calendar expression",
                EXAMPLES,
            ));
        };

        // A trailing time zone: a word starting with a letter that isn't the first word.
        let mut tz = None;
        if ws.len() > 1 && last.text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            tz = Some(parse_tz(&ctx, last)?);
            ws.pop();
        }

        // Shorthands.
        if let Some(&(_, full)) = ws.first().and_then(|w| {
            SHORTHANDS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(w.text))
        }) {
            if let Some(extra) = ws.get(1) {
                return Err(ctx.err(
                    *extra,
                    0,
                    format!("`{}` is a complete schedule; nothing may follow it except a time zone", ws[0].text),
                    format!(
                        "write it out instead, e.g. `*-*-* 02:00:00` for daily at 2am (`{}` = `{full}`)",
                        ws[0].text
                    ),
                ));
            }
            let mut cal = parse_full(&ctx, &words(full), expr)?;
            cal.tz = tz;
            return Ok(cal);
        }

        let mut cal = parse_full(&ctx, &ws, expr)?;
        cal.tz = tz;
        Ok(cal)
    }
}

fn parse_full(ctx: &Ctx<'_>, ws: &[Word<'_>], expr: &str) -> Result<Calendar, ScheduleError> {
    let mut weekdays = None;
    let mut date: Option<(Option<Vec<Item>>, u16, Days)> = None;
    let mut time: Option<(u32, u64, u64)> = None;
    for (i, &w) in ws.iter().enumerate() {
        if w.text.starts_with(|c: char| c.is_ascii_alphabetic()) {
            if i > 0 {
                return Err(ctx.err(
                    w,
                    0,
                    "a weekday must be the first word",
                    "order is `[weekdays] [date] [time] [time zone]`, e.g. `Mon..Fri *-*-* 03:00`",
                ));
            }
            weekdays = Some(parse_weekdays(ctx, w)?);
        } else if w.text.contains(':') {
            if time.is_some() {
                return Err(ctx.err(
                    w,
                    0,
                    "a second time",
                    "list several times with commas: `02,14:00`",
                ));
            }
            time = Some(parse_time(ctx, w)?);
        } else if w.text.contains(['-', '~']) {
            if time.is_some() {
                return Err(ctx.err(
                    w,
                    0,
                    "the date must come before the time",
                    "e.g. `*-*-01 02:00`",
                ));
            }
            if date.is_some() {
                return Err(ctx.err(
                    w,
                    0,
                    "a second date",
                    "list several days with commas: `*-*-01,15`",
                ));
            }
            date = Some(parse_date(ctx, w)?);
        } else {
            return Err(ctx.err(
                w,
                0,
                "expected a weekday, a date (`YYYY-MM-DD`, `*-*-*`) or a time (`HH:MM[:SS]`)",
                "a lone number is ambiguous: write `02:00` for a time or `*-*-02` for a day",
            ));
        }
    }
    let (years, months, days) = date.unwrap_or((None, 0x1ffe, Days::Forward(0xffff_fffe)));
    let (hours, minutes, seconds) = time.unwrap_or((1, 1, 1));
    Ok(Calendar {
        source: expr.trim().to_string(),
        weekdays: weekdays.unwrap_or(0x7f),
        years,
        months,
        days,
        hours,
        minutes,
        seconds,
        tz: None,
    })
}

fn parse_tz(ctx: &Ctx<'_>, w: Word<'_>) -> Result<TimeZone, ScheduleError> {
    if let Ok(tz) = TimeZone::get(w.text) {
        return Ok(tz);
    }
    let lower = w.text.to_ascii_lowercase();
    let hint = if SHORTHANDS.iter().any(|(n, _)| *n == lower) {
        format!(
            "`{}` must be the only word (a time zone may follow it)",
            w.text
        )
    } else if weekday_index(&lower).is_some() || w.text.contains("..") {
        "weekdays must come first: `Mon..Fri *-*-* 03:00`".to_string()
    } else {
        let names = jiff::tz::db().available();
        match closest(w.text, names.map(|n| n.as_str().to_string())) {
            Some(n) => format!("did you mean `{n}`?"),
            None => "use an IANA name such as `Europe/Berlin` or `UTC`".to_string(),
        }
    };
    Err(ctx.err(w, 0, "unknown time zone", hint))
}

fn weekday_index(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    WEEKDAYS
        .iter()
        .position(|full| *full == lower || full[..3] == lower)
        .map(|i| i as u32)
}

fn parse_weekdays(ctx: &Ctx<'_>, w: Word<'_>) -> Result<u8, ScheduleError> {
    let mut mask = 0u8;
    let mut offset = 0;
    for part in w.text.split(',') {
        let (a, b) = match part.split_once("..") {
            Some((a, b)) => (a, Some(b)),
            None => (part, None),
        };
        let day = |name: &str, off: usize| {
            weekday_index(name).ok_or_else(|| {
                let abbrev = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
                let all = abbrev
                    .iter()
                    .map(|s| s.to_string())
                    .chain(SHORTHANDS.iter().map(|(n, _)| n.to_string()));
                let hint = if name.contains('-') {
                    "weekday ranges use `..`: `Mon..Fri`".to_string()
                } else if let Some(s) = closest(name, all) {
                    format!("did you mean `{s}`?")
                } else {
                    format!("weekdays are `Mon`..`Sun` (or full names); {EXAMPLES}")
                };
                let what = if b.is_none() && !w.text.contains(',') {
                    "expected a weekday (`Mon`, `Tue`, ...) or a shorthand (`daily`, `weekly`, ...)"
                } else {
                    "expected a weekday (`Mon`, `Tue`, ...)"
                };
                ctx.err(w, off, format!("{what}, found `{name}`"), hint)
            })
        };
        let start = day(a, offset)?;
        let end = match b {
            Some(b) => day(b, offset + a.len() + 2)?,
            None => start,
        };
        if end < start {
            return Err(ctx.err(
                w,
                offset,
                format!("weekday range `{part}` runs backwards"),
                format!(
                    "ranges don't wrap around the week: write `{a}..Sun,Mon..{b}`",
                    b = b.unwrap_or("")
                ),
            ));
        }
        for d in start..=end {
            mask |= 1 << d;
        }
        offset += part.len() + 1;
    }
    Ok(mask)
}

/// Parse `H:M[:S]`.
fn parse_time(ctx: &Ctx<'_>, w: Word<'_>) -> Result<(u32, u64, u64), ScheduleError> {
    let parts = split_offsets(w.text, &[':']);
    if parts.len() > 3 || parts.len() < 2 {
        return Err(ctx.err(
            w,
            0,
            "a time is `HH:MM` or `HH:MM:SS`",
            "e.g. `02:00`, `*:0/15`, `03:30:00`",
        ));
    }
    let h = mask(&parse_list(ctx, w, parts[0], HOUR)?, HOUR);
    let m = mask(&parse_list(ctx, w, parts[1], MINUTE)?, MINUTE);
    let s = match parts.get(2) {
        Some(&p) => mask(&parse_list(ctx, w, p, SECOND)?, SECOND),
        None => 1,
    };
    Ok((h as u32, m, s))
}

/// Parse `[Y-]M(-|~)D`.
fn parse_date(ctx: &Ctx<'_>, w: Word<'_>) -> Result<(Option<Vec<Item>>, u16, Days), ScheduleError> {
    let parts = split_offsets(w.text, &['-', '~']);
    let tilde = w.text.find('~');
    if w.text.matches('~').count() > 1
        || tilde.is_some_and(|t| parts.last().is_some_and(|(off, _)| *off != t + 1))
    {
        return Err(ctx.err(
            w,
            tilde.unwrap_or(0),
            "`~` may only separate the month from the day",
            "`*-*~1` is the last day of every month",
        ));
    }
    let (year, month, day) = match parts.as_slice() {
        [m, d] => (None, *m, *d),
        [y, m, d] => (Some(*y), *m, *d),
        _ => {
            let hint = if w.text.starts_with(|c: char| c.is_ascii_alphabetic()) {
                "weekday ranges use `..`: `Mon..Fri`"
            } else {
                "a date is `YYYY-MM-DD`, `MM-DD` or `*-*-*`"
            };
            return Err(ctx.err(w, 0, "a date has two or three parts separated by `-`", hint));
        }
    };
    let years = match year {
        Some(y) => Some(parse_list(ctx, w, y, YEAR)?).filter(|items| !is_any(items, YEAR)),
        None => None,
    };
    let months = mask(&parse_list(ctx, w, month, MONTH)?, MONTH) as u16;
    let days = if tilde.is_some() {
        let items = parse_list(ctx, w, day, DAY_FROM_END)?;
        if is_any(&items, DAY_FROM_END) {
            Days::Forward(mask(&items, DAY) as u32)
        } else {
            Days::FromEnd(items)
        }
    } else {
        Days::Forward(mask(&parse_list(ctx, w, day, DAY)?, DAY) as u32)
    };
    Ok((years, months, days))
}

/// `*` alone (any value).
fn is_any(items: &[Item], f: Field) -> bool {
    items.len() == 1 && items[0].start == f.min && items[0].end.is_none() && items[0].step == 1
}

/// Split on any of `seps`, keeping each piece's byte offset.
fn split_offsets<'a>(s: &'a str, seps: &[char]) -> Vec<(usize, &'a str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if seps.contains(&c) {
            out.push((start, &s[start..i]));
            start = i + c.len_utf8();
        }
    }
    out.push((start, &s[start..]));
    out
}

/// Parse a comma list of items for one field; `part` is `(offset in word, text)`.
fn parse_list(
    ctx: &Ctx<'_>,
    w: Word<'_>,
    part: (usize, &str),
    f: Field,
) -> Result<Vec<Item>, ScheduleError> {
    let (base, text) = part;
    let mut out = Vec::new();
    for (off, item) in split_offsets(text, &[',']) {
        out.push(parse_item(ctx, w, base + off, item, f)?);
    }
    Ok(out)
}

fn parse_item(
    ctx: &Ctx<'_>,
    w: Word<'_>,
    at: usize,
    text: &str,
    f: Field,
) -> Result<Item, ScheduleError> {
    let (body, step) = match text.split_once('/') {
        Some((b, s)) => (b, Some((b.len() + 1, s))),
        None => (text, None),
    };
    let step = match step {
        None => 0,
        Some((off, s)) => {
            let n = number(ctx, w, at + off, s, "repetition")?;
            if n == 0 {
                return Err(ctx.err(
                    w,
                    at + off,
                    "repetition must be at least 1",
                    "`*:0/15` is every 15 minutes",
                ));
            }
            n
        }
    };
    if body == "*" {
        return Ok(Item {
            start: f.min,
            end: None,
            step: step.max(1),
        });
    }
    let (start, end) = match body.split_once("..") {
        Some((a, b)) => {
            let start = value(ctx, w, at, a, f)?;
            let end = value(ctx, w, at + a.len() + 2, b, f)?;
            // `~` ranges may be written either way round (`~7..1`, `~1..7`), as in systemd.
            if end < start && f.name != DAY_FROM_END.name {
                return Err(ctx.err(
                    w,
                    at,
                    format!("{} range `{body}` runs backwards", f.name),
                    "write the smaller value first: `a..b`",
                ));
            }
            (start, Some(end))
        }
        None => (value(ctx, w, at, body, f)?, None),
    };
    Ok(Item { start, end, step })
}

fn value(
    ctx: &Ctx<'_>,
    w: Word<'_>,
    at: usize,
    text: &str,
    f: Field,
) -> Result<u32, ScheduleError> {
    let n = number(ctx, w, at, text, f.name)?;
    if n < f.min || n > f.max {
        return Err(ctx.err(
            w,
            at,
            format!("{} must be {}-{}, not {n}", f.name, f.min, f.max),
            f.hint,
        ));
    }
    Ok(n)
}

fn number(
    ctx: &Ctx<'_>,
    w: Word<'_>,
    at: usize,
    text: &str,
    what: &str,
) -> Result<u32, ScheduleError> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse::<u32>() {
            return Ok(n);
        }
    }
    let hint = if text.contains('.') && !text.contains("..") {
        "fractional values are not supported; ranges are written `a..b`"
    } else if text.is_empty() {
        "a part is missing; use `*` for any value"
    } else {
        "use a number, `*`, a list `a,b`, a range `a..b` or a repetition `a/step`"
    };
    Err(ctx.err(
        w,
        at,
        format!("expected a number for the {what}, found `{text}`"),
        hint,
    ))
}

/// A bit mask of the values the items produce (bit `v` = value `v`).
fn mask(items: &[Item], f: Field) -> u64 {
    let mut m = 0u64;
    for i in items {
        let mut v = i.start;
        while let Some(n) = i.next_at_least(v, f.max) {
            m |= 1 << n;
            v = n + 1;
        }
    }
    m
}

/// The candidate closest to `word` by edit distance, if close enough to be a typo.
fn closest(word: &str, candidates: impl Iterator<Item = String>) -> Option<String> {
    let w = word.to_ascii_lowercase();
    candidates
        .map(|c| (levenshtein(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}
