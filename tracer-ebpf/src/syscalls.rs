//! The syscall programs, on the raw syscall tracepoints (BTF-typed): on
//! enter, a measured call's arguments decoded into the thread's slot; on
//! exit, the call folded into its process's aggregate.

use aya_ebpf::{
    helpers::{
        bpf_get_prandom_u32, bpf_jiffies64, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_user,
    },
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{
    bucket,
    counter::Stall,
    kind::{
        ERESTARTNOINTR, ERESTARTSYS, ERESTART_RESTARTBLOCK, KIND_TABLE_LEN, NR_RESTART_SYSCALL,
        SA_RESTART,
    },
    pow2_bucket, pow2_of,
    uring::{
        IORING_ENTER_EXT_ARG, IORING_ENTER_EXT_ARG_REG, IORING_ENTER_GETEVENTS,
        IORING_ENTER_REGISTERED_RING,
    },
    ErrnoClass, Stat, SyscallKind, SyscallStats, ThreadState, SYSCALL_KINDS,
};

use crate::{
    args::{
        current_tid, fd_set_popcount, pollfds_watched, read_timeout, read_timeout_us,
        read_user_pair, Regs, Timeout, FD_SETSIZE, INFINITE,
    },
    filter::{
        admits_waiter, adopt_pending, bump, existing_claimed_slot, is_stale, lost, maybe_traced,
        release_thread_slot, remember, remembered_slot, thread_slot, thread_stats,
        used_thread_stats,
    },
    kernel::{self, FileType, Task},
    maps, uring,
};

/// Bytes of a `struct timespec`/`struct timeval` on 64-bit.
const TIME_STRUCT: u64 = 16;
/// The kernel's `sigset_t`: the one signal-mask size pselect6 and ppoll
/// take (any other fails them with EINVAL).
const SIGSET: u64 = 8;
/// Bytes of a `struct epoll_event` (packed on x86_64).
const EPOLL_EVENT: u64 = 12;
/// Bytes of a `struct pollfd`, and of its `revents` written back.
const POLLFD: u64 = 8;
const REVENTS: u64 = 2;
const EPOLL_CTL_DEL: u32 = 2;
/// What an io_uring wait that timed out returns.
const ETIME: i64 = 62;

/// Whether a measured call of the current task (`id` from
/// Task::pid_tgid) goes on to [`on_enter`]: a candidate; inside a
/// pid namespace, a process user space named by its namespace pid, at its
/// first measured call; under --all, any process at its first wait call.
/// In the top-level program, so that every other process's call returns
/// without a function call: on this machine's mitigations (SRSO "safe RET")
/// each call and return costs about 14 ns.
#[inline(always)]
fn enters<const NS: bool>(id: u64, kind: SyscallKind) -> bool {
    let tgid = (id >> 32) as u32;
    maybe_traced(tgid) || (NS && adopt_pending(tgid)) || admits_waiter(kind)
}

/// A measured call starts: the thread found (the slot this CPU remembers,
/// or the current task's by its tid) and the call's arguments decoded into
/// its slot. `NS`: muxtrace runs in a pid namespace (a program of its own,
/// so the host's hot path has not one instruction more for it). Inline,
/// like everything on the traced hot path: a subprogram call is a return
/// more.
#[inline(always)]
fn enter<const NS: bool>(ctx: &BtfTracePointContext) {
    let nr: i64 = ctx.arg(1);
    let regs = Regs::of(ctx);
    // One `on_enter` for both ways in: each is inlined whole.
    let (kind, resumed) = match kind_of_nr(nr) {
        Some(kind) => (kind, None),
        None if nr == NR_RESTART_SYSCALL => match resumed_poll(regs) {
            Some(found) => (SyscallKind::Poll, Some(found)),
            None => return,
        },
        None => return,
    };
    let (t, task) = if let Some(found) = resumed.or_else(|| remembered_thread(regs)) {
        found
    } else {
        let task = Task::current();
        let id = task.pid_tgid();
        if !enters::<NS>(id, kind) {
            return;
        }
        let Some((claimed, t)) = thread_slot::<NS>(id as u32, (id >> 32) as u32, kind) else {
            return;
        };
        remember(regs.addr(), task.addr(), claimed, t);
        (t, task)
    };
    on_enter(regs, kind, t, task);
}

/// The thread whose registers these are, with its task, when this CPU
/// remembers it (see `remembered_slot`): the entry's and the return's
/// first try.
#[inline(always)]
fn remembered_thread(regs: Regs) -> Option<(&'static mut ThreadState, Task)> {
    let t = remembered_slot(regs.addr())?;
    let task = Task::remembered(t.task);
    Some((t, task))
}

/// The thread's call starts: its arguments decoded into its slot.
#[inline(always)]
fn on_enter(regs: Regs, mut kind: SyscallKind, t: &mut ThreadState, task: Task) {
    t.in_call = kind as u32 + 1;
    // The last call's restart code is settled: it was restarted (this may
    // be it, again) or no handler turned it into EINTR.
    t.restart_kind = 0;
    // Running, yet still switched out by the last word: the kernel never
    // reported its switch-in. When is unknown, so the time is not guessed;
    // cleared, so this call is not charged for it.
    if t.switched_out_ns != 0 {
        t.switched_out_ns = 0;
        // A stop's or a park's end is unknown as well: not counted.
        maps::clear(&mut t.stopped_since_ns);
        maps::clear(&mut t.parked_since_ns);
        bump(Stat::SwitchInUnseen);
    }
    for field in [
        &mut t.off_cpu_ns,
        &mut t.sched_wakeups,
        &mut t.woken_ns,
        &mut t.runq_ns,
        &mut t.watched,
        &mut t.size_arg,
        &mut t.bookkeeping_in,
        &mut t.bookkeeping_out_fixed,
    ] {
        maps::clear(field);
    }
    t.timeout_us = INFINITE;
    t.fd = regs.arg(0) as u32;
    match kind {
        SyscallKind::Select => decode_select(regs, t, false),
        SyscallKind::Pselect6 => decode_select(regs, t, true),
        SyscallKind::Poll | SyscallKind::Ppoll => decode_poll(regs, t, kind == SyscallKind::Ppoll),
        SyscallKind::EpollWait | SyscallKind::EpollPwait | SyscallKind::EpollPwait2 => {
            decode_epoll_wait(regs, t, kind as u32, task)
        }
        // ADD and MOD copy one epoll_event in; DEL copies none.
        SyscallKind::EpollCtl if regs.arg(1) as u32 != EPOLL_CTL_DEL => {
            t.bookkeeping_in = EPOLL_EVENT;
        }
        SyscallKind::IoUringEnter if decode_uring_enter(regs, t, task) => {
            kind = SyscallKind::IoUringWait;
            t.in_call = kind as u32 + 1;
        }
        // Data moves from arg 0 to arg 2, one end a pipe: from a socket it
        // is received.
        SyscallKind::Splice if kernel::fd_is_socket(task, regs.arg(0) as u32) => {
            kind = SyscallKind::SpliceRecv;
            t.in_call = kind as u32 + 1;
        }
        _ => {}
    }
    // A wait is timed when the last one's return was stamped for the
    // iteration between them (all are, unless `--time-every`).
    let timed = if kind.is_wait() {
        maps::time_every() <= 1 || core::mem::take(&mut t.next_wait_timed) != 0
    } else {
        timed_this_time(t)
    };
    t.call_timed = u32::from(timed);
    if timed {
        // Last, so decoding the arguments is not charged to the call.
        // SAFETY: the helper has no preconditions.
        t.enter_ns = unsafe { bpf_ktime_get_ns() };
    } else if kind.is_wait() {
        t.tick_stall_ns = untimed_iteration_stall(t);
    }
    note_in_iteration(t, kind);
}

/// Under `--time-every`, the untimed iteration that ends at this wait's
/// entry: its length by the kernel's tick when that shows it surely a
/// stall (more than `--stall` even if it began just before the tick it
/// started in ended), 0 otherwise. Only then is the clock read, for when
/// it ended. `bpf_jiffies64` is one load (the verifier inlines it): a
/// stall in any iteration is found, where timing only sampled ones found
/// one in N.
#[inline(always)]
fn untimed_iteration_stall(t: &mut ThreadState) -> u64 {
    // Stamped only when the tick is known.
    let started = t.last_wait_exit_jiffies;
    if started == 0 {
        return 0;
    }
    let tick_ns = maps::tick_ns();
    // SAFETY: the helper has no preconditions. Whole ticks stopped are
    // taken out (see `fold_iteration`).
    let ticks = unsafe { bpf_jiffies64() }
        .wrapping_sub(started)
        .saturating_sub((t.iter_stopped_ns + t.iter_parked_ns) / tick_ns.max(1));
    if ticks < maps::stall_ticks() {
        return 0;
    }
    // SAFETY: as above.
    t.enter_ns = unsafe { bpf_ktime_get_ns() };
    ticks * tick_ns
}

/// Whether this call, not a wait, is timed under `--time-every N`: after a
/// timed call the thread leaves a random 0..=2N−2 calls untimed (N − 1 on
/// average, so one in N is timed), and a loop's fixed order of calls does
/// not decide which kinds are. The clock reads are most of what timing
/// costs (~110 ns of a traced call here); counts, bytes, errors and
/// off-CPU time stay exact either way.
#[inline(always)]
fn timed_this_time(t: &mut ThreadState) -> bool {
    sampled(&mut t.untimed_left)
}

/// Whether the loop iteration starting at this wait's return is timed, and
/// with it the wait that ends it: its return stamped, the next wait's entry
/// and return too. Under `--time-every N` one in N, by the same random gaps
/// as [`timed_this_time`] but counted in waits: sampling the two ends apart
/// would leave an iteration with both ends one time in N².
#[inline(always)]
fn next_iteration_timed(t: &mut ThreadState) -> bool {
    // A constant to the verifier: with every call timed, the rest is gone.
    if maps::time_every() <= 1 {
        return true;
    }
    let timed = sampled(&mut t.untimed_waits_left);
    t.next_wait_timed = u32::from(timed);
    timed
}

/// One step of a `--time-every` gap: true when `left` has run out, which
/// then draws the next gap.
#[inline(always)]
fn sampled(left: &mut u32) -> bool {
    let every = maps::time_every();
    if every <= 1 {
        return true;
    }
    if *left != 0 {
        *left -= 1;
        return false;
    }
    // SAFETY: the helper has no preconditions.
    *left = unsafe { bpf_get_prandom_u32() } % (2 * every - 1);
    true
}

/// A call other than a wait is part of the loop iteration in progress. (A
/// wait's entry ends it: its return folds it, from the entry time it keeps,
/// so the entry pays nothing for the loop.)
#[inline(always)]
fn note_in_iteration(t: &mut ThreadState, kind: SyscallKind) {
    if !kind.is_wait() {
        t.iter_kinds |= 1 << (kind as u32);
    }
}

/// select(n, readfds, writefds, exceptfds, timeval) and
/// pselect6(n, readfds, writefds, exceptfds, timespec, {sigmask, size}).
#[inline(never)]
fn decode_select(regs: Regs, t: &mut ThreadState, pselect: bool) {
    // `int n`: the kernel rejects a negative one.
    let n_arg = regs.arg(0) as i32;
    let mut n = if n_arg < 0 { 0 } else { n_arg as u64 };
    if n > FD_SETSIZE {
        lost!(
            Stat::SelectTruncated,
            "select n = {} > 1024: fds past 1023 not counted (tid {})",
            n,
            current_tid()
        );
        n = FD_SETSIZE;
    }
    let set_bytes = n.div_ceil(64) * 8;
    let mut watched = 0;
    let mut sets = 0;
    for i in 1..=3 {
        let p = regs.arg(i);
        if p != 0 {
            sets += 1;
            watched += fd_set_popcount(p, n);
        }
    }
    t.watched = watched;
    t.size_arg = if n_arg < 0 { 0 } else { n_arg as u64 };
    t.bookkeeping_in = sets * set_bytes;
    t.bookkeeping_out_fixed = sets * set_bytes;
    let tp = regs.arg(4);
    let timeout = read_timeout(tp, if pselect { 1 } else { 1000 });
    t.timeout_us = timeout.map_or(INFINITE, |t| t.us);
    let mut sigmask_valid = true;
    if pselect {
        // pselect6's sixth argument points at {sigset_t *ss; size_t len}.
        let sig = regs.arg(5);
        if sig != 0 {
            t.bookkeeping_in += 16;
            match read_user_pair(sig) {
                Some([ss, len]) if ss != 0 => {
                    t.bookkeeping_in += len;
                    sigmask_valid = len == SIGSET;
                }
                Some(_) => {}
                None => sigmask_valid = false,
            }
        }
    }
    if tp != 0 {
        t.bookkeeping_in += TIME_STRUCT;
    }
    t.timeout_written_back = timeout_written_back(timeout, sigmask_valid);
}

/// Bytes of the time left that select, pselect6 or ppoll write back over
/// their timeout: on every return once the timeout and the signal mask
/// passed their checks, interrupted or failed ones included.
#[inline(always)]
fn timeout_written_back(timeout: Option<Timeout>, sigmask_valid: bool) -> u64 {
    match timeout {
        Some(t) if t.written_back && sigmask_valid => TIME_STRUCT,
        _ => 0,
    }
}

/// poll(fds, nfds, timeout_ms) and ppoll(fds, nfds, timespec, sigmask, size).
#[inline(always)]
fn decode_poll(regs: Regs, t: &mut ThreadState, ppoll: bool) {
    // `unsigned int nfds`: the upper half of the register is ignored.
    let nfds = regs.arg(1) as u32 as u64;
    t.watched = pollfds_watched(regs.arg(0), nfds);
    t.size_arg = nfds;
    t.bookkeeping_in = POLLFD * nfds;
    t.bookkeeping_out_fixed = REVENTS * nfds;
    if !ppoll {
        let ms = regs.arg(2) as i32;
        if ms >= 0 {
            t.timeout_us = ms as u64 * 1000;
        }
        t.timeout_written_back = 0;
    } else {
        let tp = regs.arg(2);
        let timeout = read_timeout(tp, 1);
        t.timeout_us = timeout.map_or(INFINITE, |t| t.us);
        if tp != 0 {
            t.bookkeeping_in += TIME_STRUCT;
        }
        let mut sigmask_valid = true;
        if regs.arg(3) != 0 {
            t.bookkeeping_in += regs.arg(4);
            sigmask_valid = regs.arg(4) == SIGSET;
        }
        t.timeout_written_back = timeout_written_back(timeout, sigmask_valid);
    }
}

/// epoll_wait(epfd, events, maxevents, timeout_ms), epoll_pwait (+ sigmask,
/// size) and epoll_pwait2 (timespec instead of ms).
#[inline(always)]
fn decode_epoll_wait(regs: Regs, t: &mut ThreadState, kind: u32, task: Task) {
    // The interest set as the kernel holds it now; an fd that is not an
    // epoll fd fails the call, which then counts nothing watched.
    let previous = t.epoll_id;
    t.epoll_id = 0;
    if let Some((ep, registered)) = kernel::epoll_set(task, t.fd) {
        t.epoll_id = ep;
        t.watched = registered;
        if ep != previous {
            crate::sched::note_poller(ep, current_tid(), t.tgid);
        }
    }
    let maxevents = regs.arg(2) as i32;
    t.size_arg = if maxevents < 0 { 0 } else { maxevents as u64 };
    if kind == SyscallKind::EpollPwait2 as u32 {
        let tp = regs.arg(3);
        t.timeout_us = read_timeout_us(tp, 1).unwrap_or(INFINITE);
        if tp != 0 {
            t.bookkeeping_in += TIME_STRUCT;
        }
    } else {
        let ms = regs.arg(3) as i32;
        if ms >= 0 {
            t.timeout_us = ms as u64 * 1000;
        }
    }
    if kind != SyscallKind::EpollWait as u32 && regs.arg(4) != 0 {
        t.bookkeeping_in += regs.arg(5);
    }
}

/// io_uring_enter(fd, to_submit, min_complete, flags, argp, argsz): a wait
/// when it asks for completions (GETEVENTS) and at least one. The rings
/// are shared memory: nothing is copied per call but the extended
/// argument (and the timeout and sigmask it points to) or the sigmask.
#[inline(never)]
fn decode_uring_enter(regs: Regs, t: &mut ThreadState, task: Task) -> bool {
    let min_complete = regs.arg(2) as u32;
    let flags = regs.arg(3);
    let wait = flags & IORING_ENTER_GETEVENTS != 0 && min_complete > 0;
    let argp = regs.arg(4);
    let argsz = regs.arg(5);
    if flags & IORING_ENTER_EXT_ARG != 0 {
        // struct io_uring_getevents_arg { u64 sigmask; u32 sigmask_sz;
        // u32 min_wait_usec; u64 ts; }, unless it sits in a registered region.
        if argp != 0 && flags & IORING_ENTER_EXT_ARG_REG == 0 {
            t.bookkeeping_in = argsz;
            if let Some([sigmask, sz_and_wait, ts]) = read_user_triple(argp) {
                if sigmask != 0 {
                    t.bookkeeping_in += sz_and_wait & 0xffff_ffff;
                }
                if ts != 0 {
                    t.bookkeeping_in += TIME_STRUCT;
                    t.timeout_us = read_timeout_us(ts, 1).unwrap_or(INFINITE);
                }
            }
        }
    } else if argp != 0 {
        // The sigmask itself.
        t.bookkeeping_in = argsz;
    }
    if !wait {
        return false;
    }
    t.size_arg = u64::from(min_complete);
    // The ring, for its CQEs at the return (a registered ring's fd is an
    // index into the task's table, not an fd).
    t.epoll_id = 0;
    if flags & IORING_ENTER_REGISTERED_RING == 0 {
        t.epoll_id = kernel::file_private_data(task, t.fd).unwrap_or(0);
    }
    true
}

#[inline(always)]
fn read_user_triple(ptr: u64) -> Option<[u64; 3]> {
    // SAFETY: bpf_probe_read_user checks the address; a bad one is an Err.
    match unsafe { bpf_probe_read_user(ptr as *const [u64; 3]) } {
        Ok(v) => Some(v),
        Err(_) => {
            lost!(
                Stat::UserReadFailed,
                "cannot read io_uring_enter's extended argument at {:x} (tid {})",
                ptr,
                current_tid()
            );
            None
        }
    }
}

/// What an io_uring wait found: the CQEs waiting in its ring as it returns
/// (its "ready"), in place of the return value (the SQEs it submitted). A
/// wait that timed out (-ETIME) is a timeout, like epoll's 0.
#[inline(never)]
fn uring_wait_ret(t: &ThreadState, ret: i64) -> i64 {
    if ret < 0 && ret != -ETIME {
        return ret;
    }
    if t.epoll_id == 0 {
        lost!(
            Stat::KernelReadFailed,
            "cannot find the ring of io_uring fd {}: its CQEs per wait are not counted",
            t.fd
        );
        return 0;
    }
    match uring::cq_ready(t.epoll_id) {
        Some(ready) => ready as i64,
        None => {
            lost!(
                Stat::KernelReadFailed,
                "cannot read the CQ ring of io_uring fd {}",
                t.fd
            );
            0
        }
    }
}

/// A measured call returns: the thread found as at its entry, and the call
/// folded into its process's aggregate.
#[inline(always)]
fn exit(ctx: &BtfTracePointContext) {
    let regs = Regs::of(ctx);
    let nr = regs.nr();
    let kind = match kind_of_nr(nr) {
        Some(kind) => kind,
        // A poll that `resumed_poll` saw resumed, or another call resumed.
        None if nr == NR_RESTART_SYSCALL => SyscallKind::Poll,
        None => return,
    };
    let Some((t, task)) = known_thread(regs) else {
        return;
    };
    if nr == NR_RESTART_SYSCALL && t.in_call != SyscallKind::Poll as u32 + 1 {
        return;
    }
    on_exit(regs, ctx.arg(1), kind, t, task);
}

/// The thread of these registers when it has a slot: the one a call's
/// return (or a resumption) belongs to, never a new one.
#[inline(always)]
fn known_thread(regs: Regs) -> Option<(&'static mut ThreadState, Task)> {
    if let Some(found) = remembered_thread(regs) {
        return Some(found);
    }
    let task = Task::current();
    let id = task.pid_tgid();
    let tid = id as u32;
    // A thread with a slot is always a candidate, and only threads of
    // traced processes have a slot: this lookup is the filter.
    if !maybe_traced(tid) {
        return None;
    }
    let (claimed, t) = existing_claimed_slot(tid)?;
    // Another thread's slot (see `is_stale`): it goes back, so this
    // thread is not charged for its calls; it may claim its own at its
    // next entry.
    if is_stale(t, (id >> 32) as u32) {
        release_thread_slot(tid, None);
        return None;
    }
    // Another traced thread entered a call here since this one's
    // entry (it slept, or moved CPU): its next call enters here too.
    remember(regs.addr(), task.addr(), claimed, t);
    Some((t, task))
}

/// `restart_syscall` enters. A `poll` that a signal without a handler cut
/// short (a stop, a ptrace attach, a cgroup freeze) returned
/// ERESTART_RESTARTBLOCK, and the kernel resumes it this way with what is
/// left of its timeout: counted as a poll of its own (strace lists a
/// `poll` and a `restart_syscall`), with the same arguments, which the
/// registers still hold. Without it, what the rest of the wait found ready
/// was lost. Only when the task's restart function is the one that poll
/// left: a resumed nanosleep or futex wait is not a poll. The thread of
/// such a poll, for the caller to enter it (one `on_enter` in the program).
/// Its timeout reads as the poll's own, not what was left of it.
#[inline(always)]
fn resumed_poll(regs: Regs) -> Option<(&'static mut ThreadState, Task)> {
    let (t, task) = known_thread(regs)?;
    let left_by_poll = core::mem::take(&mut t.restart_fn);
    (left_by_poll != 0 && task.restart_fn() == left_by_poll).then_some((t, task))
}

/// The thread's call returns: folded into its process's aggregate.
#[inline(always)]
fn on_exit(regs: Regs, mut ret: i64, mut kind: SyscallKind, t: &mut ThreadState, task: Task) {
    if t.in_call != kind as u32 + 1 {
        // The kinds split at entry: an io_uring_enter that waits, a splice
        // that receives.
        if kind == SyscallKind::IoUringEnter && t.in_call == SyscallKind::IoUringWait as u32 + 1 {
            kind = SyscallKind::IoUringWait;
            ret = uring_wait_ret(t, ret);
        } else if kind == SyscallKind::Splice && t.in_call == SyscallKind::SpliceRecv as u32 + 1 {
            kind = SyscallKind::SpliceRecv;
        } else {
            if t.in_call == 0 {
                bump(Stat::ExitWithoutEnter);
            }
            return;
        }
    }
    t.in_call = 0;
    if kind == SyscallKind::Poll {
        // To resume as `restart_syscall` (see `resumed_poll`): the function the
        // kernel set to do it, which tells that resumption from another.
        t.restart_fn = if ret == -ERESTART_RESTARTBLOCK {
            task.restart_fn()
        } else {
            0
        };
    }
    let timed = t.call_timed != 0;
    let time_next_iteration = kind.is_wait() && next_iteration_timed(t);
    // An untimed call needs the clock only if it slept: for its off-CPU
    // time and its wakeup's latency, which stay exact.
    let slept = t.switched_out_ns != 0 || t.runq_ns != 0 || t.woken_ns != 0;
    let now = if timed || slept || time_next_iteration {
        // SAFETY: the helper has no preconditions.
        unsafe { bpf_ktime_get_ns() }
    } else {
        0
    };
    // Switched out in this call and never seen switched back in: the
    // kernel ran the thread again without a sched_switch to it that any
    // tracer saw (bpftrace on the same threads misses the same switch-ins;
    // about one 20 ms poll in 13,000 here). It was away from the stamp
    // until at most now: without this, the whole sleep read as on-CPU.
    // (The entry cleared any older stamp.)
    if t.switched_out_ns != 0 {
        t.off_cpu_ns += now.saturating_sub(t.switched_out_ns);
        t.switched_out_ns = 0;
        bump(Stat::SwitchInUnseen);
    }

    let Some(s) = thread_stats(t, kind) else {
        return;
    };
    s.calls += 1;
    s.sched_wakeups += t.sched_wakeups;
    t.calls += 1;
    let epoch = maps::epoch();
    let wall = if timed {
        now.saturating_sub(t.enter_ns)
    } else {
        0
    };
    // Off-CPU time is known for every call; within a timed one's wall time.
    let off = if timed && t.off_cpu_ns > wall {
        wall
    } else {
        t.off_cpu_ns
    };
    let on = wall - off.min(wall);
    if timed {
        s.timed += 1;
        s.wall_ns += wall;
        s.on_cpu_ns += on;
        s.off_cpu_ns += off;
        let wall_bucket = bucket(wall);
        s.hist_wall_ns[wall_bucket] += 1;
        // Most calls never leave the CPU: their on-CPU bucket follows from
        // the wall-time one, without a second logarithm.
        let on_bucket = if off == 0 {
            pow2_of(wall_bucket)
        } else {
            pow2_bucket(on)
        };
        s.hist_on_cpu_ns[on_bucket] += 1;
        s.wall_extremes.extend(epoch, wall);
        t.timed_calls += 1;
        t.wall_ns += wall;
        t.thread_off_cpu_ns += off;
    } else {
        s.off_cpu_ns += off;
    }
    if t.runq_ns != 0 {
        fold_latency(s, t, now, epoch);
    } else if t.woken_ns != 0 {
        // Woken before it had left the CPU: no run-queue delay, and the
        // exit path runs from the wakeup.
        t.switched_in_ns = t.woken_ns;
        fold_latency(s, t, now, epoch);
    }
    if kind.is_wait() {
        t.wait_calls += 1;
        t.wait_off_cpu_ns += off;
        if timed {
            t.wait_timed_calls += 1;
            t.wait_on_cpu_ns += on;
        }
        fold_iteration(s, t, timed, time_next_iteration, now, epoch);
    }

    let errno = if ret < 0 { (-ret) as u64 } else { 0 };
    if ret < 0 {
        s.errors += 1;
        let class = ErrnoClass::of(errno);
        s.errno[class as usize] += 1;
        // Restarted, unless the signal that follows has a handler that
        // makes it return EINTR (`mux_signal_deliver` decides).
        if class == ErrnoClass::Restarted && errno != ERESTARTNOINTR {
            t.restart_kind = kind as u32 + 1;
            t.restart_code = errno as u32;
        }
        if class == ErrnoClass::Eagain
            && kind.is_receive()
            && !kind.is_positional()
            && t.pending_ready != 0
        {
            s.empty_wakeups += 1;
            t.pending_ready = 0;
        }
    } else if kind == SyscallKind::Accept || kind == SyscallKind::Accept4 {
        // The wait found a connection: a read of it that finds nothing yet
        // (Go's, an optimistic server's) is no empty wakeup.
        t.pending_ready = 0;
    }

    // A wait the kernel refused (EFAULT, EINVAL, EBADF…) watched and copied
    // nothing: only its call and error count. An interrupted one did wait.
    let refused = ret < 0 && !ErrnoClass::of(errno).is_interruption();
    if kind.is_wait() && !refused {
        fold_wait(s, t, ret, kind, epoch);
    } else if kind == SyscallKind::EpollCtl {
        s.bookkeeping_in += t.bookkeeping_in;
    } else if ret >= 0 && (kind.is_receive() || kind.is_send() || kind.is_zero_copy()) {
        fold_payload(s, t, regs, ret as u64, kind, task);
    }
}

/// What a receive, send or zero-copy call moved, and where.
#[inline(always)]
fn fold_payload(
    s: &mut SyscallStats,
    t: &mut ThreadState,
    regs: Regs,
    ret: u64,
    kind: SyscallKind,
    task: Task,
) {
    let (bytes, messages) = if kind.is_mmsg() {
        (mmsg_bytes(regs.arg(1), ret), ret)
    } else {
        (ret, u64::from(ret > 0))
    };
    if kind.is_receive() && !kind.is_positional() && bytes > 0 {
        t.pending_ready = 0;
    }
    // The socket calls succeed only on sockets; the others work on any fd.
    let file_type = if kind == SyscallKind::Splice {
        // Not from a socket (that is `SpliceRecv`): into one?
        kernel::fd_type(task, regs.arg(2) as u32)
    } else if kind.needs_fd_class() {
        kernel::fd_type(task, regs.arg(0) as u32)
    } else if kind.is_positional() {
        FileType::Other
    } else {
        FileType::Socket
    };
    // An eventfd's 8 bytes (tokio's and libuv's wakeups), a timerfd's tick,
    // a signalfd's siginfo: the loop's bookkeeping, not payload.
    if file_type == FileType::Anonymous && !kind.is_zero_copy() {
        if kind.is_receive() {
            s.bookkeeping_out += bytes;
        } else {
            s.bookkeeping_in += bytes;
        }
        return;
    }
    s.payload_bytes += bytes;
    s.messages += messages;
    s.hist_payload[pow2_bucket(bytes)] += 1;
    if file_type == FileType::Socket {
        s.payload_socket_bytes += bytes;
        s.socket_messages += messages;
    }
    if kind.is_zero_copy() {
        s.zero_copy_bytes += bytes;
    }
}

/// The most messages of one recvmmsg/sendmmsg whose bytes are counted.
const MMSG_MAX: u64 = 64;
/// Bytes of a `struct mmsghdr` and the offset of its `msg_len`.
const MMSGHDR: u64 = 64;
const MMSG_LEN: u64 = 56;

/// The bytes of the first `n` messages of an mmsghdr array (each message's
/// `msg_len`, which the kernel has filled in).
#[inline(never)]
fn mmsg_bytes(vec: u64, n: u64) -> u64 {
    if n > MMSG_MAX {
        lost!(
            Stat::MmsgTruncated,
            "{} messages in one call: the bytes of those past {} are not counted (tid {})",
            n,
            MMSG_MAX,
            current_tid()
        );
    }
    let mut bytes = 0;
    for i in 0..MMSG_MAX {
        if i >= n {
            break;
        }
        // SAFETY: bpf_probe_read_user checks the address; a bad one is an Err.
        match unsafe { bpf_probe_read_user((vec + i * MMSGHDR + MMSG_LEN) as *const u32) } {
            Ok(len) => bytes += u64::from(len),
            Err(_) => {
                lost!(
                    Stat::UserReadFailed,
                    "cannot read msg_len of message {} at {:x} (tid {})",
                    i,
                    vec,
                    current_tid()
                );
                break;
            }
        }
    }
    bytes
}

/// The loop iteration that ended when this wait began (from the last wait's
/// return to this one's entry), and a new one from now: timed when the
/// last wait's return was stamped (`last_wait_exit_ns`) and this wait's
/// entry too, counted whenever the thread has waited before. Inline: every
/// wait's return runs it.
#[inline(always)]
fn fold_iteration(
    s: &mut SyscallStats,
    t: &mut ThreadState,
    timed: bool,
    time_next: bool,
    now: u64,
    epoch: u64,
) {
    // `wait_calls` counts this wait already.
    if t.wait_calls > 1 {
        s.iterations += 1;
        t.iterations += 1;
    }
    // Less the time stopped in it (a SIGSTOP, a debugger, a frozen
    // cgroup) and parked (a runtime's worker asleep until there is work):
    // the loop did no work then, and neither is a stall. At least 1 ns: 0
    // marks an untimed iteration.
    let iteration = if timed && t.last_wait_exit_ns != 0 {
        t.enter_ns
            .saturating_sub(t.last_wait_exit_ns)
            .saturating_sub(t.iter_stopped_ns)
            .saturating_sub(t.iter_parked_ns)
            .max(1)
    } else {
        0
    };
    if iteration != 0 {
        s.timed_iterations += 1;
        s.iteration_ns += iteration;
        s.hist_iteration_ns[bucket(iteration)] += 1;
        s.iteration_extremes.extend(epoch, iteration);
        if iteration >= maps::stall_ns() {
            fold_stall(s, t, iteration, epoch);
        }
    } else if maps::time_every() > 1 && !timed && t.tick_stall_ns != 0 {
        // (The first test a constant: with every call timed, gone.)
        let stall = core::mem::take(&mut t.tick_stall_ns);
        s.tick_stalls += 1;
        fold_stall(s, t, stall, epoch);
    }
    // Zero leaves the iteration untimed; the tick then bounds it.
    t.last_wait_exit_ns = if time_next { now } else { 0 };
    if maps::time_every() > 1 && maps::tick_ns() != 0 {
        t.last_wait_exit_jiffies = if time_next {
            0
        } else {
            // SAFETY: the helper has no preconditions.
            unsafe { bpf_jiffies64() }
        };
    }
    maps::clear(&mut t.iter_off_cpu_ns);
    maps::clear(&mut t.iter_preempted_ns);
    maps::clear(&mut t.iter_futex_ns);
    maps::clear(&mut t.iter_stopped_ns);
    maps::clear(&mut t.iter_parked_ns);
    maps::clear(&mut t.iter_kinds);
}

/// A stall of `ns` ended at `t.enter_ns`: with its time off a CPU, and the
/// kinds of call made in it should it be the longest.
#[inline(always)]
fn fold_stall(s: &mut SyscallStats, t: &mut ThreadState, ns: u64, epoch: u64) {
    let off = if t.iter_off_cpu_ns > ns {
        ns
    } else {
        t.iter_off_cpu_ns
    };
    s.stalls += 1;
    s.stall_ns += ns;
    s.stall_off_cpu_ns += off;
    s.longest_stall.offer(
        epoch,
        Stall {
            ns,
            at_ns: t.enter_ns,
            off_cpu_ns: off,
            preempted_ns: if t.iter_preempted_ns > off {
                off
            } else {
                t.iter_preempted_ns
            },
            futex_ns: if t.iter_futex_ns > off {
                off
            } else {
                t.iter_futex_ns
            },
            kinds: t.iter_kinds,
        },
    );
    t.stalls += 1;
}

/// The delay from the wakeup of the thread blocked in this call to its
/// running again, and the kernel's exit path after.
#[inline(never)]
fn fold_latency(s: &mut SyscallStats, t: &mut ThreadState, now: u64, epoch: u64) {
    s.runq_delays += 1;
    s.runq_ns += t.runq_ns;
    s.hist_runq_ns[bucket(t.runq_ns)] += 1;
    s.runq_extremes.extend(epoch, t.runq_ns);
    let exit_path = now.saturating_sub(t.switched_in_ns);
    s.exit_path_ns += exit_path;
    s.hist_exit_path_ns[pow2_bucket(exit_path)] += 1;
    t.runq_ns = 0;
}

/// What a wait call watched, found ready and copied, once it returned.
#[inline(always)]
fn fold_wait(s: &mut SyscallStats, t: &mut ThreadState, ret: i64, kind: SyscallKind, epoch: u64) {
    let errno = if ret < 0 { (-ret) as u64 } else { 0 };
    s.watched += t.watched;
    if kind != SyscallKind::IoUringWait {
        t.watched_total += t.watched;
        t.watched_waits += 1;
    }
    s.size_arg += t.size_arg;
    s.hist_watched[bucket(t.watched)] += 1;
    s.watched_extremes.extend(epoch, t.watched);
    s.bookkeeping_in += t.bookkeeping_in;
    if t.timeout_us == INFINITE {
        s.infinite_timeouts += 1;
    } else {
        if t.timeout_us == 0 {
            s.zero_timeouts += 1;
        }
        s.hist_timeout_us[pow2_bucket(t.timeout_us)] += 1;
    }
    let ready = if ret > 0 { ret as u64 } else { 0 };
    if ret >= 0 {
        s.hist_ready[pow2_bucket(ready)] += 1;
        s.ready_extremes.extend(epoch, ready);
    }
    if ret > 0 {
        s.ready += ready;
        s.useful_wakeups += 1;
        t.wakeups += 1;
        t.ready_total += ready;
        t.pending_ready = 1;
    } else if ret == 0 {
        s.timeouts += 1;
    }
    if kind.is_epoll_wait() {
        s.scanned += ready;
        s.bookkeeping_out += EPOLL_EVENT * ready;
    } else {
        s.scanned += t.watched;
        // select writes its sets back on success; poll writes revents
        // back even when interrupted.
        let copied_back = ret >= 0 || (kind.is_poll() && ErrnoClass::of(errno).is_interruption());
        if copied_back {
            s.bookkeeping_out += t.bookkeeping_out_fixed;
        }
        s.bookkeeping_out += t.timeout_written_back;
    }
}

/// The syscall kinds by number, in the object's read-only data.
static KIND_OF_NR: [u8; KIND_TABLE_LEN] = tracer_common::kind::KIND_OF_NR;

/// [`SyscallKind::from_nr`] by one load from [`KIND_OF_NR`].
#[inline(always)]
fn kind_of_nr(nr: i64) -> Option<SyscallKind> {
    let kind = *KIND_OF_NR.get(nr as u64 as usize)? as u32;
    if kind < SYSCALL_KINDS as u32 {
        // SAFETY: the table holds only `SyscallKind`s and NOT_MEASURED, and
        // the enum is `repr(u32)` with the discriminants 0..SYSCALL_KINDS.
        Some(unsafe { core::mem::transmute::<u32, SyscallKind>(kind) })
    } else {
        None
    }
}

/// Every syscall on the machine passes here: the dispatch on its number
/// returns at once for the calls muxtrace does not measure.
#[btf_tracepoint(function = "sys_enter")]
pub fn mux_sys_enter(ctx: BtfTracePointContext) -> i32 {
    enter::<false>(&ctx);
    0
}

/// `mux_sys_enter` when muxtrace runs in a pid namespace (user space
/// attaches one or the other): it also adopts the processes user space
/// named by their namespace pids, and names threads by them.
#[btf_tracepoint(function = "sys_enter")]
pub fn mux_sys_enter_ns(ctx: BtfTracePointContext) -> i32 {
    enter::<true>(&ctx);
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn mux_sys_exit(ctx: BtfTracePointContext) -> i32 {
    exit(&ctx);
    0
}

/// A signal is delivered to the current task, on its way back to user
/// space: `signal_deliver(sig, info, ka)`. When its last call returned a
/// restart code, a handler decides what the program sees: EINTR after any
/// handler for ERESTARTNOHAND and ERESTART_RESTARTBLOCK, and for
/// ERESTARTSYS unless the handler has SA_RESTART; the call is then moved
/// from restarted to EINTR. Without a handler (a stop, an ignored signal,
/// a ptrace attach, which delivers none) the kernel restarts it. Only the
/// traced threads' deliveries get past one array load.
#[btf_tracepoint(function = "signal_deliver")]
pub fn mux_signal_deliver(ctx: BtfTracePointContext) -> i32 {
    let tid = current_tid();
    if !maybe_traced(tid) {
        return 0;
    }
    let Some((_, t)) = existing_claimed_slot(tid) else {
        return 0;
    };
    // The kind's number + 1, or 0.
    let kind = u64::from(t.restart_kind);
    if kind == 0 {
        return 0;
    }
    // `struct k_sigaction` begins with `sa_handler` and `sa_flags`.
    let ka: u64 = ctx.arg(2);
    // SAFETY: the helper checks the kernel address; a bad one is an Err.
    let Ok([handler, flags]) = (unsafe { bpf_probe_read_kernel(ka as *const [u64; 2]) }) else {
        lost!(
            Stat::KernelReadFailed,
            "cannot read the action of signal {} (tid {}): a call it cut short counts as restarted",
            ctx.arg::<u32>(0),
            tid
        );
        return 0;
    };
    // SIG_DFL (0) and SIG_IGN (1) run no handler: the next delivery may.
    if handler <= 1 {
        return 0;
    }
    t.restart_kind = 0;
    if u64::from(t.restart_code) == ERESTARTSYS && flags & SA_RESTART != 0 {
        return 0;
    }
    if let Some(s) = used_thread_stats(t, kind - 1) {
        // This CPU's copy may go below zero (the exit may have counted it
        // on another): the copies are summed wrapping.
        let restarted = &mut s.errno[ErrnoClass::Restarted as usize];
        *restarted = restarted.wrapping_sub(1);
        s.errno[ErrnoClass::Eintr as usize] += 1;
    }
    0
}
