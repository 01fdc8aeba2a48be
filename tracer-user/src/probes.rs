//! The attached state: the loaded eBPF object with its programs attached.
//!
//! [`Probes`] is one owned value; dropping it closes every program, link and
//! map fd, which detaches everything. The kernel does the same if the process
//! dies, so no exit path — normal, signal, panic, even SIGKILL — leaves a probe
//! behind. Nothing here interprets what the maps hold (that is the model's job).

use std::{
    collections::BTreeMap,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
    time::Duration,
};

use aya::{
    maps::{Array, HashMap, Map, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues, Queue, Stack},
    programs::BtfTracePoint,
    Btf, Ebpf, EbpfLoader, Endianness,
};
use tracer_common::{
    btf_ids, globals, maps, ExitRecord, ExitedThreads, Stat, StatsKey, SyscallKind, SyscallStats,
    UringStats, KFUNC_ABSENT_INSN, KFUNC_RDONLY_CAST_INSN, MAX_STATS_KEYS,
};
use tracer_model::{Exit, MapDump, ProbeCost};

use crate::{
    btf::KernelBtf,
    cgroup::Cgroup,
    error::{Result, UserError},
    kernel_log::KernelLog,
    own_cost::{self, CostSampler},
    thread_slots::{self, ThreadSlots},
    tracepoints::{
        AttachPoint, ATTACH_POINTS, CGROUP_POINTS, FLOOR_PROGRAMS, FLOOR_SYSCALL_PROGRAMS,
        PROGRAM_PREFIX, URING_POINTS,
    },
};

/// The eBPF object tracer-user's build script compiled from `tracer-ebpf`.
pub(crate) const EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// What the programs need to know at load time.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub follow: bool,
    pub comm: Option<String>,
    /// Size of the per-thread map.
    pub max_threads: u32,
    /// What the programs log (`kernel_log::LEVEL_*`).
    pub log_level: u8,
    /// An event-loop iteration at least this long is a stall.
    pub stall: Duration,
    /// One call in this many, and one loop iteration in this many, is timed.
    pub time_every: u32,
    /// The pid namespace muxtrace runs in, when not the initial one
    /// ([`crate::targets::pid_namespace`]): every pid user space sees and
    /// gives is that namespace's, the programs translate.
    pub pidns: Option<PidNamespace>,
    /// Which processes the kernel admits by itself (`tracer_common::admit`).
    pub admission: u32,
    /// `--cgroup`: the cgroup whose processes are admitted.
    pub cgroup: Option<Cgroup>,
    /// Size of the traced-process map.
    pub max_processes: u32,
}

/// A pid namespace as `bpf_get_ns_current_pid_tgid` names it: the kernel's
/// dev_t of nsfs and the namespace's inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidNamespace {
    pub dev: u64,
    pub ino: u64,
}

/// The first reading interval. Not 0: a zeroed extremes slot reads as epoch 0.
const FIRST_EPOCH: u64 = 1;
/// `RLIMIT_NOFILE`'s index in a task's resource limits (asm-generic).
const RLIMIT_NOFILE: u32 = 7;

pub struct Probes {
    /// The stall threshold and timing the programs were loaded with.
    stall_ns: u64,
    time_every: u32,
    tick_ns: u64,
    /// Inside a pid namespace: pids are translated (see [`Probes::trace`]).
    in_pidns: bool,
    ebpf: Ebpf,
    thread_slots: ThreadSlots,
    /// The reading interval the programs count in now (the EPOCH map),
    /// from [`FIRST_EPOCH`].
    epoch: u64,
    /// Taken by the session, which forwards the programs' log lines.
    kernel_log: Option<KernelLog>,
    /// The own-cost figure, sampled ([`Probes::start_cost_sample`]).
    cost: CostSampler,
}

