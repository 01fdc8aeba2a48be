//! A tracing session: check the request, attach, add the targets, then one
//! loop that reads the maps every interval and hands the figures to the
//! sinks, until a signal, `--duration`, `q` or the targets' exit ends it.
//! It orchestrates; the work is in the collector and the sinks.

use std::time::Duration;

use tokio::{
    signal::unix::{signal, SignalKind},
    time::MissedTickBehavior,
};
use tracer_common::{admit, traced};
use tracer_model::Metrics;

use crate::{
    btf::KernelBtf,
    cgroup::{self, Cgroup},
    cli::Cli,
    collector::Collector,
    dashboard::{Action, Dashboard},
    error::{Result, UserError},
    kernel_log::{self, KernelLog},
    own_cost, preflight,
    probes::{BtfPrefetch, ProbeConfig, Probes, LIVENESS_POLL},
    prometheus::Exporter,
    sinks::Sinks,
    targets::{self, Launched, ProcessId},
};

/// Why the session ended (all are a normal exit, code 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    Duration,
    TargetsExited,
    Signal(&'static str),
    /// q in the dashboard.
    Quit,
    /// The pipe or socket on stdout lost its reader (`| head`, a consumer
    /// that died): nothing written from now on would be read.
    StdoutClosed,
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
    let signals = Signals::catch()?;
    let btf_prefetch = BtfPrefetch::start();
    if cli.pids.is_empty()
        && cli.comm.is_none()
        && cli.command.is_empty()
        && !cli.all
        && cli.cgroup.is_none()
    {
        return Err(UserError::usage("nothing to trace").hint(
            "give --pid PID, --comm NAME, --cgroup PATH, --all or -- CMD ARGS (see muxtrace --help)",
        ));
    }
    cli.check_selection()?;
    cli.check_prometheus()?;
    if let Some(comm) = &cli.comm {
        targets::check_comm(comm)?;
    }
    let pidns = targets::pid_namespace()?;
    if let Some(ns) = pidns {
        log::info!("in pid namespace {}: pids are the namespace's", ns.ino);
    }
    let cgroup = cli.cgroup.as_deref().map(cgroup::resolve).transpose()?;
    let explicit = targets::resolve_pids(&cli.pids)?;
    if let Some(cgroup) = &cgroup {
        if let Some(outside) = explicit.iter().find(|id| !cgroup.holds(id.pid)) {
            return Err(UserError::usage(format!(
                "pid {} is not in cgroup {}",
                outside.pid, cgroup.hierarchy_path
            ))
            .hint("with --cgroup, --pid names processes of that cgroup to show on their own; its cgroup is on the 0:: line of /proc/PID/cgroup"));
        }
    }
    preflight::check_privileges()?;
    let btf = KernelBtf::load()?;
    preflight::check_tracepoints(&btf, cgroup.is_some())?;

    let admission = match (cli.all, &cgroup) {
        (true, _) => admit::WAITERS,
        (false, Some(_)) => admit::CGROUP,
        (false, None) => admit::NONE,
    };
    let config = ProbeConfig {
        follow: cli.follow,
        comm: cli.comm.clone(),
        max_threads: cli.max_threads,
        max_processes: cli.max_processes,
        admission,
        cgroup: cgroup.clone(),
        stall: cli.stall,
        time_every: cli.time_every,
        pidns,
        log_level: match cli.verbose {
            true => kernel_log::LEVEL_INFO,
            false => kernel_log::LEVEL_OFF,
        },
    };
    let mut exporter = match cli.prometheus {
        Some(addr) => Some(Exporter::bind(addr, cli.prometheus_top()).await?),
        None => None,
    };
    let mut probes = Probes::attach(&config, btf, btf_prefetch)?;
    let kernel_log = probes.take_kernel_log();
    // With --all and --cgroup the kernel fills the traced set by itself:
    // user space keeps room in it by evicting the least active.
    let evict_at = (admission != admit::NONE).then_some(cli.max_processes);
    let mut collector = Collector::new(probes, evict_at);
    if !cli.follow && admission == admit::NONE {
        collector.list_untraced_children();
    }

    // The command is forked before anything else is traced, held before exec
    // until its pid is in the traced set: its first syscall is seen.
    let mut command_output = match !cli.command.is_empty() && cli.dashboard() {
        true => Some(CommandOutput::create(&cli.command[0])?),
        false => None,
    };
    let mut launched = match cli.command.is_empty() {
        true => None,
        false => Some(Launched::start(
            &cli.command,
            command_output.as_ref().map(|o| &o.file),
        )?),
    };
    if let (Some(out), Some(launched)) = (&mut command_output, &launched) {
        out.name_after(launched.pid);
    }
    let mut roots = Vec::new();
    for id in explicit {
        roots.push(id.pid);
        collector.trace(id.pid, traced::EXPLICIT)?;
        collector.register_named(id.pid, Some(id));
    }
    // The cgroup's processes now (attached first: one forked or moved in
    // meanwhile is the programs' to admit). One the full traced set
    // refuses is a candidate already: its next call tries again.
    if let Some(cgroup) = &cgroup {
        for pid in cgroup.processes() {
            if collector.is_known(pid) || targets::is_kernel_thread(pid) {
                continue;
            }
            let Some(id) = ProcessId::of(pid) else {
                continue;
            };
            match collector.trace(pid, traced::ADMITTED) {
                Ok(()) => collector.register(pid, Some(id)),
                Err(e) => log::info!("pid {pid} in the cgroup is not traced yet: {e}"),
            }
        }
    }
    if let Some(name) = &cli.comm {
        for id in targets::find_by_comm(name) {
            roots.push(id.pid);
            collector.trace(id.pid, traced::COMM_MATCH)?;
            collector.register(id.pid, Some(id));
        }
    }
    // --follow takes the children that exist already (nginx's workers,
    // forked long before), not only those forked from now on.
    if cli.follow {
        for root in roots {
            for id in targets::descendants(root) {
                collector.trace(id.pid, traced::FOLLOWED)?;
                collector.register(id.pid, Some(id));
            }
        }
    }
    if let Some(child) = launched.as_mut() {
        collector.trace(child.pid, traced::EXPLICIT)?;
        child.release(&cli.command[0])?;
        collector.register_named(child.pid, ProcessId::of(child.pid));
    }
    // A process may exit while the programs load (a named one that lives
    // 100 ms): the line must not claim it is being traced.
    // (A launched command, released once attached, was traced whole.)
    collector.refresh_liveness();
    let launched_pid = launched.as_ref().map(|child| child.pid);
    let traced: Vec<(u32, String)> = collector
        .traced()
        .into_iter()
        .map(|(pid, comm)| match collector.is_alive(pid) {
            true => (pid, comm),
            false if Some(pid) == launched_pid => (pid, format!("{comm}, exited")),
            false => (pid, format!("{comm}, exited while muxtrace attached")),
        })
        .collect();
    announce(&cli, cgroup.as_ref(), &traced);
    if let Some(exporter) = &mut exporter {
        // A scrape before the first interval gets what is known so far: in
        // place before the address is announced, as the endpoint serves on
        // a thread of its own.
        exporter.publish(&collector.collect()?);
        eprintln!(
            "muxtrace: Prometheus metrics at http://{}/metrics",
            exporter.addr
        );
        if exporter.is_exposed() {
            eprintln!(
                "muxtrace: {} is not a loopback address: anyone who can reach this machine can read the traced processes' names, pids and figures",
                exporter.addr.ip()
            );
        }
    }
    // With --comm, --all or --cgroup, processes may still start.
    let selection_grows = cli.comm.is_some() || admission != admit::NONE;
    let dashboard = match cli.dashboard() {
        true => Some(Dashboard::open(selection_grows).map_err(|e| {
            UserError::runtime(format!("cannot open the dashboard on this terminal: {e}"))
                .hint("use --summary or --json for output without a terminal")
        })?),
        false => None,
    };
    let summary = cli.summary || (!cli.json && dashboard.is_none());
    let mut session = Session {
        collector,
        kernel_log,
        launched,
        sinks: Sinks::new(dashboard, cli.json, exporter, summary, cli.wide),
        signals,
        interval: cli.interval,
        duration: cli.duration,
        end_when_targets_exit: !selection_grows,
    };
    let result = session.trace_loop().await;
    // The terminal is restored before anything else is printed.
    session.sinks.close_dashboard();
    if let Some(child) = session.launched.as_mut() {
        child.terminate();
        if let Some(out) = &command_output {
            out.report(&cli.command[0]);
        }
        if let Some(failure) = child.failure() {
            eprintln!("muxtrace: the command {} {failure}", cli.command[0]);
        }
    }
    let (metrics, reason) = result?;
    log::info!("session ended: {reason:?}");
    if reason == EndReason::StdoutClosed {
        eprintln!("muxtrace: stdout's reader went away: tracing stopped");
    }
    let Session {
        collector, sinks, ..
    } = session;
    let traced = collector.traced();
    // Detached before the last output: a reader that never reads cannot keep
    // the probes in the kernel.
    drop(collector);
    sinks.finish(metrics, &traced)
}

