//! `cargo xtask …`: everything a fresh machine needs, in one place. Each
//! subcommand lives in its own file; all run from the workspace root.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bootstrap;
mod charts;
mod cpu_cap;
mod demo;
mod exec;
mod redis_overhead;
mod soak;
mod sweep;
mod test;
mod tracer_overhead;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "muxtrace's build, test, demo and bench tasks"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building the eBPF programs needs (idempotent).
    Bootstrap(bootstrap::Args),
    /// Bootstrap, then build everything in release.
    Build(bootstrap::Args),
    /// Bootstrap, build, then every test, the kernel tests included (as root).
    Test(test::Args),
    /// Bootstrap, build, and show the four I/O models side by side.
    BuildAndDemo(demo::Args),
    /// Benchmarks: the echo servers' throughput sweep, then tracer overhead (echo servers, redis).
    Bench(bench::Args),
    /// muxtrace at full load for minutes: RSS, map occupancy, counters, losses.
    Soak(soak::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = exec::to_workspace_root() {
        eprintln!("xtask: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.task {
        Task::Bootstrap(args) => bootstrap::run(&args),
        Task::Build(args) => bootstrap::run(&args).and_then(|()| exec::cargo_build_release()),
        Task::Test(args) => test::run(&args),
        Task::BuildAndDemo(args) => demo::run(&args),
        Task::Bench(args) => bench::run(&args),
        Task::Soak(args) => soak::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
