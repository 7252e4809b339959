//! Golden files: records written by earlier builds must decode forever.
//!
//! `tests/golden/v1_records.bin` is a checked-in log of format-version-1
//! records, each framed as `u32 LE length ‖ Record::encode() bytes`, forming
//! one hash chain from `GENESIS_HASH` and covering every `Event` variant
//! that existed when it was written. `tests/golden/v1_records.jsonl` is the
//! expected decoded form, one JSON object per record. `v2_records.*` is the
//! same for format version 2, whose headers carry the actor (`None` and
//! several identities); its `.jsonl` lines have an `actor` field, v1's do
//! not (a v1 record must decode with `actor: None`, which is checked). This test decodes every
//! record of every golden file, checks the chain and compares the decoded
//! form with the `.jsonl` byte for byte. A missing or differing file fails.
//!
//! # Blessing
//!
//! `COLLOQUY_BLESS_GOLDEN=1 cargo test -p events --test golden` writes the
//! files of a golden set *that does not exist yet*, from that set's fixture
//! below. It never overwrites an existing file. Blessing exists for ONE
//! purpose: adding the golden file of a NEW format version (or a new set for
//! variants appended to `Event` since the last set was written), by adding
//! a `GoldenSet` entry and its fixture. It is NEVER for rewriting v1: if
//! this test fails on `v1_records.*`, the code broke compatibility with logs
//! already on disk, and the fix is in the code (or a new format version with
//! its own decode path), not in the golden file. Deleting a golden file to
//! re-bless it defeats the test and must not pass review.

mod strategies;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use events::command::CommandId;
use events::limits::{IDENTITY_CHARS_MAX, RECORD_BYTES_MAX};
use events::model::*;
use events::record::{Hash, Record, RecordHeader};
use events::sid::*;
use events::{Event, FORMAT_VERSION_CURRENT, GENESIS_HASH};
use serde::Serialize;
use strategies::{event_variant_name, serde_variants};

const BLESS_ENV: &str = "COLLOQUY_BLESS_GOLDEN";

/// One golden log: a `.bin` and its `.jsonl`, written once from `fixture`.
struct GoldenSet {
    /// File stem under `tests/golden/`.
    name: &'static str,
    /// The format version every record in it is written in.
    format_version: u16,
    /// The (header, event) pairs it was generated from, in log order.
    /// Headers' `conversation_sid` is filled from the event.
    fixture: fn() -> Vec<(RecordHeader, Event)>,
}

/// Every golden set, oldest first. Append only.
const GOLDEN_SETS: &[GoldenSet] = &[
    GoldenSet {
        name: "v1_records",
        format_version: 1,
        fixture: v1_records,
    },
    GoldenSet {
        name: "v2_records",
        format_version: 2,
        fixture: v2_records,
    },
    GoldenSet {
        name: "v2_webhooks",
        format_version: 2,
        fixture: v2_webhooks,
    },
    GoldenSet {
        name: "v2_conversation_webhooks",
        format_version: 2,
        fixture: v2_conversation_webhooks,
    },
    GoldenSet {
        name: "v2_studio_autocreation",
        format_version: 2,
        fixture: v2_studio_autocreation,
    },
    GoldenSet {
        name: "v2_webhook_updates",
        format_version: 2,
        fixture: v2_webhook_updates,
    },
];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The expected decoded form of one record: one JSON line.
#[derive(Serialize)]
struct GoldenLine<'a> {
    format_version: u16,
    position: u64,
    recorded_at: u64,
    service_sid: String,
    conversation_sid: Option<String>,
    command_id: String,
    /// Only from version 2 on (`Some(None)` is the host, written as
    /// `null`); absent from version 1's lines, which were written before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Option<String>>,
    prev_hash: String,
    hash: String,
    event: &'a Event,
}

fn json_line(record: &Record, event: &Event) -> String {
    serde_json::to_string(&GoldenLine {
        format_version: record.format_version,
        position: record.header.position,
        recorded_at: record.header.recorded_at,
        service_sid: record.header.service_sid.to_string(),
        conversation_sid: record.header.conversation_sid.map(|c| c.to_string()),
        command_id: hex(&record.header.command_id.0),
        actor: (record.format_version >= 2).then(|| record.header.actor.clone()),
        prev_hash: hex(&record.prev_hash),
        hash: hex(&record.hash),
        event,
    })
    .expect("a golden line serializes")
}

