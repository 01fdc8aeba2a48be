//! The map → snapshot → metrics stage: owns the attached probes and what user
//! space knows of each traced process (name, identity, liveness), adds the
//! processes the kernel put in the traced set, and turns each reading of the
//! maps into [`Metrics`]. It never renders anything.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use tracer_common::{Stat, SyscallKind, SyscallStats, UringStats};
use tracer_model::{
    format::display_comm, Exit, Metrics, ProcessInfo, ProcessSnap, Snapshot, FOLDED_PIDS_KEPT,
};

use crate::{
    error::Result,
    probes::Probes,
    targets::{self, ProcessId},
};

/// What user space knows of one traced process.
#[derive(Debug, Clone)]
struct Known {
    id: Option<ProcessId>,
    comm: Vec<u8>,
    alive: bool,
    /// Named by the user (`--pid`, `-- CMD`): shown on its own to the end,
    /// never folded.
    named: bool,
    /// `--all`, `--cgroup`: when it joined after attach, admitted or moved
    /// in (CLOCK_BOOTTIME ns): its time traced starts there, not at attach.
    joined_boot_ns: Option<u64>,
}

/// The totals of exited processes of one name, summed: a run that follows
/// 20,000 short-lived children keeps 20,000 processes' figures in one entry
/// per name, and frees their entries in the kernel and here.
#[derive(Debug, Clone)]
struct Folded {
    /// Its key among the snapshot's processes (above every real pid).
    key: u32,
    count: u64,
    /// The first [`FOLDED_PIDS_KEPT`] of them.
    pids: Vec<u32>,
    syscalls: BTreeMap<SyscallKind, SyscallStats>,
    uring: BTreeMap<u8, UringStats>,
    /// Its processes' times traced, summed.
    traced_s: f64,
}

/// When a traced process stopped being traced, CLOCK_BOOTTIME ns: at its
/// exit, as the kernel recorded it with the process's start; else when user
/// space saw it gone, or evicted it.
#[derive(Debug, Clone, Copy)]
struct End {
    start_boot_ns: Option<u64>,
    end_boot_ns: u64,
}

impl End {
    fn of(exit: &Exit) -> End {
        End {
            start_boot_ns: Some(exit.start_boot_ns),
            end_boot_ns: exit.exit_boot_ns,
        }
    }
}

/// How many readings the name of an exited process is kept for.
const EXIT_NAME_READINGS: u32 = 3;

/// Keys of folded entries start here: above any pid (pid_max ≤ 2^22).
const FOLDED_KEYS: u32 = 1 << 30;

pub struct Collector {
    probes: Probes,
    known: BTreeMap<u32, Known>,
    folded: BTreeMap<Vec<u8>, Folded>,
    /// Exited processes whose folding waits one reading for their name.
    nameless: std::collections::BTreeSet<u32>,
    /// What the kernel kept of exited processes (tgid → its record,
    /// readings since): their names and times.
    exit_names: BTreeMap<u32, (Exit, u32)>,
    /// Where each process user space knows, and no longer traces, ended: a
    /// named one is never folded, and keeps its end past its exit record.
    ends: BTreeMap<u32, End>,
    started: Instant,
    /// When tracing began, CLOCK_BOOTTIME ns, and in the clock ticks since
    /// boot that /proc gives a process's start in.
    attach_boot_ns: u64,
    attach_ticks: u64,
    prev: Option<Snapshot>,
    /// The reading before `prev`: the final figures fold a short last
    /// interval into the one before ([`Collector::collect_final`]).
    before_prev: Option<Snapshot>,
    /// Set by a reset: figures count from here.
    baseline: Option<Snapshot>,
    /// `--all`, `--cgroup`: the traced set's size, at which the least
    /// active processes are evicted to make room for one the kernel refused.
    evict_at: Option<u32>,
    /// Processes evicted so far (the `evicted` loss).
    evicted: u64,
    /// Whether a process refused for want of room is still waiting.
    refusals: Refusals,
    /// Calls per process in the last reading interval: how active it is.
    activity: BTreeMap<u32, u64>,
    /// Whether a process's untraced children are listed: not when the
    /// programs take children (`--follow`) or processes (`--all`) by
    /// themselves, where one just forked is not yet known here.
    list_untraced_children: bool,
}

