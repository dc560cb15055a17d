//! keylet: a TPM 2.0 attestation agent for Keylime.

fn main() {
    eprintln!("keylet: not built yet");
    std::process::exit(2);
}
