//! What the commands print for the person at the terminal: their output on stdout,
//! their errors on stderr.
//!
//! `print!` and `eprint!` panic when the stream is gone (`keylet doctor | head -1`
//! closes the pipe early), and the release binaries abort on a panic. These write
//! what they can and drop the rest: a reader that left wants no more.

use std::io::Write as _;

pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

pub(crate) fn out_line(text: &str) {
    out(&format!("{text}\n"));
}

pub(crate) fn err_line(text: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{text}\n").as_bytes());
}
