//! Errors of the schedule module.

use std::fmt;

/// A calendar expression could not be used.
///
/// `Display` is one sentence naming the offending piece, its column and what
/// was expected, followed by a hint; [`ScheduleError::column`],
/// [`ScheduleError::message`] and [`ScheduleError::hint`] give the parts
/// separately (the config crate turns them into a file:line:column diagnostic).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The expression is not valid `OnCalendar` syntax.
    #[error("{}", Syntax(self))]
    Syntax {
        /// 1-based column (in characters) of the offending piece.
        column: usize,
        /// The whitespace-separated word the problem is in.
        fragment: String,
        /// What is wrong / what was expected.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The expression is valid but no fire time exists after the given instant
    /// (`*-02-30`, or only years in the past).
    #[error(
        "`{expr}` never fires; check the date (is the day in that month, is the year in the past?)"
    )]
    NeverFires {
        /// The expression as written.
        expr: String,
    },
    /// The expression fires, but not within the checked horizon.
    #[error("`{expr}` does not fire within {years} years (first time: {first}); check the date and weekday")]
    TooRare {
        /// The expression as written.
        expr: String,
        /// The horizon that was checked.
        years: i16,
        /// The first fire time, RFC 9557 formatted.
        first: String,
    },
}

impl ScheduleError {
    /// 1-based column of a syntax error (1 for errors about the whole expression).
    pub fn column(&self) -> usize {
        match self {
            Self::Syntax { column, .. } => *column,
            _ => 1,
        }
    }

    /// The error without its hint.
    pub fn message(&self) -> String {
        match self {
            Self::Syntax {
                fragment, message, ..
            } => format!("`{fragment}`: {message}"),
            other => other.to_string(),
        }
    }

    /// How to fix it, if there is something to say.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Syntax { hint, .. } if !hint.is_empty() => Some(hint),
            _ => None,
        }
    }

    pub(crate) fn syntax(
        column: usize,
        fragment: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self::Syntax {
            column,
            fragment: fragment.to_string(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Display helper for [`ScheduleError::Syntax`].
struct Syntax<'a>(&'a ScheduleError);

impl fmt::Display for Syntax<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ScheduleError::Syntax {
            column,
            fragment,
            message,
            hint,
        } = self.0
        {
            write!(f, "`{fragment}` (column {column}): {message}")?;
            if !hint.is_empty() {
                write!(f, "; {hint}")?;
            }
        }
        Ok(())
    }
}
