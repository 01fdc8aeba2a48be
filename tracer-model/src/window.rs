//! Counter arithmetic: the difference of two readings, and a [`Window`] — the
//! counts over a span of time and the rates and ratios that follow.

use tracer_common::{
    counter::{Counter as _, Extremes, LongestStall, Range, Stall},
    ErrnoClass, SyscallKind, SyscallStats,
};

use crate::{
    hist::percentile,
    metrics::{UringWindow, Window},
    snapshot::Snapshot,
};

/// What was counted between two readings. A counter that went backwards (a
/// reset, a reused key) yields the current value rather than a huge wrap.
pub(crate) fn delta(cur: &SyscallStats, prev: Option<&SyscallStats>) -> SyscallStats {
    match prev {
        Some(prev) if cur.calls >= prev.calls => cur.since(prev),
        _ => *cur,
    }
}

/// The snapshot as if counting had started at `base` (the dashboard's reset).
/// Thread and cost figures keep counting from attach.
pub fn rebase(cur: &Snapshot, base: &Snapshot) -> Snapshot {
    let mut out = cur.clone();
    out.elapsed = cur.elapsed.saturating_sub(base.elapsed);
    let reset_s = base.elapsed.as_secs_f64();
    for (tgid, p) in out.processes.iter_mut() {
        // Times count from the reset too: a start after attach is moved to
        // it, an exited process's time traced loses what came before it, a
        // folded entry's the sum it had then.
        let info = &mut p.info;
        let traced_before_reset = (reset_s - info.started_after_attach_s).max(0.0);
        info.started_after_attach_s = (info.started_after_attach_s - reset_s).max(0.0);
        info.traced_s = info.traced_s.map(|t| {
            let before = match info.folded {
                0 => traced_before_reset,
                _ => base
                    .processes
                    .get(tgid)
                    .and_then(|bp| bp.info.traced_s)
                    .unwrap_or(0.0),
            };
            (t - before).max(0.0)
        });
        let Some(bp) = base.processes.get(tgid) else {
            continue;
        };
        for (kind, stats) in p.syscalls.iter_mut() {
            *stats = delta(stats, bp.syscalls.get(kind));
        }
        for (op, stats) in p.uring.iter_mut() {
            *stats = crate::uring::delta(stats, bp.uring.get(op));
        }
    }
    out
}

/// `cur` with the interval that ended at `prev` folded into its own: with
/// [`crate::compute`] against the reading before `prev`, the two intervals
/// read as one. For a run's last reading, which its end cuts short — a few
/// milliseconds after the last full interval would read as the run's story
/// ("quiet", "0 % in the last 0.0 s").
pub fn fold_interval(prev: &Snapshot, cur: &Snapshot) -> Snapshot {
    let mut out = cur.clone();
    for (tgid, p) in out.processes.iter_mut() {
        let Some(pp) = prev.processes.get(tgid) else {
            continue;
        };
        for (kind, stats) in p.syscalls.iter_mut() {
            if let Some(earlier) = pp.syscalls.get(kind) {
                stats.fold_epoch(earlier, prev.epoch, cur.epoch);
            }
        }
        for (op, stats) in p.uring.iter_mut() {
            if let Some(earlier) = pp.uring.get(op) {
                stats.fold_epoch(earlier, prev.epoch, cur.epoch);
            }
        }
    }
    out
}

pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Which extremes a window takes: since attach, or those of one reading
/// interval (an epoch).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Span {
    Total,
    Epoch(u64),
}

impl Span {
    pub(crate) fn of(self, e: &Extremes) -> Range {
        match self {
            Span::Total => e.total,
            Span::Epoch(epoch) => e.of_epoch(epoch),
        }
    }

    fn longest(self, l: &LongestStall) -> Stall {
        match self {
            Span::Total => l.total,
            Span::Epoch(epoch) => l.of_epoch(epoch),
        }
    }
}

