//! Twilio-style SIDs: a two-letter prefix and 32 lowercase hex digits.
//!
//! Each resource kind has its own type, so a `MessageSid` can never be passed
//! where a `ConversationSid` is wanted. In memory and in bincode a SID is its
//! 16 raw bytes (the prefix is implied by the type); in human-readable formats
//! (JSON) it is the familiar string, e.g. `CH0123…`.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid SID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SidError {
    /// The string is not 34 characters long.
    #[error("a {expected} SID has 34 characters, got {got}")]
    Length {
        /// The expected two-letter prefix.
        expected: &'static str,
        /// The length that was given, in characters.
        got: usize,
    },
    /// The first two characters are not the expected prefix.
    #[error("expected a SID starting with {expected}, got {got:?}")]
    Prefix {
        /// The expected two-letter prefix.
        expected: &'static str,
        /// The prefix that was given.
        got: String,
    },
    /// One of the 32 digits after the prefix is not lowercase hex.
    #[error("SID digits must be 32 lowercase hex digits")]
    Digits,
}

/// Raw SID bytes: the 128-bit value behind the 32 hex digits.
pub type SidBytes = [u8; 16];

fn parse_hex(expected: &'static str, s: &str) -> Result<SidBytes, SidError> {
    if s.len() != 34 {
        return Err(SidError::Length {
            expected,
            got: s.chars().count(),
        });
    }
    if !s.is_char_boundary(2) || &s[..2] != expected {
        return Err(SidError::Prefix {
            expected,
            got: s.chars().take(2).collect(),
        });
    }
    let mut out = [0u8; 16];
    crate::hex::decode_lower(&s[2..], &mut out).map_err(|_| SidError::Digits)?;
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, prefix: &str, bytes: &SidBytes) -> fmt::Result {
    f.write_str(prefix)?;
    fmt::Display::fmt(&crate::hex::Hex(bytes), f)
}

macro_rules! sid_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub SidBytes);

        impl $name {
            /// The two-letter prefix of this SID kind.
            pub const PREFIX: &'static str = $prefix;

            /// Derives a SID deterministically from arbitrary seed bytes
            /// (blake3, truncated to 128 bits). The engine seeds it with the
            /// log position and the SID's place within the command, so
            /// replaying a log never invents different SIDs.
            pub fn derive(seed: &[u8]) -> Self {
                let mut hasher = blake3::Hasher::new();
                hasher.update($prefix.as_bytes());
                hasher.update(seed);
                let mut out = [0u8; 16];
                out.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
                Self(out)
            }

            /// The raw 16 bytes behind the hex digits.
            pub fn as_bytes(&self) -> &SidBytes {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = SidError;
            /// Parses `XX` + 32 lowercase hex digits; anything else is a [`SidError`].
            fn from_str(s: &str) -> Result<Self, SidError> {
                parse_hex($prefix, s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, $prefix, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, $prefix, &self.0)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.collect_str(self)
                } else {
                    serde::Serialize::serialize(&self.0, s)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                    s.parse().map_err(serde::de::Error::custom)
                } else {
                    <SidBytes as serde::Deserialize>::deserialize(d).map(Self)
                }
            }
        }
    };
}

sid_type!(
    /// A Conversation Service (`IS…`): the tenant partition.
    ServiceSid, "IS");
sid_type!(
    /// A Conversation (`CH…`).
    ConversationSid, "CH");
sid_type!(
    /// A Participant (`MB…`).
    ParticipantSid, "MB");
sid_type!(
    /// A Message (`IM…`).
    MessageSid, "IM");
sid_type!(
    /// A media item attached to a message (`ME…`).
    MediaSid, "ME");
sid_type!(
    /// A chat User (`US…`).
    UserSid, "US");
sid_type!(
    /// A Role (`RL…`).
    RoleSid, "RL");
sid_type!(
    /// An Address Configuration (`IG…`).
    AddressConfigurationSid, "IG");
sid_type!(
    /// A Webhook (`WH…`).
    WebhookSid, "WH");
sid_type!(
    /// A delivery Receipt (`DY…`).
    ReceiptSid, "DY");
sid_type!(
    /// A Studio Flow (`FW…`): the host-registered flow a `studio`
    /// conversation webhook hands its conversation to.
    FlowSid, "FW");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        let s = "CH0123456789abcdef0123456789abcdef";
        let sid: ConversationSid = s.parse().unwrap();
        assert_eq!(sid.to_string(), s);
        assert_eq!(sid.0[0], 0x01);
    }

    #[test]
    fn parse_rejects_bad_sids() {
        let cases: &[(&str, &str)] = &[
            ("", "length"),
            ("CH0123", "length"),
            ("IM0123456789abcdef0123456789abcdef", "prefix"),
            ("CH0123456789ABCDEF0123456789abcdef", "digits"),
            ("CH0123456789abcdef0123456789abcdeg", "digits"),
            ("CHé123456789abcdef0123456789abcde", "digits"),
            ("éé0123456789abcdef0123456789abcd", "prefix"),
        ];
        for (input, want) in cases {
            let got = input.parse::<ConversationSid>().unwrap_err();
            let kind = match got {
                SidError::Length { .. } => "length",
                SidError::Prefix { .. } => "prefix",
                SidError::Digits => "digits",
            };
            assert_eq!(kind, *want, "input {input:?}: {got}");
        }
    }

    #[test]
    fn json_uses_the_string_form() {
        let sid = ServiceSid::derive(b"x");
        let json = serde_json::to_string(&sid).unwrap();
        assert_eq!(json, format!("\"{sid}\""));
        assert_eq!(serde_json::from_str::<ServiceSid>(&json).unwrap(), sid);
    }
}
