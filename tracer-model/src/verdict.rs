//! What the numbers say: the I/O model a process uses, and one sentence on
//! what waiting costs it, with its figures.

use std::collections::BTreeMap;

use tracer_common::{SyscallKind, SyscallStats};

use crate::{
    format::{bytes, clock_time_utc, duration, thousands},
    metrics::{IoModel, ProcessMetrics, UringWindow, Window},
    window::{ratio, Span, WaitPart},
};

/// Messages a process must receive on sockets, or connections it must
/// accept, before it is called a server that blocks: fewer, with no wait
/// calls, is a controller or an idle process (nginx's master: a few config
/// reads and messages to its workers).
pub const MIN_SERVED: u64 = 20;

/// A loop busy this share of the time or more is saturated: it has no slack
/// left to absorb a burst.
pub const SATURATED: f64 = 0.9;

/// Fds a select or poll call must skip, on average, before its scan is
/// worth a word: a few unready fds cost less than the call itself (tmux's
/// server polls 3 fds, and nobody should move it to epoll for that).
pub const SCANNING_MIN_UNREADY_PER_WAIT: f64 = 16.0;

/// Every word [`word`] says, the most urgent first.
pub const STATES: [&str; 8] = [
    "exited",
    "stalling",
    "saturated",
    "spinning",
    "scanning",
    "quiet",
    "idle",
    "ok",
];

/// The verdict in one word, for a list of many processes (the dashboard's
/// top view, JSON's `state`, Prometheus' `muxtrace_process_state`), from
/// the last interval's figures. The first that holds, the
/// most urgent first:
///
/// - `exited`: the process is gone;
/// - `stalling`: an iteration of its loop reached `--stall` in the interval;
/// - `saturated`: its loop was busy [`SATURATED`] of the time or more and
///   still came back to wait (a loop that made no wait in the interval is
///   blocked in another call or in one long iteration, not saturated: a
///   shell waiting for its child in `wait4` is busy by this measure);
/// - `spinning` (busy-polling): at least [`BUSY_POLLING_MIN_WAITS`] waits,
///   nearly all with a zero timeout and most of them empty: it never sleeps,
///   though its time in those waits keeps its busy share low;
/// - `scanning`: select or poll examined more fds that were not ready than
///   ready ones (efficiency under 50 %), and at least
///   [`SCANNING_MIN_UNREADY_PER_WAIT`] unready ones per call;
/// - `quiet`: no traced call in the interval;
/// - `idle`: calls, but no waits and little socket traffic ([`IoModel::Idle`]);
/// - `ok`: none of these.
pub fn word(p: &ProcessMetrics) -> &'static str {
    let w = &p.interval;
    let waits = interval_waits(p);
    let waited = waits > 0;
    let unready = w.scanned.saturating_sub(w.ready);
    if !p.alive {
        "exited"
    } else if w.stalls > 0 {
        "stalling"
    } else if waited && p.loop_busy_share.is_some_and(|b| b >= SATURATED) {
        "saturated"
    } else if busy_polling_shares(w, waits).is_some() {
        "spinning"
    } else if matches!(p.model, IoModel::Select | IoModel::Poll)
        && unready > w.ready
        && unready as f64 >= SCANNING_MIN_UNREADY_PER_WAIT * waits as f64
    {
        "scanning"
    } else if w.calls == 0 {
        "quiet"
    } else if matches!(p.model, IoModel::Idle | IoModel::Unknown) {
        "idle"
    } else {
        "ok"
    }
}

/// Wait calls in the last interval.
fn interval_waits(p: &ProcessMetrics) -> u64 {
    p.syscalls
        .iter()
        .filter(|s| s.syscall.is_wait())
        .map(|s| s.interval.calls)
        .sum()
}

/// Whether the loop came back to wait in the last interval: only then is
/// a busy loop saturated (see [`word`]).
pub(crate) fn waited_in_interval(p: &ProcessMetrics) -> bool {
    interval_waits(p) > 0
}

