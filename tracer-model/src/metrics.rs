//! The figures muxtrace shows, as types: what every sink renders and what
//! `--json` writes (documented field by field in docs/json.md). Readers of
//! the JSON — xtask, the benches, the tests — deserialize these same types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracer_common::{
    counter::{Range, Stall},
    Hist, Pow2Hist, SyscallKind, HIST_BUCKETS, POW2_BUCKETS,
};

/// Everything the sinks show, for one interval and the run so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    /// Seconds since attach.
    pub elapsed_s: f64,
    /// Length of the interval the `interval` windows cover.
    pub interval_s: f64,
    pub processes: Vec<ProcessMetrics>,
    /// Non-zero loss/failure counters: name → count since attach.
    pub losses: BTreeMap<String, u64>,
    /// muxtrace's own kernel-side cost, when the kernel reports it.
    pub cost: Option<Cost>,
    /// Entries in each bounded kernel map now: stats, threads, traced.
    pub map_entries: BTreeMap<String, u64>,
    /// An event-loop iteration at least this long is a stall (`--stall`).
    pub stall_threshold_ns: u64,
    /// One call in this many, and one loop iteration in this many, was
    /// timed (`--time-every`); 1 when all were.
    #[serde(default = "every_call")]
    pub time_every: u32,
    /// The kernel's tick, ns: under `--time-every`, a stall in an untimed
    /// iteration is found by it, and its length known to within one
    /// (`tick_stalls`); 0 when unknown, and stalls are then found in timed
    /// iterations only.
    #[serde(default)]
    pub tick_ns: u64,
}

fn every_call() -> u32 {
    1
}

/// Measured while the kernel's accounting is on: 100 ms samples, one per
/// interval (keeping it on all the time would itself cost ~10 %).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cost {
    /// Run time of all our programs during the samples, ns: the kernel's
    /// accounted time less its accounting's own (`accounting_ns_per_run`
    /// each run), so what the programs' work costs.
    pub run_time_ns: u64,
    /// Program runs during the samples.
    pub run_count: u64,
    /// Total length of the samples, s.
    pub sampled_s: f64,
    /// Average ns per program run, net of the accounting.
    pub ns_per_run: f64,
    /// The kernel accounting's own time in each accounted run, ns: an empty
    /// program's accounted run time, measured at every sample. bpftop and
    /// `bpftool prog` show run times with it; `run_time_ns` is without.
    #[serde(default)]
    pub accounting_ns_per_run: f64,
    /// Share of one CPU muxtrace's programs cost, percent, over the last
    /// samples (up to ten, one per interval), a moving figure: their work
    /// while sampled, plus `accounting_percent`.
    pub cpu_percent: f64,
    /// Of `cpu_percent`, an estimate of what the sampling itself costs: the
    /// accounting's time per run on every run while it is on, averaged over
    /// all the time (it is on a tenth of each interval, 100 ms at most). It
    /// overestimates by the call into the program, counted in the
    /// accounting's time but paid with it off too.
    #[serde(default)]
    pub accounting_percent: f64,
}

/// The I/O model a process uses, from the calls it makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoModel {
    Select,
    Poll,
    Epoll,
    /// Submits requests to io_uring and waits for their completions.
    #[serde(rename = "io_uring")]
    IoUring,
    /// Serves on sockets but never waits for readiness: blocking I/O.
    Blocking,
    /// A few calls, no waits, little socket traffic: a controller (nginx's
    /// master) or a quiet process, not a server to judge.
    Idle,
    /// No measured call yet.
    Unknown,
}

