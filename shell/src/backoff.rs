//! Capped exponential backoff, keylet's one: registration retries its registrar on the exact
//! schedule the `exponential_backoff_*` options describe; push mode adds jitter so agents that lost
//! the same verifier do not come back in step.

use std::time::Duration;

/// The shortest jittered pause, unless the full pause is shorter.
const MIN_JITTERED: Duration = Duration::from_millis(500);

/// Pauses of `initial * 2^n`, capped at `max`, optionally drawn from their upper half (jitter).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    jitter: bool,
}

impl Backoff {
    /// A backoff starting at `initial`, never above `max`, with jitter.
    #[must_use]
    pub(crate) const fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            failures: 0,
            jitter: true,
        }
    }

    /// The same schedule without jitter: exactly `initial`, `2 * initial`, ...
    #[must_use]
    pub(crate) const fn exact(initial: Duration, max: Duration) -> Self {
        Self {
            jitter: false,
            ..Self::new(initial, max)
        }
    }

    /// The next pause (and one more failure counted).
    pub(crate) fn pause(&mut self) -> Duration {
        let shift = self.failures.min(16);
        self.failures = self.failures.saturating_add(1);
        let full = self.initial.saturating_mul(1u32 << shift).min(self.max);
        if !self.jitter {
            return full;
        }
        // 50-100 % of the full pause.
        let r = getrandom::u32().unwrap_or(u32::MAX / 2);
        let fraction = 0.5 + f64::from(r) / f64::from(u32::MAX) / 2.0;
        full.mul_f64(fraction).max(MIN_JITTERED.min(full))
    }

    /// Failures since the last [`Self::reset`].
    #[must_use]
    pub(crate) const fn failures(&self) -> u32 {
        self.failures
    }

    /// Back to the first pause after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_jitter_and_is_capped() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let first = b.pause();
        assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
        let second = b.pause();
        assert!(second >= Duration::from_secs(1) && second <= Duration::from_secs(2));
        for _ in 0..40 {
            assert!(b.pause() <= Duration::from_secs(10));
        }
        assert!(b.pause() >= Duration::from_secs(5));
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.pause() <= Duration::from_secs(1));
    }

    #[test]
    fn exact_doubles_up_to_the_cap() {
        let mut b = Backoff::exact(Duration::from_millis(300), Duration::from_secs(1));
        let pauses: Vec<_> = (0..4).map(|_| b.pause().as_millis()).collect();
        assert_eq!(pauses, [300, 600, 1000, 1000]);
        assert_eq!(b.failures(), 4);
    }
}
