//! The scheduler programs, on BTF-typed tracepoints: off-CPU time and
//! wakeups inside a call, and the traced set kept up to date as processes
//! fork, exec and exit. Task fields are read directly at the offsets user
//! space found in the kernel's BTF.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_ktime_get_boot_ns, bpf_ktime_get_ns,
        bpf_probe_read_kernel_str_bytes, bpf_task_pt_regs,
    },
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{
    admit, traced, ExitRecord, LastWakeup, Stat, StatsKey, SyscallKind, ThreadState,
    CGROUP_PATH_LEN,
};

use crate::{
    filter::{
        bump, existing_thread_slot, in_cgroup, is_stale, is_traced, lost, mark_candidate,
        maybe_traced, ns_ids, release_thread_slot, stats_slot, NOEXIST,
    },
    maps::{self, EVICTED, EXIT_COMMS, JOINED, LAST_WAKEUPS, NS_TGIDS, TRACED},
};

/// A `struct task_struct *` handed to a program by the kernel.
struct Task(*const u8);

impl Task {
    #[inline(always)]
    fn arg(ctx: &BtfTracePointContext, n: usize) -> Task {
        Task(ctx.arg(n))
    }

    #[inline(always)]
    fn field_u32(&self, offset: u32) -> u32 {
        // SAFETY: the offset is a 4-byte member of task_struct read from the
        // kernel's BTF; the verifier checks the load against that BTF.
        unsafe { core::ptr::read_volatile(self.0.add(offset as usize).cast::<u32>()) }
    }

    /// The task's id: a thread id (`pid` in the kernel's words).
    #[inline(always)]
    fn tid(&self) -> u32 {
        self.field_u32(maps::task_pid_offset())
    }

    /// The process the task belongs to (`tgid`).
    #[inline(always)]
    fn tgid(&self) -> u32 {
        self.field_u32(maps::task_tgid_offset())
    }

    /// Whether the task sleeps in the cgroup freezer's trap (`docker
    /// pause`): its `jobctl` has JOBCTL_TRAP_FREEZE. It sleeps like any
    /// task there, so the state alone does not tell.
    #[inline(always)]
    fn frozen(&self) -> bool {
        const JOBCTL_TRAP_FREEZE: u64 = 1 << 23;
        match maps::task_jobctl_offset() {
            0 => false,
            // SAFETY: an 8-byte member of task_struct read from the
            // kernel's BTF; the verifier checks the load against it.
            offset => unsafe {
                core::ptr::read_volatile(self.0.add(offset as usize).cast::<u64>())
                    & JOBCTL_TRAP_FREEZE
                    != 0
            },
        }
    }

    /// What the task sleeps in outside a traced call, from the number its
    /// entry saved (`orig_ax`): a futex (a pool's worker parked until there
    /// is work, or a thread waiting for a lock), a timed sleep (Go's sysmon
    /// between its polls), or neither.
    #[inline(always)]
    fn sleeps_in(&self) -> Sleep {
        const SYS_NANOSLEEP: u64 = 35;
        const SYS_FUTEX: u64 = 202;
        const SYS_RESTART_SYSCALL: u64 = 219;
        const SYS_CLOCK_NANOSLEEP: u64 = 230;
        const SYS_FUTEX_WAITV: u64 = 449;
        /// `orig_ax` in x86_64's `struct pt_regs`.
        const ORIG_AX: usize = 15 * 8;
        // SAFETY: the helper takes the task the kernel handed the program
        // and returns its saved user registers, a BTF-typed pointer the
        // verifier checks the load against.
        let nr = unsafe {
            let regs = bpf_task_pt_regs(self.0 as *mut _) as *const u8;
            if regs.is_null() {
                return Sleep::Other;
            }
            core::ptr::read_volatile(regs.add(ORIG_AX).cast::<u64>())
        };
        match nr {
            SYS_FUTEX | SYS_FUTEX_WAITV => Sleep::Futex,
            // A timed futex or sleep resumed after a stop or a debugger
            // comes back as restart_syscall (the traced calls resumed so
            // are in a traced call): an idle worker read 100 % busy after
            // a SIGSTOP.
            SYS_NANOSLEEP | SYS_CLOCK_NANOSLEEP | SYS_RESTART_SYSCALL => Sleep::Timed,
            _ => Sleep::Other,
        }
    }

