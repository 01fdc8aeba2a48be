//! The metrics model: two snapshots in, [`Metrics`] out. Pure — no I/O, no
//! clock — so every rate, ratio and percentile is unit-tested with hand-made
//! snapshots. Definitions follow ../shared/DESIGN.md ("Metrics — definitions").

use std::collections::BTreeMap;

use serde::Serialize;
use tracer_common::{
    bucket_high, bucket_low, ErrnoClass, Hist, Stat, SyscallKind, SyscallStats, HIST_BUCKETS,
};

use crate::{
    snapshot::{ProcessSnap, Snapshot},
    targets::display_comm,
};

/// Everything the sinks show, for one interval and the run so far.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Seconds since attach.
    pub elapsed_s: f64,
    /// Length of the interval the `interval` windows cover.
    pub interval_s: f64,
    pub processes: Vec<ProcessMetrics>,
    /// Non-zero loss/failure counters: name → count since attach.
    pub losses: BTreeMap<String, u64>,
    /// muxtrace's own kernel-side cost, when the kernel reports it.
    pub cost: Option<Cost>,
    /// Entries in each bounded kernel map now: stats, threads, epoll, traced.
    pub map_entries: BTreeMap<String, u64>,
}

/// Measured while the kernel's accounting is on: 100 ms samples, one per
/// interval (keeping it on all the time would itself cost ~10 %).
#[derive(Debug, Clone, Serialize)]
pub struct Cost {
    /// Run time of all our programs during the samples, ns.
    pub run_time_ns: u64,
    /// Program runs during the samples.
    pub run_count: u64,
    /// Total length of the samples, s.
    pub sampled_s: f64,
    /// Average ns per program run.
    pub ns_per_run: f64,
    /// Share of one CPU our programs used while sampled (the latest sample,
    /// or all samples when none ended in this interval), percent.
    pub cpu_percent: f64,
}

/// The I/O model a process uses, from the calls it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoModel {
    Select,
    Poll,
    Epoll,
    /// Receives and sends but never waits for readiness: blocking I/O.
    Blocking,
    Unknown,
}

