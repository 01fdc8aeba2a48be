//! Who is traced, decided in as few instructions as possible, and the slots
//! of traced threads and processes. Every program starts here.

use aya_ebpf::{
    bindings::bpf_pidns_info,
    helpers::generated::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_ns_current_pid_tgid, bpf_ktime_get_boot_ns,
    },
};
use tracer_common::{
    admit, candidate_slot, traced, ExitedThreads, Stat, StatsKey, SyscallKind, SyscallStats,
    ThreadState, STATS_SLOT_KINDS, TIDS_PER_INDEX_ENTRY,
};

use crate::maps::{
    self, pidns, CANDIDATES, COUNTERS, CPU_LAST_THREAD, EVICTED, EXITED_THREADS, FREE_STATS,
    FREE_THREADS, JOINED, NS_PENDING, NS_PENDING_ACTIVE, NS_TGIDS, STATS, STATS_SLOTS,
    THREAD_HIGH_WATER, THREAD_INDEX, THREAD_STATES, TRACED,
};

/// `BPF_NOEXIST`: insert only if absent.
pub(crate) const NOEXIST: u64 = 1;

/// How many of each loss are logged per CPU: the first few say where it
/// happens (tid, syscall, address), the counter says how often.
pub const LOGGED_PER_CPU: u64 = 3;

/// Counts a loss and logs its first occurrences on this CPU (shown with
/// `muxtrace -v`; with logging off the kernel writes no record at all).
/// Only ever on a rare path, never on the hot one.
macro_rules! lost {
    ($stat:expr, $($fmt:tt)+) => {
        if $crate::filter::bump($stat) <= $crate::filter::LOGGED_PER_CPU {
            aya_log_ebpf::info!(&(), $($fmt)+);
        }
    };
}
pub(crate) use lost;

/// Counts something the programs could not measure or store. Returns the
/// count on this CPU so far.
#[inline(always)]
pub fn bump(stat: Stat) -> u64 {
    match COUNTERS.get_ptr_mut(stat as u32) {
        Some(p) => {
            // SAFETY: a per-CPU slot: no other program writes it concurrently.
            unsafe {
                *p += 1;
                *p
            }
        }
        None => 0,
    }
}

/// Whether `id` (a tgid or tid) may be traced: one array load.
#[inline(always)]
pub fn maybe_traced(id: u32) -> bool {
    CANDIDATES
        .get(candidate_slot(id))
        .is_some_and(|marked| *marked != 0)
}

#[inline(always)]
pub fn mark_candidate(id: u32) {
    if let Some(p) = CANDIDATES.get_ptr_mut(candidate_slot(id)) {
        // SAFETY: a valid array slot. A plain store of a constant: concurrent
        // markers cannot lose it.
        unsafe { *p = 1 };
    }
}

#[inline(always)]
pub fn is_traced(tgid: u32) -> bool {
    // SAFETY: the value is only tested for presence, never read.
    unsafe { TRACED.get(tgid) }.is_some()
}

/// The current task's (tid, tgid) in muxtrace's pid namespace `(dev, ino)`;
/// `None` when the task is in another one (an ancestor, a sibling
/// container, or one nested in ours: the helper matches the task's own
/// namespace only).
#[inline(always)]
pub fn ns_ids(dev: u64, ino: u64) -> Option<(u32, u32)> {
    let mut info = bpf_pidns_info { pid: 0, tgid: 0 };
    // SAFETY: `info` is a valid, writable bpf_pidns_info of the size given.
    let rc = unsafe {
        bpf_get_ns_current_pid_tgid(
            dev,
            ino,
            &mut info,
            core::mem::size_of::<bpf_pidns_info>() as u32,
        )
    };
    (rc == 0).then_some((info.pid, info.tgid))
}

/// Inside a pid namespace: whether the current process (kernel tgid
/// `tgid`) was named by user space by its namespace pid and has now joined
/// the traced set under its kernel tgid. Only the namespace's sys_enter
/// program calls it.
#[inline(never)]
pub fn adopt_pending(tgid: u32) -> bool {
    let Some((dev, ino)) = pidns() else {
        return false;
    };
    if NS_PENDING_ACTIVE.get(0).is_none_or(|active| *active == 0) {
        return false;
    }
    let Some((_, ns_tgid)) = ns_ids(dev, ino) else {
        return false;
    };
    // SAFETY: a plain u32 value, copied out at once.
    let Some(flags) = (unsafe { NS_PENDING.get(ns_tgid) }).copied() else {
        return false;
    };
    // A candidate first, as user space does for a pid it traces.
    mark_candidate(tgid);
    if TRACED.insert(tgid, flags, 0).is_err() {
        lost!(
            Stat::TracedMapFull,
            "traced-process map full: pid {} (pid {} in muxtrace's namespace) is not traced",
            tgid,
            ns_tgid
        );
        return false;
    }
    let _ = NS_TGIDS.insert(tgid, ns_tgid, 0);
    let _ = NS_PENDING.remove(ns_tgid);
    true
}

