//! The file end of the audit chain: opens (or creates, mode 0600) the file,
//! picks the chain up from its last line or starts a new segment over a
//! damaged tail, appends sealed batches, syncs, and rotates by size.
//! Only the writer thread holds one; nothing here runs on a request's path.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::chain::{open, Chain, ChainKey, GENESIS};
use super::records;
use super::verify::check_line;
use crate::policy::audit_file::AuditFileConfig;

/// What the file's tail says about where the chain goes on.
#[derive(Debug, PartialEq, Eq)]
pub enum Resume {
    /// No file, or an empty one: a new chain.
    Fresh,
    /// The last line verified: continue from its chain.
    Continue { chain: Chain, lines: u64 },
    /// The last line did not verify: a `chain_break` starts a new segment.
    Break { reason: String, line: u64, newline: bool },
}

/// Reads what the tail of a file allows. `tail` starts at a line start and
/// holds at least the last two lines; `lines_before` is the count of lines before it.
pub fn resume(key: &ChainKey, tail: &[u8], lines_before: u64) -> Resume {
    if tail.is_empty() && lines_before == 0 {
        return Resume::Fresh;
    }
    let lines = lines_before + tail.iter().filter(|b| **b == b'\n').count() as u64;
    let Some(body) = tail.strip_suffix(b"\n") else {
        let reason = "partial last line (no newline: the write was cut)".to_owned();
        return Resume::Break {
            reason,
            line: lines + 1,
            newline: true,
        };
    };
    let mut rev = body.rsplit(|b| *b == b'\n');
    let last = rev.next().unwrap_or_default();
    // The line before claims the chain the last one links to; `verify` checks that claim.
    let prev = rev.next().and_then(|l| open(l).ok()).map(|o| o.chain);
    match check_line(key, prev, last, lines == 1) {
        Ok(c) => Resume::Continue { chain: c.chain, lines },
        Err(reason) => Resume::Break {
            reason,
            line: lines,
            newline: false,
        },
    }
}

/// The last `TAIL` bytes of the file from a line start, the count of lines
/// before them, and the file's length; read without holding the whole file.
fn read_tail(path: &Path) -> io::Result<(Vec<u8>, u64, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0, 0)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL);
    let mut before = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut head = (&mut f).take(start);
    loop {
        let n = head.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        before += chunk
            .get(..n)
            .unwrap_or_default()
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
    }
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    if start > 0 {
        // The window may begin inside a line: it starts at the next line.
        let cut = tail.iter().position(|b| *b == b'\n').map_or(tail.len(), |i| i + 1);
        before += u64::from(cut > 0 && tail.get(cut - 1) == Some(&b'\n'));
        tail.drain(..cut);
    }
    Ok((tail, before, len))
}

/// Bytes of a file's end read at start: far more than two audit lines.
const TAIL: u64 = 1024 * 1024;

pub struct Writer {
    path: PathBuf,
    file: File,
    key: ChainKey,
    max_bytes: u64,
    /// Bytes of the file known written whole; a failed write is cut back to it.
    len: u64,
    /// Records after the file's first line (rotation needs at least one).
    records: u64,
    pub chain: Chain,
    dirty: bool,
    pub last_sync: Instant,
}

impl Writer {
    /// Opens the file and settles the chain (continue, fresh start or break).
    pub fn open(cfg: &AuditFileConfig) -> io::Result<Writer> {
        let key = ChainKey::new(cfg.key.0.bytes());
        let (tail, lines_before, len) = read_tail(&cfg.path)?;
        let file = create(&cfg.path)?;
        let mut w = Writer {
            path: cfg.path.clone(),
            file,
            key,
            max_bytes: cfg.max_bytes,
            len,
            records: 0,
            chain: GENESIS,
            dirty: false,
            last_sync: Instant::now(),
        };
        match resume(&w.key, &tail, lines_before) {
            Resume::Fresh => w.start_file(&GENESIS, "-")?,
            Resume::Continue { chain, lines } => {
                w.chain = chain;
                w.records = lines.saturating_sub(1);
            }
            Resume::Break { reason, line, newline } => w.start_segment(&reason, line, newline)?,
        }
        w.sync();
        Ok(w)
    }

    fn start_file(&mut self, prev: &Chain, prev_file: &str) -> io::Result<()> {
        let mut buf = Vec::new();
        let chain = self.seal(prev, &records::file_start(prev, prev_file), &mut buf)?;
        self.commit(&buf, chain)?;
        self.records = 0;
        Ok(())
    }

