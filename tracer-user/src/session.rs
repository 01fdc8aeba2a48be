//! A tracing session: validate the request, attach, add the targets, read the
//! maps every interval, notice when targets exit, and hand snapshots to the
//! sinks. The only place that does I/O with the kernel and the clock.

use std::{
    collections::BTreeMap,
    io::{IsTerminal as _, Write as _},
    time::Instant,
};

use tokio::signal::unix::{signal, SignalKind};
use tracer_common::traced;

use crate::{
    cli::Cli,
    dashboard::{Action, Dashboard},
    error::{Result, UserError},
    model::{self, Metrics},
    probes::{ProbeConfig, Probes, LIVENESS_POLL},
    prometheus::Exporter,
    snapshot::Snapshot,
    summary,
    targets::{self, Launched, ProcessId},
    tracefs,
};

/// What user space knows of one traced process.
#[derive(Debug, Clone)]
struct Known {
    id: Option<ProcessId>,
    comm: Vec<u8>,
    alive: bool,
}

/// Why the session ended (all are a normal exit, code 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Duration,
    TargetsExited,
    Signal(&'static str),
    /// q in the dashboard.
    Quit,
}

/// The signals that end a session, caught from the start: one that arrives
/// while attaching, or just after "attached", still ends it with the
/// figures and the probes detached.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn catch() -> Result<Signals> {
        let sig = |kind: SignalKind| {
            signal(kind).map_err(|e| UserError::runtime(format!("cannot handle signals: {e}")))
        };
        Ok(Signals {
            interrupt: sig(SignalKind::interrupt())?,
            terminate: sig(SignalKind::terminate())?,
            hangup: sig(SignalKind::hangup())?,
        })
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    let mut signals = Signals::catch()?;
    if cli.pids.is_empty() && cli.comm.is_none() && cli.command.is_empty() {
        return Err(UserError::usage("nothing to trace")
            .hint("give --pid PID, --comm NAME or -- CMD ARGS (see muxtrace --help)"));
    }
    if let Some(comm) = &cli.comm {
        targets::check_comm(comm)?;
    }
    let explicit = targets::resolve_pids(&cli.pids)?;
    check_privileges()?;
    let root = tracefs::locate()?;
    tracefs::check_tracepoints(&root)?;

    let config = ProbeConfig {
        follow: cli.follow,
        comm: cli.comm.clone(),
        max_threads: cli.max_threads,
    };
    let exporter = match cli.prometheus {
        Some(addr) => Some(Exporter::bind(addr).await?),
        None => None,
    };
    let probes = Probes::attach(&config, &root)?;
    let mut collector = Collector {
        probes,
        known: BTreeMap::new(),
        started: Instant::now(),
        prev: None,
        baseline: None,
    };

    // The command is forked before anything else is traced, held before exec
    // until its pid is in the traced set: its first syscall is seen.
    let mut launched = match cli.command.is_empty() {
        true => None,
        false => Some(Launched::start(&cli.command)?),
    };
    for id in &explicit {
        collector.probes.trace(id.pid, traced::EXPLICIT)?;
        collector.register(id.pid, Some(id.clone()));
    }
    if let Some(name) = &cli.comm {
        for id in targets::find_by_comm(name) {
            collector.probes.trace(id.pid, traced::COMM_MATCH)?;
            collector.register(id.pid, Some(id));
        }
    }
    if let Some(child) = launched.as_mut() {
        collector.probes.trace(child.pid, traced::EXPLICIT)?;
        child.release(&cli.command[0])?;
        let id = ProcessId::of(child.pid);
        collector.register(child.pid, id);
    }
    announce(&cli, &collector.known);

    if let Some(exporter) = &exporter {
        eprintln!(
            "muxtrace: Prometheus metrics at http://{}/metrics",
            exporter.addr
        );
    }
    let mut dashboard = match cli.dashboard() {
        true => Some(Dashboard::open().map_err(|e| {
            UserError::runtime(format!("cannot open the dashboard on this terminal: {e}"))
                .hint("use --summary or --json for output without a terminal")
        })?),
        false => None,
    };
    let mut json_out = cli.json.then(JsonOut::start);
    let result = trace_loop(
        &cli,
        &mut collector,
        launched.as_mut(),
        exporter.as_ref(),
        dashboard.as_mut(),
        json_out.as_mut(),
        &mut signals,
    )
    .await;
    // The terminal is restored before anything else is printed.
    drop(dashboard);
    if let Some(child) = launched.as_mut() {
        child.terminate();
    }
    let (mut metrics, reason) = result?;
    log::info!("session ended: {reason:?}");
    let idle: Vec<(u32, String)> = collector
        .known
        .iter()
        .map(|(tgid, k)| (*tgid, targets::display_comm(&k.comm)))
        .collect();
    // Detached before the last output: a reader that never reads cannot keep
    // the probes in the kernel.
    drop(collector);

    if let Some(mut out) = json_out {
        out.send("final", &mut metrics, true)?;
        out.finish()?;
    }
    if cli.summary || (!cli.json && !cli.dashboard()) {
        write_stdout(&summary::render(&metrics, &idle, cli.wide))?;
    }
    Ok(())
}

