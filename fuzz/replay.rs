//! Replaying the checked-in corpus (fuzz/corpus/<target>/*) through the
//! fuzzed parser functions on stable, shared by core/tests/corpus_replay.rs
//! and tests/tests/fuzz_shell_corpus.rs: no input may panic, and seeds
//! named `valid-*` must parse.

use std::path::Path;

/// A fuzzed parser: returns whether the input parsed.
pub type Target = fn(&[u8]) -> bool;

/// What the seeds not named `valid-*` (nor `crash-*`) must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Others {
    /// Anything but panic (random seeds may happen to parse).
    MayParse,
    /// Be rejected: every such seed is a known-bad input.
    Rejected,
}

/// Replays every corpus file of every target; returns how many were replayed.
///
/// # Panics
///
/// When a seed does not do what its name says, or a target has no `valid-*`
/// seed (and, for [`Others::Rejected`], no bad one).
pub fn replay(targets: &[(&str, Target)], others: Others) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for (name, target) in targets {
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
            } else if others == Others::Rejected && !file.starts_with("crash-") {
                assert!(!parsed, "{name}/{file} is a bad input but parsed");
                bad += 1;
            }
            replayed += 1;
        }
        assert!(valid > 0, "{name} has no valid seed");
        assert!(
            others == Others::MayParse || bad > 0,
            "{name} has no bad seed"
        );
    }
    replayed
}