    fn start_segment(&mut self, reason: &str, line: u64, newline: bool) -> io::Result<()> {
        tracing::warn!(audit_file = %self.path.display(), line, reason, "audit file: damaged last line, a chain_break starts a new segment");
        let mut buf = Vec::new();
        if newline {
            buf.push(b'\n');
        }
        let chain = self.seal(&GENESIS, &records::chain_break(reason, line), &mut buf)?;
        self.commit(&buf, chain)
    }

    fn seal(&self, prev: &Chain, record: &[u8], buf: &mut Vec<u8>) -> io::Result<Chain> {
        self.key
            .seal(prev, record, buf)
            .ok_or_else(|| io::Error::other("record is not a one-line JSON object"))
    }

    /// Appends `buf` whole, or cuts the file back to where it was.
    fn commit(&mut self, buf: &[u8], chain: Chain) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(buf) {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        self.chain = chain;
        self.dirty = true;
        Ok(())
    }

    /// Seals and appends `batch`, rotating when the file would pass
    /// `max_bytes`. Returns how many records were lost (write errors).
    pub fn write(&mut self, batch: &[Vec<u8>]) -> u64 {
        let (mut buf, mut chain, mut pending, mut lost) = (Vec::new(), self.chain, 0u64, 0u64);
        for record in batch {
            let grown = self.len + (buf.len() + record.len() + 80) as u64;
            if grown > self.max_bytes && self.records + pending > 0 {
                lost += self.commit_or_count(&buf, chain, pending);
                (buf, pending) = (Vec::new(), 0);
                self.rotate();
                chain = self.chain;
            }
            match self.key.seal(&chain, record, &mut buf) {
                Some(c) => (chain, pending) = (c, pending + 1),
                None => lost += 1,
            }
        }
        lost + self.commit_or_count(&buf, chain, pending)
    }

    fn commit_or_count(&mut self, buf: &[u8], chain: Chain, n: u64) -> u64 {
        match self.commit(buf, chain) {
            Ok(()) => {
                self.records += n;
                0
            }
            Err(e) => {
                tracing::warn!(audit_file = %self.path.display(), error = %e, lost = n, "audit file: write failed, records lost (a gap record will say so)");
                n
            }
        }
    }

    /// Renames the file to `NAME.<UTC stamp>` and starts a new one whose
    /// first record continues the chain. On failure the old file goes on.
    fn rotate(&mut self) {
        self.sync();
        let rotated = match rotated_name(&self.path) {
            Some(r) => r,
            None => return,
        };
        let swapped = std::fs::rename(&self.path, &rotated).and_then(|()| create(&self.path));
        let file = match swapped {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(audit_file = %self.path.display(), error = %e, "audit file: rotation failed, writing on");
                return;
            }
        };
        self.file = file;
        self.len = 0;
        let name = rotated
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let prev = self.chain;
        if let Err(e) = self.start_file(&prev, &name) {
            tracing::warn!(audit_file = %self.path.display(), error = %e, "audit file: cannot start the new file");
        }
        sync_dir(&self.path);
        tracing::info!(audit_file = %self.path.display(), rotated_to = %name, audit_chain = %prev.as_str(), "audit file rotated");
    }

    /// fsync (data) if anything was written since the last one.
    pub fn sync(&mut self) {
        if self.dirty {
            if let Err(e) = self.file.sync_data() {
                tracing::warn!(audit_file = %self.path.display(), error = %e, "audit file: fsync failed");
            }
            self.dirty = false;
        }
        self.last_sync = Instant::now();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens for appending, creating the file with mode 0600 (before the umask).
fn create(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
    sync_dir(path);
    Ok(file)
}

/// A name no file has yet: `audit.jsonl.20261202T014000Z`, then `...Z-001`, `...Z-002`.
/// They sort in the order they were rotated, which is the order `verify` wants.
fn rotated_name(path: &Path) -> Option<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = format!("{}.{}", path.file_name()?.to_string_lossy(), records::stamp(secs));
    (0..1000u32)
        .map(|i| match i {
            0 => path.with_file_name(&base),
            _ => path.with_file_name(format!("{base}-{i:03}")),
        })
        .find(|p| !p.exists())
}

/// A new or renamed file's name survives a crash only once its directory is synced.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
}
