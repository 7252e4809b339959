//! The sender threads: each takes a job, builds the outbound message from
//! the read models, calls the channel's adapter, and records the result in
//! the log (a receipt, or a failed attempt to retry).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam_channel::Receiver;
use events::{Command, CommandEnvelope, CommandId, ConversationRef, DeliveryStatus};
use projections::ReadModels;

use super::pending::{Job, Outcome, SchedMsg};
use super::shared::DeliveryShared;
use super::{OutboundMessage, SendError};
use crate::commands::CommandError;
use crate::read_view::ReadView;
use crate::sources::ReadSource;

/// How the senders record a delivery result: executes a command in the
/// engine and waits until it is durable (given by the engine, so delivery
/// never names the engine facade).
pub(crate) type Execute = Arc<dyn Fn(CommandEnvelope) -> Result<(), CommandError> + Send + Sync>;

/// What a sender thread needs besides its jobs.
struct SenderCtx<'a> {
    shared: &'a DeliveryShared,
    source: &'a dyn ReadSource,
    execute: &'a Execute,
}

/// A sender thread's body: runs jobs until the scheduler drops the jobs
/// channel, reporting each outcome to the scheduler.
pub(crate) fn sender_loop(
    shared: &DeliveryShared,
    source: &dyn ReadSource,
    execute: &Execute,
    jobs: &Receiver<Job>,
) {
    let ctx = SenderCtx {
        shared,
        source,
        execute,
    };
    for job in jobs {
        let outcome = run_job(&ctx, &job);
        let _ = shared.tx.send(SchedMsg::Finished {
            id: job.id,
            outcome,
        });
    }
}

/// What happened when the engine was asked to record a delivery result.
enum Recorded {
    Ok,
    /// The pair is void (message, participant or conversation gone).
    Void,
    /// The log could not append.
    Failed,
}

fn record(ctx: &SenderCtx<'_>, key: String, command: Command) -> Recorded {
    let envelope = CommandEnvelope {
        command_id: CommandId::from_key(key.as_bytes()),
        acting_identity: None,
        expected_version: None,
        command,
    };
    match (ctx.execute)(envelope) {
        Ok(_) => Recorded::Ok,
        Err(CommandError::Storage(e)) => {
            tracing::error!(error = %e, "recording a delivery result failed");
            Recorded::Failed
        }
        Err(e) => {
            tracing::debug!(error = %e, "delivery result refused: the delivery is void");
            Recorded::Void
        }
    }
}

/// The message a job sends, or `None` if there is nothing to send any
/// more (a receipt exists, or the message, participant or conversation is
/// gone).
///
/// Errors: the message could not be read from the store.
fn outbound(rm: &ReadModels, job: &Job) -> Result<Option<OutboundMessage>, projections::ColdError> {
    let Some(conv) = rm
        .service(&job.service)
        .and_then(|s| s.conversation_by_sid(&job.conversation))
    else {
        return Ok(None);
    };
    if conv
        .receipt(&job.id.message_sid, &job.id.participant_sid)
        .is_some()
    {
        return Ok(None);
    }
    let Some(message) = rm.message_in(conv, &job.id.message_sid)? else {
        return Ok(None);
    };
    let Some(binding) = conv
        .participant(&job.id.participant_sid)
        .and_then(|p| p.kind.binding())
    else {
        return Ok(None);
    };
    Ok(Some(OutboundMessage {
        delivery_id: job.id,
        service_sid: job.service,
        conversation_sid: job.conversation,
        message_index: message.index,
        channel: job.channel,
        from: binding.proxy_address.clone(),
        to: binding.address.clone(),
        projected_address: binding.projected_address.clone(),
        author: message.author.clone(),
        body: message.body.clone(),
        media: message.media.clone(),
        attributes: message.attributes.clone(),
        attempt: job.attempt,
    }))
}

fn run_job(ctx: &SenderCtx<'_>, job: &Job) -> Outcome {
    let shared = ctx.shared;
    let max = shared.options.attempts_max;
    let (m, p) = (job.id.message_sid, job.id.participant_sid);
    let receipt = |status: DeliveryStatus, error_code, channel_message_sid| {
        Command::RecordDeliveryReceipt(events::RecordDeliveryReceipt {
            service: job.service,
            conversation: ConversationRef::Sid(job.conversation),
            message: m,
            participant: p,
            status,
            error_code,
            channel_message_sid,
        })
    };
    let done = |r: Recorded| match r {
        Recorded::Ok | Recorded::Void => Outcome::Done,
        Recorded::Failed => Outcome::Stuck,
    };
    if job.attempt > max {
        // Every attempt failed but the final receipt was never recorded
        // (a crash in between): record it now, without sending again.
        shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        let r = record(
            ctx,
            format!("colloquy/delivery/failed/{m}/{p}"),
            receipt(DeliveryStatus::Failed, None, None),
        );
        return done(r);
    }
    let message = match outbound(&ReadView::acquire(ctx.source.read_models()), job) {
        Ok(Some(message)) => message,
        Ok(None) => return Outcome::Done,
        Err(e) => {
            // Nothing is lost: without a receipt, the delivery is found
            // again by the recovery scan when the engine is reopened.
            tracing::error!(
                message = %m,
                participant = %p,
                "reading the message to deliver failed, dropping the attempt until reopen: {e}"
            );
            return Outcome::Done;
        }
    };
    shared.counters.attempts.fetch_add(1, Ordering::Relaxed);
    let result = catch_unwind(AssertUnwindSafe(|| job.adapter.send(&message)))
        .unwrap_or_else(|_| Err(SendError::transient("the channel adapter panicked")));
    match result {
        Ok(sent) => {
            shared.counters.sent.fetch_add(1, Ordering::Relaxed);
            done(record(
                ctx,
                format!("colloquy/delivery/sent/{m}/{p}/{}", job.attempt),
                receipt(DeliveryStatus::Sent, None, sent.channel_message_sid),
            ))
        }
        Err(e) => {
            shared
                .counters
                .failed_attempts
                .fetch_add(1, Ordering::Relaxed);
            let r = record(
                ctx,
                format!("colloquy/delivery/attempt/{m}/{p}/{}", job.attempt),
                Command::RecordDeliveryAttemptFailed(events::RecordDeliveryAttemptFailed {
                    service: job.service,
                    conversation: job.conversation,
                    message: m,
                    participant: p,
                    attempt: job.attempt,
                    error: e.message.clone(),
                }),
            );
            match r {
                Recorded::Ok => {}
                other => return done(other),
            }
            if e.permanent || job.attempt >= max {
                shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    delivery = %job.id,
                    attempt = job.attempt,
                    permanent = e.permanent,
                    error = %e,
                    "delivery failed for good; recording a failed receipt"
                );
                done(record(
                    ctx,
                    format!("colloquy/delivery/failed/{m}/{p}"),
                    receipt(DeliveryStatus::Failed, e.error_code, None),
                ))
            } else {
                Outcome::Retry {
                    failed_attempts: job.attempt,
                    error: e.message,
                }
            }
        }
    }
}
