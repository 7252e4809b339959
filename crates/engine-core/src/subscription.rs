//! Log subscriptions: following the durable log from a position, blocking
//! or async, woken when a batch commits.
//!
//! A host opens a [`Subscription`] with [`crate::Engine::subscribe`]. It
//! yields every committed record ([`CommittedRecord`]: header with its
//! position, and decoded event) from its start on, in log order, each
//! exactly once and with no gap. Reactors ([`crate::reactor`]) are built on
//! it; hosts can use it directly (audit trails, search indexing, CRM
//! sync).
//!
//! How it works:
//! - **Wake on commit.** The log's writer calls the engine's
//!   [`crate::StateMachine::committed`] once per durable batch, where the
//!   fan-out also hangs; there the `LogFeed` publishes the new committed
//!   head (an atomic) and wakes whoever waits: blocked subscribers on a
//!   condition variable, async ones through their task wakers. Nothing
//!   polls and nothing sleeps; the writer never waits for a subscriber (it
//!   takes one uncontended lock per batch).
//! - **Reads, not queues.** A subscription is a position, not a queue. It
//!   reads the records between its position and the committed head in
//!   chunks of at most [`SUBSCRIPTION_READ_CHUNK_RECORDS`]: from the
//!   fan-out's shared cache of recently committed records where it holds
//!   them (already decoded, shared with every other reader), from the log
//!   elsewhere. A subscriber that falls behind therefore costs nothing
//!   while it is behind and holds at most one chunk when it reads: never
//!   unbounded memory, and the writer never waits for it.
//!
//! Guarantees:
//! - **Only durable records.** The feed's head moves only once a batch is
//!   written with the log's configured [`crate::Durability`]; a batch that
//!   fails or is refused is never seen.
//! - **Log order, gap-free, exactly once** per subscription: positions come
//!   out as `start, start + 1, …` (asserted as they are read).
//! - **Damage is loud.** A record that cannot be read or decoded is a
//!   [`SubscriptionError::Read`] naming its position; the subscription does
//!   not skip it (asking again retries the same position).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::fanout::{committed_records, Hub};
use crate::log::{CommittedRecord, ReadError};
use crate::sources::Sources;

/// The most records a subscription reads (from the cache of recent
/// records or the log) per step, and so the most it buffers: bounds the
/// memory of a subscriber that is far behind and the work of one `next`
/// call, while amortising the log iterator's setup over many records.
pub const SUBSCRIPTION_READ_CHUNK_RECORDS: u64 = 1_024;

/// Where a new [`Subscription`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeFrom {
    /// With the record at this position (`Position(0)`: the whole log).
    /// It must not be past the log's next position; the next position
    /// itself means "the next record committed".
    Position(u64),
    /// With the next record committed after the subscription opens.
    Now,
}

/// Why a subscription could not open or yield its next record.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// [`SubscribeFrom::Position`] named a position past the log's next
    /// position (the store was written by a later run, or the position
    /// was never committed).
    #[error("position {position} is past the log's next position {next_position}")]
    PositionAhead {
        /// The position given.
        position: u64,
        /// The log's committed next position when the subscription tried to
        /// open.
        next_position: u64,
    },
    /// The record at `position` could not be read or decoded (I/O, or a
    /// damaged record: [`ReadError::Fault`] says what is wrong there).
    /// Nothing was skipped: asking for the next record retries it.
    #[error("reading the log at position {position} failed: {source}")]
    Read {
        /// The position of the record that could not be read.
        position: u64,
        /// Why.
        #[source]
        source: ReadError,
    },
    /// The log holds no record at `position`, below its committed head: the
    /// store was changed underneath the engine. Asking again retries.
    #[error("the log has no record at position {position}, below its committed head")]
    RecordMissing {
        /// The missing position.
        position: u64,
    },
    /// The engine was dropped: no more records will come.
    #[error("the engine is closed")]
    Closed,
}

/// The committed head of the log as the engine's state machine last saw it,
/// and who waits for it to move. Shared by the engine, its subscriptions
/// and its reactors.
pub(crate) struct LogFeed {
    /// The next position after the last durable batch.
    head: AtomicU64,
    closed: AtomicBool,
    /// Async subscribers waiting for the head to move, by subscription id.
    /// The head is stored under this lock, so a waiter that checked the head
    /// under it cannot miss the wake-up.
    wakers: Mutex<Vec<(u64, Waker)>>,
    /// Blocked subscribers wait here, under `wakers`' lock.
    ready: Condvar,
    next_id: AtomicU64,
}

