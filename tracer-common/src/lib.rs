//! Types shared by the eBPF programs (`tracer-ebpf`) and user space
//! (`tracer-user`): map keys and values, the histogram layout, the syscall
//! kinds and the map sizes.
//!
//! Every type that crosses the kernel boundary is `#[repr(C)]`, `Copy`, has no
//! `bool` and no implicit padding (checked by `const` asserts), so both sides
//! agree byte for byte. `aya::Pod` is implemented behind the `user` feature.
#![no_std]

use core::mem::size_of;

/// How many processes can be traced at once (explicit pids, `--comm` matches
/// and followed children together).
pub const MAX_TRACED_TGIDS: u32 = 4096;
/// Per-thread in-flight slots. Threads beyond this are not measured; each
/// failed insert is counted in [`Stat::ThreadMapFull`].
pub const MAX_THREADS: u32 = 16_384;
/// (tgid, syscall kind) aggregation slots.
pub const MAX_STATS_KEYS: u32 = 16_384;
/// (tgid, epoll fd) interest-set slots.
pub const MAX_EPOLL_FDS: u32 = 16_384;

/// Slots of the candidates filter: an id (tgid or tid) may be traced only
/// when its slot, `id & (CANDIDATE_SLOTS - 1)`, is non-zero. Ids that share a
/// slot with a traced one fall through to the exact lookups.
pub const CANDIDATE_SLOTS: u32 = 1 << 16;

/// The candidates-filter slot of a tgid or tid.
#[inline(always)]
pub const fn candidate_slot(id: u32) -> u32 {
    id & (CANDIDATE_SLOTS - 1)
}

/// Log2 histogram buckets: bucket 0 holds the value 0, bucket `b >= 1` holds
/// values in `[2^(b-1), 2^b)`; the last bucket also takes everything larger.
pub const HIST_BUCKETS: usize = 48;

/// The syscalls muxtrace measures. The discriminant indexes arrays on both
/// sides and is part of the map key, so the order is fixed.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyscallKind {
    Select = 0,
    Pselect6 = 1,
    Poll = 2,
    Ppoll = 3,
    EpollWait = 4,
    EpollPwait = 5,
    EpollPwait2 = 6,
    EpollCtl = 7,
    Accept4 = 8,
    Recvfrom = 9,
    Recvmsg = 10,
    Read = 11,
    Sendto = 12,
    Sendmsg = 13,
    Write = 14,
}

/// Number of [`SyscallKind`]s.
pub const SYSCALL_KINDS: usize = 15;

impl SyscallKind {
    pub const ALL: [SyscallKind; SYSCALL_KINDS] = [
        SyscallKind::Select,
        SyscallKind::Pselect6,
        SyscallKind::Poll,
        SyscallKind::Ppoll,
        SyscallKind::EpollWait,
        SyscallKind::EpollPwait,
        SyscallKind::EpollPwait2,
        SyscallKind::EpollCtl,
        SyscallKind::Accept4,
        SyscallKind::Recvfrom,
        SyscallKind::Recvmsg,
        SyscallKind::Read,
        SyscallKind::Sendto,
        SyscallKind::Sendmsg,
        SyscallKind::Write,
    ];

    pub const fn from_u32(v: u32) -> Option<SyscallKind> {
        if (v as usize) < SYSCALL_KINDS {
            Some(Self::ALL[v as usize])
        } else {
            None
        }
    }

    /// The syscall's name, which is also the suffix of its
    /// `syscalls:sys_enter_*`/`sys_exit_*` tracepoints.
    pub const fn name(self) -> &'static str {
        match self {
            SyscallKind::Select => "select",
            SyscallKind::Pselect6 => "pselect6",
            SyscallKind::Poll => "poll",
            SyscallKind::Ppoll => "ppoll",
            SyscallKind::EpollWait => "epoll_wait",
            SyscallKind::EpollPwait => "epoll_pwait",
            SyscallKind::EpollPwait2 => "epoll_pwait2",
            SyscallKind::EpollCtl => "epoll_ctl",
            SyscallKind::Accept4 => "accept4",
            SyscallKind::Recvfrom => "recvfrom",
            SyscallKind::Recvmsg => "recvmsg",
            SyscallKind::Read => "read",
            SyscallKind::Sendto => "sendto",
            SyscallKind::Sendmsg => "sendmsg",
            SyscallKind::Write => "write",
        }
    }

    /// Calls that wait for readiness: their return value counts ready fds.
    pub const fn is_wait(self) -> bool {
        matches!(
            self,
            SyscallKind::Select
                | SyscallKind::Pselect6
                | SyscallKind::Poll
                | SyscallKind::Ppoll
                | SyscallKind::EpollWait
                | SyscallKind::EpollPwait
                | SyscallKind::EpollPwait2
        )
    }

    pub const fn is_epoll_wait(self) -> bool {
        matches!(
            self,
            SyscallKind::EpollWait | SyscallKind::EpollPwait | SyscallKind::EpollPwait2
        )
    }

    pub const fn is_select(self) -> bool {
        matches!(self, SyscallKind::Select | SyscallKind::Pselect6)
    }

    pub const fn is_poll(self) -> bool {
        matches!(self, SyscallKind::Poll | SyscallKind::Ppoll)
    }

    /// Calls whose non-negative return value is payload bytes received.
    pub const fn is_receive(self) -> bool {
        matches!(
            self,
            SyscallKind::Recvfrom | SyscallKind::Recvmsg | SyscallKind::Read
        )
    }

    /// Calls whose non-negative return value is payload bytes sent.
    pub const fn is_send(self) -> bool {
        matches!(
            self,
            SyscallKind::Sendto | SyscallKind::Sendmsg | SyscallKind::Write
        )
    }
}

