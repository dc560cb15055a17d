//! The IMA runtime measurement list and its line-offset index.
//!
//! The verifier asks for the log "from line N" (`ima_ml_entry`). Counting lines
//! from the start of a 20 MB log on every poll is wasteful, so [`ImaLog`]
//! keeps a small index: the total number of complete lines seen so far, the
//! byte offset just past the last of them, and a checkpoint (byte offset) every
//! `stride` lines. The log is append-only, so the index stays valid as it
//! grows; a shrunk or replaced regular file (detected on every refresh) resets it.
//!
//! Reads follow on from where the last one ended where they can: securityfs
//! formats the list again from its first entry for a read elsewhere.

use std::cmp::Ordering;
use std::io;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Mutex, PoisonError, TryLockError};

use super::{LogError, LogFile};

/// Lines between two checkpoints when the index is young.
const INITIAL_STRIDE: u64 = 1024;
/// The most checkpoints kept; past this the stride doubles and every other
/// checkpoint is dropped, so the index never exceeds this many `u64`s.
const MAX_CHECKPOINTS: usize = 4096;
/// Bytes read per `pread` while counting lines (on the stack).
const SCAN_CHUNK: usize = 16 * 1024;

/// The part of the IMA log one response carries: complete lines from byte
/// `start` up to (not including) byte `end`, the first being line `entry`
/// (sent as `ima_measurement_list_entry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImaSlice {
    pub start: u64,
    pub end: u64,
    pub entry: u64,
}

/// What is known about the log's complete lines.
#[derive(Debug)]
struct LineIndex {
    /// Complete (`\n`-terminated) lines counted.
    lines: u64,
    /// Byte offset just past the last counted line.
    end: u64,
    /// Lines between checkpoints (a power of two times [`INITIAL_STRIDE`]).
    stride: u64,
    /// `checkpoints[k]` is the byte offset of line `k * stride`.
    checkpoints: Vec<u64>,
    /// `(lines, end)` when the last refresh began: the line the verifier
    /// asks for next (it asks from the lines it has), found without a scan.
    recent: (u64, u64),
}

/// How a scan ended: found, at the end of the file, or past its budget.
enum Scan<T> {
    Found(T),
    End,
    Budget,
}

impl LineIndex {
    fn new() -> Self {
        Self {
            lines: 0,
            end: 0,
            stride: INITIAL_STRIDE,
            checkpoints: vec![0],
            recent: (0, 0),
        }
    }

    /// Records a complete line ending just before byte `next`.
    fn push_line(&mut self, next: u64) {
        self.lines = self.lines.saturating_add(1);
        self.end = next;
        if !self.lines.is_multiple_of(self.stride) {
            return;
        }
        if self.checkpoints.len() >= MAX_CHECKPOINTS {
            self.checkpoints = self.checkpoints.iter().copied().step_by(2).collect();
            self.stride = self.stride.saturating_mul(2);
        }
        if self.lines.is_multiple_of(self.stride) {
            self.checkpoints.push(next);
        }
    }

    /// The nearest known line start at or before line `line` (a checkpoint,
    /// or where the last refresh began): `(line number, offset)`.
    fn checkpoint_before(&self, line: u64) -> (u64, u64) {
        let k = line / self.stride;
        let k = usize::try_from(k)
            .unwrap_or(usize::MAX)
            .min(self.checkpoints.len().saturating_sub(1));
        let offset = self.checkpoints.get(k).copied().unwrap_or(0);
        let checkpoint = (self.stride.saturating_mul(k as u64), offset);
        match self.recent {
            recent if recent.0 <= line && recent.0 > checkpoint.0 => recent,
            _ => checkpoint,
        }
    }
}

/// The IMA runtime measurement list, opened once and re-read by offset: a
/// [`LogFile`] (which it dereferences to) with its line index.
#[derive(Debug)]
pub struct ImaLog {
    log: LogFile,
    /// A second descriptor for the index's reads, so that they and the
    /// answers' reads each follow on from where their last one ended.
    scanner: LogFile,
    index: Mutex<LineIndex>,
    /// Whether the file's size is its length: a regular file, not the kernel's
    /// list (securityfs reports size 0), which only grows until the host
    /// restarts, and keylet with it.
    sized: bool,
}

impl Deref for ImaLog {
    type Target = LogFile;

    fn deref(&self) -> &LogFile {
        &self.log
    }
}

