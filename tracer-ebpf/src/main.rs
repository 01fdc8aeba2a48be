//! muxtrace's eBPF programs: one `sys_enter`/`sys_exit` pair per traced
//! syscall, plus the scheduler tracepoints that split a call's wall time into
//! on- and off-CPU and keep the traced set up to date.
//!
//! They only measure and aggregate: every call of a traced process is folded
//! into per-CPU aggregates keyed by (tgid, syscall kind), and per-thread
//! running totals. No event per syscall leaves the kernel, and no map entry is
//! inserted or removed on the hot path (a thread's slot is inserted on its
//! first traced call and removed when it exits). Policy — what to trace, what
//! it means — lives in user space.
#![no_std]
#![no_main]

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_user,
    },
    macros::{map, tracepoint},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
    programs::TracePointContext,
    EbpfContext,
};
use tracer_common::{
    candidate_slot, log2_bucket, traced, EpollInterest, EpollKey, ErrnoClass, Stat, StatsKey,
    SyscallKind, SyscallStats, ThreadState, CANDIDATE_SLOTS, MAX_EPOLL_FDS, MAX_STATS_KEYS,
    MAX_THREADS, MAX_TRACED_TGIDS, STAT_COUNT,
};

// ---------------------------------------------------------------------------
// Maps

/// Non-zero at `candidate_slot(id)` for every tgid that may be traced and
/// every thread that has a slot; never cleared (a stale entry only costs the
/// exact lookup). Every program checks it first: an array load, inlined by
/// the verifier, answers "not traced" for almost every task on the machine —
/// loadgen's and everyone else's syscalls and context switches — where two
/// hash lookups did before.
#[map]
static CANDIDATES: Array<u32> = Array::with_max_entries(CANDIDATE_SLOTS, 0);

/// tgid → `traced::*` flags.
#[map]
static TRACED: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TRACED_TGIDS, 0);

/// tid → in-flight call and running totals.
#[map]
static THREADS: HashMap<u32, ThreadState> = HashMap::with_max_entries(MAX_THREADS, 0);

/// (tgid, kind) → aggregates, per CPU.
#[map]
static STATS: PerCpuHashMap<StatsKey, SyscallStats> =
    PerCpuHashMap::with_max_entries(MAX_STATS_KEYS, 0);

/// (tgid, epoll fd) → interest-set size, kept from `epoll_ctl`.
#[map]
static EPOLL: HashMap<EpollKey, EpollInterest> = HashMap::with_max_entries(MAX_EPOLL_FDS, 0);

/// (tgid, fd) → 1 for sockets, filled by user space from /proc and by accept4.
#[map]
static SOCKET_FDS: HashMap<EpollKey, u32> = HashMap::with_max_entries(MAX_EPOLL_FDS, 0);

/// Loss and failure counters, indexed by [`Stat`].
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

/// Never written: the zeroed source for inserting a new aggregate, which is
/// too large for the 512-byte BPF stack.
#[map]
static ZERO_STATS: PerCpuArray<SyscallStats> = PerCpuArray::with_max_entries(1, 0);

// ---------------------------------------------------------------------------
// Globals set by user space at load time (see tracer_common::globals).

#[no_mangle]
static FOLLOW: u32 = 0;
#[no_mangle]
static COMM: [u8; 16] = [0; 16];
#[no_mangle]
static SWITCH_NEXT_PID: u32 = 56;
#[no_mangle]
static WAKEUP_PID: u32 = 24;
#[no_mangle]
static FORK_CHILD_PID: u32 = 20;
/// 0 when this kernel's `sched_process_exit` has no `group_dead` field.
#[no_mangle]
static EXIT_GROUP_DEAD: u32 = 32;

#[inline(always)]
fn global<T: Copy>(g: &T) -> T {
    // Volatile so the compiler does not fold the default value: user space
    // rewrites it in the object before loading.
    unsafe { core::ptr::read_volatile(g) }
}

// ---------------------------------------------------------------------------
// Helpers