/// Where a command started under the dashboard writes: a file, named at
/// the end, so its output neither scribbles over the screen nor is lost.
struct CommandOutput {
    path: std::path::PathBuf,
    file: std::fs::File,
    /// The command's file name, in the log's.
    command: String,
}

impl CommandOutput {
    fn create(argv0: &str) -> Result<CommandOutput> {
        let command = std::path::Path::new(argv0)
            .file_name()
            .map_or_else(|| "command".into(), |n| n.to_string_lossy().into_owned());
        // Named with muxtrace's pid until the command has its own. A new
        // file only: an earlier run's log of that name (its command had
        // this pid) is kept, and no link planted in a shared /tmp is
        // followed.
        let first =
            std::env::temp_dir().join(format!("muxtrace-{}-{command}.log", std::process::id()));
        let (file, path) = crate::logfile::create_unique(&first).map_err(|e| {
            UserError::runtime(format!(
                "cannot create {} for the command's output: {e}",
                first.display()
            ))
            .hint("set TMPDIR to a writable directory, or use --summary or --json")
        })?;
        Ok(CommandOutput {
            path,
            file,
            command,
        })
    }

    /// Renames the file after the command's pid, the one the dashboard
    /// shows; the command's open descriptor follows. A link, not a rename,
    /// so an earlier run's file of that name is never overwritten; on
    /// failure the first name stays, and `report` gives it.
    fn name_after(&mut self, pid: u32) {
        let renamed = self
            .path
            .with_file_name(format!("muxtrace-{pid}-{}.log", self.command));
        if std::fs::hard_link(&self.path, &renamed).is_ok() {
            let _ = std::fs::remove_file(&self.path);
            self.path = renamed;
        }
    }