/// Key of the per-CPU aggregation map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StatsKey {
    pub tgid: u32,
    pub kind: u32,
}
const _: () = assert!(size_of::<StatsKey>() == 8);

/// Errno classes counted separately, because each means something different
/// for an event loop: EINTR is a signal, EBADF a bug, EAGAIN an empty wakeup.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrnoClass {
    Eintr = 0,
    Ebadf = 1,
    Einval = 2,
    Eagain = 3,
    Other = 4,
}
pub const ERRNO_CLASSES: usize = 5;

impl ErrnoClass {
    pub const ALL: [ErrnoClass; ERRNO_CLASSES] = [
        ErrnoClass::Eintr,
        ErrnoClass::Ebadf,
        ErrnoClass::Einval,
        ErrnoClass::Eagain,
        ErrnoClass::Other,
    ];

    /// `errno` is positive (the negated return value). At the exit
    /// tracepoint a call cut short by a signal still carries the kernel's
    /// internal restart codes (ERESTARTSYS 512, ERESTARTNOINTR 513,
    /// ERESTARTNOHAND 514, ERESTART_RESTARTBLOCK 516); user space later sees
    /// EINTR or a transparent restart. Both mean "interrupted by a signal".
    #[inline(always)]
    pub const fn of(errno: u64) -> ErrnoClass {
        match errno {
            4 | 512 | 513 | 514 | 516 => ErrnoClass::Eintr,
            9 => ErrnoClass::Ebadf,
            22 => ErrnoClass::Einval,
            11 => ErrnoClass::Eagain,
            _ => ErrnoClass::Other,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            ErrnoClass::Eintr => "EINTR",
            ErrnoClass::Ebadf => "EBADF",
            ErrnoClass::Einval => "EINVAL",
            ErrnoClass::Eagain => "EAGAIN",
            ErrnoClass::Other => "other",
        }
    }
}

/// A log2 histogram; see [`HIST_BUCKETS`] for the bucket bounds.
pub type Hist = [u64; HIST_BUCKETS];

/// The bucket a value falls in. Branch-light so the verifier and the hot path
/// both stay cheap: a binary search over the bit length.
#[inline(always)]
pub const fn log2_bucket(v: u64) -> usize {
    if v == 0 {
        return 0;
    }
    let mut bits = 0u32;
    let mut x = v;
    if x >= 1 << 32 {
        x >>= 32;
        bits += 32;
    }
    if x >= 1 << 16 {
        x >>= 16;
        bits += 16;
    }
    if x >= 1 << 8 {
        x >>= 8;
        bits += 8;
    }
    if x >= 1 << 4 {
        x >>= 4;
        bits += 4;
    }
    if x >= 1 << 2 {
        x >>= 2;
        bits += 2;
    }
    if x >= 1 << 1 {
        bits += 1;
    }
    // bits = floor(log2 v), so v is in [2^bits, 2^(bits+1)) → bucket bits+1.
    let b = bits as usize + 1;
    if b >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        b
    }
}

/// Lower bound (inclusive) of a bucket's values.
pub const fn bucket_low(b: usize) -> u64 {
    if b == 0 {
        0
    } else {
        1u64 << (b - 1)
    }
}

/// Upper bound (exclusive) of a bucket's values; the last bucket is open.
pub const fn bucket_high(b: usize) -> u64 {
    if b == 0 {
        1
    } else if b >= HIST_BUCKETS - 1 {
        u64::MAX
    } else {
        1u64 << b
    }
}

