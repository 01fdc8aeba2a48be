//! One immutable reading of everything the probes aggregated, taken once per
//! interval. The model compares two of them; nothing downstream reads maps.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use tracer_common::{
    ExitedThreads, StatsKey, SyscallKind, SyscallStats, ThreadState, UringStats, STAT_COUNT,
};

/// Raw contents of the maps at one instant, summed over CPUs.
#[derive(Debug, Clone, Default)]
pub struct MapDump {
    pub stats: Vec<(StatsKey, SyscallStats)>,
    /// io_uring aggregates, keyed by (tgid, opcode).
    pub uring: Vec<(StatsKey, UringStats)>,
    pub threads: Vec<(u32, ThreadState)>,
    /// tgid → the totals of its threads that exited, summed over CPUs.
    pub exited_threads: BTreeMap<u32, ExitedThreads>,
    pub traced: Vec<(u32, u32)>,
    pub counters: [u64; STAT_COUNT as usize],
    /// Map reads that failed (an entry removed while iterating, say).
    pub read_errors: u64,
    /// The reading interval whose per-interval extremes this dump holds
    /// final (user space advanced the epoch just before reading).
    pub epoch: u64,
    /// Per program: runs the kernel skipped because it was already running
    /// on that CPU.
    pub recursion_misses: Vec<(String, u64)>,
    /// tgid → what the kernel kept of it at its exit.
    pub exits: BTreeMap<u32, Exit>,
    /// The processes among them whose exit the kernel had recorded before
    /// the aggregates were read: those hold all their calls.
    pub exited_before_stats: BTreeSet<u32>,
    /// The kernel's monotonic clock (what the programs stamp with) when the
    /// maps were read, and wall-clock time minus it.
    pub monotonic_ns: u64,
    pub wall_minus_monotonic_ns: i64,
    /// The programs' stall threshold (`--stall`).
    pub stall_threshold_ns: u64,
    /// One call in this many, and one loop iteration in this many, is timed
    /// (`--time-every`).
    pub time_every: u32,
    /// The kernel's tick, ns, which bounds the untimed iterations' stalls
    /// (0: unknown, stalls found in timed iterations only).
    pub tick_ns: u64,
}

/// The probes' kernel run time and run count, accumulated while the kernel's
/// accounting was on (`sampled_ns` of wall time in all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeCost {
    /// Net of `accounting_ns`.
    pub run_time_ns: u64,
    pub run_count: u64,
    pub sampled_ns: u64,
    /// What the kernel accounted beyond the programs' own work: its
    /// accounting's clock reads (an empty program's accounted time, per
    /// run). They cost only while the accounting is on.
    pub accounting_ns: u64,
    /// Wall time from the first sample's start: with `sampled_ns`, how much
    /// of the time the accounting is on, and so what it costs on average.
    pub elapsed_ns: u64,
    /// The same over the last few samples only: the figure shown. One
    /// 100 ms sample swings with the load's bursts; a few in a row do not.
    pub recent_run_time_ns: u64,
    pub recent_sampled_ns: u64,
    pub recent_accounting_ns: u64,
}

/// How many pids a folded entry lists: its JSON stays bounded however many
/// short-lived children it sums.
pub const FOLDED_PIDS_KEPT: usize = 64;

/// What user space knows of a process (from /proc), which the maps do not
/// hold.
#[derive(Debug, Clone, Default)]
pub struct ProcessInfo {
    /// Raw comm bytes (may be any bytes but NUL).
    pub comm: Vec<u8>,
    /// False once the process has exited; its last figures stay.
    pub alive: bool,
    /// fd class → count, from /proc/PID/fd.
    pub fd_classes: BTreeMap<String, u32>,
    /// epoll fd → registered fds, from /proc/PID/fdinfo (the `tfd:` lines).
    pub epoll_interest: BTreeMap<u32, u64>,
    /// For the totals of exited processes folded together (by name): how
    /// many; 0 for a process of its own.
    pub folded: u64,
    /// Their pids, the first [`FOLDED_PIDS_KEPT`] folded: a reload's old
    /// workers stay nameable after their entries go.
    pub folded_pids: Vec<u32>,
    /// Seconds after attach at which the process started (0 when it ran
    /// already): its figures since attach cover the time since then, not
    /// the whole session (nginx's workers forked by a reload).
    pub started_after_attach_s: f64,
    /// Seconds it was traced, once that no longer grows: an exited
    /// process's, from its start (or attach) to its exit; a folded entry's,
    /// the sum of its processes'. None while it runs, or when its end is not
    /// known: the session's time since its start.
    pub traced_s: Option<f64>,
    /// Its live child processes that are not traced, and the first
    /// [`FOLDED_PIDS_KEPT`] of their pids: `--pid` of a master whose
    /// workers do the work (nginx's) shows the master's quiet alone.
    pub untraced_children: u64,
    pub untraced_child_pids: Vec<u32>,
    /// The title it gave itself over its command line (`nginx: worker
    /// process`): processes of one name told apart.
    pub title: Option<String>,
    /// For a process with no call counted: the measured calls its threads
    /// are blocked in at this reading, and how many threads each. A call
    /// counts when it returns: an idle server's first wait may last hours.
    pub blocked_in: BTreeMap<SyscallKind, u32>,
}

/// What the kernel kept of a traced process at its exit: its name, and its
/// start and exit in CLOCK_BOOTTIME ns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exit {
    pub comm: Vec<u8>,
    pub start_boot_ns: u64,
    pub exit_boot_ns: u64,
}