    /// Says where the output went, once the terminal is back; an empty
    /// file is removed and not mentioned.
    fn report(&self, argv0: &str) {
        let len = self.file.metadata().map_or(0, |m| m.len());
        if len == 0 {
            let _ = std::fs::remove_file(&self.path);
            return;
        }
        eprintln!(
            "muxtrace: {argv0} wrote {} of output, kept off the dashboard, to {}",
            tracer_model::format::bytes(len as f64),
            self.path.display()
        );
    }
}

struct Session {
    collector: Collector,
    kernel_log: Option<KernelLog>,
    launched: Option<Launched>,
    sinks: Sinks,
    signals: Signals,
    interval: Duration,
    duration: Option<Duration>,
    end_when_targets_exit: bool,
}

impl Session {
    async fn trace_loop(&mut self) -> Result<(Metrics, EndReason)> {
        let mut liveness = tokio::time::interval(LIVENESS_POLL);
        liveness.set_missed_tick_behavior(MissedTickBehavior::Skip);
        // Our own cost is measured a tenth of each interval at most, in
        // short pieces spread over it.
        let mut cost = CostPieces::new(self.interval);
        self.collector.probes_mut().start_cost_sample();
        cost.started_interval(tokio::time::Instant::now());
        // A stopped muxtrace (SIGSTOP, a suspended laptop) resumes with one
        // long interval, not a burst of replayed ones.
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        tick.tick().await;
        let deadline = self.duration.map(|d| self.collector.started() + d);
        let duration_over = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(duration_over);

        self.sinks.redraw()?;
        let mut exited_shown = false;
        let reason = loop {
            tokio::select! {
                action = self.sinks.next_action() => match action {
                    Action::Quit => break EndReason::Quit,
                    Action::Reset => {
                        self.collector.reset()?;
                        let metrics = self.collector.collect()?;
                        self.sinks.show(metrics)?;
                    }
                    Action::Redraw => self.sinks.redraw()?,
                    Action::None => {}
                },
                _ = self.signals.interrupt.recv() => break EndReason::Signal("SIGINT"),
                _ = self.signals.terminate.recv() => break EndReason::Signal("SIGTERM"),
                _ = self.signals.hangup.recv() => break EndReason::Signal("SIGHUP"),
                _ = &mut duration_over => break EndReason::Duration,
                _ = forward_kernel_log(self.kernel_log.as_mut()) => {}
                _ = sleep_until_opt(cost.next_edge()) => {
                    if cost.sampling() {
                        self.collector.probes_mut().end_cost_sample();
                        cost.ended_piece();
                    } else {
                        self.collector.probes_mut().start_cost_sample();
                        cost.started_piece(tokio::time::Instant::now());
                    }
                }
                _ = tick.tick() => {
                    let metrics = self.collector.collect()?;
                    // A piece still on (the clock jumped) ends with its interval.
                    if cost.sampling() {
                        self.collector.probes_mut().end_cost_sample();
                    }
                    self.collector.probes_mut().start_cost_sample();
                    cost.started_interval(tokio::time::Instant::now());
                    self.sinks.publish(metrics)?;
                }
                _ = liveness.tick() => {
                    if let Some(child) = self.launched.as_mut() {
                        child.try_reap();
                    }
                    if self.sinks.stdout_reader_gone() {
                        break EndReason::StdoutClosed;
                    }
                    self.collector.discover()?;
                    self.collector.evict_if_full()?;
                    let any_alive = self.collector.refresh_liveness();
                    if !any_alive && self.end_when_targets_exit {
                        if !self.sinks.has_dashboard() {
                            break EndReason::TargetsExited;
                        }
                        // The dashboard keeps the last figures up until q.
                        if !exited_shown {
                            let metrics = self.collector.collect()?;
                            let run = self.collector.over_the_run();
                            self.sinks.targets_exited(metrics, run)?;
                            exited_shown = true;
                        }
                    }
                }
            }
        };
        self.collector.probes_mut().end_cost_sample();
        // Followed children may have appeared since the last poll.
        self.collector.discover()?;
        Ok((self.collector.collect_final(self.interval)?, reason))
    }
}