/// Seals a fixture into a chain and renders both golden files.
fn render(fixture: Vec<(RecordHeader, Event)>) -> (Vec<u8>, String) {
    let mut bin = Vec::new();
    let mut jsonl = String::new();
    let mut prev: Hash = GENESIS_HASH;
    for (mut header, event) in fixture {
        header.conversation_sid = event.conversation_sid();
        let record = Record::seal(header, &event, prev).expect("fixture record seals");
        let bytes = record.encode().expect("fixture record encodes");
        bin.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_le_bytes());
        bin.extend_from_slice(&bytes);
        jsonl.push_str(&json_line(&record, &event));
        jsonl.push('\n');
        prev = record.hash;
    }
    (bin, jsonl)
}

/// Splits a `.bin` into its framed records.
fn frames(bin: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = bin;
    while !rest.is_empty() {
        assert!(rest.len() >= 4, "torn length prefix at the end of the file");
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        assert!(
            len <= RECORD_BYTES_MAX,
            "frame of {len} bytes is over the limit"
        );
        assert!(rest.len() >= 4 + len, "torn record at the end of the file");
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    out
}

/// Reads a golden file; blesses the set first if asked and it is new.
fn load(set: &GoldenSet) -> (Vec<u8>, String) {
    // Tests run in parallel; one at a time may look for (and bless) files.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let bin_path = golden_dir().join(format!("{}.bin", set.name));
    let jsonl_path = golden_dir().join(format!("{}.jsonl", set.name));
    let bless = std::env::var(BLESS_ENV).is_ok_and(|v| v == "1");
    match (bin_path.exists(), jsonl_path.exists()) {
        (true, true) => {}
        (false, false) if bless => {
            assert_eq!(
                set.format_version, FORMAT_VERSION_CURRENT,
                "only the current format version can be blessed"
            );
            let (bin, jsonl) = render((set.fixture)());
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&bin_path, bin).unwrap();
            std::fs::write(&jsonl_path, jsonl).unwrap();
            eprintln!("blessed new golden set {}", set.name);
        }
        (false, false) => panic!(
            "golden set {} is missing ({} and {}). If you are adding a NEW \
             golden set, run with {BLESS_ENV}=1 once and check the files in; \
             an existing set must be restored from git, never regenerated.",
            set.name,
            bin_path.display(),
            jsonl_path.display()
        ),
        (bin, jsonl) => panic!(
            "golden set {} is half there (.bin: {bin}, .jsonl: {jsonl}); restore \
             the missing file from git. Blessing never writes half a set.",
            set.name
        ),
    }
    let bin = std::fs::read(&bin_path).unwrap();
    let jsonl = std::fs::read_to_string(&jsonl_path).unwrap();
    (bin, jsonl)
}

/// Decodes a golden `.bin`, checking the chain; returns records and events.
fn decode_chain(set: &GoldenSet, bin: &[u8]) -> Vec<(Record, Event)> {
    let mut prev: Hash = GENESIS_HASH;
    let mut out = Vec::new();
    for (position, bytes) in frames(bin).into_iter().enumerate() {
        let what = format!("{} record {position}", set.name);
        let record = Record::decode(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(record.format_version, set.format_version, "{what}");
        assert_eq!(record.header.position, position as u64, "{what}: position");
        if record.format_version == 1 {
            assert_eq!(
                record.header.actor, None,
                "{what}: a v1 record has no actor"
            );
        }
        assert_eq!(record.prev_hash, prev, "{what}: broken chain");
        let event = record.event().unwrap_or_else(|e| panic!("{what}: {e}"));
        prev = record.hash;
        out.push((record, event));
    }
    assert!(!out.is_empty(), "{}: no records", set.name);
    out
}

#[test]
fn golden_files_decode_chain_and_match_their_jsonl() {
    for set in GOLDEN_SETS {
        let (bin, jsonl) = load(set);
        let decoded = decode_chain(set, &bin);
        let actual: Vec<String> = decoded
            .iter()
            .map(|(record, event)| json_line(record, event))
            .collect();
        assert!(
            jsonl.ends_with('\n'),
            "{}.jsonl must end with a newline",
            set.name
        );
        let expected: Vec<&str> = jsonl.lines().collect();
        for (i, (a, e)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(
                a, e,
                "{}: record {i} decodes differently from its .jsonl line",
                set.name
            );
        }
        assert_eq!(
            actual.len(),
            expected.len(),
            "{}: the .bin has {} records, the .jsonl {} lines",
            set.name,
            actual.len(),
            expected.len()
        );
        // The JSON form itself reads back as the same events.
        for ((_, event), line) in decoded.iter().zip(&expected) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let from_json: Event = serde_json::from_value(value["event"].clone()).unwrap();
            assert_eq!(&from_json, event);
        }
    }
}

