//! `server-bench`: messages per second of every echo server, side by side.
//!
//! For each server (blocking, select, poll, epoll, epoll --edge, uring,
//! uring --sqpoll) and each idle-connection count (default 0, 100 and
//! 1,000) it starts a fresh server, runs `loadgen --json` with 64 active
//! closed-loop connections, stops the server with SIGTERM, and records
//! loadgen's numbers and the server's `stopped:` line. Each point is run with one and with two loadgen
//! threads and the faster run is kept: on a two-core machine one client
//! thread can hold back the thread-per-connection server, while two steal
//! the second core from a single-threaded one. Runs go one after another —
//! never at the same time — so each server has the machine to itself.
//!
//! Writes `<out>/servers.md` (a Markdown table headed by date, kernel and
//! CPU count) and `<out>/servers.json` (every point in full). The select
//! server refuses descriptors at or above 1024, so at 1,000 idle connections
//! it holds fewer; loadgen runs with `--allow-partial-idle` and the table
//! says how many were really open.
//!
//! Exit status: 0 when every point ran cleanly, 1 when any point failed (the
//! files are still written, with the failure in place of the number).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Parser;
use harness::{run_loadgen, EchoModel, Report, ECHO_MODELS};
use serde::Serialize;
use tracer_common::duration::parse_duration;
use tracer_model::format::thousands;

/// Throughput sweep of the echo servers at rising idle-connection counts.
#[derive(Debug, Parser)]
#[command(name = "server-bench", version)]
struct Args {
    /// Directory holding the echo-* and loadgen binaries (default: this
    /// program's own directory).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Directory for servers.md and servers.json.
    #[arg(long, value_name = "DIR", default_value = "target/bench")]
    out: PathBuf,
    /// Measured time per point (default 3s, or 1s with --quick).
    #[arg(long, value_parser = |s: &str| parse_duration(s).map_err(|e| format!("'{s}' {e}")))]
    duration: Option<Duration>,
    /// Short points and warm-up, for a smoke run.
    #[arg(long)]
    quick: bool,
    /// Active connections.
    #[arg(long, default_value_t = 64)]
    conns: u32,
    /// Idle-connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0u32, 100, 1000])]
    idle: Vec<u32>,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// loadgen thread counts to try per point, comma-separated; the best
    /// result is kept. On a small machine one client thread can limit the
    /// thread-per-connection server while two starve a single-threaded one,
    /// so trying both keeps the client from being the bottleneck.
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 2])]
    loadgen_threads: Vec<u32>,
}

/// One server at one idle count: the best of the loadgen runs.
#[derive(Debug, Serialize)]
struct Point {
    server: String,
    idle_requested: u32,
    /// loadgen threads of the run shown.
    loadgen_threads: u32,
    /// loadgen's JSON report of the run shown, when it produced one.
    loadgen: Option<Report>,
    /// The server's `stopped:` line in that run.
    server_stopped: Option<String>,
    /// Why a run failed, if any did.
    failure: Option<String>,
    /// Every run: loadgen threads and messages per second.
    tried: Vec<(u32, Option<f64>)>,
}

/// One loadgen run against a fresh server.
struct Run {
    threads: u32,
    loadgen: Option<Report>,
    server_stopped: Option<String>,
    failure: Option<String>,
}

impl Run {
    fn rate(&self) -> Option<f64> {
        self.loadgen.as_ref().map(|r| r.messages_per_sec)
    }
}

/// What every run of the sweep sends.
struct Load {
    conns: u32,
    size: u32,
    duration: Duration,
    warmup: Duration,
}

#[derive(Debug, Serialize)]
struct Bench {
    date_utc: String,
    kernel: String,
    cpus: usize,
    duration_s: f64,
    warmup_s: f64,
    conns: u32,
    size: u32,
    loadgen_threads: Vec<u32>,
    points: Vec<Point>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("server-bench: some points failed; see the tables");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("server-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<bool> {
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .context("cannot find this program's path")?
            .parent()
            .context("this program's path has no directory")?
            .to_path_buf(),
    };
    for bin in ECHO_MODELS.iter().map(|m| m.bin).chain(["loadgen"]) {
        if !bin_dir.join(bin).is_file() {
            bail!("{} not found in {}", bin, bin_dir.display());
        }
    }
    let duration = args.duration.unwrap_or(if args.quick {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(3)
    });
    let warmup = if args.quick {
        Duration::from_millis(200)
    } else {
        Duration::from_millis(500)
    };