/// Syscall tracepoint records: 8 bytes of common fields, the syscall number,
/// then each argument in an 8-byte slot from offset 16; `sys_exit_*` has the
/// return value at 16.
#[inline(always)]
fn arg(ctx: &TracePointContext, i: usize) -> u64 {
    // A direct context load: cheaper than the bpf_probe_read helper.
    unsafe { *(ctx.as_ptr() as *const u8).add(16 + 8 * i).cast::<u64>() }
}

/// A field at an offset known only at load time: the verifier forbids context
/// loads at a variable offset, so this goes through the probe-read helper.
#[inline(always)]
fn field_u32(ctx: &TracePointContext, offset: u32) -> u32 {
    unsafe { ctx.read_at::<u32>(offset as usize) }.unwrap_or(0)
}

#[inline(always)]
fn bump(stat: Stat) {
    if let Some(p) = COUNTERS.get_ptr_mut(stat as u32) {
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn maybe_traced(id: u32) -> bool {
    CANDIDATES
        .get(candidate_slot(id))
        .is_some_and(|marked| *marked != 0)
}

#[inline(always)]
fn mark_candidate(id: u32) {
    if let Some(p) = CANDIDATES.get_ptr_mut(candidate_slot(id)) {
        // A plain store of a constant: concurrent markers cannot lose it.
        unsafe { *p = 1 };
    }
}

#[inline(always)]
fn is_traced(tgid: u32) -> bool {
    unsafe { TRACED.get(&tgid) }.is_some()
}

/// The thread's slot. Only threads of traced processes have one (inserted on
/// their first call, removed when they exit), so a hit needs no second lookup
/// in TRACED: the traced process's calls pay one hash lookup, not two.
#[inline(always)]
fn thread_slot(tid: u32, tgid: u32) -> Option<&'static mut ThreadState> {
    if let Some(p) = THREADS.get_ptr_mut(&tid) {
        return Some(unsafe { &mut *p });
    }
    if !is_traced(tgid) {
        return None;
    }
    let mut fresh = ThreadState::ZERO;
    fresh.tgid = tgid;
    mark_candidate(tid);
    if THREADS.insert(&tid, &fresh, 0).is_err() {
        bump(Stat::ThreadMapFull);
        return None;
    }
    THREADS.get_ptr_mut(&tid).map(|p| unsafe { &mut *p })
}

#[inline(always)]
fn stats_slot(key: &StatsKey) -> Option<&'static mut SyscallStats> {
    if let Some(p) = STATS.get_ptr_mut(key) {
        return Some(unsafe { &mut *p });
    }
    let zero = ZERO_STATS.get_ptr(0)?;
    if STATS.insert(key, unsafe { &*zero }, 0).is_err() {
        bump(Stat::StatsMapFull);
        return None;
    }
    STATS.get_ptr_mut(key).map(|p| unsafe { &mut *p })
}

/// Microseconds of a user `timespec`/`timeval` (`sub_unit_ns` = 1 for
/// timespec, 1000 for timeval). `None` for a NULL pointer (block forever).
#[inline(always)]
fn read_timeout_us(ptr: u64, sub_unit_ns: u64) -> Option<u64> {
    if ptr == 0 {
        return None;
    }
    match unsafe { bpf_probe_read_user(ptr as *const [i64; 2]) } {
        Ok([sec, frac]) => {
            // Clamped so the multiplication cannot overflow (no 128-bit maths in BPF).
            let sec = if sec < 0 {
                0
            } else if sec > 1 << 40 {
                1 << 40
            } else {
                sec as u64
            };
            let frac = if frac < 0 { 0 } else { frac as u64 };
            Some(sec * 1_000_000 + (frac & 0xffff_ffff) * sub_unit_ns / 1000)
        }
        Err(_) => {
            bump(Stat::UserReadFailed);
            Some(0)
        }
    }
}

