//! Replays every checked-in seed and regression input of the shell fuzz
//! targets (fuzz/corpus/{http_query,config_toml,registrar_response}/*) through
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

#[test]
fn every_shell_corpus_file_replays_without_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in shell_targets::TARGETS {
        let dir = root.join(name);
        let (mut valid, mut bad) = (0, 0);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let parsed = target(&data);
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with("valid-") {
                assert!(parsed, "{name}/{file} is a good input but did not parse");
                valid += 1;
            } else if !file.starts_with("crash-") {
                assert!(!parsed, "{name}/{file} is a bad input but parsed");
                bad += 1;
            }
            replayed += 1;
        }
        assert!(
            valid > 0 && bad > 0,
            "{name}: {valid} good and {bad} bad seeds"
        );
    }
    assert!(replayed >= 15, "only {replayed} corpus files found");
}
