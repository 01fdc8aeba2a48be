//! The records the programs keep in their maps, byte for byte as both sides
//! see them: keys, aggregates, per-thread state, loss counters.

use core::mem::size_of;

#[cfg(test)]
use crate::counter::Counter as _;
use crate::{
    counter::{Extremes, LongestStall},
    counters,
    hist::{Hist, Pow2Hist},
    kind::ERRNO_CLASSES,
};

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
        /// Calls whose time was taken: all, or under `--time-every N` one in
        /// N of the waits and of the other calls. `wall_ns`, `on_cpu_ns`, `hist_wall_ns`,
        /// `hist_on_cpu_ns` and `wall_extremes` cover these calls only;
        /// everything else covers every call.
        pub timed: u64,
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
        /// On a CPU during the call (wall − off-CPU), summed over timed calls.
        pub on_cpu_ns: u64,
        /// Time switched out during the call, summed (`sched_switch`) over
        /// every call: the scheduler programs stamp it, timed or not.
        pub off_cpu_ns: u64,
        /// Watched fds: select popcount, poll entries naming an fd, epoll interest-set size.
        pub watched: u64,
        /// The size argument: select `n`, poll `nfds`, epoll `maxevents`.
        pub size_arg: u64,
        /// fds the kernel examined: watched for select/poll, ready for epoll.
        pub scanned: u64,
        /// Bookkeeping bytes copied user → kernel (fd sets, pollfds, epoll_event, sigmask).
        pub bookkeeping_in: u64,
        /// Bookkeeping bytes copied kernel → user.
        pub bookkeeping_out: u64,
        /// Payload bytes moved by receive, send and zero-copy calls.
        pub payload_bytes: u64,
        /// Of which on sockets (the fd's inode is a socket); the rest is
        /// files, pipes and devices.
        pub payload_socket_bytes: u64,
        /// Of which moved by sendfile/splice: never copied through user space.
        pub zero_copy_bytes: u64,
        /// Messages moved: calls that moved data, and each message of
        /// recvmmsg/sendmmsg.
        pub messages: u64,
        /// Of which on sockets.
        pub socket_messages: u64,
        /// Receive calls that returned EAGAIN right after a wait reported ready.
        pub empty_wakeups: u64,
        /// Wait returns that happened while another thread of the process was
        /// also woken from the same epoll fd (thundering herd).
        pub herd_wakeups: u64,
        /// Timed-wait calls with a zero timeout (busy polling).
        pub zero_timeouts: u64,
        /// Wait calls with no timeout (block forever).
        pub infinite_timeouts: u64,
        // The event loop, folded at each wait's return (wait kinds only).
        /// Iterations: a wait's return → the same thread's next wait entry.
        pub iterations: u64,
        /// Of which timed: all, or under `--time-every N` one in N (the
        /// iteration and the wait that ends it are timed together).
        /// `iteration_ns`, the stalls, `iteration_extremes`,
        /// `longest_stall` and `hist_iteration_ns` cover these only.
        pub timed_iterations: u64,
        pub iteration_ns: u64,
        /// Iterations longer than the stall threshold (`--stall`): every
        /// timed one, and under `--time-every` every untimed one the
        /// kernel's tick (jiffies) shows at least a tick longer.
        pub stalls: u64,
        /// Of which untimed, their length known to within a tick.
        pub tick_stalls: u64,
        pub stall_ns: u64,
        /// Of the stalls' time, off a CPU (blocked in another call, or
        /// preempted); the rest was on a CPU.
        pub stall_off_cpu_ns: u64,
        // Scheduling latency, folded at the return of the call it delayed.
        /// Calls whose thread was woken while blocked, and the delays from
        /// the wakeup to the thread running again.
        pub runq_delays: u64,
        pub runq_ns: u64,
        /// From running again to the call's return: the kernel's exit path.
        pub exit_path_ns: u64,
        // Every scalar above, every extreme below, the histograms last: a
        // call touches few cache lines of this value besides its buckets.
        /// Smallest and largest watched fds, ready fds, wall time, loop
        /// iteration and run-queue delay per call, since attach and per
        /// reading interval.
        pub watched_extremes: Extremes,
        pub ready_extremes: Extremes,
        pub wall_extremes: Extremes,
        pub iteration_extremes: Extremes,
        pub runq_extremes: Extremes,
        /// The longest stall, since attach and per reading interval.
        pub longest_stall: LongestStall,
        /// Read as percentiles: fine buckets.
        pub hist_wall_ns: Hist,
        pub hist_watched: Hist,
        pub hist_iteration_ns: Hist,
        pub hist_runq_ns: Hist,
        /// Only drawn as bars: powers of two.
        pub hist_on_cpu_ns: Pow2Hist,
        pub hist_ready: Pow2Hist,
        /// The timeout argument in µs (finite timeouts only).
        pub hist_timeout_us: Pow2Hist,
        pub hist_payload: Pow2Hist,
        pub hist_exit_path_ns: Pow2Hist,
    }
}
const _: () = assert!(
    size_of::<SyscallStats>()
        == (30 + 2 * crate::HIST_BUCKETS + 4 * crate::POW2_BUCKETS + 3 * 8) * 8
            + size_of::<LoopStatsPart>()
);

