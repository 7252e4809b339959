//! Field validation shared by the command handlers. Every limit comes from
//! [`events::limits`].

use events::limits::*;
use events::{Media, Timers};

use super::CommandError;

/// `s` has at most `max` characters and is not empty.
pub(crate) fn text(field: &'static str, s: &str, max: usize) -> Result<(), CommandError> {
    if s.is_empty() {
        return Err(CommandError::Invalid {
            field,
            reason: "must not be empty".into(),
        });
    }
    at_most(field, s.chars().count(), max, "chars")
}

/// `len` (counted in `unit`: `bytes`, `chars` or `items`) is at most
/// `max`; otherwise [`CommandError::TooLong`] naming `field`.
pub(crate) fn at_most(
    field: &'static str,
    len: usize,
    max: usize,
    unit: &'static str,
) -> Result<(), CommandError> {
    if len > max {
        return Err(CommandError::TooLong {
            field,
            len,
            max,
            unit,
        });
    }
    Ok(())
}

/// An optional [`text`].
pub(crate) fn opt_text(
    field: &'static str,
    s: Option<&str>,
    max: usize,
) -> Result<(), CommandError> {
    s.map_or(Ok(()), |s| text(field, s, max))
}

/// JSON `attributes` of at most `max` bytes; `None` becomes `{}`.
pub(crate) fn attributes(
    field: &'static str,
    s: Option<&str>,
    max: usize,
) -> Result<String, CommandError> {
    let Some(s) = s else {
        return Ok("{}".to_string());
    };
    at_most(field, s.len(), max, "bytes")?;
    serde_json::from_str::<serde::de::IgnoredAny>(s).map_err(|e| {
        CommandError::AttributesNotJson {
            field,
            reason: e.to_string(),
        }
    })?;
    Ok(s.to_string())
}

/// A message body (bytes, may be absent) and its media list.
pub(crate) fn body_and_media(body: Option<&str>, media: &[Media]) -> Result<(), CommandError> {
    if let Some(b) = body {
        at_most("body", b.len(), BODY_BYTES_MAX, "bytes")?;
    }
    at_most("media", media.len(), MEDIA_PER_MESSAGE_MAX, "items")?;
    for m in media {
        bytes("media.content_type", &m.content_type, MEDIA_FIELD_BYTES_MAX)?;
        if let Some(f) = &m.filename {
            bytes("media.filename", f, MEDIA_FIELD_BYTES_MAX)?;
        }
    }
    if body.is_none_or(str::is_empty) && media.is_empty() {
        return Err(CommandError::Invalid {
            field: "body",
            reason: "a message needs a body or media".into(),
        });
    }
    Ok(())
}

/// `s` has at most `max` bytes and is not empty.
pub(crate) fn bytes(field: &'static str, s: &str, max: usize) -> Result<(), CommandError> {
    if s.is_empty() {
        return Err(CommandError::Invalid {
            field,
            reason: "must not be empty".into(),
        });
    }
    at_most(field, s.len(), max, "bytes")?;
    Ok(())
}

/// Each timer that is set is at least Twilio's minimum:
/// [`TIMER_INACTIVE_MICROS_MIN`] for `timers.inactive`,
/// [`TIMER_CLOSED_MICROS_MIN`] for `timers.closed`; otherwise
/// [`CommandError::TimerTooShort`] naming the first one that is not.
pub(crate) fn timers(t: &Timers) -> Result<(), CommandError> {
    let checks = [
        (
            "timers.inactive",
            t.inactive_micros,
            TIMER_INACTIVE_MICROS_MIN,
        ),
        ("timers.closed", t.closed_micros, TIMER_CLOSED_MICROS_MIN),
    ];
    for (timer, micros, min_micros) in checks {
        if let Some(micros) = micros {
            if micros < min_micros {
                return Err(CommandError::TimerTooShort {
                    timer,
                    micros,
                    min_micros,
                });
            }
        }
    }
    Ok(())
}
