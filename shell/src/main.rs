//! keylet: a TPM 2.0 attestation agent for Keylime.

use std::process::ExitCode;

use keylet::cli;

fn main() -> ExitCode {
    cli::main(std::env::args().skip(1).collect())
}