/// The size of the loop fields of [`SyscallStats`], for the assert above.
#[repr(C)]
struct LoopStatsPart {
    counters: [u64; 10],
    hists: [u64; 2 * crate::HIST_BUCKETS + crate::POW2_BUCKETS],
    extremes: [Extremes; 2],
    longest: LongestStall,
}

/// Per-thread state: the call in flight (entry time and arguments, from
/// enter to exit) and the thread's running totals for the threads view.
/// Updated in place; a slot of `THREAD_STATES` claimed at the thread's
/// first measured call, given back when it exits.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ThreadState {
    /// The process and the thread as user space names them: the kernel's
    /// ids, or inside a pid namespace that namespace's (set once, when the
    /// slot is claimed; `THREAD_INDEX` is keyed by the kernel's tid). A
    /// `tgid` of 0 marks a free slot.
    pub tgid: u32,
    pub tid: u32,
    /// `SyscallKind + 1` of the call in flight, 0 when none.
    pub in_call: u32,
    /// 1 when the call in flight is timed (`enter_ns` taken).
    pub call_timed: u32,
    /// Calls other than waits to leave untimed before the next timed one
    /// (`--time-every`): a random gap, so a loop's fixed pattern of calls
    /// cannot keep one kind always untimed.
    pub untimed_left: u32,
    /// The same for waits: loop iterations to leave untimed before the
    /// next timed one (`--time-every`).
    pub untimed_waits_left: u32,
    /// 1 when the last wait's return was stamped for the iteration that
    /// follows: the next wait is timed, and so is that iteration.
    pub next_wait_timed: u32,
    /// Set by user space when it evicts the thread's process: the programs
    /// no longer see the slot, and the thread gives it back at its next
    /// measured call (or its exit). Only the thread itself frees its slot,
    /// so a slot is never freed twice.
    pub evicted: u32,
    /// `SyscallKind + 1` of the thread's last call when it returned a
    /// restart code that a handler may yet turn into EINTR (not
    /// ERESTARTNOINTR), and that code; cleared at its next measured call.
    pub restart_kind: u32,
    pub restart_code: u32,
    /// Where the thread's saved user registers are (`struct pt_regs`, the
    /// top of its kernel stack: one per live task) and its `task_struct`,
    /// both kernel addresses, stamped at each call the programs looked the
    /// thread up for. A call entering or returning with those registers
    /// on a CPU that remembers this slot is this thread's, with no helper
    /// call to ask the kernel which task runs (see `CPU_LAST_THREAD`).
    pub regs: u64,
    pub task: u64,
    pub enter_ns: u64,
    /// When the thread was last switched out inside the call, 0 when running.
    pub switched_out_ns: u64,
    pub off_cpu_ns: u64,
    pub sched_wakeups: u64,
    /// 1 from a block in a call until the wakeup: still 1 when the thread
    /// runs or blocks again, the kernel never reported the wakeup
    /// (`Stat::WakeupUnseen`). Outlives the call, so a wakeup hidden with
    /// its switch-in is counted at the thread's next switch.
    pub wakeup_due: u64,
    // Scheduling latency of the call in flight (beside the other per-call
    // fields: a call's entry resets them all, in as few cache lines).
    /// When the thread was woken while blocked in the call, 0 if not.
    pub woken_ns: u64,
    /// Run-queue delay (woken → on a CPU) of the call in flight, 0 for none.
    pub runq_ns: u64,
    /// When it got a CPU after that wakeup.
    pub switched_in_ns: u64,
    /// The call's watched-fd count, size argument and bookkeeping-in bytes,
    /// computed at entry from the arguments.
    pub watched: u64,
    pub size_arg: u64,
    pub bookkeeping_in: u64,
    /// Bookkeeping bytes a successful wait copies back whatever it returns
    /// (select's fd sets, poll's revents).
    pub bookkeeping_out_fixed: u64,
    /// The time left that select, pselect6 and ppoll write over their
    /// timeout on any return (0 or its 16 bytes); set by their entry only.
    pub timeout_written_back: u64,
    /// The timeout in µs; `u64::MAX` = infinite.
    pub timeout_us: u64,
    /// The fd argument (epoll fd for epoll calls, the socket for I/O calls).
    pub fd: u32,
    /// Set when a wait returned ready fds; cleared by the next receive.
    pub pending_ready: u32,
    /// The eventpoll of the epoll wait in flight (a kernel address, used only
    /// as an identity: threads woken from the same one make a herd).
    pub epoll_id: u64,
    // The event loop: what the thread does between two waits.
    /// When its last wait returned; 0 before its first, or when the
    /// iteration that followed is untimed.
    pub last_wait_exit_ns: u64,
    /// The same in jiffies, under `--time-every`: the kernel's tick bounds
    /// an untimed iteration at the cost of one inlined load.
    pub last_wait_exit_jiffies: u64,
    /// An untimed iteration's length by the tick, when it was surely a
    /// stall (found at the entry of the wait that ends it, folded at that
    /// wait's return); 0 otherwise.
    pub tick_stall_ns: u64,
    /// Off-CPU time since the last wait returned: blocked in another call,
    /// or preempted (not while waiting: at a wait's return, the iteration
    /// that ended at its entry).
    pub iter_off_cpu_ns: u64,
    /// Of it, preempted (runnable, waiting for a CPU), and asleep in futex
    /// outside a traced call, not parked: a lock, or helper threads. A Node
    /// GC pause's off-CPU time was nine tenths preempted, not its futex.
    pub iter_preempted_ns: u64,
    pub iter_futex_ns: u64,
    /// How the thread's last switch-out took it off its CPU: one of the
    /// `SWITCHED_OUT_*` of [`ThreadState`].
    pub switched_out_as: u64,
    /// Time stopped since the last wait returned: taken out of the
    /// iteration, which would otherwise read a stop as a stall.
    pub iter_stopped_ns: u64,
    /// Time parked since the last wait returned: asleep in futex outside
    /// any traced call, a runtime's worker waiting for work while another
    /// thread holds the poller they share (tokio, Go; see
    /// [`LastWakeup::owner`]). Idle, not the loop's work: taken out of the
    /// iteration like a stop.
    pub iter_parked_ns: u64,
    /// When the thread went to sleep parked (0 when not), and its time
    /// parked so far: the busy share counts it idle, like a wait.
    pub parked_since_ns: u64,
    pub parked_ns: u64,
    /// Bit `kind` set for each kind of call made since the last wait
    /// returned.
    pub iter_kinds: u64,
    // Running totals for the threads view.
    pub calls: u64,
    /// Of which timed; `wall_ns` and `thread_off_cpu_ns` cover these.
    pub timed_calls: u64,
    pub wait_calls: u64,
    /// Of which timed (`--time-every`); `wait_on_cpu_ns` covers these.
    pub wait_timed_calls: u64,
    pub wakeups: u64,
    /// Watched fds summed over the thread's select, poll and epoll waits
    /// the kernel took (not io_uring's, which name no fds), those waits, and
    /// the ready fds they returned: one loop's interest set among a
    /// process's several (memcached's workers each wait on an epoll of
    /// their own).
    pub watched_total: u64,
    pub watched_waits: u64,
    pub ready_total: u64,
    pub wall_ns: u64,
    pub thread_off_cpu_ns: u64,
    /// Time inside wait calls, the loop's idle time: on a CPU (timed waits
    /// only) and off it (every wait: the scheduler programs stamp it).
    pub wait_on_cpu_ns: u64,
    pub wait_off_cpu_ns: u64,
    /// Iterations and stalls, every one counted (see `SyscallStats`).
    pub iterations: u64,
    pub stalls: u64,
    /// When the thread was switched out stopped (SIGSTOP, a ptrace stop, a
    /// cgroup freezer), 0 when not; and its time stopped so far. Not
    /// waiting, and not busy either: the busy share and the loop's
    /// iterations leave it out.
    pub stopped_since_ns: u64,
    pub stopped_ns: u64,
    /// The kernel's restart function the thread's last `poll` left when a
    /// signal cut it short (ERESTART_RESTARTBLOCK), 0 otherwise: its
    /// `restart_syscall` is then that poll resumed.
    pub restart_fn: u64,
    /// Where each kind's aggregate of this thread's process is in `STATS`,
    /// plus one (0: not looked up yet). A call's exit then finds its
    /// aggregate by index, with no hash lookup.
    pub stats_slots: [u16; crate::STATS_SLOT_KINDS],
}
const _: () = assert!(size_of::<ThreadState>() == 52 * 8 + 2 * crate::STATS_SLOT_KINDS);

