//! keylet: a TPM 2.0 attestation agent for Keylime.

use std::process::ExitCode;

use keylet::cli;

fn main() -> ExitCode {
    // (env::args panics on an argument that is not UTF-8; such an argument is
    // no command or option of keylet's and is reported as unknown)
    let args = std::env::args_os().skip(1);
    cli::main(args.map(|a| a.to_string_lossy().into_owned()).collect())
}
