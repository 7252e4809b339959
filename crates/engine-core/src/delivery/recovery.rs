//! Recovery at open: the pending deliveries the read models imply
//! (messages without a receipt for a non-chat participant that had joined
//! before them), with their attempt counts and retry times.

use std::collections::HashMap;
use std::ops::Bound;

use events::{Event, MessageSid, ParticipantSid, ServiceSid};
use projections::Conversation;

use super::pending::{Entry, State};
use super::{channel_of, DeliveryId, DeliveryOptions};
use crate::read_view::ReadView;
use crate::sources::ReadSource;

/// Messages the recovery scan reads from the store at a time: one range
/// scan each, so a conversation with a long history is walked with bounded
/// memory.
pub const RECOVERY_SCAN_MESSAGES: usize = 1024;

/// Whether non-chat participant `participant` had joined `conv` before
/// message `message` was posted, by timestamps, and by log positions when
/// the timestamps are equal (`positions` is read once per conversation).
fn joined_before(
    source: &dyn ReadSource,
    service: ServiceSid,
    conv: &Conversation,
    (participant, joined_at): (ParticipantSid, u64),
    (message, posted_at): (MessageSid, u64),
    positions: &mut Option<HashMap<[u8; 16], u64>>,
) -> bool {
    match joined_at.cmp(&posted_at) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => {
            let map = positions.get_or_insert_with(|| {
                let mut map = HashMap::new();
                for record in source.read_stream(service, Some(conv.row().sid), 0) {
                    let Ok(record) = record else { break };
                    match record.event() {
                        Ok(Event::MessageAdded { message_sid, .. }) => {
                            map.insert(message_sid.0, record.header.position);
                        }
                        Ok(Event::ParticipantAdded {
                            participant_sid, ..
                        }) => {
                            map.insert(participant_sid.0, record.header.position);
                        }
                        _ => {}
                    }
                }
                map
            });
            match (map.get(&participant.0), map.get(&message.0)) {
                (Some(p), Some(m)) => p < m,
                // Unreadable history: prefer sending (at least once).
                _ => true,
            }
        }
    }
}

/// Pending deliveries in the read models: for each message, each non-chat
/// participant (not its author) that had joined before it and has no
/// receipt for it. Returns the position the read models were at. A pair
/// with failed attempts is due its backoff after the last one, on the
/// log's clock, which stamped that failure; any other at `now` (the log's
/// clock, µs).
pub(crate) fn recover(
    source: &dyn ReadSource,
    options: &DeliveryOptions,
    now: u64,
) -> (Option<u64>, Vec<(DeliveryId, Entry)>) {
    let rm = ReadView::acquire(source.read_models());
    let mut out = Vec::new();
    for svc in rm.services() {
        let service = &svc.row().sid;
        for conv in svc.conversations() {
            if conv.non_chat_count() == 0 {
                continue;
            }
            let non_chat: Vec<_> = conv
                .participants()
                .filter_map(|p| p.kind.binding().map(|b| (p, channel_of(b))))
                .collect();
            let mut positions = None;
            // Messages are cold rows: read in chunks, never all at once.
            let mut after = None;
            loop {
                let from = after.map_or(Bound::Unbounded, Bound::Excluded);
                let chunk = match rm.scan_messages(
                    conv,
                    (from, Bound::Unbounded),
                    false,
                    RECOVERY_SCAN_MESSAGES,
                ) {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        tracing::error!(
                            conversation = %conv.row().sid,
                            "reading messages to recover deliveries failed, skipping the rest of this conversation: {e}"
                        );
                        break;
                    }
                };
                let last = chunk.last().map(|m| m.index);
                for m in &chunk {
                    for (p, channel) in &non_chat {
                        if m.participant_sid == Some(p.sid)
                            || conv.receipt(&m.sid, &p.sid).is_some()
                        {
                            continue;
                        }
                        if !joined_before(
                            source,
                            *service,
                            conv,
                            (p.sid, p.date_created),
                            (m.sid, m.date_created),
                            &mut positions,
                        ) {
                            continue;
                        }
                        let attempts = conv.delivery_attempts(&m.sid, &p.sid);
                        let failed = attempts.map_or(0, |a| a.failed_attempts);
                        let due = match attempts {
                            None => now,
                            Some(a) => {
                                let wait = options.backoff(failed).as_micros() as u64;
                                a.last_failed_at.saturating_add(wait)
                            }
                        };
                        out.push((
                            DeliveryId {
                                message_sid: m.sid,
                                participant_sid: p.sid,
                            },
                            Entry {
                                service: *service,
                                conversation: conv.row().sid,
                                channel: *channel,
                                failed,
                                state: State::Waiting(due),
                            },
                        ));
                    }
                }
                match last {
                    Some(i) if chunk.len() == RECOVERY_SCAN_MESSAGES => after = Some(i),
                    _ => break,
                }
            }
        }
    }
    (rm.applied_position(), out)
}
