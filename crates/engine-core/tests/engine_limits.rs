//! Every limit, from one table: each is tried at limit − 1, at the limit
//! and at limit + 1. The first two are accepted; the third is refused with
//! the typed error naming the field, its length and the limit, and writes
//! nothing (the log's head and the read models do not move).

mod common;

use common::{media, Harness};
use engine_core::CommandError;
use events::limits::*;
use events::*;

/// What the refusal at limit + 1 looks like.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// `TooLong` for `field`, measured in `unit`.
    TooLong {
        field: &'static str,
        unit: &'static str,
    },
    /// `ParticipantLimit` of kind `what`.
    Participants { what: &'static str },
}

impl Refusal {
    /// The exact error for a value of size `n` against `limit`.
    fn error(self, n: usize, limit: usize) -> CommandError {
        match self {
            Refusal::TooLong { field, unit } => CommandError::TooLong {
                field,
                len: n,
                max: limit,
                unit,
            },
            // The count is of the participants already there.
            Refusal::Participants { what } => CommandError::ParticipantLimit {
                what,
                count: n - 1,
                max: limit,
            },
        }
    }
}

/// The service and conversation most rows act in.
struct Fixture {
    service: ServiceSid,
    conversation: ConversationSid,
}

/// Builds (after any setup it needs) the command whose measured size is `n`.
type Build = fn(&mut Harness, &Fixture, usize) -> Command;

struct Row {
    name: &'static str,
    limit: usize,
    build: Build,
    refusal: Refusal,
}

/// A string of exactly `n` bytes, mostly two-byte characters, so a limit
/// in bytes is not confused with one in characters.
fn bytes_text(n: usize) -> String {
    let mut s = "é".repeat(n / 2);
    if n % 2 == 1 {
        s.push('b');
    }
    assert_eq!(s.len(), n);
    s
}

/// A string of exactly `n` characters, each two bytes long.
fn chars_text(n: usize) -> String {
    "ü".repeat(n)
}

/// JSON attributes of exactly `n` bytes (a JSON string).
fn json_of(n: usize) -> String {
    let s = format!("\"{}\"", bytes_text(n - 2));
    assert!(serde_json::from_str::<serde_json::Value>(&s).is_ok());
    s
}

/// A message with `body` in the fixture's conversation.
fn post_with(f: &Fixture, body: &str) -> PostMessage {
    PostMessage::new(f.service, f.conversation).body(body)
}

fn add_to(f: &Fixture, conversation: ConversationSid, p: ParticipantSpec) -> Command {
    AddParticipant::new(f.service, conversation, p).into()
}

/// A fresh conversation already holding `chat_count` chat participants
/// and `bound` messaging-binding participants (bindings unique to it).
fn filled(h: &mut Harness, f: &Fixture, chat_count: usize, bound: usize) -> ConversationSid {
    let conversation = h.ok(CreateConversation::new(f.service));
    let tag = conversation.to_string();
    let mut specs: Vec<ParticipantSpec> = (0..chat_count)
        .map(|i| ParticipantSpec::chat(format!("member-{i}")))
        .collect();
    specs.extend(
        (0..bound).map(|i| ParticipantSpec::binding(format!("+1{i:04}"), format!("proxy-{tag}"))),
    );
    for p in specs {
        h.ok(add_to(f, conversation, p));
    }
    let count = h.engine().read(|rm| {
        rm.get_conversation(&f.service, &ConversationRef::Sid(conversation))
            .unwrap()
            .participant_count()
    });
    assert_eq!(count, chat_count + bound);
    conversation
}