    let load = Load {
        conns: args.conns,
        size: args.size,
        duration,
        warmup,
    };
    let mut points = Vec::new();
    for model in ECHO_MODELS {
        let label = model.command_line();
        for &idle in &args.idle {
            let mut runs = Vec::new();
            for &threads in &args.loadgen_threads {
                eprintln!("server-bench: {label}, {idle} idle, loadgen threads {threads} ...");
                let run = measure(model, &bin_dir, &load, idle, threads);
                if let Some(f) = &run.failure {
                    eprintln!("server-bench: {label}, {idle} idle failed: {f}");
                }
                runs.push(run);
            }
            points.push(best_of(&label, idle, runs));
        }
    }

    let bench = Bench {
        date_utc: utc_now(),
        kernel: kernel_release(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        duration_s: duration.as_secs_f64(),
        warmup_s: warmup.as_secs_f64(),
        conns: args.conns,
        size: args.size,
        loadgen_threads: args.loadgen_threads.clone(),
        points,
    };
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let md = markdown(&bench, &args.idle);
    let md_path = args.out.join("servers.md");
    fs::write(&md_path, &md).with_context(|| format!("cannot write {}", md_path.display()))?;
    let json_path = args.out.join("servers.json");
    let json = serde_json::to_string_pretty(&bench).context("cannot encode the results")?;
    fs::write(&json_path, json + "\n")
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    // A reader that went away (`| head`) does not undo the files written.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(md.as_bytes()).and_then(|()| out.flush());
    eprintln!(
        "server-bench: wrote {} and {}",
        md_path.display(),
        json_path.display()
    );
    Ok(bench.points.iter().all(|p| p.failure.is_none()))
}

/// Keeps the fastest clean run; any failed run fails the point.
fn best_of(label: &str, idle: u32, runs: Vec<Run>) -> Point {
    let tried = runs.iter().map(|r| (r.threads, r.rate())).collect();
    let failure = runs.iter().find_map(|r| r.failure.clone());
    let best = runs.into_iter().max_by(|a, b| {
        a.rate()
            .unwrap_or(-1.0)
            .total_cmp(&b.rate().unwrap_or(-1.0))
    });
    let (threads, loadgen, server_stopped) = match best {
        Some(r) => (r.threads, r.loadgen, r.server_stopped),
        None => (0, None, None),
    };
    Point {
        server: label.to_string(),
        idle_requested: idle,
        loadgen_threads: threads,
        loadgen,
        server_stopped,
        failure,
        tried,
    }
}

/// Starts the model's server, runs loadgen against it, stops it.
fn measure(model: EchoModel, bin_dir: &Path, load: &Load, idle: u32, threads: u32) -> Run {
    let mut run = Run {
        threads,
        loadgen: None,
        server_stopped: None,
        failure: None,
    };
    let server = match model.start(bin_dir, None) {
        Ok(s) => s,
        Err(e) => {
            run.failure = Some(format!("{e:#}"));
            return run;
        }
    };
    let args = [
        "--addr".to_owned(),
        server.addr().to_string(),
        "--conns".to_owned(),
        load.conns.to_string(),
        "--idle".to_owned(),
        idle.to_string(),
        "--size".to_owned(),
        load.size.to_string(),
        "--duration".to_owned(),
        format!("{}ms", load.duration.as_millis()),
        "--warmup".to_owned(),
        format!("{}ms", load.warmup.as_millis()),
        "--threads".to_owned(),
        threads.to_string(),
        "--allow-partial-idle".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run_loadgen(&bin_dir.join("loadgen"), &args, None) {
        Ok(done) => {
            run.loadgen = done.report.clone();
            if let Err(e) = done.into_report() {
                run.failure = Some(format!("{e:#}"));
            }
        }
        Err(e) => run.failure = Some(format!("cannot run loadgen: {e:#}")),
    }
    match server.stop() {
        Ok(line) => run.server_stopped = Some(line),
        Err(e) => {
            if run.failure.is_none() {
                run.failure = Some(format!("{e:#}"));
            }
        }
    }
    run
}

/// A table of the Markdown: its title, and the figure of a run it shows.
type Column = (&'static str, fn(&Report) -> f64);

const COLUMNS: [Column; 3] = [
    ("messages/s", |r| r.messages_per_sec),
    ("p50 latency (µs)", |r| r.latency_us.p50),
    ("p99 latency (µs)", |r| r.latency_us.p99),
];

fn markdown(b: &Bench, idles: &[u32]) -> String {
    let mut s = String::new();
    s.push_str("# Echo servers: messages per second\n\n");
    s.push_str(&format!("- date: {}\n", b.date_utc));
    s.push_str(&format!("- kernel: {}\n", b.kernel));
    s.push_str(&format!("- CPUs: {}\n", b.cpus));
    s.push_str(&format!(
        "- load: {} active connections, closed loop, {}-byte messages, {} s per point after {} s warm-up; a fresh server per run\n",
        b.conns, b.size, b.duration_s, b.warmup_s
    ));
    let threads: Vec<String> = b.loadgen_threads.iter().map(u32::to_string).collect();
    s.push_str(&format!(
        "- each cell is the best of loadgen with {} client thread(s); the JSON has every run\n\n",
        threads.join(" and ")
    ));
    let header = |s: &mut String, what: &str| {
        s.push_str(&format!("| {what} |"));
        for idle in idles {
            s.push_str(&format!(" {idle} idle |"));
        }
        s.push_str("\n|---|");
        for _ in idles {
            s.push_str("---:|");
        }
        s.push('\n');
    };
    let mut notes = Vec::new();
    let cell = |p: &Point, value: fn(&Report) -> f64| -> String {
        if let Some(f) = &p.failure {
            return format!("failed: {}", f.replace('|', "/"));
        }
        p.loadgen
            .as_ref()
            .map_or("?".into(), |r| thousands(value(r).round() as u64))
    };
    let find = |label: &str, idle: u32| {
        b.points
            .iter()
            .find(|p| p.server == label && p.idle_requested == idle)
    };
    for (title, value) in COLUMNS {
        s.push_str(&format!("## {title}\n\n"));
        header(&mut s, "server");
        for model in ECHO_MODELS {
            let label = model.command_line();
            s.push_str(&format!("| {label} |"));
            for &idle in idles {
                let text = find(&label, idle).map_or("-".into(), |p| cell(p, value));
                let short = find(&label, idle)
                    .and_then(|p| p.loadgen.as_ref())
                    .map(|r| r.idle_conns)
                    .filter(|&open| open < idle as u64);
                match short {
                    Some(open) => s.push_str(&format!(" {text} ({open} idle open) |")),
                    None => s.push_str(&format!(" {text} |")),
                }
            }
            s.push('\n');
        }
        s.push('\n');
    }
    for p in &b.points {
        if let Some(open) = p
            .loadgen
            .as_ref()
            .map(|r| r.idle_conns)
            .filter(|&open| open < p.idle_requested as u64)
        {
            notes.push(format!(
                "- {} held only {} of {} idle connections{}.\n",
                p.server,
                open,
                p.idle_requested,
                if p.server == "select" {
                    ": it refuses descriptors >= FD_SETSIZE (1024)"
                } else {
                    ""
                }
            ));
        }
    }
    if !notes.is_empty() {
        s.push_str("Notes:\n\n");
        for n in notes {
            s.push_str(&n);
        }
        s.push('\n');
    }
    s
}

/// `uname -r`.
fn kernel_release() -> String {
    // SAFETY: a zeroed utsname is valid; uname fills NUL-terminated fields.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// The current time as `YYYY-MM-DD HH:MM UTC`, without a date crate.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
