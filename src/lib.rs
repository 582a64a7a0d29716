//! egress-guard: a small forward proxy that lets a PHP shop reach only the
//! partners its policy names, over verified HTTPS, with keys PHP never holds.
//!
//! How a request flows, and which module holds each step:
//!
//! ```text
//!  PHP cURL ──► server          accept TCP / unix socket, HTTP/1.1 keep-alive, graceful shutdown
//!                ├ framing        guards the raw bytes against smuggling; head reads what a head declares
//!                ├ guarded        the connection wrapper that feeds bytes through framing
//!                └ admin          /metrics and /healthz on their own port
//!               proxy           one request: policy snapshot (store), client auth, then
//!                ├ target         absolute-form / origin-form + Host / CONNECT → host, port, path
//!                ├ host, pathnorm the host and path read strictly, the path normalised
//!                ├ decide         pure: destination, port, scheme, route → Decision with a Reason
//!                ├ plan           pure: decide + query `_method` + declared size + form check;
//!                │                forward and `explain` both call it
//!                ├ method_override  a form's `_method` and override headers, refused or checked
//!                ├ body_policy    JSON checks, field filter (json_filter) and card scan
//!                ├ query_policy   a route's `query:` paths on the query string (json_filter::form)
//!                ├ request_body   the client's body streamed upstream under size and time bounds
//!                ├ headers        hop-by-hop out, client credentials out, ours in
//!                ├ forward        upstream request with deadlines; the answer streamed back
//!                ├ response_body  the answer decoded (decode) and scrubbed (scrub) as it streams
//!                ├ tunnel         CONNECT tunnels to `tunnel: true` destinations only
//!                ├ intercept      CONNECT to `intercept: true`: our TLS, each request inside forwarded
//!                └ refusal        the one mapping from Reason to status, header and JSON body
//!               upstream        pooled HTTPS per destination
//!                ├ dial           the dialer that checks every address it connects to
//!                ├ prime          a small streamed body awaited first: head and body in one TLS record
//!                └ addr           which addresses are forbidden (loopback, private, metadata...)
//!               telemetry
//!                ├ audit          the request's record, owned by the handler; writes the one line
//!                ├ record         a finished record's fan-out to metrics and the anomaly detector
//!                ├ metrics        Prometheus counters and histograms
//!                ├ anomaly        the detector: global bursts, per destination (destination)
//!                └ log_sink, log_stamp  lines leave through a non-blocking batch writer
//!               intercept       the local CA (`ca init`) and the leaves it mints for intercepted hosts
//!               limit           per-destination request and byte limits on a drivable clock
//!               credentials     OAuth2 client-credentials tokens: fetched through an upstream
//!                               dialer, one fetch at a time, cached per `oauth2` block in the
//!                               store (proxy::bearer puts them on requests, drops them on 401)
//!               fleet           `scope: fleet` limits: one GCRA in the fleet's Redis (link keeps the
//!                               connection in the background); `on_unavailable` when it cannot answer
//!               vocab           words both sides use without importing each other (Reason,
//!                               the detector's Thresholds the policy sets)
//! ```
//!
//! The policy (`policy`) is parsed from YAML into raw structs, then compiled
//! into types that cannot be invalid, and installed in `store::PolicyStore`,
//! which also holds what outlives a policy (limiters, metrics, detector,
//! clock, the log stamp). A policy's dialers share an `upstream::ProxySide`
//! (the proxy's own addresses, its open connections) that a reload keeps.
//! `reload` swaps policies on file changes and SIGHUP; `systemd` speaks
//! sd_notify and takes activated sockets. `cli` holds the `check` and
//! `explain` commands; `main.rs` is a thin shell.

pub mod cli;
pub mod clock;
pub mod credentials;
pub mod fleet;
pub mod intercept;
pub mod json_filter;
pub(crate) mod limit;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod scrub;
pub mod server;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub(crate) mod upstream;
pub mod vocab;
