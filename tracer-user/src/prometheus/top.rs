//! `--prometheus-top N`: bounds a fleet's series (`--all`, `--cgroup`,
//! `--comm`) to N processes with series of their own and one `pid="other"`
//! sum of the rest, so that 300 or 3,000 traced processes cost a Prometheus
//! the same. It chooses and accounts; the parent module writes the text.
//!
//! Every counter stays monotonic: a process's own series are its
//! since-attach totals (they never go down, whether it is shown now or
//! again later), and `other` only ever adds what a process not shown grew
//! by since muxtrace last exported it — under its own labels or in `other` —
//! so nothing is counted twice in a rate, and an exited process's figures
//! stay in it.

use std::collections::{BTreeMap, BTreeSet};

use tracer_model::{Metrics, ProcessMetrics};

use super::{adds_up, samples, write_all, Counts, Row, Samples};

/// Readings a process keeps its own series at least, once given them, before
/// a busier one may take its place: a process that is busy now and then does
/// not flap between its own series and `other`.
pub const MIN_READINGS: u32 = 10;

/// How many times busier than a shown process another must be to take its
/// place: near-equals (300 copies of one service) never trade places.
pub const DISPLACE_FACTOR: u64 = 2;

/// What ranks a process, over the last interval: the on-CPU time the kernel
/// spent inside its wait calls (scanning and copying fd sets: what waiting
/// costs), then its wait calls; ties go to the lower pid.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
pub struct Rank {
    pub on_cpu_ns: u64,
    pub waits: u64,
}

pub fn rank(p: &ProcessMetrics) -> Rank {
    p.syscalls
        .iter()
        .filter(|s| s.syscall.is_wait())
        .fold(Rank::default(), |r, s| Rank {
            on_cpu_ns: r.on_cpu_ns + s.interval.on_cpu_ns,
            waits: r.waits + s.interval.calls,
        })
}

pub struct Top {
    limit: usize,
    /// The processes with series of their own: pid → readings since chosen.
    shown: BTreeMap<u32, u32>,
    /// pid → its samples as last exported, under its own labels or in
    /// `other`.
    seen: BTreeMap<u32, Samples>,
    /// Exited processes' folded entries by name, as last read.
    folded: BTreeMap<String, Samples>,
    /// The sum of everything not shown on its own.
    other: Samples,
}

impl Top {
    pub fn new(limit: u32) -> Top {
        Top {
            limit: limit as usize,
            shown: BTreeMap::new(),
            seen: BTreeMap::new(),
            folded: BTreeMap::new(),
            other: Samples::new(),
        }
    }

    /// The exposition text of one reading, bounded.
    pub fn render(&mut self, metrics: &Metrics) -> String {
        let live: Vec<(u32, Rank)> = metrics
            .processes
            .iter()
            .filter(|p| p.folded == 0 && p.alive)
            .map(|p| (p.pid, rank(p)))
            .collect();
        let current: Vec<(u32, Samples)> = metrics
            .processes
            .iter()
            .filter(|p| p.folded == 0)
            .map(|p| (p.pid, samples(p)))
            .collect();
        // A pid a new process took: the old one is gone, and its place is
        // not the new one's.
        let mut replaced = Vec::new();
        for (pid, now) in &current {
            if self.seen.get(pid).is_some_and(|seen| restarted(seen, now)) {
                replaced.extend(self.seen.remove(pid));
                self.shown.remove(pid);
            }
        }
        self.select(&live);
        self.account(metrics, current, replaced);
        let shown: Vec<&ProcessMetrics> = metrics
            .processes
            .iter()
            .filter(|p| p.folded == 0 && self.shown.contains_key(&p.pid))
            .collect();
        let mut rows: Vec<Row> = shown
            .iter()
            .map(|p| Row::new(&p.pid.to_string(), &p.comm, &self.seen[&p.pid]))
            .collect();
        if !self.other.is_empty() {
            rows.push(Row::new("other", "other", &self.other));
        }
        let counts = Counts {
            own: shown.len(),
            other: live.len().saturating_sub(shown.len()),
            exited: metrics.processes.iter().map(|p| p.folded).sum(),
        };
        write_all(metrics, &rows, &shown, counts)
    }