impl ThreadState {
    pub const SWITCHED_OUT_ASLEEP: u64 = 0;
    pub const SWITCHED_OUT_PREEMPTED: u64 = 1;
    pub const SWITCHED_OUT_IN_FUTEX: u64 = 2;

    pub const ZERO: ThreadState = ThreadState {
        tgid: 0,
        tid: 0,
        in_call: 0,
        call_timed: 0,
        untimed_left: 0,
        untimed_waits_left: 0,
        next_wait_timed: 0,
        evicted: 0,
        restart_kind: 0,
        restart_code: 0,
        regs: 0,
        task: 0,
        enter_ns: 0,
        switched_out_ns: 0,
        iter_preempted_ns: 0,
        iter_futex_ns: 0,
        switched_out_as: 0,
        off_cpu_ns: 0,
        sched_wakeups: 0,
        wakeup_due: 0,
        woken_ns: 0,
        runq_ns: 0,
        switched_in_ns: 0,
        watched: 0,
        size_arg: 0,
        bookkeeping_in: 0,
        bookkeeping_out_fixed: 0,
        timeout_written_back: 0,
        timeout_us: 0,
        fd: 0,
        pending_ready: 0,
        epoll_id: 0,
        last_wait_exit_ns: 0,
        last_wait_exit_jiffies: 0,
        tick_stall_ns: 0,
        iter_off_cpu_ns: 0,
        iter_stopped_ns: 0,
        iter_parked_ns: 0,
        parked_since_ns: 0,
        parked_ns: 0,
        iter_kinds: 0,
        calls: 0,
        timed_calls: 0,
        wait_calls: 0,
        wait_timed_calls: 0,
        wakeups: 0,
        watched_total: 0,
        watched_waits: 0,
        ready_total: 0,
        wall_ns: 0,
        thread_off_cpu_ns: 0,
        wait_on_cpu_ns: 0,
        wait_off_cpu_ns: 0,
        iterations: 0,
        stalls: 0,
        stopped_since_ns: 0,
        stopped_ns: 0,
        restart_fn: 0,
        stats_slots: [0; crate::STATS_SLOT_KINDS],
    };
}