impl Probes {
    /// Loads the programs, attaches every one, and returns with nothing traced
    /// yet: callers add tgids with [`Probes::trace`] once everything is in place,
    /// so each call seen has both its enter and its exit.
    /// Takes the kernel's BTF to drop it once the offsets are read, before
    /// aya parses the same file again: the two copies at once were the peak
    /// of muxtrace's memory.
    pub fn attach(
        config: &ProbeConfig,
        kernel_btf: KernelBtf,
        prefetch: BtfPrefetch,
    ) -> Result<Probes> {
        raise_memlock();
        let offset = |s: &str, m: &str| kernel_btf.member_offset(s, m);
        // `rlim` is an array of `struct rlimit {rlim_cur; rlim_max}`.
        let (task_signal, signal_nofile) = offset("task_struct", "signal")
            .and_then(|signal| Ok((signal, offset("signal_struct", "rlim")? + RLIMIT_NOFILE * 16)))
            .unwrap_or_else(|_| {
                log::warn!("this kernel's BTF has no signal_struct.rlim: a poll over RLIMIT_NOFILE entries, which the kernel refuses, is read all the same");
                (0, 0)
            });
        let fields = [
            (globals::TASK_PID, offset("task_struct", "pid")?),
            (globals::TASK_TGID, offset("task_struct", "tgid")?),
            (
                globals::TASK_GROUP_LEADER,
                offset("task_struct", "group_leader")?,
            ),
            (
                globals::TASK_START_BOOTTIME,
                offset("task_struct", "start_boottime")?,
            ),
            (
                globals::TASK_RESTART_FN,
                offset("task_struct", "restart_block")
                    .and_then(|block| Ok(block + offset("restart_block", "fn")?))
                    .unwrap_or_else(|_| {
                        log::warn!("this kernel's BTF has no task_struct.restart_block.fn: a poll resumed after a stop is not counted");
                        0
                    }),
            ),
            (
                globals::TASK_JOBCTL,
                offset("task_struct", "jobctl").unwrap_or_else(|_| {
                    log::warn!("this kernel's BTF has no task_struct.jobctl: a loop in a frozen cgroup reads as busy");
                    0
                }),
            ),
            (globals::TASK_SIGNAL, task_signal),
            (globals::SIGNAL_NOFILE, signal_nofile),
            (globals::TASK_FILES, offset("task_struct", "files")?),
            (globals::FILES_FDT, offset("files_struct", "fdt")?),
            (globals::FDT_MAX_FDS, offset("fdtable", "max_fds")?),
            (globals::FDT_FD, offset("fdtable", "fd")?),
            (globals::FILE_PRIVATE_DATA, offset("file", "private_data")?),
            (globals::FILE_INODE, offset("file", "f_inode")?),
            (globals::INODE_MODE, offset("inode", "i_mode")?),
            // Since Linux 6.4 every registration holds a reference on its
            // eventpoll; before, the count is unknown (0 tells the programs).
            (
                globals::EVENTPOLL_REFCOUNT,
                offset("eventpoll", "refcount").unwrap_or_else(|_| {
                    log::warn!("this kernel's eventpoll keeps no reference count (Linux < 6.4): epoll interest-set sizes are not measured");
                    0
                }),
            ),
        ];
        // io_uring's request and ring, where the kernel has io_uring; the
        // programs then stay unattached (and the offsets 0).
        let uring = URING_POINTS
            .iter()
            .all(|p| kernel_btf.has_tracepoint(p.tracepoint));
        let uring_fields = if uring {
            let cq = offset("io_rings", "cq")?;
            vec![
                (globals::KIOCB_OPCODE, offset("io_kiocb", "opcode")?),
                (globals::KIOCB_CTX, offset("io_kiocb", "ctx")?),
                (globals::KIOCB_FILE, offset("io_kiocb", "file")?),
                (globals::RING_CTX_FLAGS, offset("io_ring_ctx", "flags")?),
                (globals::RING_CTX_RINGS, offset("io_ring_ctx", "rings")?),
                (globals::RINGS_CQ_HEAD, cq + offset("io_uring", "head")?),
                (globals::RINGS_CQ_TAIL, cq + offset("io_uring", "tail")?),
            ]
        } else {
            log::warn!("this kernel has no io_uring tracepoints: io_uring requests are not traced");
            Vec::new()
        };
        let (btf_ids, kfunc) = typed_read_ids(&kernel_btf);
        drop(kernel_btf);
        let object = resolve_kfunc(EBPF_OBJECT, kfunc);
        let (btf, loader) = prefetch.finish()?;
        let mut loader: EbpfLoader<'_> = loader;
        loader.btf(Some(&btf));
        let follow = u32::from(config.follow);
        let stall_ns = u64::try_from(config.stall.as_nanos()).unwrap_or(u64::MAX);
        let mut comm = [0u8; 16];
        if let Some(name) = &config.comm {
            let bytes = name.as_bytes();
            let n = bytes.len().min(15);
            comm[..n].copy_from_slice(&bytes[..n]);
        }

        // 0: the initial namespace; the programs' namespace code is pruned.
        let (pidns_dev, pidns_ino) = config.pidns.map_or((0, 0), |ns| (ns.dev, ns.ino));
        let (cgroup_id, cgroup_level) = config.cgroup.as_ref().map_or((0, 0), |c| (c.id, c.level));
        // Never admitted: by the pid muxtrace sees itself by, as the
        // programs compare it (the namespace's, inside one).
        let self_tgid = std::process::id();
        let mut cgroup_path = [0u8; tracer_common::CGROUP_PATH_LEN];
        if let Some(c) = &config.cgroup {
            let path = c.hierarchy_path.trim_end_matches('/').as_bytes();
            let n = path.len().min(cgroup_path.len());
            cgroup_path[..n].copy_from_slice(&path[..n]);
        }

        let max_threads = config.max_threads.max(1);
        let time_every = config.time_every.max(1);
        let tick_ns = kernel_tick_ns();
        // Ticks that surely span `stall_ns`: an iteration that began late
        // in its first tick spans more ticks than its length by up to one.
        let stall_ticks = match tick_ns {
            0 => u64::MAX,
            tick => stall_ns.div_ceil(tick).saturating_add(1),
        };
        loader
            .override_global(globals::FOLLOW, &follow, true)
            .override_global(globals::COMM, &comm, true)
            .override_global("AYA_LOG_LEVEL", &config.log_level, true)
            .override_global(globals::STALL_NS, &stall_ns, true)
            .override_global(globals::TIME_EVERY, &time_every, true)
            .override_global(globals::TICK_NS, &tick_ns, true)
            .override_global(globals::STALL_TICKS, &stall_ticks, true)
            .override_global(globals::PIDNS_DEV, &pidns_dev, true)
            .override_global(globals::PIDNS_INO, &pidns_ino, true)
            .override_global(globals::ADMIT, &config.admission, true)
            .override_global(globals::SELF_TGID, &self_tgid, true)
            .override_global(globals::CGROUP_ID, &cgroup_id, true)
            .override_global(globals::CGROUP_LEVEL, &cgroup_level, true)
            .override_global(globals::CGROUP_PATH, &cgroup_path, true)
            .map_max_entries(maps::THREAD_STATES, max_threads)
            .map_max_entries(maps::FREE_THREADS, max_threads)
            .map_max_entries(
                maps::THREAD_INDEX,
                thread_slots::index_entries(config.pidns.is_some()),
            )
            .map_max_entries(maps::TRACED, config.max_processes.max(1))
            // An entry per traced process at most (user space drops the
            // others at each reading).
            .map_max_entries(maps::EXITED_THREADS, config.max_processes.max(1));
        for (name, value) in fields.iter().chain(&uring_fields) {
            loader.override_global(name, value, true);
        }
        loader.override_global(globals::BTF_IDS, &btf_ids, true);
        let mut ebpf = loader.load(object.as_bytes()).map_err(|e| load_error(&e))?;
        // Before the programs load: they refer to its map.
        let kernel_log = KernelLog::init(&mut ebpf);

        let mut cost = CostSampler::new();

        // Epoch 0 would match a zeroed (never written) extremes slot and
        // take its zeros for a minimum: the programs count from 1.
        let mut epoch: Array<&mut MapData, u64> = ebpf
            .map_mut(maps::EPOCH)
            .ok_or_else(|| UserError::runtime(format!("map {} missing", maps::EPOCH)))?
            .try_into()
            .map_err(|e| UserError::runtime(format!("map {}: {e}", maps::EPOCH)))?;
        epoch
            .set(0, FIRST_EPOCH, 0)
            .map_err(|e| UserError::runtime(format!("cannot set the epoch: {e}")))?;
        // Every aggregate index and thread slot is free: filled while the
        // programs verify (16,384 slots are as many syscalls), and before
        // any is attached.
        let fills = [
            fill_free_indices(&ebpf, maps::FREE_STATS, MAX_STATS_KEYS)?,
            fill_free_indices(&ebpf, maps::FREE_THREADS, max_threads)?,
        ];
        let thread_slots = ThreadSlots::map(&ebpf, max_threads)?;

        let uring_points: &[AttachPoint] = if uring { &URING_POINTS } else { &[] };
        let cgroup_points: &[AttachPoint] = match config.cgroup {
            Some(_) => &CGROUP_POINTS,
            None => &[],
        };
        let wanted: Vec<(&str, &str)> = ATTACH_POINTS
            .iter()
            .chain(uring_points)
            .chain(cgroup_points)
            .map(|point| (point.program(config.pidns.is_some()), point.tracepoint))
            .collect();
        if let Some((missing, _)) = wanted
            .iter()
            .find(|(program, _)| ebpf.program(program).is_none())
        {
            return Err(UserError::runtime(format!(
                "program {missing} missing from the eBPF object"
            )));
        }
        let mut programs: Vec<(&str, &str, &mut BtfTracePoint)> = Vec::new();
        for (name, program) in ebpf.programs_mut() {
            let Some((_, tracepoint)) = wanted.iter().find(|(p, _)| *p == name) else {
                continue;
            };
            let program: &mut BtfTracePoint = program
                .try_into()
                .map_err(|e| UserError::runtime(format!("program {name}: {e}")))?;
            programs.push((name, tracepoint, program));
        }
        load_concurrently(&mut programs, &btf)?;
        for fill in fills {
            fill.join()
                .unwrap_or_else(|_| Err(UserError::runtime("filling a free queue panicked")))?;
        }
        // Against the table's order: sys_enter, the one program that claims
        // thread slots, last, so that every slot is claimed while the
        // programs that release it at its thread's exit or exec run (the
        // programs find a slot by its thread's registers' address, which
        // a dead thread's stack would otherwise leave to its next owner).
        for (program, tracepoint) in wanted.iter().rev() {
            let Some((_, _, prog)) = programs.iter_mut().find(|(p, _, _)| p == program) else {
                continue;
            };
            prog.attach().map_err(|e| {
                UserError::runtime(format!("cannot attach to tracepoint {tracepoint}: {e}"))
            })?;
        }
        drop(programs);
        if cost.available() && !own_cost::load_accounting_program(&mut ebpf) {
            cost.without_calibration();
        }
        Ok(Probes {
            ebpf,
            thread_slots,
            stall_ns,
            time_every,
            tick_ns,
            in_pidns: config.pidns.is_some(),
            epoch: FIRST_EPOCH,
            kernel_log,
            cost,
        })
    }

