//! Where log lines go: formatted lines are appended to a shared buffer and a
//! background thread writes them out in batches, so a request never waits on
//! stderr (journald, a pipe) and a busy proxy makes one write per batch, not
//! one per line. The buffer is bounded: past it, lines are dropped and counted.
//! `tracing-appender`'s non-blocking writer was used before and dropped: it wrote
//! one line per `write` and spun in `sched_yield` on one core (docs/performance.md, row 1).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

/// Most bytes held while the output is slow; lines beyond are dropped.
const MAX_BUFFERED: usize = 4 * 1024 * 1024;
/// A batch this big wakes the writer at once; smaller ones wait for the tick.
const WAKE_AT: usize = 64 * 1024;
/// How long a line may wait in the buffer.
const TICK: Duration = Duration::from_millis(50);

struct Shared {
    buf: Mutex<Vec<u8>>,
    wake: Condvar,
    dropped: AtomicU64,
    closed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        // A panic while holding the lock leaves only bytes behind: keep going.
        self.buf.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The `MakeWriter` for tracing's formatter.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Flushes what is left and stops the writer thread when dropped.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread over `out`.
pub fn batch_writer<W: Write + Send + 'static>(out: W) -> (BatchWriter, Guard) {
    let shared = Arc::new(Shared {
        buf: Mutex::new(Vec::with_capacity(WAKE_AT * 2)),
        wake: Condvar::new(),
        dropped: AtomicU64::new(0),
        closed: AtomicBool::new(false),
    });
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || drain(&worker, out))
        .ok();
    (BatchWriter { shared: shared.clone() }, Guard { shared, thread })
}

fn drain<W: Write>(shared: &Shared, mut out: W) {
    let mut spare = Vec::with_capacity(WAKE_AT * 2);
    loop {
        let closed = {
            let mut buf = shared.lock();
            if buf.is_empty() && !shared.closed.load(Ordering::Acquire) {
                buf = shared
                    .wake
                    .wait_timeout(buf, TICK)
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
            std::mem::swap(&mut *buf, &mut spare);
            shared.closed.load(Ordering::Acquire)
        };
        let dropped = shared.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ = writeln!(
                spare,
                "{{\"level\":\"WARN\",\"message\":\"log lines dropped: output too slow\",\"dropped\":{dropped}}}"
            );
        }
        if !spare.is_empty() {
            // Nothing sensible to do when stderr itself fails: the lines are lost.
            let _ = out.write_all(&spare).and_then(|()| out.flush());
            spare.clear();
        }
        if closed && shared.lock().is_empty() {
            return;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One event's bytes, appended whole to the shared buffer.
pub struct LineWriter {
    shared: Arc<Shared>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let wake = {
            let mut buf = self.shared.lock();
            if buf.len() + data.len() > MAX_BUFFERED {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(data.len());
            }
            buf.extend_from_slice(data);
            buf.len() >= WAKE_AT
        };
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The sink JSON lines may be written to directly (set by `main` in JSON mode).
static DIRECT: OnceLock<BatchWriter> = OnceLock::new();

/// Lets lines bypass tracing's formatter (the audit line, `audit_json`): only
/// for the JSON layout, whose bytes the direct writers reproduce.
pub fn write_directly(writer: &BatchWriter) {
    let _ = DIRECT.set(writer.clone());
}

/// Appends one whole line built by `fill` straight into the shared buffer.
/// False when no direct sink is installed (text layout, tests): the caller
/// goes through tracing instead.
pub(crate) fn append_direct(fill: impl FnOnce(&mut Vec<u8>)) -> bool {
    let Some(w) = DIRECT.get() else {
        return false;
    };
    let wake = {
        let mut buf = w.shared.lock();
        let before = buf.len();
        fill(&mut buf);
        if buf.len() > MAX_BUFFERED {
            buf.truncate(before);
            w.shared.dropped.fetch_add(1, Ordering::Relaxed);
            false
        } else {
            buf.len() >= WAKE_AT
        }
    };
    if wake {
        w.shared.wake.notify_one();
    }
    true
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            shared: self.shared.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, d: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(d);
            Ok(d.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = batch_writer(sink.clone());
        let mut expected = Vec::new();
        for i in 0..10_000 {
            let line = format!("line {i}\n");
            tracing_subscriber::fmt::MakeWriter::make_writer(&writer)
                .write_all(line.as_bytes())
                .unwrap();
            expected.extend_from_slice(line.as_bytes());
        }
        drop(guard);
        assert_eq!(*sink.0.lock().unwrap(), expected);
    }

    #[test]
    fn a_stalled_output_bounds_memory_and_counts_drops() {
        let shared = Arc::new(Shared {
            buf: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        // No writer thread: nothing drains, as when stderr blocks.
        let mut w = LineWriter { shared: shared.clone() };
        let line = vec![b'x'; 1024];
        for _ in 0..(MAX_BUFFERED / 1024 + 100) {
            w.write_all(&line).unwrap();
        }
        assert!(shared.lock().len() <= MAX_BUFFERED);
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 100);
    }
}
