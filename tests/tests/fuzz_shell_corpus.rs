//! Replays every checked-in seed and regression input of the shell fuzz
//! targets (fuzz/corpus/{http_query,config_toml,registrar_response,revocation_notice}/*) through
//! the same functions the cargo-fuzz targets run, on stable: no input may
//! panic, seeds named `valid-*` must parse, and every other seed must be
//! rejected (each is a known-bad input: PCR 24, a 65-character nonce, the
//! placeholder UUID, an HTML error page, ...).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)]
#[path = "../../fuzz/shell_targets.rs"]
mod shell_targets;

#[path = "../../fuzz/replay.rs"]
mod replay;

#[test]
fn every_shell_corpus_file_replays_without_panic() {
    let replayed = replay::replay(&shell_targets::TARGETS, replay::Others::Rejected);
    assert!(replayed >= 20, "only {replayed} corpus files found");
}