async fn forward_kernel_log(log: Option<&mut KernelLog>) {
    match log {
        Some(log) => log.forward().await,
        None => std::future::pending().await,
    }
}

/// Longest time our own cost is sampled per interval.
const COST_SAMPLE: Duration = Duration::from_millis(100);

/// When the own-cost samples of an interval start and end: pieces of
/// equal length, evenly spread (the first at its start), so a disturbance
/// of a few milliseconds moves one piece, not the interval's whole sample.
struct CostPieces {
    interval: Duration,
    piece: Duration,
    interval_start: tokio::time::Instant,
    /// Pieces started in this interval.
    started: u32,
    /// The next start or end of a piece; `None` once the interval's last
    /// piece has ended.
    next: Option<tokio::time::Instant>,
    sampling: bool,
}

impl CostPieces {
    fn new(interval: Duration) -> CostPieces {
        let now = tokio::time::Instant::now();
        CostPieces {
            interval,
            piece: (interval / 10).min(COST_SAMPLE) / own_cost::PIECES_PER_INTERVAL,
            interval_start: now,
            started: 0,
            next: None,
            sampling: false,
        }
    }

    fn next_edge(&self) -> Option<tokio::time::Instant> {
        self.next
    }

    fn sampling(&self) -> bool {
        self.sampling
    }

    /// The interval's first piece started at `now`.
    fn started_interval(&mut self, now: tokio::time::Instant) {
        self.interval_start = now;
        self.started = 0;
        self.started_piece(now);
    }

    fn started_piece(&mut self, now: tokio::time::Instant) {
        self.started += 1;
        self.sampling = true;
        self.next = Some(now + self.piece);
    }

