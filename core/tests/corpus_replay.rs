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

#[test]
fn every_corpus_file_replays_without_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in targets::TARGETS {
        let dir = root.join(name);
        let mut valid = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let parsed = target(&data);
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if file.starts_with("valid-") {
                assert!(
                    parsed,
                    "{name}/{file} is a recorded vector but did not parse"
                );
                valid += 1;
            }
            replayed += 1;
        }
        assert!(valid > 0, "{name} has no valid seed");
    }
    assert!(replayed >= 30, "only {replayed} corpus files found");
}
