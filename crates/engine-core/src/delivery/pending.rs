//! The vocabulary the delivery threads share: the outbox facts the writer
//! learns, the scheduler's messages, the pending entries and the jobs the
//! senders run. A leaf module: every other delivery module depends on it,
//! it depends on none of them.

use events::{AddressType, ConversationSid, MessageSid, ParticipantSid, ServiceSid};

use super::{DeliveryId, SharedAdapter};

/// What the writer learned about the outbox from one durable record.
pub(crate) enum Fact {
    /// A message with non-chat recipients (never its author).
    Outbox {
        service: ServiceSid,
        conversation: ConversationSid,
        message: MessageSid,
        recipients: Vec<(ParticipantSid, AddressType)>,
    },
    /// A receipt exists for the pair: the delivery is done.
    Receipt {
        message: MessageSid,
        participant: ParticipantSid,
    },
    /// The participant left: its deliveries are void.
    ParticipantGone(ParticipantSid),
    /// The message was deleted.
    MessageGone(MessageSid),
    /// The conversation was deleted.
    ConversationGone(ServiceSid, ConversationSid),
    /// The service was deleted.
    ServiceGone(ServiceSid),
}

/// What the scheduler is sent.
pub(crate) enum SchedMsg {
    /// Facts of a durable batch, with their positions, in log order.
    Facts(Vec<(u64, Fact)>),
    /// An adapter was registered for a channel.
    AdapterAdded(AddressType),
    /// A sender finished a job.
    Finished { id: DeliveryId, outcome: Outcome },
    /// The log's clock was moved by hand: re-check what is due.
    ClockMoved,
    /// Stop.
    Shutdown,
}

/// How a job ended.
pub(crate) enum Outcome {
    /// A receipt was recorded, or the delivery is void.
    Done,
    /// The attempt failed and was recorded; retry later.
    Retry {
        /// Attempts failed so far (this one included).
        failed_attempts: u32,
        /// Why this attempt failed (the adapter's message).
        error: String,
    },
    /// Recording the result failed (the log refuses appends): keep the
    /// pair out of circulation rather than resend it in a loop.
    Stuck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Due at this time of the log's clock, µs.
    Waiting(u64),
    Parked,
    InFlight,
    Stuck,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) service: ServiceSid,
    pub(crate) conversation: ConversationSid,
    pub(crate) channel: AddressType,
    pub(crate) failed: u32,
    pub(crate) state: State,
}

pub(crate) struct Job {
    pub(crate) id: DeliveryId,
    pub(crate) service: ServiceSid,
    pub(crate) conversation: ConversationSid,
    pub(crate) channel: AddressType,
    pub(crate) attempt: u32,
    pub(crate) adapter: SharedAdapter,
}