    /// This reading's shown processes. Exited ones leave; free places go to
    /// the best-ranked others that waited in the interval; then a process
    /// shown for [`MIN_READINGS`] gives way to one [`DISPLACE_FACTOR`] times
    /// busier, weakest first — and any shown process does, to a challenger
    /// [`DISPLACE_FACTOR`] times busier than every shown one.
    fn select(&mut self, live: &[(u32, Rank)]) {
        let ranks: BTreeMap<u32, Rank> = live.iter().copied().collect();
        self.shown.retain(|pid, _| ranks.contains_key(pid));
        for readings in self.shown.values_mut() {
            *readings = readings.saturating_add(1);
        }
        let mut challengers: Vec<(u32, Rank)> = live
            .iter()
            .filter(|(pid, r)| !self.shown.contains_key(pid) && r.waits > 0)
            .copied()
            .collect();
        challengers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut challengers = challengers.into_iter().peekable();
        while self.shown.len() < self.limit {
            let Some((pid, _)) = challengers.next() else {
                break;
            };
            self.shown.insert(pid, 0);
        }
        // A challenger twice as busy as every shown process, by on-CPU time
        // and by wait calls, is news: it need not wait for a shown one's
        // readings to run out. (Both: one interval's on-CPU time alone is
        // noisy — a poller's rare interval reads a whole timeout as on-CPU.)
        let busiest_shown =
            self.shown
                .keys()
                .map(|pid| ranks[pid])
                .fold(Rank::default(), |a, r| Rank {
                    on_cpu_ns: a.on_cpu_ns.max(r.on_cpu_ns),
                    waits: a.waits.max(r.waits),
                });
        let exceptional = challengers.peek().is_some_and(|(_, r)| {
            r.on_cpu_ns > busiest_shown.on_cpu_ns.saturating_mul(DISPLACE_FACTOR)
                && r.waits > busiest_shown.waits.saturating_mul(DISPLACE_FACTOR)
        });
        let mut weakest: Vec<(u32, Rank)> = self
            .shown
            .iter()
            .filter(|(_, readings)| exceptional || **readings >= MIN_READINGS)
            .map(|(pid, _)| (*pid, ranks[pid]))
            .collect();
        weakest.sort_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        for (weak, weak_rank) in weakest {
            let busier = weak_rank.on_cpu_ns.saturating_mul(DISPLACE_FACTOR);
            let Some((pid, _)) = challengers.next_if(|(_, r)| r.on_cpu_ns > busier) else {
                break;
            };
            self.shown.remove(&weak);
            self.shown.insert(pid, 0);
        }
    }

    /// Adds to `other` what each process not shown grew by since it was
    /// last exported, and what exited processes grew by in their last
    /// interval (their folded entries' growth less what was exported of
    /// them already).
    ///
    /// `current`: the samples of every process not folded; `replaced`:
    /// those last exported of processes whose pid a new one took.
    fn account(&mut self, metrics: &Metrics, current: Vec<(u32, Samples)>, replaced: Vec<Samples>) {
        let mut present = BTreeSet::new();
        for (pid, now) in current {
            if !self.shown.contains_key(&pid) {
                add_growth(&mut self.other, &now, self.seen.get(&pid));
            }
            self.seen.insert(pid, now);
            present.insert(pid);
        }
        let mut by_name: BTreeMap<&str, Samples> = BTreeMap::new();
        for p in metrics.processes.iter().filter(|p| p.folded > 0) {
            add_growth(by_name.entry(&p.comm).or_default(), &samples(p), None);
        }
        let mut grown = Samples::new();
        for (name, now) in by_name {
            add_growth(&mut grown, &now, self.folded.get(name));
            self.folded.insert(name.to_owned(), now);
        }
        let gone: Vec<u32> = self
            .seen
            .keys()
            .filter(|pid| !present.contains(pid))
            .copied()
            .collect();
        let gone_samples: Vec<Samples> = gone
            .iter()
            .filter_map(|pid| self.seen.remove(pid))
            .chain(replaced)
            .collect();
        for (key, v) in gone_samples.into_iter().flatten() {
            if let Some(g) = grown.get_mut(&key).filter(|_| adds_up(&key)) {
                *g = g.saturating_sub(v);
            }
        }
        add_growth(&mut self.other, &grown, None);
    }

    #[cfg(test)]
    fn shown(&self) -> Vec<u32> {
        self.shown.keys().copied().collect()
    }
}

