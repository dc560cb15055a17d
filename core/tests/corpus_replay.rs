//! Replays every checked-in fuzz seed (fuzz/corpus/<target>/*) through the
//! same parser functions the cargo-fuzz targets run, on stable: no input may
//! panic, and seeds named `valid-*` (recorded vectors) must parse.
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
    let replayed = replay::replay(&targets::TARGETS, replay::Others::MayParse);
    assert!(replayed >= 30, "only {replayed} corpus files found");
}
