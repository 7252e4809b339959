//! ISO 8601 durations, as Twilio takes conversation timers
//! (`Timers.Inactive=PT1M`, `Timers.Closed=PT10M`), read into the
//! microseconds [`crate::Timers`] holds.
//!
//! Accepted: `P[nW]` or `P[nD][T[nH][nM][n[.f]S]]`, each number a run of
//! ASCII digits (the seconds may have up to six fractional digits; one
//! microsecond is the unit), at least one component, and no `T` without a
//! time component after it. Years and months are refused: their length
//! depends on the calendar, and a timer is a fixed span.

use crate::model::Timers;

/// The longest duration text read, in bytes. Ours: the longest meaningful
/// duration (`P` and four components of 20 digits) is under 100 bytes;
/// anything longer is not a timer.
pub const DURATION_TEXT_BYTES_MAX: usize = 128;

/// Why a duration text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Longer than [`DURATION_TEXT_BYTES_MAX`].
    #[error("the duration is {len} bytes long (max {max})")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not an ISO 8601 duration of the accepted form (see the module docs).
    #[error("{text:?} is not an ISO 8601 duration such as PT10M: {reason}")]
    Malformed {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// It names years or months, whose length is not fixed.
    #[error("{text:?} names years or months, whose length is not fixed: use weeks, days or less")]
    CalendarUnit {
        /// The text given.
        text: String,
    },
    /// More than `u64::MAX` microseconds.
    #[error("{text:?} is longer than this engine can time")]
    Overflow {
        /// The text given.
        text: String,
    },
}

const MICROS_PER_SECOND: u64 = 1_000_000;
const FRACTION_DIGITS_MAX: usize = 6;

/// Reads an ISO 8601 duration (`PT1M`, `P1DT12H`, `PT0.5S`, `P2W`) as
/// microseconds.
///
/// Errors: [`DurationError`]: too long, malformed, years or months, or
/// more than `u64::MAX` µs.
pub fn parse_iso8601_duration_micros(text: &str) -> Result<u64, DurationError> {
    if text.len() > DURATION_TEXT_BYTES_MAX {
        return Err(DurationError::TooLong {
            len: text.len(),
            max: DURATION_TEXT_BYTES_MAX,
        });
    }
    let malformed = |reason| DurationError::Malformed {
        text: text.to_string(),
        reason,
    };
    let overflow = || DurationError::Overflow {
        text: text.to_string(),
    };
    let rest = text
        .strip_prefix('P')
        .ok_or_else(|| malformed("it must start with P"))?;
    let (date, time) = match rest.split_once('T') {
        Some((_, "")) => {
            return Err(malformed(
                "a T must be followed by hours, minutes or seconds",
            ))
        }
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut total: u64 = 0;
    let mut components = 0;
    let mut add = |micros: u64| -> Result<(), DurationError> {
        components += 1;
        total = total.checked_add(micros).ok_or_else(overflow)?;
        Ok(())
    };
    // Date part: the units in the order ISO 8601 writes them.
    let mut unit_rank = 0;
    for (number, unit) in components_of(date).map_err(malformed)? {
        let (rank, micros_per) = match unit {
            'Y' | 'M' => {
                return Err(DurationError::CalendarUnit {
                    text: text.to_string(),
                })
            }
            'W' => (1, 7 * 24 * 3_600 * MICROS_PER_SECOND),
            'D' => (2, 24 * 3_600 * MICROS_PER_SECOND),
            _ => return Err(malformed("a date unit must be W or D")),
        };
        if rank <= unit_rank {
            return Err(malformed("units must appear once each, largest first"));
        }
        unit_rank = rank;
        let whole = whole_number(number).map_err(malformed)?;
        add(whole.checked_mul(micros_per).ok_or_else(overflow)?)?;
    }
    let mut unit_rank = 0;
    for (number, unit) in components_of(time.unwrap_or("")).map_err(malformed)? {
        let (rank, micros_per) = match unit {
            'H' => (1, 3_600 * MICROS_PER_SECOND),
            'M' => (2, 60 * MICROS_PER_SECOND),
            'S' => (3, MICROS_PER_SECOND),
            _ => return Err(malformed("a time unit must be H, M or S")),
        };
        if rank <= unit_rank {
            return Err(malformed("units must appear once each, largest first"));
        }
        unit_rank = rank;
        let micros = if unit == 'S' {
            seconds_micros(number).map_err(malformed)?
        } else {
            whole_number(number)
                .map_err(malformed)?
                .checked_mul(micros_per)
                .ok_or_else(overflow)?
        };
        add(micros)?;
    }
    if components == 0 {
        return Err(malformed("it names no component"));
    }
    Ok(total)
}

/// [`crate::Timers`] from Twilio's `Timers.Inactive` and `Timers.Closed`
/// texts (`None`: that timer is not set). Minimums are the engine's to
/// enforce, on the command.
///
/// Errors: as [`parse_iso8601_duration_micros`], for the first text that
/// is refused.
pub fn timers_from_iso8601(
    inactive: Option<&str>,
    closed: Option<&str>,
) -> Result<Timers, DurationError> {
    Ok(Timers {
        inactive_micros: inactive.map(parse_iso8601_duration_micros).transpose()?,
        closed_micros: closed.map(parse_iso8601_duration_micros).transpose()?,
    })
}

/// Splits `s` into (number, unit letter) pairs.
fn components_of(s: &str) -> Result<Vec<(&str, char)>, &'static str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_uppercase() {
            if i == start {
                return Err("a unit must follow a number");
            }
            out.push((&s[start..i], c));
            start = i + 1;
        } else if !(c.is_ascii_digit() || c == '.') {
            return Err("only digits and unit letters may appear");
        }
    }
    if start != s.len() {
        return Err("a number must be followed by its unit");
    }
    Ok(out)
}

