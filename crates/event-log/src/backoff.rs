//! [`Backoff`]: exponential backoff with jitter, the one retry pacing used
//! by every retry loop in Colloquy (the writer's stalled-write retry here,
//! delivery retries in `engine-core`).
//!
//! The n-th retry's ceiling is `base × 2^(n−1)`, capped at `cap`. The delay
//! is drawn uniformly from the upper half of the ceiling,
//! `[ceiling / 2, ceiling]` ("equal jitter"): retries that failed together
//! spread out instead of retrying in lock-step, and every delay still keeps
//! at least half of its ceiling, so a host that sets a long backoff gets a
//! long wait, never a near-zero one as full jitter could draw.

use std::time::Duration;

/// The most doublings of the base a ceiling takes: `2^30` times the base is
/// far past any sensible cap, and keeps the shift from overflowing.
const BACKOFF_DOUBLINGS_MAX: u32 = 30;

/// Exponential backoff with jitter between a base and a cap (see the
/// module docs for the distribution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
}

impl Backoff {
    /// Backoff starting at `base` for the first retry and never above
    /// `cap` (a `cap` below `base` caps every ceiling at `cap`).
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap }
    }

    /// The first retry's ceiling.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The largest delay ever returned.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// The ceiling of retry `retry` (from 1): `base × 2^(retry − 1)`,
    /// capped at [`Backoff::cap`]; zero for retry 0 (nothing failed yet).
    pub fn ceiling(&self, retry: u32) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32 << (retry - 1).min(BACKOFF_DOUBLINGS_MAX);
        self.base
            .checked_mul(factor)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The delay before retry `retry` (from 1): uniform in
    /// `[ceiling / 2, ceiling]` of [`Backoff::ceiling`], at nanosecond
    /// resolution; zero for retry 0.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let floor = nanos / 2;
        Duration::from_nanos(fastrand::u64(floor..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
        assert_eq!(b.ceiling(0), Duration::ZERO);
        assert_eq!(b.ceiling(1), Duration::from_millis(10));
        assert_eq!(b.ceiling(2), Duration::from_millis(20));
        assert_eq!(b.ceiling(3), Duration::from_millis(40));
        assert_eq!(b.ceiling(4), Duration::from_millis(50));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_millis(50));
    }

    #[test]
    fn delays_stay_in_the_upper_half_of_the_ceiling_and_are_not_all_equal() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        assert_eq!(b.delay(0), Duration::ZERO);
        for retry in 1..=12 {
            let ceiling = b.ceiling(retry);
            let delays: Vec<Duration> = (0..200).map(|_| b.delay(retry)).collect();
            for d in &delays {
                assert!(
                    *d >= ceiling / 2 && *d <= ceiling,
                    "retry {retry}: {d:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
                assert!(*d <= b.cap());
            }
            let first = delays[0];
            assert!(
                delays.iter().any(|d| *d != first),
                "retry {retry}: 200 delays all equal {first:?}: no jitter"
            );
        }
    }

    #[test]
    fn a_huge_base_saturates_at_the_cap() {
        let b = Backoff::new(Duration::MAX, Duration::from_secs(300));
        assert_eq!(b.ceiling(5), Duration::from_secs(300));
        assert!(b.delay(5) <= Duration::from_secs(300));
    }
}
