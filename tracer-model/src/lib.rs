//! muxtrace's metrics model: two [`Snapshot`]s of what the probes
//! aggregated in, [`Metrics`] out. Pure — no I/O, no clock — so every rate,
//! ratio and percentile is unit-tested with hand-made snapshots. Each figure
//! is defined, with its unit, in docs/json.md.
//!
//! A crate of its own so that whoever reads muxtrace's `--json` (xtask, the
//! benches, the tests) deserializes the same [`Metrics`] types without
//! building the eBPF programs.

pub mod format;
pub mod hist;
pub mod metrics;
pub mod snapshot;
mod uring;
mod verdict;
mod window;

use std::collections::{BTreeMap, BTreeSet};

use tracer_common::Stat;

pub use metrics::{
    Cost, ExitedThreadMetrics, Hists, IoModel, Metrics, ProcessMetrics, SyscallMetrics,
    ThreadMetrics, UringMetrics, UringOpMetrics, UringWindow, Window,
};
pub use snapshot::{
    Exit, MapDump, ProbeCost, ProcessInfo, ProcessSnap, Snapshot, ThreadSnap, FOLDED_PIDS_KEPT,
};
pub use verdict::{
    blocked_clause, detect_model, untraced_children_clause, word, BUSY_POLLING_MIN_WAITS,
    SATURATED, STATES,
};
pub use window::{fold_interval, rebase};

use crate::{
    format::display_comm,
    verdict::{verdict, waited_in_interval, BusySpan, LoopHealth},
    window::{delta, estimate, ratio, window, window_with, Clock, Span},
};

/// A thread's running totals at the previous reading, for its interval.
#[derive(Clone, Copy, Default)]
struct ThreadBefore {
    calls: u64,
    /// Time in waits, stopped and parked, up to that reading.
    waited_ns: u64,
    stopped_ns: u64,
    parked_ns: u64,
    wait_calls: u64,
    watched_total: u64,
    watched_waits: u64,
}

impl ThreadBefore {
    fn of(t: &tracer_common::ThreadState, now: u64) -> ThreadBefore {
        ThreadBefore {
            calls: t.calls,
            waited_ns: waited_ns(t, now),
            stopped_ns: stopped_ns(t, now),
            parked_ns: parked_ns(t, now),
            wait_calls: t.wait_calls,
            watched_total: t.watched_total,
            watched_waits: t.watched_waits,
        }
    }
}

/// The fds a thread's waits watched per call in the interval (a thread new
/// in it: all its waits); with none returned, the wait it is blocked in
/// now, so an idle loop keeps its figure. `None` for a thread that neither
/// waited nor waits on fds (io_uring's waits name none).
fn watched_per_wait(t: &tracer_common::ThreadState, before: &ThreadBefore) -> Option<f64> {
    let waits = t.watched_waits.saturating_sub(before.watched_waits);
    if waits > 0 {
        let watched = t.watched_total.saturating_sub(before.watched_total);
        return Some(watched as f64 / waits as f64);
    }
    let in_flight = tracer_common::SyscallKind::from_u32(t.in_call.wrapping_sub(1));
    in_flight
        .is_some_and(|k| k.is_wait() && k != tracer_common::SyscallKind::IoUringWait)
        .then_some(t.watched as f64)
}

/// Whether the thread is inside a wait call at the reading.
fn in_wait(t: &tracer_common::ThreadState) -> bool {
    t.in_call != 0
        && tracer_common::SyscallKind::from_u32(t.in_call - 1).is_some_and(|k| k.is_wait())
}

/// A thread's time inside wait calls up to `now`, counting a wait in flight.
/// Off a CPU it is measured for every wait; on a CPU, under `--time-every`,
/// estimated from the timed waits (and unknown for an untimed one in
/// flight: a wait's on-CPU part is its short entry and exit paths).
fn waited_ns(t: &tracer_common::ThreadState, now: u64) -> u64 {
    let in_flight = if !in_wait(t) {
        0
    } else if t.call_timed != 0 {
        now.saturating_sub(t.enter_ns)
    } else {
        let away = if t.switched_out_ns != 0 {
            now.saturating_sub(t.switched_out_ns)
        } else {
            0
        };
        t.off_cpu_ns + away
    };
    t.wait_off_cpu_ns + estimate(t.wait_on_cpu_ns, t.wait_calls, t.wait_timed_calls) + in_flight
}

/// A thread's time parked (asleep in futex outside traced calls while
/// other threads share its poller) up to `now`, counting a park in
/// progress.
fn parked_ns(t: &tracer_common::ThreadState, now: u64) -> u64 {
    let in_progress = match t.parked_since_ns {
        0 => 0,
        since => now.saturating_sub(since),
    };
    t.parked_ns + in_progress
}

/// A thread's time stopped (SIGSTOP, ptrace) up to `now`, counting a stop
/// in progress.
fn stopped_ns(t: &tracer_common::ThreadState, now: u64) -> u64 {
    let in_progress = match t.stopped_since_ns {
        0 => 0,
        since => now.saturating_sub(since),
    };
    t.stopped_ns + in_progress
}

/// Turns the previous and the current snapshot into metrics. With no
/// previous snapshot the interval is the whole run.
pub fn compute(prev: Option<&Snapshot>, cur: &Snapshot) -> Metrics {
    let elapsed = cur.elapsed.as_secs_f64();
    let interval = match prev {
        Some(p) => (cur.elapsed.saturating_sub(p.elapsed)).as_secs_f64(),
        None => elapsed,
    };
    let processes = cur
        .processes
        .values()
        .map(|p| {
            let prev_p = prev.and_then(|s| s.processes.get(&p.tgid));
            process_metrics(p, prev_p, cur, prev, elapsed, interval)
        })
        .collect();
    let mut losses = BTreeMap::new();
    for stat in Stat::ALL {
        let n = cur.counters[stat as usize];
        if n > 0 {
            losses.insert(stat.name().to_owned(), n);
        }
    }
    if cur.read_errors > 0 {
        losses.insert("map_read_errors".to_owned(), cur.read_errors);
    }
    for (program, n) in &cur.recursion_misses {
        if *n > 0 {
            let program = program.strip_prefix("mux_").unwrap_or(program);
            losses.insert(format!("recursion_misses.{program}"), *n);
        }
    }
    let cost = cur.cost.map(|c| {
        let before = prev.and_then(|p| p.cost).unwrap_or_default();
        let (used, accounting, sampled) = if c.recent_sampled_ns > 0 {
            (
                c.recent_run_time_ns,
                c.recent_accounting_ns,
                c.recent_sampled_ns,
            )
        } else if c.sampled_ns > before.sampled_ns {
            (
                c.run_time_ns.saturating_sub(before.run_time_ns),
                c.accounting_ns.saturating_sub(before.accounting_ns),
                c.sampled_ns - before.sampled_ns,
            )
        } else {
            (c.run_time_ns, c.accounting_ns, c.sampled_ns)
        };
        // The accounting runs only while sampled: its share of all the time.
        let duty = ratio(c.sampled_ns as f64, c.elapsed_ns as f64).min(1.0);
        let accounting_percent = ratio(accounting as f64 * 100.0, sampled as f64) * duty;
        Cost {
            run_time_ns: c.run_time_ns,
            run_count: c.run_count,
            sampled_s: c.sampled_ns as f64 / 1e9,
            ns_per_run: ratio(c.run_time_ns as f64, c.run_count as f64),
            accounting_ns_per_run: ratio(c.accounting_ns as f64, c.run_count as f64),
            cpu_percent: ratio(used as f64 * 100.0, sampled as f64) + accounting_percent,
            accounting_percent,
        }
    });
    Metrics {
        elapsed_s: elapsed,
        interval_s: interval,
        processes,
        losses,
        cost,
        map_entries: cur.map_entries.clone(),
        stall_threshold_ns: cur.stall_threshold_ns,
        time_every: cur.time_every.max(1),
        tick_ns: cur.tick_ns,
    }
}