    /// When the task's process started (its leader's `start_boottime`, the
    /// start /proc gives), CLOCK_BOOTTIME ns.
    #[inline(always)]
    fn process_start_boot_ns(&self) -> u64 {
        // SAFETY: both offsets are members of task_struct read from the
        // kernel's BTF (a task pointer and a u64); the verifier checks each
        // load against that BTF, and the leader outlives its threads.
        unsafe {
            let leader = core::ptr::read_volatile(
                self.0
                    .add(maps::task_group_leader_offset() as usize)
                    .cast::<*const u8>(),
            );
            core::ptr::read_volatile(
                leader
                    .add(maps::task_start_boottime_offset() as usize)
                    .cast::<u64>(),
            )
        }
    }
}

/// What a thread blocks in outside a traced call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sleep {
    Futex,
    Timed,
    Other,
}

/// Two threads woken from the same epoll fd within this window count as a
/// thundering herd: they were woken by the same readiness change.
const HERD_WINDOW_NS: u64 = 50_000;

/// Off-CPU time inside a call: switched out → switched back in.
/// `sched_switch(preempt, prev, next, prev_state)`.
#[btf_tracepoint(function = "sched_switch")]
pub fn mux_sched_switch(ctx: BtfTracePointContext) -> i32 {
    // `prev` is the current task: the argument spares a helper call on
    // every context switch of the machine.
    let prev_task = Task::arg(&ctx, 1);
    let prev = prev_task.tid();
    let next_is_candidate = {
        let next = Task::arg(&ctx, 2).tid();
        (next != 0 && maybe_traced(next)).then_some(next)
    };
    if !maybe_traced(prev) && next_is_candidate.is_none() {
        return 0;
    }
    // SAFETY: the helper has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(t) = existing_thread_slot(prev) {
        if t.switched_out_ns != 0 {
            // Switched out again with no switch-in seen since the last time.
            bump(Stat::SwitchInUnseen);
        }
        t.switched_out_ns = now;
        let blocks = blocks(&ctx);
        t.switched_out_as = if blocks {
            ThreadState::SWITCHED_OUT_ASLEEP
        } else {
            ThreadState::SWITCHED_OUT_PREEMPTED
        };
        let stopped = stops(&ctx) || (blocks && prev_task.frozen());
        t.stopped_since_ns = if stopped { now } else { 0 };
        if t.in_call != 0 && blocks {
            blocked_in_call(t);
        }
        // Outside traced calls only: the helper runs for no blocking wait.
        // A pool's thread asleep, in futex or a timed sleep, is parked: a
        // worker waiting for work, Go's sysmon between its polls (it read
        // 95 % busy and stalling). A loop alone on its poller that sleeps
        // so is blocked on a lock or in its handler's sleep, which is its
        // work, and a stall's reason.
        let sleep = match blocks && !stopped && t.in_call == 0 {
            true => prev_task.sleeps_in(),
            false => Sleep::Other,
        };
        let parks = sleep != Sleep::Other && shares_poller(t.epoll_id, t.tgid);
        if sleep == Sleep::Futex && !parks {
            t.switched_out_as = ThreadState::SWITCHED_OUT_IN_FUTEX;
        }
        t.parked_since_ns = if parks { now } else { 0 };
    }
    if let Some(next) = next_is_candidate {
        if let Some(t) = existing_thread_slot(next) {
            switched_in(t, now);
        }
    }
    0
}

/// Whether the switch puts `prev` to sleep: not preempted, and a state
/// other than running (the scheduler left it running, and the tracepoint
/// says so, when a signal cancelled the sleep). Only a wakeup runs it
/// again. `sched_switch(preempt, prev, next, prev_state)`.
#[inline(always)]
fn blocks(ctx: &BtfTracePointContext) -> bool {
    let preempt: u64 = ctx.arg(0);
    let prev_state: u64 = ctx.arg(3);
    preempt == 0 && prev_state as u32 != 0
}