    /// The programs' log, for the session to forward.
    pub fn take_kernel_log(&mut self) -> Option<KernelLog> {
        self.kernel_log.take()
    }

    /// Starts tracing a process (all its threads). Inside a pid namespace
    /// `tgid` is the namespace's pid, which the kernel does not speak and
    /// cannot be told: it waits in NS_PENDING until the process's first
    /// measured call, where the programs see both pids and move it into the
    /// traced set.
    pub fn trace(&mut self, tgid: u32, flags: u32) -> Result<()> {
        if self.in_pidns {
            let mut pending: HashMap<&mut MapData, u32, u32> = self.map_mut(maps::NS_PENDING)?;
            pending.insert(tgid, flags, 0).map_err(|e| {
                UserError::runtime(format!("cannot add pid {tgid} to the traced set: {e}"))
            })?;
            return self.set_pending_active(true);
        }
        // A candidate first: from the moment it is in TRACED, every program
        // must get past the filter for it.
        let mut candidates: Array<&mut MapData, u32> = self.map_mut(maps::CANDIDATES)?;
        candidates
            .set(tracer_common::candidate_slot(tgid), 1, 0)
            .map_err(|e| UserError::runtime(format!("cannot mark pid {tgid} as traced: {e}")))?;
        let mut traced: HashMap<&mut MapData, u32, u32> = self.map_mut(maps::TRACED)?;
        traced.insert(tgid, flags, 0).map_err(|e| {
            UserError::runtime(format!("cannot add pid {tgid} to the traced set: {e}"))
        })
    }

    fn set_pending_active(&mut self, active: bool) -> Result<()> {
        let mut flag: Array<&mut MapData, u32> = self.map_mut(maps::NS_PENDING_ACTIVE)?;
        flag.set(0, u32::from(active), 0)
            .map_err(|e| UserError::runtime(format!("cannot set {}: {e}", maps::NS_PENDING_ACTIVE)))
    }

    /// Inside a pid namespace: named processes that exited before their
    /// first measured call leave NS_PENDING, and once it is empty the
    /// programs stop looking there.
    fn settle_pending(&mut self) -> Result<()> {
        let pending: HashMap<&MapData, u32, u32> = self.map(maps::NS_PENDING)?;
        let waiting: Vec<u32> = pending.keys().filter_map(|k| k.ok()).collect();
        let gone: Vec<u32> = waiting
            .iter()
            .copied()
            .filter(|pid| crate::targets::ProcessId::of(*pid).is_none())
            .collect();
        if !gone.is_empty() {
            let mut pending: HashMap<&mut MapData, u32, u32> = self.map_mut(maps::NS_PENDING)?;
            for pid in &gone {
                let _ = pending.remove(pid);
            }
        }
        if waiting.len() == gone.len() {
            self.set_pending_active(false)?;
        }
        Ok(())
    }

    /// The traced set as (pid as user space sees it, flags): inside a pid
    /// namespace the kernel's tgids are translated, and those whose
    /// namespace pid is not known yet (a followed child before its first
    /// measured call) are left out until it is.
    fn traced_entries(&self) -> Result<Vec<(u32, u32)>> {
        let traced: HashMap<&MapData, u32, u32> = self.map(maps::TRACED)?;
        let entries: Vec<(u32, u32)> = traced.iter().filter_map(|kv| kv.ok()).collect();
        if !self.in_pidns {
            return Ok(entries);
        }
        let ns_tgids: HashMap<&MapData, u32, u32> = self.map(maps::NS_TGIDS)?;
        Ok(entries
            .into_iter()
            .filter_map(|(tgid, flags)| Some((ns_tgids.get(&tgid, 0).ok()?, flags)))
            .collect())
    }