counters! {
    /// Everything measured for one (process, io_uring opcode), summed over
    /// requests, from the io_uring tracepoints. Per-CPU, like
    /// [`SyscallStats`]; keyed by [`StatsKey`] with the opcode as `kind`.
    pub struct UringStats {
        /// Requests submitted (`io_uring_submit_req`).
        pub submitted: u64,
        /// Of which by an SQPOLL ring's SQ thread: no syscall paid for them.
        pub sqpoll_submitted: u64,
        /// CQEs posted (`io_uring_complete`); a multishot request posts several.
        pub cqes: u64,
        /// Requests finished: their last CQE (no `IORING_CQE_F_MORE`).
        pub completed: u64,
        /// CQEs with a negative result.
        pub errors: u64,
        /// Errors by [`ErrnoClass`](crate::ErrnoClass).
        pub errno: [u64; ERRNO_CLASSES],
        /// Payload bytes: the positive results of receive-, send-, read- and
        /// write-class requests.
        pub bytes: u64,
        /// Of which on sockets.
        pub socket_bytes: u64,
        /// CQEs of those requests that moved data (res > 0): messages.
        pub messages: u64,
        /// Of which on sockets.
        pub socket_messages: u64,
        /// Finished requests by path: completed when first issued (inline),
        /// after an internal poll (`io_uring_poll_arm`), or by an io-wq
        /// worker (`io_uring_queue_async_work`, the expensive path).
        pub inline: u64,
        pub polled: u64,
        pub punted: u64,
        /// Polls armed and punts to io-wq, as the tracepoints fired.
        pub poll_arms: u64,
        pub async_punts: u64,
        /// Finished requests whose submission was seen (submitted before
        /// attach otherwise), and their submission → last CQE time.
        pub timed: u64,
        pub latency_ns: u64,
        pub latency_extremes: Extremes,
        pub hist_latency_ns: Hist,
    }
}
const _: () = assert!(
    size_of::<UringStats>()
        == (16 + ERRNO_CLASSES + crate::HIST_BUCKETS) * 8 + size_of::<Extremes>()
);