impl IoModel {
    pub fn name(self) -> &'static str {
        match self {
            IoModel::Select => "select",
            IoModel::Poll => "poll",
            IoModel::Epoll => "epoll",
            IoModel::Blocking => "blocking",
            IoModel::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ProcessMetrics {
    pub pid: u32,
    /// Process name; bytes that are not UTF-8 become U+FFFD.
    pub comm: String,
    pub alive: bool,
    pub model: IoModel,
    pub syscalls: Vec<SyscallMetrics>,
    /// All syscalls of the process together.
    pub total: Window,
    pub interval: Window,
    pub threads: Vec<ThreadMetrics>,
    /// epoll fd → registered fds.
    pub epoll_interest: BTreeMap<u32, u64>,
    /// fd class (socket, pipe, file, eventfd, epoll, …) → open fds.
    pub fd_classes: BTreeMap<String, u32>,
    /// One sentence on what waiting costs this process, with its numbers.
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyscallMetrics {
    pub syscall: &'static str,
    /// Since attach.
    pub total: Window,
    /// During the last interval.
    pub interval: Window,
}

#[derive(Debug, Clone, Serialize)]
pub struct ThreadMetrics {
    pub tid: u32,
    pub calls: u64,
    pub wait_calls: u64,
    pub wakeups: u64,
    pub wall_ns: u64,
    pub off_cpu_ns: u64,
    pub on_cpu_ns: u64,
    /// Calls per second during the interval (0 for a thread new this interval).
    pub calls_per_sec: f64,
}

/// Counts over a span of time (the whole run or one interval) and what
/// follows from them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Window {
    pub seconds: f64,
    pub calls: u64,
    pub errors: u64,
    pub eintr: u64,
    pub ebadf: u64,
    pub einval: u64,
    pub eagain: u64,
    pub other_errors: u64,
    pub timeouts: u64,
    pub ready: u64,
    pub useful_wakeups: u64,
    pub sched_wakeups: u64,
    pub empty_wakeups: u64,
    pub herd_wakeups: u64,
    pub zero_timeouts: u64,
    pub infinite_timeouts: u64,
    pub wall_ns: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
    pub watched: u64,
    pub size_arg: u64,
    pub scanned: u64,
    pub bookkeeping_in_bytes: u64,
    pub bookkeeping_out_bytes: u64,
    pub payload_bytes: u64,
    pub payload_socket_bytes: u64,
    /// Receive calls that returned data (a proxy for messages served).
    pub receives_with_data: u64,
    pub calls_per_sec: f64,
    pub ready_per_sec: f64,
    /// Returns from wait calls per second (ready, timeout or EINTR).
    pub wakeups_per_sec: f64,
    pub bookkeeping_bytes_per_sec: f64,
    pub payload_bytes_per_sec: f64,
    pub watched_avg: f64,
    pub watched_p99: f64,
    pub size_arg_avg: f64,
    /// Ready fds per wait call that returned (timeouts count as 0).
    pub ready_avg: f64,
    /// ready / scanned.
    pub efficiency: f64,
    pub timeout_share: f64,
    pub eintr_share: f64,
    pub wall_p50_ns: f64,
    pub wall_p99_ns: f64,
    pub on_cpu_ns_per_call: f64,
    /// on-CPU / wall.
    pub on_cpu_share: f64,
    pub on_cpu_ns_per_ready: f64,
    pub bookkeeping_bytes_per_ready: f64,
    /// All traced calls per receive that returned data.
    pub syscalls_per_receive: f64,
    #[serde(skip)]
    pub hists: Hists,
}

/// The log2 histograms behind the percentiles (see tracer_common::HIST_BUCKETS).
#[derive(Debug, Clone)]
pub struct Hists {
    pub wall_ns: Hist,
    pub on_cpu_ns: Hist,
    pub watched: Hist,
    pub ready: Hist,
    pub timeout_us: Hist,
    pub payload: Hist,
}

impl Default for Hists {
    fn default() -> Self {
        Hists {
            wall_ns: [0; HIST_BUCKETS],
            on_cpu_ns: [0; HIST_BUCKETS],
            watched: [0; HIST_BUCKETS],
            ready: [0; HIST_BUCKETS],
            timeout_us: [0; HIST_BUCKETS],
            payload: [0; HIST_BUCKETS],
        }
    }
}

/// `cur - prev`, field by field; a counter that went backwards (a reset, a
/// reused key) yields the current value rather than a huge wrap.
fn delta(cur: &SyscallStats, prev: Option<&SyscallStats>) -> SyscallStats {
    let Some(prev) = prev else { return *cur };
    if cur.calls < prev.calls {
        return *cur;
    }
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let mut out = *cur;
    out.calls = d(cur.calls, prev.calls);
    out.errors = d(cur.errors, prev.errors);
    for i in 0..out.errno.len() {
        out.errno[i] = d(cur.errno[i], prev.errno[i]);
    }
    out.timeouts = d(cur.timeouts, prev.timeouts);
    out.ready = d(cur.ready, prev.ready);
    out.useful_wakeups = d(cur.useful_wakeups, prev.useful_wakeups);
    out.sched_wakeups = d(cur.sched_wakeups, prev.sched_wakeups);
    out.wall_ns = d(cur.wall_ns, prev.wall_ns);
    out.off_cpu_ns = d(cur.off_cpu_ns, prev.off_cpu_ns);
    out.watched = d(cur.watched, prev.watched);
    out.size_arg = d(cur.size_arg, prev.size_arg);
    out.scanned = d(cur.scanned, prev.scanned);
    out.bookkeeping_in = d(cur.bookkeeping_in, prev.bookkeeping_in);
    out.bookkeeping_out = d(cur.bookkeeping_out, prev.bookkeeping_out);
    out.payload_bytes = d(cur.payload_bytes, prev.payload_bytes);
    out.payload_socket_bytes = d(cur.payload_socket_bytes, prev.payload_socket_bytes);
    out.empty_wakeups = d(cur.empty_wakeups, prev.empty_wakeups);
    out.herd_wakeups = d(cur.herd_wakeups, prev.herd_wakeups);
    out.zero_timeouts = d(cur.zero_timeouts, prev.zero_timeouts);
    out.infinite_timeouts = d(cur.infinite_timeouts, prev.infinite_timeouts);
    for (o, (c, p)) in [
        (
            &mut out.hist_wall_ns,
            (&cur.hist_wall_ns, &prev.hist_wall_ns),
        ),
        (
            &mut out.hist_on_cpu_ns,
            (&cur.hist_on_cpu_ns, &prev.hist_on_cpu_ns),
        ),
        (
            &mut out.hist_watched,
            (&cur.hist_watched, &prev.hist_watched),
        ),
        (&mut out.hist_ready, (&cur.hist_ready, &prev.hist_ready)),
        (
            &mut out.hist_timeout_us,
            (&cur.hist_timeout_us, &prev.hist_timeout_us),
        ),
        (
            &mut out.hist_payload,
            (&cur.hist_payload, &prev.hist_payload),
        ),
    ] {
        for i in 0..HIST_BUCKETS {
            o[i] = d(c[i], p[i]);
        }
    }
    out
}

/// The snapshot as if counting had started at `base` (the dashboard's reset).
/// Thread and cost figures keep counting from attach.
pub fn rebase(cur: &Snapshot, base: &Snapshot) -> Snapshot {
    let mut out = cur.clone();
    out.elapsed = cur.elapsed.saturating_sub(base.elapsed);
    for (tgid, p) in out.processes.iter_mut() {
        let Some(bp) = base.processes.get(tgid) else {
            continue;
        };
        for (kind, stats) in p.syscalls.iter_mut() {
            *stats = delta(stats, bp.syscalls.get(kind));
        }
    }
    out
}

/// The value below which a fraction `q` of the samples fall, interpolated
/// linearly inside the log2 bucket (so within a factor of 2 of the truth;
/// averages, by contrast, are exact).
pub fn percentile(hist: &Hist, q: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0u64;
    for (b, &n) in hist.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            if b == 0 {
                return 0.0;
            }
            let low = bucket_low(b) as f64;
            let high = if b == HIST_BUCKETS - 1 {
                low * 2.0
            } else {
                bucket_high(b) as f64
            };
            // The sample's position inside the bucket, mid-rank, so a single
            // sample lands mid-bucket rather than on its edge.
            let within = ((rank - seen as f64 - 0.5) / n as f64).clamp(0.0, 1.0);
            return low + (high - low) * within;
        }
        seen += n;
    }
    0.0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

impl Window {
    fn add(&mut self, s: &SyscallStats, kind: SyscallKind) {
        self.calls += s.calls;
        self.errors += s.errors;
        self.eintr += s.errno[ErrnoClass::Eintr as usize];
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
        self.wall_ns += s.wall_ns;
        let off = s.off_cpu_ns.min(s.wall_ns);
        self.off_cpu_ns += off;
        self.on_cpu_ns += s.wall_ns - off;
        self.watched += s.watched;
        self.size_arg += s.size_arg;
        self.scanned += s.scanned;
        self.bookkeeping_in_bytes += s.bookkeeping_in;
        self.bookkeeping_out_bytes += s.bookkeeping_out;
        self.payload_bytes += s.payload_bytes;
        self.payload_socket_bytes += s.payload_socket_bytes;
        if kind.is_receive() {
            // Calls that returned > 0 bytes: all payload-histogram samples
            // except bucket 0 (0 bytes, EOF).
            self.receives_with_data += s.hist_payload[1..].iter().sum::<u64>();
        }
        for (a, b) in [
            (&mut self.hists.wall_ns, &s.hist_wall_ns),
            (&mut self.hists.on_cpu_ns, &s.hist_on_cpu_ns),
            (&mut self.hists.watched, &s.hist_watched),
            (&mut self.hists.ready, &s.hist_ready),
            (&mut self.hists.timeout_us, &s.hist_timeout_us),
            (&mut self.hists.payload, &s.hist_payload),
        ] {
            for i in 0..HIST_BUCKETS {
                a[i] += b[i];
            }
        }
    }

