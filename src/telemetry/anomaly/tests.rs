#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

pub(super) const W: u64 = 60;

/// Owned request facts, so tables can hold them and lend out an `Event`.
#[derive(Clone, Debug, Default)]
pub(super) struct Req {
    pub(super) dest: Option<&'static str>,
    pub(super) route: Option<&'static str>,
    pub(super) refused: bool,
    pub(super) unknown: bool,
    pub(super) creds: usize,
    pub(super) status: Option<u16>,
    pub(super) body: Option<u64>,
    pub(super) fields: Vec<String>,
}

impl Req {
    pub(super) fn to(dest: &'static str) -> Req {
        Req {
            dest: Some(dest),
            route: Some("POST /v1/shipments"),
            status: Some(200),
            body: Some(2048),
            fields: names(&["billing.email", "items[].sku"]),
            ..Req::default()
        }
    }

    pub(super) fn event(&self) -> Event<'_> {
        Event {
            destination: self.dest,
            route: self.route,
            refused: self.refused,
            unknown_host: self.unknown,
            client_credentials: self.creds,
            upstream_status: self.status,
            body_bytes: self.body,
            fields: &self.fields,
        }
    }
}

pub(super) fn names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

/// A time inside window `w`, offset so alignment (not "time since first event") is exercised.
pub(super) fn at(w: u64, i: u64) -> Duration {
    Duration::from_secs(w * W) + Duration::from_millis(i % 59_000)
}

/// Sends `n` copies of `req` in window `w`; returns everything reported.
pub(super) fn send(d: &Detector, w: u64, req: &Req, n: u64) -> Vec<Anomaly> {
    (0..n).flat_map(|i| d.observe(at(w, i), &req.event())).collect()
}

pub(super) fn count(found: &[Anomaly], kind: Kind) -> usize {
    found.iter().filter(|a| a.kind == kind).count()
}

pub(super) fn figure(a: &Anomaly, name: &str) -> f64 {
    a.figures.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).unwrap()
}

/// One row per kind: its name, how many requests burst window `k` (0, 1, 2) sends, and how a
/// normal request is turned into the anomalous one.
type Burst = (&'static str, Kind, fn(u64) -> u64, fn(u64, &mut Req));

#[test]
fn each_kind_reports_once_per_window_over_a_three_window_burst() {
    #[rustfmt::skip]
    let table: [Burst; 7] = [
        // The baseline follows the spike, so each window must outgrow the last.
        ("rate_spike", Kind::RateSpike, |k| 100 << (2 * k), |_, _| {}),
        ("refusal_burst", Kind::RefusalBurst, |_| 25, |_, r| r.refused = true),
        ("unknown_destination", Kind::UnknownDestination, |_| 5, |_, r| {
            r.dest = None;
            r.unknown = true;
        }),
        ("client_credentials", Kind::ClientCredentials, |_| 5, |_, r| r.creds = 2),
        ("upstream_auth_failures", Kind::UpstreamAuthFailures, |_| 8, |_, r| r.status = Some(401)),
        ("body_size_outlier", Kind::BodySizeOutlier, |_| 6, |_, r| r.body = Some(1 << 20)),
        // One fresh name per window: reported once, then it counts as seen.
        ("new_field", Kind::NewField, |_| 7, |k, r| r.fields.push(format!("card.f{k}"))),
    ];
    for (name, kind, n, edit) in table {
        let d = Detector::new(Thresholds::default());
        for w in 0..3 {
            let found = send(&d, w, &Req::to("shop"), 10);
            assert_eq!(count(&found, kind), 0, "{name}: priming window {w}");
        }
        for k in 0..3 {
            let mut req = Req::to("shop");
            edit(k, &mut req);
            let found = send(&d, 3 + k, &req, n(k));
            assert_eq!(count(&found, kind), 1, "{name}: burst window {k}: {found:?}");
            let a = found.iter().find(|a| a.kind == kind).unwrap();
            let global = matches!(kind, Kind::RefusalBurst | Kind::UnknownDestination);
            assert_eq!(a.destination.is_none(), global, "{name}");
            assert_eq!(a.figures.is_empty(), kind == Kind::NewField, "{name}");
        }
        let quiet = send(&d, 6, &Req::to("shop"), 10);
        assert_eq!(count(&quiet, kind), 0, "{name}: after the burst");
    }
}

#[test]
fn figures_carry_the_counts() {
    let d = Detector::new(Thresholds::default());
    let refused = Req {
        refused: true,
        ..Req::to("shop")
    };
    let found = send(&d, 0, &refused, 30);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].figures, vec![("refusals", 20.0)]);

    let found = send(
        &d,
        0,
        &Req {
            status: Some(403),
            ..Req::to("a")
        },
        5,
    );
    assert_eq!(found[0].figures, vec![("failures", 5.0)]);
    assert_eq!(found[0].destination.as_deref(), Some("a"));

    let found = send(
        &d,
        0,
        &Req {
            creds: 3,
            ..Req::to("a")
        },
        1,
    );
    assert_eq!(found[0].figures, vec![("copies", 3.0)]);

    let found = send(
        &d,
        0,
        &Req {
            dest: None,
            unknown: true,
            ..Req::to("a")
        },
        1,
    );
    assert_eq!(found[0].figures, vec![("attempts", 1.0)]);
}

