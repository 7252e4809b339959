//! An in-memory [`ChannelAdapter`] for tests and demos.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::{ChannelAdapter, DeliveryId, OutboundMessage, SendError, SendReceipt};

#[derive(Debug, Default)]
struct State {
    sent: Vec<OutboundMessage>,
    calls: Vec<(DeliveryId, u32)>,
    fail_next: u32,
    in_flight: Vec<DeliveryId>,
    overlaps: u64,
    delay: Duration,
}

/// Records every send in memory. It can be told to fail the next N calls
/// ([`InMemoryAdapter::fail_next`]) or to take time per call
/// ([`InMemoryAdapter::set_delay`]), and it counts overlapping calls for
/// the same delivery (which the engine must never make).
#[derive(Debug, Default)]
pub struct InMemoryAdapter {
    state: Mutex<State>,
    changed: Condvar,
}

impl InMemoryAdapter {
    /// An adapter that accepts every send.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `calls` sends fail with a transient error.
    pub fn fail_next(&self, calls: u32) {
        self.state.lock().fail_next = calls;
    }

    /// Makes every send take `delay` (to widen race windows in tests).
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().delay = delay;
    }

    /// The messages sent successfully, in order.
    pub fn sent(&self) -> Vec<OutboundMessage> {
        self.state.lock().sent.clone()
    }

    /// Every call made (successful or not): delivery and attempt number.
    pub fn calls(&self) -> Vec<(DeliveryId, u32)> {
        self.state.lock().calls.clone()
    }

    /// Calls that started while another call for the same delivery was
    /// still running (should be 0).
    pub fn overlapping_calls(&self) -> u64 {
        self.state.lock().overlaps
    }

    /// Waits until at least `count` messages were sent successfully, up to
    /// `timeout`; returns whether they were.
    pub fn wait_for_sent(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        while state.sent.len() < count {
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                return state.sent.len() >= count;
            }
        }
        true
    }
}

impl ChannelAdapter for InMemoryAdapter {
    fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, SendError> {
        let delay = {
            let mut s = self.state.lock();
            if s.in_flight.contains(&message.delivery_id) {
                s.overlaps += 1;
            }
            s.in_flight.push(message.delivery_id);
            s.calls.push((message.delivery_id, message.attempt));
            s.delay
        };
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut s = self.state.lock();
        if let Some(i) = s.in_flight.iter().position(|d| *d == message.delivery_id) {
            s.in_flight.swap_remove(i);
        }
        let result = if s.fail_next > 0 {
            s.fail_next -= 1;
            Err(SendError::transient("in-memory adapter told to fail"))
        } else {
            s.sent.push(message.clone());
            Ok(SendReceipt {
                channel_message_sid: Some(format!("MEM{:08}", s.sent.len())),
            })
        };
        drop(s);
        self.changed.notify_all();
        result
    }
}