/// A kind's total time over all its `calls`, from the `timed` ones' `sum`
/// (`--time-every`): exact when every call was timed, and nothing when none
/// was (their time is unknown, not zero: per-call figures divide by the
/// calls of the kinds that had a timed call).
pub(crate) fn estimate(sum: u64, calls: u64, timed: u64) -> u64 {
    match timed {
        0 => 0,
        t if t == calls => sum,
        t => (u128::from(sum) * u128::from(calls) / u128::from(t)) as u64,
    }
}

/// Widens `into` by `r`.
fn widen(into: &mut Range, r: Range) {
    into.merge(&r);
}

/// (min, max) of a range, (0, 0) when empty.
fn bounds(r: &Range) -> (u64, u64) {
    if r.is_empty() {
        (0, 0)
    } else {
        (r.min(), r.max())
    }
}

impl Window {
    pub(crate) fn add(&mut self, s: &SyscallStats, kind: SyscallKind, span: Span) {
        widen(&mut self.extremes.watched, span.of(&s.watched_extremes));
        widen(&mut self.extremes.ready, span.of(&s.ready_extremes));
        widen(&mut self.extremes.wall, span.of(&s.wall_extremes));
        widen(&mut self.extremes.iteration, span.of(&s.iteration_extremes));
        widen(&mut self.extremes.runq, span.of(&s.runq_extremes));
        let stall = span.longest(&s.longest_stall);
        if stall.ns > self.extremes.longest_stall.ns {
            self.extremes.longest_stall = stall;
        }
        self.iterations += s.iterations;
        self.timed_iterations += s.timed_iterations;
        self.timed_iteration_ns += s.iteration_ns;
        self.iteration_ns += estimate(s.iteration_ns, s.iterations, s.timed_iterations);
        self.stalls += s.stalls;
        self.tick_stalls += s.tick_stalls;
        self.stall_ns += s.stall_ns;
        self.stall_off_cpu_ns += s.stall_off_cpu_ns;
        self.runq_delays += s.runq_delays;
        self.runq_ns += s.runq_ns;
        self.exit_path_ns += s.exit_path_ns;
        self.calls += s.calls;
        self.errors += s.errors;
        self.eintr += s.errno[ErrnoClass::Eintr as usize];
        self.restarted += s.errno[ErrnoClass::Restarted as usize];
        self.ebadf += s.errno[ErrnoClass::Ebadf as usize];
        self.einval += s.errno[ErrnoClass::Einval as usize];
        self.eagain += s.errno[ErrnoClass::Eagain as usize];
        self.other_errors += s.errno[ErrnoClass::Other as usize];
        self.timeouts += s.timeouts;
        self.ready += s.ready;
        self.useful_wakeups += s.useful_wakeups;
        self.sched_wakeups += s.sched_wakeups;
        self.empty_wakeups += s.empty_wakeups;
        self.herd_wakeups += s.herd_wakeups;
        self.zero_timeouts += s.zero_timeouts;
        self.infinite_timeouts += s.infinite_timeouts;
        self.timed_calls += s.timed;
        self.timed_wall_ns += s.wall_ns;
        if s.timed > 0 {
            self.calls_with_time += s.calls;
        }
        self.wall_ns += estimate(s.wall_ns, s.calls, s.timed);
        self.on_cpu_ns += estimate(s.on_cpu_ns, s.calls, s.timed);
        self.off_cpu_ns += s.off_cpu_ns;
        self.watched += s.watched;
        self.size_arg += s.size_arg;
        self.scanned += s.scanned;
        self.bookkeeping_in_bytes += s.bookkeeping_in;
        self.bookkeeping_out_bytes += s.bookkeeping_out;
        self.payload_bytes += s.payload_bytes;
        self.payload_socket_bytes += s.payload_socket_bytes;
        let file_bytes = s.payload_bytes.saturating_sub(s.payload_socket_bytes);
        self.payload_file_bytes += file_bytes;
        if kind.is_receive() {
            self.socket_received_bytes += s.payload_socket_bytes;
            self.file_read_bytes += file_bytes;
        } else if kind.sends_payload() {
            self.socket_sent_bytes += s.payload_socket_bytes;
            self.file_written_bytes += file_bytes;
        }
        self.zero_copy_bytes += s.zero_copy_bytes;
        self.messages += s.messages;
        self.socket_messages += s.socket_messages;
        // A read at an offset reads stored data, never a message served
        // (nginx reads each body it sends with pread64).
        if kind.is_receive() && !kind.is_positional() {
            self.receives_with_data += s.messages;
            self.socket_receives += s.socket_messages;
        }
        let h = &mut self.hists;
        h.wall_ns.merge(&s.hist_wall_ns);
        h.on_cpu_ns.merge(&s.hist_on_cpu_ns);
        h.watched.merge(&s.hist_watched);
        h.ready.merge(&s.hist_ready);
        h.timeout_us.merge(&s.hist_timeout_us);
        h.payload.merge(&s.hist_payload);
        h.iteration_ns.merge(&s.hist_iteration_ns);
        h.runq_ns.merge(&s.hist_runq_ns);
        h.exit_path_ns.merge(&s.hist_exit_path_ns);
    }