/// Whether a pid's counters went down since they were exported: a process's
/// never do, so another process has its pid (the old one exited and is
/// folded; pid_max wrapped, or `--all` sees short-lived processes churn).
/// A new process that made at least as many of every call in its first
/// interval goes unseen: ProcessMetrics carries no start time.
fn restarted(seen: &Samples, now: &Samples) -> bool {
    seen.iter()
        .any(|(key, was)| adds_up(key) && now.get(key).copied().unwrap_or(0) < *was)
}

/// Adds to `into` what `now` grew by since `before` (all of it without
/// one); gauges take the largest value instead.
fn add_growth(into: &mut Samples, now: &Samples, before: Option<&Samples>) {
    for (key, v) in now {
        let slot = into.entry(*key).or_insert(0);
        if adds_up(key) {
            let was = before.and_then(|b| b.get(key)).copied().unwrap_or(0);
            *slot += v.saturating_sub(was);
        } else {
            *slot = (*slot).max(*v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use tracer_common::{bucket, SyscallKind, SyscallStats};
    use tracer_model::{ProcessInfo, ProcessSnap, Snapshot};

    use super::*;

    /// A fleet's readings: each process's poll calls so far, each call 1 µs
    /// on a CPU (so a process's rank is its calls in the interval).
    struct Fleet {
        calls: BTreeMap<u32, u64>,
        exited: BTreeMap<u32, u64>,
        /// Exited processes folded so far (the collector's entry "gone").
        folded: (u64, u64),
        prev: Option<Snapshot>,
        secs: u64,
    }

    fn polls(calls: u64) -> SyscallStats {
        let mut s = SyscallStats::ZERO;
        s.calls = calls;
        s.timeouts = calls;
        s.timed = calls;
        s.wall_ns = 1000 * calls;
        s.on_cpu_ns = 1000 * calls;
        s.hist_wall_ns[bucket(1000)] = calls;
        s
    }

    impl Fleet {
        fn new() -> Fleet {
            Fleet {
                calls: BTreeMap::new(),
                exited: BTreeMap::new(),
                folded: (0, 0),
                prev: None,
                secs: 0,
            }
        }

        /// `pid` made `n` more calls.
        fn add(&mut self, pid: u32, n: u64) {
            *self.calls.entry(pid).or_default() += n;
        }

        /// `pid` exited: this reading shows it dead, the next folds it.
        fn exit(&mut self, pid: u32) {
            let n = self.calls.remove(&pid).unwrap();
            self.exited.insert(pid, n);
        }

        fn reading(&mut self) -> Metrics {
            self.secs += 1;
            let mut snap = Snapshot {
                elapsed: Duration::from_secs(self.secs),
                ..Snapshot::default()
            };
            for (pid, n) in &self.calls {
                snap.processes.insert(
                    *pid,
                    ProcessSnap::new(*pid, b"busy", [(SyscallKind::Poll, polls(*n))]),
                );
            }
            // Dead at this reading; folded (as the collector does) at the next.
            let was_dead: Vec<u32> = self
                .prev
                .iter()
                .flat_map(|s| s.processes.values())
                .filter(|p| !p.info.alive && p.info.folded == 0)
                .map(|p| p.tgid)
                .collect();
            for pid in was_dead {
                let n = self.exited.remove(&pid).unwrap();
                self.folded.0 += 1;
                self.folded.1 += n;
            }
            for (pid, n) in &self.exited {
                let mut p = ProcessSnap::new(*pid, b"busy", [(SyscallKind::Poll, polls(*n))]);
                p.info.alive = false;
                snap.processes.insert(*pid, p);
            }
            if self.folded.0 > 0 {
                snap.processes.insert(
                    1 << 30,
                    ProcessSnap {
                        tgid: 1 << 30,
                        info: ProcessInfo {
                            comm: b"busy".to_vec(),
                            folded: self.folded.0,
                            ..ProcessInfo::default()
                        },
                        syscalls: [(SyscallKind::Poll, polls(self.folded.1))].into(),
                        uring: BTreeMap::new(),
                        exited_threads: None,
                    },
                );
            }
            let m = tracer_model::compute(self.prev.as_ref(), &snap);
            self.prev = Some(snap);
            m
        }

        /// Every call made so far, by live and exited processes.
        fn total(&self) -> u64 {
            self.calls.values().sum::<u64>() + self.exited.values().sum::<u64>() + self.folded.1
        }
    }

    /// The samples of one family: `{labels} value`, by labels.
    fn series(text: &str, family: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter_map(|l| l.strip_prefix(family)?.strip_prefix('{'))
            .map(|l| {
                let (labels, v) = l.rsplit_once("} ").unwrap();
                (labels.to_owned(), v.parse().unwrap())
            })
            .collect()
    }

    fn pids(text: &str) -> BTreeSet<String> {
        series(text, "muxtrace_syscalls_total")
            .keys()
            .map(|l| l.split('"').nth(1).unwrap().to_owned())
            .collect()
    }

    #[test]
    fn thirty_processes_give_five_of_their_own_and_other() {
        let mut fleet = Fleet::new();
        for pid in 100..130 {
            fleet.add(pid, u64::from(pid));
        }
        let mut top = Top::new(5);
        let text = top.render(&fleet.reading());
        // The busiest five: the most calls, the most on-CPU time.
        let want: BTreeSet<String> = ["125", "126", "127", "128", "129", "other"]
            .map(String::from)
            .into();
        assert_eq!(pids(&text), want, "{text}");
        let calls = series(&text, "muxtrace_syscalls_total");
        let other = calls["pid=\"other\",comm=\"other\",syscall=\"poll\""];
        assert_eq!(other, (100..125).sum::<u32>() as f64);
        assert_eq!(calls.values().sum::<f64>(), fleet.total() as f64);
        assert!(
            text.contains("muxtrace_traced_processes{series=\"own\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("muxtrace_traced_processes{series=\"other\"} 25\n"),
            "{text}"
        );
        // Histograms of other are sums of buckets.
        assert!(text.contains("muxtrace_syscall_duration_seconds_count{pid=\"other\",comm=\"other\",syscall=\"poll\"} 2800\n"), "{text}");
        // Gauges of a process: only for those shown.
        assert_eq!(text.matches("muxtrace_process_alive{").count(), 5, "{text}");
    }

    #[test]
    fn near_equals_never_trade_places_and_a_busier_one_waits_its_turn() {
        let mut fleet = Fleet::new();
        let mut top = Top::new(2);
        for pid in [1, 2, 3] {
            fleet.add(pid, 100);
        }
        top.render(&fleet.reading());
        assert_eq!(top.shown(), [1, 2]);
        // pid 3 is 1.9 times as busy for long: not enough.
        for _ in 0..3 * MIN_READINGS {
            fleet.add(1, 100);
            fleet.add(2, 100);
            fleet.add(3, 190);
            top.render(&fleet.reading());
            assert_eq!(top.shown(), [1, 2]);
        }
        // A newcomer ten times as busy takes the weaker place at once
        // (both have been shown long enough), and stays while idle.
        fleet.add(1, 100);
        fleet.add(2, 90);
        fleet.add(4, 1000);
        top.render(&fleet.reading());
        assert_eq!(top.shown(), [1, 4]);
        for _ in 1..MIN_READINGS {
            fleet.add(1, 100);
            fleet.add(2, 100);
            top.render(&fleet.reading());
            assert_eq!(top.shown(), [1, 4]);
        }
        fleet.add(1, 100);
        fleet.add(2, 100);
        top.render(&fleet.reading());
        assert_eq!(top.shown(), [1, 2]);
        // pid 2 was shown one reading ago, but pid 5 is busier than every
        // shown process by far: it need not wait.
        fleet.add(1, 100);
        fleet.add(2, 100);
        fleet.add(5, 5000);
        top.render(&fleet.reading());
        assert_eq!(top.shown(), [1, 5]);
    }

    #[test]
    fn an_exit_frees_a_place_and_its_figures_stay_in_other() {
        let mut fleet = Fleet::new();
        let mut top = Top::new(1);
        fleet.add(1, 50);
        fleet.add(2, 10);
        top.render(&fleet.reading());
        assert_eq!(top.shown(), [1]);
        // pid 1's last calls, then its exit; then it is folded.
        fleet.add(1, 7);
        fleet.exit(1);
        fleet.add(2, 10);
        let text = top.render(&fleet.reading());
        assert_eq!(top.shown(), [2]);
        let calls = series(&text, "muxtrace_syscalls_total");
        assert_eq!(calls["pid=\"2\",comm=\"busy\",syscall=\"poll\""], 20.0);
        // pid 2's first 10 while it was not shown, pid 1's last 7.
        assert_eq!(calls["pid=\"other\",comm=\"other\",syscall=\"poll\""], 17.0);
        fleet.add(2, 10);
        let text = top.render(&fleet.reading());
        let calls = series(&text, "muxtrace_syscalls_total");
        // Folded now: nothing of pid 1 counted twice.
        assert_eq!(calls["pid=\"other\",comm=\"other\",syscall=\"poll\""], 17.0);
        assert!(
            text.contains("muxtrace_exited_processes_total 1\n"),
            "{text}"
        );
    }

    /// A pid an exited process had, taken by a new one: the old one's
    /// figures are in its folded entry, the new one's counted from zero,
    /// nothing of either twice.
    #[test]
    fn a_reused_pid_is_a_new_process() {
        let other = "pid=\"other\",comm=\"other\",syscall=\"poll\"";
        let mut fleet = Fleet::new();
        let mut top = Top::new(1);
        fleet.add(7, 100);
        fleet.add(8, 1000);
        top.render(&fleet.reading());
        assert_eq!(top.shown(), [8]);
        fleet.exit(7);
        fleet.add(8, 1000);
        top.render(&fleet.reading());
        // Folded now, and a new process has pid 7.
        fleet.add(7, 5);
        fleet.add(8, 1000);
        let text = top.render(&fleet.reading());
        assert_eq!(top.shown(), [8]);
        let calls = series(&text, "muxtrace_syscalls_total");
        assert_eq!(calls[other], 105.0, "{text}");
        assert_eq!(calls.values().sum::<f64>(), fleet.total() as f64);
        // Shown, a reused pid's series start again from the new process's,
        // and the old one's, exported under the pid, are not added to other.
        let mut fleet = Fleet::new();
        let mut top = Top::new(1);
        fleet.add(7, 100);
        top.render(&fleet.reading());
        fleet.exit(7);
        top.render(&fleet.reading());
        fleet.add(7, 5);
        let text = top.render(&fleet.reading());
        assert_eq!(top.shown(), [7]);
        let calls = series(&text, "muxtrace_syscalls_total");
        assert_eq!(calls["pid=\"7\",comm=\"busy\",syscall=\"poll\""], 5.0);
        assert_eq!(calls.get(other).copied().unwrap_or(0.0), 0.0, "{text}");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// One interval: calls per process (0..8 of them), and exits.
        fn step() -> impl Strategy<Value = (Vec<(u32, u64)>, Vec<u32>)> {
            (
                prop::collection::vec(
                    (0u32..8, prop_oneof![Just(0u64), 1u64..50, 100u64..5000]),
                    0..10,
                ),
                prop::collection::vec(0u32..8, 0..2),
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Whatever the fleet does — processes busy or idle in turns,
            /// exiting — no series ever goes down, at most
            /// `limit` pids and `other` have series, and a process's own
            /// series are exactly its totals.
            #[test]
            fn counters_only_grow_and_the_bound_holds(limit in 1u32..4, steps in prop::collection::vec(step(), 1..40)) {
                let mut fleet = Fleet::new();
                let mut top = Top::new(limit);
                let mut last: BTreeMap<String, f64> = BTreeMap::new();
                // Pids come back only after pid_max wraps: not in a test.
                let mut retired = BTreeSet::new();
                for (calls, exits) in steps {
                    for (pid, n) in calls {
                        if !retired.contains(&pid) {
                            fleet.add(100 + pid, n);
                        }
                    }
                    for pid in exits {
                        if fleet.calls.contains_key(&(100 + pid)) {
                            fleet.exit(100 + pid);
                            retired.insert(pid);
                        }
                    }
                    let text = top.render(&fleet.reading());
                    prop_assert!(pids(&text).len() <= limit as usize + 1);
                    for family in ["muxtrace_syscalls_total", "muxtrace_syscall_seconds_total", "muxtrace_syscall_duration_seconds_bucket"] {
                        for (labels, v) in series(&text, family) {
                            let key = format!("{family}{labels}");
                            if let Some(before) = last.get(&key) {
                                prop_assert!(v >= *before, "{key} went from {before} to {v}");
                            }
                            last.insert(key, v);
                        }
                    }
                    for (labels, v) in series(&text, "muxtrace_syscalls_total") {
                        let pid = labels.split('"').nth(1).unwrap();
                        if pid == "other" {
                            prop_assert!(v <= fleet.total() as f64);
                        } else {
                            prop_assert_eq!(v, fleet.calls[&pid.parse().unwrap()] as f64);
                        }
                    }
                }
            }
        }
    }
}
