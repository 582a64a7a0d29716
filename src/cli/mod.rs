//! The commands besides `run`: `check` summarises a policy, `explain` dry-runs
//! one request through it; `ca` makes the interception CA and checks a policy against it.

pub mod audit;
pub mod ca;
pub mod check;
pub mod explain;