/// Sentinel for "no timeout: blocks until ready".
const INFINITE: u64 = u64::MAX;
/// Bytes of a `struct timespec`/`struct timeval` on 64-bit.
const TIME_STRUCT: u64 = 16;
/// Bytes of a `struct epoll_event` (packed on x86_64).
const EPOLL_EVENT: u64 = 12;
/// Bytes of a `struct pollfd`, and of its `revents` written back.
const POLLFD: u64 = 8;
const REVENTS: u64 = 2;
const FD_SETSIZE: u64 = 1024;
const EPOLL_CTL_ADD: u64 = 1;
const EPOLL_CTL_DEL: u64 = 2;
/// Two threads woken from the same epoll fd within this window count as a
/// thundering herd: they were woken by the same readiness change.
const HERD_WINDOW_NS: u64 = 50_000;

/// Popcount of one fd set's first `n` bits, read from user memory in one go.
#[inline(always)]
fn fd_set_popcount(ptr: u64, n: u64) -> u64 {
    if ptr == 0 || n == 0 {
        return 0;
    }
    let words = n.div_ceil(64);
    let mut buf = [0u64; (FD_SETSIZE / 64) as usize];
    let bytes = (words * 8) as usize;
    // Bounded for the verifier: 8..=128 bytes.
    let bytes = if bytes > 128 { 128 } else { bytes };
    let dst =
        unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), bytes & 0xff) };
    if bytes == 0 || dst.len() > 128 {
        return 0;
    }
    if unsafe { aya_ebpf::helpers::bpf_probe_read_user_buf(ptr as *const u8, dst) }.is_err() {
        bump(Stat::UserReadFailed);
        return 0;
    }
    let mut count = 0u64;
    let last = (words - 1) as usize;
    let tail_bits = n - (words - 1) * 64;
    let mut i = 0usize;
    while i < 16 {
        if i > last {
            break;
        }
        let mut w = buf[i];
        if i == last && tail_bits < 64 {
            w &= (1u64 << tail_bits) - 1;
        }
        count += w.count_ones() as u64;
        i += 1;
    }
    count
}

// ---------------------------------------------------------------------------
// Syscall enter / exit

