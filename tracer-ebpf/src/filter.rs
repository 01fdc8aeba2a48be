//! Who is traced, decided in as few instructions as possible, and the slots
//! of traced threads and processes. Every program starts here.

use tracer_common::{candidate_slot, Stat, StatsKey, SyscallStats, ThreadState};

use crate::maps::{CANDIDATES, COUNTERS, STATS, THREADS, TRACED, ZERO_STATS, ZERO_THREAD};

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

/// The thread's slot. Only threads of traced processes have one (inserted on
/// their first call, removed when they exit), so a hit needs no second lookup
/// in TRACED: the traced process's calls pay one hash lookup, not two.
#[inline(always)]
pub fn thread_slot(tid: u32, tgid: u32) -> Option<&'static mut ThreadState> {
    if let Some(p) = THREADS.get_ptr_mut(tid) {
        // SAFETY: a map value stays valid for the program's run; only this
        // thread's programs write its slot, and they never run concurrently.
        return Some(unsafe { &mut *p });
    }
    if !is_traced(tgid) {
        return None;
    }
    let zero = ZERO_THREAD.get_ptr(0)?;
    // SAFETY: ZERO_THREAD is never written: a valid, zeroed value.
    let zero = unsafe { &*zero };
    mark_candidate(tid);
    if THREADS.insert(tid, zero, 0).is_err() {
        lost!(
            Stat::ThreadMapFull,
            "thread map full: tid {} of pid {} is not measured (raise --max-threads)",
            tid,
            tgid
        );
        return None;
    }
    // SAFETY: as above.
    let t = THREADS.get_ptr_mut(tid).map(|p| unsafe { &mut *p })?;
    t.tgid = tgid;
    Some(t)
}

/// The thread's slot if it has one (the hot path of exits and the scheduler).
#[inline(always)]
pub fn existing_thread_slot(tid: u32) -> Option<&'static mut ThreadState> {
    // SAFETY: as in `thread_slot`.
    THREADS.get_ptr_mut(tid).map(|p| unsafe { &mut *p })
}

/// The (process, syscall) aggregate on this CPU, created on first use.
#[inline(always)]
pub fn stats_slot(key: &StatsKey) -> Option<&'static mut SyscallStats> {
    if let Some(p) = STATS.get_ptr_mut(key) {
        // SAFETY: a per-CPU map value: no other program writes this CPU's copy
        // while this one runs.
        return Some(unsafe { &mut *p });
    }
    let zero = ZERO_STATS.get_ptr(0)?;
    // SAFETY: ZERO_STATS is never written: a valid, zeroed value.
    let zero = unsafe { &*zero };
    // By reference: the value is too large to copy onto the 512-byte stack.
    if STATS.insert(key, zero, 0).is_err() {
        lost!(
            Stat::StatsMapFull,
            "aggregate map full: pid {} syscall #{} is not counted",
            key.tgid,
            key.kind
        );
        return None;
    }
    // SAFETY: as above.
    STATS.get_ptr_mut(key).map(|p| unsafe { &mut *p })
}
