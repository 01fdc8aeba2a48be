//! `cargo xtask bench`'s redis part: what muxtrace costs a real server.
//! redis-benchmark (SET and GET, no pipelining, fixed -n and -c, to
//! 127.0.0.1) against a fresh redis per point, untraced, under muxtrace's
//! empty programs alone (the floor), traced by muxtrace with every probe on
//! (`--json`, read as it comes) and by a bpftrace script counting the same
//! calls, alternating within each round; each run's requests/s divided by
//! the same round's untraced run, then the median and min–max over rounds.
//! Beside the ratios, redis's own CPU per request in each configuration:
//! capped, redis serves what its budget buys, so the ratio follows it, and
//! the floor's share of it is the kernel's, not muxtrace's programs'. With
//! `MUXTRACE_BASELINE`, that build traces redis too, in every round beside
//! this one (`muxtrace-baseline`): a change's cost on a real server. redis runs
//! on CPU 1 capped at half its core, as the echo servers at saturation (see
//! cpu_cap.rs): its CPU budget, not redis-benchmark's core, runs out, so
//! every nanosecond added to its syscalls shows. Writes target/bench/redis.md
//! and redis.json.
use std::{
    fmt::Write as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};
use harness::{clients::run_redis_benchmark, median, muxtrace::json_lines, Proc, Redis};
use serde_json::json;

use crate::{
    cpu_cap::{self, CpuCap},
    tracer_overhead::{self, BASELINE, BPFTRACE_COUNT, FLOOR},
};

/// The configurations of a round that can run here: untraced first (the
/// ratios' base).
fn configs(bin: &Path) -> Vec<&'static str> {
    ["untraced", FLOOR, "muxtrace", BPFTRACE_COUNT, BASELINE]
        .into_iter()
        .filter(|c| tracer_overhead::unavailable(c, bin).is_none())
        .collect()
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

/// One point: requests/s per test, redis's CPU, and what muxtrace measured.
struct Point {
    rps: Vec<(String, f64)>,
    /// redis's CPU time (all its threads, the scheduler's clock) per
    /// request over both tests, ns.
    cpu_ns_per_request: f64,
    /// What muxtrace said of the run (muxtrace and its baseline only).
    traced: Option<Traced>,
}

/// What a muxtrace run measured, per request over both tests.
struct Traced {
    /// redis's traced syscalls.
    calls_per_request: f64,
    /// The programs' run time on every CPU (its own-cost accounting):
    /// redis-benchmark's calls pass their filter too, on the other core.
    program_ns_per_request: f64,
}

fn run_point(bin: &Path, config: &str, requests: u64, script: &Path) -> Result<Point> {
    let redis = Redis::start(Some(1))?;
    let cap = CpuCap::apply(redis.pid())?;
    let tracer = tracer_overhead::start_tracer(bin, config, redis.pid(), script)?;
    let started = Instant::now();
    let cpu_before = harness::procfs::process_cpu_ns(redis.pid())?;
    let rps = run_redis_benchmark(
        redis.port(),
        "set,get",
        requests,
        CLIENTS,
        Some(0),
        Duration::from_secs(600),
    )?;
    let cpu_ns = harness::procfs::process_cpu_ns(redis.pid())?.saturating_sub(cpu_before);
    // Both tests' requests.
    let served = (requests * TESTS.len() as u64) as f64;
    let mut traced = None;
    if let Some((mut p, _)) = tracer {
        let _ = p.stop_with(libc::SIGINT);
        p.wait_output_closed();
        if matches!(config, "muxtrace" | BASELINE) {
            traced = Some(read_traced(&p, started.elapsed(), served)?);
        }
    }
    drop(redis);
    drop(cap);
    Ok(Point {
        rps,
        cpu_ns_per_request: cpu_ns as f64 / served,
        traced,
    })
}