impl ImaLog {
    /// Opens the log at `path` (default
    /// `/sys/kernel/security/ima/ascii_runtime_measurements`).
    ///
    /// # Errors
    ///
    /// [`LogError`] if the file cannot be opened.
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let log = LogFile::open(path)?;
        let meta = log
            .file
            .metadata()
            .map_err(|e| LogError::Open(path.into(), e))?;
        let sized = meta.len() > 0 || log.read_at(&mut [0u8; 1], 0)? == 0;
        let scanner = LogFile::open(path)?;
        Ok(Self {
            log,
            scanner,
            index: Mutex::new(LineIndex::new()),
            sized,
        })
    }

    /// Brings the index up to date and says which complete lines to send from
    /// line `requested` (keylime's `ima_ml_entry`): below the count, lines
    /// `requested..`; at it, none; past it (after a reboot), the whole log as
    /// entry 0. Blocks on file reads; the first call on a large log scans it.
    ///
    /// # Errors
    ///
    /// [`LogError`] if the file cannot be read.
    pub fn slice_from(&self, requested: u64) -> Result<ImaSlice, LogError> {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let slice = self.slice(&mut index, requested, false)?;
        slice.ok_or_else(|| LogError::Read(self.path.clone(), io::Error::other("scan cut short")))
    }

    /// [`Self::slice_from`] for an async thread: `Ok(None)` unless the index
    /// is free and one read from where the last refresh ended (usually the
    /// few lines since the last quote) brings it up to date; then call
    /// `slice_from` where blocking is fine (what was counted stays counted).
    ///
    /// # Errors
    ///
    /// [`LogError`] if the file cannot be read.
    pub fn try_slice_from(&self, requested: u64) -> Result<Option<ImaSlice>, LogError> {
        let mut index = match self.index.try_lock() {
            Ok(index) => index,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(None),
        };
        self.slice(&mut index, requested, true)
    }

    /// The slice for `requested` with the index brought up to date; with
    /// `inline`, `None` if that takes more than one read from where the last
    /// refresh ended (no scan from a checkpoint).
    fn slice(
        &self,
        index: &mut LineIndex,
        requested: u64,
        inline: bool,
    ) -> Result<Option<ImaSlice>, LogError> {
        let (budget, scan_to_line) = match inline {
            true => (SCAN_CHUNK as u64, 0),
            false => (u64::MAX, u64::MAX),
        };
        // On securityfs, a read that does not follow on is left to the
        // blocking path, which reads the byte before the answer's start so
        // that the answer's reads follow on.
        let seq = !self.sized;
        if (inline && seq && !self.scanner.follows_on(index.end)) || !self.refresh(index, budget)? {
            return Ok(None);
        }
        let end = index.end;
        let (start, entry) = match requested.cmp(&index.lines) {
            Ordering::Greater => (0, 0),
            Ordering::Equal => (end, requested),
            Ordering::Less => match self.offset_of_line(index, requested, scan_to_line)? {
                Some(start) => (start, requested),
                None => return Ok(None),
            },
        };
        if seq && start < end && !self.log.follows_on(start) {
            if inline {
                return Ok(None);
            }
            self.log.read_at(&mut [0u8; 1], start.saturating_sub(1))?;
        }
        Ok(Some(ImaSlice { start, end, entry }))
    }

    /// The number of complete lines, after bringing the index up to date.
    ///
    /// # Errors
    ///
    /// [`LogError`] if the file cannot be read.
    pub fn line_count(&self) -> Result<u64, LogError> {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        self.refresh(&mut index, u64::MAX)?;
        Ok(index.lines)
    }

    /// Counts the lines appended since the last refresh, after a reset if
    /// the file no longer holds what was counted (shrunk or replaced); false
    /// if more than `budget` bytes remain to be read.
    fn refresh(&self, index: &mut LineIndex, budget: u64) -> Result<bool, LogError> {
        if index.end > 0 && !self.still_holds(index)? {
            log::info!(
                "IMA log {} shrank or was replaced; re-indexing it",
                self.path().display()
            );
            *index = LineIndex::new();
        }
        index.recent = (index.lines, index.end);
        let scanned = self.scan(index.end, budget, |next| {
            index.push_line(next);
            None::<()>
        })?;
        Ok(!matches!(scanned, Scan::Budget))
    }

    /// Whether a regular file is still long enough and still has the `\n`
    /// that ended the last counted line before `index.end` (see `sized`).
    fn still_holds(&self, index: &LineIndex) -> Result<bool, LogError> {
        if !self.sized {
            return Ok(true);
        }
        let meta = self.file.metadata();
        let meta = meta.map_err(|e| LogError::Read(self.path.clone(), e))?;
        if meta.len() < index.end {
            return Ok(false);
        }
        let mut last = [0u8; 1];
        let n = self
            .scanner
            .read_at(&mut last, index.end.saturating_sub(1))?;
        Ok(n == 1 && last == [b'\n'])
    }

    /// The byte offset of line `line`, which must be below `index.lines`, or
    /// `None` past `budget` bytes read.
    fn offset_of_line(
        &self,
        index: &LineIndex,
        line: u64,
        budget: u64,
    ) -> Result<Option<u64>, LogError> {
        let (mut at_line, pos) = index.checkpoint_before(line);
        if at_line == line {
            return Ok(Some(pos));
        }
        let found = self.scan(pos, budget, |next| {
            at_line = at_line.saturating_add(1);
            (at_line == line).then_some(next)
        })?;
        Ok(match found {
            Scan::Found(pos) => Some(pos),
            // The file shrank under us: send from the last known end.
            Scan::End => Some(index.end),
            Scan::Budget => None,
        })
    }

    /// Calls `each` with the offset just past every `\n` from byte `pos` on,
    /// until it returns a value, the file ends, or `budget` bytes were read
    /// and more remain.
    fn scan<T>(
        &self,
        mut pos: u64,
        budget: u64,
        mut each: impl FnMut(u64) -> Option<T>,
    ) -> Result<Scan<T>, LogError> {
        let mut buf = [0u8; SCAN_CHUNK];
        let mut read = 0u64;
        loop {
            if read >= budget {
                return Ok(Scan::Budget);
            }
            let n = self.scanner.read_at(&mut buf, pos)?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                return Ok(Scan::End);
            };
            for (i, _) in chunk.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                if let Some(found) = each(pos.saturating_add(i as u64).saturating_add(1)) {
                    return Ok(Scan::Found(found));
                }
            }
            pos = pos.saturating_add(n as u64);
            read = read.saturating_add(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_async_caller_does_not_wait_for_an_index_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ima");
        std::fs::write(
            &path,
            "10 a ima-ng sha256:00 /a\n10 b ima-ng sha256:01 /b\n",
        )
        .unwrap();
        let log = ImaLog::open(&path).unwrap();
        assert!(log.sized);
        // A size of 0 with lines in it, as securityfs has.
        assert!(!ImaLog::open(Path::new("/proc/self/mounts")).unwrap().sized);
        let held = log.index.lock().unwrap();
        assert_eq!(log.try_slice_from(2).unwrap(), None);
        drop(held);
        let slice = log.try_slice_from(2).unwrap().unwrap();
        assert_eq!(slice, log.slice_from(2).unwrap());
        assert_eq!((slice.start, slice.end, slice.entry), (50, 50, 2));
    }

    #[test]
    fn on_securityfs_the_async_path_reads_only_where_the_last_read_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ima");
        let line = |i: u64| format!("10 {i:05} ima\n"); // 13 bytes
        std::fs::write(&path, (0..3000).map(line).collect::<String>()).unwrap();
        let mut log = ImaLog::open(&path).unwrap();
        log.sized = false; // as securityfs
        assert_eq!(
            log.try_slice_from(0).unwrap(),
            None,
            "a first scan of 39 kB"
        );
        assert_eq!(log.slice_from(3000).unwrap().end, 39_000);
        // An older line: scanned from a checkpoint on the blocking path, which
        // leaves the answer's descriptor where the answer starts.
        let older = log.slice_from(1500).unwrap();
        assert_eq!((older.start, log.follows_on(older.start)), (19_500, true));
        log.read_at(&mut [0u8; 19_500], older.start).unwrap(); // the answer
        // The index's descriptor stopped mid-file: its next read is left to
        // the blocking path, and after that the usual poll is served inline.
        assert_eq!(log.try_slice_from(3000).unwrap(), None);
        assert_eq!(log.slice_from(3000).unwrap().start, 39_000);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, line(3000).as_bytes()).unwrap();
        let next = log.try_slice_from(3000).unwrap().unwrap();
        assert_eq!((next.start, next.end, next.entry), (39_000, 39_013, 3000));
        // A read elsewhere (a second verifier's older line) is not served inline.
        log.read_at(&mut [0u8; 13], 0).unwrap();
        assert_eq!(log.try_slice_from(3000).unwrap(), None);
    }

    #[test]
    fn index_stays_bounded_and_checkpoints_stay_correct() {
        let mut index = LineIndex::new();
        let lines = INITIAL_STRIDE * (MAX_CHECKPOINTS as u64) * 3 + 17;
        // Line i is 10 bytes long, so line i starts at byte 10 * i.
        for i in 1..=lines {
            index.push_line(i * 10);
        }
        assert!(index.checkpoints.len() <= MAX_CHECKPOINTS);
        assert!(index.stride > INITIAL_STRIDE);
        for (k, off) in index.checkpoints.iter().enumerate() {
            assert_eq!(*off, k as u64 * index.stride * 10, "checkpoint {k}");
        }
        let (line, off) = index.checkpoint_before(lines - 1);
        assert!(line < lines && lines - 1 - line < index.stride);
        assert_eq!(off, line * 10);
        assert_eq!(index.lines, lines);
        assert_eq!(index.end, lines * 10);
    }
}