#[test]
fn golden_files_cover_every_event_variant() {
    let mut seen = BTreeSet::new();
    for set in GOLDEN_SETS {
        let (bin, _) = load(set);
        for (_, event) in decode_chain(set, &bin) {
            seen.insert(event_variant_name(&event));
        }
    }
    let missing: Vec<_> = serde_variants::<Event>()
        .iter()
        .filter(|v| !seen.contains(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "no golden record holds {missing:?}: add a new golden set with them \
         (see the top of this file); do not rewrite v1"
    );
}

#[test]
fn fixtures_cover_every_event_variant() {
    // `event_variant_name` matches exhaustively, so this file stops compiling
    // when a variant is added; this then fails until a fixture holds it.
    let seen: BTreeSet<&str> = GOLDEN_SETS
        .iter()
        .flat_map(|set| (set.fixture)())
        .map(|(_, event)| event_variant_name(&event))
        .collect();
    let missing: Vec<_> = serde_variants::<Event>()
        .iter()
        .filter(|v| !seen.contains(*v))
        .collect();
    assert!(missing.is_empty(), "no fixture event for {missing:?}");
}

#[test]
fn the_v2_golden_set_holds_host_and_identity_actors() {
    let set = GOLDEN_SETS
        .iter()
        .find(|s| s.format_version == 2)
        .expect("a version-2 golden set");
    let (bin, _) = load(set);
    let actors: Vec<Option<String>> = decode_chain(set, &bin)
        .into_iter()
        .map(|(record, _)| record.header.actor)
        .collect();
    assert!(actors.iter().any(Option::is_none), "no host record");
    assert!(actors.iter().any(Option::is_some), "no identity record");
    assert!(
        actors
            .iter()
            .flatten()
            .any(|a| a.chars().count() == IDENTITY_CHARS_MAX),
        "no actor at the identity limit"
    );
}

#[test]
fn the_current_writer_reproduces_the_golden_bytes() {
    // While the current format is a set's version, sealing its fixture today
    // must give exactly the checked-in bytes and decoded events.
    for set in GOLDEN_SETS
        .iter()
        .filter(|s| s.format_version == FORMAT_VERSION_CURRENT)
    {
        let (bin, jsonl) = load(set);
        let fixture = (set.fixture)();
        let events: Vec<Event> = fixture.iter().map(|(_, e)| e.clone()).collect();
        let decoded: Vec<Event> = decode_chain(set, &bin)
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert_eq!(decoded, events, "{}: decoded events", set.name);
        let (fresh_bin, fresh_jsonl) = render(fixture);
        assert_eq!(fresh_jsonl, jsonl, "{}: rendered .jsonl", set.name);
        assert!(fresh_bin == bin, "{}: rendered .bin differs", set.name);
    }
}

// ---------------------------------------------------------------------------
// The version-1 fixture. Frozen: it is what v1_records.* were written from.
// ---------------------------------------------------------------------------

fn sid<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("fixture SID parses")
}