    fn map_mut<'a, V>(&'a mut self, name: &str) -> Result<V>
    where
        V: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map_mut(name).ok_or_else(|| {
            UserError::runtime(format!("map {name} missing from the eBPF object"))
        })?;
        V::try_from(map).map_err(|e| UserError::runtime(format!("map {name}: {e}")))
    }

    fn map<'a, V>(&'a self, name: &str) -> Result<V>
    where
        V: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map(name).ok_or_else(|| {
            UserError::runtime(format!("map {name} missing from the eBPF object"))
        })?;
        V::try_from(map).map_err(|e| UserError::runtime(format!("map {name}: {e}")))
    }

    /// Reads every map once, first ending the current reading interval (so
    /// its per-interval extremes are final in what is read).
    pub fn dump(&mut self) -> Result<MapDump> {
        let mut dump = MapDump {
            epoch: self.epoch,
            stall_threshold_ns: self.stall_ns,
            time_every: self.time_every,
            tick_ns: self.tick_ns,
            ..MapDump::default()
        };
        self.epoch += 1;
        let next = self.epoch;
        let mut epoch: Array<&mut MapData, u64> = self.map_mut(maps::EPOCH)?;
        epoch
            .set(0, next, 0)
            .map_err(|e| UserError::runtime(format!("cannot advance the epoch: {e}")))?;
        // Aggregates and exit names are keyed by the pid user space knows:
        // inside a pid namespace the programs key them by the namespace's.
        // Who had exited before the aggregates are read: their aggregates
        // are final (the names themselves are read last, to name as many
        // as possible).
        let exits: HashMap<&MapData, u32, ExitRecord> = self.map(maps::EXIT_COMMS)?;
        dump.exited_before_stats = exits.keys().filter_map(|k| k.ok()).collect();
        let slots: HashMap<&MapData, StatsKey, u32> = self.map(maps::STATS_SLOTS)?;
        let stats: PerCpuArray<&MapData, SyscallStats> = self.map(maps::STATS)?;
        for entry in slots.iter() {
            match entry.and_then(|(key, index)| Ok((key, stats.get(&index, 0)?))) {
                Ok((key, per_cpu)) => {
                    let mut sum = SyscallStats::ZERO;
                    for cpu in per_cpu.iter() {
                        sum.merge(cpu);
                    }
                    dump.stats.push((key, sum));
                }
                Err(_) => dump.read_errors += 1,
            }
        }
        let uring: PerCpuHashMap<&MapData, StatsKey, UringStats> = self.map(maps::URING_STATS)?;
        dump.uring = summed_over_cpus(
            &uring,
            UringStats::ZERO,
            UringStats::merge,
            &mut dump.read_errors,
        );
        // Exited threads before the live ones: a thread that exits between
        // the two reads is in neither until the next reading, not in both.
        let exited: PerCpuHashMap<&MapData, u32, ExitedThreads> = self.map(maps::EXITED_THREADS)?;
        dump.exited_threads = summed_over_cpus(
            &exited,
            ExitedThreads::ZERO,
            ExitedThreads::merge,
            &mut dump.read_errors,
        )
        .into_iter()
        .collect();
        // Each slot holds the tid user space names it by (the namespace's,
        // inside one).
        let used = self.thread_slots_used().unwrap_or_else(|| {
            dump.read_errors += 1;
            u32::MAX
        });
        dump.threads = self
            .thread_slots
            .live(used)
            .into_iter()
            .map(|state| (state.tid, state))
            .collect();
        // After the threads: a wait in flight counts up to this instant.
        let monotonic = clock_ns(libc::CLOCK_MONOTONIC);
        dump.monotonic_ns = monotonic;
        dump.wall_minus_monotonic_ns = clock_ns(libc::CLOCK_REALTIME) as i64 - monotonic as i64;
        dump.traced = self.traced_entries()?;
        self.drop_stale_exited_threads(&dump);
        dump.recursion_misses = self.recursion_misses();
        let exits: HashMap<&MapData, u32, ExitRecord> = self.map(maps::EXIT_COMMS)?;
        for entry in exits.iter() {
            match entry {
                Ok((tgid, record)) => {
                    let comm = &record.comm;
                    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
                    dump.exits.insert(
                        tgid,
                        Exit {
                            comm: comm[..len].to_vec(),
                            start_boot_ns: record.start_boot_ns,
                            exit_boot_ns: record.exit_boot_ns,
                        },
                    );
                }
                Err(_) => dump.read_errors += 1,
            }
        }
        let counters: PerCpuArray<&MapData, u64> = self.map(maps::COUNTERS)?;
        for stat in Stat::ALL {
            match counters.get(&(stat as u32), 0) {
                Ok(per_cpu) => dump.counters[stat as usize] = per_cpu.iter().sum(),
                Err(_) => dump.read_errors += 1,
            }
        }
        Ok(dump)
    }

    /// Drops the exited threads of processes no longer traced, once read:
    /// an exited process's (its last threads' totals are in this reading:
    /// the kernel keeps the entry, as a thread of an exiting group may
    /// reach its exit after the last one did), an evicted one's. Kept,
    /// they would fill the map and be taken for the threads of a process
    /// that reuses the pid.
    fn drop_stale_exited_threads(&mut self, dump: &MapDump) {
        let traced: std::collections::BTreeSet<u32> = dump.traced.iter().map(|(t, _)| *t).collect();
        let stale: Vec<u32> = dump
            .exited_threads
            .keys()
            .filter(|tgid| !traced.contains(tgid))
            .copied()
            .collect();
        if stale.is_empty() {
            return;
        }
        if let Ok(mut map) =
            self.map_mut::<PerCpuHashMap<&mut MapData, u32, ExitedThreads>>(maps::EXITED_THREADS)
        {
            for tgid in stale {
                let _ = map.remove(&tgid);
            }
        }
    }

    /// How often the programs found the traced set full
    /// (`traced_map_full`) so far: one read, where counting the set is one
    /// per entry.
    pub fn traced_refusals(&self) -> Result<u64> {
        let counters: PerCpuArray<&MapData, u64> = self.map(maps::COUNTERS)?;
        Ok(counters
            .get(&(Stat::TracedMapFull as u32), 0)
            .map(|per_cpu| per_cpu.iter().sum())
            .unwrap_or(0))
    }

    /// Processes in the traced set now.
    pub fn traced_count(&self) -> Result<usize> {
        let traced: HashMap<&MapData, u32, u32> = self.map(maps::TRACED)?;
        Ok(traced.keys().filter(|k| k.is_ok()).count())
    }

    /// `--all`, `--cgroup`: when a process user space has just learnt of (by
    /// the pid it sees) joined the traced set, CLOCK_BOOTTIME ns: admitted
    /// at its first wait, or moved into the cgroup. `None` for one traced
    /// from attach or from its birth. The entry goes: the process is known
    /// from now on.
    pub fn take_joined(&mut self, pid: u32) -> Option<u64> {
        let kernel_tgid = match self.in_pidns {
            false => pid,
            true => {
                let ns_tgids: HashMap<&MapData, u32, u32> = self.map(maps::NS_TGIDS).ok()?;
                let found = ns_tgids
                    .iter()
                    .filter_map(|kv| kv.ok())
                    .find(|(_, ns)| *ns == pid)
                    .map(|(kernel, _)| kernel);
                found?
            }
        };
        let mut joined: HashMap<&mut MapData, u32, u64> = self.map_mut(maps::JOINED).ok()?;
        let at = joined.get(&kernel_tgid, 0).ok()?;
        let _ = joined.remove(&kernel_tgid);
        Some(at)
    }

    /// Stops tracing processes (by the pids user space sees) to make room
    /// in a full traced set: the programs will not admit them again, and
    /// their threads' slots go. Their aggregates stay until user space has
    /// folded them ([`Probes::forget`]).
    pub fn evict(&mut self, pids: &[u32]) -> Result<()> {
        // The kernel's tgids: inside a pid namespace, translated back.
        let kernel_tgids: Vec<u32> = match self.in_pidns {
            false => pids.to_vec(),
            true => {
                let ns_tgids: HashMap<&MapData, u32, u32> = self.map(maps::NS_TGIDS)?;
                ns_tgids
                    .iter()
                    .filter_map(|kv| kv.ok())
                    .filter(|(_, ns)| pids.contains(ns))
                    .map(|(kernel, _)| kernel)
                    .collect()
            }
        };
        // Barred first, so no call of theirs admits them again in between.
        let mut evicted: HashMap<&mut MapData, u32, u32> = self.map_mut(maps::EVICTED)?;
        for tgid in &kernel_tgids {
            evicted
                .insert(tgid, 1, 0)
                .map_err(|e| UserError::runtime(format!("cannot evict pid {tgid}: {e}")))?;
        }
        let mut traced: HashMap<&mut MapData, u32, u32> = self.map_mut(maps::TRACED)?;
        for tgid in &kernel_tgids {
            let _ = traced.remove(tgid);
        }
        // Threads name their process as user space does.
        let used = self.thread_slots_used().unwrap_or(u32::MAX);
        self.thread_slots.evict(pids, used);
        Ok(())
    }

    /// How many of the thread slots, from the first, have ever been taken:
    /// the rest are free (`None`: unreadable, so every one is read).
    fn thread_slots_used(&self) -> Option<u32> {
        let high_water: PerCpuArray<&MapData, u32> = self.map(maps::THREAD_HIGH_WATER).ok()?;
        let per_cpu = high_water.get(&0, 0).ok()?;
        Some(per_cpu.iter().copied().max().unwrap_or(0))
    }

    /// Frees an exited (or evicted) process's aggregates in the kernel, once
    /// user space has folded them: each index is zeroed on every CPU, then
    /// given back to the programs' free queue. With `read_last`, returns what
    /// each aggregate held just before: calls that landed after the reading
    /// that found the process gone (its last ones, between that reading's
    /// dump and its liveness check) are in it, and would be zeroed unseen.
    pub fn forget(
        &mut self,
        tgid: u32,
        kinds: impl Iterator<Item = SyscallKind>,
        read_last: bool,
    ) -> BTreeMap<SyscallKind, SyscallStats> {
        let mut last = BTreeMap::new();
        if let Err(e) = self.free_aggregates(tgid, kinds, read_last.then_some(&mut last)) {
            log::debug!("cannot free the aggregates of pid {tgid}: {e}");
        }
        last
    }

    fn free_aggregates(
        &mut self,
        tgid: u32,
        kinds: impl Iterator<Item = SyscallKind>,
        mut last: Option<&mut BTreeMap<SyscallKind, SyscallStats>>,
    ) -> Result<()> {
        let mut freed = Vec::new();
        {
            let stats: PerCpuArray<&MapData, SyscallStats> = self.map(maps::STATS)?;
            let slots: HashMap<&MapData, StatsKey, u32> = self.map(maps::STATS_SLOTS)?;
            for kind in kinds {
                let key = StatsKey {
                    tgid,
                    kind: kind as u32,
                };
                let Ok(index) = slots.get(&key, 0) else {
                    continue;
                };
                if let (Some(last), Ok(per_cpu)) = (last.as_deref_mut(), stats.get(&index, 0)) {
                    let mut sum = SyscallStats::ZERO;
                    for cpu in per_cpu.iter() {
                        sum.merge(cpu);
                    }
                    last.insert(kind, sum);
                }
                freed.push((key, index));
            }
        }
        let mut slots: HashMap<&mut MapData, StatsKey, u32> = self.map_mut(maps::STATS_SLOTS)?;
        freed.retain(|(key, _)| slots.remove(key).is_ok());
        let cpus = aya::util::nr_cpus()
            .map_err(|(_, e)| UserError::runtime(format!("cannot count the CPUs: {e}")))?;
        let mut stats: PerCpuArray<&mut MapData, SyscallStats> = self.map_mut(maps::STATS)?;
        for (_, index) in &freed {
            let zeros = PerCpuValues::try_from(vec![SyscallStats::ZERO; cpus])
                .map_err(|e| UserError::runtime(format!("cannot build a zeroed aggregate: {e}")))?;
            stats
                .set(*index, zeros, 0)
                .map_err(|e| UserError::runtime(format!("cannot zero aggregate {index}: {e}")))?;
        }
        let mut free: Queue<&mut MapData, u32> = self.map_mut(maps::FREE_STATS)?;
        for (_, index) in freed {
            free.push(index, 0)
                .map_err(|e| UserError::runtime(format!("cannot free aggregate {index}: {e}")))?;
        }
        Ok(())
    }

    /// Frees an exited process's io_uring aggregates in the kernel; with
    /// `read_last`, returns what each held just before (see [`Probes::forget`]).
    pub fn forget_uring(
        &mut self,
        tgid: u32,
        ops: impl Iterator<Item = u8>,
        read_last: bool,
    ) -> BTreeMap<u8, UringStats> {
        let mut last = BTreeMap::new();
        let Ok(mut stats) =
            self.map_mut::<PerCpuHashMap<&mut MapData, StatsKey, UringStats>>(maps::URING_STATS)
        else {
            return last;
        };
        for op in ops {
            let key = StatsKey {
                tgid,
                kind: u32::from(op),
            };
            if let Some(per_cpu) = read_last.then(|| stats.get(&key, 0).ok()).flatten() {
                let mut sum = UringStats::ZERO;
                for cpu in per_cpu.iter() {
                    sum.merge(cpu);
                }
                last.insert(op, sum);
            }
            if let Err(e) = stats.remove(&key) {
                log::debug!("cannot free the io_uring aggregate of pid {tgid}: {e}");
            }
        }
        last
    }

    /// Frees the name the kernel kept for an exited process.
    pub fn forget_exit_comm(&mut self, tgid: u32) {
        if let Ok(mut comms) =
            self.map_mut::<HashMap<&mut MapData, u32, ExitRecord>>(maps::EXIT_COMMS)
        {
            let _ = comms.remove(&tgid);
        }
    }

    /// Each program's runs the kernel skipped because the program was already
    /// running on that CPU (its `recursion_misses`): calls or context
    /// switches it never saw.
    fn recursion_misses(&self) -> Vec<(String, u64)> {
        self.ebpf
            .programs()
            .filter_map(|(name, program)| {
                let fd = program.fd().ok()?;
                match recursion_misses(fd.as_fd()) {
                    Ok(n) => Some((name.to_owned(), n)),
                    Err(e) => {
                        log::debug!("cannot read {name}'s info: {e}");
                        None
                    }
                }
            })
            .collect()
    }

    /// The traced set as the kernel has it now (cheap: a few entries), by
    /// the pids user space sees.
    pub fn dump_traced(&mut self) -> Result<Vec<u32>> {
        if self.in_pidns {
            self.settle_pending()?;
        }
        Ok(self
            .traced_entries()?
            .into_iter()
            .map(|(tgid, _)| tgid)
            .collect())
    }

    /// Switches the kernel's run-time accounting on until
    /// [`Probes::end_cost_sample`].
    pub fn start_cost_sample(&mut self) {
        self.cost.start(&self.ebpf);
    }

    pub fn end_cost_sample(&mut self) {
        self.cost.end(&self.ebpf);
    }

    /// Our programs' run time and count during the samples so far, when the
    /// kernel keeps them.
    pub fn cost(&self) -> Option<ProbeCost> {
        self.cost.cost()
    }
}