/// A request in flight, from its submission to its last CQE, keyed by the
/// request's kernel address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UringReq {
    pub submit_ns: u64,
    /// [`uring_path`] bits seen so far.
    pub path: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<UringReq>() == 16);

/// How a request got to its completion.
pub mod uring_path {
    /// The kernel armed an internal poll for it (the file was not ready).
    pub const POLLED: u32 = 1;
    /// It was punted to an io-wq worker thread.
    pub const PUNTED: u32 = 2;
}

/// Per eventpoll: when a thread blocked on it was last woken, and which. Two
/// different threads woken close together make a thundering herd.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LastWakeup {
    pub at_ns: u64,
    pub tid: u32,
    /// The process whose thread waited on it first, with [`Self::SHARED`]
    /// once a second of its threads has: they are a pool sharing one poller
    /// (tokio's workers, Go's), and a futex sleep between two waits is a
    /// worker parked until there is work. A loop alone on its eventpoll that
    /// sleeps in futex is blocked on a lock: that is its work. The process
    /// tells a freed eventpoll's address, which the kernel soon hands to
    /// another, from the one it was.
    pub owner: u32,
}

impl LastWakeup {
    /// A pid fits in 22 bits (`PID_MAX_LIMIT`).
    pub const SHARED: u32 = 1 << 31;
}
const _: () = assert!(size_of::<LastWakeup>() == 16);

/// What the kernel keeps of a traced process at its exit, by the pid user
/// space knows it by: its name, for a child that lived less than user
/// space's poll, and when it started and ended, so its figures since attach
/// are over the time it was traced and not the whole session's. Times are
/// CLOCK_BOOTTIME ns, the clock /proc's start times count in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitRecord {
    pub comm: [u8; 16],
    /// The process's start (its leader's `start_boottime`), or when it was
    /// moved into the `--cgroup`, if later.
    pub start_boot_ns: u64,
    pub exit_boot_ns: u64,
}
const _: () = assert!(size_of::<ExitRecord>() == 32);

