//! The top view's figures and ranking: per process, what its waits cost in
//! the last interval, and the processes in the order the chosen column
//! ranks them. Pure, from [`Metrics`]; drawing is in `view/top.rs`.

use std::cmp::Ordering;

use tracer_model::{Metrics, ProcessMetrics};

/// The column the top view ranks by (`s` cycles in that view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopRank {
    WaitCalls,
    Unready,
    WaitCpu,
    EmptyWakeups,
    Stalls,
}

impl TopRank {
    pub const ALL: [TopRank; 5] = [
        TopRank::WaitCalls,
        TopRank::Unready,
        TopRank::WaitCpu,
        TopRank::EmptyWakeups,
        TopRank::Stalls,
    ];

    /// The column's header.
    pub fn label(self) -> &'static str {
        match self {
            TopRank::WaitCalls => "wait/s",
            TopRank::Unready => "unready/s",
            TopRank::WaitCpu => "on-CPU",
            TopRank::EmptyWakeups => "empty/s",
            TopRank::Stalls => "stalls",
        }
    }

    /// What the column counts, in one line of at most 80 columns with its
    /// label, for the view's legend.
    pub fn meaning(self) -> &'static str {
        match self {
            TopRank::WaitCalls => "select, poll, epoll and io_uring waits per second",
            TopRank::Unready => {
                "fds select/poll scanned and found not ready, per second (epoll: none)"
            }
            TopRank::WaitCpu => "CPU time inside wait calls (scanning, copying), % of one core",
            TopRank::EmptyWakeups => {
                "receives that found nothing after a wait said ready, per second"
            }
            TopRank::Stalls => {
                "loop iterations over --stall since attach; this interval's rank first"
            }
        }
    }

    pub fn next(self) -> TopRank {
        let i = TopRank::ALL.iter().position(|r| *r == self).unwrap_or(0);
        TopRank::ALL[(i + 1) % TopRank::ALL.len()]
    }
}

/// One process's row, from the last interval unless said otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopFigures {
    /// Wait calls (select, poll, epoll, io_uring waits) per second.
    pub wait_calls_per_sec: f64,
    /// fds select and poll examined and found not ready, per second
    /// (watched − ready: what DESIGN.md calls scan work, minus the ready).
    /// epoll's scan work is its ready fds, so it adds nothing here.
    pub unready_per_sec: f64,
    /// CPU time spent inside wait calls, as a share of one core.
    pub wait_cpu_share: f64,
    /// Receives that returned EAGAIN after a wait reported ready, per second.
    pub empty_per_sec: f64,
    /// Stalls in the interval, and since attach.
    pub stalls: u64,
    pub stalls_total: u64,
    /// Whether the process made any wait call since attach: without one the
    /// wait figures are `-`, not 0.
    pub waits: bool,
}

fn per_sec(n: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n / seconds
    } else {
        0.0
    }
}

impl TopFigures {
    pub fn of(p: &ProcessMetrics) -> TopFigures {
        let secs = p.interval.seconds;
        let (mut calls, mut unready, mut on_cpu) = (0u64, 0u64, 0u64);
        let mut waits = false;
        for s in p.syscalls.iter().filter(|s| s.syscall.is_wait()) {
            waits |= s.total.calls > 0;
            let w = &s.interval;
            calls += w.calls;
            on_cpu += w.on_cpu_ns;
            if s.syscall.is_select() || s.syscall.is_poll() {
                unready += w.scanned.saturating_sub(w.ready);
            }
        }
        TopFigures {
            wait_calls_per_sec: per_sec(calls as f64, secs),
            unready_per_sec: per_sec(unready as f64, secs),
            wait_cpu_share: per_sec(on_cpu as f64 / 1e9, secs),
            empty_per_sec: per_sec(p.interval.empty_wakeups as f64, secs),
            stalls: p.interval.stalls,
            stalls_total: p.total.stalls,
            waits,
        }
    }

    /// The figure `rank` orders by; stalls by the interval's, then by the
    /// total (the total alone would keep an old stall on top for ever).
    fn key(&self, rank: TopRank) -> (f64, f64) {
        match rank {
            TopRank::WaitCalls => (self.wait_calls_per_sec, 0.0),
            TopRank::Unready => (self.unready_per_sec, 0.0),
            TopRank::WaitCpu => (self.wait_cpu_share, 0.0),
            TopRank::EmptyWakeups => (self.empty_per_sec, 0.0),
            TopRank::Stalls => (self.stalls as f64, self.stalls_total as f64),
        }
    }
}

