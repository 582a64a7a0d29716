//! Key age in service: `egress_guard_credential_age_seconds{destination}` for
//! every credential read from a file, and past its `rotate_every` a
//! `credential_overdue` anomaly at most once a day per destination, timed on
//! the store's drivable clock. Refreshed at each `/metrics` scrape and by a
//! ticker, so a proxy nobody scrapes still warns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::anomaly::Kind;
use super::metrics::{DestinationLabel, KindLabel};
use crate::store::PolicyStore;

/// How often an overdue credential is warned about.
pub const WARN_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How often the ticker looks: the daily warning comes at most this late.
const TICK: Duration = Duration::from_secs(15 * 60);

/// What outlives a policy: when each destination was last warned about (on
/// the store's clock), and which gauges are set.
#[derive(Debug, Default)]
pub struct KeyAges {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    warned: HashMap<String, Duration>,
    gauges: Vec<String>,
}

/// Sets the age gauges from the policy in force and warns about overdue
/// credentials whose last warning is a day old (or that have none).
pub fn refresh(store: &PolicyStore) {
    let snap = store.load();
    let t = &store.telemetry;
    let wall = SystemTime::now();
    let clock = t.clock.now();
    // One refresh at a time: a scrape and the ticker must not both warn.
    let mut state = t.key_ages.state.lock().unwrap_or_else(PoisonError::into_inner);
    let mut gauges = Vec::new();
    for d in &snap.policy.destinations {
        let Some(k) = d.credential.as_ref().map(|c| c.key_age) else {
            continue;
        };
        let Some(age) = k.age(wall) else { continue };
        let label = DestinationLabel {
            destination: d.name.clone(),
        };
        t.metrics
            .credential_age
            .get_or_create(&label)
            .set(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
        gauges.push(d.name.clone());
        if !k.overdue(wall) {
            state.warned.remove(&d.name);
            continue;
        }
        let due = state
            .warned
            .get(&d.name)
            .is_none_or(|last| clock.saturating_sub(*last) >= WARN_EVERY);
        if due {
            state.warned.insert(d.name.clone(), clock);
            warn(store, &d.name, age, k.rotate_every.unwrap_or_default(), &snap);
        }
    }
    for gone in state.gauges.iter().filter(|g| !gauges.contains(g)) {
        t.metrics.credential_age.remove(&DestinationLabel {
            destination: gone.clone(),
        });
    }
    state.warned.retain(|name, _| gauges.contains(name));
    state.gauges = gauges;
}

/// The anomaly: counted by kind and logged as every anomaly is, with figures only.
fn warn(store: &PolicyStore, destination: &str, age: Duration, every: Duration, snap: &crate::store::Snapshot) {
    let kind = Kind::CredentialOverdue.as_str();
    store
        .telemetry
        .metrics
        .anomalies
        .get_or_create(&KindLabel { kind: kind.to_owned() })
        .inc();
    tracing::warn!(
        target: "egress_guard::anomaly",
        kind,
        destination,
        route = "-",
        field = "-",
        figures = %format!("age_seconds={} rotate_every_seconds={}", age.as_secs(), every.as_secs()),
        policy_generation = snap.generation,
        policy_hash = %snap.policy.hash,
        request_id = "-",
        "anomaly"
    );
}

/// Refreshes now and then every [`TICK`] for the life of the runtime.
pub fn spawn(store: Arc<PolicyStore>) {
    drop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            refresh(&store);
        }
    }));
}