/// aya's two parses of the kernel's BTF: its loader's own (made at
/// `EbpfLoader::new`, whether or not it is handed one) and the one the
/// programs attach with, which the loader then relocates the object with
/// too. Started first thing, on a thread of its own, they overlap
/// muxtrace's checks before the attach instead of adding to them. One after
/// the other, the loader's dropped before the other starts: at once, the
/// two copies were most of muxtrace's peak of memory.
pub struct BtfPrefetch {
    path: std::path::PathBuf,
    /// The programs' parse (`None` if it panicked) and the loader.
    parses: std::thread::JoinHandle<(
        Option<std::result::Result<Btf, aya::BtfError>>,
        EbpfLoader<'static>,
    )>,
}

impl BtfPrefetch {
    pub fn start() -> BtfPrefetch {
        let path = KernelBtf::path();
        let file = path.clone();
        let parses = std::thread::spawn(move || {
            let mut loader = EbpfLoader::new();
            loader.btf(None);
            let parse = std::panic::catch_unwind(|| Btf::parse_file(&file, Endianness::default()));
            (parse.ok(), loader)
        });
        BtfPrefetch { path, parses }
    }

    fn finish(self) -> Result<(Btf, EbpfLoader<'static>)> {
        let panicked = || UserError::runtime("parsing the kernel's BTF panicked");
        let (btf, loader) = self.parses.join().map_err(|_| panicked())?;
        let btf = btf.ok_or_else(panicked)?.map_err(|e| {
            UserError::runtime(format!(
                "cannot read the kernel's BTF at {}: {e}",
                self.path.display()
            ))
        })?;
        Ok((btf, loader))
    }
}