impl LogFeed {
    /// A feed whose head is the log's next position at open.
    pub(crate) fn new(next_position: u64) -> Self {
        LogFeed {
            head: AtomicU64::new(next_position),
            closed: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
            ready: Condvar::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// The next position after the last durable batch.
    pub(crate) fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Whether the engine has closed the feed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Publishes a durable batch and wakes every waiter. Runs on the log's
    /// writer thread: one lock, never a wait.
    ///
    /// Panics if the batch does not start at the current head: the log
    /// hands over every durable batch once, in order, so a gap or an
    /// overlap is a broken invariant, not damage.
    pub(crate) fn committed(&self, records: &[Arc<CommittedRecord>]) {
        let (Some(first), Some(last)) = (records.first(), records.last()) else {
            return;
        };
        let wakers = {
            let mut wakers = self.wakers.lock();
            let head = self.head.load(Ordering::Relaxed);
            assert_eq!(
                first.header.position, head,
                "a durable batch starts at the committed head"
            );
            self.head.store(last.header.position + 1, Ordering::Release);
            std::mem::take(&mut *wakers)
        };
        self.ready.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Closes the feed (the engine is going away) and wakes every waiter.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.interrupt();
    }

    /// Wakes every waiter without moving the head: a blocked waiter
    /// re-checks its own stop condition (a reactor's control requests).
    pub(crate) fn interrupt(&self) {
        let wakers = std::mem::take(&mut *self.wakers.lock());
        self.ready.notify_all();
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Blocks until the record at `position` is committed, the feed is
    /// closed, `stop()` holds (checked under the feed's lock, so a
    /// [`LogFeed::interrupt`] after the condition changed is never missed)
    /// or `deadline` (if any) passes.
    pub(crate) fn wait_for(
        &self,
        position: u64,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) {
        let mut guard = self.wakers.lock();
        while self.head() <= position && !self.is_closed() && !stop() {
            match deadline {
                Some(deadline) => {
                    if self.ready.wait_until(&mut guard, deadline).timed_out() {
                        return;
                    }
                }
                None => self.ready.wait(&mut guard),
            }
        }
    }

    /// Registers `waker` (for subscription `id`, replacing its earlier one)
    /// to be woken once the record at `position` is committed. Returns
    /// `false`, registering nothing, if it already is or the feed is
    /// closed: the caller reads on instead of waiting.
    fn register(&self, id: u64, waker: &Waker, position: u64) -> bool {
        let mut wakers = self.wakers.lock();
        if self.head() > position || self.is_closed() {
            return false;
        }
        match wakers.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) => w.clone_from(waker),
            None => wakers.push((id, waker.clone())),
        }
        true
    }

    /// Forgets subscription `id`'s waker (it was dropped).
    fn forget(&self, id: u64) {
        self.wakers.lock().retain(|(i, _)| *i != id);
    }
}

/// A follower of the durable log: yields every committed record from its
/// start on, in log order, once each, with no gap.
///
/// Opened with [`crate::Engine::subscribe`]. Read it blocking with
/// [`Subscription::next`] (up to a deadline) or [`Subscription::try_next`],
/// or async with [`Subscription::next_async`] or as a
/// [`futures_core::Stream`]. It is woken when a batch commits; it never
/// polls.
///
/// A subscription is a position: it holds no queue while it waits, reads
/// what it missed in chunks of at most [`SUBSCRIPTION_READ_CHUNK_RECORDS`]
/// (from the shared cache of recent records, else the log), and keeps the
/// engine's store open only while it reads (it holds the engine weakly;
/// once the engine is dropped it yields [`SubscriptionError::Closed`]).
/// Only records durable under the log's configured durability are
/// yielded. Reading happens on the thread (or task) that asks for the
/// next record.
pub struct Subscription {
    sources: Sources,
    hub: Arc<Hub>,
    feed: Arc<LogFeed>,
    /// This subscription's key among the feed's wakers.
    id: u64,
    /// The position of the next record to read (after the buffer).
    next: u64,
    buffer: VecDeque<Arc<CommittedRecord>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("position", &self.position())
            .field("buffered", &self.buffer.len())
            .finish()
    }
}

impl Subscription {
    /// Opens a subscription at `from`.
    ///
    /// Errors: [`SubscriptionError::PositionAhead`] for a position past the
    /// feed's head; [`SubscriptionError::Closed`] if the feed is closed.
    pub(crate) fn open(
        sources: Sources,
        hub: Arc<Hub>,
        feed: Arc<LogFeed>,
        from: SubscribeFrom,
    ) -> Result<Self, SubscriptionError> {
        if feed.is_closed() {
            return Err(SubscriptionError::Closed);
        }
        let head = feed.head();
        let next = match from {
            SubscribeFrom::Now => head,
            SubscribeFrom::Position(position) if position > head => {
                return Err(SubscriptionError::PositionAhead {
                    position,
                    next_position: head,
                })
            }
            SubscribeFrom::Position(position) => position,
        };
        let id = feed.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(Subscription {
            sources,
            hub,
            feed,
            id,
            next,
            buffer: VecDeque::new(),
        })
    }