/// The wait family with the most calls; without waits, socket traffic of
/// some volume is blocking I/O, a handful of calls is an idle process.
pub fn detect_model(stats: &[(SyscallKind, SyscallStats)]) -> IoModel {
    let mut by_model: BTreeMap<&'static str, (u64, IoModel)> = BTreeMap::new();
    let mut served = 0;
    let mut calls = 0;
    for (kind, s) in stats {
        calls += s.calls;
        let model = if kind.is_select() {
            IoModel::Select
        } else if kind.is_poll() {
            IoModel::Poll
        } else if kind.is_epoll_wait() {
            IoModel::Epoll
        } else if kind.is_io_uring() {
            IoModel::IoUring
        } else {
            if kind.is_receive() {
                served += s.socket_messages;
            } else if kind.is_accept() {
                served += s.calls - s.errors;
            }
            continue;
        };
        by_model.entry(model.name()).or_insert((0, model)).0 += s.calls;
    }
    match by_model
        .values()
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n)
    {
        Some((_, model)) => *model,
        None if served >= MIN_SERVED => IoModel::Blocking,
        None if calls > 0 => IoModel::Idle,
        None => IoModel::Unknown,
    }
}

/// One sentence, numbers included, on what waiting costs. The comparison with
/// epoll uses epoll's exact copy cost for the same ready count (12 bytes per
/// ready event out, nothing in), never an invented figure.
pub(crate) fn verdict(
    model: IoModel,
    total: &Window,
    stats: &[(SyscallKind, SyscallStats)],
    uring: Option<&UringWindow>,
    health: LoopHealth,
) -> String {
    let mut s = match (model, uring) {
        (IoModel::IoUring, Some(u)) => uring_verdict(total, u),
        _ => io_verdict(model, total, stats),
    };
    if let Some(health) = loop_verdict(total, health) {
        s.push_str("; ");
        s.push_str(&health);
    }
    s
}

/// Said of a process with no call counted whose threads are blocked in
/// measured calls: a call counts when it returns, so an idle server that
/// waited since before attach reads as if it made none.
pub fn blocked_clause(blocked: &BTreeMap<String, u32>) -> Option<String> {
    let threads: u32 = blocked.values().sum();
    let calls: Vec<String> = blocked
        .iter()
        .map(|(name, n)| match blocked.len() {
            1 => name.clone(),
            _ => format!("{name} ({n})"),
        })
        .collect();
    let calls = match calls.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => return None,
    };
    Some(match threads {
        1 => format!("1 thread is blocked in {calls}: a call counts when it returns"),
        n => format!("{n} threads are blocked in {calls}: a call counts when it returns"),
    })
}

/// Said of a process with live children it does not trace: `--pid` of
/// nginx's or Apache's master alone reads as a quiet process, while its
/// workers do the work.
pub fn untraced_children_clause(count: u64, pids: &[u32]) -> Option<String> {
    /// Pids named; the rest are counted.
    const NAMED: usize = 4;
    let mut named: Vec<String> = pids.iter().take(NAMED).map(u32::to_string).collect();
    if count > named.len() as u64 {
        named.push(format!("{} more", count - named.len() as u64));
    }
    match count {
        0 => None,
        1 => Some(format!(
            "its child process {} is not traced: --follow traces it",
            named.join("")
        )),
        n => Some(format!(
            "its {n} child processes ({}) are not traced: --follow traces them",
            named.join(", ")
        )),
    }
}

/// What the verdict says of the loop beside the totals: its busy share,
/// over what, whether it still came back to wait, and the stall threshold.
pub(crate) struct LoopHealth {
    pub busy: Option<f64>,
    pub span: BusySpan,
    pub still_waits: bool,
    pub stall_threshold_ns: u64,
}

/// What the busy share in a verdict covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BusySpan {
    LastInterval,
    /// Figures with no earlier reading: the whole run.
    Run,
}