/// Puts the indices `0..count` into the free-index map `name` (a queue:
/// in order; a stack: the lowest on top), on a thread of its own with its
/// own handle on the map, so the caller may go on with the object.
fn fill_free_indices(
    ebpf: &Ebpf,
    name: &'static str,
    count: u32,
) -> Result<std::thread::JoinHandle<Result<()>>> {
    let (data, stack) = match ebpf.map(name) {
        Some(Map::Queue(data)) => (data, false),
        Some(Map::Stack(data)) => (data, true),
        _ => {
            return Err(UserError::runtime(format!(
                "map {name} missing from the eBPF object"
            )))
        }
    };
    let fd = data
        .fd()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| UserError::runtime(format!("map {name}: {e}")))?;
    let data = MapData::from_fd(fd).map_err(|e| UserError::runtime(format!("map {name}: {e}")))?;
    let failed = move |index: u32, e: aya::maps::MapError| {
        UserError::runtime(format!("cannot fill {name} ({index}): {e}"))
    };
    let fill = move || -> Result<()> {
        if stack {
            let mut free = Stack::<MapData, u32>::try_from(Map::Stack(data))
                .map_err(|e| UserError::runtime(format!("map {name}: {e}")))?;
            (0..count)
                .rev()
                .try_for_each(|index| free.push(index, 0).map_err(|e| failed(index, e)))
        } else {
            let mut free = Queue::<MapData, u32>::try_from(Map::Queue(data))
                .map_err(|e| UserError::runtime(format!("map {name}: {e}")))?;
            (0..count).try_for_each(|index| free.push(index, 0).map_err(|e| failed(index, e)))
        }
    };
    Ok(std::thread::spawn(fill))
}