#[inline(always)]
fn on_enter(ctx: &TracePointContext, kind: SyscallKind) {
    let id = bpf_get_current_pid_tgid();
    let tgid = (id >> 32) as u32;
    if !maybe_traced(tgid) {
        return;
    }
    let Some(t) = thread_slot(id as u32, tgid) else {
        return;
    };
    t.in_call = kind as u32 + 1;
    t.switched_out_ns = 0;
    t.off_cpu_ns = 0;
    t.sched_wakeups = 0;
    t.watched = 0;
    t.size_arg = 0;
    t.bookkeeping_in = 0;
    t.bookkeeping_out_fixed = 0;
    t.timeout_us = INFINITE;
    t.fd = arg(ctx, 0) as u32;

    match kind {
        SyscallKind::Select | SyscallKind::Pselect6 => {
            // `int n`: the kernel rejects a negative one.
            let n_arg = arg(ctx, 0) as i32;
            let mut n = if n_arg < 0 { 0 } else { n_arg as u64 };
            if n > FD_SETSIZE {
                bump(Stat::SelectTruncated);
                n = FD_SETSIZE;
            }
            let set_bytes = n.div_ceil(64) * 8;
            let mut watched = 0;
            let mut sets = 0;
            let mut i = 1;
            while i <= 3 {
                let p = arg(ctx, i);
                if p != 0 {
                    sets += 1;
                    watched += fd_set_popcount(p, n);
                }
                i += 1;
            }
            t.watched = watched;
            t.size_arg = if n_arg < 0 { 0 } else { n_arg as u64 };
            t.bookkeeping_in = sets * set_bytes;
            t.bookkeeping_out_fixed = sets * set_bytes;
            let tp = arg(ctx, 4);
            if kind == SyscallKind::Select {
                t.timeout_us = read_timeout_us(tp, 1000).unwrap_or(INFINITE);
            } else {
                t.timeout_us = read_timeout_us(tp, 1).unwrap_or(INFINITE);
                // pselect6's sixth argument points at {sigset_t *ss; size_t len}.
                let sig = arg(ctx, 5);
                if sig != 0 {
                    t.bookkeeping_in += 16;
                    match unsafe { bpf_probe_read_user(sig as *const [u64; 2]) } {
                        Ok([ss, len]) if ss != 0 => t.bookkeeping_in += len,
                        Ok(_) => {}
                        Err(_) => bump(Stat::UserReadFailed),
                    }
                }
            }
            if tp != 0 {
                t.bookkeeping_in += TIME_STRUCT;
                t.bookkeeping_out_fixed += TIME_STRUCT;
            }
        }
        SyscallKind::Poll | SyscallKind::Ppoll => {
            // `unsigned int nfds`: the upper half of the register is ignored.
            let nfds = arg(ctx, 1) as u32 as u64;
            t.watched = nfds;
            t.size_arg = nfds;
            t.bookkeeping_in = POLLFD * nfds;
            t.bookkeeping_out_fixed = REVENTS * nfds;
            if kind == SyscallKind::Poll {
                let ms = arg(ctx, 2) as i32;
                if ms >= 0 {
                    t.timeout_us = ms as u64 * 1000;
                }
            } else {
                let tp = arg(ctx, 2);
                t.timeout_us = read_timeout_us(tp, 1).unwrap_or(INFINITE);
                if tp != 0 {
                    t.bookkeeping_in += TIME_STRUCT;
                    t.bookkeeping_out_fixed += TIME_STRUCT;
                }
                if arg(ctx, 3) != 0 {
                    t.bookkeeping_in += arg(ctx, 4);
                }
            }
        }
        SyscallKind::EpollWait | SyscallKind::EpollPwait | SyscallKind::EpollPwait2 => {
            let key = EpollKey { tgid, epfd: t.fd };
            if let Some(interest) = unsafe { EPOLL.get(&key) } {
                t.watched = interest.registered;
            }
            let maxevents = arg(ctx, 2) as i32;
            t.size_arg = if maxevents < 0 { 0 } else { maxevents as u64 };
            if kind == SyscallKind::EpollPwait2 {
                let tp = arg(ctx, 3);
                t.timeout_us = read_timeout_us(tp, 1).unwrap_or(INFINITE);
                if tp != 0 {
                    t.bookkeeping_in += TIME_STRUCT;
                }
            } else {
                let ms = arg(ctx, 3) as i32;
                if ms >= 0 {
                    t.timeout_us = ms as u64 * 1000;
                }
            }
            if kind != SyscallKind::EpollWait && arg(ctx, 4) != 0 {
                t.bookkeeping_in += arg(ctx, 5);
            }
        }
        SyscallKind::EpollCtl => {
            // Stash op and target fd for the exit, where success is known.
            let op = arg(ctx, 1);
            t.size_arg = op;
            t.watched = arg(ctx, 2);
            if op != EPOLL_CTL_DEL {
                t.bookkeeping_in = EPOLL_EVENT;
            }
        }
        _ => {}
    }
    // Last, so decoding the arguments is not charged to the call.
    t.enter_ns = unsafe { bpf_ktime_get_ns() };
}