/// The event loop's health in one clause: busy share (saturated from 90 %),
/// and the stalls with the longest's length, time and on-CPU part.
fn loop_verdict(total: &Window, health: LoopHealth) -> Option<String> {
    let LoopHealth {
        busy,
        span,
        still_waits,
        stall_threshold_ns: threshold_ns,
    } = health;
    let mut parts = Vec::new();
    if let Some(busy) = busy {
        let pct = busy * 100.0;
        let over = match span {
            BusySpan::LastInterval => "of the last interval",
            BusySpan::Run => "over the run",
        };
        // A loop that is almost always waiting is not "busy 0 %".
        let share = match pct {
            p if p > 0.0 && p < 0.5 => "under 1 %".to_owned(),
            p => format!("{p:.0} %"),
        };
        parts.push(if busy >= SATURATED && still_waits {
            format!("loop busy {share} {over} — saturated")
        } else if busy >= SATURATED {
            // Outside its waits and not back to one: a thread stopped
            // (SIGSTOP, a debugger) or blocked elsewhere, not saturated.
            format!(
                "loop busy {share} {over} without coming back to wait: blocked in another \
                 call, stopped, or in one long iteration"
            )
        } else {
            format!("loop busy {share} {over}")
        });
    }
    if total.stalls > 0 {
        let longest = total.longest_stall_ns;
        let on = longest.saturating_sub(total.longest_stall_off_cpu_ns);
        let at = clock_time_utc(total.longest_stall_at_s);
        parts.push(format!(
            "{} stall{} over {}, the longest {} at {at}, {} of it on-CPU",
            thousands(total.stalls),
            if total.stalls == 1 { "" } else { "s" },
            duration(threshold_ns),
            duration(longest),
            duration(on),
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// io_uring's sentence: what a syscall buys (SQEs per enter, syscalls per
/// message), what the rings save (bookkeeping copied: 0 B unless an
/// extended argument was passed), and the share of requests that took the
/// expensive path.
fn uring_verdict(total: &Window, u: &UringWindow) -> String {
    // Each ratio only over what it divides by: an SQPOLL ring reaped by
    // polling makes no io_uring_enter, a ring that only writes receives
    // nothing.
    let mut parts = Vec::new();
    if u.enters > 0 {
        parts.push(format!("{:.1} SQEs per io_uring_enter", u.sqes_per_enter));
    }
    if total.syscalls_per_receive > 0.0 {
        parts.push(format!(
            "{:.2} syscalls per message",
            total.syscalls_per_receive
        ));
    }
    if u.timed > 0 {
        parts.push(format!(
            "{:.0} % of requests punted to io-wq workers",
            u.punt_share * 100.0
        ));
    }
    if parts.is_empty() {
        parts.push("no io_uring request completed yet".to_owned());
    }
    let mut s = parts.join("; ");
    if u.waits > 0 {
        s.push_str(&format!(
            "; {:.1} CQEs per wait, {} of bookkeeping copied per wait",
            u.cqes_per_wait,
            bytes(u.bookkeeping_bytes_per_wait)
        ));
    }
    if u.sqpoll_submitted > 0 {
        s.push_str(&format!(
            "; {} of {} submissions by the SQ thread, without a syscall",
            thousands(u.sqpoll_submitted),
            thousands(u.submitted)
        ));
    }
    s
}

/// Waits a loop must make before its zero timeouts are called busy-polling.
pub const BUSY_POLLING_MIN_WAITS: u64 = 100;

/// A loop whose waits nearly all have a zero timeout and mostly come back
/// empty never sleeps: the time in those calls reads as waiting in its busy
/// share, yet it holds a CPU all the time. The shares of zero timeouts and
/// of empty returns among `waits` (the window's wait calls) when it does.
fn busy_polling_shares(window: &Window, waits: u64) -> Option<(f64, f64)> {
    let zero = ratio(window.zero_timeouts as f64, waits as f64);
    let empty = ratio(window.timeouts as f64, waits as f64);
    (waits >= BUSY_POLLING_MIN_WAITS && zero >= 0.9 && empty >= 0.5).then_some((zero, empty))
}

/// The verdict's clause on busy-polling, with its figures.
fn busy_polling(waits: &Window, calls: u64) -> Option<String> {
    busy_polling_shares(waits, calls).map(|(zero, empty)| {
        format!(
            "; {:.0} % of its waits had a zero timeout and {:.0} % came back empty: it polls without sleeping (busy-polling), holding a CPU however little arrives",
            zero * 100.0,
            empty * 100.0
        )
    })
}

fn io_verdict(model: IoModel, total: &Window, stats: &[(SyscallKind, SyscallStats)]) -> String {
    let mut waits = WaitPart::default();
    let mut wait_stats = Window::default();
    for (kind, s) in stats {
        if kind.is_wait() {
            waits.add(s, *kind);
            wait_stats.add(s, *kind, Span::Total);
        }
    }
    let returns = waits.returns_ok.max(1) as f64;
    match model {
        IoModel::Select | IoModel::Poll => {
            // Both per call, interrupted ones included, so that the share is
            // their ratio (ready per return read 1.0 of 2 fds beside 23 %
            // for a postmaster whose selects half returned EINTR).
            let scanned = wait_stats.scanned as f64 / waits.calls.max(1) as f64;
            let ready = wait_stats.ready as f64 / waits.calls.max(1) as f64;
            let eff = ratio(wait_stats.ready as f64, wait_stats.scanned as f64) * 100.0;
            let copied = wait_stats.bookkeeping_in_bytes + wait_stats.bookkeeping_out_bytes;
            let per_ready = ratio(copied as f64, wait_stats.ready as f64);
            let fds = match scanned.round() as u64 {
                // Some calls with no fd at all.
                _ if scanned < 0.95 => format!("{scanned:.1} fds"),
                1 => "1 fd".to_owned(),
                n => format!("{} fds", thousands(n)),
            };
            let mut s = match wait_stats.scanned {
                // poll(NULL, 0, ms): a sleep, not a wait on I/O.
                0 => format!("{} watches no fds: its calls only sleep", model.name()),
                _ => format!(
                    "{} scans {fds} per call to find {:.1} ready ({:.1} %)",
                    model.name(),
                    ready,
                    eff
                ),
            };
            if wait_stats.ready > 0 {
                s.push_str(&format!(
                    "; {} copied per ready event, where epoll would copy 12 B",
                    bytes(per_ready)
                ));
            }
            s.extend(busy_polling(&wait_stats, waits.calls));
            s
        }
        IoModel::Epoll => {
            let ready = wait_stats.ready as f64 / returns;
            let ctl: u64 = stats
                .iter()
                .filter(|(k, _)| *k == SyscallKind::EpollCtl)
                .map(|(_, s)| s.calls)
                .sum();
            // A set built before attach and never changed since: said so,
            // not "0 epoll_ctl calls kept the set".
            let kept = match ctl {
                0 => "no epoll_ctl call since attach: the set was built before".to_owned(),
                1 => "1 epoll_ctl call kept the set".to_owned(),
                n => format!("{} epoll_ctl calls kept the set", thousands(n)),
            };
            let mut s = format!(
                "epoll returns {:.1} ready per call from {:.0} registered fds on average without scanning them; {kept}",
                ready,
                ratio(wait_stats.watched as f64, waits.calls as f64),
            );
            s.extend(busy_polling(&wait_stats, waits.calls));
            s
        }
        IoModel::Blocking => format!(
            "blocking I/O: {:.1} syscalls per receive that returned data, no readiness calls",
            total.syscalls_per_receive
        ),
        IoModel::Idle => format!(
            "idle: {} calls in {:.1} s, {} socket messages received, no select, poll or epoll — a controller or a quiet process, not a busy server",
            thousands(total.calls),
            total.seconds,
            thousands(total.socket_receives),
        ),
        IoModel::IoUring => format!(
            "io_uring: {} io_uring_enter calls, {:.2} syscalls per receive that returned data",
            thousands(total.calls),
            total.syscalls_per_receive
        ),
        IoModel::Unknown => "no select, poll, epoll or I/O calls seen yet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocked threads are counted by call; none, no clause.
    #[test]
    fn blocked_threads_are_counted_by_call() {
        let mut blocked = BTreeMap::new();
        assert_eq!(blocked_clause(&blocked), None);
        blocked.insert("epoll_wait".to_owned(), 1);
        assert_eq!(
            blocked_clause(&blocked).as_deref(),
            Some("1 thread is blocked in epoll_wait: a call counts when it returns")
        );
        blocked.insert("read".to_owned(), 2);
        blocked.insert("accept4".to_owned(), 1);
        assert_eq!(
            blocked_clause(&blocked).as_deref(),
            Some("4 threads are blocked in accept4 (1), epoll_wait (1) and read (2): a call counts when it returns")
        );
    }

    /// No clause without untraced children; one child is named alone;
    /// past four, the rest are counted, also those past the pids kept.
    #[test]
    fn untraced_children_are_named_then_counted() {
        assert_eq!(untraced_children_clause(0, &[]), None);
        assert_eq!(
            untraced_children_clause(1, &[7]).as_deref(),
            Some("its child process 7 is not traced: --follow traces it")
        );
        assert_eq!(
            untraced_children_clause(2, &[7, 9]).as_deref(),
            Some("its 2 child processes (7, 9) are not traced: --follow traces them")
        );
        let kept: Vec<u32> = (1..=64).collect();
        assert_eq!(
            untraced_children_clause(100, &kept).as_deref(),
            Some("its 100 child processes (1, 2, 3, 4, 96 more) are not traced: --follow traces them")
        );
    }

    /// The io verdict of a process whose only calls are `wait`'s.
    fn one_wait_verdict(model: IoModel, kind: SyscallKind, wait: SyscallStats) -> String {
        io_verdict(model, &Window::default(), &[(kind, wait)])
    }

    /// A loop that only polls with a zero timeout, mostly in vain, is said
    /// to busy-poll; one with a few zero timeouts among real waits is not.
    #[test]
    fn zero_timeouts_that_come_back_empty_are_busy_polling() {
        let mut wait = SyscallStats::ZERO;
        (wait.calls, wait.scanned, wait.ready, wait.useful_wakeups) = (1000, 3000, 50, 50);
        (wait.timeouts, wait.zero_timeouts) = (950, 1000);
        let v = one_wait_verdict(IoModel::Select, SyscallKind::Select, wait);
        assert!(
            v.ends_with("; 100 % of its waits had a zero timeout and 95 % came back empty: it polls without sleeping (busy-polling), holding a CPU however little arrives"),
            "{v}"
        );
        wait.zero_timeouts = 100;
        let v = one_wait_verdict(IoModel::Select, SyscallKind::Select, wait);
        assert!(!v.contains("busy-polling"), "{v}");
    }

    /// One fd is not "1 fds"; a poll of none is a sleep, not a 0 % scan;
    /// one of an fd now and then is neither. Ready fds are per call, like
    /// the fds scanned: five calls interrupted, five that found their fd
    /// ready, read 0.5 of 1 (50 %), not 1.0 of 1.
    #[test]
    fn a_scan_of_one_fd_or_none_reads_right() {
        let mut wait = SyscallStats::ZERO;
        (wait.calls, wait.scanned, wait.ready, wait.useful_wakeups) = (10, 10, 5, 5);
        wait.errno[tracer_common::ErrnoClass::Eintr as usize] = 5;
        let v = one_wait_verdict(IoModel::Poll, SyscallKind::Poll, wait);
        assert!(
            v.starts_with("poll scans 1 fd per call to find 0.5 ready (50.0 %)"),
            "{v}"
        );
        (wait.scanned, wait.ready, wait.useful_wakeups, wait.timeouts) = (0, 0, 0, 10);
        let v = one_wait_verdict(IoModel::Poll, SyscallKind::Poll, wait);
        assert_eq!(v, "poll watches no fds: its calls only sleep");
        // Four calls in ten with an fd, all found ready: a scan, not a sleep.
        (wait.scanned, wait.ready, wait.useful_wakeups, wait.timeouts) = (4, 4, 4, 6);
        let v = one_wait_verdict(IoModel::Poll, SyscallKind::Poll, wait);
        assert!(
            v.starts_with("poll scans 0.4 fds per call to find 0.4 ready (100.0 %)"),
            "{v}"
        );
    }

    /// An epoll set built before attach and never changed since is said to
    /// be so, not kept by "0 epoll_ctl calls".
    #[test]
    fn an_epoll_set_built_before_attach_is_said_so() {
        let mut wait = SyscallStats::ZERO;
        (wait.calls, wait.watched, wait.ready, wait.useful_wakeups) = (10, 100, 10, 10);
        let v = one_wait_verdict(IoModel::Epoll, SyscallKind::EpollWait, wait);
        assert!(
            v.ends_with("; no epoll_ctl call since attach: the set was built before"),
            "{v}"
        );
    }

    /// An SQPOLL ring reaped by polling makes no io_uring_enter and no
    /// wait: its verdict gives no ratio over either ("0.0 SQEs per
    /// io_uring_enter" before).
    #[test]
    fn an_sqpoll_ring_s_verdict_divides_by_nothing() {
        let u = UringWindow {
            submitted: 9,
            sqpoll_submitted: 9,
            timed: 9,
            ..UringWindow::default()
        };
        let v = uring_verdict(&Window::default(), &u);
        assert_eq!(
            v,
            "0 % of requests punted to io-wq workers; 9 of 9 submissions by the SQ thread, without a syscall"
        );
    }
}