/// Loads (the kernel verifies) every program, on one thread per core.
/// Verification is most of the attach time, and the kernel verifies
/// privileged programs concurrently. The two syscall programs take longest
/// (about 25 ms each here, the other nine 8 ms between them): they start
/// first, on threads of their own, and the rest are dealt out after them.
/// A thread per program was no faster on two cores and raised the peak of
/// memory.
fn load_concurrently(programs: &mut [(&str, &str, &mut BtfTracePoint)], btf: &Btf) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Stable: the heaviest first, in their order.
    programs.sort_by_key(|(name, ..)| !HEAVIEST_PROGRAMS.contains(name));
    let mut shares: Vec<Vec<&mut (&str, &str, &mut BtfTracePoint)>> =
        (0..threads).map(|_| Vec::new()).collect();
    for (i, program) in programs.iter_mut().enumerate() {
        shares[i % threads].push(program);
    }
    std::thread::scope(|scope| {
        let loads: Vec<_> = shares
            .into_iter()
            .filter(|share| !share.is_empty())
            .map(|share| {
                scope.spawn(move || {
                    share
                        .into_iter()
                        .try_for_each(|(name, tracepoint, program)| {
                            load_one(name, tracepoint, program, btf)
                        })
                })
            })
            .collect();
        loads.into_iter().try_for_each(|load| {
            load.join()
                .unwrap_or_else(|_| Err(UserError::runtime("a program's load panicked")))
        })
    })
}

/// The programs whose verification takes longest (one of the two enter
/// programs is loaded).
const HEAVIEST_PROGRAMS: [&str; 3] = ["mux_sys_exit", "mux_sys_enter", "mux_sys_enter_ns"];

fn load_one(name: &str, tracepoint: &str, program: &mut BtfTracePoint, btf: &Btf) -> Result<()> {
    let started = std::time::Instant::now();
    program
        .load(tracepoint, btf)
        .map_err(|e| load_error(&e).hint_verifier(name, &e))?;
    // The instructions the verifier walked are the noise-free measure of
    // its work (RUST_LOG=debug).
    log::debug!(
        "{name}: verified in {:.1} ms, {} instructions walked",
        started.elapsed().as_secs_f64() * 1e3,
        program
            .info()
            .ok()
            .and_then(|i| i.verified_instruction_count())
            .map_or_else(|| "?".to_owned(), |n| n.to_string())
    );
    Ok(())
}

/// The floor under muxtrace's programs: the object's empty programs alone
/// on the tracepoints muxtrace's sit on. What they cost is the kernel's
/// reaching a program there (for syscalls, the tracepoint slow path and one
/// dispatch each way), which no program can avoid and the kernel's run-time
/// accounting does not count. Dropping it detaches.
pub struct EmptyPrograms {
    _ebpf: Ebpf,
}

impl EmptyPrograms {
    /// On the two raw syscall tracepoints only: the `syscall_cost` bench
    /// quotes muxtrace's cost per call above it.
    pub fn attach() -> Result<EmptyPrograms> {
        EmptyPrograms::attach_to(&FLOOR_PROGRAMS[..FLOOR_SYSCALL_PROGRAMS])
    }

    /// On every tracepoint muxtrace attaches to by default: what tracing
    /// costs the machine beyond its programs' run time (the bench's
    /// `floor` configuration).
    pub fn attach_everywhere() -> Result<EmptyPrograms> {
        EmptyPrograms::attach_to(&FLOOR_PROGRAMS)
    }

    fn attach_to(programs: &[(&str, &str)]) -> Result<EmptyPrograms> {
        raise_memlock();
        let kernel_btf = KernelBtf::load()?;
        let btf = Btf::parse_file(&kernel_btf.path, Endianness::default())
            .map_err(|e| UserError::runtime(format!("cannot read the kernel's BTF: {e}")))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(EBPF_OBJECT)
            .map_err(|e| load_error(&e))?;
        for (program, tracepoint) in programs {
            let prog: &mut BtfTracePoint = ebpf
                .program_mut(program)
                .ok_or_else(|| UserError::runtime(format!("program {program} missing")))?
                .try_into()
                .map_err(|e| UserError::runtime(format!("program {program}: {e}")))?;
            prog.load(tracepoint, &btf).map_err(|e| load_error(&e))?;
            prog.attach().map_err(|e| {
                UserError::runtime(format!("cannot attach to tracepoint {tracepoint}: {e}"))
            })?;
        }
        Ok(EmptyPrograms { _ebpf: ebpf })
    }
}

/// Ids of the programs of ours the kernel has loaded right now (any muxtrace
/// instance's). Tests use it to prove nothing is left behind.
pub fn loaded_program_ids() -> Vec<u32> {
    aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter(|p| {
            p.name_as_str()
                .is_some_and(|n| n.starts_with(PROGRAM_PREFIX))
        })
        .map(|p| p.id())
        .collect()
}

/// A program's `recursion_misses`, from `BPF_OBJ_GET_INFO_BY_FD` (aya 0.14
/// keeps the kernel's `bpf_prog_info` to itself).
pub fn recursion_misses(fd: BorrowedFd<'_>) -> std::io::Result<u64> {
    #[repr(C)]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: bpf_prog_info is plain integers: all zeroes is a value.
    let mut info: aya_obj::generated::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut attr = InfoByFd {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: (&raw mut info) as u64,
    };
    // SAFETY: attr points at a valid info buffer of the size it states, both
    // alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &raw mut attr,
            std::mem::size_of::<InfoByFd>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(info.recursion_misses)
}