/// Everything measured for one (process, syscall kind), summed over calls.
/// Lives in a per-CPU hash map; user space sums the CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SyscallStats {
    pub calls: u64,
    /// Calls that returned a negative errno.
    pub errors: u64,
    /// Errors by [`ErrnoClass`].
    pub errno: [u64; ERRNO_CLASSES],
    /// Wait calls that returned 0 (timed out with nothing ready).
    pub timeouts: u64,
    /// Sum of ready fds over wait calls that returned > 0.
    pub ready: u64,
    /// Wait calls that returned > 0.
    pub useful_wakeups: u64,
    /// Scheduler wakeups (`sched_wakeup`) of the thread while blocked in the call.
    pub sched_wakeups: u64,
    /// Enter → exit, summed.
    pub wall_ns: u64,
    /// Time switched out during the call, summed (`sched_switch`).
    pub off_cpu_ns: u64,
    /// Watched fds: select popcount, poll nfds, epoll interest-set size.
    pub watched: u64,
    /// The size argument: select `n`, poll `nfds`, epoll `maxevents`.
    pub size_arg: u64,
    /// fds the kernel examined: watched for select/poll, ready for epoll.
    pub scanned: u64,
    /// Bookkeeping bytes copied user → kernel (fd sets, pollfds, epoll_event, sigmask).
    pub bookkeeping_in: u64,
    /// Bookkeeping bytes copied kernel → user.
    pub bookkeeping_out: u64,
    /// Payload bytes moved by receive/send calls (their return values).
    pub payload_bytes: u64,
    /// Payload bytes of calls on sockets (user space marks socket fds).
    pub payload_socket_bytes: u64,
    /// Receive calls that returned EAGAIN right after a wait reported ready.
    pub empty_wakeups: u64,
    /// Wait returns that happened while another thread of the process was
    /// also woken from the same epoll fd (thundering herd).
    pub herd_wakeups: u64,
    /// Timed-wait calls with a zero timeout (busy polling).
    pub zero_timeouts: u64,
    /// Wait calls with no timeout (block forever).
    pub infinite_timeouts: u64,
    pub hist_wall_ns: Hist,
    pub hist_on_cpu_ns: Hist,
    pub hist_watched: Hist,
    pub hist_ready: Hist,
    /// The timeout argument in µs (finite timeouts only).
    pub hist_timeout_us: Hist,
    pub hist_payload: Hist,
}
pub const STATS_HISTS: usize = 6;
const _: () = assert!(size_of::<SyscallStats>() == (24 + STATS_HISTS * HIST_BUCKETS) * 8);

impl SyscallStats {
    pub const ZERO: SyscallStats = SyscallStats {
        calls: 0,
        errors: 0,
        errno: [0; ERRNO_CLASSES],
        timeouts: 0,
        ready: 0,
        useful_wakeups: 0,
        sched_wakeups: 0,
        wall_ns: 0,
        off_cpu_ns: 0,
        watched: 0,
        size_arg: 0,
        scanned: 0,
        bookkeeping_in: 0,
        bookkeeping_out: 0,
        payload_bytes: 0,
        payload_socket_bytes: 0,
        empty_wakeups: 0,
        herd_wakeups: 0,
        zero_timeouts: 0,
        infinite_timeouts: 0,
        hist_wall_ns: [0; HIST_BUCKETS],
        hist_on_cpu_ns: [0; HIST_BUCKETS],
        hist_watched: [0; HIST_BUCKETS],
        hist_ready: [0; HIST_BUCKETS],
        hist_timeout_us: [0; HIST_BUCKETS],
        hist_payload: [0; HIST_BUCKETS],
    };
}

/// Per-thread state: the call in flight (entry time and arguments, from
/// enter to exit) and the thread's running totals for the threads view.
/// Updated in place; inserted once per thread, removed when it exits.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThreadState {
    pub tgid: u32,
    /// `SyscallKind + 1` of the call in flight, 0 when none.
    pub in_call: u32,
    pub enter_ns: u64,
    /// When the thread was last switched out inside the call, 0 when running.
    pub switched_out_ns: u64,
    pub off_cpu_ns: u64,
    pub sched_wakeups: u64,
    /// The call's watched-fd count, size argument and bookkeeping-in bytes,
    /// computed at entry from the arguments.
    pub watched: u64,
    pub size_arg: u64,
    pub bookkeeping_in: u64,
    /// Bytes copied out per ready fd (select: fd-set bytes, fixed not per fd).
    pub bookkeeping_out_fixed: u64,
    /// The timeout in µs; `u64::MAX` = infinite.
    pub timeout_us: u64,
    /// The fd argument (epoll fd for epoll calls, the socket for I/O calls).
    pub fd: u32,
    /// Set when a wait returned ready fds; cleared by the next receive.
    pub pending_ready: u32,
    // Running totals for the threads view.
    pub calls: u64,
    pub wait_calls: u64,
    pub wakeups: u64,
    pub wall_ns: u64,
    pub thread_off_cpu_ns: u64,
}
const _: () = assert!(size_of::<ThreadState>() == 16 * 8);

