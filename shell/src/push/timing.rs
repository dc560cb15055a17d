//! When to talk to the verifier next: its `seconds_to_next_attestation` and
//! `Retry-After` (bounded against absurd values), the configured interval as
//! the fallback, and capped exponential backoff with jitter while it is
//! unreachable or refusing ([`crate::backoff::Backoff`]).

use std::time::Duration;

/// The longest pause keylet accepts from the verifier: a larger value is
/// treated as absurd and the configured interval is used instead.
pub(crate) const MAX_HINT: Duration = Duration::from_secs(3600);
/// Added to `seconds_to_next_attestation` (which the verifier rounds to whole
/// seconds) so the next request does not arrive a fraction too early.
pub(crate) const HINT_MARGIN: Duration = Duration::from_millis(250);
/// The shortest pause after a `Retry-After` of 0 or an unreadable one.
pub(crate) const MIN_RETRY: Duration = Duration::from_millis(500);

/// The pause before the next attestation, from the verifier's hint; the
/// second value is a warning to log when the hint was unusable.
#[must_use]
pub(crate) fn next_attestation(
    hint: Option<i64>,
    fallback: Duration,
) -> (Duration, Option<String>) {
    match hint {
        None => (fallback, None),
        Some(s) if s < 0 => (
            HINT_MARGIN,
            Some(format!(
                "the verifier said the next attestation is due in {s} s (negative); attesting now"
            )),
        ),
        Some(s) if s.unsigned_abs() > MAX_HINT.as_secs() => (
            fallback,
            Some(format!(
                "the verifier said the next attestation is due in {s} s, more than {} s; \
                 using attestation_interval_seconds ({} s) instead",
                MAX_HINT.as_secs(),
                fallback.as_secs()
            )),
        ),
        Some(s) => (Duration::from_secs(s.unsigned_abs()) + HINT_MARGIN, None),
    }
}

/// The pause a `Retry-After` header asks for (seconds; an HTTP date or
/// garbage counts as absent), between [`MIN_RETRY`] and [`MAX_HINT`];
/// `default` when absent.
#[must_use]
pub(crate) fn retry_after(header: Option<&str>, default: Duration) -> Duration {
    let asked = header
        .and_then(|h| h.trim().parse::<u64>().ok())
        .map_or(default, Duration::from_secs);
    asked.clamp(MIN_RETRY, MAX_HINT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FALLBACK: Duration = Duration::from_secs(60);

    #[test]
    fn hints_are_followed_within_bounds() {
        for (hint, wait, warning) in [
            (None, FALLBACK, ""),
            (Some(2), Duration::from_secs(2) + HINT_MARGIN, ""),
            (Some(-5), HINT_MARGIN, "negative"),
            (Some(i64::MAX), FALLBACK, "attestation_interval_seconds"),
        ] {
            let (d, w) = next_attestation(hint, FALLBACK);
            assert_eq!((d, w.is_some()), (wait, !warning.is_empty()), "{hint:?}");
            assert!(w.unwrap_or_default().contains(warning), "{hint:?}");
        }
    }

    #[test]
    fn retry_after_is_clamped() {
        let d = Duration::from_secs(7);
        assert_eq!(retry_after(None, d), d);
        assert_eq!(retry_after(Some("3"), d), Duration::from_secs(3));
        assert_eq!(retry_after(Some("0"), d), MIN_RETRY);
        assert_eq!(retry_after(Some("99999999"), d), MAX_HINT);
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), d), d);
        assert_eq!(retry_after(Some("-1"), d), d);
    }
}
