//! Lowercase hex, written once for every crate.
//!
//! SIDs, command ids, hashes and index keys all print their bytes as
//! lowercase hex digits, two per byte, and SIDs parse them back. This module
//! is the one place the project spells hex, over the `hex` crate: [`Hex`]
//! displays bytes in any formatter, [`encode`] returns them as a `String`,
//! and [`decode_lower`] parses digits back, refusing uppercase (which the
//! `hex` crate alone accepts) so that every value has exactly one spelling.

use std::fmt;

/// Bytes that display as lowercase hex, two digits per byte.
///
/// `format!("{}", Hex(&[0x0a, 0xff]))` is `"0aff"`; an empty slice displays
/// as the empty string. Writing never fails except when the formatter does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Returns `bytes` as lowercase hex, two digits per byte (`2 * bytes.len()`
/// characters). Never fails.
pub fn encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Why a string is not the lowercase hex spelling of the expected bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string has the wrong number of digits for the output.
    #[error("expected {expected} hex digits, got {got} bytes of text")]
    Length {
        /// Digits wanted: two per output byte.
        expected: usize,
        /// The string's length, in bytes.
        got: usize,
    },
    /// A character is not one of `0-9a-f` (uppercase is refused too: every
    /// value has one spelling).
    #[error("byte {offset} of the hex text is {found:#04x}, not a lowercase hex digit (0-9, a-f)")]
    Digit {
        /// Byte offset of the first bad byte in the text.
        offset: usize,
        /// The byte found there.
        found: u8,
    },
}

/// Parses exactly `2 * out.len()` lowercase hex digits from `digits` into
/// `out`.
///
/// # Errors
/// [`HexError::Length`] when `digits` is not exactly `2 * out.len()` bytes
/// long; [`HexError::Digit`] at the first byte that is not `0-9` or `a-f`
/// (uppercase `A-F` and any non-ASCII byte included). On error `out` may be
/// partly written.
pub fn decode_lower(digits: &str, out: &mut [u8]) -> Result<(), HexError> {
    let text = digits.as_bytes();
    if text.len() != out.len() * 2 {
        return Err(HexError::Length {
            expected: out.len() * 2,
            got: text.len(),
        });
    }
    if let Some(offset) = text
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(HexError::Digit {
            offset,
            found: text[offset],
        });
    }
    hex::decode_to_slice(text, out).map_err(|_| HexError::Length {
        expected: out.len() * 2,
        got: text.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_writes_two_lowercase_digits_per_byte() {
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0x00, 0x0a, 0xf0, 0xff]), "000af0ff");
        assert_eq!(format!("{:?}", Hex(&[0xab])), "ab");
    }

    #[test]
    fn decode_round_trips_every_byte_value() {
        let all: Vec<u8> = (0..=u8::MAX).collect();
        let mut back = vec![0u8; all.len()];
        decode_lower(&encode(&all), &mut back).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn decode_refuses_uppercase_wrong_length_and_non_hex() {
        let mut out = [0u8; 2];
        assert_eq!(
            decode_lower("0aFf", &mut out),
            Err(HexError::Digit {
                offset: 2,
                found: b'F'
            })
        );
        assert_eq!(
            decode_lower("0af", &mut out),
            Err(HexError::Length {
                expected: 4,
                got: 3
            })
        );
        assert!(matches!(
            decode_lower("0ag0", &mut out),
            Err(HexError::Digit { offset: 2, .. })
        ));
        assert!(matches!(
            decode_lower("é0a", &mut out),
            Err(HexError::Digit { offset: 0, .. })
        ));
    }
}