    /// Fills the derived fields. `waits` are the window's wait calls (the
    /// whole process's for a process window): per-wait averages divide by them.
    pub(crate) fn derive(&mut self, seconds: f64, waits: &WaitPart, clock: &Clock) {
        self.seconds = seconds;
        self.derive_loop(clock);
        let per_sec = |v: u64| ratio(v as f64, seconds);
        self.calls_per_sec = per_sec(self.calls);
        self.ready_per_sec = per_sec(self.ready);
        self.wakeups_per_sec = per_sec(waits.returns);
        self.bookkeeping_bytes_per_sec =
            per_sec(self.bookkeeping_in_bytes + self.bookkeeping_out_bytes);
        self.payload_bytes_per_sec = per_sec(self.payload_bytes);
        // Waits the kernel refused watched nothing; interrupted ones did.
        self.watched_avg = ratio(self.watched as f64, waits.returns as f64);
        let watched = self.extremes.watched;
        let ready = self.extremes.ready;
        let wall = self.extremes.wall;
        (self.watched_min, self.watched_max) = bounds(&watched);
        (self.ready_min, self.ready_max) = bounds(&ready);
        (self.wall_min_ns, self.wall_max_ns) = bounds(&wall);
        self.watched_p99 = percentile(&self.hists.watched, 0.99, &watched);
        self.size_arg_avg = ratio(self.size_arg as f64, waits.returns as f64);
        self.ready_avg = ratio(self.ready as f64, waits.returns_ok as f64);
        self.efficiency = ratio(self.ready as f64, self.scanned as f64);
        self.timeout_share = ratio(self.timeouts as f64, waits.calls as f64);
        self.eintr_share = ratio(self.eintr as f64, self.calls as f64);
        self.wall_p50_ns = percentile(&self.hists.wall_ns, 0.50, &wall);
        self.wall_p99_ns = percentile(&self.hists.wall_ns, 0.99, &wall);
        self.on_cpu_ns_per_call = ratio(self.on_cpu_ns as f64, self.calls_with_time as f64);
        self.on_cpu_share = ratio(self.on_cpu_ns as f64, self.wall_ns as f64);
        self.on_cpu_ns_per_ready = ratio(waits.on_cpu_ns as f64, self.ready as f64);
        self.bookkeeping_bytes_per_ready = ratio(
            (self.bookkeeping_in_bytes + self.bookkeeping_out_bytes) as f64,
            self.ready as f64,
        );
        self.syscalls_per_receive = ratio(self.calls as f64, self.receives_with_data as f64);
    }
}