/// Whether the switch stops `prev`: a stop signal, a ptrace stop
/// (`__TASK_STOPPED`, `__TASK_TRACED` in the raw state). It happens on the
/// way back to user space, after a call's return: never inside a wait
/// (nor does the cgroup freezer's trap, `Task::frozen`).
#[inline(always)]
fn stops(ctx: &BtfTracePointContext) -> bool {
    // __TASK_STOPPED, __TASK_TRACED, and TASK_FROZEN: cgroup v1's freezer
    // (`docker pause` there) puts a task in the refrigerator so.
    const STOPPED_TRACED_OR_FROZEN: u32 = 0x4 | 0x8 | 0x8000;
    let preempt: u64 = ctx.arg(0);
    let prev_state: u64 = ctx.arg(3);
    preempt == 0 && prev_state as u32 & STOPPED_TRACED_OR_FROZEN != 0
}

/// The thread blocks in its call: a wakeup is due before it runs again. One
/// still due from an earlier block was never reported (its switch-in was
/// hidden too, or the check at it would have counted it).
#[inline(always)]
fn blocked_in_call(t: &mut ThreadState) {
    if t.wakeup_due != 0 {
        bump(Stat::WakeupUnseen);
    }
    t.wakeup_due = 1;
}

/// A traced thread gets a CPU: the time it was away goes to the call in
/// flight, and — unless it was waiting for readiness — to the loop
/// iteration; after a wakeup in a call, the delay is its run-queue latency.
#[inline(always)]
fn switched_in(t: &mut ThreadState, now: u64) {
    // Running again after a block with no wakeup reported since.
    if t.wakeup_due != 0 {
        t.wakeup_due = 0;
        bump(Stat::WakeupUnseen);
    }
    if t.switched_out_ns != 0 {
        let away = now.saturating_sub(t.switched_out_ns);
        if t.in_call != 0 {
            t.off_cpu_ns += away;
        }
        let in_wait = t.in_call != 0
            && SyscallKind::from_u32(t.in_call - 1).is_some_and(SyscallKind::is_wait);
        // Summed in every iteration, timed or not: a stall the tick finds
        // in an untimed one needs it too (a wait's return clears it). A
        // stop is no part of the loop's work: summed apart, to be taken
        // out of the iteration.
        if t.stopped_since_ns != 0 {
            t.stopped_ns += away;
            if !in_wait {
                t.iter_stopped_ns += away;
            }
            t.stopped_since_ns = 0;
        } else if t.parked_since_ns != 0 {
            // Parked: never in a traced call (see `sleeps_in_futex`).
            t.parked_ns += away;
            t.iter_parked_ns += away;
            t.parked_since_ns = 0;
        } else if !in_wait {
            t.iter_off_cpu_ns += away;
            match t.switched_out_as {
                ThreadState::SWITCHED_OUT_PREEMPTED => t.iter_preempted_ns += away,
                ThreadState::SWITCHED_OUT_IN_FUTEX => t.iter_futex_ns += away,
                _ => {}
            }
        }
        t.switched_out_ns = 0;
    }
    if t.woken_ns != 0 {
        if t.in_call != 0 {
            // Non-zero marks a delay to fold at the call's return.
            t.runq_ns = now.saturating_sub(t.woken_ns).max(1);
            t.switched_in_ns = now;
        }
        t.woken_ns = 0;
    }
}

