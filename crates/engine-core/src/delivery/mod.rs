//! Non-chat delivery: messages to SMS, WhatsApp, … participants through
//! host-registered [`ChannelAdapter`]s, durable and at least once.
//!
//! The outbox is the log itself. A `MessageAdded` in a conversation with
//! non-chat participants (other than the author) means one pending
//! delivery per such participant, identified by [`DeliveryId`] (message,
//! participant). A delivery is done once a `DeliveryReceiptRecorded`
//! exists for its pair. So:
//! - a successful send records [`events::Command::RecordDeliveryReceipt`]
//!   with status `sent` and the channel's message id;
//! - a failed send records [`events::Command::RecordDeliveryAttemptFailed`]
//!   and is retried after an exponential backoff with jitter
//!   ([`DeliveryOptions::backoff`]), measured on the log's clock
//!   ([`crate::log::Clock`]: with a `TestClock`, a retry comes when the
//!   clock is moved past it); after
//!   [`DeliveryOptions::attempts_max`] attempts, or a permanent error, a
//!   `failed` receipt ends it;
//! - on open, pending deliveries are recovered from the read models
//!   (messages without a receipt for a non-chat participant that had
//!   joined before the message), with their attempt counts, each due its
//!   backoff after its last failure on the same clock;
//! - a pair is never sent twice concurrently; after a crash between a send
//!   and its receipt the send is repeated (at least once), and the adapter
//!   gets the [`DeliveryId`] to deduplicate;
//! - channel receipts (`delivered`, `read`, `undelivered`, …) come back
//!   through [`crate::Engine::report_delivery_status`].
//!
//! One scheduler thread owns the pending set and the backoff timers; a
//! small pool of sender threads ([`DeliveryOptions::sender_threads`]) calls
//! the adapters, so a slow channel never blocks the log's writer.
//!
//! Modules, along those roles (each depends only on those listed before
//! it, as `tests/module_layering.rs` checks): `pending` (the shared vocabulary: facts, messages, entries, jobs),
//! `outbox` (the writer side), `shared` (options, adapters, counters),
//! `recovery` (the pending set at open), `sender` (the adapter calls and
//! the recorded results), `scheduler` (the timers and the thread start).
//! Delivery reads the log and read models through
//! `ReadSource` (`src/sources.rs`) and records results through an
//! `Execute` closure, both handed in by the engine: it never names the
//! engine facade.
//!
//! Retries are logged at info (delivery, attempt, backoff, error), a
//! delivery that fails for good at warn.

mod memory;
mod outbox;
mod pending;
mod recovery;
mod scheduler;
mod sender;
mod shared;
#[cfg(feature = "webhook")]
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use events::{
    AddressType, ConversationSid, Media, MessageSid, MessagingBinding, ParticipantSid, ServiceSid,
};
use serde::Serialize;

use crate::log::Backoff;

pub use memory::InMemoryAdapter;
pub(crate) use outbox::DeliveryWriter;
pub(crate) use scheduler::{start, DeliveryThreads};
pub(crate) use sender::Execute;
pub(crate) use shared::DeliveryShared;
#[cfg(feature = "webhook")]
pub use webhook::{WebhookAdapter, WEBHOOK_TIMEOUT_DEFAULT};

/// How many attempts a delivery gets, by default, before a `failed`
/// receipt ends it.
pub const DELIVERY_ATTEMPTS_MAX_DEFAULT: u32 = 5;
/// The ceiling of the first retry's wait, by default, in milliseconds (1
/// second). Each further retry's ceiling is twice the last, up to
/// [`DELIVERY_BACKOFF_MAX_MS_DEFAULT`]; the wait itself is drawn from the
/// upper half of the ceiling ([`crate::log::Backoff`]). A second rides out
/// a channel's brief hiccup without hammering it.
pub const DELIVERY_BACKOFF_INITIAL_MS_DEFAULT: u64 = 1_000;
/// The largest wait between two attempts, by default, in milliseconds (5
/// minutes), so the default [`DELIVERY_ATTEMPTS_MAX_DEFAULT`] attempts
/// span seconds to minutes rather than hours.
pub const DELIVERY_BACKOFF_MAX_MS_DEFAULT: u64 = 300_000;
/// Threads that call channel adapters concurrently, by default.
pub const DELIVERY_SENDER_THREADS_DEFAULT: usize = 2;