impl Window {
    fn derive_loop(&mut self, clock: &Clock) {
        let iteration = self.extremes.iteration;
        let runq = self.extremes.runq;
        self.iteration_avg_ns = ratio(self.timed_iteration_ns as f64, self.timed_iterations as f64);
        self.iteration_p50_ns = percentile(&self.hists.iteration_ns, 0.50, &iteration);
        self.iteration_p99_ns = percentile(&self.hists.iteration_ns, 0.99, &iteration);
        self.iteration_max_ns = bounds(&iteration).1;
        self.work_per_ready_ns = ratio(self.iteration_ns as f64, self.ready as f64);
        let stall = self.extremes.longest_stall;
        self.longest_stall_ns = stall.ns;
        self.longest_stall_off_cpu_ns = stall.off_cpu_ns.min(stall.ns);
        self.longest_stall_preempted_ns = stall.preempted_ns.min(self.longest_stall_off_cpu_ns);
        self.longest_stall_futex_ns = stall.futex_ns.min(self.longest_stall_off_cpu_ns);
        self.longest_stall_at_s = if stall.ns == 0 {
            0.0
        } else {
            (stall.at_ns as i128 + i128::from(clock.wall_minus_monotonic_ns)) as f64 / 1e9
        };
        self.longest_stall_syscalls = SyscallKind::ALL
            .iter()
            .filter(|k| stall.kinds & (1 << (**k as u32)) != 0)
            .map(|k| k.name().to_owned())
            .collect();
        if stall.futex_ns != 0 {
            self.longest_stall_syscalls.push("futex".to_owned());
        }
        self.runq_p50_ns = percentile(&self.hists.runq_ns, 0.50, &runq);
        self.runq_p99_ns = percentile(&self.hists.runq_ns, 0.99, &runq);
        self.runq_max_ns = bounds(&runq).1;
        self.readiness_latency_avg_ns = ratio(
            (self.runq_ns + self.exit_path_ns) as f64,
            self.runq_delays as f64,
        );
    }
}

/// What converts the kernel's monotonic clock to wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    pub(crate) wall_minus_monotonic_ns: i64,
}

/// The wait calls' share of a window, needed for per-wait averages.
#[derive(Default)]
pub(crate) struct WaitPart {
    pub(crate) calls: u64,
    /// Returns that were not errors (ready or timeout).
    pub(crate) returns_ok: u64,
    /// Returns of any kind that woke the caller: ready, timeout, EINTR.
    pub(crate) returns: u64,
    pub(crate) on_cpu_ns: u64,
}

impl WaitPart {
    pub(crate) fn add(&mut self, s: &SyscallStats, kind: SyscallKind) {
        if !kind.is_wait() {
            return;
        }
        self.calls += s.calls;
        self.returns_ok += s.useful_wakeups + s.timeouts;
        self.returns += s.useful_wakeups
            + s.timeouts
            + s.errno[ErrnoClass::Eintr as usize]
            + s.errno[ErrnoClass::Restarted as usize];
        // Waits are always timed.
        self.on_cpu_ns += s.on_cpu_ns;
    }
}

pub(crate) fn window(
    stats: &[(SyscallKind, SyscallStats)],
    seconds: f64,
    span: Span,
    clock: &Clock,
) -> Window {
    window_with(stats, None, seconds, span, clock)
}

/// A process's window: its calls, and the payload its io_uring requests
/// moved (messages served without a syscall of their own).
pub(crate) fn window_with(
    stats: &[(SyscallKind, SyscallStats)],
    uring: Option<&UringWindow>,
    seconds: f64,
    span: Span,
    clock: &Clock,
) -> Window {
    let mut w = Window::default();
    let mut waits = WaitPart::default();
    for (kind, s) in stats {
        w.add(s, *kind, span);
        waits.add(s, *kind);
    }
    if let Some(u) = uring {
        w.payload_bytes += u.bytes;
        w.payload_socket_bytes += u.socket_bytes;
        let file_bytes = u.bytes.saturating_sub(u.socket_bytes);
        let file_received = u.received_bytes.saturating_sub(u.socket_received_bytes);
        w.payload_file_bytes += file_bytes;
        w.socket_received_bytes += u.socket_received_bytes;
        w.socket_sent_bytes += u.socket_bytes.saturating_sub(u.socket_received_bytes);
        w.file_read_bytes += file_received;
        w.file_written_bytes += file_bytes.saturating_sub(file_received);
        w.messages += u.messages;
        w.receives_with_data += u.receives;
        w.socket_messages += u.socket_messages;
        w.socket_receives += u.socket_receives;
    }
    w.derive(seconds, &waits, clock);
    w
}