/// `--all`: whether a call of this kind admits an untraced process — a wait
/// call, or io_uring_enter (whether it waits is known only once its
/// arguments are read). Every other call of an untraced process stops at
/// the candidates filter, so a process that never waits pays nothing more.
#[inline(always)]
pub fn admits_waiter(kind: SyscallKind) -> bool {
    maps::admission() == admit::WAITERS && (kind.is_wait() || kind.is_io_uring())
}

/// Whether the current task is in the `--cgroup` or below it: one helper
/// call (the kernel reads the current task's cgroup ancestor at that
/// depth, 0 when the task's cgroup is not that deep).
#[inline(always)]
pub fn in_cgroup() -> bool {
    let (id, level) = maps::cgroup();
    // SAFETY: the helper has no preconditions.
    let ancestor = unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) };
    ancestor == id
}

/// `--all`, `--cgroup`: whether the current process (kernel tgid `tgid`),
/// not traced yet, joins the traced set at this call. Under `--all` at a
/// wait call, under `--cgroup` at any measured call when its cgroup is the
/// one or below it; never muxtrace itself, nor a process user space
/// evicted. With neither, the verifier drops the call: `--pid` pays nothing.
#[inline(always)]
fn admit<const NS: bool>(tgid: u32, kind: SyscallKind) -> bool {
    maps::admission() != admit::NONE && try_admit::<NS>(tgid, kind as u32)
}

#[inline(never)]
fn try_admit<const NS: bool>(tgid: u32, kind: u32) -> bool {
    match maps::admission() {
        admit::WAITERS => {
            if !SyscallKind::from_u32(kind).is_some_and(|k| k.is_wait() || k.is_io_uring()) {
                return false;
            }
        }
        admit::CGROUP => {
            if !in_cgroup() {
                return false;
            }
        }
        _ => return false,
    }
    // muxtrace by the pid it knows itself by; inside a pid namespace, a
    // process outside it has no pid muxtrace could name: not admitted.
    let own = if NS {
        let Some((dev, ino)) = pidns() else {
            return false;
        };
        let Some((_, ns_tgid)) = ns_ids(dev, ino) else {
            return false;
        };
        ns_tgid
    } else {
        tgid
    };
    if own == maps::self_tgid() {
        return false;
    }
    // SAFETY: the value is only tested for presence, never read.
    if unsafe { EVICTED.get(tgid) }.is_some() {
        return false;
    }
    mark_candidate(tgid);
    if TRACED.insert(tgid, traced::ADMITTED, NOEXIST).is_err() && !is_traced(tgid) {
        lost!(
            Stat::TracedMapFull,
            "traced-process map full: pid {} is not admitted yet (user space evicts the least active; see --max-processes)",
            tgid
        );
        return false;
    }
    // --all: nothing of it was measured before this call. (--cgroup: the
    // move into the cgroup, kept already, counts; one there at attach or
    // born there needs no time.)
    if maps::admission() == admit::WAITERS {
        // SAFETY: the helper has no preconditions.
        let now = unsafe { bpf_ktime_get_boot_ns() };
        let _ = JOINED.insert(tgid, now, NOEXIST);
    }
    true
}

/// The (tid, tgid) user space names the current thread by: the kernel's, or
/// (`NS`) its namespace's. A traced process outside the namespace (a
/// followed child that made a nested one) leaves the traced set, counted.
#[inline(always)]
fn user_ids<const NS: bool>(tid: u32, tgid: u32) -> Option<(u32, u32)> {
    if !NS {
        return Some((tid, tgid));
    }
    let (dev, ino) = pidns()?;
    let Some(ids) = ns_ids(dev, ino) else {
        let _ = TRACED.remove(tgid);
        lost!(
            Stat::OutsideNamespace,
            "pid {} is in a pid namespace nested in muxtrace's: not traced",
            tgid
        );
        return None;
    };
    // A followed child's namespace pid becomes known at its first call.
    let _ = NS_TGIDS.insert(tgid, ids.1, NOEXIST);
    Some(ids)
}

