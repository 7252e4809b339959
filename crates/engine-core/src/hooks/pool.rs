//! Where pre-event hooks run: a pool of `colloquy-hook` threads, each call
//! answered through a [`CallSlot`] that the hook's thread or the deadline
//! thread (`colloquy-hook-deadline`) fills, whichever comes first.
//!
//! The caller never runs a hook itself, so its wait is bounded by the
//! hook's deadline even when the hook never returns: at the deadline the
//! slot answers [`CallOutcome::TimedOut`] and the caller goes on (the hook
//! keeps its thread until it returns, and its late answer is dropped). The
//! log's writer never sees a hook at all: hooks run before the command is
//! queued for it.
//!
//! Blocking and async callers wait the same way: a call is a future
//! ([`CallSlot::wait`]) woken by whoever fills the slot; the blocking
//! [`Engine::execute`](crate::Engine::execute) drives it with [`block_on`],
//! which parks the calling thread. No async runtime is needed, which keeps
//! [`Engine::execute_async`](crate::Engine::execute_async) as
//! executor-agnostic as the log's own async append, and an async caller's
//! task never blocks its executor's thread.
//!
//! Invariants:
//! - every submitted call is answered exactly once: by its hook, by the
//!   deadline, or at once when it cannot be queued;
//! - threads are started on demand, never more than the pool's maximum
//!   and never fewer than the calls in flight up to it, so a call waits in
//!   the queue only while every thread is busy;
//! - a call whose deadline passed while it was queued is answered by the
//!   deadline thread and never run.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::{HookDecision, HookFailure, PreEvent, PreEventHook};

/// How many hook calls may wait for a pool thread. Beyond it a call is
/// answered at once as unavailable (treated as a
/// failure under the hook's policy), rather than queued for a thread that
/// every waiting call's deadline says will come too late: each queued call
/// has a caller waiting for it, so this many waiting calls already means
/// every pool thread is stuck.
pub const HOOK_QUEUE_CALLS_MAX: usize = 4_096;

/// What one hook call came to.
#[derive(Debug)]
pub(crate) enum CallOutcome {
    /// The hook returned.
    Answered(Result<HookDecision, HookFailure>),
    /// The hook panicked; the panic's message.
    Panicked(String),
    /// The deadline passed first.
    TimedOut,
    /// The call could not be queued or run; why.
    Unavailable(String),
}

/// The answer of one call, filled once.
#[derive(Debug, Default)]
pub(crate) struct CallSlot {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    outcome: Option<CallOutcome>,
    /// Set once the outcome was taken by the waiter.
    taken: bool,
    waker: Option<Waker>,
}

