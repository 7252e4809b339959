//! Shared pieces of Twilio's JSON representations: timestamps and enum
//! values.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::ApiError;

/// A timestamp in µs since the Unix epoch as Twilio writes them: ISO 8601
/// in UTC, whole seconds (`2020-07-01T22:18:37Z`).
pub fn iso8601(micros: u64) -> String {
    let secs = (micros / 1_000_000) as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| {
            // Unreachable for any time the engine stamps (µs since 1970
            // fit the supported range until year 9999); say so loudly
            // instead of answering garbage.
            tracing::error!(micros, "timestamp outside the representable range");
            "9999-12-31T23:59:59Z".to_owned()
        })
}

/// Parses an ISO 8601 / RFC 3339 date-time parameter
/// (`2020-07-01T22:18:37Z`, any offset, fractions of a second kept) into
/// µs since the Unix epoch, refusing (400, naming `name`) anything else
/// or a time before 1970.
pub fn parse_iso8601(name: &str, raw: &str) -> Result<u64, ApiError> {
    let t = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            ApiError::invalid(name, format!("{raw:?} is not an ISO 8601 date-time: {e}"))
        })?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000)
        .map_err(|_| ApiError::invalid(name, format!("{raw:?} is before 1970")))
}

/// A serde enum value as its JSON string (`active`, `sms`, …).
pub fn enum_str<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Parses Twilio's string for an enum parameter (`State=closed`), refusing
/// (400, naming `name`) anything the enum does not name.
pub fn parse_enum<T: DeserializeOwned>(name: &str, raw: &str) -> Result<T, ApiError> {
    serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|_| ApiError::invalid(name, format!("{raw:?} is not an allowed value")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_whole_second_utc() {
        assert_eq!(iso8601(1_593_641_917_123_456), "2020-07-01T22:18:37Z");
    }

    #[test]
    fn date_time_parameters_parse_to_micros_and_refuse_other_text() {
        assert_eq!(
            parse_iso8601("T", "2020-07-01T22:18:37.5Z").unwrap(),
            1_593_641_917_500_000
        );
        assert_eq!(
            parse_iso8601("T", "2020-07-01T23:18:37+01:00").unwrap(),
            1_593_641_917_000_000
        );
        assert!(parse_iso8601("T", "yesterday").is_err());
        assert!(parse_iso8601("T", "1969-12-31T23:59:59Z").is_err());
    }
}
