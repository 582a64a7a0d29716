//! What the proxy tells its operators: the audit line per request, the
//! Prometheus metrics, the anomaly detector, and the non-blocking log sink and
//! timestamp the lines leave through.

pub(crate) mod anomaly;
pub(crate) mod audit;
pub mod audit_file;
mod audit_json;
pub mod key_age;
pub mod log_sink;
pub mod log_stamp;
pub(crate) mod metric_handles;
pub(crate) mod metrics;
mod record;

pub(crate) use record::record;