counters! {
    /// The running totals of a process's threads that exited (a thread's
    /// slot goes at its exit, and with it what the threads view shows of
    /// it), folded at each exit: a server with a thread per connection
    /// still accounts for every thread. Per CPU, keyed by the tgid user
    /// space names; removed when the process exits.
    pub struct ExitedThreads {
        /// Threads folded in.
        pub threads: u64,
        pub calls: u64,
        pub timed_calls: u64,
        pub wait_calls: u64,
        pub wait_timed_calls: u64,
        pub wakeups: u64,
        pub watched_total: u64,
        pub watched_waits: u64,
        pub ready_total: u64,
        pub wall_ns: u64,
        pub thread_off_cpu_ns: u64,
        pub wait_on_cpu_ns: u64,
        pub wait_off_cpu_ns: u64,
        pub iterations: u64,
        pub stalls: u64,
    }
}

impl ExitedThreads {
    /// Adds one exiting thread's running totals.
    #[inline(always)]
    pub fn fold(&mut self, t: &ThreadState) {
        self.threads += 1;
        self.calls += t.calls;
        self.timed_calls += t.timed_calls;
        self.wait_calls += t.wait_calls;
        self.wait_timed_calls += t.wait_timed_calls;
        self.wakeups += t.wakeups;
        self.watched_total += t.watched_total;
        self.watched_waits += t.watched_waits;
        self.ready_total += t.ready_total;
        self.wall_ns += t.wall_ns;
        self.thread_off_cpu_ns += t.thread_off_cpu_ns;
        self.wait_on_cpu_ns += t.wait_on_cpu_ns;
        self.wait_off_cpu_ns += t.wait_off_cpu_ns;
        self.iterations += t.iterations;
        self.stalls += t.stalls;
    }
}

/// Flags stored as the value of the traced-tgid map.
pub mod traced {
    /// Named on the command line (`--pid`, `-- CMD`).
    pub const EXPLICIT: u32 = 1;
    /// Added by the kernel: a child forked under `--follow`.
    pub const FOLLOWED: u32 = 2;
    /// Added by the kernel: a `--comm` match.
    pub const COMM_MATCH: u32 = 4;
    /// Admitted by the kernel under `--all` (at its first wait call) or
    /// `--cgroup` (at its first measured call in the cgroup), or found in
    /// the cgroup by user space at attach.
    pub const ADMITTED: u32 = 8;
}

/// Which processes the kernel admits into the traced set by itself (the
/// `ADMIT` global), beside those user space names.
pub mod admit {
    /// None: only named processes, followed children and `--comm` matches.
    pub const NONE: u32 = 0;
    /// `--all`: every process, at its first wait call (select, poll,
    /// epoll_wait or io_uring_enter and their variants).
    pub const WAITERS: u32 = 1;
    /// `--cgroup`: every process in the cgroup (`CGROUP_ID` at
    /// `CGROUP_LEVEL`) or below it, at its first measured call.
    pub const CGROUP: u32 = 2;
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
    /// The kernel's fd table or eventpoll could not be read: that call's
    /// interest-set size or fd class is unknown.
    KernelReadFailed = 3,
    /// The traced-tgid map was full: a followed child or comm match missed.
    TracedMapFull = 4,
    /// An exit without a matching enter (attached mid-call): not counted.
    ExitWithoutEnter = 5,
    /// A select `n` larger than 1024: only the first 1024 bits were counted.
    SelectTruncated = 6,
    /// recvmmsg/sendmmsg moved more than 64 messages in one call: the bytes
    /// of the rest are not counted.
    MmsgTruncated = 7,
    /// A traced process (a followed child) is in a pid namespace nested in
    /// muxtrace's, where it has no pid muxtrace can name: not traced.
    OutsideNamespace = 8,
    /// Processes user space evicted from a full traced set (`--all`,
    /// `--cgroup`) to make room, the least active first: no longer traced,
    /// their figures so far kept. Counted by user space, not the programs.
    Evicted = 9,
    /// A traced thread ran again though the kernel never reported its
    /// switch-in (no `sched_switch` named it as next; bpftrace misses the
    /// same ones): nothing of ours is lost, but the time away is known only
    /// up to when it next made a traced call — credited to a call it slept
    /// in up to the call's return, missing from a loop iteration's
    /// off-CPU share.
    SwitchInUnseen = 10,
    /// A traced thread blocked in a call and ran again though the kernel
    /// never reported its wakeup (no `sched_wakeup` named it; bpftrace
    /// misses the same ones): that call's wakeup count is one short, and
    /// its run-queue delay unknown.
    WakeupUnseen = 11,
    /// A poll of more than 1,048,576 entries (`POLLFDS_READ_MAX`, which only
    /// a raised `fs.nr_open` allows): the entries past them were counted as
    /// watched, unread.
    PollTruncated = 12,
}
pub const STAT_COUNT: u32 = 13;

