//! A reactor's thread: takes records from its subscription, hands the
//! matching ones to the handler (retrying with backoff, parking after the
//! last attempt), checkpoints, and serves the host's requests (stop,
//! replay, re-drive) between records.
//!
//! Invariants:
//! - `checkpoint` only moves past a record once it is handled, parked or
//!   passed over by the filter, and a parked event is written in the same
//!   batch as the checkpoint that moves past it;
//! - the persisted checkpoint is never ahead of `checkpoint`, and the
//!   shared state shows the persisted one;
//! - nothing is skipped when a write fails: it is retried with backoff
//!   until it succeeds or the reactor stops (and then re-delivered).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocksdb::WriteBatch;

use super::{
    store, Counters, ParkedEvent, Reactor, ReactorContext, ReactorSpec, Shared,
    PARKED_ERROR_BYTES_MAX, REACTOR_CHECKPOINT_RECORDS_MAX,
};
use crate::fanout::{committed_records, Hub};
use crate::log::CommittedRecord;
use crate::sources::CommandSink;
use crate::subscription::{Subscription, SubscriptionError};

/// How handing one record to the handler ended.
enum Handled {
    /// The handler succeeded.
    Done,
    /// Every attempt failed: park it.
    Failed { attempts: u32, error: String },
    /// A stop or a replay was asked during a backoff: the record is left
    /// (the replay or the next run delivers it).
    Interrupted,
}

/// What the thread does next.
enum Next {
    /// More may be ready: go on.
    Continue,
    /// Caught up: wait for a commit or a request.
    Wait,
    /// Reading the log failed: wait for the backoff, then read the same
    /// position again.
    Retry,
    /// The engine is closing or a stop was asked: end the thread.
    Stop,
}

pub(super) struct Runner {
    sink: Arc<dyn CommandSink>,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    spec: ReactorSpec,
    reactor: Box<dyn Reactor>,
    subscription: Subscription,
    /// The position after the last record handled, parked or passed over.
    checkpoint: u64,
    /// The checkpoint last written.
    persisted: u64,
    /// Parked events to write with the next checkpoint.
    parked: Vec<ParkedEvent>,
}

impl Runner {
    pub(super) fn new(
        sink: Arc<dyn CommandSink>,
        hub: Arc<Hub>,
        shared: Arc<Shared>,
        spec: ReactorSpec,
        reactor: Box<dyn Reactor>,
        subscription: Subscription,
        checkpoint: u64,
    ) -> Self {
        Runner {
            sink,
            hub,
            shared,
            spec,
            reactor,
            subscription,
            checkpoint,
            persisted: checkpoint,
            parked: Vec::new(),
        }
    }

    /// The thread's loop, until a stop is asked or the engine closes.
    pub(super) fn run(mut self) {
        // However the thread ends (a panic included), waiters learn it.
        let _finish = Finish(self.shared.clone());
        let mut read_failures = 0;
        loop {
            if !self.serve_requests() {
                break;
            }
            match self.step() {
                Next::Continue => read_failures = 0,
                Next::Wait => {
                    read_failures = 0;
                    let shared = self.shared.clone();
                    self.shared
                        .feed
                        .wait_for(self.subscription.position(), None, &|| {
                            shared.has_requests()
                        });
                }
                Next::Retry => {
                    read_failures += 1;
                    self.pause(self.spec.backoff.delay(read_failures));
                }
                Next::Stop => break,
            }
        }
        self.persist();
        tracing::info!(reactor = %self.spec.name, checkpoint = self.persisted, "reactor stopped");
    }

    /// Serves the stop, replay and re-drive requests. Returns `false` on a
    /// stop.
    fn serve_requests(&mut self) -> bool {
        loop {
            let (stop, replay, redrive) = {
                let mut state = self.shared.state.lock();
                let r = &mut state.requests;
                (r.stop, r.replay.take(), r.redrive.pop_front())
            };
            if stop {
                return false;
            }
            if let Some(position) = replay {
                self.replay(position);
                self.done_request();
                continue;
            }
            match redrive {
                Some(position) => {
                    self.redrive(position);
                    self.done_request();
                }
                None => return true,
            }
        }
    }

