//! Reads of the engine's read models that cannot deadlock the log's
//! writer: the scoped read behind [`crate::Engine::read`], and the
//! crate-internal [`ReadView`] guard it is built on.
//!
//! The writer takes the read models' write lock for each group-commit
//! batch. A thread that holds a read lock and then waits for the writer
//! (by executing a command) would wait forever: the writer waits for that
//! very read lock. A second read lock taken on the same thread while the
//! writer is queued would block too, because the lock is fair and lets a
//! waiting writer go first.
//!
//! Every read of the read models, the engine's own included, goes through
//! [`ReadView::acquire`], which counts the views each thread holds. With
//! that count:
//! - [`crate::Engine::execute`] (and everything that appends) refuses with
//!   [`crate::CommandError::ReadViewHeld`] instead of hanging when the
//!   calling thread holds a view;
//! - a nested view on the same thread is taken recursively, so it never
//!   queues behind the waiting writer.
//!
//! Hosts never hold a view: [`read_scoped`] lends the read models to a
//! closure and drops the view when the closure returns (or unwinds), so no
//! lock guard escapes, and the closure, being synchronous, cannot hold the
//! view across an `.await`. Inside the engine a view is neither `Send` nor
//! `Sync`, so it cannot be carried to another thread, where the count would
//! no longer describe the thread that holds it.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;

use parking_lot::{RwLock, RwLockReadGuard};
use projections::ReadModels;

thread_local! {
    /// How many [`ReadView`]s the current thread holds.
    static VIEWS_HELD: Cell<usize> = const { Cell::new(0) };
}

/// Runs `query` on the read models as of the last durable batch, under a
/// [`ReadView`] that is dropped when `query` returns or unwinds.
///
/// The result cannot borrow from the read models (`R` is chosen before the
/// borrow exists), so nothing of the lock outlives the call.
pub(crate) fn read_scoped<R>(lock: &RwLock<ReadModels>, query: impl FnOnce(&ReadModels) -> R) -> R {
    let view = ReadView::acquire(lock);
    query(&view)
}

/// A shared borrow of the read models, as of the last durable batch.
///
/// Dereferences to [`ReadModels`]. While any view is alive on a thread,
/// that thread cannot execute commands (they answer
/// [`crate::CommandError::ReadViewHeld`]); hold views briefly, as the writer
/// waits for them at the start of each batch.
pub(crate) struct ReadView<'a> {
    guard: RwLockReadGuard<'a, ReadModels>,
    /// Pins the view to the thread whose count it is part of.
    _not_send: PhantomData<*const ()>,
}

impl<'a> ReadView<'a> {
    /// Takes a read lock on `lock`: a plain one if this thread holds no
    /// view (it then waits behind a writer that is already queued), a
    /// recursive one if it does (it never waits for a writer that is itself
    /// waiting for this thread's first view).
    pub(crate) fn acquire(lock: &'a RwLock<ReadModels>) -> ReadView<'a> {
        let held = VIEWS_HELD.with(Cell::get);
        let guard = if held == 0 {
            lock.read()
        } else {
            lock.read_recursive()
        };
        VIEWS_HELD.with(|c| c.set(held + 1));
        ReadView {
            guard,
            _not_send: PhantomData,
        }
    }

    /// Whether the calling thread holds a view, so that waiting for the
    /// writer would deadlock.
    pub(crate) fn held_by_this_thread() -> bool {
        VIEWS_HELD.with(Cell::get) > 0
    }
}

impl Deref for ReadView<'_> {
    type Target = ReadModels;

    fn deref(&self) -> &ReadModels {
        &self.guard
    }
}

impl Drop for ReadView<'_> {
    fn drop(&mut self) {
        VIEWS_HELD.with(|c| {
            let held = c.get();
            assert!(
                held > 0,
                "a read view is dropped on the thread that took it"
            );
            c.set(held - 1);
        });
    }
}

impl std::fmt::Debug for ReadView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadView")
            .field("applied_position", &self.guard.applied_position())
            .finish_non_exhaustive()
    }
}
