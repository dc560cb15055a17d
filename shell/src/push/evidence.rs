//! What keylet offers and sends as evidence: the capabilities document
//! (the AK, the PCR bank, the IMA line count, the UEFI log, the boot time)
//! and, for what the verifier asked, the quote, the IMA lines from the
//! requested offset and the UEFI log. Blocking: [`quote`] runs on the TPM
//! worker, the rest (log reads) on tokio's blocking thread.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keylet_core::alg::KeyAlg;
use keylet_core::keylime::quote_string;

use super::PushError;
use super::messages::{self, Capabilities, Collected, Requested};
use crate::logs::{ImaLog, LogFile, MeasuredBootLog};
use crate::server::Attestation;

/// The largest UEFI log sent (real ones are tens of kilobytes).
const MAX_UEFI_LOG: u64 = 16 << 20;
/// Bytes read per step from the logs.
const CHUNK: usize = 64 * 1024;

/// The evidence sources besides the TPM: the logs that can be read, the
/// boot time (RFC 3339, fixed for the boot: see [`boot_time`]),
/// `uefi_logs_evidence_version` and `certification_keys_server_identifier`.
#[derive(Debug, Clone)]
pub struct Sources {
    pub ima: Option<Arc<ImaLog>>,
    pub uefi: Option<Arc<MeasuredBootLog>>,
    pub boot_time: String,
    pub uefi_version: String,
    pub server_identifier: String,
}

/// The capabilities document.
///
/// # Errors
///
/// [`PushError::Log`] if the IMA log cannot be read.
pub fn capabilities(tpm: &dyn Attestation, sources: &Sources) -> Result<Vec<u8>, PushError> {
    let info = tpm.agent_info();
    let ima_entries = sources.ima.as_deref().map(ImaLog::line_count).transpose();
    let ima_entries = ima_entries.map_err(|e| PushError::Log(e.to_string()))?;
    // The AK's key (an RSA-2048 or P-256 AK whatever the EK's size).
    let (key_algorithm, key_size) = match info.key_alg.ak_alg() {
        KeyAlg::EccP256 => ("ecc", 256),
        _ => ("rsa", 2048),
    };
    Ok(messages::capabilities(&Capabilities {
        bank: info.hash_alg,
        signature_scheme: info.sign_alg.name(),
        key_algorithm,
        key_size,
        server_identifier: &sources.server_identifier,
        ak_name: tpm.ak_name(),
        ak_public: tpm.ak_public(),
        ima_entries,
        uefi_version: sources.uefi.as_ref().map(|_| sources.uefi_version.as_str()),
        boot_time: &sources.boot_time,
    }))
}

/// The (first) quote `requested` asks for, if any (TPM commands); a second
/// one is refused by [`collect`].
///
/// # Errors
///
/// [`PushError::Tpm`] if the quote fails.
pub async fn quote(
    tpm: &dyn Attestation,
    requested: &[Requested],
) -> Result<Option<Collected>, PushError> {
    let Some((challenge, pcrs)) = requested.iter().find_map(|r| match r {
        Requested::Quote { challenge, pcrs } => Some((challenge, *pcrs)),
        _ => None,
    }) else {
        return Ok(None);
    };
    let text = tpm
        .quote_unbound(challenge, pcrs)
        .await
        .map_err(|e| PushError::Tpm(e.to_string()))?;
    let [message, signature, subject_data] = quote_string::split(&text)
        .map_err(|e| PushError::Tpm(e.to_string()))?
        .map(str::to_string);
    Ok(Some(Collected::Quote {
        message,
        signature,
        subject_data,
    }))
}

/// Collects what `requested` asks for, in its order, with `quote` (made
/// first, so the IMA lines read now cover every measurement in the quoted
/// PCR 10); with the range of IMA lines sent, for the logs.
///
/// # Errors
///
/// [`PushError::Tpm`] if the verifier asked for two quotes;
/// [`PushError::Log`] if a log asked for is missing or unreadable.
pub fn collect(
    mut quote: Option<Collected>,
    sources: &Sources,
    requested: &[Requested],
) -> Result<(Vec<Collected>, Option<Range<u64>>), PushError> {
    let mut sent = None;
    let mut out = Vec::with_capacity(requested.len());
    for r in requested {
        out.push(match r {
            Requested::Quote { .. } => quote.take().ok_or_else(|| {
                PushError::Tpm("the verifier asked for two quotes in one attestation".into())
            })?,
            Requested::Ima {
                starting_offset: from,
                entry_count,
            } => {
                let ima = sources.ima.as_ref().ok_or_else(|| {
                    PushError::Log(
                        "the verifier asks for IMA lines but keylet has no IMA log".into(),
                    )
                })?;
                let (entries, count) = ima_lines(ima, *from, *entry_count)?;
                sent = Some(*from..from + count);
                Collected::Ima {
                    entries,
                    entry_count: count,
                }
            }
            Requested::Uefi => {
                let uefi = sources.uefi.as_ref().ok_or_else(|| {
                    PushError::Log("the verifier asks for the UEFI log but keylet has none".into())
                })?;
                let bytes = read(uefi, 0..MAX_UEFI_LOG + 1)?;
                if bytes.len() as u64 > MAX_UEFI_LOG {
                    return Err(PushError::Log(format!(
                        "{} is larger than {} MiB",
                        uefi.path().display(),
                        MAX_UEFI_LOG >> 20
                    )));
                }
                Collected::Uefi {
                    entries: STANDARD.encode(&bytes),
                }
            }
        });
    }
    Ok((out, sent))
}

