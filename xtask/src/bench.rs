//! `cargo xtask bench`: the echo servers' throughput sweep, then tracer
//! overhead side by side (muxtrace, strace, perf trace, bpftrace), then
//! muxtrace's overhead on redis, written to target/bench/. Timing targets
//! live here, not in tests.
use std::{path::PathBuf, process::Command};

use anyhow::Result;

use crate::{
    bootstrap,
    exec::{exec, workspace_root},
    redis_overhead, tracer_overhead,
};

#[derive(clap::Args)]
pub struct Args {
    /// Shorter runs: 5 rounds of 2 s for the overhead part, 20,000
    /// requests per redis-benchmark test.
    #[arg(long)]
    quick: bool,
    /// Rounds of the overhead comparison (at least 5).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Only the overhead comparisons (echo servers and redis).
    #[arg(long)]
    overhead_only: bool,
    /// Only muxtrace's overhead on redis.
    #[arg(long)]
    redis_only: bool,
    /// Only these overhead configurations, comma-separated (untraced always
    /// runs): untraced, muxtrace, floor (muxtrace's empty programs alone),
    /// muxtrace-sampled (--time-every 16),
    /// muxtrace-baseline (the build MUXTRACE_BASELINE names), muxtrace-all
    /// (--all), bpftrace, bpftrace-count, strace, perf-trace.
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    configs: Option<Vec<String>>,
    /// Leave out muxtrace's overhead on redis.
    #[arg(long, conflicts_with = "redis_only")]
    skip_redis: bool,
    /// Use the binaries in this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let root = workspace_root();
    let bin_dir = bootstrap::release_bins(args.bin_dir.as_deref(), bootstrap::bench_tools)?;
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let rounds = args.rounds.max(5);
    let redis = redis_overhead::Options {
        rounds,
        requests: if args.quick { 20_000 } else { 100_000 },
        out: out.clone(),
    };
    // The `floor` configuration, on the echo servers and on redis:
    // muxtrace's empty programs.
    if args.bin_dir.is_none() {
        exec(Command::new(env!("CARGO")).current_dir(&root).args([
            "build",
            "--release",
            "-p",
            "tracer-user",
            "--example",
            tracer_overhead::FLOOR,
        ]))?;
    }
    if args.redis_only {
        return redis_overhead::run(&bin_dir, &redis);
    }
    if !args.overhead_only {
        let mut cmd = Command::new(bin_dir.join("server-bench"));
        cmd.arg("--bin-dir").arg(&bin_dir).arg("--out").arg(&out);
        if args.quick {
            cmd.arg("--quick");
        }
        exec(&mut cmd)?;
    }
    // What one traced and one untraced syscall cost, side by side.
    let mut cost = Command::new(env!("CARGO"));
    cost.current_dir(&root).args([
        "bench",
        "-p",
        "tracer-user",
        "--bench",
        "syscall_cost",
        "--",
    ]);
    if args.quick {
        cost.args(["--warm-up-time", "1", "--measurement-time", "2"]);
    }
    // Where the bench leaves the programs' own cost above the floor.
    let program_cost = root.join("target/criterion/syscall_cost/program_cost.json");
    let _ = std::fs::remove_file(&program_cost);
    cost.env("MUXTRACE_PROGRAM_COST", &program_cost);
    exec(&mut cost)?;
    tracer_overhead::run(
        &bin_dir,
        &tracer_overhead::Options {
            rounds,
            seconds: if args.quick { 2 } else { 5 },
            out,
            criterion_dir: root.join("target/criterion"),
            only: args.configs.clone(),
        },
    )?;
    if args.skip_redis {
        return Ok(());
    }
    redis_overhead::run(&bin_dir, &redis)
}