/// Where the slot of `tid` is kept in [`THREAD_INDEX`]: `None` for a tid
/// above the pid_max user space sized it by.
#[inline(always)]
fn index_entry(tid: u32) -> Option<*mut u32> {
    let entry = THREAD_INDEX.get_ptr_mut(tid / TIDS_PER_INDEX_ENTRY)?;
    let lane = (tid % TIDS_PER_INDEX_ENTRY) as usize;
    // SAFETY: a valid array value; `lane` is below its length.
    Some(unsafe { (entry as *mut u32).add(lane) })
}

/// The slot at `claimed` (an index plus one, as THREAD_INDEX holds it).
#[inline(always)]
fn slot_at(claimed: u32) -> Option<&'static mut ThreadState> {
    // SAFETY: a map value stays valid for the program's run; only this
    // thread's programs and its wakers write its slot (see ThreadState).
    THREAD_STATES
        .get_ptr_mut(claimed.wrapping_sub(1))
        .map(|p| unsafe { &mut *p })
}

/// The slot of the thread whose saved registers are at `regs`, when the
/// last traced call to enter on this CPU was that thread's: found without
/// asking the kernel which task runs (a helper call, ~14 ns here) and
/// without the tid index. `regs` is the top of a live task's kernel stack,
/// so it names one thread, and a slot holds it only while that thread
/// lives: a thread's exit releases its slot, an exec that changes its tid
/// releases the old one, and `sys_enter` attaches after the programs that
/// see both. A stale record, or one torn by a preempted writer, fails the
/// check against the slot and falls back to the lookup by tid.
#[inline(always)]
pub fn remembered_slot(regs: u64) -> Option<&'static mut ThreadState> {
    let last = CPU_LAST_THREAD.get_ptr(0)?;
    // SAFETY: a per-CPU map value, copied out.
    let [last_regs, claimed] = unsafe { *last };
    if last_regs != regs {
        return None;
    }
    let t = slot_at(claimed as u32)?;
    (t.regs == regs && t.evicted == 0).then_some(t)
}

/// Stamps the thread's slot (`claimed`, as THREAD_INDEX holds it) with its
/// registers' and task's addresses, and this CPU with the slot, for
/// [`remembered_slot`] at the call's return and the thread's next calls.
#[inline(always)]
pub fn remember(regs: u64, task: u64, claimed: u32, t: &mut ThreadState) {
    t.regs = regs;
    t.task = task;
    if let Some(last) = CPU_LAST_THREAD.get_ptr_mut(0) {
        // SAFETY: this CPU's value; a writer preempted half-way leaves a
        // record `remembered_slot` rejects.
        unsafe { *last = [regs, u64::from(claimed)] };
    }
}

/// The thread's slot, claimed at its first measured call. Only threads of
/// traced processes have one (given back when they exit), so a hit needs
/// no lookup in TRACED: a traced call pays two array loads, the verifier's
/// inlined ones, and no hash lookup. `NS`: muxtrace runs in a pid
/// namespace. `kind`: the call being entered (under `--all`, a wait call
/// admits its process).
#[inline(always)]
pub fn thread_slot<const NS: bool>(
    tid: u32,
    tgid: u32,
    kind: SyscallKind,
) -> Option<(u32, &'static mut ThreadState)> {
    let Some(entry) = index_entry(tid) else {
        beyond_pid_max(tid, tgid);
        return None;
    };
    // SAFETY: `entry` points into a map value; only this thread writes it.
    let claimed = unsafe { *entry };
    if claimed != 0 {
        let t = slot_at(claimed)?;
        if t.evicted == 0 && !is_stale(t, tgid) {
            return Some((claimed, t));
        }
        release(entry, claimed, t);
    }
    claim::<NS>(entry, tid, tgid, kind)
}

/// Whether `t`, found under the current thread's tid, is another thread's:
/// a thread that execs from a non-leader thread takes its leader's tid and
/// leaves its slot under the old one, which the kernel may give to a thread
/// of any process. (Inside a pid namespace the slot holds the namespace's
/// tgid, which cannot be compared: not checked there.)
#[inline(always)]
pub fn is_stale(t: &ThreadState, tgid: u32) -> bool {
    maps::pidns().is_none() && t.tgid != tgid
}