impl ThreadState {
    pub const ZERO: ThreadState = ThreadState {
        tgid: 0,
        in_call: 0,
        enter_ns: 0,
        switched_out_ns: 0,
        off_cpu_ns: 0,
        sched_wakeups: 0,
        watched: 0,
        size_arg: 0,
        bookkeeping_in: 0,
        bookkeeping_out_fixed: 0,
        timeout_us: 0,
        fd: 0,
        pending_ready: 0,
        calls: 0,
        wait_calls: 0,
        wakeups: 0,
        wall_ns: 0,
        thread_off_cpu_ns: 0,
    };
}

/// Key of the epoll interest-set map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct EpollKey {
    pub tgid: u32,
    pub epfd: u32,
}
const _: () = assert!(size_of::<EpollKey>() == 8);

/// Value of the epoll interest-set map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EpollInterest {
    /// fds currently registered (ADD minus DEL that succeeded).
    pub registered: u64,
    /// When a thread blocked on this epoll fd was last woken, and which: two
    /// different threads woken close together make a thundering herd.
    pub last_wakeup_ns: u64,
    pub last_woken_tid: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<EpollInterest>() == 24);

/// Flags stored as the value of the traced-tgid map.
pub mod traced {
    /// Named on the command line (`--pid`, `-- CMD`).
    pub const EXPLICIT: u32 = 1;
    /// Added by the kernel: a child forked under `--follow`.
    pub const FOLLOWED: u32 = 2;
    /// Added by the kernel: a `--comm` match.
    pub const COMM_MATCH: u32 = 4;
}

/// Indices of the stats map: everything the programs could not measure or
/// store. Each is shown to the user when non-zero.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// A thread could not get an in-flight slot: its calls were not measured.
    ThreadMapFull = 0,
    /// A (process, syscall) aggregate could not be created: calls lost.
    StatsMapFull = 1,
    /// `bpf_probe_read_user` of an fd set, timeout or msghdr failed.
    UserReadFailed = 2,
    /// The epoll interest map was full: interest-set size unknown.
    EpollMapFull = 3,
    /// The traced-tgid map was full: a followed child or comm match missed.
    TracedMapFull = 4,
    /// An exit without a matching enter (attached mid-call): not counted.
    ExitWithoutEnter = 5,
    /// A select `n` larger than 1024: only the first 1024 bits were counted.
    SelectTruncated = 6,
}
pub const STAT_COUNT: u32 = 7;

impl Stat {
    pub const ALL: [Stat; STAT_COUNT as usize] = [
        Stat::ThreadMapFull,
        Stat::StatsMapFull,
        Stat::UserReadFailed,
        Stat::EpollMapFull,
        Stat::TracedMapFull,
        Stat::ExitWithoutEnter,
        Stat::SelectTruncated,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Stat::ThreadMapFull => "thread_map_full",
            Stat::StatsMapFull => "stats_map_full",
            Stat::UserReadFailed => "user_read_failed",
            Stat::EpollMapFull => "epoll_map_full",
            Stat::TracedMapFull => "traced_map_full",
            Stat::ExitWithoutEnter => "exit_without_enter",
            Stat::SelectTruncated => "select_truncated",
        }
    }
}

/// Offsets into the `sched_switch` record, read by user space from the
/// tracepoint's format file (the layout changes between kernels).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SchedSwitchLayout {
    pub prev_pid: u32,
    pub next_pid: u32,
}

/// Globals set by user space at load time (`EbpfLoader::set_global`).
pub mod globals {
    /// u32: 1 when forked children join the traced set.
    pub const FOLLOW: &str = "FOLLOW";
    /// [u8; 16]: comm to match at exec and fork, all zero for none.
    pub const COMM: &str = "COMM";
    /// u32: `sched_switch` offset of `next_pid`.
    pub const SWITCH_NEXT_PID: &str = "SWITCH_NEXT_PID";
}

/// Map names, shared so user space finds what the programs declare.
pub mod maps {
    pub const TRACED: &str = "TRACED";
    pub const THREADS: &str = "THREADS";
    pub const STATS: &str = "STATS";
    pub const EPOLL: &str = "EPOLL";
    pub const COUNTERS: &str = "COUNTERS";
    pub const SOCKET_FDS: &str = "SOCKET_FDS";
    pub const CANDIDATES: &str = "CANDIDATES";
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    unsafe impl aya::Pod for StatsKey {}
    unsafe impl aya::Pod for SyscallStats {}
    unsafe impl aya::Pod for ThreadState {}
    unsafe impl aya::Pod for EpollKey {}
    unsafe impl aya::Pod for EpollInterest {}
}