/// redis's calls and the programs' run time, per request, from muxtrace's
/// final line; `traced_for` is how long it traced (its cost is a rate over
/// the samples it took in that time).
fn read_traced(p: &Proc, traced_for: Duration, served: f64) -> Result<Traced> {
    let lines = json_lines(&p.stdout())?;
    let last = lines.last().map(|l| &l.metrics);
    let calls = last
        .and_then(|m| m.processes.first())
        .map_or(0, |p| p.total.calls);
    let program_ns = last
        .and_then(|m| m.cost.as_ref())
        .filter(|c| c.sampled_s > 0.0)
        .map_or(0.0, |c| {
            c.run_time_ns as f64 / c.sampled_s * traced_for.as_secs_f64()
        });
    Ok(Traced {
        calls_per_request: calls as f64 / served,
        program_ns_per_request: program_ns / served,
    })
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
    let configs = configs(bin);
    let script = tracer_overhead::write_bpftrace_scripts(&opts.out)?;
    let mut rounds: Vec<Vec<Point>> = Vec::new();
    let mut raw = Vec::new();
    for round in 0..opts.rounds {
        let mut points = Vec::new();
        for config in &configs {
            eprintln!(
                "redis overhead: round {}/{} {config}",
                round + 1,
                opts.rounds
            );
            let p = run_point(bin, config, opts.requests, &script)
                .with_context(|| format!("redis, {config}, round {}", round + 1))?;
            raw.push(json!({"round": round, "config": config, "rps": p.rps,
                "cpu_ns_per_request": p.cpu_ns_per_request,
                "calls_per_request": p.traced.as_ref().map(|t| t.calls_per_request),
                "program_ns_per_request": p.traced.as_ref().map(|t| t.program_ns_per_request)}));
            points.push(p);
        }
        rounds.push(points);
    }
    let md = render(&rounds, &configs, bin, opts);
    std::fs::write(opts.out.join("redis.md"), &md)?;
    std::fs::write(
        opts.out.join("redis.json"),
        serde_json::to_string_pretty(&json!({"configs": configs, "rounds": raw}))?,
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

/// Median and min–max of one figure over the rounds, for the config in
/// column `i`; None when no round has it.
fn over_rounds(
    rounds: &[Vec<Point>],
    i: usize,
    f: impl Fn(&Point) -> Option<f64>,
) -> Option<(f64, f64, f64)> {
    let v: Vec<f64> = rounds.iter().filter_map(|r| f(r.get(i)?)).collect();
    let (lo, hi) = spread(&v);
    Some((median(&v)?, lo, hi))
}

fn render(rounds: &[Vec<Point>], configs: &[&str], bin: &Path, opts: &Options) -> String {
    let mut md = String::new();
    let date = crate::exec::utc_now();
    let kernel = crate::exec::kernel_release();
    let _ = writeln!(md, "# muxtrace on redis, measured side by side\n");
    let _ = writeln!(
        md,
        "{date}; Linux {}. redis-server (no persistence) pinned to CPU 1 and capped at {}% \
         of its core; redis-benchmark -t set,get -n {} -c {CLIENTS} -P 1 (no pipelining) \
         pinned to CPU 0, to 127.0.0.1. {} rounds, the configurations alternating within \
         each round, a fresh redis per run: untraced; `floor`, muxtrace's empty programs \
         alone on its tracepoints; `muxtrace`, every probe on (--json); `bpftrace-count`, \
         bpftrace counting the same 15 syscalls' entries for redis's pid; \
         muxtrace-baseline, the build MUXTRACE_BASELINE names. Ratios are taken against \
         the same round's untraced run.\n",
        kernel,
        cpu_cap::SHARE_PERCENT,
        opts.requests,
        opts.rounds
    );
    for c in [FLOOR, BPFTRACE_COUNT] {
        if let Some(why) = tracer_overhead::unavailable(c, bin) {
            let _ = writeln!(md, "Not measured: `{c}`, because {why}.\n");
        }
    }
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
        for (i, config) in configs.iter().enumerate().skip(1) {
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
    cpu_section(&mut md, rounds, configs);
    md
}

/// Where redis's CPU per request goes, configuration by configuration: at
/// its cap redis serves what its budget buys, so this, not the client's
/// side, is what the ratios follow.
fn cpu_section(md: &mut String, rounds: &[Vec<Point>], configs: &[&str]) {
    let _ = writeln!(
        md,
        "\n## Where redis's CPU goes\n\nredis's CPU time per request (all its threads, \
         the scheduler's clock, over both tests), and what each configuration added to it \
         beyond the same round's untraced run. Capped, redis serves what its budget buys: \
         a configuration that adds x % to each request's CPU keeps about 1/(1 + x/100) of the \
         requests/s. The floor is what the kernel spends reaching programs on the syscall \
         tracepoints at all (its slow path and dispatch, two per call), which no program \
         there avoids; muxtrace beyond the floor is its programs' work. Its programs' run time \
         per request (its own-cost accounting) is on both cores: redis-benchmark's calls \
         pass the filter too, on CPU 0, outside redis's budget.\n"
    );
    let _ = writeln!(
        md,
        "| config | redis CPU per request, ns, median [min–max] | added beyond untraced, median | \
         redis's traced calls per request | programs' run time per request, ns |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|");
    for (i, config) in configs.iter().enumerate() {
        let Some((cpu, lo, hi)) = over_rounds(rounds, i, |p| Some(p.cpu_ns_per_request)) else {
            continue;
        };
        let added: Vec<f64> = rounds
            .iter()
            .filter_map(|r| {
                let base = r.first()?.cpu_ns_per_request.max(1.0);
                Some((r.get(i)?.cpu_ns_per_request / base - 1.0) * 100.0)
            })
            .collect();
        let calls = over_rounds(rounds, i, |p| Some(p.traced.as_ref()?.calls_per_request));
        let programs = over_rounds(rounds, i, |p| {
            Some(p.traced.as_ref()?.program_ns_per_request)
        });
        let cell = |v: Option<(f64, f64, f64)>, fmt: &dyn Fn(f64) -> String| {
            v.map_or("—".to_owned(), |(m, _, _)| fmt(m))
        };
        let _ = writeln!(
            md,
            "| {config} | {cpu:.0} [{lo:.0}–{hi:.0}] | {} | {} | {} |",
            match (i, median(&added)) {
                (1.., Some(m)) => format!("{m:+.1} %"),
                _ => "—".to_owned(),
            },
            cell(calls, &|m| format!("{m:.2}")),
            cell(programs, &|m| format!("{m:.0}")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(cpu: f64, traced: Option<(f64, f64)>) -> Point {
        Point {
            rps: vec![("SET".into(), 1e9 / cpu), ("GET".into(), 1e9 / cpu)],
            cpu_ns_per_request: cpu,
            traced: traced.map(|(calls, programs)| Traced {
                calls_per_request: calls,
                program_ns_per_request: programs,
            }),
        }
    }

    /// What a configuration added is taken round by round against that
    /// round's untraced run, not between the medians: a slow round moves
    /// every configuration in it together.
    #[test]
    fn added_cpu_is_paired_within_rounds() {
        let rounds = vec![
            vec![point(8000.0, None), point(8800.0, Some((2.5, 800.0)))],
            vec![point(12000.0, None), point(13200.0, Some((2.4, 700.0)))],
            vec![point(9000.0, None), point(8100.0, Some((2.6, 900.0)))],
        ];
        let mut md = String::new();
        cpu_section(&mut md, &rounds, &["untraced", "muxtrace"]);
        // Two rounds added 10 %, one took 10 % off: +10 %, where the
        // medians of the values (8800 against 9000) would say −2.2 %.
        let row = md
            .lines()
            .find(|l| l.starts_with("| muxtrace |"))
            .expect("a muxtrace row");
        assert_eq!(
            row,
            "| muxtrace | 8800 [8100–13200] | +10.0 % | 2.50 | 800 |"
        );
        let base = md
            .lines()
            .find(|l| l.starts_with("| untraced |"))
            .expect("an untraced row");
        assert_eq!(base, "| untraced | 9000 [8000–12000] | — | — | — |");
    }
}