    /// Fills the derived fields. `wait_calls` and `wait_on_cpu_ns` are those of
    /// the wait calls in the window (the whole process's for process windows).
    fn derive(&mut self, seconds: f64, waits: &WaitPart) {
        self.seconds = seconds;
        let per_sec = |v: u64| ratio(v as f64, seconds);
        self.calls_per_sec = per_sec(self.calls);
        self.ready_per_sec = per_sec(self.ready);
        self.wakeups_per_sec = per_sec(waits.returns);
        self.bookkeeping_bytes_per_sec =
            per_sec(self.bookkeeping_in_bytes + self.bookkeeping_out_bytes);
        self.payload_bytes_per_sec = per_sec(self.payload_bytes);
        // Waits the kernel refused watched nothing; interrupted ones did.
        self.watched_avg = ratio(self.watched as f64, waits.returns as f64);
        self.watched_p99 = percentile(&self.hists.watched, 0.99);
        self.size_arg_avg = ratio(self.size_arg as f64, waits.returns as f64);
        self.ready_avg = ratio(self.ready as f64, waits.returns_ok as f64);
        self.efficiency = ratio(self.ready as f64, self.scanned as f64);
        self.timeout_share = ratio(self.timeouts as f64, waits.calls as f64);
        self.eintr_share = ratio(self.eintr as f64, self.calls as f64);
        self.wall_p50_ns = percentile(&self.hists.wall_ns, 0.50);
        self.wall_p99_ns = percentile(&self.hists.wall_ns, 0.99);
        self.on_cpu_ns_per_call = ratio(self.on_cpu_ns as f64, self.calls as f64);
        self.on_cpu_share = ratio(self.on_cpu_ns as f64, self.wall_ns as f64);
        self.on_cpu_ns_per_ready = ratio(waits.on_cpu_ns as f64, self.ready as f64);
        self.bookkeeping_bytes_per_ready = ratio(
            (self.bookkeeping_in_bytes + self.bookkeeping_out_bytes) as f64,
            self.ready as f64,
        );
        self.syscalls_per_receive = ratio(self.calls as f64, self.receives_with_data as f64);
    }
}

/// The wait calls' share of a window, needed for per-wait averages.
#[derive(Default)]
struct WaitPart {
    calls: u64,
    /// Returns that were not errors (ready or timeout).
    returns_ok: u64,
    /// Returns of any kind that woke the caller: ready, timeout, EINTR.
    returns: u64,
    on_cpu_ns: u64,
}

impl WaitPart {
    fn add(&mut self, s: &SyscallStats, kind: SyscallKind) {
        if !kind.is_wait() {
            return;
        }
        self.calls += s.calls;
        self.returns_ok += s.useful_wakeups + s.timeouts;
        self.returns += s.useful_wakeups + s.timeouts + s.errno[ErrnoClass::Eintr as usize];
        self.on_cpu_ns += s.wall_ns - s.off_cpu_ns.min(s.wall_ns);
    }
}

fn window(stats: &[(SyscallKind, SyscallStats)], seconds: f64) -> Window {
    let mut w = Window::default();
    let mut waits = WaitPart::default();
    for (kind, s) in stats {
        w.add(s, *kind);
        waits.add(s, *kind);
    }
    w.derive(seconds, &waits);
    w
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
    let cost = cur.cost.map(|c| {
        let before = prev.and_then(|p| p.cost).unwrap_or_default();
        let (used, sampled) = if c.sampled_ns > before.sampled_ns {
            (
                c.run_time_ns.saturating_sub(before.run_time_ns),
                c.sampled_ns - before.sampled_ns,
            )
        } else {
            (c.run_time_ns, c.sampled_ns)
        };
        Cost {
            run_time_ns: c.run_time_ns,
            run_count: c.run_count,
            sampled_s: c.sampled_ns as f64 / 1e9,
            ns_per_run: ratio(c.run_time_ns as f64, c.run_count as f64),
            cpu_percent: ratio(used as f64 * 100.0, sampled as f64),
        }
    });
    Metrics {
        elapsed_s: elapsed,
        interval_s: interval,
        processes,
        losses,
        cost,
        map_entries: cur.map_entries.clone(),
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
    let mut totals = Vec::new();
    let mut deltas = Vec::new();
    let mut syscalls = Vec::new();
    for (kind, stats) in &p.syscalls {
        let before = prev_p.and_then(|pp| pp.syscalls.get(kind));
        let d = delta(stats, before);
        totals.push((*kind, *stats));
        deltas.push((*kind, d));
        syscalls.push(SyscallMetrics {
            syscall: kind.name(),
            total: window(&[(*kind, *stats)], elapsed),
            interval: window(&[(*kind, d)], interval),
        });
    }
    let model = detect_model(&totals);
    let total = window(&totals, elapsed);
    let interval_w = window(&deltas, interval);
    let prev_threads: BTreeMap<u32, u64> = prev
        .map(|s| {
            s.threads
                .iter()
                .filter(|t| t.state.tgid == p.tgid)
                .map(|t| (t.tid, t.state.calls))
                .collect()
        })
        .unwrap_or_default();
    let threads = cur
        .threads
        .iter()
        .filter(|t| t.state.tgid == p.tgid)
        .map(|t| {
            let s = &t.state;
            let off = s.thread_off_cpu_ns.min(s.wall_ns);
            let calls_before = prev_threads.get(&t.tid).copied();
            ThreadMetrics {
                tid: t.tid,
                calls: s.calls,
                wait_calls: s.wait_calls,
                wakeups: s.wakeups,
                wall_ns: s.wall_ns,
                off_cpu_ns: off,
                on_cpu_ns: s.wall_ns - off,
                calls_per_sec: calls_before
                    .map_or(0.0, |b| ratio(s.calls.saturating_sub(b) as f64, interval)),
            }
        })
        .collect();
    let epoll_interest = cur
        .epoll
        .iter()
        .filter(|(k, _)| k.tgid == p.tgid)
        .map(|(k, v)| (k.epfd, v.registered))
        .collect();
    let verdict = verdict(model, &total, &totals);
    ProcessMetrics {
        pid: p.tgid,
        comm: display_comm(&p.comm),
        alive: p.alive,
        model,
        syscalls,
        total,
        interval: interval_w,
        threads,
        epoll_interest,
        fd_classes: p.fd_classes.clone(),
        verdict,
    }
}

/// The wait family with the most calls; receives without waits are blocking I/O.
pub fn detect_model(stats: &[(SyscallKind, SyscallStats)]) -> IoModel {
    let mut by_model: BTreeMap<&'static str, (u64, IoModel)> = BTreeMap::new();
    let mut io_calls = 0;
    for (kind, s) in stats {
        let model = if kind.is_select() {
            IoModel::Select
        } else if kind.is_poll() {
            IoModel::Poll
        } else if kind.is_epoll_wait() {
            IoModel::Epoll
        } else {
            if kind.is_receive() || kind.is_send() {
                io_calls += s.calls;
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
        None if io_calls > 0 => IoModel::Blocking,
        None => IoModel::Unknown,
    }
}

/// Human-readable byte count: 1,234 B, 12.4 KiB, 3.1 MiB.
pub fn bytes(v: f64) -> String {
    if v < 1024.0 {
        format!("{v:.0} B")
    } else if v < 1024.0 * 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else if v < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else {
        format!("{:.1} GiB", v / (1024.0 * 1024.0 * 1024.0))
    }
}

/// An integer with thousands separators.
pub fn thousands(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One sentence, numbers included, on what waiting costs. The comparison with
/// epoll uses epoll's exact copy cost for the same ready count (12 bytes per
/// ready event out, nothing in), never an invented figure.
fn verdict(model: IoModel, total: &Window, stats: &[(SyscallKind, SyscallStats)]) -> String {
    let mut waits = WaitPart::default();
    let mut wait_stats = Window::default();
    for (kind, s) in stats {
        if kind.is_wait() {
            waits.add(s, *kind);
            wait_stats.add(s, *kind);
        }
    }
    let returns = waits.returns_ok.max(1) as f64;
    match model {
        IoModel::Select | IoModel::Poll => {
            let scanned = wait_stats.scanned as f64 / waits.calls.max(1) as f64;
            let ready = wait_stats.ready as f64 / returns;
            let eff = ratio(wait_stats.ready as f64, wait_stats.scanned as f64) * 100.0;
            let copied = wait_stats.bookkeeping_in_bytes + wait_stats.bookkeeping_out_bytes;
            let per_ready = ratio(copied as f64, wait_stats.ready as f64);
            let mut s = format!(
                "{} scans {} fds per call to find {:.1} ready ({:.1} %)",
                model.name(),
                thousands(scanned.round() as u64),
                ready,
                eff
            );
            if wait_stats.ready > 0 {
                s.push_str(&format!(
                    "; {} copied per ready event, where epoll would copy 12 B",
                    bytes(per_ready)
                ));
            }
            s
        }
        IoModel::Epoll => {
            let ready = wait_stats.ready as f64 / returns;
            let ctl: u64 = stats
                .iter()
                .filter(|(k, _)| *k == SyscallKind::EpollCtl)
                .map(|(_, s)| s.calls)
                .sum();
            format!(
                "epoll returns {:.1} ready per call from {:.0} registered fds without scanning them; {} epoll_ctl calls kept the set",
                ready,
                ratio(wait_stats.watched as f64, waits.calls as f64),
                thousands(ctl)
            )
        }
        IoModel::Blocking => format!(
            "blocking I/O: {:.1} syscalls per receive that returned data, no readiness calls",
            total.syscalls_per_receive
        ),
        IoModel::Unknown => "no select, poll, epoll or socket I/O calls seen yet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracer_common::log2_bucket;

    use super::*;

    fn snap(secs: u64, stats: &[(SyscallKind, SyscallStats)]) -> Snapshot {
        let mut s = Snapshot {
            elapsed: Duration::from_secs(secs),
            ..Snapshot::default()
        };
        s.processes.insert(
            1,
            ProcessSnap {
                tgid: 1,
                comm: b"srv".to_vec(),
                alive: true,
                syscalls: stats.iter().copied().collect(),
                fd_classes: BTreeMap::new(),
            },
        );
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
        s.wall_ns = wall_each * calls;
        s.bookkeeping_in = 8 * watched_each * calls;
        s.bookkeeping_out = 2 * watched_each * calls;
        s.hist_watched[log2_bucket(watched_each)] = calls;
        s.hist_wall_ns[log2_bucket(wall_each)] = calls;
        s
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
        b.processes.get_mut(&1).unwrap().alive = false;
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

    #[test]
    fn percentiles_from_log2_buckets() {
        let mut h = [0u64; HIST_BUCKETS];
        // 100 samples in [1024, 2048).
        h[log2_bucket(1500)] = 100;
        let p50 = percentile(&h, 0.5);
        assert!((1024.0..2048.0).contains(&p50), "{p50}");
        assert_eq!(p50, 1024.0 + 1024.0 * 49.5 / 100.0);
        // 99 fast, 1 slow: p50 fast, p99 fast bucket's top, p100 slow.
        let mut h = [0u64; HIST_BUCKETS];
        h[log2_bucket(10)] = 99;
        h[log2_bucket(1_000_000)] = 1;
        assert!(percentile(&h, 0.5) < 16.0);
        assert!(percentile(&h, 1.0) >= 524_288.0);
        assert_eq!(percentile(&[0; HIST_BUCKETS], 0.99), 0.0);
        let mut zeros = [0u64; HIST_BUCKETS];
        zeros[0] = 5;
        assert_eq!(percentile(&zeros, 0.99), 0.0);
    }

    #[test]
    fn model_detection() {
        let mut recv = SyscallStats::ZERO;
        recv.calls = 5;
        assert_eq!(
            detect_model(&[(SyscallKind::Read, recv)]),
            IoModel::Blocking
        );
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
    fn formatting() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(bytes(12.0), "12 B");
        assert_eq!(bytes(12.4 * 1024.0), "12.4 KiB");
    }
}