fn process_metrics(
    p: &ProcessSnap,
    prev_p: Option<&ProcessSnap>,
    cur: &Snapshot,
    prev: Option<&Snapshot>,
    elapsed: f64,
    interval: f64,
) -> ProcessMetrics {
    let clock = Clock {
        wall_minus_monotonic_ns: cur.wall_minus_monotonic_ns,
    };
    // Its own time traced: from attach, or from its start if later; to its
    // exit once it has exited (a folded entry: its processes' summed).
    let since_start = (elapsed - p.info.started_after_attach_s).max(0.0);
    let elapsed = match p.info.traced_s {
        Some(traced) if p.info.folded > 0 => traced,
        Some(traced) => traced.min(since_start),
        None => since_start,
    };
    // Without an earlier reading the interval is the whole run, and this
    // process's part of it its own time traced: the dashboard's figures of
    // a run whose processes have all exited are rates over their lives.
    // A process new since the previous reading (it joined, or started,
    // within the interval) was traced only its own time of it.
    let interval = match (prev, prev_p) {
        (Some(_), Some(_)) => interval,
        (Some(_), None) => interval.min(elapsed),
        (None, _) => elapsed,
    };
    let mut totals = Vec::new();
    let mut deltas = Vec::new();
    let mut syscalls = Vec::new();
    for (kind, stats) in &p.syscalls {
        let before = prev_p.and_then(|pp| pp.syscalls.get(kind));
        let d = delta(stats, before);
        totals.push((*kind, *stats));
        deltas.push((*kind, d));
        syscalls.push(SyscallMetrics {
            syscall: *kind,
            total: window(&[(*kind, *stats)], elapsed, Span::Total, &clock),
            interval: window(&[(*kind, d)], interval, Span::Epoch(cur.epoch), &clock),
        });
    }
    let uring = uring::uring_metrics(p, prev_p, &totals, &deltas, elapsed, interval, cur.epoch);
    let mut model = detect_model(&totals);
    if uring.is_some() && matches!(model, IoModel::Unknown | IoModel::Idle | IoModel::Blocking) {
        // Requests without a wait call: an SQPOLL ring reaped by polling.
        model = IoModel::IoUring;
    }
    let total = window_with(
        &totals,
        uring.as_ref().map(|u| &u.total),
        elapsed,
        Span::Total,
        &clock,
    );
    let interval_w = window_with(
        &deltas,
        uring.as_ref().map(|u| &u.interval),
        interval,
        Span::Epoch(cur.epoch),
        &clock,
    );
    let prev_threads: BTreeMap<u32, ThreadBefore> = prev
        .map(|s| {
            s.threads
                .iter()
                .filter(|t| t.state.tgid == p.tgid)
                .map(|t| (t.tid, ThreadBefore::of(&t.state, s.monotonic_ns)))
                .collect()
        })
        .unwrap_or_default();
    // Loop threads that waited in the interval or wait now: the loops that
    // still run. One that waited once long ago and is parked elsewhere
    // since (a pool thread that ran getaddrinfo, which polls) is busy by
    // the measure, but no loop of the process's is saturated by it.
    let mut running_loops = BTreeSet::new();
    let span_ns = cur
        .monotonic_ns
        .saturating_sub(prev.map_or(0, |s| s.monotonic_ns));
    let threads: Vec<ThreadMetrics> = cur
        .threads
        .iter()
        .filter(|t| t.state.tgid == p.tgid)
        .map(|t| {
            let s = &t.state;
            let (wall, on) = call_times(s.wall_ns, s.thread_off_cpu_ns, s.calls, s.timed_calls);
            let before = prev_threads.get(&t.tid).copied();
            let calls_before = before.map(|b| b.calls);
            let b = before.unwrap_or_default();
            if s.wait_calls > b.wait_calls || in_wait(s) {
                running_loops.insert(t.tid);
            }
            // Busy: the share of the interval outside waits, for a thread
            // seen waiting and present at both readings. Time stopped is
            // neither (a SIGSTOP read 100 % busy, strace's stops at every
            // call made a quiet loop busy): left out, and a thread stopped
            // all along has no share. Time parked is idle, like a wait (an
            // idle tokio worker parked in futex read 100 % busy).
            let loop_busy_share = match before {
                Some(b) if s.wait_calls > 0 && span_ns > 0 && prev.is_some() => {
                    let waited = waited_ns(s, cur.monotonic_ns).saturating_sub(b.waited_ns)
                        + parked_ns(s, cur.monotonic_ns).saturating_sub(b.parked_ns);
                    let stopped = stopped_ns(s, cur.monotonic_ns).saturating_sub(b.stopped_ns);
                    let could_run = span_ns.saturating_sub(stopped);
                    (could_run * 100 >= span_ns)
                        .then(|| (1.0 - waited as f64 / could_run as f64).clamp(0.0, 1.0))
                }
                _ => None,
            };
            ThreadMetrics {
                tid: t.tid,
                name: display_comm(&t.name),
                loop_busy_share,
                iterations: s.iterations,
                stalls: s.stalls,
                calls: s.calls,
                wait_calls: s.wait_calls,
                wakeups: s.wakeups,
                watched: s.watched_total,
                watched_waits: s.watched_waits,
                ready: s.ready_total,
                watched_per_wait: watched_per_wait(s, &b),
                timed_calls: s.timed_calls,
                wall_ns: wall,
                off_cpu_ns: wall - on,
                on_cpu_ns: on,
                // A thread new this interval made all its calls in it.
                calls_per_sec: ratio(
                    s.calls.saturating_sub(calls_before.unwrap_or(0)) as f64,
                    interval,
                ),
                stopped_ns: stopped_ns(s, cur.monotonic_ns),
                parked_ns: parked_ns(s, cur.monotonic_ns),
            }
        })
        .collect();
    let loop_threads = cur
        .threads
        .iter()
        .filter(|t| t.state.tgid == p.tgid && t.state.wait_calls > 0)
        .count() as u32;
    let running: Vec<f64> = threads
        .iter()
        .filter(|t| running_loops.contains(&t.tid))
        .filter_map(|t| t.loop_busy_share)
        .collect();
    // With no loop running (the process stopped, or every loop blocked
    // elsewhere) the busiest of them all, which did not come back to wait.
    let busiest_waits = !running.is_empty();
    let shares: Vec<f64> = match busiest_waits {
        true => running,
        false => threads.iter().filter_map(|t| t.loop_busy_share).collect(),
    };
    // No loop thread seen at both readings — one first seen in this
    // interval, as a server idle in a wait since attach is at its first
    // burst: its iterations' time against the interval, as over the run.
    // The busiest loop: a saturated loop is the bottleneck whatever the
    // others do. (The mean read 0.41 for node's main loop at 0.82 beside a
    // worker thread idle in its own loop, and hid the saturation.)
    let loop_busy_share = match shares.is_empty() {
        false => Some(shares.iter().copied().fold(0.0, f64::max)),
        true if prev.is_some()
            && p.info.alive
            && p.info.folded == 0
            && interval_w.iterations > 0
            && interval > 0.0 =>
        {
            Some(
                (interval_w.iteration_ns as f64
                    / (interval * 1e9 * f64::from(loop_threads.max(1))))
                .min(1.0),
            )
        }
        true => None,
    };
    let mut metrics = ProcessMetrics {
        pid: if p.info.folded > 0 { 0 } else { p.tgid },
        folded: p.info.folded,
        folded_pids: p.info.folded_pids.clone(),
        untraced_children: p.info.untraced_children,
        untraced_child_pids: p.info.untraced_child_pids.clone(),
        blocked_in: p
            .info
            .blocked_in
            .iter()
            .map(|(kind, threads)| (kind.name().to_owned(), *threads))
            .collect(),
        comm: display_comm(&p.info.comm),
        title: p.info.title.clone(),
        alive: p.info.alive,
        model,
        syscalls,
        total,
        interval: interval_w,
        threads,
        exited_threads: p.exited_threads.as_deref().and_then(exited_threads),
        epoll_interest: p.info.epoll_interest.clone(),
        fd_classes: p.info.fd_classes.clone(),
        loop_threads,
        loop_busy_share,
        loop_busy_share_since_attach: None,
        uring,
        verdict: String::new(),
        state: String::new(),
    };
    metrics.loop_busy_share_since_attach = busy_share_since_attach(&metrics);
    // Over the whole run the interval's share is the run's (threads that
    // exited leave no per-thread share behind).
    if prev.is_none() {
        metrics.loop_busy_share = metrics.loop_busy_share_since_attach;
    }
    metrics.verdict = verdict(
        model,
        &metrics.total,
        &totals,
        metrics.uring.as_ref().map(|u| &u.total),
        LoopHealth {
            busy: metrics.loop_busy_share,
            span: match prev {
                Some(_) => BusySpan::LastInterval,
                None => BusySpan::Run,
            },
            still_waits: waited_in_interval(&metrics)
                && (busiest_waits || metrics.threads.iter().all(|t| t.loop_busy_share.is_none())),
            stall_threshold_ns: cur.stall_threshold_ns,
        },
    );
    let clauses = [
        blocked_clause(&metrics.blocked_in),
        untraced_children_clause(metrics.untraced_children, &metrics.untraced_child_pids),
    ];
    for clause in clauses.into_iter().flatten() {
        metrics.verdict.push_str("; ");
        metrics.verdict.push_str(&clause);
    }
    metrics.state = word(&metrics).to_owned();
    metrics
}