    fn ended_piece(&mut self) {
        self.sampling = false;
        self.next = (self.started < own_cost::PIECES_PER_INTERVAL).then(|| {
            self.interval_start + self.interval * self.started / own_cost::PIECES_PER_INTERVAL
        });
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One line on stderr once everything is attached: scripts and tests wait
/// for it before making the calls they want counted.
fn announce(cli: &Cli, cgroup: Option<&Cgroup>, traced: &[(u32, String)]) {
    /// A cgroup may hold thousands: the line names this many.
    const NAMED: usize = 10;
    let mut what: Vec<String> = traced
        .iter()
        .take(NAMED)
        .map(|(pid, comm)| format!("{pid} ({comm})"))
        .collect();
    if traced.len() > NAMED {
        what.push(format!("{} more", traced.len() - NAMED));
    }
    if let Some(comm) = &cli.comm {
        what.push(format!("every process named {comm}"));
    }
    if cli.all {
        what.push("every process that waits, from its first wait call".to_owned());
    }
    if let Some(cgroup) = cgroup {
        what.push(format!(
            "every process in cgroup {} and below it",
            cgroup.hierarchy_path
        ));
    }
    let follow = if cli.follow {
        " and their children"
    } else {
        ""
    };
    let stop = if cli.dashboard() {
        "q or Ctrl-C"
    } else {
        "Ctrl-C"
    };
    eprintln!(
        "muxtrace: attached; tracing {}{follow}; {stop} to stop",
        what.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log left by an earlier run under the first name this one would
    /// take (its command had muxtrace's pid now) is neither emptied nor
    /// written to; the new log still ends named after its command's pid.
    #[test]
    fn an_earlier_run_s_log_of_the_same_name_is_kept() {
        let command = "unit-test-command";
        let dir = std::env::temp_dir();
        let earlier = dir.join(format!("muxtrace-{}-{command}.log", std::process::id()));
        std::fs::write(&earlier, "an earlier run's output\n").unwrap();
        let mut out = CommandOutput::create(&format!("/bin/{command}")).unwrap();
        assert_ne!(out.path, earlier);
        let first = out.path.clone();
        out.name_after(u32::MAX);
        let last = dir.join(format!("muxtrace-{}-{command}.log", u32::MAX));
        let (kept, renamed, first_left) = (
            std::fs::read_to_string(&earlier),
            out.path.clone(),
            first.exists(),
        );
        for path in [&earlier, &first, &last] {
            let _ = std::fs::remove_file(path);
        }
        assert_eq!(kept.unwrap(), "an earlier run's output\n");
        assert_eq!(renamed, last);
        assert!(!first_left, "{}", first.display());
    }

    /// Four pieces a tenth of the interval long in all, each starting a
    /// quarter of the interval after the one before, then none until the
    /// next interval.
    #[test]
    fn cost_pieces_spread_a_tenth_of_the_interval_over_it() {
        let ms = Duration::from_millis;
        let mut pieces = CostPieces::new(ms(1000));
        let t0 = tokio::time::Instant::now();
        pieces.started_interval(t0);
        let mut sampled = Duration::ZERO;
        for k in 1..=own_cost::PIECES_PER_INTERVAL {
            assert!(pieces.sampling());
            let start = t0 + ms(250) * (k - 1);
            let end = pieces.next_edge().expect("a piece ends");
            sampled += end - start;
            pieces.ended_piece();
            assert!(!pieces.sampling());
            match pieces.next_edge() {
                Some(next) => {
                    assert_eq!(next, t0 + ms(250) * k);
                    pieces.started_piece(next);
                }
                None => assert_eq!(k, own_cost::PIECES_PER_INTERVAL),
            }
        }
        assert_eq!(sampled, ms(100));
        // The next interval starts over.
        pieces.started_interval(t0 + ms(1000));
        assert_eq!(pieces.next_edge(), Some(t0 + ms(1025)));
        // Short intervals sample a tenth of themselves too.
        let short = CostPieces::new(ms(200));
        assert_eq!(short.piece * own_cost::PIECES_PER_INTERVAL, ms(20));
    }
}
