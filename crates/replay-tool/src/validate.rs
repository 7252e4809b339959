//! A fast check that a record's payload is a well-formed
//! [`Event`](events::Event), without building one.
//!
//! Decoding an event through serde allocates every string and walks each
//! 16-byte SID one element at a time; on a verify walk that is a third of
//! the work, and the event is thrown away. [`is_valid_event_v1`] instead
//! walks the bincode grammar of version 1's `Event` in place (the compat
//! rule in `events::record` freezes that grammar: a change to `Event` needs
//! a new format version). Version 2 changed only the record header (it added
//! the actor), so its payloads have version 1's grammar;
//! [`is_valid_payload`] picks the grammar by format version. It is stricter than the decoder — it accepts only
//! shortest-form varints and 0/1 tags — so a `true` always means
//! `decode::<Event>` succeeds; a `false` sends the caller to the real
//! decoder, whose verdict (and error) is final. The tests check both
//! directions on every variant and on damaged encodings.

use crate::check::{VARINT_U16_TAG, VARINT_U32_TAG, VARINT_U64_TAG};

/// Variants of `Event`.
const EVENT_VARIANTS: u64 = 26;
/// Variants of `Permission`.
const PERMISSION_VARIANTS: u64 = 21;
/// Variants of `RoleType`.
const ROLE_TYPE_VARIANTS: u64 = 2;
/// Variants of `ConversationState`.
const CONVERSATION_STATE_VARIANTS: u64 = 4;
/// Variants of `ParticipantKind`.
const PARTICIPANT_KIND_VARIANTS: u64 = 2;
/// Variants of `NotificationLevel`.
const NOTIFICATION_LEVEL_VARIANTS: u64 = 2;
/// Variants of `AddressType`.
const ADDRESS_TYPE_VARIANTS: u64 = 8;
/// Variants of `DeliveryStatus`.
const DELIVERY_STATUS_VARIANTS: u64 = 5;
/// Length of a SID in the encoding, in bytes.
const SID_BYTES: usize = 16;

/// A cursor that accepts only canonical bincode (standard config).
struct P<'a> {
    b: &'a [u8],
    at: usize,
}

type R = Option<()>;

