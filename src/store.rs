//! The policy in force, swappable atomically, and the state that outlives a
//! policy (rate limiters, metrics, the anomaly detector, the clock). Each
//! request takes one snapshot (`load`) and keeps it to the end, so a reload
//! never shows a request half of one policy and half of another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::limit::Limits;
use crate::policy::Policy;
use crate::telemetry::anomaly::Detector;
use crate::telemetry::audit::RequestIds;
use crate::telemetry::log_stamp::LogStamp;
use crate::telemetry::metrics::Metrics;

/// A policy, the generation it was installed as (1 for the first), and its
/// destinations' limiters (same order as `policy.destinations`).
#[derive(Debug)]
pub struct Snapshot {
    pub policy: Policy,
    pub generation: u64,
    pub limits: Vec<Option<Arc<Limits>>>,
}

impl Snapshot {
    pub fn limits_of(&self, destination_index: usize) -> Option<&Limits> {
        self.limits.get(destination_index).and_then(|l| l.as_deref())
    }
}

/// What every request reports to: metrics, anomaly detection, the clock.
#[derive(Debug)]
pub struct Telemetry {
    pub metrics: Metrics,
    pub detector: Detector,
    pub clock: Clock,
    /// Set once the listeners serve: `/readyz` answers 200 from then on.
    pub ready: AtomicBool,
    pub request_ids: RequestIds,
    /// Which overdue credentials were warned about, and when.
    pub key_ages: crate::telemetry::key_age::KeyAges,
}

#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<Snapshot>,
    generations: AtomicU64,
    pub telemetry: Arc<Telemetry>,
    /// What every log line says the policy in force is.
    log_stamp: Arc<LogStamp>,
}

impl PolicyStore {
    pub fn new(policy: Policy) -> PolicyStore {
        PolicyStore::with_clock(policy, Clock::system())
    }

    /// A store whose limits and anomaly windows follow `clock` (tests drive it).
    pub fn with_clock(policy: Policy, clock: Clock) -> PolicyStore {
        let telemetry = Arc::new(Telemetry {
            metrics: Metrics::new(),
            detector: Detector::new(policy.monitor),
            clock,
            ready: AtomicBool::new(false),
            request_ids: RequestIds::default(),
            key_ages: Default::default(),
        });
        let limits = limits_for(&policy, None, &telemetry.clock);
        telemetry.metrics.set_policy(1, &policy.hash);
        let snap = Snapshot {
            policy,
            generation: 1,
            limits,
        };
        PolicyStore {
            current: ArcSwap::from_pointee(snap),
            generations: AtomicU64::new(1),
            telemetry,
            log_stamp: Arc::default(),
        }
    }

    /// From now on the log lines `stamp` is read by name the policy in force.
    pub fn stamping(mut self, stamp: Arc<LogStamp>) -> PolicyStore {
        let snap = self.load();
        stamp.set(snap.generation, &snap.policy.hash);
        self.log_stamp = stamp;
        self
    }

    /// The snapshot for one request. An owned `Arc`: safe to hold across `.await`.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Installs a validated policy; returns its generation. Limiters of
    /// destinations whose name and limit did not change carry over.
    pub fn replace(&self, policy: Policy) -> u64 {
        let generation = self.generations.fetch_add(1, Ordering::AcqRel) + 1;
        let old = self.load();
        let limits = limits_for(&policy, Some(&old), &self.telemetry.clock);
        let t = &self.telemetry;
        t.detector.set_thresholds(policy.monitor);
        let names: Vec<&str> = policy.destinations.iter().map(|d| d.name.as_str()).collect();
        t.detector.retain_destinations(&names);
        t.metrics.set_policy(generation, &policy.hash);
        self.log_stamp.set(generation, &policy.hash);
        self.current.store(Arc::new(Snapshot {
            policy,
            generation,
            limits,
        }));
        generation
    }
}

fn limits_for(policy: &Policy, old: Option<&Snapshot>, clock: &Clock) -> Vec<Option<Arc<Limits>>> {
    policy
        .destinations
        .iter()
        .map(|d| {
            let cfg = d.rate_limit?;
            let kept = old.and_then(|o| {
                o.policy
                    .destinations
                    .iter()
                    .position(|od| od.name == d.name)
                    .and_then(|i| o.limits.get(i).cloned().flatten())
                    .filter(|l| l.config == cfg)
            });
            Some(kept.unwrap_or_else(|| Arc::new(Limits::new(cfg, clock))))
        })
        .collect()
}