/// Delivery settings, built fluently from [`DeliveryOptions::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOptions {
    pub(crate) attempts_max: u32,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) sender_threads: usize,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            attempts_max: DELIVERY_ATTEMPTS_MAX_DEFAULT,
            backoff_initial: Duration::from_millis(DELIVERY_BACKOFF_INITIAL_MS_DEFAULT),
            backoff_max: Duration::from_millis(DELIVERY_BACKOFF_MAX_MS_DEFAULT),
            sender_threads: DELIVERY_SENDER_THREADS_DEFAULT,
        }
    }
}

impl DeliveryOptions {
    /// Sets the attempts per delivery (default
    /// [`DELIVERY_ATTEMPTS_MAX_DEFAULT`]; values below 1 are taken as 1).
    pub fn attempts_max(mut self, attempts: u32) -> Self {
        self.attempts_max = attempts.max(1);
        self
    }

    /// Sets the first retry's wait (default
    /// [`DELIVERY_BACKOFF_INITIAL_MS_DEFAULT`]).
    pub fn backoff_initial(mut self, wait: Duration) -> Self {
        self.backoff_initial = wait;
        self
    }

    /// Sets the longest wait between attempts (default
    /// [`DELIVERY_BACKOFF_MAX_MS_DEFAULT`]).
    pub fn backoff_max(mut self, wait: Duration) -> Self {
        self.backoff_max = wait;
        self
    }

    /// Sets how many adapter calls may run at once (default
    /// [`DELIVERY_SENDER_THREADS_DEFAULT`]; values below 1 are taken as 1).
    pub fn sender_threads(mut self, threads: usize) -> Self {
        self.sender_threads = threads.max(1);
        self
    }

    /// The configured attempts per delivery.
    pub fn get_attempts_max(&self) -> u32 {
        self.attempts_max
    }

    /// The retry pacing: exponential backoff from `backoff_initial` up to
    /// `backoff_max`, with jitter.
    pub fn retry_backoff(&self) -> Backoff {
        Backoff::new(self.backoff_initial, self.backoff_max)
    }

    /// The wait before the next attempt after `failed_attempts` failures,
    /// drawn anew on each call: uniform in `[c / 2, c]` where
    /// `c = backoff_initial × 2^(failed_attempts − 1)`, capped at
    /// `backoff_max` (zero after no failure). See [`Backoff::delay`].
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        self.retry_backoff().delay(failed_attempts)
    }
}

/// One delivery: a message to one non-chat participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct DeliveryId {
    /// The message.
    pub message_sid: MessageSid,
    /// The recipient participant.
    pub participant_sid: ParticipantSid,
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.message_sid, self.participant_sid)
    }
}

/// What a [`ChannelAdapter`] is asked to send: from the binding's proxy
/// address to the participant's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboundMessage {
    /// The delivery (stable across retries and restarts: deduplicate on it).
    pub delivery_id: DeliveryId,
    /// The service.
    pub service_sid: ServiceSid,
    /// The conversation.
    pub conversation_sid: ConversationSid,
    /// The message's index in its conversation.
    pub message_index: u64,
    /// The channel.
    pub channel: AddressType,
    /// The sending address: the binding's `proxy_address`.
    pub from: String,
    /// The recipient address: the binding's `address`.
    pub to: String,
    /// For group MMS: the address shown to the participant.
    pub projected_address: Option<String>,
    /// The message's author.
    pub author: String,
    /// Text body.
    pub body: Option<String>,
    /// Media descriptors.
    pub media: Vec<Media>,
    /// The message's JSON attributes.
    pub attributes: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
}

/// A successful send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SendReceipt {
    /// The channel's own id for the sent message, if it gave one.
    pub channel_message_sid: Option<String>,
}

/// A failed send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// What went wrong (recorded in the log, truncated).
    pub message: String,
    /// The channel's error code, if any (recorded on a `failed` receipt).
    pub error_code: Option<u32>,
    /// Retrying cannot help (e.g. an invalid number): the delivery fails
    /// now instead of being retried.
    pub permanent: bool,
}

