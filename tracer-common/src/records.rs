//! The records the programs keep in their maps, byte for byte as both sides
//! see them: keys, aggregates, per-thread state, loss counters.

use core::mem::size_of;

use crate::{counters, hist::Hist, kind::ERRNO_CLASSES};

/// Key of the per-CPU aggregation map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StatsKey {
    pub tgid: u32,
    pub kind: u32,
}
const _: () = assert!(size_of::<StatsKey>() == 8);

counters! {
    /// Everything measured for one (process, syscall kind), summed over calls.
    /// Lives in a per-CPU hash map; user space sums the CPUs.
    pub struct SyscallStats {
        pub calls: u64,
        /// Calls that returned a negative errno.
        pub errors: u64,
        /// Errors by [`ErrnoClass`](crate::ErrnoClass).
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
}
const _: () = assert!(size_of::<SyscallStats>() == (24 + 6 * crate::HIST_BUCKETS) * 8);

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
    /// Bookkeeping bytes a successful wait copies back whatever it returns
    /// (select's fd sets and timeval, poll's revents).
    pub bookkeeping_out_fixed: u64,
    /// The timeout in µs; `u64::MAX` = infinite.
    pub timeout_us: u64,
    /// The fd argument (epoll fd for epoll calls, the socket for I/O calls).
    pub fd: u32,
    /// Set when a wait returned ready fds; cleared by the next receive.
    pub pending_ready: u32,
    /// `epoll_ctl`'s op and target fd, kept for the exit, where success is known.
    pub ctl_op: u32,
    pub ctl_target_fd: u32,
    // Running totals for the threads view.
    pub calls: u64,
    pub wait_calls: u64,
    pub wakeups: u64,
    pub wall_ns: u64,
    pub thread_off_cpu_ns: u64,
}
const _: () = assert!(size_of::<ThreadState>() == 17 * 8);

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
        ctl_op: 0,
        ctl_target_fd: 0,
        calls: 0,
        wait_calls: 0,
        wakeups: 0,
        wall_ns: 0,
        thread_off_cpu_ns: 0,
    };
}

/// One fd of one process: the key of the epoll interest-set map (the fd is
/// an epoll fd) and of the socket map (the fd is a socket).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FdKey {
    pub tgid: u32,
    pub fd: u32,
}
const _: () = assert!(size_of::<FdKey>() == 8);

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

/// Indices of the loss-counter map: everything the programs could not
/// measure or store. Each is shown to the user when non-zero.
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
    /// The socket map was full: an accepted socket's payload counts as
    /// non-socket payload.
    SocketMapFull = 7,
}
pub const STAT_COUNT: u32 = 8;

impl Stat {
    pub const ALL: [Stat; STAT_COUNT as usize] = [
        Stat::ThreadMapFull,
        Stat::StatsMapFull,
        Stat::UserReadFailed,
        Stat::EpollMapFull,
        Stat::TracedMapFull,
        Stat::ExitWithoutEnter,
        Stat::SelectTruncated,
        Stat::SocketMapFull,
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
            Stat::SocketMapFull => "socket_map_full",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: each is #[repr(C)], Copy, made only of integers, and has no
    // padding (the size asserts above), so every byte pattern is a value.
    unsafe impl aya::Pod for StatsKey {}
    unsafe impl aya::Pod for SyscallStats {}
    unsafe impl aya::Pod for ThreadState {}
    unsafe impl aya::Pod for FdKey {}
    unsafe impl aya::Pod for EpollInterest {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The aggregate as the u64 words it is made of.
    fn words(s: &mut SyscallStats) -> &mut [u64] {
        const N: usize = size_of::<SyscallStats>() / 8;
        // SAFETY: SyscallStats is #[repr(C)], made only of u64s, N words long.
        unsafe { core::slice::from_raw_parts_mut((s as *mut SyscallStats).cast::<u64>(), N) }
    }

    #[test]
    fn merge_and_since_cover_every_word() {
        let mut a = SyscallStats::ZERO;
        for (i, w) in words(&mut a).iter_mut().enumerate() {
            *w = i as u64 + 1;
        }
        let mut doubled = a;
        doubled.merge(&a);
        let mut d = doubled;
        for (i, w) in words(&mut d).iter().enumerate() {
            assert_eq!(*w, 2 * (i as u64 + 1), "word {i} was not merged");
        }
        let mut since = doubled.since(&a);
        for (i, w) in words(&mut since).iter().enumerate() {
            assert_eq!(*w, i as u64 + 1, "word {i} was not differenced");
        }
        assert_eq!(a.since(&doubled), SyscallStats::ZERO, "saturates at zero");
        let mut zero = SyscallStats::ZERO;
        assert!(words(&mut zero).iter().all(|w| *w == 0));
        assert_eq!(SyscallStats::FIELDS.len(), 26);
        assert_eq!(SyscallStats::FIELDS[0], "calls");
    }

    #[test]
    fn every_stat_has_its_index_and_a_distinct_name() {
        for (i, stat) in Stat::ALL.into_iter().enumerate() {
            assert_eq!(stat as usize, i);
            assert!(Stat::ALL[..i].iter().all(|s| s.name() != stat.name()));
        }
    }
}