impl P<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.b.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn byte(&mut self) -> Option<u8> {
        let v = *self.b.get(self.at)?;
        self.at += 1;
        Some(v)
    }

    fn varint(&mut self) -> Option<u64> {
        let tag = self.byte()?;
        let v = match tag {
            0..VARINT_U16_TAG => return Some(u64::from(tag)),
            VARINT_U16_TAG => {
                let v = u64::from(u16::from_le_bytes(self.take(2)?.try_into().ok()?));
                (v >= u64::from(VARINT_U16_TAG)).then_some(v)?
            }
            VARINT_U32_TAG => {
                let v = u64::from(u32::from_le_bytes(self.take(4)?.try_into().ok()?));
                (v > u64::from(u16::MAX)).then_some(v)?
            }
            VARINT_U64_TAG => {
                let v = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
                (v > u64::from(u32::MAX)).then_some(v)?
            }
            _ => return None,
        };
        Some(v)
    }

    fn u64(&mut self) -> R {
        self.varint().map(drop)
    }

    fn u32(&mut self) -> R {
        (self.varint()? <= u64::from(u32::MAX)).then_some(())
    }

    fn unit_enum(&mut self, variants: u64) -> R {
        (self.varint()? < variants).then_some(())
    }

    fn tag(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn sid(&mut self) -> R {
        self.take(SID_BYTES).map(drop)
    }

    fn string(&mut self) -> R {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok().map(drop)
    }

    fn opt(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        if self.tag()? {
            f(self)
        } else {
            Some(())
        }
    }

    fn opt_string(&mut self) -> R {
        self.opt(Self::string)
    }

    fn opt_sid(&mut self) -> R {
        self.opt(Self::sid)
    }

    fn opt_u64(&mut self) -> R {
        self.opt(Self::u64)
    }

    fn seq(&mut self, mut f: impl FnMut(&mut Self) -> R) -> R {
        let n = self.varint()?;
        // Every element takes at least one byte.
        if n > (self.b.len() - self.at) as u64 {
            return None;
        }
        for _ in 0..n {
            f(self)?;
        }
        Some(())
    }

    fn timers(&mut self) -> R {
        self.opt_u64()?;
        self.opt_u64()
    }

    fn binding(&mut self) -> R {
        self.string()?;
        self.string()?;
        self.opt_string()
    }

    fn participant_kind(&mut self) -> R {
        let variant = self.varint()?;
        if variant >= PARTICIPANT_KIND_VARIANTS {
            return None;
        }
        match variant {
            0 => {
                self.string()?;
                self.opt_string()
            }
            1 => self.binding(),
            _ => None,
        }
    }

    fn media(&mut self) -> R {
        self.sid()?;
        self.string()?;
        self.opt_string()?;
        self.u64()
    }

    fn auto_creation(&mut self) -> R {
        self.tag()?;
        self.opt_sid()?;
        self.opt_string()
    }

    fn event(&mut self) -> R {
        let variant = self.varint()?;
        if variant >= EVENT_VARIANTS {
            return None;
        }
        match variant {
            // ServiceCreated, ServiceUpdated { friendly_name }
            0 | 1 => self.string(),
            // ServiceDeleted
            2 => Some(()),
            // RoleCreated { role_sid, friendly_name, role_type, permissions }
            3 => {
                self.sid()?;
                self.string()?;
                self.unit_enum(ROLE_TYPE_VARIANTS)?;
                self.seq(|p| p.unit_enum(PERMISSION_VARIANTS))
            }
            // RoleUpdated { role_sid, permissions }
            4 => {
                self.sid()?;
                self.seq(|p| p.unit_enum(PERMISSION_VARIANTS))
            }
            // RoleDeleted { role_sid }
            5 => self.sid(),
            // ConversationCreated { conversation_sid, friendly_name,
            // unique_name, attributes, state, timers, messaging_service_sid }
            6 => {
                self.sid()?;
                self.opt_string()?;
                self.opt_string()?;
                self.string()?;
                self.unit_enum(CONVERSATION_STATE_VARIANTS)?;
                self.timers()?;
                self.opt_string()
            }
            // ConversationUpdated { conversation_sid, friendly_name,
            // unique_name, attributes, state, timers }
            7 => {
                self.sid()?;
                self.opt_string()?;
                self.opt_string()?;
                self.string()?;
                self.unit_enum(CONVERSATION_STATE_VARIANTS)?;
                self.timers()
            }
            // ConversationRemoved { conversation_sid }
            8 => self.sid(),
            // ParticipantAdded { conversation_sid, participant_sid, kind,
            // user_sid, attributes, role_sid }
            9 => {
                self.sid()?;
                self.sid()?;
                self.participant_kind()?;
                self.opt_sid()?;
                self.string()?;
                self.opt_sid()
            }
            // ParticipantUpdated { conversation_sid, participant_sid,
            // attributes, role_sid }
            10 => {
                self.sid()?;
                self.sid()?;
                self.string()?;
                self.opt_sid()
            }
            // ReadHorizonUpdated { conversation_sid, participant_sid,
            // last_read_message_index, last_read_timestamp }
            11 => {
                self.sid()?;
                self.sid()?;
                self.opt_u64()?;
                self.u64()
            }
            // ParticipantRemoved { conversation_sid, participant_sid }
            12 => {
                self.sid()?;
                self.sid()
            }
            // MessageAdded { conversation_sid, message_sid, index, author,
            // participant_sid, body, media, attributes }
            13 => {
                self.sid()?;
                self.sid()?;
                self.u64()?;
                self.string()?;
                self.opt_sid()?;
                self.opt_string()?;
                self.seq(Self::media)?;
                self.string()
            }
            // MessageUpdated { conversation_sid, message_sid, index, body,
            // attributes }
            14 => {
                self.sid()?;
                self.sid()?;
                self.u64()?;
                self.opt_string()?;
                self.string()
            }
            // MessageRemoved { conversation_sid, message_sid, index }
            15 => {
                self.sid()?;
                self.sid()?;
                self.u64()
            }
            // UserCreated { user_sid, identity, friendly_name, attributes,
            // role_sid }
            16 => {
                self.sid()?;
                self.string()?;
                self.opt_string()?;
                self.string()?;
                self.opt_sid()
            }
            // UserUpdated { user_sid, friendly_name, attributes, role_sid }
            17 => {
                self.sid()?;
                self.opt_string()?;
                self.string()?;
                self.opt_sid()
            }
            // UserDeleted { user_sid }
            18 => self.sid(),
            // UserConversationUpdated { conversation_sid, user_sid,
            // notification_level }
            19 => {
                self.sid()?;
                self.sid()?;
                self.unit_enum(NOTIFICATION_LEVEL_VARIANTS)
            }
            // AddressConfigurationCreated { sid, address_type, address,
            // friendly_name, auto_creation }
            20 => {
                self.sid()?;
                self.unit_enum(ADDRESS_TYPE_VARIANTS)?;
                self.string()?;
                self.opt_string()?;
                self.auto_creation()
            }
            // AddressConfigurationUpdated { sid, friendly_name, auto_creation }
            21 => {
                self.sid()?;
                self.opt_string()?;
                self.auto_creation()
            }
            // AddressConfigurationDeleted { sid }
            22 => self.sid(),
            // DeliveryReceiptRecorded { conversation_sid, receipt_sid,
            // message_sid, participant_sid, status, error_code,
            // channel_message_sid }
            23 => {
                self.sid()?;
                self.sid()?;
                self.sid()?;
                self.sid()?;
                self.unit_enum(DELIVERY_STATUS_VARIANTS)?;
                self.opt(Self::u32)?;
                self.opt_string()
            }
            // ServiceConfigurationUpdated { three optional role SIDs }
            24 => {
                self.opt_sid()?;
                self.opt_sid()?;
                self.opt_sid()
            }
            // DeliveryAttemptFailed { conversation_sid, message_sid,
            // participant_sid, attempt, error }
            25 => {
                self.sid()?;
                self.sid()?;
                self.sid()?;
                self.u32()?;
                self.string()
            }
            _ => None,
        }
    }
}