/// Scheduler wakeups of a thread blocked in a call, and thundering herds on
/// a shared epoll fd.
/// `sched_wakeup(p)`.
#[btf_tracepoint(function = "sched_wakeup")]
pub fn mux_sched_wakeup(ctx: BtfTracePointContext) -> i32 {
    let tid = Task::arg(&ctx, 0).tid();
    if !maybe_traced(tid) {
        return 0;
    }
    let Some(t) = existing_thread_slot(tid) else {
        return 0;
    };
    t.wakeup_due = 0;
    if t.in_call == 0 {
        return 0;
    }
    t.sched_wakeups += 1;
    // SAFETY: the helper has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // The first wakeup counts: the delay runs from it.
    if t.woken_ns == 0 {
        t.woken_ns = now;
    }
    let kind = t.in_call - 1;
    if kind >= SyscallKind::EpollWait as u32
        && kind <= SyscallKind::EpollPwait2 as u32
        && t.epoll_id != 0
    {
        let key = StatsKey { tgid: t.tgid, kind };
        herd_check(t.epoll_id, tid, &key, now, t.switched_out_ns);
    }
    0
}

/// Whether other threads wait on the eventpoll the thread last waited on:
/// see [`LastWakeup::owner`]. Asked only as a sleep outside traced calls
/// begins.
#[inline(never)]
fn shares_poller(epoll_id: u64, tgid: u32) -> bool {
    if epoll_id == 0 {
        return false;
    }
    // SAFETY: a map value, read once.
    LAST_WAKEUPS
        .get_ptr(epoll_id)
        .is_some_and(|p| unsafe { (*p).owner } == tgid | LastWakeup::SHARED)
}

/// A thread waits on an eventpoll it did not wait on in its last wait:
/// a second thread makes the eventpoll a shared poller. Runs at a thread's
/// first wait and when it changes eventpolls, not at every wait.
#[inline(never)]
pub fn note_poller(epoll_id: u64, tid: u32, tgid: u32) {
    let first = LastWakeup {
        at_ns: 0,
        tid,
        owner: tgid,
    };
    if let Some(p) = LAST_WAKEUPS.get_ptr_mut(epoll_id) {
        // SAFETY: a map value, valid for the program's run.
        let last = unsafe { &mut *p };
        if last.owner & !LastWakeup::SHARED != tgid {
            // Another process's, freed: this is a new eventpoll.
            *last = first;
        } else if last.tid != tid {
            last.owner |= LastWakeup::SHARED;
        }
        return;
    }
    // A full map: the eventpoll's parks read as its loop's work, as if alone.
    let _ = LAST_WAKEUPS.insert(epoll_id, first, 0);
}

/// Counts a wakeup from the same eventpoll as another thread's moments ago,
/// when this thread was asleep in its wait already then (`blocked_ns`):
/// both woken for one readiness change. One that went to wait after it
/// (tokio hands its poller from worker to worker, one waiting at a time)
/// was woken for a change of its own.
#[inline(never)]
fn herd_check(epoll_id: u64, tid: u32, key: &StatsKey, now: u64, blocked_ns: u64) {
    if let Some(p) = LAST_WAKEUPS.get_ptr_mut(epoll_id) {
        // SAFETY: a map value, valid for the program's run.
        let last = unsafe { &mut *p };
        if last.tid != tid
            && last.at_ns != 0
            && now.saturating_sub(last.at_ns) < HERD_WINDOW_NS
            && blocked_ns != 0
            && blocked_ns <= last.at_ns
        {
            if let Some(s) = stats_slot(key) {
                s.herd_wakeups += 1;
            }
        }
        if last.tid != tid && last.owner & !LastWakeup::SHARED == key.tgid {
            last.owner |= LastWakeup::SHARED;
        }
        last.at_ns = now;
        last.tid = tid;
        return;
    }
    let first = LastWakeup {
        at_ns: now,
        tid,
        owner: key.tgid,
    };
    // A full map only forgets old eventpolls' last wakeups: LRU would fit,
    // but a miss here costs at most one herd count, so it is not a loss.
    let _ = LAST_WAKEUPS.insert(epoll_id, first, 0);
}

