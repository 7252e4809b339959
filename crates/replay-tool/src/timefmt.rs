//! RFC 3339 times: how `--time`/`--from-time`/`--to-time` are read and how
//! `recorded_at` (microseconds since the Unix epoch) is shown.

use events::TimestampMicros;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Microseconds per second.
const MICROS_PER_SECOND: i128 = 1_000_000;
/// Nanoseconds per microsecond.
const NANOS_PER_MICRO: i128 = 1_000;

/// Parses an RFC 3339 time (`2026-11-21T22:04:27Z`, fractions and offsets
/// allowed) into microseconds since the Unix epoch, rounded down.
pub fn parse_rfc3339(s: &str) -> Result<TimestampMicros, String> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|e| format!("{s:?} is not an RFC 3339 time (e.g. 2026-11-21T22:04:27Z): {e}"))?;
    let micros = t.unix_timestamp_nanos().div_euclid(NANOS_PER_MICRO);
    u64::try_from(micros).map_err(|_| format!("{s:?} is before 1970"))
}

/// Formats microseconds since the Unix epoch as RFC 3339 UTC with
/// microseconds, e.g. `2026-11-21T22:04:27.123456Z`.
pub fn format_micros(micros: TimestampMicros) -> String {
    let nanos = i128::from(micros) * NANOS_PER_MICRO;
    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => {
            let base = t
                .replace_nanosecond(0)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default();
            // `…:SSZ` → `…:SS.ffffffZ`
            let frac = i128::from(micros) % MICROS_PER_SECOND;
            match base.strip_suffix('Z') {
                Some(head) => format!("{head}.{frac:06}Z"),
                None => base,
            }
        }
        Err(_) => format!("{micros}us"),
    }
}

/// A span of microseconds as a short human duration (`1h 2m 3.5s`).
pub fn format_span(micros: u64) -> String {
    let total_s = micros / 1_000_000;
    let frac = (micros % 1_000_000) / 100_000;
    let (h, m, s) = (total_s / 3600, (total_s / 60) % 60, total_s % 60);
    if h > 0 {
        format!("{h}h {m}m {s}.{frac}s")
    } else if m > 0 {
        format!("{m}m {s}.{frac}s")
    } else {
        format!("{s}.{frac}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_offsets() {
        let micros = parse_rfc3339("2026-11-21T22:04:27.123456Z").unwrap();
        assert_eq!(format_micros(micros), "2026-11-21T22:04:27.123456Z");
        assert_eq!(
            parse_rfc3339("2026-11-21T23:04:27.123456+01:00").unwrap(),
            micros
        );
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000Z");
        assert!(parse_rfc3339("yesterday").is_err());
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_err());
        assert_eq!(format_span(3_723_500_000), "1h 2m 3.5s");
    }
}
