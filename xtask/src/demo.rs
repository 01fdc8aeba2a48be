//! `cargo xtask build-and-demo`: the five echo servers — blocking, select,
//! poll, epoll, io_uring — under the same load from `loadgen`, idle
//! connections stepped up 0 → 100 → 1,000, and muxtrace's dashboard in
//! compare mode over all five.
//! Everything it starts it stops, by pid, however the demo ends.
use std::{
    io::IsTerminal as _,
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use harness::{EchoModel, Proc};

use crate::{bootstrap, exec::workspace_root};

#[derive(clap::Args)]
pub struct Args {
    /// Run the sweep without a terminal and write target/demo-report/.
    #[arg(long)]
    headless: bool,
    /// Shorter steps of the sweep.
    #[arg(long)]
    quick: bool,
    /// Use the binaries in this directory instead of building them.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<std::path::PathBuf>,
    /// Where --headless writes its report.
    #[arg(long, value_name = "DIR")]
    out: Option<std::path::PathBuf>,
}

const SERVERS: [&str; 5] = ["blocking", "select", "poll", "epoll", "uring"];
const IDLE_STEPS: [u32; 3] = [0, 100, 1000];
/// The same active load on every server: 8 connections, 64-byte messages,
/// 4,000 messages/s in all — well below what any of them can serve, so the
/// differences are the cost of waiting, not saturation.
const LOAD: [&str; 6] = ["--conns", "8", "--size", "64", "--rate", "4000"];

pub fn run(args: &Args) -> Result<()> {
    let bin = bootstrap::release_bins(args.bin_dir.as_deref(), bootstrap::demo_tools)?;
    if args.headless {
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| workspace_root().join("target/demo-report"));
        return crate::sweep::run(&bin, &out, args.quick);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("the demo opens muxtrace's dashboard: run it in a terminal (or use --headless for a report)");
    }
    let step = if args.quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    // Ctrl-C reaches the whole foreground group; the demo itself must live on
    // to stop what it started.
    // SAFETY: setting a signal disposition has no memory-safety preconditions.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };

    let started = Started::default();
    let mut addrs = Vec::new();
    for label in SERVERS {
        let model = EchoModel::named(label)?;
        let server = model.start(&bin, None)?;
        let addr = server.addr().to_string();
        eprintln!(
            "demo: {} (pid {}) listening on {addr}",
            model.bin,
            server.pid()
        );
        started.add(server.into_proc());
        addrs.push((model.bin, addr));
    }
    let pids: Vec<String> = started.pids().iter().map(u32::to_string).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let sweep = {
        let stop = Arc::clone(&stop);
        let started = started.clone();
        let bin = bin.clone();
        let addrs = addrs.clone();
        thread::spawn(move || sweep_loads(&bin, &addrs, step, &stop, &started))
    };
    eprintln!(
        "demo: loadgen drives each server with {}; idle connections step {:?} every {}s (select refuses fds >= 1024)",
        LOAD.join(" "),
        IDLE_STEPS,
        step.as_secs()
    );
    eprintln!("demo: opening muxtrace in compare mode; q quits");
    thread::sleep(Duration::from_secs(1));
    let mut muxtrace = Command::new(bin.join("muxtrace"));
    for pid in &pids {
        muxtrace.args(["--pid", pid]);
    }
    // It owns the terminal: a demo killed from elsewhere must not leave it.
    harness::proc::die_with_parent(&mut muxtrace);
    let status = muxtrace.status().context("cannot start muxtrace");
    stop.store(true, Ordering::SeqCst);
    let _ = sweep.join();
    drop(started);
    let status = status?;
    if !status.success() {
        bail!("muxtrace ended with {status}");
    }
    eprintln!("demo: stopped every server and load generator");
    Ok(())
}

/// Restarts each server's loadgen with the next idle count, every `step`.
fn sweep_loads(
    bin: &Path,
    addrs: &[(&str, String)],
    step: Duration,
    stop: &AtomicBool,
    started: &Started,
) {
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let idle = IDLE_STEPS[round % IDLE_STEPS.len()];
        let mut loads = Vec::new();
        for (_, addr) in addrs {
            let child = Proc::spawn(
                Command::new(bin.join("loadgen"))
                    .args(["--addr", addr])
                    .args(LOAD)
                    .args(["--idle", &idle.to_string(), "--allow-partial-idle"])
                    .args(["--duration", &format!("{}s", step.as_secs() + 5)]),
            );
            if let Ok(child) = child {
                loads.push(child.pid());
                started.add(child);
            }
        }
        let until = Instant::now() + step;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(100));
        }
        for pid in loads {
            started.stop(pid);
        }
        round += 1;
    }
}

/// Every process the demo started; dropping the last handle stops them all.
#[derive(Clone, Default)]
struct Started(Arc<Mutex<Vec<Proc>>>);

impl Started {
    fn add(&self, child: Proc) {
        if let Ok(mut all) = self.0.lock() {
            all.push(child);
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.0
            .lock()
            .map(|a| a.iter().map(Proc::pid).collect())
            .unwrap_or_default()
    }

    fn stop(&self, pid: u32) {
        let Ok(mut all) = self.0.lock() else { return };
        if let Some(i) = all.iter().position(|c| c.pid() == pid) {
            // Dropping the guard stops the process.
            drop(all.remove(i));
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if Arc::strong_count(&self.0) > 1 {
            return;
        }
        if let Ok(mut all) = self.0.lock() {
            // Each guard stops its process as it drops.
            all.clear();
        }
    }
}