fn table() -> Vec<Row> {
    let too_long = |field, unit| Refusal::TooLong { field, unit };
    vec![
        Row {
            name: "message body, bytes",
            limit: BODY_BYTES_MAX,
            build: |_, f, n| post_with(f, &bytes_text(n)).into(),
            refusal: too_long("body", "bytes"),
        },
        Row {
            name: "media items per message",
            limit: MEDIA_PER_MESSAGE_MAX,
            build: |_, f, n| {
                let media = media(n);
                PostMessage {
                    media,
                    ..post_with(f, "see attached")
                }
                .into()
            },
            refusal: too_long("media", "items"),
        },
        Row {
            name: "conversation attributes, bytes",
            limit: CONVERSATION_ATTRIBUTES_BYTES_MAX,
            build: |_, f, n| {
                CreateConversation::new(f.service)
                    .attributes(json_of(n))
                    .into()
            },
            refusal: too_long("attributes", "bytes"),
        },
        Row {
            name: "message attributes, bytes",
            limit: MESSAGE_ATTRIBUTES_BYTES_MAX,
            build: |_, f, n| post_with(f, "hi").attributes(json_of(n)).into(),
            refusal: too_long("attributes", "bytes"),
        },
        Row {
            name: "participant attributes, bytes",
            limit: PARTICIPANT_ATTRIBUTES_BYTES_MAX,
            build: |_, f, n| {
                let p = ParticipantSpec::chat(format!("attributes-{n}")).attributes(json_of(n));
                add_to(f, f.conversation, p)
            },
            refusal: too_long("attributes", "bytes"),
        },
        Row {
            name: "user attributes, bytes",
            limit: USER_ATTRIBUTES_BYTES_MAX,
            build: |_, f, n| {
                CreateUser::new(f.service, format!("user-{n}"))
                    .attributes(json_of(n))
                    .into()
            },
            refusal: too_long("attributes", "bytes"),
        },
        Row {
            name: "conversation friendly_name, chars",
            limit: FRIENDLY_NAME_CHARS_MAX,
            build: |_, f, n| {
                CreateConversation::new(f.service)
                    .friendly_name(chars_text(n))
                    .into()
            },
            refusal: too_long("friendly_name", "chars"),
        },
        Row {
            name: "user friendly_name, chars",
            limit: FRIENDLY_NAME_CHARS_MAX,
            build: |_, f, n| {
                CreateUser::new(f.service, format!("named-{n}"))
                    .friendly_name(chars_text(n))
                    .into()
            },
            refusal: too_long("friendly_name", "chars"),
        },
        Row {
            name: "conversation unique_name, chars",
            limit: UNIQUE_NAME_CHARS_MAX,
            build: |_, f, n| {
                CreateConversation::new(f.service)
                    .unique_name(chars_text(n))
                    .into()
            },
            refusal: too_long("unique_name", "chars"),
        },
        Row {
            name: "user identity, chars",
            limit: IDENTITY_CHARS_MAX,
            build: |_, f, n| CreateUser::new(f.service, chars_text(n)).into(),
            refusal: too_long("identity", "chars"),
        },
        Row {
            name: "chat participant identity, chars",
            limit: IDENTITY_CHARS_MAX,
            build: |_, f, n| add_to(f, f.conversation, ParticipantSpec::chat("ı".repeat(n))),
            refusal: too_long("identity", "chars"),
        },
        Row {
            name: "binding address, chars",
            limit: ADDRESS_CHARS_MAX,
            build: |_, f, n| {
                let p = ParticipantSpec::binding("٥".repeat(n), "+15559990000");
                add_to(f, f.conversation, p)
            },
            refusal: too_long("messaging_binding.address", "chars"),
        },
        Row {
            name: "binding proxy_address, chars",
            limit: ADDRESS_CHARS_MAX,
            build: |_, f, n| {
                let p = ParticipantSpec::binding("+15550000001", "٥".repeat(n));
                add_to(f, f.conversation, p)
            },
            refusal: too_long("messaging_binding.proxy_address", "chars"),
        },
        Row {
            name: "message author, chars",
            limit: AUTHOR_CHARS_MAX,
            build: |_, f, n| post_with(f, "hi").author(chars_text(n)).into(),
            refusal: too_long("author", "chars"),
        },
        Row {
            name: "participants per conversation",
            limit: PARTICIPANTS_PER_CONVERSATION_MAX,
            build: |h, f, n| {
                let conversation = filled(h, f, n - 1, 0);
                add_to(f, conversation, ParticipantSpec::chat("the-last-one"))
            },
            refusal: Refusal::Participants { what: "all" },
        },
        Row {
            name: "non-chat participants per conversation",
            limit: NON_CHAT_PARTICIPANTS_PER_CONVERSATION_MAX,
            build: |h, f, n| {
                let conversation = filled(h, f, 2, n - 1);
                let p = ParticipantSpec::binding("+19999999999", format!("proxy-{conversation}"));
                add_to(f, conversation, p)
            },
            refusal: Refusal::Participants { what: "non-chat" },
        },
        Row {
            name: "participants in one ConversationWithParticipants",
            limit: CONVERSATION_WITH_PARTICIPANTS_MAX,
            build: |_, f, n| {
                (0..n)
                    .map(|i| ParticipantSpec::chat(format!("batch-{n}-{i}")))
                    .fold(
                        CreateConversationWithParticipants::new(f.service, Default::default()),
                        CreateConversationWithParticipants::participant,
                    )
                    .into()
            },
            refusal: too_long("participants", "items"),
        },
    ]
}

#[test]
fn every_limit_holds_at_the_boundary_and_a_refusal_writes_nothing() {
    let mut h = Harness::new();
    let service = h.ok(CreateService::new("limits"));
    let conversation = h.ok(CreateConversation::new(service));
    let f = Fixture {
        service,
        conversation,
    };
    for row in table() {
        for n in [row.limit - 1, row.limit, row.limit + 1] {
            let command = (row.build)(&mut h, &f, n);
            let head = h.head();
            let digest = h.digest();
            let result = h.exec(command);
            if n <= row.limit {
                let outcome = result
                    .unwrap_or_else(|e| panic!("{} at {n} (limit {}): {e}", row.name, row.limit));
                assert!(
                    !outcome.records.is_empty(),
                    "{} at {n}: accepted but appended nothing",
                    row.name
                );
                assert_eq!(
                    h.head().next_position,
                    head.next_position + outcome.records.len() as u64,
                    "{} at {n}",
                    row.name
                );
            } else {
                let err = result.expect_err(row.name);
                assert_eq!(
                    err,
                    row.refusal.error(n, row.limit),
                    "{} at {n} (limit {})",
                    row.name,
                    row.limit
                );
                assert_eq!(h.head(), head, "{} at {n}: the head moved", row.name);
                assert_eq!(
                    h.digest(),
                    digest,
                    "{} at {n}: the read models changed",
                    row.name
                );
            }
        }
    }
}
