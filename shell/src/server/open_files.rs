//! How many connections may wait for their first byte, TLS handshake and
//! request head: derived from the process's limit on open files, which is
//! raised from its soft value toward the hard one once, at start. Counted in
//! `rlim_t`: 64 bits, but 32 on 32-bit glibc.

use std::sync::OnceLock;

use nix::libc::rlim_t;
use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// File descriptors kept free for everything but waiting connections: the
/// TPM, logs, state files, the registrar client, listeners, served
/// connections and the other listeners' waiting connections.
const RESERVED: rlim_t = 128;
/// The most connections allowed to wait, whatever the limit on open files:
/// about 2.5 kB each while they wait for their first byte (see README).
const MOST_PENDING: rlim_t = 4096;
/// The fewest, even under a tiny limit on open files.
const FEWEST_PENDING: rlim_t = 16;

/// The soft limit on open files, raised once per process to the hard limit
/// (or to what is needed).
pub(super) fn open_files_limit() -> rlim_t {
    static LIMIT: OnceLock<rlim_t> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok(l) => l,
            Err(e) => {
                log::warn!("cannot read the limit on open files (RLIMIT_NOFILE): {e}");
                return RESERVED + FEWEST_PENDING;
            }
        };
        let wanted = hard.min(RESERVED + MOST_PENDING);
        if wanted <= soft {
            return soft;
        }
        match setrlimit(Resource::RLIMIT_NOFILE, wanted, hard) {
            Ok(()) => {
                log::info!(
                    "raised the limit on open files from {soft} to {wanted} (hard limit {hard})"
                );
                wanted
            }
            Err(e) => {
                log::warn!("cannot raise the limit on open files from {soft} to {wanted}: {e}");
                soft
            }
        }
    })
}

/// How many connections may wait at once: what the limit on open files
/// leaves after [`RESERVED`], between [`FEWEST_PENDING`] and [`MOST_PENDING`].
pub(super) fn pending_budget() -> usize {
    let budget = open_files_limit()
        .saturating_sub(RESERVED)
        .clamp(FEWEST_PENDING, MOST_PENDING);
    usize::try_from(budget).unwrap_or(usize::MAX)
}