impl Collector {
    pub fn new(probes: Probes, evict_at: Option<u32>) -> Collector {
        let attach_boot_ns = targets::boot_ns();
        Collector {
            probes,
            known: BTreeMap::new(),
            folded: BTreeMap::new(),
            nameless: std::collections::BTreeSet::new(),
            exit_names: BTreeMap::new(),
            ends: BTreeMap::new(),
            started: Instant::now(),
            attach_boot_ns,
            attach_ticks: targets::boot_ns_to_ticks(attach_boot_ns),
            prev: None,
            before_prev: None,
            baseline: None,
            evict_at,
            evicted: 0,
            refusals: Refusals::default(),
            activity: BTreeMap::new(),
            list_untraced_children: false,
        }
    }

    /// Lists each process's live children that are not traced, with the
    /// hint that `--follow` would.
    pub fn list_untraced_children(&mut self) {
        self.list_untraced_children = true;
    }

    /// Whether user space knows `tgid` as a traced process.
    pub fn is_known(&self, tgid: u32) -> bool {
        self.known.contains_key(&tgid)
    }

    /// Whether a traced process still ran at the last liveness check.
    pub fn is_alive(&self, tgid: u32) -> bool {
        self.known.get(&tgid).is_some_and(|k| k.alive)
    }

    /// When the kernel refused a process for want of room since the last
    /// check and the traced set is full, evicts the least active eighth of
    /// it (at least one): fewest calls in the last reading interval first;
    /// processes too new to have one, and the ones the user named, stay.
    /// The programs will not admit an evicted process again; its figures so
    /// far are folded like an exited process's, and it is counted.
    pub fn evict_if_full(&mut self) -> Result<()> {
        let Some(limit) = self.evict_at else {
            return Ok(());
        };
        let refused = self.probes.traced_refusals()?;
        if !self.refusals.someone_waits(refused) || self.probes.traced_count()? < limit as usize {
            return Ok(());
        }
        let mut candidates: Vec<(u64, u32)> = self
            .known
            .iter()
            .filter(|(_, k)| k.alive && !k.named)
            .filter_map(|(tgid, _)| Some((*self.activity.get(tgid)?, *tgid)))
            .collect();
        candidates.sort_unstable();
        let victims: Vec<u32> = candidates
            .iter()
            .take((limit as usize / 8).max(1))
            .map(|(_, tgid)| *tgid)
            .collect();
        if victims.is_empty() {
            return Ok(());
        }
        self.probes.evict(&victims)?;
        self.refusals.made_room();
        let now = targets::boot_ns();
        for tgid in &victims {
            self.ends.insert(
                *tgid,
                End {
                    start_boot_ns: None,
                    end_boot_ns: now,
                },
            );
            log::info!(
                "evicted pid {tgid}: the traced set is full (--max-processes {limit}) and it was among the least active"
            );
            if let Some(k) = self.known.get_mut(tgid) {
                k.alive = false;
            }
        }
        self.evicted += victims.len() as u64;
        Ok(())
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn probes_mut(&mut self) -> &mut Probes {
        &mut self.probes
    }

    /// Starts tracing `tgid` in the kernel; [`Collector::register`] then
    /// records what /proc says of it.
    pub fn trace(&mut self, tgid: u32, flags: u32) -> Result<()> {
        self.probes.trace(tgid, flags)
    }

    /// Reads the maps and computes metrics against the previous reading.
    pub fn collect(&mut self) -> Result<Metrics> {
        let snapshot = self.read()?;
        let metrics = tracer_model::compute(self.prev.as_ref(), &snapshot);
        self.keep(snapshot);
        Ok(metrics)
    }

    /// The run's last reading. Its interval is what the end left of one —
    /// often a few milliseconds, whose rates, share and state would read as
    /// the run's last word: shorter than half of `interval`, it is folded
    /// into the full interval before it.
    pub fn collect_final(&mut self, interval: Duration) -> Result<Metrics> {
        let snapshot = self.read()?;
        let metrics = match &self.prev {
            Some(prev) if snapshot.elapsed.saturating_sub(prev.elapsed) < interval / 2 => {
                let folded = tracer_model::fold_interval(prev, &snapshot);
                tracer_model::compute(self.before_prev.as_ref(), &folded)
            }
            prev => tracer_model::compute(prev.as_ref(), &snapshot),
        };
        self.keep(snapshot);
        Ok(metrics)
    }

    /// The reading the next one is computed against.
    fn keep(&mut self, snapshot: Snapshot) {
        if self.evict_at.is_some() {
            self.activity = activity(self.prev.as_ref(), &snapshot);
        }
        self.before_prev = self.prev.replace(snapshot);
    }

    /// Reads the maps into a snapshot, exited processes folded and any
    /// reset's baseline taken off.
    fn read(&mut self) -> Result<Snapshot> {
        let mut dump = self.probes.dump()?;
        // Processes that joined since the last liveness poll are in the
        // aggregates already: known now, with when they joined, their first
        // figures count from then, not from their start or attach.
        self.discover()?;
        dump.counters[Stat::Evicted as usize] = self.evicted;
        let cost = self.probes.cost();
        // Exits recorded before the aggregates were read: this dump's, and
        // every name kept from an earlier one.
        let mut exited_before_stats = std::mem::take(&mut dump.exited_before_stats);
        exited_before_stats.extend(self.exit_names.keys());
        // The names the kernel kept for exited processes move here at once,
        // so a process whose calls show up a reading later still has its name.
        // Thousands of short-lived children a second pass through here:
        // their records are kept once, in `exit_names`, and `ends` only
        // holds the few processes user space knows.
        for (tgid, exit) in std::mem::take(&mut dump.exits) {
            if let Some(k) = self.known.get_mut(&tgid) {
                self.ends.insert(tgid, End::of(&exit));
                // Its name at exit, after any exec user space missed
                // (`-- sh -c 'exec prog'` that ends within a poll).
                if !exit.comm.is_empty() {
                    k.comm = exit.comm.clone();
                }
            }
            self.probes.forget_exit_comm(tgid);
            self.exit_names.insert(tgid, (exit, 0));
        }
        let (known, ends, exit_names) = (&self.known, &self.ends, &self.exit_names);
        let (attach_ticks, attach_boot_ns) = (self.attach_ticks, self.attach_boot_ns);
        let list_children = self.list_untraced_children;
        let mut snapshot = Snapshot::from_dump(
            self.started.elapsed(),
            dump,
            cost,
            known.keys().copied(),
            |tgid| {
                let k = known.get(&tgid);
                let mut info = describe(tgid, k, attach_ticks, attach_boot_ns);
                if info.alive && list_children {
                    let untraced: Vec<u32> = targets::children(tgid)
                        .into_iter()
                        .filter(|child| !known.contains_key(child))
                        .collect();
                    info.untraced_children = untraced.len() as u64;
                    info.untraced_child_pids =
                        untraced.into_iter().take(FOLDED_PIDS_KEPT).collect();
                }
                if !info.alive {
                    let exit = exit_names.get(&tgid).map(|(exit, _)| exit);
                    let joined = k.and_then(|k| k.joined_boot_ns);
                    info.traced_s = exit
                        .map(End::of)
                        .or_else(|| ends.get(&tgid).copied())
                        .map(|end| traced_s(&end, &info, attach_boot_ns, joined));
                    if let (Some(exit), true) = (exit, info.comm == b"?") {
                        info.comm = exit.comm.clone();
                    }
                }
                info
            },
            |tgid, tid| targets::thread_name(tgid, tid).unwrap_or_default(),
        );
        self.carry_totals(&mut snapshot);
        self.fold_exited(&mut snapshot, &exited_before_stats);
        // A name is kept a few readings for calls that arrive late, then goes.
        self.exit_names.retain(|_, (_, age)| {
            *age += 1;
            *age <= EXIT_NAME_READINGS
        });
        let known = &self.known;
        self.ends.retain(|tgid, _| known.contains_key(tgid));
        self.add_folded(&mut snapshot);
        if let Some(base) = &self.baseline {
            snapshot = tracer_model::rebase(&snapshot, base);
        }
        note_blocked_calls(&mut snapshot);
        Ok(snapshot)
    }

    /// The latest reading's figures over the whole run (since attach, or
    /// since `r`): its interval is the run. None before the first reading.
    pub fn over_the_run(&self) -> Option<Metrics> {
        self.prev.as_ref().map(|s| tracer_model::compute(None, s))
    }

    /// The since-attach extremes, which the programs leave to user space
    /// ([`Counter::carry`]): each aggregate takes them from the previous
    /// reading's. A process folded away or a reset starts afresh.
    ///
    /// [`Counter::carry`]: tracer_common::counter::Counter::carry
    fn carry_totals(&self, snapshot: &mut Snapshot) {
        let epoch = snapshot.epoch;
        for (tgid, p) in snapshot.processes.iter_mut() {
            let prev = self.prev.as_ref().and_then(|s| s.processes.get(tgid));
            for (kind, stats) in p.syscalls.iter_mut() {
                let earlier = prev.and_then(|p| p.syscalls.get(kind));
                stats.carry(earlier.unwrap_or(&SyscallStats::ZERO), epoch);
            }
            for (op, stats) in p.uring.iter_mut() {
                let earlier = prev.and_then(|p| p.uring.get(op));
                stats.carry(earlier.unwrap_or(&UringStats::ZERO), epoch);
            }
            // An exited process's entry is read once, then dropped: its
            // exited threads stay in its last figures.
            if !p.info.alive && p.exited_threads.is_none() {
                p.exited_threads = prev.and_then(|p| p.exited_threads.clone());
            }
        }
    }

    /// Exited processes that were not named: their final totals join their
    /// name's folded entry, and their entries go — from the snapshot, the
    /// kernel's maps and here — so a run over thousands of short-lived
    /// children stays small.
    fn fold_exited(&mut self, snapshot: &mut Snapshot, exited_before_stats: &BTreeSet<u32>) {
        let mut exited = Vec::new();
        for (tgid, p) in &snapshot.processes {
            if p.info.alive || p.info.folded > 0 || self.known.get(tgid).is_some_and(|k| k.named) {
                continue;
            }
            // One that exited after the names were read: its name comes with
            // the next reading (once; then it is folded as it is).
            if p.info.comm == b"?" && self.nameless.insert(*tgid) {
                continue;
            }
            self.nameless.remove(tgid);
            exited.push(*tgid);
        }
        for tgid in &exited {
            let Some(p) = snapshot.processes.remove(tgid) else {
                continue;
            };
            let next_key = FOLDED_KEYS + self.folded.len() as u32;
            let entry = self.folded.entry(p.info.comm.clone()).or_insert(Folded {
                key: next_key,
                count: 0,
                pids: Vec::new(),
                syscalls: BTreeMap::new(),
                uring: BTreeMap::new(),
                traced_s: 0.0,
            });
            entry.count += 1;
            if entry.pids.len() < FOLDED_PIDS_KEPT {
                entry.pids.push(*tgid);
            }
            // One whose end is not known was traced at least until now.
            entry.traced_s += p.info.traced_s.unwrap_or_else(|| {
                (snapshot.elapsed.as_secs_f64() - p.info.started_after_attach_s).max(0.0)
            });
            // The dump holds all the calls of a process whose exit was seen
            // before it read the aggregates: a known one (liveness runs
            // between readings), or one whose exit the kernel had recorded
            // by then. Any other may have made its last calls after: what
            // the kernel held when it freed them is read and folded instead,
            // the since-attach extremes carried from this reading as the
            // next reading's would be. (A late call of a kind the dump did
            // not show leaves an aggregate the next reading folds as one
            // more exited process.)
            let exit_after_dump =
                !self.known.contains_key(tgid) && !exited_before_stats.contains(tgid);
            let mut last = self
                .probes
                .forget(*tgid, p.syscalls.keys().copied(), exit_after_dump);
            for (kind, stats) in &p.syscalls {
                last.entry(*kind).or_insert(*stats);
            }
            for (kind, mut final_stats) in last {
                let seen = p.syscalls.get(&kind).unwrap_or(&SyscallStats::ZERO);
                final_stats.carry(seen, snapshot.epoch.wrapping_add(1));
                entry
                    .syscalls
                    .entry(kind)
                    .or_insert(SyscallStats::ZERO)
                    .merge(&final_stats);
            }
            let mut last =
                self.probes
                    .forget_uring(*tgid, p.uring.keys().copied(), exit_after_dump);
            for (op, stats) in &p.uring {
                last.entry(*op).or_insert(*stats);
            }
            for (op, mut final_stats) in last {
                let seen = p.uring.get(&op).unwrap_or(&UringStats::ZERO);
                final_stats.carry(seen, snapshot.epoch.wrapping_add(1));
                entry
                    .uring
                    .entry(op)
                    .or_insert(UringStats::ZERO)
                    .merge(&final_stats);
            }
            self.known.remove(tgid);
            // The readings the next intervals and a reset count from fold
            // it too, or the folded row's interval would hold its whole life
            // again (a helper summed a reload's JSON lines: 64,541 nginx
            // calls where there were 44,252).
            let key = entry.key;
            for earlier in [
                self.prev.as_mut(),
                self.before_prev.as_mut(),
                self.baseline.as_mut(),
            ] {
                fold_earlier(earlier, *tgid, key);
            }
        }
        snapshot.threads.retain(|t| !exited.contains(&t.state.tgid));
    }

    /// Figures count from now on (the dashboard's `r`).
    pub fn reset(&mut self) -> Result<()> {
        let dump = self.probes.dump()?;
        let cost = self.probes.cost();
        let mut base = Snapshot::from_dump(
            self.started.elapsed(),
            dump,
            cost,
            [],
            |_| ProcessInfo::default(),
            |_, _| Vec::new(),
        );
        // The folded entries too, or their totals would stay since attach.
        self.add_folded(&mut base);
        (self.prev, self.before_prev) = (None, None);
        self.baseline = Some(base);
        Ok(())
    }

    /// The folded totals of exited processes, as entries of their own.
    fn add_folded(&self, snapshot: &mut Snapshot) {
        for (comm, folded) in &self.folded {
            snapshot.processes.insert(
                folded.key,
                ProcessSnap {
                    tgid: folded.key,
                    info: ProcessInfo {
                        comm: comm.clone(),
                        folded: folded.count,
                        folded_pids: folded.pids.clone(),
                        traced_s: Some(folded.traced_s),
                        ..ProcessInfo::default()
                    },
                    syscalls: folded.syscalls.clone(),
                    uring: folded.uring.clone(),
                    exited_threads: None,
                },
            );
        }
    }

    /// Registers processes the kernel added to the traced set (followed
    /// children, `--comm` matches). Thread ids in the set (see the fork
    /// program) are skipped.
    pub fn discover(&mut self) -> Result<()> {
        for tgid in self.probes.dump_traced()? {
            if self.known.contains_key(&tgid) {
                continue;
            }
            match targets::tgid_of(tgid) {
                // A kernel thread named like `--comm` at fork (kthreadd's
                // children are, until they rename): no syscalls to show.
                Some(t) if t == tgid && targets::is_kernel_thread(tgid) => {}
                Some(t) if t == tgid => {
                    log::info!("now tracing pid {tgid}");
                    self.register(tgid, ProcessId::of(tgid));
                    let joined = self.probes.take_joined(tgid);
                    if let Some(k) = self.known.get_mut(&tgid) {
                        k.joined_boot_ns = joined;
                    }
                }
                Some(_) => {} // a thread of a traced process
                None => {
                    // Already gone: keep its name if the aggregates show it.
                    self.known.insert(
                        tgid,
                        Known {
                            id: None,
                            comm: b"?".to_vec(),
                            alive: false,
                            named: false,
                            joined_boot_ns: self.probes.take_joined(tgid),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Marks exited processes; whether any traced process still runs.
    pub fn refresh_liveness(&mut self) -> bool {
        let mut any_alive = false;
        for (tgid, k) in self.known.iter_mut() {
            let was_alive = k.alive;
            k.alive = k.alive && k.id.as_ref().is_some_and(ProcessId::alive);
            if was_alive && !k.alive {
                // Until the kernel's record of its exit, read at the next
                // reading, says when exactly.
                self.ends.entry(*tgid).or_insert(End {
                    start_boot_ns: None,
                    end_boot_ns: targets::boot_ns(),
                });
            }
            if k.alive {
                // A process that execs takes the new program's name.
                if let Some(comm) = targets::comm_of(*tgid) {
                    k.comm = comm;
                }
            }
            any_alive |= k.alive;
        }
        any_alive
    }

    /// (pid, printable name) of every process traced so far.
    pub fn traced(&self) -> Vec<(u32, String)> {
        self.known
            .iter()
            .map(|(tgid, k)| (*tgid, display_comm(&k.comm)))
            .collect()
    }

    /// Records a traced process the user named (`--pid`, `-- CMD`): it is
    /// shown on its own to the end.
    pub fn register_named(&mut self, tgid: u32, id: Option<ProcessId>) {
        self.register(tgid, id);
        if let Some(k) = self.known.get_mut(&tgid) {
            k.named = true;
        }
    }

    /// Records a traced process's name and identity.
    pub fn register(&mut self, tgid: u32, id: Option<ProcessId>) {
        let comm = targets::comm_of(tgid)
            .or_else(|| id.as_ref().map(|id| id.comm.clone()))
            .unwrap_or_else(|| b"?".to_vec());
        let alive = id.as_ref().is_some_and(ProcessId::alive);
        self.known.insert(
            tgid,
            Known {
                id,
                comm,
                alive,
                named: false,
                joined_boot_ns: None,
            },
        );
    }
}

/// The kernel counts the calls it refused for want of room in the traced
/// set, not who made them: new refusals since the last check mean a process
/// waits. After an eviction, the waiter's refusals until its next call took
/// the freed place are no sign of another: the check after one only
/// catches up (those stale refusals once evicted a busy loop just admitted).
#[derive(Default)]
struct Refusals {
    seen: u64,
    made_room: bool,
}

impl Refusals {
    fn someone_waits(&mut self, refused: u64) -> bool {
        let new = refused > self.seen;
        self.seen = refused;
        !std::mem::take(&mut self.made_room) && new
    }

    fn made_room(&mut self) {
        self.made_room = true;
    }
}

/// Calls per live process over the last interval: the eviction's measure.
/// One absent from the reading before joined during it, and its few calls
/// since are no measure of it (a busy loop admitted just before a reading
/// was evicted for them in place of a quiet one): it is no candidate yet.
/// The first reading has none before: there, the processes traced since
/// attach are weighed by their calls since.
fn activity(prev: Option<&Snapshot>, cur: &Snapshot) -> BTreeMap<u32, u64> {
    let calls = |p: &ProcessSnap| p.syscalls.values().map(|s| s.calls).sum::<u64>();
    cur.processes
        .iter()
        .filter(|(_, p)| p.info.alive && p.info.folded == 0)
        .filter_map(|(tgid, p)| {
            let before = match prev {
                Some(prev) => calls(prev.processes.get(tgid)?),
                None if p.info.started_after_attach_s == 0.0 => 0,
                None => return None,
            };
            Some((*tgid, calls(p).saturating_sub(before)))
        })
        .collect()
}

/// Moves process `tgid`'s figures in an earlier reading into the folded
/// entry `key` there, as [`Collector::fold_exited`] folds it now: what the
/// folded entry gains over that reading is then what the process did
/// since, its last calls.
fn fold_earlier(reading: Option<&mut Snapshot>, tgid: u32, key: u32) {
    let Some(reading) = reading else {
        return;
    };
    let Some(p) = reading.processes.remove(&tgid) else {
        return;
    };
    let entry = reading.processes.entry(key).or_insert_with(|| ProcessSnap {
        tgid: key,
        info: ProcessInfo {
            comm: p.info.comm.clone(),
            ..ProcessInfo::default()
        },
        syscalls: BTreeMap::new(),
        uring: BTreeMap::new(),
        exited_threads: None,
    });
    for (kind, stats) in &p.syscalls {
        entry
            .syscalls
            .entry(*kind)
            .or_insert(SyscallStats::ZERO)
            .merge(stats);
    }
    for (op, stats) in &p.uring {
        entry
            .uring
            .entry(*op)
            .or_insert(UringStats::ZERO)
            .merge(stats);
    }
}

/// An exited process's time traced: from its start, or from when it joined
/// (attach, its admission or its move into the `--cgroup`) if later,
/// to its end. The kernel's record of its start is to the nanosecond,
/// /proc's to the clock tick.
fn traced_s(end: &End, info: &ProcessInfo, attach_boot_ns: u64, joined: Option<u64>) -> f64 {
    let start = end
        .start_boot_ns
        .unwrap_or_else(|| attach_boot_ns + (info.started_after_attach_s * 1e9) as u64);
    let seen_from = start.max(attach_boot_ns).max(joined.unwrap_or(0));
    end.end_boot_ns.saturating_sub(seen_from) as f64 / 1e9
}

/// What /proc says of a traced process at this reading: its name, whether it
/// still runs, its fds by class and its epoll sets as the kernel lists them.
/// For each running process with no call counted, the measured calls its
/// threads are blocked in, from /proc (one read per thread, for quiet
/// processes only).
fn note_blocked_calls(snapshot: &mut Snapshot) {
    for (tgid, p) in snapshot.processes.iter_mut() {
        let quiet = p.syscalls.values().all(|s| s.calls == 0) && p.uring.is_empty();
        if !p.info.alive || p.info.folded > 0 || !quiet {
            continue;
        }
        for nr in targets::blocked_syscalls(*tgid) {
            if let Some(kind) = SyscallKind::from_nr(nr) {
                *p.info.blocked_in.entry(kind).or_insert(0) += 1;
            }
        }
    }
}

fn describe(
    tgid: u32,
    known: Option<&Known>,
    attach_ticks: u64,
    attach_boot_ns: u64,
) -> ProcessInfo {
    let (comm, alive, start_ticks) = match known {
        Some(k) => (
            k.comm.clone(),
            k.alive,
            k.id.as_ref().map(|id| id.start_time),
        ),
        None => {
            // Seen only in the aggregates: a short-lived followed child.
            let id = ProcessId::of(tgid);
            let comm = targets::comm_of(tgid).unwrap_or_else(|| b"?".to_vec());
            (
                comm,
                id.as_ref().is_some_and(ProcessId::alive),
                id.map(|id| id.start_time),
            )
        }
    };
    let started_after_attach_s = start_ticks.map_or(0.0, |start| {
        start.saturating_sub(attach_ticks) as f64 / targets::clock_ticks_per_sec()
    });
    // One admitted, or moved into the --cgroup, after attach counts from
    // then.
    let joined_after_attach_s = known
        .and_then(|k| k.joined_boot_ns)
        .map_or(0.0, |at| at.saturating_sub(attach_boot_ns) as f64 / 1e9);
    let started_after_attach_s = started_after_attach_s.max(joined_after_attach_s);
    if !alive {
        return ProcessInfo {
            comm,
            alive,
            started_after_attach_s,
            ..ProcessInfo::default()
        };
    }
    let fd_classes = match targets::fd_table(tgid) {
        Ok(table) => table.classes,
        Err(e) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            // A process that is exiting refuses the listing to its own user
            // too: that is no missing privilege, and the next reading sees
            // the exit.
            if e.kind() == std::io::ErrorKind::PermissionDenied && !targets::is_exiting(tgid) {
                WARNED.call_once(|| log::warn!("cannot list /proc/{tgid}/fd ({e}): its fd classes and epoll sets are not shown (they need CAP_SYS_PTRACE, or the process's own user); the per-call figures are measured all the same"));
            }
            BTreeMap::new()
        }
    };
    ProcessInfo {
        title: targets::process_title(tgid, &comm),
        comm,
        alive,
        fd_classes,
        epoll_interest: targets::epoll_sets(tgid).into_iter().collect(),
        started_after_attach_s,
        ..ProcessInfo::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(processes: &[(u32, u64)]) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for &(tgid, calls) in processes {
            let mut wait = SyscallStats::ZERO;
            wait.calls = calls;
            let p = ProcessSnap::new(tgid, b"loop", [(SyscallKind::EpollWait, wait)]);
            snapshot.processes.insert(tgid, p);
        }
        snapshot
    }

    /// Activity is calls over a whole reading interval: a process that
    /// joined during it is no candidate for eviction yet, however few its
    /// calls; at the first reading, those traced since attach are, by their
    /// calls since (nothing could be evicted for two intervals otherwise).
    #[test]
    fn a_process_new_in_the_interval_has_no_activity_yet() {
        let before = reading(&[(10, 5)]);
        let mut now = reading(&[(10, 6), (20, 0)]);
        assert_eq!(activity(Some(&before), &now), BTreeMap::from([(10, 1)]));
        assert_eq!(activity(None, &now), BTreeMap::from([(10, 6), (20, 0)]));
        now.processes
            .get_mut(&20)
            .unwrap()
            .info
            .started_after_attach_s = 0.4;
        assert_eq!(activity(None, &now), BTreeMap::from([(10, 6)]));
    }

    /// Refusals counted between an eviction and the waiter's next call do
    /// not trigger another; new ones after that check do.
    #[test]
    fn refusals_right_after_an_eviction_are_stale() {
        let mut refusals = Refusals::default();
        assert!(!refusals.someone_waits(0));
        assert!(refusals.someone_waits(170));
        refusals.made_room();
        assert!(!refusals.someone_waits(173));
        assert!(!refusals.someone_waits(173));
        assert!(refusals.someone_waits(174));
    }
}
