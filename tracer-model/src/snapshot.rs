//! One immutable reading of everything the probes aggregated, taken once per
//! interval. The model compares two of them; nothing downstream reads maps.

use std::{collections::BTreeMap, time::Duration};

use tracer_common::{
    EpollInterest, FdKey, StatsKey, SyscallKind, SyscallStats, ThreadState, STAT_COUNT,
};

/// Raw contents of the maps at one instant, summed over CPUs.
#[derive(Debug, Clone, Default)]
pub struct MapDump {
    pub stats: Vec<(StatsKey, SyscallStats)>,
    pub threads: Vec<(u32, ThreadState)>,
    pub epoll: Vec<(FdKey, EpollInterest)>,
    pub traced: Vec<(u32, u32)>,
    pub counters: [u64; STAT_COUNT as usize],
    /// Map reads that failed (an entry removed while iterating, say).
    pub read_errors: u64,
}

/// The probes' kernel run time and run count, accumulated while the kernel's
/// accounting was on (`sampled_ns` of wall time in all).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeCost {
    pub run_time_ns: u64,
    pub run_count: u64,
    pub sampled_ns: u64,
}

#[derive(Debug, Clone)]
pub struct ProcessSnap {
    pub tgid: u32,
    /// Raw comm bytes (may be any bytes but NUL).
    pub comm: Vec<u8>,
    /// False once the process has exited; its last figures stay.
    pub alive: bool,
    pub syscalls: BTreeMap<SyscallKind, SyscallStats>,
    /// fd class → count, from /proc/PID/fd at snapshot time.
    pub fd_classes: BTreeMap<String, u32>,
}

#[derive(Debug, Clone)]
pub struct ThreadSnap {
    pub tid: u32,
    pub state: ThreadState,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time since attach, from a monotonic clock.
    pub elapsed: Duration,
    pub processes: BTreeMap<u32, ProcessSnap>,
    pub threads: Vec<ThreadSnap>,
    pub epoll: Vec<(FdKey, EpollInterest)>,
    /// Loss/failure counters by `Stat`, plus map reads that failed.
    pub counters: [u64; STAT_COUNT as usize],
    pub read_errors: u64,
    pub cost: Option<ProbeCost>,
    /// Entries in each kernel map at this reading (its occupancy).
    pub map_entries: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Builds a snapshot from a map dump; `describe` gives each tgid's comm,
    /// liveness and fd classes, which only user space knows.
    pub fn from_dump(
        elapsed: Duration,
        dump: MapDump,
        cost: Option<ProbeCost>,
        mut describe: impl FnMut(u32) -> (Vec<u8>, bool, BTreeMap<String, u32>),
    ) -> Snapshot {
        let map_entries = [
            ("stats", dump.stats.len()),
            ("threads", dump.threads.len()),
            ("epoll", dump.epoll.len()),
            ("traced", dump.traced.len()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v as u64))
        .collect();
        let mut processes: BTreeMap<u32, ProcessSnap> = BTreeMap::new();
        for (key, stats) in dump.stats {
            let Some(kind) = SyscallKind::from_u32(key.kind) else {
                continue;
            };
            let process = processes.entry(key.tgid).or_insert_with(|| {
                let (comm, alive, fd_classes) = describe(key.tgid);
                ProcessSnap {
                    tgid: key.tgid,
                    comm,
                    alive,
                    syscalls: BTreeMap::new(),
                    fd_classes,
                }
            });
            process.syscalls.insert(kind, stats);
        }

        let mut threads: Vec<ThreadSnap> = dump
            .threads
            .into_iter()
            .map(|(tid, state)| ThreadSnap { tid, state })
            .collect();
        threads.sort_by_key(|t| (t.state.tgid, t.tid));
        Snapshot {
            elapsed,
            processes,
            threads,
            epoll: dump.epoll,
            counters: dump.counters,
            read_errors: dump.read_errors,
            cost,
            map_entries,
        }
    }
}
