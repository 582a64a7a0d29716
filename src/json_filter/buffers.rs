//! The JSON filter's working buffers, parked per thread between calls so a
//! steady request stream allocates nothing once warmed up.

use std::cell::Cell;

use super::json::Frame;
use super::keys::Keys;
use super::names;

/// Working buffers, kept per thread between calls so a steady request stream allocates
/// nothing once warmed up.
#[derive(Default)]
pub(super) struct Buffers {
    pub(super) frames: Vec<Frame>,
    pub(super) keys: Keys,
    pub(super) sets: Vec<usize>,
    pub(super) path: Vec<u8>,
    pub(super) name: String,
    /// The names already in `outcome.fields` (collecting only).
    pub(super) seen: names::Seen,
    pub(super) scratch: Vec<u8>,
}

/// Buffers grown past this (by an unusually big body) are dropped rather than kept.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Buffers {
    /// This thread's parked buffers, or new ones.
    pub(super) fn take() -> Buffers {
        BUFFERS.try_with(Cell::take).unwrap_or_default()
    }

    /// Empties the buffers and parks them for this thread's next call, unless oversized.
    pub(super) fn recycle(mut self) {
        self.frames.clear();
        self.keys.clear();
        self.sets.clear();
        self.path.clear();
        self.scratch.clear();
        self.seen.clear();
        let big = [self.keys.capacity(), self.path.capacity(), self.scratch.capacity()]
            .into_iter()
            .chain([self.sets.capacity(), self.frames.capacity()])
            .any(|c| c > KEEP_CAPACITY);
        if !big {
            // Fails only while the thread is shutting down; then the buffers are just freed.
            let _ = BUFFERS.try_with(|c| c.set(self));
        }
    }
}

thread_local! {
    static BUFFERS: Cell<Buffers> = Cell::new(Buffers::default());
}