/// Indices into `m.processes`, ranked: living processes first, each part by
/// `rank`'s figure, highest first; ties by pid, so rows do not swap places
/// between two equal readings.
pub fn ranked(m: &Metrics, rank: TopRank) -> Vec<usize> {
    let keys: Vec<(f64, f64)> = m
        .processes
        .iter()
        .map(|p| TopFigures::of(p).key(rank))
        .collect();
    let mut order: Vec<usize> = (0..m.processes.len()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&m.processes[a], &m.processes[b]);
        pb.alive
            .cmp(&pa.alive)
            .then_with(|| {
                let (ka, kb) = (keys[a], keys[b]);
                kb.0.partial_cmp(&ka.0)
                    .unwrap_or(Ordering::Equal)
                    .then(kb.1.partial_cmp(&ka.1).unwrap_or(Ordering::Equal))
            })
            .then(pa.pid.cmp(&pb.pid))
            .then(a.cmp(&b))
    });
    order
}

/// `order` with each exited copy (`copies`: pids still listed a while after
/// the collector folded them into their name's entry) moved right below its
/// name's folded row, as one of the processes that row sums — not a second
/// listing of the same process among the others.
pub fn under_their_folded_rows(m: &Metrics, order: Vec<usize>, copies: &[u32]) -> Vec<usize> {
    let is_copy = |i: usize| {
        let p = &m.processes[i];
        p.folded == 0 && copies.contains(&p.pid)
    };
    let folded_row_of = |comm: &str| {
        m.processes
            .iter()
            .position(|p| p.folded > 0 && p.comm == comm)
    };
    let (members, rest): (Vec<usize>, Vec<usize>) = order
        .into_iter()
        .partition(|&i| is_copy(i) && folded_row_of(&m.processes[i].comm).is_some());
    let mut out = Vec::with_capacity(members.len() + rest.len());
    for i in rest {
        out.push(i);
        if m.processes[i].folded > 0 {
            out.extend(
                members
                    .iter()
                    .filter(|&&c| folded_row_of(&m.processes[c].comm) == Some(i)),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::fixtures;

    fn comms(m: &Metrics, rank: TopRank) -> Vec<&str> {
        ranked(m, rank)
            .into_iter()
            .map(|i| m.processes[i].comm.as_str())
            .collect()
    }

    #[test]
    fn figures_come_from_the_wait_calls() {
        let m = fixtures::one_poll_server();
        let p = &m.processes[0];
        let f = TopFigures::of(p);
        let poll = p.syscalls.iter().find(|s| s.syscall.is_poll()).unwrap();
        assert_eq!(f.wait_calls_per_sec, poll.interval.calls_per_sec);
        let unready = (poll.interval.scanned - poll.interval.ready) as f64;
        assert_eq!(f.unready_per_sec, unready / p.interval.seconds);
        assert!(f.unready_per_sec > 0.0 && f.waits);
        let on_cpu = poll.interval.on_cpu_ns as f64 / 1e9 / p.interval.seconds;
        assert!((f.wait_cpu_share - on_cpu).abs() < 1e-12);
        assert!(
            f.wait_cpu_share < p.interval.on_cpu_ns as f64 / 1e9,
            "receives and sends are not waits"
        );
    }

    #[test]
    fn epoll_scans_nothing_it_does_not_return_and_blocking_waits_not_at_all() {
        let m = fixtures::four_servers();
        let by = |comm: &str| TopFigures::of(m.processes.iter().find(|p| p.comm == comm).unwrap());
        assert_eq!(by("echo-epoll").unready_per_sec, 0.0);
        assert!(by("echo-epoll").waits);
        assert!(by("echo-select").unready_per_sec > 0.0);
        assert!(!by("echo-blocking").waits);
        assert_eq!(by("echo-blocking").wait_calls_per_sec, 0.0);
    }

    #[test]
    fn ranking_orders_by_the_chosen_column() {
        let m = fixtures::top_fleet();
        assert_eq!(
            comms(&m, TopRank::WaitCalls)[..4],
            ["echo-poll", "echo-select", "echo-epoll", "redis-server"]
        );
        for rank in TopRank::ALL {
            let order = ranked(&m, rank);
            let keys: Vec<_> = order
                .iter()
                .map(|&i| &m.processes[i])
                .filter(|p| p.alive)
                .map(|p| TopFigures::of(p).key(rank))
                .collect();
            assert!(keys.windows(2).all(|w| w[0] >= w[1]), "{rank:?}: {keys:?}");
        }
        assert_eq!(
            comms(&m, TopRank::Unready)[..2],
            ["echo-poll", "echo-select"]
        );
        assert_eq!(comms(&m, TopRank::EmptyWakeups)[0], "redis-server");
        assert_eq!(comms(&m, TopRank::Stalls)[0], "node", "stalling now");
    }

    #[test]
    fn exited_processes_go_last_whatever_their_figures() {
        let m = fixtures::top_fleet();
        for rank in TopRank::ALL {
            let order = ranked(&m, rank);
            let alive: Vec<bool> = order.iter().map(|&i| m.processes[i].alive).collect();
            let first_dead = alive.iter().position(|a| !a).unwrap();
            assert!(alive[first_dead..].iter().all(|a| !a), "{rank:?}");
        }
    }

    /// Each word against the figures it stands for, in the same reading.
    #[test]
    fn the_one_word_verdicts_agree_with_the_figures() {
        let m = fixtures::top_fleet();
        let word = |comm: &str, alive: bool| {
            let p = m
                .processes
                .iter()
                .find(|p| p.comm == comm && p.alive == alive)
                .unwrap();
            (tracer_model::word(p), p)
        };
        let (w, p) = word("echo-poll", true);
        assert_eq!(w, "scanning");
        assert!(p.interval.efficiency < 0.5, "{}", p.interval.efficiency);
        // Two of three fds not ready is no reason to move to epoll.
        let small = fixtures::small_poll_set();
        let tmux = &small.processes[0];
        assert!(
            tmux.interval.efficiency < 0.5,
            "{}",
            tmux.interval.efficiency
        );
        assert_eq!(tracer_model::word(tmux), "ok");
        let (w, p) = word("redis-server", true);
        assert_eq!(w, "saturated");
        assert!(p.loop_busy_share.unwrap() >= tracer_model::SATURATED);
        let (w, p) = word("node", true);
        assert_eq!(w, "stalling");
        assert!(p.interval.stalls > 0);
        let (w, p) = word("echo-epoll", true);
        assert_eq!(w, "ok");
        assert!(p.interval.stalls == 0 && p.loop_busy_share.unwrap() < 0.9);
        // The same loop with every wait a zero timeout, nearly all empty,
        // never sleeps, though its busy share is low.
        let mut spinner = p.clone();
        let waits = spinner.syscalls[0].interval.calls;
        assert!(spinner.syscalls[0].syscall.is_wait());
        assert!(waits >= tracer_model::BUSY_POLLING_MIN_WAITS, "{waits}");
        spinner.interval.zero_timeouts = waits;
        spinner.interval.timeouts = waits * 9 / 10;
        assert_eq!(tracer_model::word(&spinner), "spinning");
        let (w, p) = word("chronyd", true);
        assert_eq!(w, "quiet");
        assert_eq!(p.interval.calls, 0);
        assert_eq!(word("sshd", true).0, "idle");
        assert_eq!(word("echo-poll", false).0, "exited");
        assert_eq!(word("worker", false).0, "exited");
        // What JSON and Prometheus may say is the same set, every word in it.
        let mut said: std::collections::BTreeSet<&str> =
            m.processes.iter().map(tracer_model::word).collect();
        said.insert(tracer_model::word(&spinner));
        let states = std::collections::BTreeSet::from(tracer_model::STATES);
        assert_eq!(said, states);
    }

    /// A loop busy all the time that made no wait is blocked elsewhere (a
    /// shell in wait4), not saturated.
    #[test]
    fn busy_without_waiting_is_not_saturated() {
        let m = fixtures::top_fleet();
        let mut p = m
            .processes
            .iter()
            .find(|p| p.comm == "redis-server")
            .unwrap()
            .clone();
        for s in &mut p.syscalls {
            s.interval.calls = 0;
        }
        p.interval.calls = 0;
        assert_eq!(tracer_model::word(&p), "quiet");
    }

    #[test]
    fn rank_cycles_through_every_column() {
        let mut r = TopRank::WaitCalls;
        for _ in 0..TopRank::ALL.len() {
            r = r.next();
        }
        assert_eq!(r, TopRank::WaitCalls);
        for r in TopRank::ALL {
            assert!(r.label().len() + 2 + r.meaning().len() <= 80, "{r:?}");
        }
    }
}