#[derive(Debug, Clone)]
pub struct ProcessSnap {
    pub tgid: u32,
    pub info: ProcessInfo,
    pub syscalls: BTreeMap<SyscallKind, SyscallStats>,
    /// io_uring opcode → its requests' aggregates.
    pub uring: BTreeMap<u8, UringStats>,
    /// Its threads that exited since attach, summed (`threads` in the
    /// snapshot holds the live ones). Boxed: most processes have none, and
    /// 96 bytes more in every process's entry raised the peak RSS of
    /// 20,000 followed children by ~25 MiB.
    pub exited_threads: Option<Box<ExitedThreads>>,
}

impl ProcessSnap {
    /// A live process with these aggregates and nothing known from /proc:
    /// for hand-made snapshots.
    pub fn new(
        tgid: u32,
        comm: &[u8],
        syscalls: impl IntoIterator<Item = (SyscallKind, SyscallStats)>,
    ) -> ProcessSnap {
        ProcessSnap {
            tgid,
            info: ProcessInfo {
                comm: comm.to_vec(),
                alive: true,
                ..ProcessInfo::default()
            },
            syscalls: syscalls.into_iter().collect(),
            uring: BTreeMap::new(),
            exited_threads: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ThreadSnap {
    pub tid: u32,
    /// The thread's name (/proc/PID/task/TID/comm), raw.
    pub name: Vec<u8>,
    pub state: ThreadState,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time since attach, from a monotonic clock.
    pub elapsed: Duration,
    pub processes: BTreeMap<u32, ProcessSnap>,
    pub threads: Vec<ThreadSnap>,
    /// Loss/failure counters by `Stat`, plus map reads that failed.
    pub counters: [u64; STAT_COUNT as usize],
    pub read_errors: u64,
    pub cost: Option<ProbeCost>,
    /// Entries in each kernel map at this reading (its occupancy).
    pub map_entries: BTreeMap<String, u64>,
    /// The reading interval whose extremes are final in this snapshot.
    pub epoch: u64,
    /// Per program: runs the kernel skipped (see [`MapDump`]).
    pub recursion_misses: Vec<(String, u64)>,
    /// The clocks when the maps were read (see [`MapDump`]).
    pub monotonic_ns: u64,
    pub wall_minus_monotonic_ns: i64,
    /// The programs' stall threshold and timing (see [`MapDump`]).
    pub stall_threshold_ns: u64,
    pub time_every: u32,
    pub tick_ns: u64,
}

impl Snapshot {
    /// Builds a snapshot from a map dump. Every process in `traced` is in it,
    /// whether or not it made a measured call yet; `describe` gives what
    /// only /proc knows of a process, `thread_name` of a thread.
    pub fn from_dump(
        elapsed: Duration,
        dump: MapDump,
        cost: Option<ProbeCost>,
        traced: impl IntoIterator<Item = u32>,
        mut describe: impl FnMut(u32) -> ProcessInfo,
        mut thread_name: impl FnMut(u32, u32) -> Vec<u8>,
    ) -> Snapshot {
        let map_entries = [
            ("stats", dump.stats.len()),
            ("uring", dump.uring.len()),
            ("threads", dump.threads.len()),
            ("exited_threads", dump.exited_threads.len()),
            ("traced", dump.traced.len()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v as u64))
        .collect();
        let mut processes: BTreeMap<u32, ProcessSnap> = BTreeMap::new();
        let mut process = |tgid: u32| ProcessSnap {
            tgid,
            info: describe(tgid),
            syscalls: BTreeMap::new(),
            uring: BTreeMap::new(),
            exited_threads: None,
        };
        for (key, stats) in dump.stats {
            let Some(kind) = SyscallKind::from_u32(key.kind) else {
                continue;
            };
            processes
                .entry(key.tgid)
                .or_insert_with(|| process(key.tgid))
                .syscalls
                .insert(kind, stats);
        }
        for (key, stats) in dump.uring {
            let Ok(op) = u8::try_from(key.kind) else {
                continue;
            };
            processes
                .entry(key.tgid)
                .or_insert_with(|| process(key.tgid))
                .uring
                .insert(op, stats);
        }
        for tgid in traced {
            processes.entry(tgid).or_insert_with(|| process(tgid));
        }
        // Only onto a process known otherwise: one whose threads all
        // exited has no entry of its own to show them under.
        for (tgid, exited) in dump.exited_threads {
            if let Some(p) = processes.get_mut(&tgid) {
                p.exited_threads = Some(Box::new(exited));
            }
        }
        let mut threads: Vec<ThreadSnap> = dump
            .threads
            .into_iter()
            .map(|(tid, state)| ThreadSnap {
                tid,
                name: thread_name(state.tgid, tid),
                state,
            })
            .collect();
        threads.sort_by_key(|t| (t.state.tgid, t.tid));
        Snapshot {
            elapsed,
            processes,
            threads,
            counters: dump.counters,
            read_errors: dump.read_errors,
            cost,
            map_entries,
            epoch: dump.epoch,
            recursion_misses: dump.recursion_misses,
            monotonic_ns: dump.monotonic_ns,
            wall_minus_monotonic_ns: dump.wall_minus_monotonic_ns,
            stall_threshold_ns: dump.stall_threshold_ns,
            time_every: dump.time_every,
            tick_ns: dump.tick_ns,
        }
    }
}
