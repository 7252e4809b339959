//! Resident memory per idle live session, counted by a global allocator
//! that tracks the bytes allocated and not yet freed in this process.
//!
//! The members (and so their identities' mailboxes, shared by all of an
//! identity's devices) exist before the measurement: it counts what
//! opening one more live session per member costs, the `Session` value
//! itself included, right after opening and again once every session has
//! received a message and read it (idle again).
//!
//! Run: `cargo test -p engine-core --test fanout_memory -- --nocapture`
//! prints the figures.

mod fanout_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use engine_core::{EngineOptions, Session};
use fanout_support::*;

/// Bytes allocated and not yet freed.
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `GlobalAlloc::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is `GlobalAlloc::dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract is `GlobalAlloc::realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Members, each with one live session.
const MEMBERS: usize = 1_000;
/// The target: at most 1 KB resident per idle live session.
const IDLE_SESSION_BYTES_MAX: isize = 1_024;

fn live_bytes() -> isize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

#[test]
fn an_idle_live_session_costs_at_most_a_kilobyte() {
    let f = open(EngineOptions::default());
    let c = f.conversation();
    for i in 0..MEMBERS {
        f.join(c, &format!("member-{i}"));
    }
    // Open and drop one session first, so one-time allocations (the
    // registry's tables, thread-locals) are not counted per session.
    drop(f.live("member-0"));
    let before = live_bytes();
    let mut sessions: Vec<Session> = Vec::with_capacity(MEMBERS);
    for i in 0..MEMBERS {
        let session = f.live(&format!("member-{i}"));
        sessions.push(session);
    }
    let opened = (live_bytes() - before) / MEMBERS as isize;

    f.post(c, "member-0", "hello");
    for session in &mut sessions {
        assert_eq!(kinds(&take(session, 1, WAIT)), ["messageAdded"]);
    }
    let after_traffic = (live_bytes() - before) / MEMBERS as isize;
    println!(
        "resident bytes per idle live session ({MEMBERS} sessions): \
         {opened} right after opening, {after_traffic} after receiving a message"
    );
    assert!(opened <= IDLE_SESSION_BYTES_MAX, "{opened} B per session");
    assert!(
        after_traffic <= IDLE_SESSION_BYTES_MAX,
        "{after_traffic} B per session"
    );
    drop(sessions);
    eventually("every session unregistered", || {
        f.engine.fanout_metrics().sessions == 0
    });
}