#[test]
fn steady_workload_raises_nothing() {
    let d = Detector::new(Thresholds::default());
    for w in 0..20 {
        for i in 0..10 {
            let mut r = Req::to("shop");
            r.body = Some(1800 + (i * 37 + w * 11) % 500);
            if (i + w) % 7 == 0 {
                r.status = Some(201);
            }
            let found = d.observe(at(w, i * 1000), &r.event());
            assert!(found.is_empty(), "window {w} request {i}: {found:?}");
        }
    }
}

#[test]
fn warm_up_is_respected() {
    struct WarmUp {
        name: &'static str,
        run: fn(&Detector) -> Vec<Anomaly>,
    }
    let table = [
        WarmUp {
            name: "rate spike in the third window",
            run: |d| {
                let mut found = send(d, 0, &Req::to("shop"), 5);
                found.extend(send(d, 1, &Req::to("shop"), 5));
                found.extend(send(d, 2, &Req::to("shop"), 500));
                found
            },
        },
        WarmUp {
            name: "huge body among the first twenty",
            run: |d| {
                let mut found = send(d, 0, &Req::to("shop"), 10);
                found.extend(send(
                    d,
                    0,
                    &Req {
                        body: Some(1 << 24),
                        ..Req::to("shop")
                    },
                    1,
                ));
                found
            },
        },
        WarmUp {
            name: "field names during the first twenty requests are learned",
            run: |d| {
                let mut found = send(d, 0, &Req::to("shop"), 19);
                let odd = Req {
                    fields: names(&["card.pan"]),
                    ..Req::to("shop")
                };
                found.extend(send(d, 0, &odd, 1));
                found.extend(send(d, 1, &odd, 50));
                found
            },
        },
    ];
    for case in table {
        let d = Detector::new(Thresholds::default());
        let found = (case.run)(&d);
        assert!(found.is_empty(), "{}: {found:?}", case.name);
    }
}

#[test]
fn idle_windows_decay_the_baseline() {
    let d = Detector::new(Thresholds::default());
    for w in 0..5 {
        send(&d, w, &Req::to("shop"), 10);
    }
    // Without the idle gap, 30 is below 4 × 10.
    let control = Detector::new(Thresholds::default());
    for w in 0..6 {
        send(&control, w, &Req::to("shop"), 10);
    }
    assert!(send(&control, 6, &Req::to("shop"), 30).is_empty());

    let found = send(&d, 10, &Req::to("shop"), 30);
    assert_eq!(found.len(), 1, "{found:?}");
    let expected = 10.0 * 0.7f64.powi(5);
    assert!((figure(&found[0], "baseline") - expected).abs() < 1e-9);
    assert_eq!(figure(&found[0], "requests"), 30.0);
}

#[test]
fn decay_is_bounded_to_sixteen_windows() {
    let d = Detector::new(Thresholds::default());
    for w in 0..5 {
        send(&d, w, &Req::to("shop"), 10);
    }
    let found = send(&d, 1_000_000_000, &Req::to("shop"), 30);
    let expected = 10.0 * 0.7f64.powi(16);
    assert!((figure(&found[0], "baseline") - expected).abs() < 1e-9);
}

#[test]
fn outliers_do_not_teach_the_mean() {
    let d = Detector::new(Thresholds::default());
    send(&d, 0, &Req::to("shop"), 20);
    for w in 1..30 {
        let found = send(
            &d,
            w,
            &Req {
                body: Some(1 << 20),
                ..Req::to("shop")
            },
            50,
        );
        assert_eq!(figure(&found[0], "mean"), 2048.0, "window {w}");
    }
    // A body just under max(10 × mean, 8192) passes.
    assert!(send(
        &d,
        40,
        &Req {
            body: Some(20_480),
            ..Req::to("shop")
        },
        1
    )
    .is_empty());
}

#[test]
fn full_route_reports_unknown_names_once_per_window() {
    let t = Thresholds {
        max_fields_per_route: 3,
        field_warmup: 1,
        ..Thresholds::default()
    };
    let d = Detector::new(t);
    send(&d, 0, &Req::to("shop"), 1);
    let more = Req {
        fields: names(&["a", "b", "c"]),
        ..Req::to("shop")
    };
    let found = send(&d, 0, &more, 3);
    // One slot was left: "a" is learned and reported; "b" and "c" overflow.
    let fields: Vec<_> = found.iter().map(|a| a.field.as_deref().unwrap()).collect();
    assert_eq!(fields, ["a", "(too many names)"]);
    assert_eq!(found[0].route.as_deref(), Some("POST /v1/shipments"));
    let next = send(&d, 1, &more, 3);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].field.as_deref(), Some("(too many names)"));
}

#[test]
fn routes_learn_separately() {
    let d = Detector::new(Thresholds::default());
    send(&d, 0, &Req::to("shop"), 20);
    let other = Req {
        route: Some("GET /v1/rates"),
        fields: names(&["zip"]),
        ..Req::to("shop")
    };
    assert!(send(&d, 0, &other, 20).is_empty());
    let new = Req {
        fields: names(&["zip"]),
        ..Req::to("shop")
    };
    let found = send(&d, 0, &new, 2);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].field.as_deref(), Some("zip"));
}