/// Owns the probes and what user space knows about the traced processes;
/// turns map reads into metrics.
struct Collector {
    probes: Probes,
    known: BTreeMap<u32, Known>,
    started: Instant,
    prev: Option<Snapshot>,
    /// Set by a reset: figures count from here.
    baseline: Option<Snapshot>,
}

impl Collector {
    /// Reads the maps and computes metrics against the previous reading.
    fn collect(&mut self) -> Result<Metrics> {
        let dump = self.probes.dump()?;
        let cost = self.probes.cost();
        let known = &self.known;
        let mut snapshot = Snapshot::from_dump(self.started.elapsed(), dump, cost, |tgid| {
            let (comm, alive) = match known.get(&tgid) {
                Some(k) => (k.comm.clone(), k.alive),
                None => {
                    // Seen only in the aggregates: a short-lived followed child.
                    let id = ProcessId::of(tgid);
                    let comm = targets::comm_of(tgid).unwrap_or_else(|| b"?".to_vec());
                    (comm, id.as_ref().is_some_and(ProcessId::alive))
                }
            };
            let classes = if alive {
                targets::fd_table(tgid).classes
            } else {
                BTreeMap::new()
            };
            (comm, alive, classes)
        });
        self.refresh_sockets();
        if let Some(base) = &self.baseline {
            snapshot = model::rebase(&snapshot, base);
        }
        let metrics = model::compute(self.prev.as_ref(), &snapshot);
        self.prev = Some(snapshot);
        Ok(metrics)
    }

    /// Figures count from now on (the dashboard's `r`).
    fn reset(&mut self) -> Result<()> {
        let dump = self.probes.dump()?;
        let cost = self.probes.cost();
        let base = Snapshot::from_dump(self.started.elapsed(), dump, cost, |_| {
            (Vec::new(), true, BTreeMap::new())
        });
        self.prev = None;
        self.baseline = Some(base);
        Ok(())
    }

    /// Sockets opened since the last reading (connect, socket) are marked too.
    fn refresh_sockets(&mut self) {
        for (tgid, k) in &self.known {
            if !k.alive {
                continue;
            }
            for fd in targets::socket_fds(*tgid) {
                if let Err(e) = self.probes.mark_socket(*tgid, fd) {
                    log::debug!("{e}");
                }
            }
        }
    }

    fn register(&mut self, tgid: u32, id: Option<ProcessId>) {
        register(&mut self.known, &mut self.probes, tgid, id);
    }
}

