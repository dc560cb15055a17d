#![no_main]

#[allow(dead_code)]
#[path = "../shell_targets.rs"]
mod shell_targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shell_targets::verifier_response(data);
});