/// A story through every event variant of format version 1, with unicode,
/// empty and varint-boundary values along the way.
fn v1_records() -> Vec<(RecordHeader, Event)> {
    let service: ServiceSid = sid("IS0123456789abcdef0123456789abcdef");
    let other_service: ServiceSid = sid("ISfedcba9876543210fedcba9876543210");
    let admin: RoleSid = sid("RL00000000000000000000000000000001");
    let user_role: RoleSid = sid("RL00000000000000000000000000000002");
    let channel_admin: RoleSid = sid("RL00000000000000000000000000000003");
    let channel_user: RoleSid = sid("RL00000000000000000000000000000004");
    let alice: UserSid = sid("US0a11ce000000000000000000000000a1");
    let conversation: ConversationSid = sid("CHc0ffee00000000000000000000000001");
    let alice_p: ParticipantSid = sid("MB0a11ce000000000000000000000000a1");
    let sms_p: ParticipantSid = sid("MB5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a");
    let first: MessageSid = sid("IM00000000000000000000000000000001");
    let second: MessageSid = sid("IMffffffffffffffffffffffffffffffff");
    let address_configuration: AddressConfigurationSid = sid("IG1234567890abcdef1234567890abcdef");

    // (command number, event): records of one command share its id.
    let story: Vec<(u8, Event)> = vec![
        (
            1,
            Event::ServiceCreated {
                friendly_name: "Colloquy golden service".into(),
            },
        ),
        (
            1,
            Event::RoleCreated {
                role_sid: admin,
                friendly_name: "service admin".into(),
                role_type: RoleType::Service,
                permissions: vec![
                    Permission::CreateConversation,
                    Permission::JoinConversation,
                    Permission::EditAnyUserInfo,
                    Permission::EditOwnUserInfo,
                ],
            },
        ),
        (
            1,
            Event::RoleCreated {
                role_sid: user_role,
                friendly_name: "service user".into(),
                role_type: RoleType::Service,
                permissions: vec![
                    Permission::CreateConversation,
                    Permission::JoinConversation,
                    Permission::EditOwnUserInfo,
                ],
            },
        ),
        (
            1,
            Event::RoleCreated {
                role_sid: channel_admin,
                friendly_name: "channel admin".into(),
                role_type: RoleType::Conversation,
                permissions: vec![
                    Permission::AddParticipant,
                    Permission::RemoveParticipant,
                    Permission::SendMessage,
                    Permission::SendMediaMessage,
                    Permission::LeaveConversation,
                    Permission::EditConversationName,
                    Permission::EditConversationAttributes,
                    Permission::DeleteConversation,
                    Permission::EditAnyMessage,
                    Permission::EditOwnMessage,
                    Permission::EditAnyMessageAttributes,
                    Permission::EditOwnMessageAttributes,
                    Permission::DeleteAnyMessage,
                    Permission::DeleteOwnMessage,
                    Permission::EditAnyParticipantAttributes,
                    Permission::EditOwnParticipantAttributes,
                    Permission::EditNotificationLevel,
                ],
            },
        ),
        (
            1,
            Event::RoleCreated {
                role_sid: channel_user,
                friendly_name: "channel user".into(),
                role_type: RoleType::Conversation,
                permissions: vec![],
            },
        ),
        (
            1,
            Event::ServiceConfigurationUpdated {
                default_conversation_creator_role_sid: Some(channel_admin),
                default_conversation_role_sid: Some(channel_user),
                default_chat_service_role_sid: Some(user_role),
            },
        ),
        (
            2,
            Event::ServiceUpdated {
                friendly_name: "Colloquy — golden ✓".into(),
            },
        ),
        (
            3,
            Event::RoleUpdated {
                role_sid: channel_user,
                permissions: vec![
                    Permission::SendMessage,
                    Permission::LeaveConversation,
                    Permission::EditOwnMessage,
                    Permission::EditOwnMessage,
                ],
            },
        ),
        (
            4,
            Event::UserCreated {
                user_sid: alice,
                identity: "alice@example.com".into(),
                friendly_name: Some("Alice Liddell".into()),
                attributes: "{}".into(),
                role_sid: Some(user_role),
            },
        ),
        (
            5,
            Event::UserUpdated {
                user_sid: alice,
                friendly_name: Some("Ålice 🐇".into()),
                attributes: "{\"avatar\":\"https://example.com/a.png\",\"n\":1}".into(),
                role_sid: None,
            },
        ),
        (
            6,
            Event::ConversationCreated {
                conversation_sid: conversation,
                friendly_name: Some("Support — 日本語".into()),
                unique_name: Some("support-ticket-42".into()),
                attributes: "{\"priority\":\"high\"}".into(),
                state: ConversationState::Initializing,
                timers: Timers {
                    inactive_micros: Some(250),
                    closed_micros: Some(u32::MAX as u64 + 1),
                },
                messaging_service_sid: Some("MG0123456789abcdef0123456789abcdef".into()),
            },
        ),
        (
            6,
            Event::ParticipantAdded {
                conversation_sid: conversation,
                participant_sid: alice_p,
                kind: ParticipantKind::Chat {
                    identity: "alice@example.com".into(),
                    projected_address: None,
                },
                user_sid: Some(alice),
                attributes: "{}".into(),
                role_sid: Some(channel_admin),
            },
        ),
        (
            6,
            Event::ParticipantAdded {
                conversation_sid: conversation,
                participant_sid: sms_p,
                kind: ParticipantKind::Messaging(MessagingBinding {
                    address: "+15551230000".into(),
                    proxy_address: "+15559870000".into(),
                    projected_address: Some("+15550001111".into()),
                }),
                user_sid: None,
                attributes: "".into(),
                role_sid: None,
            },
        ),
        (
            7,
            Event::ConversationUpdated {
                conversation_sid: conversation,
                friendly_name: None,
                unique_name: None,
                attributes: "{}".into(),
                state: ConversationState::Active,
                timers: Timers {
                    inactive_micros: None,
                    closed_micros: Some(u64::MAX),
                },
            },
        ),
        (
            8,
            Event::MessageAdded {
                conversation_sid: conversation,
                message_sid: first,
                index: 0,
                author: "alice@example.com".into(),
                participant_sid: Some(alice_p),
                body: Some("Hello 👋 — ça va? \"quoted\"\n\ttabbed\\".into()),
                media: vec![
                    Media {
                        sid: sid("ME00000000000000000000000000000001"),
                        content_type: "image/png".into(),
                        filename: Some("kitten 🐱.png".into()),
                        size: 65_536,
                    },
                    Media {
                        sid: sid("ME00000000000000000000000000000002"),
                        content_type: "application/pdf".into(),
                        filename: None,
                        size: 0,
                    },
                ],
                attributes: "{}".into(),
            },
        ),
        (
            9,
            Event::MessageAdded {
                conversation_sid: conversation,
                message_sid: second,
                index: 1,
                author: "system".into(),
                participant_sid: None,
                body: None,
                media: vec![],
                attributes: "{\"importance\":\"low\"}".into(),
            },
        ),
        (
            10,
            Event::MessageUpdated {
                conversation_sid: conversation,
                message_sid: first,
                index: 0,
                body: Some("Hello 👋 (edited)".into()),
                attributes: "{\"edited\":true}".into(),
            },
        ),
        (
            11,
            Event::ParticipantUpdated {
                conversation_sid: conversation,
                participant_sid: sms_p,
                attributes: "{\"vip\":true}".into(),
                role_sid: Some(channel_user),
            },
        ),
        (
            12,
            Event::ReadHorizonUpdated {
                conversation_sid: conversation,
                participant_sid: alice_p,
                last_read_message_index: Some(1),
                last_read_timestamp: 1_700_000_000_123_456,
            },
        ),
        (
            13,
            Event::ReadHorizonUpdated {
                conversation_sid: conversation,
                participant_sid: alice_p,
                last_read_message_index: None,
                last_read_timestamp: 1_700_000_000_223_456,
            },
        ),
        (
            14,
            Event::UserConversationUpdated {
                conversation_sid: conversation,
                user_sid: alice,
                notification_level: NotificationLevel::Muted,
            },
        ),
        (
            15,
            Event::DeliveryAttemptFailed {
                conversation_sid: conversation,
                message_sid: first,
                participant_sid: sms_p,
                attempt: 1,
                error: "carrier timeout (30008)".into(),
            },
        ),
        (
            16,
            Event::DeliveryReceiptRecorded {
                conversation_sid: conversation,
                receipt_sid: sid("DY00000000000000000000000000000001"),
                message_sid: first,
                participant_sid: sms_p,
                status: DeliveryStatus::Delivered,
                error_code: None,
                channel_message_sid: Some("SM0123456789abcdef0123456789abcdef".into()),
            },
        ),
        (
            17,
            Event::DeliveryReceiptRecorded {
                conversation_sid: conversation,
                receipt_sid: sid("DY00000000000000000000000000000002"),
                message_sid: second,
                participant_sid: sms_p,
                status: DeliveryStatus::Undelivered,
                error_code: Some(30_008),
                channel_message_sid: None,
            },
        ),
        (
            18,
            Event::AddressConfigurationCreated {
                address_configuration_sid: address_configuration,
                address_type: AddressType::Whatsapp,
                address: "whatsapp:+15559870000".into(),
                friendly_name: Some("WhatsApp inbound".into()),
                auto_creation: AutoCreationV1 {
                    enabled: true,
                    conversation_service_sid: Some(other_service),
                    webhook_url: Some("https://example.com/hook?a=1&b=ü".into()),
                },
            },
        ),
        (
            19,
            Event::AddressConfigurationUpdated {
                address_configuration_sid: address_configuration,
                friendly_name: None,
                auto_creation: AutoCreationV1 {
                    enabled: false,
                    conversation_service_sid: None,
                    webhook_url: None,
                },
            },
        ),
        (
            20,
            Event::AddressConfigurationDeleted {
                address_configuration_sid: address_configuration,
            },
        ),
        (
            21,
            Event::MessageRemoved {
                conversation_sid: conversation,
                message_sid: second,
                index: 1,
            },
        ),
        (
            22,
            Event::ParticipantRemoved {
                conversation_sid: conversation,
                participant_sid: sms_p,
            },
        ),
        (
            23,
            Event::ConversationRemoved {
                conversation_sid: conversation,
            },
        ),
        (24, Event::UserDeleted { user_sid: alice }),
        (
            25,
            Event::RoleDeleted {
                role_sid: channel_user,
            },
        ),
        (26, Event::ServiceDeleted),
    ];

    story
        .into_iter()
        .enumerate()
        .map(|(position, (command, event))| {
            let mut command_id = [0u8; 16];
            command_id[0] = 0xc0;
            command_id[15] = command;
            let header = RecordHeader {
                position: position as u64,
                // One second apart, from 2023-11-14T22:13:20Z.
                recorded_at: 1_700_000_000_000_000 + position as u64 * 1_000_000,
                service_sid: service,
                conversation_sid: event.conversation_sid(),
                command_id: CommandId(command_id),
                actor: None,
            };
            (header, event)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The version-2 fixture. Frozen: it is what v2_records.* were written from.
// ---------------------------------------------------------------------------

/// Version 1's story (every event variant), with actors: the trusted host
/// for service administration and deliveries, chat identities for what
/// users did, including an actor at the identity limit in 4-byte
/// characters and ones either side of the 251-byte varint boundary.
/// Records of one command share its actor. Command ids and times differ
/// from version 1's, so the two sets share no hash.
fn v2_records() -> Vec<(RecordHeader, Event)> {
    let alice = Some("alice@example.com".to_string());
    let bob = Some("Bob Ångström 🐇".to_string());
    v1_records()
        .into_iter()
        .map(|(mut header, event)| {
            let command = header.command_id.0[15];
            header.command_id.0[0] = 0xc2;
            header.recorded_at += 1_000_000_000_000;
            header.actor = match command {
                5 | 6 | 8 | 10 | 23 => alice.clone(),
                7 | 21 | 22 => bob.clone(),
                11 => Some("🐇".repeat(IDENTITY_CHARS_MAX)),
                12 => Some("a".repeat(250)),
                13 => Some("b".repeat(251)),
                _ => None,
            };
            (header, event)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The version-2 webhooks fixture. Frozen: it is what v2_webhooks.* were
// written from.
// ---------------------------------------------------------------------------

/// `ServiceWebhooksUpdated`, appended to `Event` after the v2 set was
/// written: a service's post-event webhook configured with every filter, a
/// GET with a unicode query and a secret, then turned off.
fn v2_webhooks() -> Vec<(RecordHeader, Event)> {
    let service: ServiceSid = sid("IS0123456789abcdef0123456789abcdef");
    let story = vec![
        Event::ServiceCreated {
            friendly_name: "Colloquy webhooks".into(),
        },
        Event::ServiceWebhooksUpdated {
            webhooks: ServiceWebhooks {
                post_webhook_url: Some("https://example.com/hooks/post".into()),
                method: WebhookMethod::Post,
                filters: WebhookFilter::ALL.to_vec(),
                signing_secret: Some("golden secret ✓".into()),
            },
        },
        Event::ServiceWebhooksUpdated {
            webhooks: ServiceWebhooks {
                post_webhook_url: Some("http://127.0.0.1:8080/h?a=1&b=ü".into()),
                method: WebhookMethod::Get,
                filters: vec![
                    WebhookFilter::OnMessageAdded,
                    WebhookFilter::OnConversationStateUpdated,
                ],
                signing_secret: None,
            },
        },
        Event::ServiceWebhooksUpdated {
            webhooks: ServiceWebhooks::default(),
        },
    ];
    story
        .into_iter()
        .enumerate()
        .map(|(position, event)| {
            let mut command_id = [0u8; 16];
            command_id[0] = 0xc3;
            command_id[15] = position as u8;
            let header = RecordHeader {
                position: position as u64,
                // One second apart, from 2026-01-01T00:00:00Z.
                recorded_at: 1_767_225_600_000_000 + position as u64 * 1_000_000,
                service_sid: service,
                conversation_sid: None,
                command_id: CommandId(command_id),
                actor: None,
            };
            (header, event)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The version-2 conversation-webhooks fixture. Frozen: it is what
// v2_conversation_webhooks.* were written from.
// ---------------------------------------------------------------------------

/// `ConversationWebhookCreated` and `ConversationWebhookRemoved`, appended
/// to `Event` after the v2_webhooks set: a trigger with unicode keywords,
/// a GET webhook with every filter, and a removal.
fn v2_conversation_webhooks() -> Vec<(RecordHeader, Event)> {
    let service: ServiceSid = sid("IS0123456789abcdef0123456789abcdef");
    let conversation: ConversationSid = sid("CHc0ffee00000000000000000000000001");
    let trigger: WebhookSid = sid("WH00000000000000000000000000000001");
    let webhook: WebhookSid = sid("WHffffffffffffffffffffffffffffffff");
    let story = vec![
        Event::ConversationWebhookCreated {
            conversation_sid: conversation,
            webhook_sid: trigger,
            webhook: ConversationWebhook {
                target: WebhookTarget::Trigger,
                url: "https://example.com/trigger".into(),
                method: WebhookMethod::Post,
                filters: Vec::new(),
                triggers: vec!["support".into(), "hilfe".into(), "ayúdame".into()],
            },
        },
        Event::ConversationWebhookCreated {
            conversation_sid: conversation,
            webhook_sid: webhook,
            webhook: ConversationWebhook {
                target: WebhookTarget::Webhook,
                url: "http://127.0.0.1:8080/w?a=1".into(),
                method: WebhookMethod::Get,
                filters: WebhookFilter::ALL.to_vec(),
                triggers: Vec::new(),
            },
        },
        Event::ConversationWebhookRemoved {
            conversation_sid: conversation,
            webhook_sid: trigger,
        },
    ];
    story
        .into_iter()
        .enumerate()
        .map(|(position, event)| {
            let mut command_id = [0u8; 16];
            command_id[0] = 0xc4;
            command_id[15] = position as u8;
            let header = RecordHeader {
                position: position as u64,
                // One second apart, from 2026-01-02T00:00:00Z.
                recorded_at: 1_767_312_000_000_000 + position as u64 * 1_000_000,
                service_sid: service,
                conversation_sid: event.conversation_sid(),
                command_id: CommandId(command_id),
                actor: None,
            };
            (header, event)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The version-2 Studio and autocreation fixture. Frozen: it is what
// v2_studio_autocreation.* were written from.
// ---------------------------------------------------------------------------

/// `ConversationStudioWebhookCreated`, `AddressConfigurationCreatedV2` and
/// `AddressConfigurationUpdatedV2`, appended to `Event` after the
/// v2_conversation_webhooks set: Studio webhooks with and without a replay
/// point, and address configurations of each autocreation type.
fn v2_studio_autocreation() -> Vec<(RecordHeader, Event)> {
    let service: ServiceSid = sid("IS0123456789abcdef0123456789abcdef");
    let conversation: ConversationSid = sid("CHc0ffee00000000000000000000000002");
    let flow: FlowSid = sid("FW0123456789abcdef0123456789abcdef");
    let address_configuration: AddressConfigurationSid = sid("IG00000000000000000000000000000009");
    let story = vec![
        Event::ConversationStudioWebhookCreated {
            conversation_sid: conversation,
            webhook_sid: sid("WH00000000000000000000000000000011"),
            studio: StudioWebhook {
                flow_sid: flow,
                replay_after: None,
            },
        },
        Event::ConversationStudioWebhookCreated {
            conversation_sid: conversation,
            webhook_sid: sid("WH00000000000000000000000000000012"),
            studio: StudioWebhook {
                flow_sid: sid("FWffffffffffffffffffffffffffffffff"),
                replay_after: Some(300),
            },
        },
        Event::AddressConfigurationCreatedV2 {
            address_configuration_sid: address_configuration,
            address_type: AddressType::Sms,
            address: "+15559870000".into(),
            friendly_name: Some("Support line".into()),
            auto_creation: AutoCreation {
                enabled: true,
                conversation_service_sid: Some(service),
                kind: AutoCreationType::Studio,
                webhook_url: None,
                webhook_method: WebhookMethod::Post,
                webhook_filters: Vec::new(),
                studio_flow_sid: Some(flow),
                studio_retry_count: Some(3),
            },
        },
        Event::AddressConfigurationUpdatedV2 {
            address_configuration_sid: address_configuration,
            friendly_name: None,
            auto_creation: AutoCreation {
                enabled: true,
                conversation_service_sid: None,
                kind: AutoCreationType::Webhook,
                webhook_url: Some("https://example.com/auto?a=1&b=ü".into()),
                webhook_method: WebhookMethod::Get,
                webhook_filters: WebhookFilter::ALL.to_vec(),
                studio_flow_sid: None,
                studio_retry_count: None,
            },
        },
        Event::AddressConfigurationUpdatedV2 {
            address_configuration_sid: address_configuration,
            friendly_name: Some("Off".into()),
            auto_creation: AutoCreation::default(),
        },
    ];
    story
        .into_iter()
        .enumerate()
        .map(|(position, event)| {
            let mut command_id = [0u8; 16];
            command_id[0] = 0xc5;
            command_id[15] = position as u8;
            let header = RecordHeader {
                position: position as u64,
                // One second apart, from 2026-01-03T00:00:00Z.
                recorded_at: 1_767_398_400_000_000 + position as u64 * 1_000_000,
                service_sid: service,
                conversation_sid: event.conversation_sid(),
                command_id: CommandId(command_id),
                actor: Some("host".into()),
            };
            (header, event)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The version-2 webhook update fixture. Frozen: it is what
// v2_webhook_updates.* were written from.
// ---------------------------------------------------------------------------

/// `ConversationWebhookUpdated`, appended to `Event` after the
/// v2_studio_autocreation set: a webhook, a trigger and a Studio webhook
/// each given a new configuration.
fn v2_webhook_updates() -> Vec<(RecordHeader, Event)> {
    let service: ServiceSid = sid("IS0123456789abcdef0123456789abcdef");
    let conversation: ConversationSid = sid("CHc0ffee00000000000000000000000003");
    let story = vec![
        Event::ConversationWebhookUpdated {
            conversation_sid: conversation,
            webhook_sid: sid("WH00000000000000000000000000000021"),
            webhook: ConversationWebhookConfig::Url(ConversationWebhook {
                target: WebhookTarget::Webhook,
                url: "https://example.com/moved?a=1&b=ü".into(),
                method: WebhookMethod::Get,
                filters: WebhookFilter::ALL.to_vec(),
                triggers: Vec::new(),
            }),
        },
        Event::ConversationWebhookUpdated {
            conversation_sid: conversation,
            webhook_sid: sid("WH00000000000000000000000000000022"),
            webhook: ConversationWebhookConfig::Url(ConversationWebhook {
                target: WebhookTarget::Trigger,
                url: "https://example.com/trigger".into(),
                method: WebhookMethod::Post,
                filters: Vec::new(),
                triggers: vec!["urgent".into(), "sos".into()],
            }),
        },
        Event::ConversationWebhookUpdated {
            conversation_sid: conversation,
            webhook_sid: sid("WH00000000000000000000000000000023"),
            webhook: ConversationWebhookConfig::Studio(StudioWebhook {
                flow_sid: sid("FWfedcba9876543210fedcba9876543210"),
                replay_after: Some(42),
            }),
        },
    ];
    story
        .into_iter()
        .enumerate()
        .map(|(position, event)| {
            let mut command_id = [0u8; 16];
            command_id[0] = 0xc6;
            command_id[15] = position as u8;
            let header = RecordHeader {
                position: position as u64,
                // One second apart, from 2026-01-04T00:00:00Z.
                recorded_at: 1_767_484_800_000_000 + position as u64 * 1_000_000,
                service_sid: service,
                conversation_sid: event.conversation_sid(),
                command_id: CommandId(command_id),
                actor: None,
            };
            (header, event)
        })
        .collect()
}