/// Whether `payload`, stored in a record of `format_version`, is in
/// canonical form the encoding of an `Event` whose conversation is
/// `conversation` (see [`is_valid_event_v1`]). Versions 1 and 2 share the
/// payload grammar; any other version gives `false` (ask the real decoder,
/// whose verdict is final). `true` guarantees that `Record::event` succeeds.
pub fn is_valid_payload(
    format_version: u16,
    payload: &[u8],
    conversation: Option<&[u8; SID_BYTES]>,
) -> bool {
    match format_version {
        1 | 2 => is_valid_event_v1(payload, conversation),
        _ => false,
    }
}

/// Whether `payload` is, in canonical form, the version-1 encoding of an
/// `Event` whose conversation is `conversation` (`Some(sid bytes)` for
/// conversation events). `true` guarantees that `Record::event` succeeds;
/// `false` says nothing (ask the real decoder).
pub fn is_valid_event_v1(payload: &[u8], conversation: Option<&[u8; SID_BYTES]>) -> bool {
    let mut p = P { b: payload, at: 0 };
    if p.event().is_none() || p.at != payload.len() {
        return false;
    }
    // The conversation SID, when the event has one, is its first field
    // after the variant index (a one-byte varint: fewer than 251 variants).
    // Those variants: ConversationCreated ..= MessageRemoved (6..=15),
    // UserConversationUpdated (19), DeliveryReceiptRecorded (23),
    // DeliveryAttemptFailed (25).
    let has_conversation = matches!(
        payload.first(),
        Some(6..=15) | Some(19) | Some(23) | Some(25)
    );
    match (has_conversation, conversation) {
        (true, Some(c)) => payload.get(1..1 + SID_BYTES) == Some(c.as_slice()),
        (false, None) => true,
        _ => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use events::record::{decode, encode};
    use events::*;

    /// One event of every variant, with optional fields both set and not.
    pub(crate) fn samples() -> Vec<Event> {
        let c = ConversationSid::derive(b"c");
        let p = ParticipantSid::derive(b"p");
        let m = MessageSid::derive(b"m");
        let u = UserSid::derive(b"u");
        let r = RoleSid::derive(b"r");
        let a = AddressConfigurationSid::derive(b"a");
        let long = "é".repeat(200);
        vec![
            Event::ServiceCreated {
                friendly_name: "svc".into(),
            },
            Event::ServiceUpdated {
                friendly_name: long.clone(),
            },
            Event::ServiceDeleted,
            Event::RoleCreated {
                role_sid: r,
                friendly_name: "admin".into(),
                role_type: RoleType::Conversation,
                permissions: vec![Permission::SendMessage, Permission::EditNotificationLevel],
            },
            Event::RoleUpdated {
                role_sid: r,
                permissions: vec![],
            },
            Event::RoleDeleted { role_sid: r },
            Event::ConversationCreated {
                conversation_sid: c,
                friendly_name: Some("f".into()),
                unique_name: None,
                attributes: "{}".into(),
                state: ConversationState::Closed,
                timers: Timers {
                    inactive_micros: Some(1 << 40),
                    closed_micros: None,
                },
                messaging_service_sid: Some("MG1".into()),
            },
            Event::ConversationUpdated {
                conversation_sid: c,
                friendly_name: None,
                unique_name: Some(long.clone()),
                attributes: "{\"a\":1}".into(),
                state: ConversationState::Inactive,
                timers: Timers::default(),
            },
            Event::ConversationRemoved {
                conversation_sid: c,
            },
            Event::ParticipantAdded {
                conversation_sid: c,
                participant_sid: p,
                kind: ParticipantKind::Chat {
                    identity: "alice".into(),
                    projected_address: Some("+1".into()),
                },
                user_sid: Some(u),
                attributes: "{}".into(),
                role_sid: None,
            },
            Event::ParticipantAdded {
                conversation_sid: c,
                participant_sid: p,
                kind: ParticipantKind::Messaging(MessagingBinding {
                    address: "+15551230000".into(),
                    proxy_address: "+15559870000".into(),
                    projected_address: None,
                }),
                user_sid: None,
                attributes: "{}".into(),
                role_sid: Some(r),
            },
            Event::ParticipantUpdated {
                conversation_sid: c,
                participant_sid: p,
                attributes: "{}".into(),
                role_sid: Some(r),
            },
            Event::ReadHorizonUpdated {
                conversation_sid: c,
                participant_sid: p,
                last_read_message_index: Some(300),
                last_read_timestamp: u64::MAX,
            },
            Event::ReadHorizonUpdated {
                conversation_sid: c,
                participant_sid: p,
                last_read_message_index: None,
                last_read_timestamp: 70_000,
            },
            Event::ParticipantRemoved {
                conversation_sid: c,
                participant_sid: p,
            },
            Event::MessageAdded {
                conversation_sid: c,
                message_sid: m,
                index: 251,
                author: "alice".into(),
                participant_sid: Some(p),
                body: Some(long.clone()),
                media: vec![Media {
                    sid: MediaSid::derive(b"me"),
                    content_type: "image/png".into(),
                    filename: Some("a.png".into()),
                    size: 1 << 33,
                }],
                attributes: "{}".into(),
            },
            Event::MessageUpdated {
                conversation_sid: c,
                message_sid: m,
                index: 0,
                body: None,
                attributes: "{}".into(),
            },
            Event::MessageRemoved {
                conversation_sid: c,
                message_sid: m,
                index: 65_536,
            },
            Event::UserCreated {
                user_sid: u,
                identity: "alice".into(),
                friendly_name: None,
                attributes: "{}".into(),
                role_sid: Some(r),
            },
            Event::UserUpdated {
                user_sid: u,
                friendly_name: Some("A".into()),
                attributes: "{}".into(),
                role_sid: None,
            },
            Event::UserDeleted { user_sid: u },
            Event::UserConversationUpdated {
                conversation_sid: c,
                user_sid: u,
                notification_level: NotificationLevel::Muted,
            },
            Event::AddressConfigurationCreated {
                address_configuration_sid: a,
                address_type: AddressType::Chat,
                address: "+1555".into(),
                friendly_name: None,
                auto_creation: AutoCreation {
                    enabled: true,
                    conversation_service_sid: Some(ServiceSid::derive(b"s")),
                    webhook_url: Some("https://example.com".into()),
                },
            },
            Event::AddressConfigurationUpdated {
                address_configuration_sid: a,
                friendly_name: Some("x".into()),
                auto_creation: AutoCreation::default(),
            },
            Event::AddressConfigurationDeleted {
                address_configuration_sid: a,
            },
            Event::DeliveryReceiptRecorded {
                conversation_sid: c,
                receipt_sid: ReceiptSid::derive(b"d"),
                message_sid: m,
                participant_sid: p,
                status: DeliveryStatus::Undelivered,
                error_code: Some(30_007),
                channel_message_sid: Some("SM1".into()),
            },
            Event::ServiceConfigurationUpdated {
                default_conversation_creator_role_sid: Some(r),
                default_conversation_role_sid: None,
                default_chat_service_role_sid: Some(r),
            },
            Event::DeliveryAttemptFailed {
                conversation_sid: c,
                message_sid: m,
                participant_sid: p,
                attempt: u32::MAX,
                error: "timeout".into(),
            },
        ]
    }

    fn conv_bytes(e: &Event) -> Option<[u8; 16]> {
        e.conversation_sid().map(|c| c.0)
    }

    /// What the real decoder says, with the conversation check
    /// `Record::event` adds.
    fn decoder_accepts(bytes: &[u8], conversation: Option<&[u8; 16]>) -> bool {
        match decode::<Event>(bytes) {
            Ok(e) => conv_bytes(&e).as_ref() == conversation,
            Err(_) => false,
        }
    }

    #[test]
    fn every_variant_is_accepted() {
        let samples = samples();
        let mut seen = std::collections::BTreeSet::new();
        for e in &samples {
            seen.insert(crate::render::type_index(e));
            let bytes = encode(e).unwrap();
            let c = conv_bytes(e);
            assert!(is_valid_event_v1(&bytes, c.as_ref()), "{e:?}");
            assert!(decoder_accepts(&bytes, c.as_ref()));
            // The wrong conversation is refused.
            let other = [9u8; 16];
            assert!(!is_valid_event_v1(&bytes, Some(&other)));
        }
        assert_eq!(
            seen.len(),
            EVENT_VARIANTS as usize,
            "a sample of every variant"
        );
    }

    #[test]
    fn both_versions_share_the_payload_grammar_and_others_fall_back() {
        for e in samples() {
            let bytes = encode(&e).unwrap();
            let c = conv_bytes(&e);
            for version in events::FORMAT_VERSIONS_KNOWN {
                assert!(
                    is_valid_payload(*version, &bytes, c.as_ref()),
                    "v{version} {e:?}"
                );
            }
            assert!(!is_valid_payload(0, &bytes, c.as_ref()));
            assert!(!is_valid_payload(3, &bytes, c.as_ref()));
        }
    }

    /// Accepting implies the decoder accepts, on every damaged encoding.
    #[test]
    fn never_accepts_what_the_decoder_rejects() {
        for e in samples() {
            let bytes = encode(&e).unwrap();
            let c = conv_bytes(&e);
            let check = |b: &[u8], what: &str| {
                if is_valid_event_v1(b, c.as_ref()) {
                    assert!(decoder_accepts(b, c.as_ref()), "{what} of {e:?}");
                }
            };
            for i in 0..bytes.len() {
                for flip in [0x01u8, 0x02, 0x10, 0x80, 0xff] {
                    let mut d = bytes.clone();
                    d[i] ^= flip;
                    check(&d, &format!("byte {i} ^ {flip:#x}"));
                }
                check(&bytes[..i], &format!("truncated to {i}"));
                let mut longer = bytes.clone();
                longer.insert(i, 0);
                check(&longer, &format!("zero inserted at {i}"));
            }
        }
    }
}
