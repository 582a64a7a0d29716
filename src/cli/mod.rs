//! The commands besides `run`: `check` summarises a policy, `explain` dry-runs
//! one request through it.

pub mod audit;
pub mod check;
pub mod explain;