/// A thread's time inside its calls and of it on a CPU: measured over the
/// timed calls, estimated for all (`--time-every`).
fn call_times(wall_ns: u64, off_cpu_ns: u64, calls: u64, timed: u64) -> (u64, u64) {
    let wall = estimate(wall_ns, calls, timed);
    let on = estimate(wall_ns - off_cpu_ns.min(wall_ns), calls, timed);
    (wall, on)
}

/// A process's exited threads as the threads view gives a live one: times
/// estimated from the timed calls (`--time-every`). None when none exited.
fn exited_threads(e: &tracer_common::ExitedThreads) -> Option<ExitedThreadMetrics> {
    if e.threads == 0 {
        return None;
    }
    let (wall, on) = call_times(e.wall_ns, e.thread_off_cpu_ns, e.calls, e.timed_calls);
    Some(ExitedThreadMetrics {
        threads: e.threads,
        iterations: e.iterations,
        stalls: e.stalls,
        calls: e.calls,
        wait_calls: e.wait_calls,
        wakeups: e.wakeups,
        watched: e.watched_total,
        watched_waits: e.watched_waits,
        ready: e.ready_total,
        timed_calls: e.timed_calls,
        wall_ns: wall,
        off_cpu_ns: wall - on,
        on_cpu_ns: on,
    })
}

