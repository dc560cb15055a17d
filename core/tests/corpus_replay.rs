//! Replays every checked-in fuzz seed (fuzz/corpus/<target>/*) through the
//! same parser functions the cargo-fuzz targets run, on stable: no input may
//! panic, seeds named `valid-*` (recorded vectors) must parse, and every other
//! seed (a known-bad input: truncated, a trailing byte, the placeholder UUID,
//! a lying size field, ...) must be refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)]
#[path = "../../fuzz/targets.rs"]
mod targets;

#[path = "../../fuzz/replay.rs"]
mod replay;

#[test]
fn every_corpus_file_replays_without_panic() {
    let replayed = replay::replay(&targets::TARGETS, replay::Others::Rejected);
    assert!(replayed >= 30, "only {replayed} corpus files found");
}
