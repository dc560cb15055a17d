//! The boot time (`btime` of `/proc/stat`), sent as `boottime` so the verifier
//! resets its IMA state cleanly after a reboot.

use std::io;
use std::path::Path;

use super::LogError;

/// Reads the boot time, in seconds since the epoch, from `/proc/stat`.
///
/// Read it once at start: the kernel derives `btime` from the wall clock, so a
/// clock adjustment can move it by a second, and a changed value makes the
/// verifier skip one quote check.
///
/// # Errors
///
/// [`LogError`] if `/proc/stat` cannot be read or has no valid `btime` line.
pub(crate) fn read_boottime() -> Result<u64, LogError> {
    let path = Path::new("/proc/stat");
    let text = std::fs::read_to_string(path).map_err(|e| LogError::read(path, e))?;
    parse_btime(&text)
        .ok_or_else(|| LogError::read(path, io::Error::other("no valid 'btime' line")))
}

/// The value of the `btime` line of a `/proc/stat` text, if present and valid.
#[must_use]
pub(crate) fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btime_is_found_among_other_lines_and_missing_or_garbled_is_none() {
        let stat = "cpu  1 2 3\nintr 5 6\nctxt 77\nbtime 1767225600\nprocesses 9\n";
        assert_eq!(parse_btime(stat), Some(1_767_225_600));
        for bad in ["cpu 1\nctxt 2\n", "btime soon\n", "btimex 5\n"] {
            assert_eq!(parse_btime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_this_machines_boot_time() {
        let t = read_boottime();
        assert!(matches!(t, Ok(v) if v > 1_000_000_000), "{t:?}");
    }
}