#[inline(always)]
fn on_exit(ctx: &TracePointContext, kind: SyscallKind) {
    let tid = bpf_get_current_pid_tgid() as u32;
    // A thread with a slot is always a candidate.
    if !maybe_traced(tid) {
        return;
    }
    // After the filter, so other processes' calls never pay for the clock;
    // before the slot lookup, so the call is not charged for it.
    let now = unsafe { bpf_ktime_get_ns() };
    // Only threads of traced processes have a slot, so this lookup is the filter.
    let Some(tp) = THREADS.get_ptr_mut(&tid) else {
        return;
    };
    let t = unsafe { &mut *tp };
    if t.in_call != kind as u32 + 1 {
        if t.in_call == 0 {
            bump(Stat::ExitWithoutEnter);
        }
        return;
    }
    t.in_call = 0;
    let ret = arg(ctx, 0) as i64;
    let wall = now.saturating_sub(t.enter_ns);
    let off = if t.off_cpu_ns > wall {
        wall
    } else {
        t.off_cpu_ns
    };
    let on = wall - off;

    let key = StatsKey {
        tgid: t.tgid,
        kind: kind as u32,
    };
    let Some(s) = stats_slot(&key) else {
        return;
    };
    s.calls += 1;
    s.wall_ns += wall;
    s.off_cpu_ns += off;
    s.sched_wakeups += t.sched_wakeups;
    s.hist_wall_ns[log2_bucket(wall)] += 1;
    s.hist_on_cpu_ns[log2_bucket(on)] += 1;
    t.calls += 1;
    t.wall_ns += wall;
    t.thread_off_cpu_ns += off;

    let errno = if ret < 0 { (-ret) as u64 } else { 0 };
    if ret < 0 {
        s.errors += 1;
        let class = ErrnoClass::of(errno);
        s.errno[class as usize] += 1;
        if class == ErrnoClass::Eagain && kind.is_receive() && t.pending_ready != 0 {
            s.empty_wakeups += 1;
            t.pending_ready = 0;
        }
    }

    // A wait the kernel refused (EFAULT, EINVAL, EBADF…) watched and copied
    // nothing: only its call and error count. An interrupted one did wait.
    let refused = ret < 0 && !matches!(ErrnoClass::of(errno), ErrnoClass::Eintr);
    if kind.is_wait() {
        t.wait_calls += 1;
    }
    if kind.is_wait() && !refused {
        s.watched += t.watched;
        s.size_arg += t.size_arg;
        s.hist_watched[log2_bucket(t.watched)] += 1;
        s.bookkeeping_in += t.bookkeeping_in;
        if t.timeout_us == INFINITE {
            s.infinite_timeouts += 1;
        } else {
            if t.timeout_us == 0 {
                s.zero_timeouts += 1;
            }
            s.hist_timeout_us[log2_bucket(t.timeout_us)] += 1;
        }
        let ready = if ret > 0 { ret as u64 } else { 0 };
        if ret >= 0 {
            s.hist_ready[log2_bucket(ready)] += 1;
        }
        if ret > 0 {
            s.ready += ready;
            s.useful_wakeups += 1;
            t.wakeups += 1;
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
            let copied_back =
                ret >= 0 || (kind.is_poll() && matches!(ErrnoClass::of(errno), ErrnoClass::Eintr));
            if copied_back {
                s.bookkeeping_out += t.bookkeeping_out_fixed;
            }
        }
    } else if kind == SyscallKind::EpollCtl {
        s.bookkeeping_in += t.bookkeeping_in;
        if ret == 0 {
            epoll_ctl_done(t.tgid, t.fd, t.size_arg);
        }
    } else if ret >= 0 && (kind.is_receive() || kind.is_send()) {
        let bytes = ret as u64;
        s.payload_bytes += bytes;
        s.hist_payload[log2_bucket(bytes)] += 1;
        // recvfrom/recvmsg/sendto/sendmsg succeed only on sockets: only
        // read and write need the (tgid, fd) lookup.
        let on_socket = match kind {
            SyscallKind::Read | SyscallKind::Write => {
                let fd_key = EpollKey {
                    tgid: t.tgid,
                    epfd: t.fd,
                };
                unsafe { SOCKET_FDS.get(&fd_key) }.is_some()
            }
            _ => true,
        };
        if on_socket {
            s.payload_socket_bytes += bytes;
        }
        if kind.is_receive() && bytes > 0 {
            t.pending_ready = 0;
        }
    } else if kind == SyscallKind::Accept4 && ret >= 0 {
        // An accepted fd is a socket: payload on it counts as socket payload.
        let fd_key = EpollKey {
            tgid: t.tgid,
            epfd: ret as u32,
        };
        let _ = SOCKET_FDS.insert(&fd_key, &1, 0);
    }
    let _ = tp;
}