async fn trace_loop(
    cli: &Cli,
    collector: &mut Collector,
    mut launched: Option<&mut Launched>,
    exporter: Option<&Exporter>,
    mut dashboard: Option<&mut Dashboard>,
    mut json_out: Option<&mut JsonOut>,
    signals: &mut Signals,
) -> Result<(Metrics, EndReason)> {
    let Signals {
        interrupt: sigint,
        terminate: sigterm,
        hangup: sighup,
    } = signals;
    let mut liveness = tokio::time::interval(LIVENESS_POLL);
    // Our own cost is measured in one short sample per interval.
    let sample_len = (cli.interval / 10).min(COST_SAMPLE);
    let mut sample_end: Option<tokio::time::Instant> = None;
    collector.probes.start_cost_sample();
    sample_end.replace(tokio::time::Instant::now() + sample_len);
    let mut tick = tokio::time::interval(cli.interval);
    tick.tick().await;
    let deadline = cli.duration.map(|d| collector.started + d);
    let sleep_until = async {
        match deadline {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);

    if let Some(dash) = dashboard.as_deref_mut() {
        draw(dash)?;
    }
    let mut exited_shown = false;
    let reason = loop {
        tokio::select! {
            action = next_action(dashboard.as_deref_mut()) => match action {
                Action::Quit => break EndReason::Quit,
                Action::Reset => {
                    collector.reset()?;
                    if let Some(dash) = dashboard.as_deref_mut() {
                        dash.update(collector.collect()?);
                        draw(dash)?;
                    }
                }
                Action::Redraw => {
                    if let Some(dash) = dashboard.as_deref_mut() {
                        draw(dash)?;
                    }
                }
                Action::None => {}
            },
            _ = sigint.recv() => break EndReason::Signal("SIGINT"),
            _ = sigterm.recv() => break EndReason::Signal("SIGTERM"),
            _ = sighup.recv() => break EndReason::Signal("SIGHUP"),
            _ = &mut sleep_until => break EndReason::Duration,
            _ = sleep_until_opt(sample_end) => {
                collector.probes.end_cost_sample();
                sample_end = None;
            }
            _ = tick.tick() => {
                let mut metrics = collector.collect()?;
                collector.probes.start_cost_sample();
                sample_end = Some(tokio::time::Instant::now() + sample_len);
                if let Some(out) = json_out.as_deref_mut() {
                    out.send("interval", &mut metrics, false)?;
                }
                if let Some(exporter) = exporter {
                    exporter.publish(&metrics);
                }
                if let Some(dash) = dashboard.as_deref_mut() {
                    dash.update(metrics);
                    draw(dash)?;
                    if std::env::var_os(PANIC_ENV).is_some() {
                        panic!("{PANIC_ENV} is set: a forced panic, to test the terminal's restore");
                    }
                }
            }
            _ = liveness.tick() => {
                if let Some(child) = launched.as_deref_mut() {
                    child.try_reap();
                }
                discover(&mut collector.probes, &mut collector.known)?;
                let mut any_alive = false;
                for k in collector.known.values_mut() {
                    k.alive = k.alive && k.id.as_ref().is_some_and(ProcessId::alive);
                    any_alive |= k.alive;
                }
                if !any_alive && cli.comm.is_none() {
                    match dashboard.as_deref_mut() {
                        // The dashboard keeps the last figures up until q.
                        Some(dash) if !exited_shown => {
                            dash.update(collector.collect()?);
                            dash.targets_exited();
                            draw(dash)?;
                            exited_shown = true;
                        }
                        Some(_) => {}
                        None => break EndReason::TargetsExited,
                    }
                }
            }
        }
    };
    collector.probes.end_cost_sample();
    // Followed children may have appeared since the last poll.
    discover(&mut collector.probes, &mut collector.known)?;
    Ok((collector.collect()?, reason))
}

/// Set in a test to make the dashboard panic after its first figures.
const PANIC_ENV: &str = "MUXTRACE_TEST_PANIC";

async fn next_action(dashboard: Option<&mut Dashboard>) -> Action {
    match dashboard {
        Some(dash) => dash.next_action().await,
        None => std::future::pending().await,
    }
}

fn draw(dash: &mut Dashboard) -> Result<()> {
    dash.draw()
        .map_err(|e| UserError::runtime(format!("cannot draw on the terminal: {e}")))
}

/// Longest sample of our own cost per interval.
const COST_SAMPLE: std::time::Duration = std::time::Duration::from_millis(100);

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// JSON lines leave on their own thread: a reader that stops reading (a
/// paused pager, a full pipe) must not stall the loop, its map reads or its
/// signal handling. Interval lines that find the queue full are dropped and
/// counted in the next line's `losses`.
struct JsonOut {
    queue: Option<std::sync::mpsc::SyncSender<String>>,
    writer: Option<std::thread::JoinHandle<Result<()>>>,
    dropped: u64,
}

/// Interval lines waiting for a slow reader before new ones are dropped.
const JSON_QUEUE: usize = 64;

impl JsonOut {
    fn start() -> JsonOut {
        let (queue, lines) = std::sync::mpsc::sync_channel::<String>(JSON_QUEUE);
        let writer = std::thread::spawn(move || {
            for line in lines {
                write_stdout(&line)?;
            }
            Ok(())
        });
        JsonOut {
            queue: Some(queue),
            writer: Some(writer),
            dropped: 0,
        }
    }

    /// One JSON object per line: `{"type": "interval"|"final", …Metrics}`.
    /// `wait` queues it even when the reader is behind (the final line).
    fn send(&mut self, kind: &str, metrics: &mut Metrics, wait: bool) -> Result<()> {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(flatten)]
            metrics: &'a Metrics,
        }
        if self.dropped > 0 {
            metrics
                .losses
                .insert(JSON_LINES_DROPPED.to_owned(), self.dropped);
        }
        let mut text = serde_json::to_string(&Line { kind, metrics })
            .map_err(|e| UserError::runtime(format!("cannot encode JSON: {e}")))?;
        text.push('\n');
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let delivered = match wait {
            true => queue.send(text).is_ok(),
            false => match queue.try_send(text) {
                Err(std::sync::mpsc::TrySendError::Full(_)) => {
                    self.dropped += 1;
                    true
                }
                sent => sent.is_ok(),
            },
        };
        match delivered {
            true => Ok(()),
            // The writer stopped: its error says why.
            false => self.finish(),
        }
    }

    /// Writes what is queued and reports the writer's error, if any.
    fn finish(&mut self) -> Result<()> {
        self.queue = None;
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let result = writer
            .join()
            .unwrap_or_else(|_| Err(UserError::runtime("the JSON writer thread failed")));
        if self.dropped > 0 {
            eprintln!(
                "muxtrace: {} JSON interval lines were dropped: stdout did not keep up",
                self.dropped
            );
        }
        result
    }
}