/// The IMA lines from line `from` (at most `limit` of them) and their number.
fn ima_lines(ima: &ImaLog, from: u64, limit: Option<u64>) -> Result<(String, u64), PushError> {
    let slice = ima
        .slice_from(from)
        .map_err(|e| PushError::Log(e.to_string()))?;
    if slice.entry != from {
        return Err(PushError::Log(format!(
            "the verifier asks for IMA lines from line {from}, but {} has fewer lines (was the \
             log replaced, or the host rebooted without a new boot time?)",
            ima.path().display()
        )));
    }
    let mut bytes = read(ima, slice.start..slice.end)?;
    if let Some(limit) = limit {
        let lines = bytes.split_inclusive(|b| *b == b'\n');
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        bytes.truncate(lines.take(limit).map(<[u8]>::len).sum());
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            log::warn!(
                "{} holds bytes that are not UTF-8; they are sent replaced (those lines will not verify)",
                ima.path().display()
            );
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    let count = text.bytes().filter(|b| *b == b'\n').count() as u64;
    Ok((text, count))
}

/// Reads `range` of `log`, [`CHUNK`] bytes at a time (less when the log
/// ends first).
fn read(log: &LogFile, range: Range<u64>) -> Result<Vec<u8>, PushError> {
    let (mut out, mut buf) = (Vec::new(), vec![0u8; CHUNK]);
    loop {
        let at = range.start + out.len() as u64;
        let want = usize::try_from(range.end.saturating_sub(at)).map_or(CHUNK, |w| w.min(CHUNK));
        let n = log
            .read_at(buf.get_mut(..want).unwrap_or(&mut []), at)
            .map_err(|e| PushError::Log(e.to_string()))?;
        if n == 0 {
            return Ok(out);
        }
        out.extend_from_slice(buf.get(..n).unwrap_or(&[]));
    }
}

/// The boot time as RFC 3339 UTC. The verifier compares it between
/// attestations: equal means "same boot, continue the IMA log where the last
/// good attestation stopped", later means "a new boot, from line 0", earlier
/// is refused. `/proc/stat`'s `btime` moves with wall-clock adjustments, so
/// the value is kept in `state_file` with the kernel's boot id and reused
/// while the boot id is the same (also across keylet restarts).
///
/// Errors: [`PushError::Setup`] if `/proc/stat` has no boot time.
pub(crate) fn boot_time(state_file: &Path) -> Result<String, PushError> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let saved = std::fs::read_to_string(state_file).ok().and_then(|s| {
        let (id, t) = s.trim().split_once(' ')?;
        (id == boot_id && !boot_id.is_empty())
            .then(|| t.parse::<u64>().ok())
            .flatten()
    });
    if let Some(t) = saved {
        return Ok(rfc3339(t));
    }
    let t = crate::logs::read_boottime()
        .map_err(|e| PushError::Setup(format!("the boot time is needed: {e}")))?;
    if !boot_id.is_empty()
        && let Err(e) =
            crate::store::write_private(state_file, format!("{boot_id} {t}\n").as_bytes())
    {
        log::warn!(
            "cannot keep the boot time in {}: {e}; a clock adjustment before the next keylet \
             start may make the verifier refuse the boot time",
            state_file.display()
        );
    }
    Ok(rfc3339(t))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS+00:00`.
#[must_use]
pub(crate) fn rfc3339(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(1_767_225_600), "2026-01-01T00:00:00+00:00");
    }

    #[test]
    fn ima_lines_from_an_offset_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ima");
        std::fs::write(&p, "l0\nl1\nl2\nl3\npartial").unwrap();
        let ima = ImaLog::open(&p).unwrap();
        assert_eq!(
            ima_lines(&ima, 0, None).unwrap(),
            ("l0\nl1\nl2\nl3\n".into(), 4)
        );
        assert_eq!(ima_lines(&ima, 2, None).unwrap(), ("l2\nl3\n".into(), 2));
        assert_eq!(ima_lines(&ima, 4, None).unwrap(), (String::new(), 0));
        assert_eq!(ima_lines(&ima, 1, Some(2)).unwrap(), ("l1\nl2\n".into(), 2));
        assert_eq!(ima_lines(&ima, 1, Some(0)).unwrap(), (String::new(), 0));
        let e = ima_lines(&ima, 9, None).unwrap_err().to_string();
        assert!(e.contains("from line 9"), "{e}");
    }

    #[test]
    fn boot_time_is_kept_for_the_boot() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("boot");
        let first = boot_time(&f).unwrap();
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
        std::fs::write(&f, format!("{} 1767225600\n", id.trim())).unwrap();
        assert_eq!(boot_time(&f).unwrap(), "2026-01-01T00:00:00+00:00");
        std::fs::write(&f, "another-boot 1767225600\n").unwrap();
        assert_eq!(boot_time(&f).unwrap(), first);
    }
}
