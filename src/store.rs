//! The policy in force, swappable atomically, and the state that outlives a
//! policy (rate limiters, metrics, the anomaly detector, the clock). Each
//! request takes one snapshot (`load`) and keeps it to the end, so a reload
//! never shows a request half of one policy and half of another.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::credentials::TokenCell;
use crate::fleet::Fleet;
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
    /// OAuth2 token caches (same order as `policy.destinations`).
    pub tokens: Vec<Option<Arc<TokenCell>>>,
    /// The fleet's shared store, when `server.shared_limits` was set at start.
    pub fleet: Option<Arc<Fleet>>,
}

impl Snapshot {
    pub fn limits_of(&self, destination_index: usize) -> Option<&Limits> {
        self.limits.get(destination_index).and_then(|l| l.as_deref())
    }

    pub fn token_of(&self, destination_index: usize) -> Option<&TokenCell> {
        self.tokens.get(destination_index).and_then(|t| t.as_deref())
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
    /// The hash-chained audit file, when `server.audit_file` is set (set once at start).
    pub audit_file: std::sync::OnceLock<crate::telemetry::audit_file::AuditFile>,
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
    /// Made from the first policy's `server.shared_limits`; kept for the life of the store.
    fleet: Option<Arc<Fleet>>,
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
            audit_file: std::sync::OnceLock::new(),
            key_ages: Default::default(),
        });
        let limits = limits_for(&policy, None, &telemetry.clock);
        let tokens = tokens_for(&policy, None, &telemetry);
        telemetry.metrics.set_policy(1, &policy.hash);
        let fleet = policy.server.shared_limits.as_ref().and_then(|c| {
            let m = &telemetry.metrics;
            Fleet::start(c, m.shared_limit_errors.clone(), m.shared_limits_up.clone())
        });
        let snap = Snapshot {
            policy,
            generation: 1,
            limits,
            tokens,
            fleet: fleet.clone(),
        };
        PolicyStore {
            current: ArcSwap::from_pointee(snap),
            generations: AtomicU64::new(1),
            telemetry,
            log_stamp: Arc::default(),
            fleet,
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
        let tokens = tokens_for(&policy, Some(&old), &self.telemetry);
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
            tokens,
            fleet: self.fleet.clone(),
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

/// A token cache per `oauth2:` credential. A block whose content (secrets
/// included) is unchanged keeps its cell, and so its token, across a reload.
fn tokens_for(policy: &Policy, old: Option<&Snapshot>, telemetry: &Arc<Telemetry>) -> Vec<Option<Arc<TokenCell>>> {
    policy
        .destinations
        .iter()
        .map(|d| {
            let key = d.credential.as_ref()?.oauth2.as_ref()?.key;
            let kept = old.and_then(|o| o.tokens.iter().flatten().find(|c| c.key == key).cloned());
            Some(kept.unwrap_or_else(|| Arc::new(TokenCell::new(key, telemetry.clone()))))
        })
        .collect()
}
