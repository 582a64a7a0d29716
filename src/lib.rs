//! egress-guard: a small forward proxy that lets a PHP shop reach only the
//! partners its policy names, over verified HTTPS, with keys PHP never holds.
//!
//! How a request flows, and which module holds each step:
//!
//! ```text
//!  PHP cURL ──► server      accept TCP / unix socket, HTTP/1.1 keep-alive, graceful shutdown;
//!                           framing guards the raw bytes against smuggling; admin serves /metrics
//!               proxy       one request: policy snapshot (store), client auth, then
//!                ├ target     absolute-form / origin-form + Host / CONNECT → host, port, path (pathnorm)
//!                ├ decide     pure: destination, port, scheme, route → Decision with a Reason
//!                ├ bodypolicy JSON checks, field filter (body) and card scan
//!                ├ headers    hop-by-hop out, client credentials out, ours in; answers scrubbed (scrub)
//!                ├ forward    upstream request with deadlines; answer streamed back (bodies)
//!                └ connect    CONNECT tunnels to `tunnel: true` destinations only
//!               upstream    pooled HTTPS per destination; the dialer checks addresses (addr)
//!               answer      the one mapping from Reason to status, header and JSON body
//!               audit       one log line per request: decisions, names, figures; no values;
//!                           feeds metrics and the anomaly detector; lines leave through logsink
//!               ratelimit   per-destination request and byte limits on a drivable clock
//! ```
//!
//! The policy (`policy`) is parsed from YAML into raw structs, then compiled
//! into types that cannot be invalid, and installed in `store::PolicyStore`,
//! which also holds what outlives a policy (limiters, metrics, detector,
//! clock). `reload` swaps policies on file changes and SIGHUP; `systemd`
//! speaks sd_notify and takes activated sockets. `cli` holds the `check` and
//! `explain` commands; `main.rs` is a thin shell.

pub mod addr;
pub mod admin;
pub mod anomaly;
pub mod answer;
pub mod audit;
pub mod body;
pub mod bodypolicy;
pub mod cli;
pub mod clock;
pub mod decide;
pub mod framing;
pub mod guarded;
pub mod logsink;
pub mod logstamp;
pub mod metrics;
pub mod pathnorm;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod reload;
pub mod scrub;
pub mod server;
pub mod store;
pub mod systemd;
pub mod upstream;
