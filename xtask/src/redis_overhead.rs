//! `cargo xtask bench`'s redis part: what muxtrace costs a real server.
//! redis-benchmark (SET and GET, no pipelining, fixed -n and -c, to
//! 127.0.0.1) against a fresh redis per point, untraced and traced by
//! muxtrace with every probe on (`--json`, read as it comes), alternating
//! within each round; each traced run's requests/s divided by the same
//! round's untraced run, then the median and min–max over rounds. With
//! `MUXTRACE_BASELINE`, that build traces redis too, in every round beside
//! this one (`muxtrace-baseline`): a change's cost on a real server. redis runs
//! on CPU 1 capped at half its core, as the echo servers at saturation (see
//! cpu_cap.rs): its CPU budget, not redis-benchmark's core, runs out, so
//! every nanosecond added to its syscalls shows. Writes target/bench/redis.md
//! and redis.json.
use std::{fmt::Write as _, path::Path, process::Command, time::Duration};

use anyhow::{Context as _, Result};
use harness::{clients::run_redis_benchmark, median, muxtrace::json_lines, Proc, Redis};
use serde_json::json;

use crate::cpu_cap::{self, CpuCap};

/// The configurations of a round: untraced first (the ratios' base).
fn configs() -> Vec<&'static str> {
    let mut configs = vec!["untraced", "muxtrace"];
    if crate::tracer_overhead::baseline_exe().is_some_and(|exe| exe.is_file()) {
        configs.push(crate::tracer_overhead::BASELINE);
    }
    configs
}
const TESTS: [&str; 2] = ["SET", "GET"];
/// redis-benchmark's connections.
const CLIENTS: u64 = 50;

pub struct Options {
    pub rounds: usize,
    /// Requests per test (`-n`).
    pub requests: u64,
    pub out: std::path::PathBuf,
}

/// One point: requests/s per test, and what muxtrace measured.
struct Point {
    rps: Vec<(String, f64)>,
    /// Traced syscalls per second redis made (muxtrace's own count).
    syscalls_per_sec: f64,
}

fn run_point(bin: &Path, config: &str, requests: u64) -> Result<Point> {
    let redis = Redis::start(Some(1))?;
    let cap = CpuCap::apply(redis.pid())?;
    let exe = match config {
        "muxtrace" => Some(bin.join("muxtrace")),
        crate::tracer_overhead::BASELINE => crate::tracer_overhead::baseline_exe(),
        _ => None,
    };
    let tracer = match exe {
        Some(exe) => Some(harness::start_muxtrace(
            &exe,
            &[
                "--pid",
                &redis.pid().to_string(),
                "--json",
                "--interval",
                "1s",
            ],
        )?),
        _ => None,
    };
    let rps = run_redis_benchmark(
        redis.port(),
        "set,get",
        requests,
        CLIENTS,
        Some(0),
        Duration::from_secs(600),
    )?;
    let mut syscalls_per_sec = 0.0;
    if let Some(mut p) = tracer {
        syscalls_per_sec = stop_and_read_rate(&mut p)?;
    }
    drop(redis);
    drop(cap);
    Ok(Point {
        rps,
        syscalls_per_sec,
    })
}

/// Stops muxtrace and returns redis's traced calls per second over the run.
fn stop_and_read_rate(p: &mut Proc) -> Result<f64> {
    let _ = p.stop_with(libc::SIGINT);
    p.wait_output_closed();
    Ok(json_lines(&p.stdout())?
        .last()
        .and_then(|l| l.metrics.processes.first())
        .map_or(0.0, |p| p.total.calls_per_sec))
}