    fn done_request(&self) {
        let mut state = self.shared.state.lock();
        state.pending -= 1;
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Handles up to [`REACTOR_CHECKPOINT_RECORDS_MAX`] records, stopping
    /// early for a request, then checkpoints.
    fn step(&mut self) -> Next {
        let mut taken = 0;
        let mut next = Next::Wait;
        while taken < REACTOR_CHECKPOINT_RECORDS_MAX {
            let record = match self.subscription.try_next() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(SubscriptionError::Closed) => {
                    next = Next::Stop;
                    break;
                }
                Err(e) => {
                    // The subscription stays at the record that failed.
                    Counters::add(&self.shared.counters.read_failures, 1);
                    tracing::error!(reactor = %self.spec.name, error = %e, "a reactor cannot read the log");
                    next = Next::Retry;
                    break;
                }
            };
            taken += 1;
            next = Next::Continue;
            let position = record.header.position;
            if !self.spec.filter.matches(&record) {
                Counters::add(&self.shared.counters.skipped, 1);
                self.checkpoint = position + 1;
                continue;
            }
            match self.handle(&record) {
                Handled::Done => Counters::add(&self.shared.counters.handled, 1),
                Handled::Failed { attempts, error } => {
                    Counters::add(&self.shared.counters.parked, 1);
                    tracing::error!(
                        reactor = %self.spec.name, position, attempts, %error,
                        "a reactor parked a record"
                    );
                    self.parked.push(ParkedEvent {
                        position,
                        attempts,
                        error,
                    });
                }
                Handled::Interrupted => {
                    // Left for the replay, or the next run after a stop:
                    // the subscription goes back to it, so that nothing
                    // after it is checkpointed past it.
                    self.subscription
                        .seek(position)
                        .expect("the committed head never moves back");
                    next = Next::Continue;
                    break;
                }
            }
            self.checkpoint = position + 1;
            if self.shared.has_requests() {
                break;
            }
        }
        if !self.persist() {
            return Next::Stop;
        }
        next
    }