    /// The position of the next record this subscription yields: every
    /// record before it has been yielded. Store it to resume later with
    /// [`SubscribeFrom::Position`].
    pub fn position(&self) -> u64 {
        self.next - self.buffer.len() as u64
    }

    /// The log's committed next position, as the engine last published it
    /// (the subscription is caught up when [`Subscription::position`]
    /// equals it).
    pub fn head(&self) -> u64 {
        self.feed.head()
    }

    /// Moves the subscription to `position`: the next record it yields is
    /// the one there. Whatever it had buffered is dropped.
    ///
    /// Errors: [`SubscriptionError::PositionAhead`] for a position past the
    /// log's committed next position (the subscription is left as it was).
    pub fn seek(&mut self, position: u64) -> Result<(), SubscriptionError> {
        let head = self.feed.head();
        if position > head {
            return Err(SubscriptionError::PositionAhead {
                position,
                next_position: head,
            });
        }
        self.buffer.clear();
        self.next = position;
        Ok(())
    }

    /// The next record if one is committed, without waiting: `Ok(None)`
    /// when the subscription is caught up.
    ///
    /// Errors: [`SubscriptionError::Read`] or
    /// [`SubscriptionError::RecordMissing`] naming the position that could
    /// not be read (retried by the next call), [`SubscriptionError::Closed`]
    /// once the engine is dropped and everything buffered was yielded.
    pub fn try_next(&mut self) -> Result<Option<Arc<CommittedRecord>>, SubscriptionError> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                return Ok(Some(record));
            }
            if self.fill()? {
                continue;
            }
            if self.feed.is_closed() {
                return Err(SubscriptionError::Closed);
            }
            return Ok(None);
        }
    }

    /// The next record, waiting for it to be committed until `deadline`:
    /// `Ok(None)` if none was by then. Blocks the calling thread (use
    /// [`Subscription::next_async`] in async code); it is woken when a batch
    /// commits, never by polling.
    ///
    /// Errors: as [`Subscription::try_next`].
    #[allow(clippy::should_implement_trait)]
    pub fn next(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Arc<CommittedRecord>>, SubscriptionError> {
        loop {
            if let Some(record) = self.try_next()? {
                return Ok(Some(record));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            self.feed.wait_for(self.next, Some(deadline), &|| false);
        }
    }

    /// The next record, resolving once it is committed. The task is woken
    /// when a batch commits; any executor (or none) can poll this.
    /// Dropping the future loses nothing: the record is yielded by the next
    /// call.
    ///
    /// Errors: as [`Subscription::try_next`].
    pub async fn next_async(&mut self) -> Result<Arc<CommittedRecord>, SubscriptionError> {
        std::future::poll_fn(|cx| self.poll_record(cx)).await
    }

    fn poll_record(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Arc<CommittedRecord>, SubscriptionError>> {
        loop {
            match self.try_next() {
                Ok(Some(record)) => return Poll::Ready(Ok(record)),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            if self.feed.register(self.id, cx.waker(), self.next) {
                return Poll::Pending;
            }
        }
    }

    /// Reads the next chunk of committed records into the buffer. Returns
    /// whether it read any (`false`: caught up with the feed's head).
    ///
    /// Records read before a failure stay buffered and the failure is
    /// left to the next call, which starts at the record that failed.
    fn fill(&mut self) -> Result<bool, SubscriptionError> {
        let head = self.feed.head();
        if self.next >= head {
            return Ok(false);
        }
        let source = self.sources.upgrade().ok_or(SubscriptionError::Closed)?;
        let end = head.min(self.next.saturating_add(SUBSCRIPTION_READ_CHUNK_RECORDS));
        let mut expected = self.next;
        let mut failure = None;
        for record in committed_records(&*source, &self.hub, self.next..end, |_| true, None) {
            match record {
                Ok(record) => {
                    // Cache and log hand over consecutive positions.
                    assert_eq!(
                        record.header.position, expected,
                        "a subscription reads consecutive positions"
                    );
                    expected += 1;
                    self.buffer.push_back(record);
                }
                Err(source) => {
                    failure = Some(SubscriptionError::Read {
                        position: expected,
                        source,
                    });
                    break;
                }
            }
        }
        if failure.is_none() && expected < end {
            failure = Some(SubscriptionError::RecordMissing { position: expected });
        }
        self.next = expected;
        match failure {
            Some(e) if self.buffer.is_empty() => Err(e),
            _ => Ok(true),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.forget(self.id);
    }
}

impl futures_core::Stream for Subscription {
    type Item = Result<Arc<CommittedRecord>, SubscriptionError>;

    /// As [`Subscription::next_async`]; the stream ends (`None`) once the
    /// engine is closed.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_record(cx) {
            Poll::Ready(Err(SubscriptionError::Closed)) => Poll::Ready(None),
            Poll::Ready(item) => Poll::Ready(Some(item)),
            Poll::Pending => Poll::Pending,
        }
    }
}
