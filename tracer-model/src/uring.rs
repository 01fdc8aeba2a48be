//! io_uring's figures: a process's requests by opcode and together, with
//! what its io_uring_enter calls cost.

use tracer_common::{
    uring::{is_receive, op_name},
    ErrnoClass, SyscallKind, SyscallStats, UringStats,
};

use crate::{
    hist::percentile,
    metrics::{UringMetrics, UringOpMetrics, UringWindow},
    snapshot::ProcessSnap,
    window::{ratio, Span},
};

/// What was counted between two readings (the current value after a reset).
pub(crate) fn delta(cur: &UringStats, prev: Option<&UringStats>) -> UringStats {
    match prev {
        Some(prev) if cur.cqes >= prev.cqes && cur.submitted >= prev.submitted => cur.since(prev),
        _ => *cur,
    }
}

/// The io_uring figures of a process that submitted any requests.
/// `totals`/`deltas` are its syscall aggregates (for the enters).
pub(crate) fn uring_metrics(
    p: &ProcessSnap,
    prev_p: Option<&ProcessSnap>,
    totals: &[(SyscallKind, SyscallStats)],
    deltas: &[(SyscallKind, SyscallStats)],
    elapsed: f64,
    interval: f64,
    epoch: u64,
) -> Option<UringMetrics> {
    if p.uring.is_empty() {
        return None;
    }
    let none: &[(SyscallKind, SyscallStats)] = &[];
    let mut all_total = UringStats::ZERO;
    let mut all_delta = UringStats::ZERO;
    let mut ops = Vec::new();
    let mut receive_total = Received::default();
    let mut receive_delta = Received::default();
    for (op, stats) in &p.uring {
        let d = delta(stats, prev_p.and_then(|pp| pp.uring.get(op)));
        all_total.merge(stats);
        all_delta.merge(&d);
        let receive = |s: &UringStats| {
            if is_receive(*op) {
                Received::of(s)
            } else {
                Received::default()
            }
        };
        receive_total.add(receive(stats));
        receive_delta.add(receive(&d));
        ops.push(UringOpMetrics {
            op: op_name(u32::from(*op)).to_string(),
            opcode: *op,
            total: uring_window(stats, receive(stats), none, elapsed, Span::Total),
            interval: uring_window(&d, receive(&d), none, interval, Span::Epoch(epoch)),
        });
    }
    Some(UringMetrics {
        total: uring_window(&all_total, receive_total, totals, elapsed, Span::Total),
        interval: uring_window(
            &all_delta,
            receive_delta,
            deltas,
            interval,
            Span::Epoch(epoch),
        ),
        ops,
    })
}

/// What receive-class requests brought in: the aggregates do not say
/// which of their messages and bytes were received.
#[derive(Clone, Copy, Default)]
pub(crate) struct Received {
    messages: u64,
    socket_messages: u64,
    bytes: u64,
    socket_bytes: u64,
}

impl Received {
    fn of(s: &UringStats) -> Received {
        Received {
            messages: s.messages,
            socket_messages: s.socket_messages,
            bytes: s.bytes,
            socket_bytes: s.socket_bytes,
        }
    }

    fn add(&mut self, r: Received) {
        self.messages += r.messages;
        self.socket_messages += r.socket_messages;
        self.bytes += r.bytes;
        self.socket_bytes += r.socket_bytes;
    }
}

/// One window of io_uring figures from summed aggregates; `enters` are the
/// process's syscall aggregates (io_uring_enter's are picked out), empty
/// for a single opcode's row.
pub(crate) fn uring_window(
    s: &UringStats,
    received: Received,
    enters: &[(SyscallKind, SyscallStats)],
    seconds: f64,
    span: Span,
) -> UringWindow {
    let mut calls = 0;
    let mut waits = 0;
    let mut wait_returns = 0;
    let mut ready = 0;
    let mut bookkeeping = 0;
    for (kind, e) in enters {
        if !kind.is_io_uring() {
            continue;
        }
        calls += e.calls;
        bookkeeping += e.bookkeeping_in + e.bookkeeping_out;
        if kind.is_wait() {
            waits += e.calls;
            wait_returns += e.useful_wakeups + e.timeouts;
            ready += e.ready;
        }
    }
    let range = span.of(&s.latency_extremes);
    let (min, max) = if range.is_empty() {
        (0, 0)
    } else {
        (range.min(), range.max())
    };
    let enter_submitted = s.submitted.saturating_sub(s.sqpoll_submitted);
    UringWindow {
        seconds,
        submitted: s.submitted,
        sqpoll_submitted: s.sqpoll_submitted,
        enter_submitted,
        cqes: s.cqes,
        completed: s.completed,
        errors: s.errors,
        eintr: s.errno[ErrnoClass::Eintr as usize],
        ebadf: s.errno[ErrnoClass::Ebadf as usize],
        einval: s.errno[ErrnoClass::Einval as usize],
        eagain: s.errno[ErrnoClass::Eagain as usize],
        other_errors: s.errno[ErrnoClass::Other as usize],
        bytes: s.bytes,
        socket_bytes: s.socket_bytes,
        received_bytes: received.bytes,
        socket_received_bytes: received.socket_bytes,
        messages: s.messages,
        receives: received.messages,
        socket_messages: s.socket_messages,
        socket_receives: received.socket_messages,
        timed: s.timed,
        inline: s.inline,
        polled: s.polled,
        punted: s.punted,
        poll_arms: s.poll_arms,
        async_punts: s.async_punts,
        punt_share: ratio(s.punted as f64, s.timed as f64),
        poll_share: ratio(s.polled as f64, s.timed as f64),
        latency_ns: s.latency_ns,
        latency_avg_ns: ratio(s.latency_ns as f64, s.timed as f64),
        latency_p50_ns: percentile(&s.hist_latency_ns, 0.50, &range),
        latency_p99_ns: percentile(&s.hist_latency_ns, 0.99, &range),
        latency_min_ns: min,
        latency_max_ns: max,
        enters: calls,
        waits,
        sqes_per_enter: ratio(enter_submitted as f64, calls as f64),
        cqes_per_wait: ratio(ready as f64, wait_returns as f64),
        sqpoll_share: ratio(s.sqpoll_submitted as f64, s.submitted as f64),
        bookkeeping_bytes: bookkeeping,
        bookkeeping_bytes_per_wait: ratio(bookkeeping as f64, waits as f64),
        submitted_per_sec: ratio(s.submitted as f64, seconds),
        cqes_per_sec: ratio(s.cqes as f64, seconds),
        bytes_per_sec: ratio(s.bytes as f64, seconds),
    }
}
