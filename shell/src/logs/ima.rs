//! The IMA runtime measurement list and its line-offset index.
//!
//! The verifier asks for the log "from line N" (`ima_ml_entry`). Counting lines
//! from the start of a 20 MB log on every poll is wasteful, so [`ImaLog`]
//! keeps a small index: the total number of complete lines seen so far, the
//! byte offset just past the last of them, and a checkpoint (byte offset) every
//! `stride` lines. The log is append-only, so the index stays valid as it
//! grows; a shrunk or replaced file (detected on every refresh) resets it.

use std::cmp::Ordering;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{LogError, LogFile};

/// Lines between two checkpoints when the index is young.
const INITIAL_STRIDE: u64 = 1024;
/// The most checkpoints kept; past this the stride doubles and every other
/// checkpoint is dropped, so the index never exceeds this many `u64`s.
const MAX_CHECKPOINTS: usize = 4096;
const SCAN_CHUNK: usize = 64 * 1024;

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
}

impl LineIndex {
    fn new() -> Self {
        Self {
            lines: 0,
            end: 0,
            stride: INITIAL_STRIDE,
            checkpoints: vec![0],
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

    /// The nearest checkpoint at or before line `line`: `(line number, offset)`.
    fn checkpoint_before(&self, line: u64) -> (u64, u64) {
        let k = line / self.stride;
        let k = usize::try_from(k)
            .unwrap_or(usize::MAX)
            .min(self.checkpoints.len().saturating_sub(1));
        let offset = self.checkpoints.get(k).copied().unwrap_or(0);
        (self.stride.saturating_mul(k as u64), offset)
    }
}

/// The IMA runtime measurement list, opened once and re-read by offset: a
/// [`LogFile`] (which it dereferences to) with its line index.
#[derive(Debug)]
pub struct ImaLog {
    log: LogFile,
    index: Mutex<LineIndex>,
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
        let index = Mutex::new(LineIndex::new());
        Ok(Self { log, index })
    }

    /// Brings the index up to date with the file and says which lines to send
    /// for a request starting at line `requested` (keylime's `ima_ml_entry`):
    ///
    /// * `requested` < lines: lines `requested..`, entry `requested`;
    /// * `requested` == lines: nothing, entry `requested`;
    /// * `requested` > lines (e.g. after a reboot): the whole log, entry 0.
    ///
    /// Only complete, `\n`-terminated lines are included. This blocks on file
    /// reads; the first call on a large log scans it once.
    ///
    /// # Errors
    ///
    /// [`LogError`] if the file cannot be read.
    pub fn slice_from(&self, requested: u64) -> Result<ImaSlice, LogError> {
        let index = self.refreshed()?;
        let end = index.end;
        let (start, entry) = match requested.cmp(&index.lines) {
            Ordering::Greater => (0, 0),
            Ordering::Equal => (end, requested),
            Ordering::Less => (self.offset_of_line(&index, requested)?, requested),
        };
        Ok(ImaSlice { start, end, entry })
    }

    /// The number of complete lines, after bringing the index up to date.
    ///
    /// # Errors
    ///
    /// [`LogError`] if the file cannot be read.
    pub fn line_count(&self) -> Result<u64, LogError> {
        Ok(self.refreshed()?.lines)
    }

    /// The index, locked, after counting the lines appended since the last
    /// refresh; reset first if the file no longer holds what was counted
    /// (shrunk or replaced).
    fn refreshed(&self) -> Result<MutexGuard<'_, LineIndex>, LogError> {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        if index.end > 0 && !self.still_holds(&index)? {
            log::info!(
                "IMA log {} shrank or was replaced; re-indexing it",
                self.path().display()
            );
            *index = LineIndex::new();
        }
        let end = index.end;
        self.scan(end, |next| {
            index.push_line(next);
            None::<()>
        })?;
        Ok(index)
    }

    /// Whether the byte before `index.end` is still the `\n` that ended the
    /// last counted line (and, for regular files, the file is long enough).
    fn still_holds(&self, index: &LineIndex) -> Result<bool, LogError> {
        let meta = self.file.metadata();
        let meta = meta.map_err(|e| LogError::new(&self.path, false, e))?;
        // securityfs reports size 0, so the length check applies to regular files only.
        if meta.is_file() && meta.len() != 0 && meta.len() < index.end {
            return Ok(false);
        }
        let mut last = [0u8; 1];
        let n = self.read_at(&mut last, index.end.saturating_sub(1))?;
        Ok(n == 1 && last == [b'\n'])
    }

    /// The byte offset of line `line`, which must be below `index.lines`.
    fn offset_of_line(&self, index: &LineIndex, line: u64) -> Result<u64, LogError> {
        let (mut at_line, pos) = index.checkpoint_before(line);
        if at_line == line {
            return Ok(pos);
        }
        let found = self.scan(pos, |next| {
            at_line = at_line.saturating_add(1);
            (at_line == line).then_some(next)
        })?;
        // None: the file shrank under us; send from the last known end.
        Ok(found.unwrap_or(index.end))
    }

    /// Calls `each` with the offset just past every `\n` from byte `pos` on,
    /// until it returns a value (returned) or the file ends (`None`).
    fn scan<T>(
        &self,
        mut pos: u64,
        mut each: impl FnMut(u64) -> Option<T>,
    ) -> Result<Option<T>, LogError> {
        let mut buf = vec![0u8; SCAN_CHUNK];
        loop {
            let n = self.read_at(&mut buf, pos)?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                return Ok(None);
            };
            for (i, _) in chunk.iter().enumerate().filter(|(_, b)| **b == b'\n') {
                if let Some(found) = each(pos.saturating_add(i as u64).saturating_add(1)) {
                    return Ok(Some(found));
                }
            }
            pos = pos.saturating_add(n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