impl CallSlot {
    /// Fills the slot unless it is filled already; wakes the waiter.
    /// Returns whether this outcome was the one kept.
    fn complete(&self, outcome: CallOutcome) -> bool {
        let waker = {
            let mut state = self.state.lock();
            if state.outcome.is_some() || state.taken {
                return false;
            }
            state.outcome = Some(outcome);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Whether the slot is filled (the call was answered or timed out).
    fn is_done(&self) -> bool {
        let state = self.state.lock();
        state.outcome.is_some() || state.taken
    }

    /// Resolves with the call's outcome.
    pub(crate) fn wait(self: &Arc<Self>) -> impl Future<Output = CallOutcome> + '_ {
        std::future::poll_fn(move |cx| {
            let mut state = self.state.lock();
            match state.outcome.take() {
                Some(outcome) => {
                    state.taken = true;
                    Poll::Ready(outcome)
                }
                None => {
                    state.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
    }
}

/// Drives `future` to completion on the calling thread, parking it while
/// the future waits (a hook call, woken by a pool or deadline thread).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// A call queued for a pool thread.
struct Job {
    hook: Arc<dyn PreEventHook>,
    event: PreEvent,
    slot: Arc<CallSlot>,
    deadline_key: DeadlineKey,
}

/// A deadline's place in the deadline thread's map: (when, a sequence
/// number that makes equal instants distinct).
type DeadlineKey = (Instant, u64);

/// What the pool threads and the deadline thread share.
struct Shared {
    queue: Mutex<Queue>,
    job_queued: Condvar,
    deadlines: Mutex<Deadlines>,
    deadline_changed: Condvar,
    /// Set when the pool is dropped: the threads end (a hook thread once
    /// the queue is drained).
    shutdown: AtomicBool,
}

/// The calls waiting for a hook thread, and the threads. A plain queue
/// under a lock, not a channel: an idle hook thread sleeps at once rather
/// than spinning for the next call on a machine whose cores the log's
/// writer needs.
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads started.
    started: usize,
    /// Calls queued or running.
    in_flight: usize,
    /// The most threads to start.
    max: usize,
}

#[derive(Default)]
struct Deadlines {
    next_seq: u64,
    pending: BTreeMap<DeadlineKey, Weak<CallSlot>>,
    /// Whether the deadline thread was started.
    started: bool,
    /// When the deadline thread wakes by itself next (`None`: only when
    /// notified). A new deadline at or after it needs no wake-up: with
    /// one timeout for every call, the thread wakes about once per
    /// timeout, not once per call.
    wakes_at: Option<Instant>,
}

/// The hook threads and the deadline thread. Threads start at the first
/// call; dropping the pool stops the deadline thread and lets each hook
/// thread end once its current hook returns.
pub(crate) struct HookPool {
    shared: Arc<Shared>,
}

impl HookPool {
    /// A pool of at most `threads_max` hook threads (at least one).
    pub(crate) fn new(threads_max: usize) -> HookPool {
        HookPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    started: 0,
                    in_flight: 0,
                    max: threads_max.max(1),
                }),
                job_queued: Condvar::new(),
                deadlines: Mutex::new(Deadlines::default()),
                deadline_changed: Condvar::new(),
                shutdown: AtomicBool::new(false),
            }),
        }
    }

    /// Runs `hook` on `event` on a pool thread; the returned slot is filled
    /// with its answer, or with [`CallOutcome::TimedOut`] at `deadline`.
    pub(crate) fn call(
        &self,
        hook: Arc<dyn PreEventHook>,
        event: PreEvent,
        deadline: Instant,
    ) -> Arc<CallSlot> {
        let slot = Arc::new(CallSlot::default());
        let deadline_key = match self.watch(deadline, &slot) {
            Ok(key) => key,
            Err(why) => {
                slot.complete(CallOutcome::Unavailable(why));
                return slot;
            }
        };
        let mut queue = self.shared.queue.lock();
        if queue.jobs.len() >= HOOK_QUEUE_CALLS_MAX {
            drop(queue);
            self.shared.forget(deadline_key);
            slot.complete(CallOutcome::Unavailable(format!(
                "{HOOK_QUEUE_CALLS_MAX} hook calls are already waiting for a hook thread"
            )));
            return slot;
        }
        queue.in_flight += 1;
        if queue.in_flight > queue.started && queue.started < queue.max {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("colloquy-hook".into())
                .spawn(move || run_hooks(&shared));
            match spawned {
                Ok(_) => queue.started += 1,
                // The call waits for a thread already started, or for its
                // deadline if there is none.
                Err(e) => tracing::error!("could not start a hook thread: {e}"),
            }
        }
        queue.jobs.push_back(Job {
            hook,
            event,
            slot: slot.clone(),
            deadline_key,
        });
        drop(queue);
        self.shared.job_queued.notify_one();
        slot
    }

    /// Registers `slot` to be answered [`CallOutcome::TimedOut`] at
    /// `deadline`, starting the deadline thread on first use.
    fn watch(&self, deadline: Instant, slot: &Arc<CallSlot>) -> Result<DeadlineKey, String> {
        let mut deadlines = self.shared.deadlines.lock();
        if !deadlines.started {
            let shared = self.shared.clone();
            std::thread::Builder::new()
                .name("colloquy-hook-deadline".into())
                .spawn(move || run_deadlines(shared))
                .map_err(|e| format!("could not start the hook deadline thread: {e}"))?;
            deadlines.started = true;
        }
        let key = (deadline, deadlines.next_seq);
        deadlines.next_seq += 1;
        deadlines.pending.insert(key, Arc::downgrade(slot));
        if deadlines.wakes_at.is_none_or(|at| deadline < at) {
            // Wakes the thread if it waits; if it does not, it holds the
            // lock, and sees this deadline before it waits again.
            deadlines.wakes_at = Some(deadline);
            self.shared.deadline_changed.notify_one();
        }
        Ok(key)
    }
}

impl Drop for HookPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Under each lock, so no thread misses it between its check and
        // its wait.
        drop(self.shared.queue.lock());
        self.shared.job_queued.notify_all();
        drop(self.shared.deadlines.lock());
        self.shared.deadline_changed.notify_all();
    }
}

impl Shared {
    /// Drops a deadline that no longer needs watching.
    fn forget(&self, key: DeadlineKey) {
        self.deadlines.lock().pending.remove(&key);
    }
}

/// A hook thread: runs queued calls until the pool is dropped and the
/// queue is drained.
fn run_hooks(shared: &Shared) {
    loop {
        let job = {
            let mut queue = shared.queue.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if shared.shutdown.load(Ordering::SeqCst) {
                    return;
                }
                shared.job_queued.wait(&mut queue);
            }
        };
        if !job.slot.is_done() {
            let outcome = match catch_unwind(AssertUnwindSafe(|| job.hook.call(&job.event))) {
                Ok(answer) => CallOutcome::Answered(answer),
                Err(panic) => CallOutcome::Panicked(panic_message(panic.as_ref())),
            };
            job.slot.complete(outcome);
        }
        shared.forget(job.deadline_key);
        shared.queue.lock().in_flight -= 1;
    }
}

/// The deadline thread: answers each call still unanswered at its
/// deadline with [`CallOutcome::TimedOut`].
fn run_deadlines(shared: Arc<Shared>) {
    let mut deadlines = shared.deadlines.lock();
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        match deadlines.pending.first_key_value().map(|(key, _)| *key) {
            Some(key) if key.0 <= now => {
                if let Some(slot) = deadlines.pending.remove(&key).and_then(|s| s.upgrade()) {
                    slot.complete(CallOutcome::TimedOut);
                }
            }
            Some((at, _)) => {
                deadlines.wakes_at = Some(at);
                shared.deadline_changed.wait_until(&mut deadlines, at);
            }
            None => {
                deadlines.wakes_at = None;
                shared.deadline_changed.wait(&mut deadlines);
            }
        }
    }
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