impl Stat {
    pub const ALL: [Stat; STAT_COUNT as usize] = [
        Stat::ThreadMapFull,
        Stat::StatsMapFull,
        Stat::UserReadFailed,
        Stat::KernelReadFailed,
        Stat::TracedMapFull,
        Stat::ExitWithoutEnter,
        Stat::SelectTruncated,
        Stat::MmsgTruncated,
        Stat::OutsideNamespace,
        Stat::Evicted,
        Stat::SwitchInUnseen,
        Stat::WakeupUnseen,
        Stat::PollTruncated,
    ];

    /// Events the kernel never reported (bpftrace misses the same ones): said
    /// apart from muxtrace's own losses, which a user can act on.
    pub const fn is_kernel_gap(self) -> bool {
        matches!(self, Stat::SwitchInUnseen | Stat::WakeupUnseen)
    }

    /// The counter with this name, as the losses name it.
    pub fn named(name: &str) -> Option<Stat> {
        Stat::ALL.into_iter().find(|s| s.name() == name)
    }

    pub const fn name(self) -> &'static str {
        match self {
            Stat::ThreadMapFull => "thread_map_full",
            Stat::StatsMapFull => "stats_map_full",
            Stat::UserReadFailed => "user_read_failed",
            Stat::KernelReadFailed => "kernel_read_failed",
            Stat::TracedMapFull => "traced_map_full",
            Stat::ExitWithoutEnter => "exit_without_enter",
            Stat::SelectTruncated => "select_truncated",
            Stat::MmsgTruncated => "mmsg_truncated",
            Stat::OutsideNamespace => "outside_namespace",
            Stat::Evicted => "evicted",
            Stat::SwitchInUnseen => "switch_in_unseen",
            Stat::WakeupUnseen => "wakeup_unseen",
            Stat::PollTruncated => "poll_truncated",
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
    unsafe impl aya::Pod for LastWakeup {}
    unsafe impl aya::Pod for ExitRecord {}
    unsafe impl aya::Pod for ExitedThreads {}
    unsafe impl aya::Pod for UringStats {}
    unsafe impl aya::Pod for UringReq {}
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

    /// The counters proper, as word indices: the scalars before the first
    /// extremes and the histograms after the longest stall (extremes merge
    /// by min and max, tested in counter.rs).
    fn counter_words() -> impl Iterator<Item = usize> + Clone {
        let scalars = core::mem::offset_of!(SyscallStats, watched_extremes) / 8;
        let hists = core::mem::offset_of!(SyscallStats, hist_wall_ns) / 8;
        assert_eq!(scalars, 40, "a scalar added below the extremes?");
        (0..scalars).chain(hists..size_of::<SyscallStats>() / 8)
    }

    #[test]
    fn merge_and_since_cover_every_word() {
        let mut a = SyscallStats::ZERO;
        for i in counter_words() {
            words(&mut a)[i] = i as u64 + 1;
        }
        let mut doubled = a;
        doubled.merge(&a);
        for i in counter_words() {
            assert_eq!(
                words(&mut doubled)[i],
                2 * (i as u64 + 1),
                "word {i} was not merged"
            );
        }
        let mut since = doubled.since(&a);
        for i in counter_words() {
            assert_eq!(
                words(&mut since)[i],
                i as u64 + 1,
                "word {i} was not differenced"
            );
        }
        let mut saturated = a.since(&doubled);
        assert!(
            counter_words().all(|i| words(&mut saturated)[i] == 0),
            "saturates at zero"
        );
        let mut zero = SyscallStats::ZERO;
        assert!(counter_words().all(|i| words(&mut zero)[i] == 0));
        assert_eq!(zero.wall_extremes, Extremes::ZERO);
        assert_eq!(SyscallStats::FIELDS.len(), 50);
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
