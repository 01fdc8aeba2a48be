//! `cargo xtask soak`: muxtrace attached to echo-epoll at full load for ten
//! minutes. Checks what only time shows: muxtrace's RSS and the kernel maps'
//! occupancy stay flat, counters only grow (no wrap), and nothing is lost.
//! Writes target/bench/soak.md and the JSON lines behind it, soak.jsonl.
use std::{
    fmt::Write as _,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Result};
use harness::{
    muxtrace::{self, json_lines, JsonLine, LineKind},
    EchoServer, Proc,
};

use crate::{bootstrap, exec::workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// How long muxtrace runs at full load.
    #[arg(long, default_value_t = 10)]
    minutes: u64,
    /// Use the binaries in this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Where soak.md and soak.jsonl go (default target/bench).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

pub fn run(args: &Args) -> Result<()> {
    let bin = bootstrap::release_bins(args.bin_dir.as_deref(), || Ok(()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace_root().join("target/bench"));
    std::fs::create_dir_all(&out)?;
    let minutes = args.minutes;
    let server = EchoServer::start(&bin.join("echo-epoll"), &[], None)?;
    let mt = muxtrace::json_on(&bin.join("muxtrace"), server.pid(), "1s")?;
    let duration = Duration::from_secs(minutes * 60);
    let load = Proc::spawn(
        Command::new(bin.join("loadgen"))
            .args(["--addr", &server.addr().to_string()])
            .args(["--conns", "64", "--size", "64", "--idle", "200"])
            .args([
                "--duration",
                &format!("{}s", duration.as_secs() + 5),
                "--json",
            ]),
    )?;
    let started = Instant::now();
    let mut rss = Vec::new();
    while started.elapsed() < duration {
        std::thread::sleep(Duration::from_secs(10));
        let kib = rss_kib(mt.pid()).ok_or_else(|| anyhow!("muxtrace exited during the soak"))?;
        rss.push((started.elapsed().as_secs(), kib));
        eprintln!(
            "soak {:>4}s  muxtrace RSS {:.1} MiB",
            started.elapsed().as_secs(),
            kib as f64 / 1024.0
        );
    }
    drop(load);
    mt.signal(libc::SIGINT);
    let done = mt.finish(Duration::from_secs(60))?;
    drop(server);

    std::fs::write(out.join("soak.jsonl"), &done.stdout)?;
    let lines = json_lines(&done.stdout)?;
    if lines.len() < 10 {
        bail!("muxtrace wrote only {} JSON lines", lines.len());
    }
    // Counters only grow; the sum of the intervals equals the final total.
    let calls = |l: &JsonLine| l.metrics.processes.first().map_or(0, |p| p.total.calls);
    let monotonic = lines.windows(2).all(|w| calls(&w[1]) >= calls(&w[0]));
    let intervals = || lines.iter().filter(|l| l.kind == LineKind::Interval);
    let interval_sum: u64 = intervals()
        .map(|l| l.metrics.processes.first().map_or(0, |p| p.interval.calls))
        .sum();
    let last = lines.last().ok_or_else(|| anyhow!("no final line"))?;
    let last_interval = intervals().next_back().map_or(0, calls);
    let final_calls = calls(last);
    let losses = last.metrics.losses.len();
    // Like RSS, after the first minute (one line a second): the maps start
    // empty and fill on the first calls.
    let occupancy = |map: &str| -> (u64, u64) {
        let vals: Vec<u64> = lines
            .iter()
            .skip(60.min(lines.len() / 2))
            .filter_map(|l| l.metrics.map_entries.get(map).copied())
            .collect();
        (
            vals.iter().copied().min().unwrap_or(0),
            vals.iter().copied().max().unwrap_or(0),
        )
    };
    // RSS after the first minute, when buffers have reached their size.
    let settled: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= 60)
        .map(|(_, k)| *k)
        .collect();
    let (rss_lo, rss_hi) = (
        settled.iter().copied().min().unwrap_or(0),
        settled.iter().copied().max().unwrap_or(0),
    );
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Soak: muxtrace on echo-epoll at full load for {minutes} min\n"
    );
    let _ = writeln!(md, "loadgen closed loop, 64 active + 200 idle connections; muxtrace --json at a 1 s interval.\n");
    let _ = writeln!(md, "| check | measured | verdict |\n|---|---|---|");
    let _ = writeln!(
        md,
        "| muxtrace RSS after the first minute, min–max | {:.1}–{:.1} MiB | {} |",
        rss_lo as f64 / 1024.0,
        rss_hi as f64 / 1024.0,
        if rss_hi <= rss_lo + 1024 {
            "flat (within 1 MiB)"
        } else {
            "grew"
        }
    );
    for map in ["stats", "threads", "epoll", "traced"] {
        let (lo, hi) = occupancy(map);
        let _ = writeln!(
            md,
            "| {map} map entries after the first minute, min–max | {lo}–{hi} | {} |",
            if hi <= lo + 2 { "flat" } else { "varied" }
        );
    }
    let _ = writeln!(
        md,
        "| total calls never decrease across {} lines | {} | {} |",
        lines.len(),
        monotonic,
        if monotonic { "no wrap" } else { "WRAPPED" }
    );
    let _ = writeln!(md, "| sum of interval calls vs the last interval line's total | {interval_sum} vs {last_interval} | {} |",
        if interval_sum == last_interval { "equal" } else { "differ" });
    let _ = writeln!(
        md,
        "| calls traced in all | {final_calls} | {:.0}/s |",
        final_calls as f64 / duration.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "| loss counters in the final line | {losses} | {} |",
        if losses == 0 {
            "nothing lost"
        } else {
            "LOSSES"
        }
    );
    std::fs::write(out.join("soak.md"), &md)?;
    eprintln!("{md}");
    Ok(())
}