impl IoModel {
    pub fn name(self) -> &'static str {
        match self {
            IoModel::Select => "select",
            IoModel::Poll => "poll",
            IoModel::Epoll => "epoll",
            IoModel::IoUring => "io_uring",
            IoModel::Blocking => "blocking",
            IoModel::Idle => "idle",
            IoModel::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessMetrics {
    /// 0 for the folded totals of exited processes.
    pub pid: u32,
    /// How many exited processes of this name are summed here (their
    /// entries freed); 0 for a process of its own.
    pub folded: u64,
    /// For a folded entry, the pids it sums, the first 64 in the order they
    /// were folded. Absent from an older build's lines.
    #[serde(default)]
    pub folded_pids: Vec<u32>,
    /// Live child processes not traced (`--follow` traces them), and the
    /// first 64 of their pids. Absent from an older build's lines.
    #[serde(default)]
    pub untraced_children: u64,
    #[serde(default)]
    pub untraced_child_pids: Vec<u32>,
    /// For a process with no call counted yet: syscall → its threads
    /// blocked in it at this reading. Absent from an older build's lines.
    #[serde(default)]
    pub blocked_in: BTreeMap<String, u32>,
    /// Process name; bytes that are not UTF-8 become U+FFFD.
    pub comm: String,
    /// The title the process set over its command line (`nginx: worker
    /// process`, `postgres: checkpointer`), when it set one. Absent from
    /// an older build's lines.
    #[serde(default)]
    pub title: Option<String>,
    pub alive: bool,
    pub model: IoModel,
    pub syscalls: Vec<SyscallMetrics>,
    /// All syscalls of the process together.
    pub total: Window,
    pub interval: Window,
    pub threads: Vec<ThreadMetrics>,
    /// Its threads that exited since attach after a traced call, summed:
    /// `threads` lists the live ones, so a server with a thread per
    /// connection shows where its calls went. `None` when none exited (and
    /// in an older build's lines).
    #[serde(default)]
    pub exited_threads: Option<ExitedThreadMetrics>,
    /// epoll fd → registered fds, as /proc/PID/fdinfo lists them at this
    /// reading.
    pub epoll_interest: BTreeMap<u32, u64>,
    /// fd class (socket, pipe, file, eventfd, epoll, …) → open fds.
    pub fd_classes: BTreeMap<String, u32>,
    /// Threads that wait for readiness (its event loops), and their mean
    /// busy share over the interval (`None` without one).
    pub loop_threads: u32,
    pub loop_busy_share: Option<f64>,
    /// The loop's busy share since attach ([`crate::busy_share_since_attach`]);
    /// `None` without a loop iteration. Absent from an older build's lines.
    #[serde(default)]
    pub loop_busy_share_since_attach: Option<f64>,
    /// io_uring requests, for a process that submitted any.
    pub uring: Option<UringMetrics>,
    /// One sentence on what waiting costs this process, with its numbers.
    pub verdict: String,
    /// The verdict in one word ([`crate::word`]), for alerts and lists: one
    /// of [`crate::STATES`]. Empty when read from a build before it (the
    /// bench reads an older build's lines beside this one's).
    #[serde(default)]
    pub state: String,
}

/// A process's io_uring requests: all together and by opcode, since attach
/// and during the last interval.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UringMetrics {
    pub total: UringWindow,
    pub interval: UringWindow,
    /// One row per opcode seen, by opcode number.
    pub ops: Vec<UringOpMetrics>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UringOpMetrics {
    /// The opcode's name (`recv`, `send`, `nop`, …; `aux` for CQEs the
    /// kernel posts without a request).
    pub op: String,
    pub opcode: u8,
    pub total: UringWindow,
    pub interval: UringWindow,
}

/// io_uring's figures over a span of time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UringWindow {
    pub seconds: f64,
    /// Requests submitted, and of those by an SQPOLL ring's SQ thread (no
    /// syscall paid for them) and by io_uring_enter.
    pub submitted: u64,
    pub sqpoll_submitted: u64,
    pub enter_submitted: u64,
    /// CQEs posted, and requests finished (their last CQE).
    pub cqes: u64,
    pub completed: u64,
    pub errors: u64,
    pub eintr: u64,
    pub ebadf: u64,
    pub einval: u64,
    pub eagain: u64,
    pub other_errors: u64,
    /// Payload bytes of receive/send/read/write-class requests, and of
    /// those on sockets.
    pub bytes: u64,
    pub socket_bytes: u64,
    /// Of which received (receive-class requests); absent from an older
    /// build's lines.
    #[serde(default)]
    pub received_bytes: u64,
    #[serde(default)]
    pub socket_received_bytes: u64,
    /// CQEs that moved data, and of those of receive-class requests; the
    /// same on sockets.
    pub messages: u64,
    pub receives: u64,
    pub socket_messages: u64,
    pub socket_receives: u64,
    /// Finished requests whose submission was seen, by path.
    pub timed: u64,
    pub inline: u64,
    pub polled: u64,
    pub punted: u64,
    /// Polls armed and punts to io-wq as they happened.
    pub poll_arms: u64,
    pub async_punts: u64,
    /// punted / timed and polled / timed.
    pub punt_share: f64,
    pub poll_share: f64,
    /// Submission → last CQE: summed over `timed`, and its statistics.
    pub latency_ns: u64,
    pub latency_avg_ns: f64,
    pub latency_p50_ns: f64,
    pub latency_p99_ns: f64,
    pub latency_min_ns: u64,
    pub latency_max_ns: u64,
    /// io_uring_enter calls (waits included) and waits.
    pub enters: u64,
    pub waits: u64,
    /// Requests io_uring_enter submitted per call.
    pub sqes_per_enter: f64,
    /// CQEs waiting in the ring when a wait returned, per wait that
    /// returned (timeouts count as 0): the counterpart of ready fds.
    pub cqes_per_wait: f64,
    /// sqpoll_submitted / submitted.
    pub sqpoll_share: f64,
    /// Bookkeeping bytes io_uring_enter copied (only its extended argument
    /// or sigmask: the rings are shared memory), and per wait.
    pub bookkeeping_bytes: u64,
    pub bookkeeping_bytes_per_wait: f64,
    pub submitted_per_sec: f64,
    pub cqes_per_sec: f64,
    pub bytes_per_sec: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyscallMetrics {
    /// Written as the syscall's name.
    #[serde(with = "kind_name")]
    pub syscall: SyscallKind,
    /// Since attach.
    pub total: Window,
    /// During the last interval.
    pub interval: Window,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ThreadMetrics {
    pub tid: u32,
    /// The thread's name, as `top -H` shows it.
    pub name: String,
    /// For a thread that waits for readiness (an event-loop thread): the
    /// share of the interval it spent outside wait calls, handling events.
    /// `None` for other threads, and in a thread's first interval.
    pub loop_busy_share: Option<f64>,
    /// Event-loop iterations and stalls since attach.
    pub iterations: u64,
    pub stalls: u64,
    pub calls: u64,
    pub wait_calls: u64,
    pub wakeups: u64,
    /// Watched fds summed over its select, poll and epoll waits since
    /// attach (those the kernel took), those waits, and the ready fds they
    /// returned: the process's figures for this thread's loop alone.
    pub watched: u64,
    pub watched_waits: u64,
    pub ready: u64,
    /// Watched fds per wait during the interval, or of the wait it is
    /// blocked in when none returned: the size of this loop's interest set;
    /// `None` when it neither waited nor waits on fds.
    pub watched_per_wait: Option<f64>,
    /// Of `calls`, timed; the times below are estimated from them
    /// (`--time-every`).
    pub timed_calls: u64,
    pub wall_ns: u64,
    pub off_cpu_ns: u64,
    pub on_cpu_ns: u64,
    /// Calls per second during the interval (a thread new in it: all its
    /// calls, over the interval).
    pub calls_per_sec: f64,
    /// Time stopped since attach (SIGSTOP, ptrace stops), up to the reading.
    pub stopped_ns: u64,
    /// Time parked since attach, up to the reading: asleep in futex outside
    /// any traced call (a tokio or Go worker waiting for work). Idle for the
    /// busy share, and out of the loop's iterations. Absent from an older
    /// build's lines.
    #[serde(default)]
    pub parked_ns: u64,
}

/// A process's exited threads, their totals since attach summed: the
/// figures [`ThreadMetrics`] gives a live thread.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExitedThreadMetrics {
    pub threads: u64,
    pub iterations: u64,
    pub stalls: u64,
    pub calls: u64,
    pub wait_calls: u64,
    pub wakeups: u64,
    pub watched: u64,
    pub watched_waits: u64,
    pub ready: u64,
    pub timed_calls: u64,
    pub wall_ns: u64,
    pub off_cpu_ns: u64,
    pub on_cpu_ns: u64,
}

/// Counts over a span of time (the whole run or one interval) and what
/// follows from them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Window {
    pub seconds: f64,
    pub calls: u64,
    pub errors: u64,
    /// Returned EINTR to the program: a handler ran.
    pub eintr: u64,
    /// Cut short by a signal, a stop or a ptrace attach and restarted by
    /// the kernel, unseen by the program (an error and a call, as strace -c
    /// counts them). Absent from an older build's lines.
    #[serde(default)]
    pub restarted: u64,
    pub ebadf: u64,
    pub einval: u64,
    pub eagain: u64,
    pub other_errors: u64,
    pub timeouts: u64,
    pub ready: u64,
    pub useful_wakeups: u64,
    pub sched_wakeups: u64,
    pub empty_wakeups: u64,
    pub herd_wakeups: u64,
    pub zero_timeouts: u64,
    pub infinite_timeouts: u64,
    /// Calls whose time was taken: all of them, unless `--time-every N`
    /// timed one in N.
    pub timed_calls: u64,
    /// Of `calls`, those of kinds with at least one timed call: what
    /// per-call times divide by.
    #[serde(skip)]
    pub calls_with_time: u64,
    /// Wall time of the timed calls alone: the duration histogram's sum.
    #[serde(skip)]
    pub timed_wall_ns: u64,
    /// Time in the calls. Under `--time-every N` wall and on-CPU time are
    /// estimated, per kind, from the timed calls (× calls / timed); off-CPU
    /// time is measured for every call.
    pub wall_ns: u64,
    pub on_cpu_ns: u64,
    pub off_cpu_ns: u64,
    pub watched: u64,
    pub size_arg: u64,
    pub scanned: u64,
    pub bookkeeping_in_bytes: u64,
    pub bookkeeping_out_bytes: u64,
    pub payload_bytes: u64,
    pub payload_socket_bytes: u64,
    /// Payload on files, pipes and devices: payload_bytes − payload_socket_bytes.
    pub payload_file_bytes: u64,
    /// Payload moved by sendfile/splice, never copied through user space
    /// (also counted as socket or file payload).
    pub zero_copy_bytes: u64,
    /// The payload by direction, to the byte, as the other end counts it:
    /// sockets received and sent, files, pipes and devices read and
    /// written (io_uring's requests included). A splice from a socket
    /// receives and one into a socket sends, so a proxy's spliced bytes
    /// count both ways. Absent from an older build's lines.
    #[serde(default)]
    pub socket_received_bytes: u64,
    #[serde(default)]
    pub socket_sent_bytes: u64,
    #[serde(default)]
    pub file_read_bytes: u64,
    #[serde(default)]
    pub file_written_bytes: u64,
    /// Messages moved: calls that moved data, each message of recvmmsg/sendmmsg.
    pub messages: u64,
    /// Of which on sockets.
    pub socket_messages: u64,
    /// Messages received on sockets.
    pub socket_receives: u64,
    /// Messages received (the served messages, for syscalls per message).
    pub receives_with_data: u64,
    pub calls_per_sec: f64,
    pub ready_per_sec: f64,
    /// Returns from wait calls per second (ready, timeout or EINTR).
    pub wakeups_per_sec: f64,
    pub bookkeeping_bytes_per_sec: f64,
    pub payload_bytes_per_sec: f64,
    pub watched_avg: f64,
    pub watched_p99: f64,
    /// Fewest and most fds one wait call watched (0 without wait calls).
    pub watched_min: u64,
    pub watched_max: u64,
    /// Fewest and most ready fds one wait call returned.
    pub ready_min: u64,
    pub ready_max: u64,
    pub size_arg_avg: f64,
    /// Ready fds per wait call that returned (timeouts count as 0).
    pub ready_avg: f64,
    /// ready / scanned.
    pub efficiency: f64,
    pub timeout_share: f64,
    pub eintr_share: f64,
    pub wall_p50_ns: f64,
    pub wall_p99_ns: f64,
    /// Shortest and longest call.
    pub wall_min_ns: u64,
    pub wall_max_ns: u64,
    pub on_cpu_ns_per_call: f64,
    /// on-CPU / wall.
    pub on_cpu_share: f64,
    pub on_cpu_ns_per_ready: f64,
    pub bookkeeping_bytes_per_ready: f64,
    /// All traced calls per receive that returned data.
    pub syscalls_per_receive: f64,
    /// Event-loop iterations (a wait's return → the same thread's next wait
    /// entry) that ended in the window, counted at the wait's return.
    pub iterations: u64,
    /// Of which timed: all, or under `--time-every N` one in N. The
    /// percentiles, the extremes and the stalls cover these only.
    pub timed_iterations: u64,
    /// Time in the iterations; under `--time-every`, estimated per kind
    /// from the timed ones (× iterations / timed).
    pub iteration_ns: u64,
    /// The timed iterations' time alone: the histogram's sum.
    #[serde(skip)]
    pub timed_iteration_ns: u64,
    pub iteration_avg_ns: f64,
    pub iteration_p50_ns: f64,
    pub iteration_p99_ns: f64,
    pub iteration_max_ns: u64,
    /// Iteration time per ready fd: the work one ready event costs.
    pub work_per_ready_ns: f64,
    /// Iterations at least `--stall` long: every timed one, and under
    /// `--time-every` every untimed one the kernel's tick shows at least a
    /// tick longer.
    pub stalls: u64,
    /// Of which untimed: their length (in `stall_ns`, and the longest's)
    /// known to within a tick.
    #[serde(default)]
    pub tick_stalls: u64,
    pub stall_ns: u64,
    /// Of the stalls' time, off a CPU (blocked in another call, preempted).
    pub stall_off_cpu_ns: u64,
    /// The longest stall: its length, when it ended (Unix time, s; 0 when
    /// none), its time off a CPU and the parts of that preempted (waiting
    /// for a CPU, not asleep) and asleep in futex (a lock, helper threads),
    /// and the calls made during it.
    pub longest_stall_ns: u64,
    pub longest_stall_at_s: f64,
    pub longest_stall_off_cpu_ns: u64,
    pub longest_stall_preempted_ns: u64,
    pub longest_stall_futex_ns: u64,
    pub longest_stall_syscalls: Vec<String>,
    /// Calls whose thread was woken while blocked in them, and the delays
    /// from the wakeup to the thread running again (the run queue).
    pub runq_delays: u64,
    pub runq_ns: u64,
    pub runq_p50_ns: f64,
    pub runq_p99_ns: f64,
    pub runq_max_ns: u64,
    /// From running again to the call's return: the kernel's exit path.
    pub exit_path_ns: u64,
    /// Per woken call: run-queue delay + exit path, the time a ready event
    /// waited in the kernel and the scheduler before the code saw it.
    pub readiness_latency_avg_ns: f64,
    /// Behind the percentiles; not written (Prometheus renders the buckets).
    #[serde(skip)]
    pub hists: Hists,
    /// Behind the min and max fields, which bound the percentiles.
    #[serde(skip)]
    pub extremes: WindowExtremes,
}

/// The histograms behind the percentiles (see tracer_common::HIST_BUCKETS).
#[derive(Debug, Clone)]
pub struct Hists {
    pub wall_ns: Hist,
    pub watched: Hist,
    pub iteration_ns: Hist,
    pub runq_ns: Hist,
    pub exit_path_ns: Pow2Hist,
    pub on_cpu_ns: Pow2Hist,
    pub ready: Pow2Hist,
    pub timeout_us: Pow2Hist,
    pub payload: Pow2Hist,
}

/// The ranges of the values behind the histograms in one window.
#[derive(Debug, Clone, Copy)]
pub struct WindowExtremes {
    pub watched: Range,
    pub ready: Range,
    pub wall: Range,
    pub iteration: Range,
    pub runq: Range,
    pub longest_stall: Stall,
}

impl Default for WindowExtremes {
    fn default() -> Self {
        WindowExtremes {
            watched: Range::EMPTY,
            ready: Range::EMPTY,
            wall: Range::EMPTY,
            iteration: Range::EMPTY,
            runq: Range::EMPTY,
            longest_stall: Stall::default(),
        }
    }
}

impl Default for Hists {
    fn default() -> Self {
        Hists {
            wall_ns: [0; HIST_BUCKETS],
            watched: [0; HIST_BUCKETS],
            iteration_ns: [0; HIST_BUCKETS],
            runq_ns: [0; HIST_BUCKETS],
            exit_path_ns: [0; POW2_BUCKETS],
            on_cpu_ns: [0; POW2_BUCKETS],
            ready: [0; POW2_BUCKETS],
            timeout_us: [0; POW2_BUCKETS],
            payload: [0; POW2_BUCKETS],
        }
    }
}

/// A syscall kind as its name in JSON.
mod kind_name {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
    use tracer_common::SyscallKind;

    pub fn serialize<S: Serializer>(kind: &SyscallKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SyscallKind, D::Error> {
        let name = String::deserialize(d)?;
        SyscallKind::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown syscall {name:?}")))
    }
}
