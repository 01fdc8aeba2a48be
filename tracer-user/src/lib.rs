//! muxtrace's user space: the CLI, loading and attaching the probes, reading
//! their maps into snapshots, the metrics model and the sinks.
pub mod cli;
pub mod dashboard;
pub mod error;
pub mod model;
pub mod probes;
pub mod prometheus;
pub mod session;
pub mod snapshot;
pub mod summary;
pub mod targets;
pub mod tracefs;
