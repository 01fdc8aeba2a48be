//! muxtrace's user space: the CLI, the preflight checks, loading and
//! attaching the probes, reading their maps into metrics (the model itself is
//! the `tracer-model` crate), and the sinks.
mod btf;
mod cgroup;
pub mod cli;
mod collector;
mod dashboard;
pub mod error;
mod json;
mod kernel_log;
pub mod logfile;
mod own_cost;
mod preflight;
mod probes;
mod prometheus;
pub mod session;
mod sinks;
mod summary;
mod targets;
mod thread_slots;
pub mod tracepoints;

pub use probes::{loaded_program_ids, recursion_misses, EmptyPrograms};
/// For the tests that fill `/metrics`'s connections.
pub use prometheus::MAX_CONNECTIONS as PROMETHEUS_MAX_CONNECTIONS;