    /// Hands `record` to the handler up to the attempt limit.
    fn handle(&mut self, record: &CommittedRecord) -> Handled {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.call(record, attempt) {
                Ok(()) => return Handled::Done,
                Err(error) => error,
            };
            Counters::add(&self.shared.counters.failed_attempts, 1);
            tracing::warn!(
                reactor = %self.spec.name, position = record.header.position, attempt, %error,
                "a reactor's handler failed"
            );
            if attempt >= self.spec.attempts_max {
                return Handled::Failed {
                    attempts: attempt,
                    error: truncated(error),
                };
            }
            if !self.pause(self.spec.backoff.delay(attempt)) {
                return Handled::Interrupted;
            }
        }
    }

    /// One call of the handler; a panic is a failure.
    fn call(&mut self, record: &CommittedRecord, attempt: u32) -> Result<(), String> {
        let mut cx = ReactorContext {
            sink: &*self.sink,
            name: &self.spec.name,
            position: record.header.position,
            attempt,
            ordinal: 0,
        };
        let reactor = &mut self.reactor;
        match catch_unwind(AssertUnwindSafe(|| reactor.react(&mut cx, record))) {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string payload".to_string());
                Err(format!("the handler panicked: {message}"))
            }
        }
    }

    /// Waits `delay` on the log's clock, cut short by a stop, a replay or
    /// the engine closing. Returns `false` if cut short. On a clock moved
    /// by hand the wait ends when the clock reaches the end (its moves
    /// wake the feed), whatever the wall time.
    fn pause(&self, delay: Duration) -> bool {
        let shared = self.shared.clone();
        let delay_micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        let due = shared.clock.now_micros().saturating_add(delay_micros);
        let done = || shared.interrupting() || shared.clock.now_micros() >= due;
        while !done() && !shared.feed.is_closed() {
            // The wall time the clock would need: a moving clock's end, a
            // re-check of a still one.
            let left = due.saturating_sub(shared.clock.now_micros());
            let deadline = Instant::now() + Duration::from_micros(left);
            // No position is ever committed past u64::MAX: only the
            // deadline, a request, a clock move or the close end the wait.
            shared.feed.wait_for(u64::MAX, Some(deadline), &done);
        }
        !(shared.interrupting() || shared.feed.is_closed())
    }

    /// Writes `stage` and the checkpoint in one batch, retrying with
    /// backoff until it succeeds; then publishes the checkpoint. Returns
    /// `false` if a stop cut the retries short (nothing is then lost: the
    /// records after the persisted checkpoint are delivered again).
    fn write(&mut self, stage: impl Fn(&mut WriteBatch)) -> bool {
        let db = self.sink.db();
        let mut failures = 0;
        loop {
            let mut batch = WriteBatch::default();
            stage(&mut batch);
            store::put_checkpoint(db, &mut batch, &self.spec.name, self.checkpoint);
            match db.write(batch) {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    Counters::add(&self.shared.counters.storage_failures, 1);
                    tracing::error!(
                        reactor = %self.spec.name, error = %e,
                        "writing a reactor's checkpoint failed"
                    );
                    if !self.pause(self.spec.backoff.delay(failures)) {
                        return false;
                    }
                }
            }
        }
        self.persisted = self.checkpoint;
        self.shared.state.lock().checkpoint = self.checkpoint;
        self.shared.changed.notify_all();
        true
    }

    /// Writes the parked events and the checkpoint if either changed.
    fn persist(&mut self) -> bool {
        if self.checkpoint == self.persisted && self.parked.is_empty() {
            return true;
        }
        let parked = std::mem::take(&mut self.parked);
        let (db, name) = (self.sink.clone(), self.spec.name.clone());
        let written = self.write(|batch| {
            for p in &parked {
                store::put_parked(db.db(), batch, &name, p);
            }
        });
        if !written {
            self.parked = parked;
        }
        written
    }

    /// Moves the checkpoint to `position` and drops the parked events
    /// from there on.
    fn replay(&mut self, position: u64) {
        if !self.persist() {
            return;
        }
        let name = self.spec.name.clone();
        let dropped = match store::parked_from(self.sink.db(), &name, position) {
            Ok(dropped) => dropped,
            Err(e) => {
                tracing::error!(reactor = %name, error = %e, "a replay cannot list the parked events");
                return;
            }
        };
        if self.subscription.seek(position).is_err() {
            // The head never moves back: checked when the replay was asked.
            return;
        }
        self.checkpoint = position;
        let db = self.sink.clone();
        self.write(|batch| {
            for p in &dropped {
                store::delete_parked(db.db(), batch, &name, p.position);
            }
        });
        tracing::info!(reactor = %name, position, "a reactor replays");
    }

    /// Hands the parked record at `position` to the handler again.
    fn redrive(&mut self, position: u64) {
        let name = self.spec.name.clone();
        let parked = match store::parked_at(self.sink.db(), &name, position) {
            Ok(Some(parked)) => parked,
            // Re-driven already, or dropped by a replay.
            Ok(None) => return,
            Err(e) => {
                tracing::error!(reactor = %name, position, error = %e, "a re-drive cannot read its parked event");
                return;
            }
        };
        let record = match committed_records(
            self.sink.reads(),
            &self.hub,
            position..position + 1,
            |_| true,
            None,
        )
        .next()
        {
            Some(Ok(record)) => record,
            Some(Err(e)) => {
                Counters::add(&self.shared.counters.read_failures, 1);
                tracing::error!(reactor = %name, position, error = %e, "a re-drive cannot read its record");
                return;
            }
            None => {
                tracing::error!(reactor = %name, position, "a re-drive finds no record at its position");
                return;
            }
        };
        let db = self.sink.clone();
        match self.handle(&record) {
            Handled::Done => {
                Counters::add(&self.shared.counters.redriven, 1);
                tracing::info!(reactor = %name, position, "a reactor re-drove a parked record");
                self.write(|batch| store::delete_parked(db.db(), batch, &name, position));
            }
            Handled::Failed { attempts, error } => {
                let again = ParkedEvent {
                    position,
                    attempts: parked.attempts.saturating_add(attempts),
                    error,
                };
                tracing::error!(
                    reactor = %name, position, attempts = again.attempts,
                    "a re-driven record failed again and stays parked"
                );
                self.write(|batch| store::put_parked(db.db(), batch, &name, &again));
            }
            Handled::Interrupted => {}
        }
    }
}

/// Marks the reactor stopped when its thread ends, and wakes whoever
/// waits on it.
struct Finish(Arc<Shared>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.state.lock().running = false;
        self.0.changed.notify_all();
    }
}

/// `error` cut to at most [`PARKED_ERROR_BYTES_MAX`] bytes, at a character
/// boundary.
fn truncated(mut error: String) -> String {
    if error.len() > PARKED_ERROR_BYTES_MAX {
        let mut end = PARKED_ERROR_BYTES_MAX;
        while !error.is_char_boundary(end) {
            end -= 1;
        }
        error.truncate(end);
    }
    error
}
