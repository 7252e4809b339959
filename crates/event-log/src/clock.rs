//! The log's clock: where the writer's record timestamps (and everything
//! else that needs the time, such as the engine's conversation timers)
//! come from.
//!
//! One mechanism: a [`Clock`] set with [`crate::LogOptions::clock`]. The
//! default, [`SystemClock`], reads the wall clock. [`TestClock`] moves
//! only when told ([`TestClock::advance`], [`TestClock::set`]), so a test
//! can let an hour pass without sleeping; each move calls the listeners
//! registered with [`Clock::listen`], so a thread that waits for a time
//! on this clock (the engine's timer thread) is woken by the move instead
//! of by real time passing.
//!
//! Records never go back in time: the writer stamps each record with the
//! clock's time or its predecessor's, whichever is later, so a clock that
//! is set back (or a wall clock that jumps back) never breaks the order of
//! `recorded_at`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use events::TimestampMicros;
use parking_lot::Mutex;

/// Called after a [`TestClock`] moves. Returns `false` once whoever
/// listened is gone: the clock then forgets the listener.
pub type ClockListener = Box<dyn Fn() -> bool + Send + Sync>;

/// A source of wall-clock time, microseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now_micros(&self) -> TimestampMicros;

    /// Registers `listener`, to be called each time this clock's time is
    /// moved by hand. A clock that moves by itself (the wall clock) never
    /// calls it, and the default drops it: a waiter on such a clock wakes
    /// on its own deadline.
    fn listen(&self, listener: ClockListener) {
        drop(listener);
    }
}

/// The wall clock (`SystemTime::now`), the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// The wall clock's time; 0 if it reads before the Unix epoch.
    fn now_micros(&self) -> TimestampMicros {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as TimestampMicros)
            .unwrap_or(0)
    }
}

/// A clock that stands still until moved: for tests of anything that
/// depends on time passing (conversation timers), without sleeping.
///
/// Share it as an `Arc<TestClock>`: one handle goes into
/// [`crate::LogOptions::clock`], the test keeps another to move it.
#[derive(Default)]
pub struct TestClock {
    micros: AtomicU64,
    listeners: Mutex<Vec<ClockListener>>,
}

impl fmt::Debug for TestClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClock")
            .field("micros", &self.micros.load(Ordering::SeqCst))
            .field("listeners", &self.listeners.lock().len())
            .finish()
    }
}

impl TestClock {
    /// A clock that reads `start_micros` until moved.
    pub fn new(start_micros: TimestampMicros) -> Self {
        TestClock {
            micros: AtomicU64::new(start_micros),
            listeners: Mutex::new(Vec::new()),
        }
    }

    /// Moves the clock forward by `by` (saturating at `u64::MAX` µs) and
    /// wakes the listeners. Returns the new time.
    pub fn advance(&self, by: Duration) -> TimestampMicros {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        let mut now = 0;
        // `fetch_update` with a closure that never refuses cannot fail.
        let _ = self
            .micros
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                now = t.saturating_add(by);
                Some(now)
            });
        self.notify();
        now
    }

    /// Sets the clock to `micros` (backwards too: records still never go
    /// back in time, see the module docs) and wakes the listeners.
    pub fn set(&self, micros: TimestampMicros) {
        self.micros.store(micros, Ordering::SeqCst);
        self.notify();
    }

    fn notify(&self) {
        self.listeners.lock().retain(|listener| listener());
    }
}

impl Clock for TestClock {
    fn now_micros(&self) -> TimestampMicros {
        self.micros.load(Ordering::SeqCst)
    }

    fn listen(&self, listener: ClockListener) {
        self.listeners.lock().push(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn test_clock_moves_only_when_told_and_wakes_its_listeners() {
        let clock = TestClock::new(1_000);
        assert_eq!(clock.now_micros(), 1_000);
        let woken = Arc::new(AtomicUsize::new(0));
        let seen = woken.clone();
        clock.listen(Box::new(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            true
        }));
        assert_eq!(clock.advance(Duration::from_secs(60)), 60_001_000);
        assert_eq!(clock.now_micros(), 60_001_000);
        clock.set(5);
        assert_eq!(clock.now_micros(), 5);
        assert_eq!(woken.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_listener_that_is_gone_is_forgotten() {
        let clock = TestClock::new(0);
        clock.listen(Box::new(|| false));
        clock.advance(Duration::from_micros(1));
        assert_eq!(clock.listeners.lock().len(), 0);
    }

    #[test]
    fn the_system_clock_reads_the_wall_clock() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        let now = SystemClock.now_micros();
        assert!(now >= before, "{now} < {before}");
    }
}
