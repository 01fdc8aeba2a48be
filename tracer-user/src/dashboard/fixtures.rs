//! Realistic metrics for the dashboard's tests, built the way the session
//! builds them: two snapshots through the model.

use std::time::Duration;

use tracer_common::{
    bucket, counter::Stall, pow2_bucket, uring, SyscallKind, SyscallStats, ThreadState, UringStats,
};

use tracer_model::{Metrics, ProbeCost, ProcessInfo, ProcessSnap, Snapshot, ThreadSnap};

/// Per-second behaviour of one syscall, scaled by elapsed seconds.
#[derive(Clone, Copy)]
struct Rate {
    kind: SyscallKind,
    calls: u64,
    watched: u64,
    ready: u64,
    wall_ns: u64,
    off_share: f64,
    payload: u64,
    /// A wait's loop stalls once every this many seconds.
    stall_every_s: u64,
    /// Receives per second that found nothing after a wait said ready.
    empty: u64,
}

fn stats(r: Rate, secs: u64) -> SyscallStats {
    let calls = r.calls * secs;
    let mut s = SyscallStats::ZERO;
    s.calls = calls;
    s.timed = calls;
    s.wall_ns = r.wall_ns * calls;
    s.off_cpu_ns = (s.wall_ns as f64 * r.off_share) as u64;
    s.on_cpu_ns = s.wall_ns - s.off_cpu_ns;
    s.hist_wall_ns[bucket(r.wall_ns)] = calls * 9 / 10;
    s.hist_wall_ns[bucket(r.wall_ns * 4)] = calls - calls * 9 / 10;
    // The programs keep each window's extremes; the fixtures use epoch 0.
    s.wall_extremes.extend(0, r.wall_ns);
    s.wall_extremes.extend(0, r.wall_ns * 4);
    let on = r.wall_ns - (r.wall_ns as f64 * r.off_share) as u64;
    s.hist_on_cpu_ns[pow2_bucket(on)] = calls;
    if r.kind.is_wait() {
        s.watched = r.watched * calls;
        s.size_arg = r.watched * calls;
        s.hist_watched[bucket(r.watched)] = calls;
        s.watched_extremes.extend(0, r.watched);
        s.ready = r.ready * secs;
        s.useful_wakeups = calls;
        s.hist_ready[pow2_bucket(r.ready / r.calls.max(1))] = calls;
        s.ready_extremes.extend(0, r.ready / r.calls.max(1));
        s.scanned = if r.kind.is_epoll_wait() {
            s.ready
        } else {
            s.watched
        };
        s.infinite_timeouts = calls;
        s.sched_wakeups = calls / 2;
        // One loop thread: the second between its waits is its work, 90 %
        // of iterations at the mean, the rest 8 times as long.
        let iteration = (1_000_000_000 / r.calls.max(1)).saturating_sub(r.wall_ns);
        s.iterations = calls;
        s.timed_iterations = calls;
        s.iteration_ns = iteration * calls;
        s.hist_iteration_ns[bucket(iteration)] = calls * 9 / 10;
        s.hist_iteration_ns[bucket(iteration * 8)] = calls - calls * 9 / 10;
        s.iteration_extremes.extend(0, iteration);
        s.iteration_extremes.extend(0, iteration * 8);
        // A stall every 20 s; the longest 182 ms, 12 ms of it blocked.
        s.stalls = secs / r.stall_every_s;
        s.stall_ns = s.stalls * 90_000_000;
        s.stall_off_cpu_ns = s.stalls * 6_000_000;
        s.longest_stall.offer(
            0,
            Stall {
                ns: 182_000_000,
                at_ns: STALL_AT_MONOTONIC_NS,
                off_cpu_ns: 12_000_000,
                preempted_ns: 0,
                futex_ns: 0,
                kinds: 1 << SyscallKind::Recvfrom as u32 | 1 << SyscallKind::Sendto as u32,
            },
        );
        // Woken waits: 9 µs in the run queue, 3 µs on the way out.
        s.runq_delays = s.sched_wakeups;
        s.runq_ns = 9_000 * s.runq_delays;
        s.hist_runq_ns[bucket(9_000)] = s.runq_delays * 99 / 100;
        s.hist_runq_ns[bucket(400_000)] = s.runq_delays - s.runq_delays * 99 / 100;
        s.runq_extremes.extend(0, 9_000);
        s.runq_extremes.extend(0, 400_000);
        s.exit_path_ns = 3_000 * s.runq_delays;
        s.hist_exit_path_ns[pow2_bucket(3_000)] = s.runq_delays;
        match r.kind {
            k if k.is_poll() => {
                s.bookkeeping_in = 8 * s.watched;
                s.bookkeeping_out = 2 * s.watched;
            }
            k if k.is_select() => {
                let bytes = 3 * (r.watched + 63) / 64 * 8;
                s.bookkeeping_in = bytes * calls;
                s.bookkeeping_out = bytes * calls;
            }
            // The rings are shared memory: nothing copied.
            k if k.is_io_uring() => {}
            _ => s.bookkeeping_out = 12 * s.ready,
        }
    }
    if r.kind == SyscallKind::EpollCtl {
        s.bookkeeping_in = 12 * calls;
    }
    if r.kind.is_receive() || r.kind.is_send() {
        s.payload_bytes = r.payload * calls;
        s.payload_socket_bytes = s.payload_bytes;
        s.messages = calls;
        s.hist_payload[pow2_bucket(r.payload)] = calls;
    }
    if r.kind.is_receive() && r.empty > 0 {
        s.empty_wakeups = r.empty * secs;
        s.errors += s.empty_wakeups;
        s.errno[tracer_common::ErrnoClass::Eagain as usize] += s.empty_wakeups;
    }
    if r.kind == SyscallKind::Accept4 {
        s.errors = calls / 2;
        s.errno[3] = calls / 2;
    }
    // Since attach, as the reading that ends epoch 0 carries them.
    s.carry(&SyscallStats::ZERO, 0);
    s
}

