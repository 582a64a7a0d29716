//! The policy in force, swappable atomically. Each request takes one
//! snapshot (`load`) and keeps it to the end, so a reload never shows a
//! request half of one policy and half of another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::policy::Policy;

/// A policy and the generation it was installed as (1 for the first).
#[derive(Debug)]
pub struct Snapshot {
    pub policy: Policy,
    pub generation: u64,
}

#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<Snapshot>,
    generations: AtomicU64,
}

impl PolicyStore {
    pub fn new(policy: Policy) -> PolicyStore {
        PolicyStore {
            current: ArcSwap::from_pointee(Snapshot {
                policy,
                generation: 1,
            }),
            generations: AtomicU64::new(1),
        }
    }

    /// The snapshot for one request. An owned `Arc`: safe to hold across `.await`.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Installs a validated policy; returns its generation.
    pub fn replace(&self, policy: Policy) -> u64 {
        let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
        self.current
            .store(Arc::new(Snapshot { policy, generation }));
        generation
    }
}