/// Why the redis bench cannot run here, or None when it can.
pub fn unavailable() -> Option<String> {
    ["redis-server", "redis-benchmark"]
        .into_iter()
        .find(|prog| {
            Command::new(prog)
                .arg("--version")
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .map(|prog| format!("{prog} is not installed"))
}

pub fn run(bin: &Path, opts: &Options) -> Result<()> {
    std::fs::create_dir_all(&opts.out)?;
    if let Some(why) = unavailable() {
        let md = format!("# muxtrace on redis\n\nNot measured: {why}.\n");
        std::fs::write(opts.out.join("redis.md"), &md)?;
        eprintln!("{md}");
        return Ok(());
    }
    let mut rounds: Vec<Vec<Point>> = Vec::new();
    let mut raw = Vec::new();
    for round in 0..opts.rounds {
        let mut points = Vec::new();
        for config in configs() {
            eprintln!(
                "redis overhead: round {}/{} {config}",
                round + 1,
                opts.rounds
            );
            let p = run_point(bin, config, opts.requests)
                .with_context(|| format!("redis, {config}, round {}", round + 1))?;
            raw.push(json!({"round": round, "config": config, "rps": p.rps,
                "syscalls_per_sec": p.syscalls_per_sec}));
            points.push(p);
        }
        rounds.push(points);
    }
    let md = render(&rounds, opts);
    std::fs::write(opts.out.join("redis.md"), &md)?;
    std::fs::write(
        opts.out.join("redis.json"),
        serde_json::to_string_pretty(&json!({"rounds": raw}))?,
    )?;
    eprintln!("{md}");
    Ok(())
}

fn rps_of(p: &Point, test: &str) -> f64 {
    p.rps
        .iter()
        .find(|(t, _)| t == test)
        .map_or(0.0, |(_, r)| *r)
}

fn spread(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn render(rounds: &[Vec<Point>], opts: &Options) -> String {
    let mut md = String::new();
    let date = crate::exec::utc_now();
    let kernel = crate::exec::kernel_release();
    let _ = writeln!(md, "# muxtrace on redis, measured side by side\n");
    let _ = writeln!(
        md,
        "{date}; Linux {}. redis-server (no persistence) pinned to CPU 1 and capped at {}% \
         of its core; redis-benchmark -t set,get -n {} -c {CLIENTS} -P 1 (no pipelining) \
         pinned to CPU 0, to 127.0.0.1. {} rounds, untraced and traced by muxtrace (every \
         probe on, --json; muxtrace-baseline: the build MUXTRACE_BASELINE names) alternating \
         within each round, a fresh redis per run; ratios are taken against the same round's \
         untraced run.\n",
        kernel,
        cpu_cap::SHARE_PERCENT,
        opts.requests,
        opts.rounds
    );
    let _ = writeln!(
        md,
        "| test | config | requests/s, median | ratio to untraced, median [min–max] |"
    );
    let _ = writeln!(md, "|---|---|---:|---|");
    for test in TESTS {
        let base: Vec<f64> = rounds.iter().map(|r| rps_of(&r[0], test)).collect();
        let _ = writeln!(
            md,
            "| {test} | untraced | {:.0} | 1.000 |",
            median(&base).unwrap_or(0.0)
        );
        for (i, config) in configs().iter().enumerate().skip(1) {
            let traced: Vec<f64> = rounds.iter().map(|r| rps_of(&r[i], test)).collect();
            let ratios: Vec<f64> = traced
                .iter()
                .zip(&base)
                .map(|(t, b)| t / b.max(1.0))
                .collect();
            let (lo, hi) = spread(&ratios);
            let _ = writeln!(
                md,
                "| {test} | {config} | {:.0} | {:.3} [{lo:.3}–{hi:.3}] |",
                median(&traced).unwrap_or(0.0),
                median(&ratios).unwrap_or(0.0),
            );
        }
    }
    let sps: Vec<f64> = rounds.iter().map(|r| r[1].syscalls_per_sec).collect();
    let _ = writeln!(
        md,
        "\nredis made {:.0} traced syscalls per second while traced (median over rounds, \
         muxtrace's own count over the whole run).",
        median(&sps).unwrap_or(0.0)
    );
    md
}
