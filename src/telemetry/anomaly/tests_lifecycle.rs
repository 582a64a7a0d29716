//! The detector over time and under load: forgetting destinations, reloads
//! of thresholds and window length, late requests, concurrency, and the
//! property that nothing is reported twice in a window.

use super::tests::{at, count, names, send, Req, W};
use super::*;
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

#[test]
fn retain_destinations_forgets() {
    let d = Detector::new(Thresholds::default());
    send(&d, 0, &Req::to("a"), 20);
    send(&d, 0, &Req::to("b"), 20);
    d.retain_destinations(&["b"]);
    let probe = |dest| Req {
        fields: names(&["card.pan"]),
        ..Req::to(dest)
    };
    // "a" starts over, so its new name is warm-up learning; "b" still knows its route.
    assert!(send(&d, 0, &probe("a"), 1).is_empty());
    assert_eq!(count(&send(&d, 0, &probe("b"), 1), Kind::NewField), 1);
    assert_eq!(read(&d.destinations).len(), 2);
    d.retain_destinations(&[]);
    assert!(read(&d.destinations).is_empty());
}

#[test]
fn set_thresholds_takes_effect_and_keeps_learning() {
    let d = Detector::new(Thresholds::default());
    send(&d, 0, &Req::to("shop"), 20);
    let failing = Req {
        status: Some(401),
        ..Req::to("shop")
    };
    assert!(send(&d, 0, &failing, 2).is_empty());
    d.set_thresholds(Thresholds {
        auth_failures: 3,
        ..Thresholds::default()
    });
    assert_eq!(count(&send(&d, 0, &failing, 1), Kind::UpstreamAuthFailures), 1);
    // The route's warm-up survived the reload.
    let new = Req {
        fields: names(&["card.pan"]),
        ..Req::to("shop")
    };
    assert_eq!(count(&send(&d, 0, &new, 1), Kind::NewField), 1);
}

#[test]
fn window_length_change_does_not_stall_counters() {
    let d = Detector::new(Thresholds::default());
    let refused = Req {
        refused: true,
        ..Req::to("shop")
    };
    // Late in the run, a longer window makes the index smaller than the stored one.
    assert_eq!(send(&d, 1000, &refused, 20).len(), 1);
    let t = Thresholds {
        window: Duration::from_secs(600),
        ..Thresholds::default()
    };
    d.set_thresholds(t);
    let found = send(&d, 1001, &refused, 20);
    assert_eq!(count(&found, Kind::RefusalBurst), 1, "{found:?}");
    d.set_thresholds(Thresholds {
        window: Duration::ZERO,
        ..Thresholds::default()
    });
    d.observe(at(1002, 0), &refused.event());
}

#[test]
fn late_request_from_previous_window_does_not_reset() {
    let d = Detector::new(Thresholds::default());
    let failing = Req {
        status: Some(401),
        ..Req::to("shop")
    };
    send(&d, 5, &failing, 3);
    send(&d, 4, &failing, 1);
    assert_eq!(send(&d, 5, &failing, 1).len(), 1);
}

#[test]
fn kind_names_are_distinct() {
    let names: HashSet<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), Kind::ALL.len());
    assert!(names.contains("upstream_auth_failures"));
}

#[test]
fn detector_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Detector>();
}

#[test]
fn concurrent_observers_add_up() {
    let t = Thresholds {
        refusal_burst: 4000,
        auth_failures: 2000,
        ..Thresholds::default()
    };
    let d = Arc::new(Detector::new(t));
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let d = Arc::clone(&d);
            thread::spawn(move || {
                let dest = ["a", "b"][n % 2];
                let r = Req {
                    refused: true,
                    status: Some(403),
                    ..Req::to(dest)
                };
                (0..1000)
                    .flat_map(|_| d.observe(Duration::ZERO, &r.event()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let found: Vec<Anomaly> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    let burst: Vec<_> = found.iter().filter(|a| a.kind == Kind::RefusalBurst).collect();
    assert_eq!(burst.len(), 1);
    assert_eq!(burst[0].figures, vec![("refusals", 4000.0)]);
    let auth: Vec<_> = found.iter().filter(|a| a.kind == Kind::UpstreamAuthFailures).collect();
    assert_eq!(auth.len(), 2, "one per destination");
    assert!(auth.iter().all(|a| a.figures == vec![("failures", 2000.0)]));
}

fn arb_req() -> impl Strategy<Value = Req> {
    (
        prop::sample::select(vec![None, Some("a"), Some("b")]),
        prop::sample::select(vec![None, Some("r1"), Some("r2")]),
        any::<bool>(),
        0usize..3,
        prop::sample::select(vec![None, Some(200u16), Some(401), Some(403)]),
        prop::option::of(0u64..100_000),
        prop::collection::vec(prop::sample::select(vec!["x", "y", "z", "w"]), 0..3),
    )
        .prop_map(|(dest, route, refused, creds, status, body, f)| Req {
            dest,
            route,
            refused,
            unknown: dest.is_none(),
            creds,
            status,
            body,
            fields: names(&f),
        })
}

proptest! {
    #[test]
    fn never_reports_twice_in_a_window(
        steps in prop::collection::vec((0u64..3_000, arb_req()), 1..400)
    ) {
        let t = Thresholds {
            warmup_windows: 1, spike_min_requests: 2, refusal_burst: 2, auth_failures: 2,
            body_warmup: 2, field_warmup: 2, max_fields_per_route: 2, ..Thresholds::default()
        };
        let d = Detector::new(t);
        let mut now = Duration::ZERO;
        let mut seen = HashSet::new();
        for (gap, req) in steps {
            now += Duration::from_millis(gap * 20);
            let w = now.as_secs() / W;
            for a in d.observe(now, &req.event()) {
                let mut key = (a.kind, a.destination.clone(), a.route.clone(), a.field.clone(), w);
                if a.kind == Kind::NewField && a.field.as_deref() != Some("(too many names)") {
                    key.4 = 0; // a learned name is reported once, ever
                }
                prop_assert!(seen.insert(key), "duplicate {:?}", a);
            }
        }
    }
}

#[test]
fn requests_without_a_destination_are_not_all_unknown_hosts() {
    // A 407 challenge or a malformed request names no destination, yet no host was tried:
    // only a host the policy does not name is an attempt on an unknown destination.
    let d = Detector::new(Thresholds::default());
    let challenge = Req {
        dest: None,
        route: None,
        ..Req::default()
    };
    let found = send(&d, 0, &challenge, 50);
    assert_eq!(count(&found, Kind::UnknownDestination), 0, "{found:?}");
    let unknown = Req {
        unknown: true,
        ..challenge
    };
    assert_eq!(count(&send(&d, 0, &unknown, 1), Kind::UnknownDestination), 1);
}