fn whole_number(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("only seconds may have a fraction");
    }
    s.parse::<u64>().map_err(|_| "a number is too large")
}

fn seconds_micros(s: &str) -> Result<u64, &'static str> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if s.ends_with('.') {
        return Err("a fraction needs digits after the point");
    }
    if fraction.len() > FRACTION_DIGITS_MAX {
        return Err("seconds have at most six fractional digits (one microsecond)");
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a fraction has one point and digits");
    }
    let whole = whole_number(whole)?;
    let mut fraction_micros = 0u64;
    for (i, b) in fraction.bytes().enumerate() {
        fraction_micros += u64::from(b - b'0') * 10u64.pow((FRACTION_DIGITS_MAX - 1 - i) as u32);
    }
    whole
        .checked_mul(MICROS_PER_SECOND)
        .and_then(|m| m.checked_add(fraction_micros))
        .ok_or("a number is too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = MICROS_PER_SECOND;

    #[test]
    fn twilios_examples_and_the_usual_forms_read() {
        assert_eq!(parse_iso8601_duration_micros("PT1M"), Ok(60 * S));
        assert_eq!(parse_iso8601_duration_micros("PT10M"), Ok(600 * S));
        assert_eq!(parse_iso8601_duration_micros("P1DT12H"), Ok(36 * 3_600 * S));
        assert_eq!(
            parse_iso8601_duration_micros("P2W"),
            Ok(14 * 24 * 3_600 * S)
        );
        assert_eq!(
            parse_iso8601_duration_micros("PT1H30M15.5S"),
            Ok((5_415 * S) + S / 2)
        );
        assert_eq!(parse_iso8601_duration_micros("PT0.000001S"), Ok(1));
        assert_eq!(
            timers_from_iso8601(Some("PT1M"), None),
            Ok(Timers {
                inactive_micros: Some(60 * S),
                closed_micros: None
            })
        );
    }

    #[test]
    fn malformed_durations_are_typed_errors() {
        for bad in [
            "",
            "P",
            "PT",
            "1M",
            "PTM",
            "PT1",
            "PT1.5M",
            "PT1M1H",
            "PT1M1M",
            "PT1S.",
            "PT.5S",
            "PT0.0000001S",
            "P1D2",
            "PT-1M",
            "pt1m",
            "P1H",
        ] {
            assert!(
                matches!(
                    parse_iso8601_duration_micros(bad),
                    Err(DurationError::Malformed { .. })
                ),
                "{bad:?}: {:?}",
                parse_iso8601_duration_micros(bad)
            );
        }
        assert!(matches!(
            parse_iso8601_duration_micros("P1M"),
            Err(DurationError::CalendarUnit { .. })
        ));
        assert!(matches!(
            parse_iso8601_duration_micros("P1Y"),
            Err(DurationError::CalendarUnit { .. })
        ));
        assert!(matches!(
            parse_iso8601_duration_micros("PT99999999999999999H"),
            Err(DurationError::Overflow { .. })
        ));
        let long = format!("PT{}S", "1".repeat(DURATION_TEXT_BYTES_MAX));
        assert!(matches!(
            parse_iso8601_duration_micros(&long),
            Err(DurationError::TooLong { .. })
        ));
    }
}