/// A tid above the pid_max at attach (raised since) has no place in
/// THREAD_INDEX: a traced process's thread there is not measured, counted.
#[inline(never)]
fn beyond_pid_max(tid: u32, tgid: u32) {
    if is_traced(tgid) {
        lost!(
            Stat::ThreadMapFull,
            "tid {} of pid {} is above pid_max at attach: not measured (restart muxtrace)",
            tid,
            tgid
        );
    }
}

/// The first measured call of a thread with no slot: one claimed if its
/// process is traced (or joins the traced set now).
#[inline(always)]
fn claim<const NS: bool>(
    entry: *mut u32,
    tid: u32,
    tgid: u32,
    kind: SyscallKind,
) -> Option<(u32, &'static mut ThreadState)> {
    // A process named by its namespace pid may share a candidate slot with
    // a traced one: it is adopted here too, not only at the filter.
    if !is_traced(tgid) && !(NS && adopt_pending(tgid)) && !admit::<NS>(tgid, kind) {
        return None;
    }
    let (user_tid, user_tgid) = user_ids::<NS>(tid, tgid)?;
    let Ok(Some(index)) = FREE_THREADS.pop() else {
        lost!(
            Stat::ThreadMapFull,
            "thread slots full: tid {} of pid {} is not measured (raise --max-threads)",
            tid,
            tgid
        );
        return None;
    };
    let Some(t) = slot_at(index + 1) else {
        let _ = FREE_THREADS.push(index, 0);
        return None;
    };
    if let Some(high) = THREAD_HIGH_WATER.get_ptr_mut(0) {
        // SAFETY: this CPU's value: no other program writes it meanwhile.
        unsafe { *high = (*high).max(index + 1) };
    }
    zero_slot(t);
    t.tgid = user_tgid;
    t.tid = user_tid;
    mark_candidate(tid);
    // SAFETY: as in `thread_slot`.
    unsafe { *entry = index + 1 };
    Some((index + 1, t))
}

/// Zeroes a new slot a word at a time. A struct assignment is a byte-wise
/// memmove in BPF, a loop of 296 rounds the verifier walked in both
/// directions: a quarter of the enter program's verification.
#[inline(always)]
fn zero_slot(t: &mut ThreadState) {
    const WORDS: usize = core::mem::size_of::<ThreadState>() / 8;
    const _: () = assert!(
        core::mem::size_of::<ThreadState>().is_multiple_of(8)
            && core::mem::align_of::<ThreadState>() >= 8
    );
    let words = core::ptr::from_mut(t).cast::<u64>();
    for i in 0..WORDS {
        // SAFETY: inside the slot and aligned; all zeroes is a valid
        // ThreadState. Volatile, so it stays stores and never a memset.
        unsafe { words.add(i).write_volatile(0) };
    }
}

/// Gives the thread's slot back; only ever run by the thread itself (at
/// its exit, or its first call after an eviction), so never twice.
#[inline(never)]
fn release(entry: *mut u32, claimed: u32, t: &mut ThreadState) {
    // The thread runs (it releases its own slot): a wakeup still due was
    // hidden with its switch-in, and no later switch counted it.
    if t.wakeup_due != 0 {
        bump(Stat::WakeupUnseen);
    }
    // SAFETY: as in `thread_slot`.
    unsafe { *entry = 0 };
    t.tgid = 0;
    t.evicted = 0;
    // No longer found by the registers' address either.
    t.regs = 0;
    let _ = FREE_THREADS.push(claimed - 1, 0);
}

/// At the thread's exit (or an exec that changes its tid): its slot, if
/// it has one, goes back. With `fold_into` (the tgid of the process it
/// leaves, which lives on), its running totals go to that process's
/// exited threads first, unless the slot is another process's (stale) or
/// evicted.
#[inline(always)]
pub fn release_thread_slot(tid: u32, fold_into: Option<u32>) {
    let Some(entry) = index_entry(tid) else {
        return;
    };
    // SAFETY: as in `thread_slot`.
    let claimed = unsafe { *entry };
    if claimed == 0 {
        return;
    }
    if let Some(t) = slot_at(claimed) {
        if let Some(tgid) = fold_into {
            if t.evicted == 0 && !is_stale(t, tgid) {
                fold_exited(t);
            }
        }
        release(entry, claimed, t);
    }
}

