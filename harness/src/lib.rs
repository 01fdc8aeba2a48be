//! How the workspace's tests, benches and xtask start, watch and stop the
//! programs they measure — written once, with one set of rules:
//!
//! - [`proc`]: [`Proc`], a child process whose stdout and stderr are read
//!   line by line on threads from the start (a chatty child never blocks on
//!   a full pipe), which waits for a line with a timeout
//!   ([`Proc::wait_line`]) and which is stopped by pid when dropped (SIGTERM,
//!   a grace period, SIGKILL, reaped);
//! - [`echo`]: the echo servers of `demo-servers`, started on a free
//!   loopback port (optionally pinned to a CPU) and asked where they listen;
//! - [`loadgen`]: loadgen's `--json` report as a type — loadgen itself
//!   serializes this one — and running loadgen to the end;
//! - [`muxtrace`]: starting muxtrace until it has attached, and its `--json`
//!   lines read back into [`tracer_model::Metrics`];
//! - [`stats`]: the median;
//! - [`servers`]: nginx, redis, lighttpd and memcached, real servers, from
//!   the configs in `harness/servers/` (memcached from its command line), on
//!   a free loopback port, files in a temporary folder;
//! - [`clients`]: ab and redis-benchmark run to the end, their reports read;
//!   a memcached client counting its socket bytes;
//! - [`procfs`]: what `/proc` says about a process (children, threads and
//!   their names, the syscall it waits in, the epoll fd each thread waits
//!   on, its epoll sets' registrations) and [`Frozen`]
//!   processes, stopped so that two tracers see the same calls;
//! - [`strace`]: `strace -c -f` attached to running processes, its table read.
//!
//! Everything returns `anyhow::Result`; tests unwrap, xtask propagates.
//! Depends on std, serde and the model only — never on `tracer-user`.

pub mod clients;
pub mod echo;
pub mod loadgen;
pub mod muxtrace;
pub mod proc;
pub mod procfs;
pub mod servers;
pub mod stats;
pub mod strace;

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};

pub use clients::MemcachedClient;
pub use echo::{EchoModel, EchoServer, ECHO_MODELS};
pub use loadgen::{run_loadgen, LoadgenRun, Report};
pub use muxtrace::{start_muxtrace, JsonLine, LineKind};
pub use proc::{Finished, Proc, Stream};
pub use procfs::Frozen;
pub use servers::{Lighttpd, Memcached, Nginx, NginxOptions, Redis};
pub use stats::median;
pub use strace::Strace;

/// The directory cargo built the workspace's binaries into, seen from the
/// test or bench binary running now: `target/<profile>/deps/<exe>` →
/// `target/<profile>`.
pub fn target_bin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .context("this program is not in target/<profile>/deps")
}

/// A binary of the workspace built next to the running test or bench
/// (testprogs, demo-servers, muxtrace), or an error saying how to build it.
pub fn target_bin(name: &str) -> Result<PathBuf> {
    let path = target_bin_dir()?.join(name);
    if !path.exists() {
        bail!(
            "{} is not built; run `cargo build --bins` (cargo xtask test does)",
            path.display()
        );
    }
    Ok(path)
}
