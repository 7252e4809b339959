//! Every limit the engine enforces, named with its unit.
//!
//! Values follow Twilio's documented Conversations limits
//! (<https://www.twilio.com/docs/conversations/conversations-limits>) and the
//! field names of Twilio's Conversations v1 OpenAPI description
//! (`twilio_conversations_v1.json` in <https://github.com/twilio/twilio-oai>).
//! Where Twilio documents none, the value is ours and its doc line says why.

/// Conversation and user `friendly_name`, in characters.
pub const FRIENDLY_NAME_CHARS_MAX: usize = 256;
/// Conversation `unique_name`, in characters (Twilio treats it like a friendly name).
pub const UNIQUE_NAME_CHARS_MAX: usize = 256;
/// Conversation `attributes` JSON, in bytes (16 KB).
pub const CONVERSATION_ATTRIBUTES_BYTES_MAX: usize = 16 * 1024;
/// Message `attributes` JSON, in bytes (4 KB).
pub const MESSAGE_ATTRIBUTES_BYTES_MAX: usize = 4 * 1024;
/// Participant `attributes` JSON, in bytes (4 KB).
pub const PARTICIPANT_ATTRIBUTES_BYTES_MAX: usize = 4 * 1024;
/// User `attributes` JSON, in bytes. Twilio documents none for users; we use
/// the participant value so a user record stays as small as a participant's.
pub const USER_ATTRIBUTES_BYTES_MAX: usize = 4 * 1024;
/// Message `body`, in bytes (32 KB, Twilio's inbound limit).
pub const BODY_BYTES_MAX: usize = 32 * 1024;
/// Message body sent outbound on SMS/WhatsApp, in characters.
pub const OUTBOUND_SMS_BODY_CHARS_MAX: usize = 1_600;
/// Media items on one message.
pub const MEDIA_PER_MESSAGE_MAX: usize = 10;
/// A media item's `content_type` and `filename`, in bytes. Ours: bounds the
/// record size; longer values are not real MIME types or file names.
pub const MEDIA_FIELD_BYTES_MAX: usize = 256;
/// Chat participant / user `identity`, in characters.
pub const IDENTITY_CHARS_MAX: usize = 256;
/// A messaging binding `address`, `proxy_address` or `projected_address`, in characters.
pub const ADDRESS_CHARS_MAX: usize = 256;
/// Message `author`, in characters (an identity or an address).
pub const AUTHOR_CHARS_MAX: usize = 256;
/// Participants (chat and non-chat together) in one conversation.
pub const PARTICIPANTS_PER_CONVERSATION_MAX: usize = 1_000;
/// Non-chat (messaging-binding) participants in one conversation.
pub const NON_CHAT_PARTICIPANTS_PER_CONVERSATION_MAX: usize = 50;
/// Participants in one ConversationWithParticipants request.
pub const CONVERSATION_WITH_PARTICIPANTS_MAX: usize = 10;
/// Permissions in one role. Ours: Twilio defines fewer than 30 permission
/// names, so a longer list can only be repeats.
pub const PERMISSIONS_PER_ROLE_MAX: usize = 64;
/// Page size when the caller gives none.
pub const PAGE_SIZE_DEFAULT: usize = 50;
/// Largest page size a query accepts.
pub const PAGE_SIZE_MAX: usize = 100;
/// `messaging_service_sid` and other opaque foreign ids, in bytes. Ours:
/// Twilio SIDs are 34 characters; the slack admits other hosts' ids.
pub const FOREIGN_ID_BYTES_MAX: usize = 64;
/// One encoded record, in bytes. Ours: the largest legal event (a full
/// conversation-attributes update) is under 20 KiB, so 256 KiB leaves room
/// for growth while bounding what a corrupt length prefix can allocate.
pub const RECORD_BYTES_MAX: usize = 256 * 1024;
/// Events one command may append. Ours: a ConversationWithParticipants with
/// the most participants and users needs 1 + 2 × 10; 64 is a safe bound.
pub const EVENTS_PER_COMMAND_MAX: usize = 64;
/// The shortest `timers.inactive` a conversation accepts, in microseconds
/// (Twilio's documented minimum: one minute).
pub const TIMER_INACTIVE_MICROS_MIN: u64 = 60 * 1_000_000;
/// The shortest `timers.closed` a conversation accepts, in microseconds
/// (Twilio's documented minimum: ten minutes).
pub const TIMER_CLOSED_MICROS_MIN: u64 = 10 * 60 * 1_000_000;
/// A webhook URL (`post_webhook_url`), in characters. Ours: Twilio documents
/// none; 2,048 is the longest URL common HTTP servers and proxies accept
/// on a request line.
pub const WEBHOOK_URL_CHARS_MAX: usize = 2_048;
/// A webhook signing secret, in bytes. Ours: HMAC-SHA1 hashes a key
/// longer than its 64-byte block first, so 256 bytes is ample for any
/// generated secret while bounding the record.
pub const WEBHOOK_SIGNING_SECRET_BYTES_MAX: usize = 256;
/// Conversation-scoped webhooks on one conversation. Ours: Twilio
/// documents none; each one is checked for every event of the
/// conversation, so the count is kept small.
pub const CONVERSATION_WEBHOOKS_PER_CONVERSATION_MAX: usize = 10;
/// Keywords of one trigger webhook (`Configuration.Triggers`). Ours:
/// every word of every new message is compared with each.
pub const WEBHOOK_TRIGGERS_PER_WEBHOOK_MAX: usize = 32;
/// One trigger keyword, in characters. Ours: a keyword is one word.
pub const WEBHOOK_TRIGGER_CHARS_MAX: usize = 64;
/// `AutoCreation.StudioRetryCount`, the most retries of one call of the
/// flow: Twilio accepts 0 to 3.
pub const AUTO_CREATION_STUDIO_RETRIES_PER_CALL_MAX: u32 = 3;