/// The loop's busy share since attach: its iterations' time against the
/// time its loop threads were traced, estimated alike under `--time-every`.
/// Iterations and completed waits alone tile only the span from the first
/// wait seen to the last: a server idle in `epoll_wait(-1)` before and after
/// a burst would read the burst's share as the run's (nginx: 34 % where
/// /proc said 1 %). A thread in a wait is not busy, so what is not an
/// iteration was waiting — but where the waits and iterations seen add up
/// to more (loop threads that came later), they are the measure. (The
/// interval's figure is the last interval's alone: a server busy during a
/// burst reads 0 % in the quiet that follows.)
pub fn busy_share_since_attach(p: &ProcessMetrics) -> Option<f64> {
    let waited: u64 = p
        .syscalls
        .iter()
        .filter(|s| s.syscall.is_wait())
        .map(|s| s.total.wall_ns)
        .sum();
    // The iterations leave time stopped out (the programs take it out of
    // each), and so does the time the loops were traced: a loop stopped
    // half the run was busy or waiting in the other half only.
    let busy = p.total.iteration_ns;
    let stopped: u64 = p
        .threads
        .iter()
        .filter(|t| t.wait_calls > 0)
        .map(|t| t.stopped_ns)
        .sum();
    let traced_ns =
        (p.total.seconds * 1e9 * f64::from(p.loop_threads.max(1)) - stopped as f64).max(0.0);
    let span = ((busy + waited) as f64).max(traced_ns);
    (p.total.iterations > 0 && span > 0.0).then(|| (busy as f64 / span).min(1.0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracer_common::{
        bucket, counter::Range, SyscallKind, SyscallStats, ThreadState, HIST_BUCKETS,
    };

    use super::*;
    use crate::{
        format::{bytes, thousands},
        hist::percentile,
    };

    fn snap(secs: u64, stats: &[(SyscallKind, SyscallStats)]) -> Snapshot {
        let mut s = Snapshot {
            elapsed: Duration::from_secs(secs),
            ..Snapshot::default()
        };
        s.processes
            .insert(1, ProcessSnap::new(1, b"srv", stats.iter().copied()));
        s
    }

    fn poll_stats(calls: u64, watched_each: u64, ready: u64, wall_each: u64) -> SyscallStats {
        let mut s = SyscallStats::ZERO;
        s.calls = calls;
        s.useful_wakeups = calls;
        s.ready = ready;
        s.watched = watched_each * calls;
        s.scanned = watched_each * calls;
        s.size_arg = watched_each * calls;
        s.timed = calls;
        s.wall_ns = wall_each * calls;
        s.on_cpu_ns = wall_each * calls;
        s.bookkeeping_in = 8 * watched_each * calls;
        s.bookkeeping_out = 2 * watched_each * calls;
        s.hist_watched[bucket(watched_each)] = calls;
        s.hist_wall_ns[bucket(wall_each)] = calls;
        s
    }

    /// The own-cost figure is the recent samples' (a moving figure), not
    /// the last interval's one sample; without recent samples, the interval's.
    #[test]
    fn own_cost_is_taken_over_the_recent_samples() {
        let with_cost = |secs: u64, run_ms: u64, recent: (u64, u64)| Snapshot {
            cost: Some(ProbeCost {
                run_time_ns: run_ms * 1_000_000,
                run_count: 1,
                sampled_ns: secs * 100_000_000,
                elapsed_ns: secs * 1_000_000_000,
                recent_run_time_ns: recent.0,
                recent_sampled_ns: recent.1,
                ..ProbeCost::default()
            }),
            ..snap(secs, &[])
        };
        // The last sample alone read 30 % (30 ms of 100); the recent ten 12 %.
        let a = with_cost(9, 90, (0, 0));
        let b = with_cost(10, 120, (120_000_000, 1_000_000_000));
        let cost = compute(Some(&a), &b).cost.expect("a cost");
        assert!(
            (cost.cpu_percent - 12.0).abs() < 1e-9,
            "{}",
            cost.cpu_percent
        );
        let b = with_cost(10, 120, (0, 0));
        let cost = compute(Some(&a), &b).cost.expect("a cost");
        assert!(
            (cost.cpu_percent - 30.0).abs() < 1e-9,
            "{}",
            cost.cpu_percent
        );
    }

    /// The accounting's own time is not the programs' work: it is out of
    /// the run time, and in the figure only for the share of the time it is
    /// on.
    #[test]
    fn own_cost_counts_the_accounting_only_while_it_is_on() {
        let snapshot = Snapshot {
            cost: Some(ProbeCost {
                run_time_ns: 100_000_000,
                run_count: 1_000_000,
                sampled_ns: 1_000_000_000,
                accounting_ns: 50_000_000,
                // Sampled one tenth of the time.
                elapsed_ns: 10_000_000_000,
                recent_run_time_ns: 100_000_000,
                recent_sampled_ns: 1_000_000_000,
                recent_accounting_ns: 50_000_000,
            }),
            ..snap(10, &[])
        };
        let cost = compute(None, &snapshot).cost.expect("a cost");
        assert!(
            (cost.ns_per_run - 100.0).abs() < 1e-9,
            "{}",
            cost.ns_per_run
        );
        assert!(
            (cost.accounting_ns_per_run - 50.0).abs() < 1e-9,
            "{}",
            cost.accounting_ns_per_run
        );
        // 10 % of a CPU of work, and 5 % while sampled of accounting, on a
        // tenth of the time.
        assert!(
            (cost.accounting_percent - 0.5).abs() < 1e-9,
            "{}",
            cost.accounting_percent
        );
        assert!(
            (cost.cpu_percent - 10.5).abs() < 1e-9,
            "{}",
            cost.cpu_percent
        );
    }

    /// A process that started after attach (a worker a reload forked) is
    /// traced from its start: its seconds and its rates since attach.
    #[test]
    fn a_process_started_after_attach_counts_its_own_time() {
        let mut s = snap(10, &[(SyscallKind::Poll, poll_stats(600, 1, 600, 1000))]);
        s.processes.get_mut(&1).unwrap().info.started_after_attach_s = 4.0;
        let m = compute(None, &s);
        let p = &m.processes[0];
        assert_eq!(p.total.seconds, 6.0);
        assert_eq!(p.total.calls_per_sec, 100.0);
    }

    /// An exited process is traced to its exit, not to the session's end;
    /// a folded entry over its processes' times summed.
    #[test]
    fn an_exited_process_counts_its_time_to_its_exit() {
        let mut s = snap(10, &[(SyscallKind::Poll, poll_stats(600, 1, 600, 1000))]);
        let info = &mut s.processes.get_mut(&1).unwrap().info;
        (info.alive, info.started_after_attach_s, info.traced_s) = (false, 1.0, Some(3.0));
        let p = &compute(None, &s).processes[0];
        assert_eq!(p.total.seconds, 3.0);
        assert_eq!(p.total.calls_per_sec, 200.0);
        // A time past the session's (after a reset) is cut to it.
        s.processes.get_mut(&1).unwrap().info.traced_s = Some(30.0);
        assert_eq!(compute(None, &s).processes[0].total.seconds, 9.0);
        // Folded: 3 processes of 9 s each in a 10 s session.
        let info = &mut s.processes.get_mut(&1).unwrap().info;
        (info.folded, info.started_after_attach_s, info.traced_s) = (3, 0.0, Some(27.0));
        assert_eq!(compute(None, &s).processes[0].total.seconds, 27.0);
    }

    /// With no earlier reading (the dashboard once every process has
    /// exited), the interval is the run: an exited process's rates are over
    /// its own time, as its totals' are, and its loop's busy share is the
    /// run's, said so in its verdict.
    #[test]
    fn over_the_run_an_exited_process_s_rates_are_over_its_life() {
        // 3 s traced: 0.75 s in waits, 2.25 s in iterations.
        let mut stats = poll_stats(600, 1, 600, 1_250_000);
        (stats.iterations, stats.timed_iterations) = (600, 600);
        stats.iteration_ns = 600 * 3_750_000;
        let mut s = snap(10, &[(SyscallKind::Poll, stats)]);
        let info = &mut s.processes.get_mut(&1).unwrap().info;
        (info.alive, info.started_after_attach_s, info.traced_s) = (false, 1.0, Some(3.0));
        let p = &compute(None, &s).processes[0];
        assert_eq!(p.total.calls_per_sec, 200.0);
        assert_eq!(p.interval.calls_per_sec, 200.0);
        assert_eq!(p.interval.seconds, 3.0);
        assert_eq!(p.loop_busy_share, Some(0.75));
        assert_eq!(p.loop_busy_share_since_attach, Some(0.75));
        assert!(
            p.verdict.contains("loop busy 75 % over the run"),
            "{}",
            p.verdict
        );
    }

    /// A server idle in a wait with no timeout before and after a burst:
    /// the waits in progress at attach and at the end were never completed
    /// calls, and its share over the run is its iterations' part of its
    /// time traced (a 0.1 s burst, half busy, in 10 s: 0.5 %), not the
    /// burst's 50 %.
    #[test]
    fn the_run_s_busy_share_counts_the_waits_still_in_progress() {
        let mut stats = poll_stats(1000, 1, 1000, 50_000);
        (stats.iterations, stats.timed_iterations) = (1000, 1000);
        stats.iteration_ns = 1000 * 50_000;
        let s = snap(10, &[(SyscallKind::Poll, stats)]);
        let p = &compute(None, &s).processes[0];
        assert_eq!(p.loop_busy_share_since_attach, Some(0.005));
        // Loop threads that came later: the waits and iterations seen are
        // more than one span, and they are the measure.
        let mut stats = poll_stats(1000, 1, 1000, 10_000_000);
        (stats.iterations, stats.timed_iterations) = (1000, 1000);
        stats.iteration_ns = 1000 * 10_000_000;
        let s = snap(10, &[(SyscallKind::Poll, stats)]);
        let p = &compute(None, &s).processes[0];
        assert_eq!(p.loop_busy_share_since_attach, Some(0.5));
    }

    /// A loop busy half the time for 10 s, then stopped 10 s: half busy
    /// over the run, not a quarter (the stop is in neither its iterations
    /// nor its waits).
    #[test]
    fn the_run_s_busy_share_leaves_time_stopped_out() {
        let mut stats = poll_stats(1000, 1, 1000, 5_000_000);
        (stats.iterations, stats.timed_iterations) = (1000, 1000);
        stats.iteration_ns = 1000 * 5_000_000;
        let mut s = snap(20, &[(SyscallKind::Poll, stats)]);
        let mut state = ThreadState::ZERO;
        state.tgid = 1;
        (state.calls, state.wait_calls) = (1000, 1000);
        state.stopped_ns = 10_000_000_000;
        s.threads.push(ThreadSnap {
            tid: 1,
            name: b"loop".to_vec(),
            state,
        });
        let p = &compute(None, &s).processes[0];
        assert_eq!(p.loop_busy_share_since_attach, Some(0.5));
    }

    #[test]
    fn rates_cover_only_the_interval() {
        let a = snap(
            10,
            &[(SyscallKind::Poll, poll_stats(1000, 100, 1000, 5000))],
        );
        let b = snap(
            12,
            &[(SyscallKind::Poll, poll_stats(1600, 100, 1600, 5000))],
        );
        let m = compute(Some(&a), &b);
        assert_eq!(m.interval_s, 2.0);
        let p = &m.processes[0];
        assert_eq!(p.interval.calls, 600);
        assert_eq!(p.interval.calls_per_sec, 300.0);
        assert_eq!(p.total.calls, 1600);
        assert!((p.total.calls_per_sec - 1600.0 / 12.0).abs() < 1e-9);
        assert_eq!(p.model, IoModel::Poll);
        assert_eq!(p.interval.watched_avg, 100.0);
        assert!((p.interval.efficiency - 0.01).abs() < 1e-12);
        // 8·100 in + 2·100 out per call, one ready per call.
        assert_eq!(p.interval.bookkeeping_bytes_per_ready, 1000.0);
    }

    #[test]
    fn first_snapshot_is_its_own_interval() {
        let a = snap(4, &[(SyscallKind::Poll, poll_stats(400, 10, 40, 1000))]);
        let m = compute(None, &a);
        assert_eq!(m.interval_s, 4.0);
        assert_eq!(m.processes[0].interval.calls_per_sec, 100.0);
    }

    #[test]
    fn zero_calls_give_zero_not_nan() {
        let a = snap(1, &[(SyscallKind::EpollWait, SyscallStats::ZERO)]);
        let m = compute(None, &a);
        let w = &m.processes[0].total;
        for v in [
            w.watched_avg,
            w.efficiency,
            w.ready_avg,
            w.wall_p99_ns,
            w.on_cpu_ns_per_ready,
            w.bookkeeping_bytes_per_ready,
            w.syscalls_per_receive,
        ] {
            assert_eq!(v, 0.0);
        }
        assert!(serde_json::to_string(&m).is_ok());
    }

    #[test]
    fn a_counter_reset_does_not_wrap() {
        let a = snap(1, &[(SyscallKind::Poll, poll_stats(1000, 1, 1, 1))]);
        let b = snap(2, &[(SyscallKind::Poll, poll_stats(10, 1, 1, 1))]);
        let m = compute(Some(&a), &b);
        assert_eq!(m.processes[0].interval.calls, 10);
    }

    #[test]
    fn a_vanished_process_keeps_its_last_figures() {
        let a = snap(1, &[(SyscallKind::Poll, poll_stats(10, 1, 1, 1))]);
        let mut b = snap(2, &[(SyscallKind::Poll, poll_stats(10, 1, 1, 1))]);
        b.processes.get_mut(&1).unwrap().info.alive = false;
        let m = compute(Some(&a), &b);
        let p = &m.processes[0];
        assert!(!p.alive);
        assert_eq!(p.total.calls, 10);
        assert_eq!(p.interval.calls, 0);
        assert_eq!(p.interval.calls_per_sec, 0.0);
    }

    #[test]
    fn rebase_counts_from_the_reset() {
        let a = snap(
            10,
            &[(SyscallKind::Poll, poll_stats(1000, 100, 1000, 5000))],
        );
        let b = snap(
            12,
            &[(SyscallKind::Poll, poll_stats(1600, 100, 1600, 5000))],
        );
        let r = rebase(&b, &a);
        let m = compute(None, &r);
        assert_eq!(m.processes[0].total.calls, 600);
    }

    /// After a reset, times count from it too: a process started after
    /// attach and before the reset is traced since the reset (it read 0 s,
    /// and rates of 0, when its start was taken against the reset's
    /// elapsed time); an exited one loses its time before the reset.
    #[test]
    fn a_reset_moves_every_process_s_time_to_it() {
        let a = snap(10, &[(SyscallKind::Poll, poll_stats(1000, 1, 1000, 5))]);
        let mut b = snap(12, &[(SyscallKind::Poll, poll_stats(1600, 1, 1600, 5))]);
        b.processes.get_mut(&1).unwrap().info.started_after_attach_s = 5.0;
        let p = &compute(None, &rebase(&b, &a)).processes[0];
        assert_eq!((p.total.seconds, p.total.calls_per_sec), (2.0, 300.0));
        // Exited at 11 s, having started at 5 s: 1 s of it since the reset.
        let info = &mut b.processes.get_mut(&1).unwrap().info;
        (info.alive, info.traced_s) = (false, Some(6.0));
        let p = &compute(None, &rebase(&b, &a)).processes[0];
        assert_eq!((p.total.seconds, p.total.calls_per_sec), (1.0, 600.0));
    }

    #[test]
    fn percentiles_stay_inside_the_data() {
        let none = Range::EMPTY;
        // 100 samples of 1500: the bucket is [1280, 1536); the range pins it.
        let mut h = [0u64; HIST_BUCKETS];
        h[bucket(1500)] = 100;
        let p50 = percentile(&h, 0.5, &none);
        assert!((1280.0..1536.0).contains(&p50), "{p50}");
        assert_eq!(percentile(&h, 0.5, &Range::new(1500, 1500)), 1500.0);
        // Every call watched 1,002: p99 is 1,002, not a bucket's edge.
        let mut h = [0u64; HIST_BUCKETS];
        h[bucket(1002)] = 500;
        assert_eq!(percentile(&h, 0.99, &Range::new(1002, 1002)), 1002.0);
        // The largest call watched 1,052: no percentile above it.
        let mut h = [0u64; HIST_BUCKETS];
        h[bucket(1000)] = 90;
        h[bucket(1052)] = 10;
        let p99 = percentile(&h, 0.99, &Range::new(1000, 1052));
        assert!((1024.0..=1052.0).contains(&p99), "{p99}");
        // Small counts are exact: 63 fds read as 63, not 63.7.
        let mut h = [0u64; HIST_BUCKETS];
        h[bucket(5)] = 10;
        assert_eq!(percentile(&h, 0.99, &none), 5.0);
        // 99 fast, 1 slow.
        let mut h = [0u64; HIST_BUCKETS];
        h[bucket(10)] = 99;
        h[bucket(1_000_000)] = 1;
        assert!(percentile(&h, 0.5, &none) < 12.0);
        assert!(percentile(&h, 1.0, &none) >= 786_432.0);
        assert_eq!(percentile(&[0; HIST_BUCKETS], 0.99, &none), 0.0);
        let mut zeros = [0u64; HIST_BUCKETS];
        zeros[0] = 5;
        assert_eq!(percentile(&zeros, 0.99, &none), 0.0);
    }

    /// The interval window takes the extremes of its own epoch, the total
    /// window those since attach.
    #[test]
    fn windows_take_their_own_extremes() {
        let mut s = poll_stats(10, 40, 10, 1000);
        s.watched_extremes.extend(0, 40);
        s.watched_extremes.extend(1, 7);
        s.watched_extremes.extend(1, 9);
        // As the reading that ends epoch 1 carries them (see `Probes::dump`).
        s.carry(&SyscallStats::ZERO, 1);
        let mut a = snap(1, &[(SyscallKind::Poll, s)]);
        a.epoch = 1;
        let m = compute(None, &a);
        let w = &m.processes[0].interval;
        assert_eq!((w.watched_min, w.watched_max), (7, 9));
        let t = &m.processes[0].total;
        assert_eq!((t.watched_min, t.watched_max), (7, 40));
        assert!(t.watched_p99 <= 40.0);
    }

    /// A run's last interval cut short by its end, folded into the one
    /// before: the two read as one interval, its calls and extremes both's.
    #[test]
    fn a_short_last_interval_folds_into_the_one_before() {
        let reading = |secs: u64, calls: u64, epoch: u64, watched: u64| {
            let mut s = poll_stats(calls, 40, calls, 1000);
            s.watched_extremes.extend(epoch, watched);
            let mut snap = snap(secs, &[(SyscallKind::Poll, s)]);
            snap.epoch = epoch;
            snap
        };
        let before = reading(10, 1000, 3, 40);
        let prev = reading(12, 1500, 4, 90);
        let mut last = reading(12, 1501, 5, 40);
        last.elapsed = Duration::from_millis(12_001);
        // The tail alone: one call in a millisecond.
        let tail = compute(Some(&prev), &last);
        assert_eq!(tail.processes[0].interval.calls, 1);
        let m = compute(Some(&before), &fold_interval(&prev, &last));
        let w = &m.processes[0].interval;
        assert!((m.interval_s - 2.001).abs() < 1e-9, "{}", m.interval_s);
        assert_eq!((w.calls, w.watched_max), (501, 90));
    }

    /// A process that joined half-way through an interval: its first
    /// interval window is its own half, not the whole interval (its rate was
    /// read at half), and with no loop thread seen at two readings its busy
    /// share is its iterations' time against that half.
    #[test]
    fn a_process_new_in_an_interval_is_measured_over_its_part_of_it() {
        let prev = Snapshot {
            elapsed: Duration::from_secs(10),
            ..Snapshot::default()
        };
        let mut stats = poll_stats(500, 1, 500, 1000);
        (stats.iterations, stats.timed_iterations) = (500, 500);
        stats.iteration_ns = 100_000_000;
        let mut cur = snap(11, &[(SyscallKind::Poll, stats)]);
        cur.processes
            .get_mut(&1)
            .unwrap()
            .info
            .started_after_attach_s = 10.5;
        let m = compute(Some(&prev), &cur);
        let p = &m.processes[0];
        assert_eq!(m.interval_s, 1.0);
        assert_eq!(p.interval.seconds, 0.5);
        assert_eq!(p.interval.calls_per_sec, 1000.0);
        assert_eq!(p.loop_busy_share, Some(0.2));
    }

    /// A reading at `secs` of a process that made `waits` epoll waits, and
    /// of its threads, each `(tid, wait calls, ms waited)` since attach.
    fn loop_reading(secs: u64, waits: u64, threads: &[(u32, u64, u64)]) -> Snapshot {
        let mut s = snap(
            secs,
            &[(SyscallKind::EpollWait, poll_stats(waits, 1, waits, 1000))],
        );
        s.monotonic_ns = secs * 1_000_000_000;
        for &(tid, waits, waited_ms) in threads {
            let mut state = ThreadState::ZERO;
            state.tgid = 1;
            (state.calls, state.wait_calls, state.wait_timed_calls) = (waits, waits, waits);
            state.wait_off_cpu_ns = waited_ms * 1_000_000;
            s.threads.push(ThreadSnap {
                tid,
                name: b"loop".to_vec(),
                state,
            });
        }
        s
    }

    /// The process's busy share is its busiest loop's: node's main loop
    /// busy 80 % beside a worker thread idle in its own loop read 40 %, the
    /// mean, and hid the saturation. The interval is 1 s; the busy thread
    /// waited 200 ms of it, the idle one all of it.
    #[test]
    fn the_process_s_busy_share_is_its_busiest_loop_s() {
        // Ten waits a second: the loop came back to wait.
        let reading = |secs: u64, busy_waited_ms: u64, idle_waited_ms: u64| {
            let waits = 10 * secs;
            loop_reading(
                secs,
                waits,
                &[(1, waits, busy_waited_ms), (2, waits, idle_waited_ms)],
            )
        };
        let m = compute(Some(&reading(10, 1000, 1000)), &reading(11, 1200, 2000));
        let p = &m.processes[0];
        let shares: Vec<_> = p.threads.iter().map(|t| t.loop_busy_share).collect();
        assert_eq!(shares, [Some(0.8), Some(0.0)]);
        assert_eq!(p.loop_busy_share, Some(0.8));
        assert_eq!(p.state, "ok");
        // At 95 % it is saturated, whatever the idle thread does.
        let m = compute(Some(&reading(10, 1000, 1000)), &reading(11, 1050, 2000));
        assert_eq!(m.processes[0].state, "saturated");
        assert!(
            m.processes[0].verdict.contains("— saturated"),
            "{}",
            m.processes[0].verdict
        );
    }

    /// Time stopped (SIGSTOP, strace's stop at each call) is neither busy
    /// nor waiting: a loop that waited 200 ms of a second and was stopped
    /// 600 ms is busy half the time it could run; one stopped all along,
    /// and one stopped now since before the interval, have no share (both
    /// read 100 % busy).
    #[test]
    fn time_stopped_is_left_out_of_the_busy_share() {
        let reading = |secs: u64, waited_ms: u64, stopped_ms: u64, stopped_since_ms: u64| {
            let mut s = loop_reading(secs, 10 * secs, &[(1, 10 * secs, waited_ms)]);
            s.threads[0].state.stopped_ns = stopped_ms * 1_000_000;
            s.threads[0].state.stopped_since_ns = stopped_since_ms * 1_000_000;
            s
        };
        let m = compute(Some(&reading(10, 1000, 0, 0)), &reading(11, 1200, 600, 0));
        assert_eq!(m.processes[0].threads[0].loop_busy_share, Some(0.5));
        assert_eq!(m.processes[0].threads[0].stopped_ns, 600_000_000);
        let m = compute(Some(&reading(10, 1000, 0, 0)), &reading(11, 1000, 1000, 0));
        assert_eq!(m.processes[0].threads[0].loop_busy_share, None);
        let m = compute(
            Some(&reading(10, 1000, 0, 9_500)),
            &reading(11, 1000, 0, 9_500),
        );
        assert_eq!(m.processes[0].threads[0].loop_busy_share, None);
        assert_eq!(m.processes[0].threads[0].stopped_ns, 1_500_000_000);
    }

    /// A thread that waited once (a pool thread that ran getaddrinfo, which
    /// polls) and is parked elsewhere since reads busy 100 %, but it is no
    /// running loop: the process's share is its main loop's, 50 %, not
    /// "saturated" (found by review: the busiest-thread rule took it).
    #[test]
    fn a_thread_parked_since_its_one_wait_does_not_make_the_process_saturated() {
        let reading = |secs: u64| {
            let waits = 10 * secs;
            loop_reading(secs, waits, &[(1, waits, secs * 500), (2, 1, 1)])
        };
        let m = compute(Some(&reading(10)), &reading(11));
        let p = &m.processes[0];
        let shares: Vec<_> = p.threads.iter().map(|t| t.loop_busy_share).collect();
        assert_eq!(shares, [Some(0.5), Some(1.0)]);
        assert_eq!(p.loop_busy_share, Some(0.5));
        assert_eq!(p.state, "ok");
        assert!(!p.verdict.contains("saturated"), "{}", p.verdict);
    }

    /// Each thread's watched per wait is its own loop's over the interval:
    /// memcached's workers each wait on an epoll of their own, of 11 and 31
    /// fds, where the process's figure is the mean over all its waits. A
    /// thread that did not wait in the interval has none, unless it is
    /// blocked in a wait now (an idle loop: that wait's set); one new in
    /// it, all its waits. Waits the kernel refused, and io_uring's, which
    /// name no fds, are no part of it.
    #[test]
    fn each_thread_s_watched_per_wait_is_its_own_loop_s_over_the_interval() {
        let reading = |secs: u64, watched: &[(u64, u64)]| {
            let threads: Vec<(u32, u64, u64)> = (1..=watched.len() as u32)
                .map(|tid| (tid, watched[tid as usize - 1].0, 0))
                .collect();
            let mut s = loop_reading(secs, 0, &threads);
            for (t, &(waits, w)) in s.threads.iter_mut().zip(watched) {
                t.state.watched_waits = waits;
                t.state.watched_total = w;
                t.state.ready_total = w / 10;
            }
            s
        };
        let before = [(100, 1100), (100, 3100), (5, 50), (5, 50), (5, 50), (5, 50)];
        let prev = reading(10, &before);
        let mut cur = reading(
            11,
            &[
                (110, 1210),
                (120, 3720),
                (5, 50),
                (5, 50),
                (5, 50),
                (5, 50),
                (4, 8),
            ],
        );
        let blocked_in = |t: &mut ThreadSnap, kind: SyscallKind, watched: u64| {
            t.state.in_call = kind as u32 + 1;
            t.state.watched = watched;
        };
        blocked_in(&mut cur.threads[3], SyscallKind::EpollWait, 7);
        blocked_in(&mut cur.threads[4], SyscallKind::IoUringWait, 0);
        // Thread 6: three waits refused (EBADF), none taken.
        cur.threads[5].state.wait_calls += 3;
        let m = compute(Some(&prev), &cur);
        let t = &m.processes[0].threads;
        let per_wait: Vec<_> = t.iter().map(|t| t.watched_per_wait).collect();
        assert_eq!(
            per_wait,
            [
                Some(11.0),
                Some(31.0),
                None,
                Some(7.0),
                None,
                None,
                Some(2.0)
            ]
        );
        assert_eq!(
            (t[1].watched, t[1].watched_waits, t[1].ready),
            (3720, 120, 372)
        );
    }

    /// A loop busy the whole interval without one wait (stopped by
    /// SIGSTOP, or blocked elsewhere) is not called saturated: the state
    /// word already said so; the verdict said "saturated".
    #[test]
    fn a_loop_that_never_came_back_to_wait_is_not_called_saturated() {
        let reading = |secs: u64, waits: u64| loop_reading(secs, waits, &[(1, waits, 500)]);
        let m = compute(Some(&reading(10, 10)), &reading(11, 10));
        let p = &m.processes[0];
        assert_eq!(p.loop_busy_share, Some(1.0));
        assert_eq!(p.state, "quiet");
        assert!(!p.verdict.contains("saturated"), "{}", p.verdict);
        assert!(
            p.verdict.contains("without coming back to wait"),
            "{}",
            p.verdict
        );
    }

    #[test]
    fn model_detection() {
        let mut recv = SyscallStats::ZERO;
        recv.calls = 5;
        recv.messages = 5;
        recv.socket_messages = 5;
        // A few reads and no waits: nginx's master, not a blocking server.
        assert_eq!(detect_model(&[(SyscallKind::Read, recv)]), IoModel::Idle);
        let mut served = recv;
        served.calls = 100;
        served.socket_messages = 100;
        assert_eq!(
            detect_model(&[(SyscallKind::Recvfrom, served)]),
            IoModel::Blocking
        );
        // Many reads of files are not serving.
        let mut files = served;
        files.socket_messages = 0;
        assert_eq!(detect_model(&[(SyscallKind::Read, files)]), IoModel::Idle);
        assert_eq!(
            detect_model(&[(SyscallKind::Read, recv), (SyscallKind::EpollWait, recv)]),
            IoModel::Epoll
        );
        assert_eq!(detect_model(&[]), IoModel::Unknown);
    }

    #[test]
    fn poll_verdict_states_scan_and_copy() {
        let a = snap(1, &[(SyscallKind::Poll, poll_stats(10, 1003, 12, 1))]);
        let m = compute(None, &a);
        let v = &m.processes[0].verdict;
        assert!(
            v.starts_with("poll scans 1,003 fds per call to find 1.2 ready (0.1 %)"),
            "{v}"
        );
        assert!(v.contains("where epoll would copy 12 B"), "{v}");
    }

    #[test]
    fn the_kernels_own_misses_are_losses() {
        let mut a = snap(1, &[]);
        a.recursion_misses = vec![
            ("mux_sched_wakeup".to_owned(), 8503),
            ("mux_sys_exit".to_owned(), 0),
        ];
        let m = compute(None, &a);
        assert_eq!(m.losses.get("recursion_misses.sched_wakeup"), Some(&8503));
        assert_eq!(m.losses.len(), 1, "{:?}", m.losses);
    }

    #[test]
    fn comm_is_printable() {
        assert_eq!(crate::format::display_comm(b"a\"b\nc"), "a\"b?c");
        assert_eq!(crate::format::display_comm(&[0x66, 0xff]), "f\u{fffd}");
    }

    #[test]
    fn formatting() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(bytes(12.0), "12 B");
        assert_eq!(bytes(12.4 * 1024.0), "12.4 KiB");
    }

    /// Every counter the kernel keeps reaches a window: setting any one word
    /// of the aggregate changes the window. A field forgotten in
    /// `Window::add` fails here instead of reading 0 on screen.
    #[test]
    fn every_counter_reaches_the_window() {
        use std::mem::{offset_of, size_of};
        const WORDS: usize = size_of::<SyscallStats>() / 8;
        // Extremes and the longest stall merge by min/max, not by sum:
        // windows_take_their_own_extremes tests them.
        let not_counters = [
            (
                offset_of!(SyscallStats, watched_extremes),
                3 * size_of::<tracer_common::counter::Extremes>(),
            ),
            (
                offset_of!(SyscallStats, iteration_extremes),
                size_of::<tracer_common::counter::Extremes>(),
            ),
            (
                offset_of!(SyscallStats, longest_stall),
                size_of::<tracer_common::counter::LongestStall>(),
            ),
            (
                offset_of!(SyscallStats, runq_extremes),
                size_of::<tracer_common::counter::Extremes>(),
            ),
        ];
        let is_counter = |word: usize| {
            not_counters
                .iter()
                .all(|(at, len)| word * 8 < *at || word * 8 >= at + len)
        };
        // A timed call, so its times are not estimated away.
        let base = SyscallStats {
            calls: 1,
            timed: 1,
            wall_ns: 1_000_000,
            ..SyscallStats::ZERO
        };
        let empty = format!(
            "{:?}",
            window(
                &[(SyscallKind::Recvfrom, base)],
                1.0,
                Span::Total,
                &Clock::default()
            )
        );
        for i in (0..WORDS).filter(|w| is_counter(*w)) {
            let mut s = base;
            // SAFETY: SyscallStats is #[repr(C)] and made only of u64s.
            let words =
                unsafe { std::slice::from_raw_parts_mut((&raw mut s).cast::<u64>(), WORDS) };
            words[i] += 3;
            let w = format!(
                "{:?}",
                window(
                    &[(SyscallKind::Recvfrom, s)],
                    1.0,
                    Span::Total,
                    &Clock::default()
                )
            );
            assert_ne!(
                w, empty,
                "word {i} of SyscallStats never reaches the window"
            );
        }
    }

    /// Each byte counts once, in the direction it moved: HAProxy's splice
    /// from a socket receives and its splice into one sends; a read of a
    /// file is read, a log line written; io_uring's requests alike.
    #[test]
    fn the_payload_splits_by_direction() {
        let moved = |socket: u64, file: u64| SyscallStats {
            calls: 1,
            payload_bytes: socket + file,
            payload_socket_bytes: socket,
            ..SyscallStats::ZERO
        };
        let mut a = snap(
            1,
            &[
                (SyscallKind::Recvfrom, moved(100, 0)),
                (SyscallKind::SpliceRecv, moved(1000, 0)),
                (SyscallKind::Splice, moved(1000, 0)),
                (SyscallKind::Writev, moved(200, 0)),
                (SyscallKind::Read, moved(0, 30)),
                (SyscallKind::Write, moved(0, 4)),
                (SyscallKind::EpollWait, poll_stats(10, 5, 3, 100)),
            ],
        );
        let uring = |bytes: u64, socket_bytes: u64| tracer_common::UringStats {
            bytes,
            socket_bytes,
            ..tracer_common::UringStats::ZERO
        };
        let p = a.processes.values_mut().next().unwrap();
        p.uring
            .insert(tracer_common::uring::op::RECV, uring(50_000, 50_000));
        p.uring
            .insert(tracer_common::uring::op::SEND, uring(60_000, 60_000));
        p.uring
            .insert(tracer_common::uring::op::READ, uring(7_000, 0));
        p.uring
            .insert(tracer_common::uring::op::WRITE, uring(800, 0));
        let w = &compute(None, &a).processes[0].total;
        assert_eq!(
            (w.socket_received_bytes, w.socket_sent_bytes),
            (100 + 1000 + 50_000, 1000 + 200 + 60_000)
        );
        assert_eq!(
            (w.file_read_bytes, w.file_written_bytes),
            (30 + 7_000, 4 + 800)
        );
        assert_eq!(
            w.socket_received_bytes
                + w.socket_sent_bytes
                + w.file_read_bytes
                + w.file_written_bytes,
            w.payload_bytes
        );
    }

    #[test]
    fn metrics_survive_a_json_round_trip() {
        let a = snap(1, &[(SyscallKind::EpollWait, poll_stats(10, 5, 3, 100))]);
        let m = compute(None, &a);
        let text = serde_json::to_string(&m).unwrap();
        assert!(text.contains("\"syscall\":\"epoll_wait\""), "{text}");
        let back: Metrics = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.processes[0].syscalls[0].syscall,
            SyscallKind::EpollWait
        );
        assert_eq!(back.processes[0].total.calls, 10);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
