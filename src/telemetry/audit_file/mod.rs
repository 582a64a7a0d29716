//! The tamper-evident audit file (`server.audit_file`): every audit record is
//! also appended there, HMAC-chained to the one before (`chain`), by one
//! writer thread fed through a bounded queue, so a request never waits on disk.
//!
//! Overload policy: a request never blocks on the file. When the queue is full
//! the record is dropped, counted in `egress_guard_audit_file_dropped_total`,
//! and the writer puts a chained `gap` record (how many were lost) into the
//! file and a WARN into the log: a loss is visible in the chain itself, never silent.

pub mod chain;
pub mod records;
pub mod verify;
pub mod writer;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;

use crate::policy::audit_file::AuditFileConfig;
use writer::Writer;

/// Records waiting for the writer; past this they are dropped (and counted).
const QUEUE: usize = 32 * 1024;
/// Most records sealed and written in one `write`.
const MAX_BATCH: usize = 4096;
/// The longest a written record waits for its fsync.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How often the chain's head is logged (an external anchor against tail truncation).
const ANCHOR_EVERY: Duration = Duration::from_secs(60);

enum Msg {
    Record(Vec<u8>),
    Close,
}

/// The handle requests append through; held by the store's telemetry.
pub struct AuditFile {
    tx: SyncSender<Msg>,
    dropped: Arc<AtomicU64>,
    metric: Counter,
    closed_warned: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditFile")
    }
}

impl AuditFile {
    /// Opens the file and settles its chain (an error here stops the start),
    /// then starts the writer thread. `metric` counts dropped records.
    pub fn start(cfg: &AuditFileConfig, metric: Counter) -> std::io::Result<AuditFile> {
        AuditFile::with_queue(cfg, metric, QUEUE)
    }

    /// `start` with a queue of `queue` records (tests make it tiny to overflow it).
    pub(crate) fn with_queue(cfg: &AuditFileConfig, metric: Counter, queue: usize) -> std::io::Result<AuditFile> {
        let w = Writer::open(cfg)?;
        tracing::info!(audit_file = %cfg.path.display(), audit_chain = %w.chain.as_str(), "audit file open");
        let (tx, rx) = sync_channel(queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let (shared, lost) = (dropped.clone(), metric.clone());
        let thread = std::thread::Builder::new()
            .name("audit-file".into())
            .spawn(move || run(w, &rx, &shared, &lost))?;
        Ok(AuditFile {
            tx,
            dropped,
            metric,
            closed_warned: AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues one record (a JSON object without `chain`). Never blocks.
    pub fn append(&self, record: Vec<u8>) {
        match self.tx.try_send(Msg::Record(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.metric.inc();
            }
            Err(TrySendError::Disconnected(_)) => {
                self.metric.inc();
                if !self.closed_warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!("audit file already closed: a late record is lost");
                }
            }
        }
    }

    /// Writes and fsyncs everything queued, then stops the writer. Called once
    /// the server has drained (SIGTERM): every answered request is in the file.
    pub fn close(&self) {
        let _ = self.tx.send(Msg::Close);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

fn run(mut w: Writer, rx: &Receiver<Msg>, dropped: &AtomicU64, metric: &Counter) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut anchored = (Instant::now(), w.chain);
    loop {
        let mut close = match rx.recv_timeout(SYNC_EVERY) {
            Ok(Msg::Record(r)) => {
                batch.push(r);
                false
            }
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => true,
            Err(RecvTimeoutError::Timeout) => false,
        };
        // At close, everything still queued goes in.
        while batch.len() < MAX_BATCH || close {
            match rx.try_recv() {
                Ok(Msg::Record(r)) => batch.push(r),
                Ok(Msg::Close) => close = true,
                Err(_) => break,
            }
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            tracing::warn!(audit_file = %w.path().display(), dropped = lost, "audit file: records dropped (queue full or write failed); a gap record says so");
            let gap = records::gap(lost, "queue full or write failed");
            if w.write(&[gap]) > 0 {
                // The gap record itself could not be written: say it again next time.
                dropped.fetch_add(lost, Ordering::Relaxed);
            }
        }
        let failed = w.write(&batch);
        if failed > 0 {
            metric.inc_by(failed);
            dropped.fetch_add(failed, Ordering::Relaxed);
        }
        batch.clear();
        if close || w.last_sync.elapsed() >= SYNC_EVERY {
            w.sync();
        }
        if close || (anchored.0.elapsed() >= ANCHOR_EVERY && anchored.1 != w.chain) {
            // Shipped with the log (journald, a remote), the head anchors the
            // tail: lines cut off the end after this would show.
            tracing::info!(audit_file = %w.path().display(), audit_chain = %w.chain.as_str(), "audit chain head");
            anchored = (Instant::now(), w.chain);
        }
        if close {
            return;
        }
    }
}