/// The `losses` entry for interval lines a slow stdout reader missed.
pub const JSON_LINES_DROPPED: &str = "json_lines_dropped";

/// Registers processes the kernel added to the traced set (followed children,
/// `--comm` matches). Thread ids in the set (see the fork program) are skipped.
fn discover(probes: &mut Probes, known: &mut BTreeMap<u32, Known>) -> Result<()> {
    let dump_traced = probes.dump_traced()?;
    for tgid in dump_traced {
        if known.contains_key(&tgid) {
            continue;
        }
        match targets::tgid_of(tgid) {
            Some(t) if t == tgid => {
                let id = ProcessId::of(tgid);
                log::info!("now tracing pid {tgid}");
                register(known, probes, tgid, id);
            }
            Some(_) => {} // a thread of a traced process
            None => {
                // Already gone: keep its name if the aggregates show it.
                known.insert(
                    tgid,
                    Known {
                        id: None,
                        comm: b"?".to_vec(),
                        alive: false,
                    },
                );
            }
        }
    }
    Ok(())
}

fn register(
    known: &mut BTreeMap<u32, Known>,
    probes: &mut Probes,
    tgid: u32,
    id: Option<ProcessId>,
) {
    let comm = targets::comm_of(tgid).unwrap_or_else(|| b"?".to_vec());
    for (epfd, registered) in targets::epoll_sets(tgid) {
        if let Err(e) = probes.seed_epoll(tgid, epfd, registered) {
            log::debug!("{e}");
        }
    }
    for fd in targets::socket_fds(tgid) {
        if let Err(e) = probes.mark_socket(tgid, fd) {
            log::debug!("{e}");
        }
    }
    let alive = id.as_ref().is_some_and(ProcessId::alive);
    known.insert(tgid, Known { id, comm, alive });
}

/// One line on stderr once everything is attached: scripts and tests wait
/// for it before making the calls they want counted.
fn announce(cli: &Cli, known: &BTreeMap<u32, Known>) {
    let mut what: Vec<String> = known
        .iter()
        .map(|(pid, k)| format!("{pid} ({})", targets::display_comm(&k.comm)))
        .collect();
    if let Some(comm) = &cli.comm {
        what.push(format!("every process named {comm}"));
    }
    let follow = if cli.follow {
        " and their children"
    } else {
        ""
    };
    eprintln!(
        "muxtrace: attached; tracing {}{follow}; Ctrl-C to stop",
        what.join(", ")
    );
}

fn check_privileges() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(());
    }
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_BPF) && has(CAP_PERFMON) {
        return Ok(());
    }
    Err(UserError::usage(
        "muxtrace needs root, or CAP_BPF and CAP_PERFMON, to load its eBPF programs",
    )
    .hint("run it with sudo: sudo -E muxtrace ..."))
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(UserError::runtime(format!("cannot write to stdout: {e}"))),
    }
}

/// Whether output goes to a terminal (the dashboard's home).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}