/// Keep the interest-set size of (tgid, epfd) after a successful epoll_ctl.
#[inline(always)]
fn epoll_ctl_done(tgid: u32, epfd: u32, op: u64) {
    let key = EpollKey { tgid, epfd };
    if let Some(p) = EPOLL.get_ptr_mut(&key) {
        let interest = unsafe { &mut *p };
        if op == EPOLL_CTL_ADD {
            interest.registered += 1;
        } else if op == EPOLL_CTL_DEL && interest.registered > 0 {
            interest.registered -= 1;
        }
        return;
    }
    if op == EPOLL_CTL_ADD {
        let fresh = EpollInterest {
            registered: 1,
            ..EpollInterest::default()
        };
        if EPOLL.insert(&key, &fresh, 0).is_err() {
            bump(Stat::EpollMapFull);
        }
    }
}

macro_rules! syscall_probes {
    ($($kind:ident: $enter:ident, $exit:ident;)*) => {$(
        #[tracepoint]
        pub fn $enter(ctx: TracePointContext) -> u32 {
            on_enter(&ctx, SyscallKind::$kind);
            0
        }
        #[tracepoint]
        pub fn $exit(ctx: TracePointContext) -> u32 {
            on_exit(&ctx, SyscallKind::$kind);
            0
        }
    )*};
}

// Program names are `mux_` + in/out + the syscall: user space attaches each to
// `syscalls:sys_{enter,exit}_<name>` and recognises its own programs by the prefix.
syscall_probes! {
    Select: mux_in_select, mux_out_select;
    Pselect6: mux_in_pselect6, mux_out_pselect6;
    Poll: mux_in_poll, mux_out_poll;
    Ppoll: mux_in_ppoll, mux_out_ppoll;
    EpollWait: mux_in_epoll_wait, mux_out_epoll_wait;
    EpollPwait: mux_in_epoll_pwait, mux_out_epoll_pwait;
    EpollPwait2: mux_in_epoll_pwait2, mux_out_epoll_pwait2;
    EpollCtl: mux_in_epoll_ctl, mux_out_epoll_ctl;
    Accept4: mux_in_accept4, mux_out_accept4;
    Recvfrom: mux_in_recvfrom, mux_out_recvfrom;
    Recvmsg: mux_in_recvmsg, mux_out_recvmsg;
    Read: mux_in_read, mux_out_read;
    Sendto: mux_in_sendto, mux_out_sendto;
    Sendmsg: mux_in_sendmsg, mux_out_sendmsg;
    Write: mux_in_write, mux_out_write;
}

/// `close` of an epoll fd drops its interest set; of a socket, its class.
#[tracepoint]
pub fn mux_in_close(ctx: TracePointContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if !maybe_traced(tgid) || !is_traced(tgid) {
        return 0;
    }
    let key = EpollKey {
        tgid,
        epfd: arg(&ctx, 0) as u32,
    };
    let _ = EPOLL.remove(&key);
    let _ = SOCKET_FDS.remove(&key);
    0
}

// ---------------------------------------------------------------------------
// Scheduler