/// Adds an exiting thread's totals to its process's exited threads (this
/// CPU's copy).
#[inline(never)]
fn fold_exited(t: &ThreadState) {
    let key = t.tgid;
    if EXITED_THREADS.get_ptr_mut(key).is_none()
        && EXITED_THREADS
            .insert(key, ExitedThreads::ZERO, NOEXIST)
            .is_err()
    {
        // Another CPU's insert of the same key raced this one: both copies
        // exist now. Otherwise the map is full.
        if EXITED_THREADS.get_ptr_mut(key).is_none() {
            lost!(
                Stat::StatsMapFull,
                "exited-threads map full: a thread of pid {} exited uncounted",
                key
            );
            return;
        }
    }
    if let Some(sums) = EXITED_THREADS.get_ptr_mut(key) {
        // SAFETY: this CPU's copy of a map value, valid for the run.
        unsafe { (*sums).fold(t) };
    }
}

/// The thread's slot if it has one (the hot path of exits and the
/// scheduler); an evicted process's thread has none.
#[inline(always)]
pub fn existing_thread_slot(tid: u32) -> Option<&'static mut ThreadState> {
    existing_claimed_slot(tid).map(|(_, t)| t)
}

/// The same with where it is (as THREAD_INDEX holds it), to remember.
#[inline(always)]
pub fn existing_claimed_slot(tid: u32) -> Option<(u32, &'static mut ThreadState)> {
    // SAFETY: a plain u32 of a map value, copied out.
    let claimed = unsafe { *index_entry(tid)? };
    if claimed == 0 {
        return None;
    }
    let t = slot_at(claimed)?;
    (t.evicted == 0).then_some((claimed, t))
}

/// The aggregate on this CPU of `t`'s process and `kind`, through the index
/// the thread keeps: on the hot path an array load, no hash lookup.
#[inline(always)]
pub fn thread_stats(t: &mut ThreadState, kind: SyscallKind) -> Option<&'static mut SyscallStats> {
    let k = kind as usize;
    if k >= STATS_SLOT_KINDS {
        return None;
    }
    let cached = t.stats_slots[k];
    let index = if cached != 0 {
        u32::from(cached) - 1
    } else {
        let index = stats_index(&StatsKey {
            tgid: t.tgid,
            kind: kind as u32,
        })?;
        // Below MAX_STATS_KEYS, which fits (tracer-common asserts it).
        t.stats_slots[k] = (index + 1) as u16;
        index
    };
    aggregate(index)
}

/// The aggregate on this CPU of `t`'s process and the kind numbered `k`,
/// when the thread has used it: for a program that knows the kind only as
/// a number it kept, bounded here where the verifier sees it.
#[inline(always)]
pub fn used_thread_stats(t: &ThreadState, k: u64) -> Option<&'static mut SyscallStats> {
    if k >= STATS_SLOT_KINDS as u64 {
        return None;
    }
    match t.stats_slots[k as usize] {
        0 => None,
        cached => aggregate(u32::from(cached) - 1),
    }
}

/// The (process, syscall) aggregate on this CPU, created on first use.
#[inline(always)]
pub fn stats_slot(key: &StatsKey) -> Option<&'static mut SyscallStats> {
    aggregate(stats_index(key)?)
}

#[inline(always)]
fn aggregate(index: u32) -> Option<&'static mut SyscallStats> {
    // SAFETY: a per-CPU map value: no other program writes this CPU's copy
    // while this one runs.
    STATS.get_ptr_mut(index).map(|p| unsafe { &mut *p })
}

/// Where the (process, syscall) aggregate is in `STATS`: an index from the
/// free queue at its first call. Once per thread and kind, so a subprogram.
#[inline(never)]
fn stats_index(key: &StatsKey) -> Option<u32> {
    // SAFETY: the value is copied out at once.
    if let Some(index) = unsafe { STATS_SLOTS.get(key) } {
        return Some(*index);
    }
    let Ok(Some(index)) = FREE_STATS.pop() else {
        lost!(
            Stat::StatsMapFull,
            "aggregate map full: pid {} syscall #{} is not counted",
            key.tgid,
            key.kind
        );
        return None;
    };
    if STATS_SLOTS.insert(key, index, NOEXIST).is_ok() {
        return Some(index);
    }
    // Another CPU placed this aggregate first (or the map is full): the
    // index goes back.
    let _ = FREE_STATS.push(index, 0);
    // SAFETY: as above.
    match unsafe { STATS_SLOTS.get(key) } {
        Some(index) => Some(*index),
        None => {
            lost!(
                Stat::StatsMapFull,
                "aggregate map full: pid {} syscall #{} is not counted",
                key.tgid,
                key.kind
            );
            None
        }
    }
}