impl SendError {
    /// A failure worth retrying (timeouts, 5xx, rate limits).
    pub fn transient(message: impl Into<String>) -> Self {
        SendError {
            message: message.into(),
            error_code: None,
            permanent: false,
        }
    }

    /// A failure retrying cannot fix.
    pub fn permanent(message: impl Into<String>, error_code: Option<u32>) -> Self {
        SendError {
            message: message.into(),
            error_code,
            permanent: true,
        }
    }
}

/// Sends messages on one channel type (SMS, WhatsApp, …). The host
/// registers one per [`AddressType`] with
/// [`crate::Engine::register_channel_adapter`].
///
/// `send` runs on one of the engine's sender threads and may block (it is
/// never called from the log's writer). It may be called more than once
/// for the same [`OutboundMessage::delivery_id`] (after a failure, or a
/// crash before the result was recorded), but never twice at once.
pub trait ChannelAdapter: Send + Sync + 'static {
    /// Sends one message.
    ///
    /// Errors: a [`SendError`]; transient ones are retried with backoff,
    /// permanent ones (and the last attempt's) end the delivery with a
    /// `failed` receipt.
    fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError>;
}

/// The channel a binding's address belongs to, by Twilio's address
/// prefixes: `whatsapp:`, `messenger:`, `gbm:`, `rcs:`, `apple:`, `email:`
/// (or any address with an `@`); anything else is SMS.
pub fn channel_of(binding: &MessagingBinding) -> AddressType {
    let a = binding.address.as_str();
    let prefixed = |p: &str| {
        a.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    };
    if prefixed("whatsapp:") {
        AddressType::Whatsapp
    } else if prefixed("messenger:") {
        AddressType::Messenger
    } else if prefixed("gbm:") {
        AddressType::Gbm
    } else if prefixed("rcs:") {
        AddressType::Rcs
    } else if prefixed("apple:") {
        AddressType::Apple
    } else if prefixed("email:") || a.contains('@') {
        AddressType::Email
    } else {
        AddressType::Sms
    }
}

/// Counters the host can read with [`crate::Engine::delivery_metrics`].
/// All but `pending` only grow for the life of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryMetrics {
    /// Deliveries not yet done (waiting, in flight, or with no adapter
    /// registered for their channel).
    pub pending: u64,
    /// Pending deliveries recovered from the read models at open.
    pub recovered: u64,
    /// Adapter calls made.
    pub attempts: u64,
    /// Sends that succeeded.
    pub sent: u64,
    /// Sends that failed (each retried or ended).
    pub failed_attempts: u64,
    /// Deliveries ended with a `failed` receipt.
    pub failed: u64,
}

/// A shared handle to an adapter.
pub type SharedAdapter = Arc<dyn ChannelAdapter>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_backoff_is_jittered_within_its_doubling_ceilings() {
        let o = DeliveryOptions::default()
            .backoff_initial(Duration::from_millis(10))
            .backoff_max(Duration::from_millis(50));
        assert_eq!(o.backoff(0), Duration::ZERO);
        for (failed, ceiling_ms) in [(1, 10), (2, 20), (3, 40), (4, 50), (99, 50)] {
            let ceiling = Duration::from_millis(ceiling_ms);
            let waits: Vec<Duration> = (0..100).map(|_| o.backoff(failed)).collect();
            assert!(
                waits.iter().all(|w| *w >= ceiling / 2 && *w <= ceiling),
                "after {failed} failures: {waits:?} not all in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "after {failed} failures: no jitter in {waits:?}"
            );
        }
    }

    #[test]
    fn channels_follow_address_prefixes() {
        let b = |a: &str| MessagingBinding {
            address: a.into(),
            proxy_address: "+1".into(),
            projected_address: None,
        };
        assert_eq!(channel_of(&b("+15551230000")), AddressType::Sms);
        assert_eq!(channel_of(&b("whatsapp:+1555")), AddressType::Whatsapp);
        assert_eq!(channel_of(&b("WhatsApp:+1555")), AddressType::Whatsapp);
        assert_eq!(channel_of(&b("a@b.example")), AddressType::Email);
        assert_eq!(channel_of(&b("messenger:123")), AddressType::Messenger);
    }
}