/// Off-CPU time inside a call: switched out → switched back in.
#[tracepoint]
pub fn mux_sched_switch(ctx: TracePointContext) -> u32 {
    // The tracepoint fires before the switch: the current task is `prev`.
    let prev = bpf_get_current_pid_tgid() as u32;
    let next_is_candidate = {
        let next = field_u32(&ctx, global(&SWITCH_NEXT_PID));
        maybe_traced(next).then_some(next)
    };
    if !maybe_traced(prev) && next_is_candidate.is_none() {
        return 0;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(p) = THREADS.get_ptr_mut(&prev) {
        let t = unsafe { &mut *p };
        if t.in_call != 0 {
            t.switched_out_ns = now;
        }
    }
    if let Some(next) = next_is_candidate {
        if let Some(p) = THREADS.get_ptr_mut(&next) {
            let t = unsafe { &mut *p };
            if t.in_call != 0 && t.switched_out_ns != 0 {
                t.off_cpu_ns += now.saturating_sub(t.switched_out_ns);
                t.switched_out_ns = 0;
            }
        }
    }
    0
}

/// Scheduler wakeups of a thread blocked in a call, and thundering herds on
/// a shared epoll fd.
#[tracepoint]
pub fn mux_sched_wakeup(ctx: TracePointContext) -> u32 {
    let tid = field_u32(&ctx, global(&WAKEUP_PID));
    if !maybe_traced(tid) {
        return 0;
    }
    let Some(p) = THREADS.get_ptr_mut(&tid) else {
        return 0;
    };
    let t = unsafe { &mut *p };
    if t.in_call == 0 {
        return 0;
    }
    t.sched_wakeups += 1;
    let kind = t.in_call - 1;
    if kind >= SyscallKind::EpollWait as u32 && kind <= SyscallKind::EpollPwait2 as u32 {
        let now = unsafe { bpf_ktime_get_ns() };
        let key = EpollKey {
            tgid: t.tgid,
            epfd: t.fd,
        };
        if let Some(ip) = EPOLL.get_ptr_mut(&key) {
            let interest = unsafe { &mut *ip };
            if interest.last_woken_tid != tid
                && interest.last_wakeup_ns != 0
                && now.saturating_sub(interest.last_wakeup_ns) < HERD_WINDOW_NS
            {
                let skey = StatsKey { tgid: t.tgid, kind };
                if let Some(s) = stats_slot(&skey) {
                    s.herd_wakeups += 1;
                }
            }
            interest.last_wakeup_ns = now;
            interest.last_woken_tid = tid;
        }
    }
    0
}

/// `--follow` children and `--comm` matches join the traced set at fork.
#[tracepoint]
pub fn mux_sched_fork(ctx: TracePointContext) -> u32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let child = field_u32(&ctx, global(&FORK_CHILD_PID));
    let flag = if global(&FOLLOW) != 0 && maybe_traced(tgid) && is_traced(tgid) {
        traced::FOLLOWED
    } else if comm_matches() {
        traced::COMM_MATCH
    } else {
        return 0;
    };
    // A new thread also passes here with its tid as `child`; that entry never
    // matches a tgid while the thread lives and is removed when it exits.
    mark_candidate(child);
    if TRACED.insert(&child, &flag, 1).is_err() && !is_traced(child) {
        bump(Stat::TracedMapFull);
    }
    0
}

/// `--comm` matches join the traced set when they exec.
#[tracepoint]
pub fn mux_sched_exec(_ctx: TracePointContext) -> u32 {
    if comm_matches() {
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        mark_candidate(tgid);
        if TRACED.insert(&tgid, &traced::COMM_MATCH, 0).is_err() {
            bump(Stat::TracedMapFull);
        }
    }
    0
}

/// A thread's slot goes when it exits; a process leaves the traced set when
/// its last thread exits, so a reused pid is never taken for it.
#[tracepoint]
pub fn mux_sched_exit(ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    let tgid = (id >> 32) as u32;
    // Threads of a traced process share its tgid, a candidate.
    if !maybe_traced(tgid) {
        return 0;
    }
    if THREADS.get_ptr(&tid).is_some() {
        let _ = THREADS.remove(&tid);
    }
    if tid != tgid && is_traced(tid) {
        let _ = TRACED.remove(&tid);
    }
    let offset = global(&EXIT_GROUP_DEAD);
    let group_dead = if offset == 0 {
        tid == tgid
    } else {
        unsafe { ctx.read_at::<u8>(offset as usize) }.unwrap_or(1) != 0
    };
    if group_dead && is_traced(tgid) {
        let _ = TRACED.remove(&tgid);
    }
    0
}

#[inline(always)]
fn comm_matches() -> bool {
    let want: [u8; 16] = global(&COMM);
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
