//! What the engine, the scheduler and the senders share: options, the
//! registered adapters, the counters, and the scheduler's inbox.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Sender;
use events::AddressType;
use parking_lot::RwLock;

use super::pending::SchedMsg;
use super::{DeliveryMetrics, DeliveryOptions, SharedAdapter};

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) pending: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) attempts: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) failed_attempts: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// What the engine, the scheduler and the senders share.
pub(crate) struct DeliveryShared {
    pub(crate) options: DeliveryOptions,
    adapters: RwLock<HashMap<AddressType, SharedAdapter>>,
    pub(crate) counters: Counters,
    pub(crate) tx: Sender<SchedMsg>,
}

impl DeliveryShared {
    pub(crate) fn new(options: DeliveryOptions, tx: Sender<SchedMsg>) -> Self {
        DeliveryShared {
            options,
            adapters: RwLock::new(HashMap::new()),
            counters: Counters::default(),
            tx,
        }
    }

    /// Registers (or replaces) the adapter for `channel`; deliveries
    /// waiting for one start.
    pub(crate) fn register(&self, channel: AddressType, adapter: SharedAdapter) {
        self.adapters.write().insert(channel, adapter);
        let _ = self.tx.send(SchedMsg::AdapterAdded(channel));
    }

    pub(crate) fn adapter(&self, channel: AddressType) -> Option<SharedAdapter> {
        self.adapters.read().get(&channel).cloned()
    }

    pub(crate) fn metrics(&self) -> DeliveryMetrics {
        let c = &self.counters;
        DeliveryMetrics {
            pending: c.pending.load(Ordering::Relaxed),
            recovered: c.recovered.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.tx.send(SchedMsg::Shutdown);
    }
}
