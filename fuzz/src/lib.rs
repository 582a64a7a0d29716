//! The properties egress-guard's fuzz targets check, one module per target, as plain
//! functions: the AFL binaries in `src/bin` call them, and `run.sh --replay` feeds the seed
//! corpora and the recorded crash inputs to those binaries.
//!
//! Each `check` panics (with a message naming the broken property) when the code under
//! test breaks the behaviour docs/policy.md promises; AFL records that input as a crash.

pub mod form_filter;
pub mod framing;
pub mod h1model;
pub mod json_filter;
pub mod json_tree;
pub mod policy;
pub mod request_target;