/// `--follow` children and `--comm` matches join the traced set at fork,
/// and `--cgroup`'s children become candidates:
/// `sched_process_fork(parent, child)`, in the parent.
#[btf_tracepoint(function = "sched_process_fork")]
pub fn mux_sched_fork(ctx: BtfTracePointContext) -> i32 {
    let child_task = Task::arg(&ctx, 1);
    let child = child_task.tid();
    // A new thread joins its traced process through the process's tgid.
    if child_task.tgid() != child {
        return 0;
    }
    // The parent is the current task.
    let tgid = Task::arg(&ctx, 0).tgid();
    // --cgroup: a child of a process in the cgroup becomes a candidate; its
    // first measured call admits it (in its own context, where the cgroup
    // is checked again: clone3 may have placed it elsewhere). Only forks
    // pay for the check, not every syscall of the machine.
    if maps::admission() == admit::CGROUP && in_cgroup() {
        mark_candidate(child);
        return 0;
    }
    let flag = if maps::follow() && maybe_traced(tgid) && is_traced(tgid) {
        traced::FOLLOWED
    } else if comm_matches() && in_our_namespace() {
        traced::COMM_MATCH
    } else {
        return 0;
    };
    mark_candidate(child);
    if TRACED.insert(child, flag, 1).is_err() && !is_traced(child) {
        lost!(
            Stat::TracedMapFull,
            "traced-process map full: child {} of pid {} is not traced",
            child,
            tgid
        );
    }
    0
}

/// `--cgroup`: a process moved into the cgroup or below it becomes a
/// candidate; its next measured call admits it, in its own context, where
/// `bpf_get_current_ancestor_cgroup_id` decides (the writer of
/// `cgroup.procs` runs this, not the process). The path compared here only
/// keeps processes moved elsewhere from becoming candidates: a v1
/// hierarchy's cgroup of the same path passes and is refused there.
/// `cgroup_attach_task(dst_cgrp, path, task, threadgroup)`; attached only
/// with `--cgroup`.
#[btf_tracepoint(function = "cgroup_attach_task")]
pub fn mux_cgroup_attach(ctx: BtfTracePointContext) -> i32 {
    let path: *const u8 = ctx.arg(1);
    let mut moved_to = [0u8; CGROUP_PATH_LEN];
    // SAFETY: the helper checks the address; a bad one is an Err.
    if unsafe { bpf_probe_read_kernel_str_bytes(path, &mut moved_to) }.is_ok()
        && !under_cgroup_path(&moved_to)
    {
        return 0;
    }
    let tgid = Task::arg(&ctx, 2).tgid();
    // The first move in counts: one between cgroups below it, or of a
    // process traced already, changes nothing.
    if !is_traced(tgid) {
        // SAFETY: the helper has no preconditions.
        let now = unsafe { bpf_ktime_get_boot_ns() };
        let _ = JOINED.insert(tgid, now, NOEXIST);
    }
    mark_candidate(tgid);
    0
}

/// Whether a cgroup path is the `--cgroup`'s or below it. A path longer
/// than the buffer compares on its start.
#[inline(always)]
fn under_cgroup_path(path: &[u8; CGROUP_PATH_LEN]) -> bool {
    let mut i = 0;
    while i < CGROUP_PATH_LEN {
        let want = maps::cgroup_path_byte(i);
        if want == 0 {
            return path[i] == 0 || path[i] == b'/';
        }
        if path[i] != want {
            return false;
        }
        i += 1;
    }
    true
}

/// `--comm` matches join the traced set when they exec, and a thread that
/// execs from a non-leader thread, taking its leader's tid, gives back the
/// slot under its old one (its next call claims one under the new):
/// `sched_process_exec(p, old_pid, bprm)`, in the new program.
#[btf_tracepoint(function = "sched_process_exec")]
pub fn mux_sched_exec(ctx: BtfTracePointContext) -> i32 {
    let old_tid = ctx.arg::<u64>(1) as u32;
    let task = Task::arg(&ctx, 0);
    if old_tid != task.tid()
        && maybe_traced(old_tid)
        && existing_thread_slot(old_tid).is_some_and(|t| !is_stale(t, task.tgid()))
    {
        // Its totals so far stay the process's (the calls are in its
        // aggregates): folded like a thread that exited.
        release_thread_slot(old_tid, Some(task.tgid()));
    }
    if comm_matches() {
        let tgid = task.tgid();
        // Inside a pid namespace, only its own processes: the namespace pid
        // names it to user space.
        if let Some((dev, ino)) = maps::pidns() {
            let Some((_, ns_tgid)) = ns_ids(dev, ino) else {
                return 0;
            };
            let _ = NS_TGIDS.insert(tgid, ns_tgid, 0);
        }
        mark_candidate(tgid);
        if TRACED.insert(tgid, traced::COMM_MATCH, 0).is_err() {
            lost!(
                Stat::TracedMapFull,
                "traced-process map full: pid {} (an exec matching --comm) is not traced",
                tgid
            );
        }
    }
    0
}