/// Every entry of a per-CPU hash, its CPUs' copies summed; an entry that
/// cannot be read counts in `read_errors`.
fn summed_over_cpus<K: aya::Pod, V: aya::Pod>(
    map: &PerCpuHashMap<&MapData, K, V>,
    zero: V,
    merge: fn(&mut V, &V),
    read_errors: &mut u64,
) -> Vec<(K, V)> {
    let mut all = Vec::new();
    for entry in map.iter() {
        match entry {
            Ok((key, per_cpu)) => {
                let mut sum = zero;
                for cpu in per_cpu.iter() {
                    merge(&mut sum, cpu);
                }
                all.push((key, sum));
            }
            Err(_) => *read_errors += 1,
        }
    }
    all
}

/// A clock's reading in ns (CLOCK_MONOTONIC is the programs' bpf_ktime_get_ns).
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a local timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The kernel's tick (one jiffy), ns: the resolution of its coarse clocks,
/// `TICK_NSEC`. 0 when the kernel does not say (the programs then find
/// stalls in timed iterations only).
fn kernel_tick_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a local timespec.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 || ts.tv_sec != 0 || ts.tv_nsec <= 0 {
        log::warn!("the kernel's tick is unknown: with --time-every, stalls are found in timed iterations only");
        return 0;
    }
    ts.tv_nsec as u64
}

/// The BTF ids the programs' typed reads cast to (`tracer_common::btf_ids`)
/// and `bpf_rdonly_cast`'s, or all zero and `None` where the kernel lacks
/// any of them: the programs then read with the probe-read helper.
fn typed_read_ids(btf: &KernelBtf) -> ([u32; btf_ids::COUNT], Option<u32>) {
    let mut ids = [0; btf_ids::COUNT];
    // An fd table slot is read as a `struct kiocb`, whose first member is
    // its file: any struct that starts with a file pointer would do.
    let slot = (btf.member_offset("kiocb", "ki_filp").ok() == Some(0))
        .then(|| btf.struct_id("kiocb"))
        .flatten();
    let found = [
        (btf_ids::FILE_SLOT, slot),
        (btf_ids::FILE, btf.struct_id("file")),
        (btf_ids::INODE, btf.struct_id("inode")),
        (btf_ids::EVENTPOLL, btf.struct_id("eventpoll")),
        (btf_ids::TASK, btf.struct_id("task_struct")),
    ];
    let kfunc = btf.function_id("bpf_rdonly_cast");
    if kfunc.is_none() || found.iter().any(|(_, id)| id.is_none()) {
        log::info!("this kernel has no bpf_rdonly_cast (Linux < 6.2): kernel objects are read with the probe-read helper");
        return (ids, None);
    }
    for (which, id) in found {
        ids[which] = id.unwrap_or(0);
    }
    // Where the kernel has io_uring; else its programs stay unattached.
    for (which, name) in [
        (btf_ids::IO_KIOCB, "io_kiocb"),
        (btf_ids::IO_RING_CTX, "io_ring_ctx"),
        (btf_ids::IO_RINGS, "io_rings"),
    ] {
        ids[which] = btf.struct_id(name).unwrap_or(0);
    }
    (ids, kfunc)
}

/// The eBPF object, 8-byte aligned as the ELF reader wants it, with each
/// call of `bpf_rdonly_cast` given the kernel's id for it (aya 0.14 cannot
/// resolve kfunc calls), or replaced where the kernel has none.
struct ResolvedObject {
    words: Vec<u64>,
    len: usize,
}

impl ResolvedObject {
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: within the u64s' own bytes (len <= 8 * words.len()).
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.len) }
    }

    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.words.as_mut_ptr().cast(), self.len) }
    }
}

/// Instructions are 8-byte aligned in the object's text (its sections
/// are), so each call is one aligned 8-byte word of the copy.
fn resolve_kfunc(object: &[u8], kfunc: Option<u32>) -> ResolvedObject {
    let mut resolved = ResolvedObject {
        words: vec![0; object.len().div_ceil(8)],
        len: object.len(),
    };
    resolved.as_bytes_mut().copy_from_slice(object);
    let call = KFUNC_RDONLY_CAST_INSN.to_le_bytes();
    let with = match kfunc {
        Some(id) => (u64::from(id) << 32 | (KFUNC_RDONLY_CAST_INSN & 0xffff_ffff)).to_le_bytes(),
        None => KFUNC_ABSENT_INSN.to_le_bytes(),
    };
    for insn in resolved.as_bytes_mut().chunks_exact_mut(8) {
        if *insn == call {
            insn.copy_from_slice(&with);
        }
    }
    resolved
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones to the
/// cgroup, where raising it may be refused (EPERM) and does not matter.
fn raise_memlock() {
    let rlim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid pointer to a local rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        log::debug!("could not raise RLIMIT_MEMLOCK (fine on kernels >= 5.11)");
    }
}

/// The errno behind an aya error, from its chain of sources.
fn os_error(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(code) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Some(code);
        }
        current = err.source();
    }
    None
}

/// Refused for want of privilege (EPERM, EACCES) is the user's to fix;
/// anything else is ours. The verifier log, which aya appends to the
/// message, goes to the debug log, not the user.
fn load_error(e: &(dyn std::error::Error + 'static)) -> UserError {
    if matches!(os_error(e), Some(libc::EPERM | libc::EACCES)) {
        return UserError::usage(
            "the kernel refused to load muxtrace's eBPF programs: not permitted",
        )
        .hint("run as root, or grant CAP_BPF and CAP_PERFMON (sudo -E muxtrace ...)");
    }
    let text = e.to_string();
    let first = text.split(". Verifier output").next().unwrap_or(&text);
    let first = first.lines().next().unwrap_or(first);
    UserError::runtime(format!("cannot load muxtrace's eBPF programs: {first}"))
}

trait VerifierHint {
    fn hint_verifier(self, program: &str, e: &aya::programs::ProgramError) -> Self;
}

impl VerifierHint for UserError {
    fn hint_verifier(self, program: &str, e: &aya::programs::ProgramError) -> Self {
        if let aya::programs::ProgramError::LoadError { verifier_log, .. } = e {
            log::debug!("verifier log of {program}:\n{verifier_log}");
            return self.hint(format!(
                "the kernel's verifier rejected {program}; this is a muxtrace bug — run with RUST_LOG=debug to see its log"
            ));
        }
        self
    }
}

/// How long to wait between liveness checks of the traced processes.
pub const LIVENESS_POLL: Duration = Duration::from_millis(100);