/// The fixtures' clocks: the longest stall ended at 14:02:03 UTC.
const STALL_AT_MONOTONIC_NS: u64 = 50_000_000_000;
const WALL_MINUS_MONOTONIC_NS: i64 = 1_796_220_123_000_000_000 - STALL_AT_MONOTONIC_NS as i64;

fn rate(kind: SyscallKind, calls: u64, watched: u64, ready: u64, wall_ns: u64) -> Rate {
    Rate {
        kind,
        calls,
        watched,
        ready,
        wall_ns,
        off_share: if kind.is_wait() { 0.8 } else { 0.0 },
        payload: if kind.is_receive() || kind.is_send() {
            64
        } else {
            0
        },
        stall_every_s: 20,
        empty: 0,
    }
}

struct Proc {
    pid: u32,
    comm: &'static str,
    rates: Vec<Rate>,
    threads: u32,
    fds: Vec<(&'static str, u32)>,
    /// io_uring requests per second by opcode.
    uring: Vec<UringRate>,
}

/// Per-second behaviour of one io_uring opcode.
#[derive(Clone, Copy)]
struct UringRate {
    op: u8,
    requests: u64,
    payload: u64,
    latency_ns: u64,
    /// Of every 100 requests: through the internal poll, punted to io-wq.
    polled: u64,
    punted: u64,
}

fn uring_stats(r: UringRate, secs: u64) -> UringStats {
    let n = r.requests * secs;
    let mut s = UringStats::ZERO;
    s.submitted = n;
    s.cqes = n;
    s.completed = n;
    s.timed = n;
    s.polled = n * r.polled / 100;
    s.punted = n * r.punted / 100;
    s.inline = n - s.polled - s.punted;
    s.poll_arms = s.polled;
    s.async_punts = s.punted;
    if r.payload > 0 {
        s.bytes = r.payload * n;
        s.socket_bytes = s.bytes;
        s.messages = n;
        s.socket_messages = n;
    }
    s.latency_ns = r.latency_ns * n;
    s.hist_latency_ns[bucket(r.latency_ns)] = n * 9 / 10;
    s.hist_latency_ns[bucket(r.latency_ns * 6)] = n - n * 9 / 10;
    s.latency_extremes.extend(0, r.latency_ns);
    s.latency_extremes.extend(0, r.latency_ns * 6);
    // Since attach, as the reading that ends epoch 0 carries them.
    s.carry(&UringStats::ZERO, 0);
    s
}

fn snapshot(procs: &[Proc], secs: u64) -> Snapshot {
    let mut snap = Snapshot {
        elapsed: Duration::from_secs(secs),
        cost: Some(ProbeCost {
            run_time_ns: 180 * 1000 * secs,
            run_count: 1000 * secs,
            sampled_ns: secs * 100_000_000,
            recent_run_time_ns: 180 * 1000 * secs.min(10),
            recent_sampled_ns: secs.min(10) * 100_000_000,
            ..ProbeCost::default()
        }),
        monotonic_ns: secs * 1_000_000_000,
        stall_threshold_ns: 50_000_000,
        time_every: 1,
        wall_minus_monotonic_ns: WALL_MINUS_MONOTONIC_NS,
        ..Snapshot::default()
    };
    for p in procs {
        snap.processes.insert(
            p.pid,
            ProcessSnap {
                info: ProcessInfo {
                    fd_classes: p.fds.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                    // An epoll server's one epoll fd, fd 3, holding its sockets.
                    epoll_interest: p
                        .rates
                        .iter()
                        .filter(|r| r.kind == SyscallKind::EpollCtl)
                        .map(|_| (3, 1003))
                        .collect(),
                    ..ProcessSnap::new(p.pid, p.comm.as_bytes(), []).info
                },
                uring: p
                    .uring
                    .iter()
                    .map(|r| (r.op, uring_stats(*r, secs)))
                    .collect(),
                ..ProcessSnap::new(
                    p.pid,
                    p.comm.as_bytes(),
                    p.rates.iter().map(|r| (r.kind, stats(*r, secs))),
                )
            },
        );
        for i in 0..p.threads {
            let mut state = ThreadState::ZERO;
            state.tgid = p.pid;
            state.calls = (1000 + 37 * u64::from(i)) * secs;
            state.wait_calls = state.calls / 3;
            state.wakeups = state.wait_calls / 2;
            state.timed_calls = state.calls;
            state.wall_ns = state.calls * 2000;
            state.thread_off_cpu_ns = state.wall_ns * 7 / 10;
            // A process with a wait family: its threads are event loops,
            // each busy 35 % of the time, 2 stalls a minute.
            if p.rates.iter().any(|r| r.kind.is_wait()) {
                state.wait_timed_calls = state.wait_calls;
                state.wait_off_cpu_ns = secs * 600_000_000;
                state.wait_on_cpu_ns = secs * 50_000_000;
                state.iterations = state.wait_calls;
                state.stalls = secs / 30;
                // Each loop watches its own set: 100 fds, 10 more a thread.
                state.watched_waits = state.wait_calls;
                state.watched_total = state.wait_calls * (100 + 10 * u64::from(i));
                state.ready_total = state.wakeups * 2;
            } else {
                state.wait_calls = 0;
                state.wakeups = 0;
            }
            snap.threads.push(ThreadSnap {
                tid: p.pid + i,
                name: p.comm.as_bytes().to_vec(),
                state,
            });
        }
    }
    snap
}

fn metrics(procs: &[Proc]) -> Metrics {
    let before = snapshot(procs, 61);
    let now = snapshot(procs, 62);
    tracer_model::compute(Some(&before), &now)
}

fn poll_server() -> Proc {
    Proc {
        pid: 4242,
        comm: "echo-poll",
        rates: vec![
            rate(SyscallKind::Poll, 8000, 1003, 9600, 41_000),
            rate(SyscallKind::Recvfrom, 9600, 0, 0, 1_900),
            rate(SyscallKind::Sendto, 9600, 0, 0, 3_100),
            rate(SyscallKind::Accept4, 2, 0, 0, 2_000),
        ],
        threads: 1,
        fds: vec![("socket", 1004), ("device", 3)],
        uring: vec![],
    }
}

pub fn one_poll_server() -> Metrics {
    metrics(&[poll_server()])
}

fn four() -> Vec<Proc> {
    vec![
        Proc {
            pid: 4100,
            comm: "echo-blocking",
            rates: vec![
                rate(SyscallKind::Recvfrom, 9000, 0, 0, 9_000),
                rate(SyscallKind::Sendto, 9000, 0, 0, 3_000),
                rate(SyscallKind::Accept4, 1, 0, 0, 2_000),
            ],
            threads: 9,
            fds: vec![("socket", 1009)],
            uring: vec![],
        },
        Proc {
            pid: 4200,
            comm: "echo-select",
            rates: vec![
                rate(SyscallKind::Pselect6, 7000, 1003, 9000, 45_000),
                rate(SyscallKind::Recvfrom, 9000, 0, 0, 1_900),
                rate(SyscallKind::Sendto, 9000, 0, 0, 3_000),
            ],
            threads: 1,
            fds: vec![("socket", 1004)],
            uring: vec![],
        },
        poll_server(),
        Proc {
            pid: 4300,
            comm: "echo-epoll",
            rates: vec![
                rate(SyscallKind::EpollWait, 6000, 1003, 9000, 21_000),
                rate(SyscallKind::EpollCtl, 1, 0, 0, 900),
                rate(SyscallKind::Recvfrom, 9000, 0, 0, 1_900),
                rate(SyscallKind::Sendto, 9000, 0, 0, 3_000),
            ],
            threads: 1,
            fds: vec![("socket", 1004), ("epoll", 1)],
            uring: vec![],
        },
    ]
}

/// An io_uring echo server: one io_uring_enter per iteration submits the
/// sends and receives and waits; a few receives go through the internal
/// poll, a few requests to io-wq.
fn uring_server() -> Proc {
    let wait = Rate {
        ready: 18_000,
        ..rate(SyscallKind::IoUringWait, 1900, 0, 0, 30_000)
    };
    let op = |op, requests, payload, latency_ns, polled, punted| UringRate {
        op,
        requests,
        payload,
        latency_ns,
        polled,
        punted,
    };
    Proc {
        pid: 4400,
        comm: "echo-uring",
        rates: vec![wait, rate(SyscallKind::IoUringEnter, 100, 0, 0, 4_000)],
        threads: 1,
        fds: vec![("socket", 1004), ("anon_inode", 1)],
        uring: vec![
            op(uring::op::RECV, 9000, 64, 35_000, 10, 0),
            op(uring::op::SEND, 9000, 64, 6_000, 0, 3),
            op(uring::op::ACCEPT, 1, 0, 80_000, 100, 0),
        ],
    }
}

pub fn one_uring_server() -> Metrics {
    metrics(&[uring_server()])
}

/// The four and the io_uring server.
pub fn five_servers() -> Metrics {
    let mut procs = four();
    procs.push(uring_server());
    metrics(&procs)
}

/// blocking, select, poll and epoll echo servers under the same load.
pub fn four_servers() -> Metrics {
    metrics(&four())
}

/// Twice the four: more columns than 80 wide holds.
pub fn eight_servers() -> Metrics {
    let mut procs = four();
    let names = [
        "echo-blocking-5",
        "echo-select-6",
        "echo-poll-7",
        "echo-epoll-8",
    ];
    for (i, mut p) in four().into_iter().enumerate() {
        p.pid = 4304 + i as u32;
        p.comm = names[i];
        procs.push(p);
    }
    metrics(&procs)
}

/// A process with every syscall (io_uring's aside: its own fixture shows
/// them) and 64 threads: more than any screen holds.
pub fn overflowing() -> Metrics {
    let rates = SyscallKind::ALL
        .iter()
        .filter(|k| !k.is_io_uring())
        .enumerate()
        .map(|(i, k)| rate(*k, 100 * (i as u64 + 1), 64, 50, 1000 + 500 * i as u64))
        .collect();
    metrics(&[Proc {
        pid: 5000,
        comm: "a-very-busy-app",
        rates,
        threads: 64,
        fds: vec![
            ("socket", 500),
            ("pipe", 12),
            ("file", 40),
            ("eventfd", 64),
            ("epoll", 64),
        ],
        uring: vec![],
    }])
}

/// What `--all` shows on a busy machine: the four echo servers and the
/// io_uring one, plus a saturated epoll server with empty wakeups, one whose
/// loop stalls every second, a controller that makes a few calls and no
/// waits, one that made no call in the interval, one that set a title, one
/// that has exited and the folded totals of three exited workers.
pub fn top_fleet() -> Metrics {
    let mut procs = four();
    procs.push(uring_server());
    let epoll = |pid, comm, calls, ready, wall_ns| Proc {
        pid,
        comm,
        rates: vec![
            rate(SyscallKind::EpollWait, calls, 40, ready, wall_ns),
            rate(SyscallKind::EpollCtl, 2, 0, 0, 900),
            rate(SyscallKind::Read, ready, 0, 0, 2_500),
            rate(SyscallKind::Write, ready, 0, 0, 4_000),
        ],
        threads: 1,
        fds: vec![("socket", 40), ("epoll", 1)],
        uring: vec![],
    };
    let mut redis = epoll(5100, "redis-server", 3000, 5200, 4_000);
    redis.rates[2].empty = 450;
    let mut node = epoll(5200, "node", 900, 1000, 9_000);
    node.rates[0].stall_every_s = 1;
    procs.extend([
        redis,
        node,
        Proc {
            pid: 812,
            comm: "sshd",
            rates: vec![rate(SyscallKind::Read, 3, 0, 0, 5_000)],
            threads: 1,
            fds: vec![("socket", 2)],
            uring: vec![],
        },
        epoll(5300, "chronyd", 1, 1, 50_000),
        epoll(5400, "nginx", 1200, 1300, 5_000),
        Proc {
            pid: 4250,
            ..poll_server()
        },
        Proc {
            pid: FOLDED,
            comm: "worker",
            ..poll_server()
        },
    ]);
    let edit = |snap: &mut Snapshot, now: bool| {
        for t in snap.threads.iter_mut().filter(|t| t.state.tgid == 5100) {
            // Busy 95 % of the time: 50 ms of each second in waits.
            t.state.wait_off_cpu_ns = snap.monotonic_ns / 20;
            t.state.wait_on_cpu_ns = 0;
        }
        if let Some(p) = snap.processes.get_mut(&4250) {
            p.info.alive = !now;
        }
        if let Some(p) = snap.processes.get_mut(&5400) {
            p.info.title = Some("nginx: worker process".to_owned());
        }
        if let Some(p) = snap.processes.get_mut(&FOLDED) {
            p.info.alive = false;
            p.info.folded = 3;
        }
        snap.threads
            .retain(|t| ![4250, FOLDED].contains(&t.state.tgid));
    };
    let mut before = snapshot(&procs, 61);
    let mut now = snapshot(&procs, 62);
    edit(&mut before, false);
    edit(&mut now, true);
    // chronyd made its calls before this interval.
    let quiet = before.processes[&5300].syscalls.clone();
    now.processes.get_mut(&5300).unwrap().syscalls = quiet;
    tracer_model::compute(Some(&before), &now)
}

/// tmux's server: poll over three fds, one ready per call. Mostly not
/// ready, but too few to be worth the word "scanning".
pub fn small_poll_set() -> Metrics {
    let tmux = Proc {
        pid: 700,
        comm: "tmux: server",
        rates: vec![
            rate(SyscallKind::Poll, 40, 3, 40, 900),
            rate(SyscallKind::Read, 40, 0, 0, 1_500),
        ],
        threads: 1,
        fds: vec![("socket", 2), ("device", 1)],
        uring: vec![],
    };
    let procs = [tmux];
    tracer_model::compute(Some(&snapshot(&procs, 61)), &snapshot(&procs, 62))
}

/// The key of folded totals, as the collector makes them: above every pid.
const FOLDED: u32 = 1 << 30;

/// Forty poll and epoll servers: more rows than any screen holds.
pub fn top_crowd() -> Metrics {
    let procs: Vec<Proc> = (0..40u32)
        .map(|i| {
            let server = if i % 2 == 0 {
                poll_server()
            } else {
                four().pop().unwrap()
            };
            let comm: &'static str = Box::leak(format!("worker-{i:02}").into_boxed_str());
            Proc {
                pid: 7000 + i,
                comm,
                rates: server
                    .rates
                    .iter()
                    .map(|r| Rate {
                        calls: r.calls * u64::from(i + 1) / 40,
                        ready: r.ready * u64::from(i + 1) / 40,
                        ..*r
                    })
                    .collect(),
                ..server
            }
        })
        .collect();
    metrics(&procs)
}

pub fn empty() -> Option<Metrics> {
    None
}