/// On the host, every process; inside a pid namespace, only the current
/// task's being in it (a `--comm` match elsewhere on the machine is not the
/// container's to see).
#[inline(always)]
fn in_our_namespace() -> bool {
    match maps::pidns() {
        None => true,
        Some((dev, ino)) => ns_ids(dev, ino).is_some(),
    }
}

/// A thread's slot goes when it exits; a process leaves the traced set when
/// its last thread exits, so a reused pid is never taken for it:
/// `sched_process_exit(p, group_dead)`, in the exiting thread.
#[btf_tracepoint(function = "sched_process_exit")]
pub fn mux_sched_exit(ctx: BtfTracePointContext) -> i32 {
    // `p` is the current task.
    let task = Task::arg(&ctx, 0);
    let (tid, tgid) = (task.tid(), task.tgid());
    // Every thread that ever took a slot is a candidate by its tid: its slot
    // goes back even when its process is no longer one (a slot left under
    // a tid that now names a thread of another process, see `thread_slot`).
    let group_dead = ctx.arg::<u64>(1) & 0xff != 0;
    if maybe_traced(tid) {
        // A thread that leaves its process behind joins its exited threads.
        release_thread_slot(tid, (!group_dead).then_some(tgid));
    }
    // Threads of a traced process share its tgid, a candidate.
    if !maybe_traced(tgid) {
        return 0;
    }
    if group_dead && is_traced(tgid) {
        let _ = TRACED.remove(tgid);
        // Keyed by the pid user space knows it by.
        let mut user_tgid = tgid;
        if maps::pidns().is_some() {
            // SAFETY: a plain u32 value, copied out at once.
            let Some(ns_tgid) = (unsafe { NS_TGIDS.get(tgid) }).copied() else {
                return 0;
            };
            let _ = NS_TGIDS.remove(tgid);
            user_tgid = ns_tgid;
        }
        // A child that lives less than user space's poll still gets a name,
        // and each process its own time traced.
        let mut start_boot_ns = task.process_start_boot_ns();
        // --all, --cgroup: one that joined after it started was traced
        // from then.
        if maps::admission() != admit::NONE {
            // SAFETY: a plain u64 value, copied out at once.
            if let Some(joined) = unsafe { JOINED.get(tgid) }.copied() {
                start_boot_ns = start_boot_ns.max(joined);
                let _ = JOINED.remove(tgid);
            }
        }
        let record = ExitRecord {
            comm: bpf_get_current_comm().unwrap_or_default(),
            start_boot_ns,
            // SAFETY: the helper has no preconditions.
            exit_boot_ns: unsafe { bpf_ktime_get_boot_ns() },
        };
        let _ = EXIT_COMMS.insert(user_tgid, record, 0);
    } else if group_dead && maps::admission() != admit::NONE {
        // An evicted process is gone: its pid, reused, may be admitted.
        let _ = EVICTED.remove(tgid);
    }
    0
}

#[inline(always)]
fn comm_matches() -> bool {
    let want: [u8; 16] = maps::comm();
    if want[0] == 0 {
        return false;
    }
    let Ok(have) = bpf_get_current_comm() else {
        return false;
    };
    let mut i = 0;
    while i < 16 {
        if have[i] != want[i] {
            return false;
        }
        if want[i] == 0 {
            return true;
        }
        i += 1;
    }
    true
}
