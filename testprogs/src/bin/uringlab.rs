//! Does exactly known io_uring work, so kernel tests can check muxtrace's
//! io_uring figures — enters, SQEs per enter, CQEs per wait, ops by opcode,
//! bytes, errors, completion path — against what the program did and what
//! the kernel told it.
//!
//! Setup first (the ring, sockets, files); then `ready PID` on stdout and a
//! block in `sigwaitinfo` (not a traced call) until SIGUSR1; then the
//! scenario, whose only syscalls are the `io_uring_enter`s listed (and the
//! `sendto`s of recvpoll); then, on stderr, what happened as the kernel
//! reported it; then `_exit`. Every enter is one raw `io_uring_enter(2)`.
//!
//!   uringlab nops N B       N IORING_OP_NOP in batches of B: per batch one
//!                           enter that submits B and waits for B (the last
//!                           batch may be smaller)
//!   uringlab recvs M K      a socketpair whose peer sent M × K bytes during
//!                           setup; M IORING_OP_RECV of K bytes, one enter
//!                           per recv (submit 1, wait 1): data is already
//!                           there, so each completes inline
//!   uringlab recvpoll M K   M rounds on an empty socketpair: an enter that
//!                           submits one recv of K bytes and does not wait
//!                           (nothing to read: the kernel arms a poll), a
//!                           `sendto` of K bytes from the peer, an enter
//!                           that only waits for the CQE (submit 0, wait 1)
//!   uringlab fail           two requests, one enter each (submit 1, wait 1):
//!                           IORING_OP_READ on a closed fd (EBADF), then
//!                           IORING_OP_RECV on a pipe (ENOTSOCK)
//!   uringlab async N        N IORING_OP_READ of 4 KiB from a regular file,
//!                           each with IOSQE_ASYNC (punted to io-wq
//!                           workers), in one enter that submits N and
//!                           waits for N
//!   uringlab sqpoll N       IORING_SETUP_SQPOLL (idle 2 s): N NOPs queued
//!                           with no syscall, then one enter with
//!                           IORING_ENTER_SQ_WAKEUP and nothing to submit,
//!                           so an SQ thread that went idle wakes; the SQ
//!                           thread takes them, and their CQEs are reaped by
//!                           polling the CQ ring (no GETEVENTS wait)
//!
//! The report, one line per enter and per CQE, then totals:
//!
//!   enter submit=S wait=W flags=F ret=R        (or `errno=NAME` instead of ret)
//!   cqe op=NAME res=R bytes=B                  (or `errno=NAME` for res < 0)
//!   total enters=E sqes=S cqes=C bytes=B errors=N
//!
//! `sqes` is what the kernel took: the sum of the enters' returns, or for
//! sqpoll the SQ head's advance. `bytes` sums the results of reads and
//! receives. `--linger MS` (last) keeps the process alive that long after the
//! report, in nanosleep (not a traced call), so a tracer sees it alive.
//!
//! Exit status: 0 when the kernel did what the scenario asked, 1 when it did
//! not (io_uring unavailable, an unexpected result: said on stderr), 2 for
//! bad usage.

use std::{
    io::Write as _,
    os::fd::AsRawFd,
    ptr::null_mut,
    time::{Duration, Instant},
};

use io_uring::{opcode, squeue, types::Fd, IoUring};

/// Largest batch: the SQ is sized to hold it.
const MAX_BATCH: usize = 4096;

/// How long the sqpoll scenario polls the CQ ring before giving up.
const POLL_LIMIT: Duration = Duration::from_secs(10);

/// `user_data` of each request: what it is, for the report.
const NOP: u64 = 1;
const RECV: u64 = 2;
const READ: u64 = 3;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let linger_ms = testprogs::take_linger(&mut args).unwrap_or_else(|| usage());
    let num = |i: usize| -> usize {
        args.get(i)
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| usage())
    };
    let scenario = args.first().map(String::as_str).unwrap_or_else(|| usage());
    let expected_args = match scenario {
        "nops" | "recvs" | "recvpoll" => 3,
        "async" | "sqpoll" => 2,
        "fail" => 1,
        _ => usage(),
    };
    if args.len() != expected_args {
        usage();
    }
    let mut lab = match scenario {
        "nops" => {
            let (n, b) = (num(1), num(2));
            if b > MAX_BATCH {
                usage();
            }
            Lab::new(scenario, ring(b.min(n), None), Setup::None)
        }
        "recvs" => {
            let (m, k) = (num(1), num(2));
            Lab::new(scenario, ring(1, None), Setup::Socket(sent_pair(m, k)))
        }
        "recvpoll" => Lab::new(scenario, ring(1, None), Setup::Socket(socketpair())),
        "fail" => Lab::new(scenario, ring(1, None), Setup::Fail(fail_fds())),
        "async" => {
            let n = num(1);
            if n > MAX_BATCH {
                usage();
            }
            Lab::new(scenario, ring(n, None), Setup::File(regular_file()))
        }
        "sqpoll" => {
            let n = num(1);
            if n > MAX_BATCH {
                usage();
            }
            Lab::new(scenario, ring(n, Some(2000)), Setup::None)
        }
        _ => usage(),
    };
    // Buffers are allocated before the go, so the scenario makes no mmap/brk.
    lab.buf = vec![
        0u8;
        4096.max(if scenario.starts_with("recv") {
            num(2)
        } else {
            0
        })
    ];
    let mut file_bufs = vec![vec![0u8; 4096]; if scenario == "async" { num(1) } else { 0 }];
    // At most an enter and a CQE per request, and one more enter per round.
    let requests = if scenario == "fail" { 2 } else { num(1) };
    lab.events.reserve(3 * requests + 16);

    testprogs::wait_for_go();
    let ok = match scenario {
        "nops" => lab.nops(num(1), num(2)),
        "recvs" => lab.recvs(num(1), num(2)),
        "recvpoll" => lab.recvpoll(num(1), num(2)),
        "fail" => lab.fail(),
        "async" => lab.asynchronous(&mut file_bufs),
        "sqpoll" => lab.sqpoll(num(1)),
        _ => usage(),
    };
    lab.report();
    if !ok {
        eprintln!("uringlab: the kernel did not do what {scenario} asked; see above");
    }
    let ts = libc::timespec {
        tv_sec: (linger_ms / 1000) as i64,
        tv_nsec: ((linger_ms % 1000) * 1_000_000) as i64,
    };
    // SAFETY: a valid timespec; then the process ends without destructors.
    unsafe {
        libc::nanosleep(&ts, null_mut());
        libc::_exit(if ok { 0 } else { 1 });
    }
}

fn usage() -> ! {
    eprintln!("usage: see the doc comment of testprogs/src/bin/uringlab.rs");
    std::process::exit(2);
}

/// Says why and exits 1: the setup the scenario needs is not possible here.
fn fatal(what: &str, err: std::io::Error) -> ! {
    eprintln!("uringlab: {what}: {err}");
    std::process::exit(1);
}

/// A ring whose SQ holds `entries` (SQPOLL with that idle time when given).
fn ring(entries: usize, sqpoll_idle_ms: Option<u32>) -> IoUring {
    let mut builder = IoUring::builder();
    if let Some(idle) = sqpoll_idle_ms {
        builder.setup_sqpoll(idle);
    }
    builder
        .build(entries.next_power_of_two() as u32)
        .unwrap_or_else(|e| {
            fatal(
                "io_uring_setup failed (io_uring disabled, forbidden or too old here)",
                e,
            )
        })
}

/// What the scenario works on, made before the go.
enum Setup {
    None,
    /// (our end, the peer's end)
    Socket((i32, i32)),
    /// (a closed fd number, a pipe's read end)
    Fail((i32, i32)),
    File(std::fs::File),
}

/// One thing that happened, recorded during the scenario and printed after.
enum Event {
    Enter {
        submit: u32,
        wait: u32,
        flags: u32,
        ret: Result<usize, i32>,
    },
    Cqe {
        user_data: u64,
        res: i32,
    },
}

struct Lab {
    scenario: String,
    ring: IoUring,
    setup: Setup,
    buf: Vec<u8>,
    events: Vec<Event>,
    /// SQEs the SQ thread took (sqpoll only).
    sq_thread_took: usize,
}

impl Lab {
    fn new(scenario: &str, ring: IoUring, setup: Setup) -> Lab {
        Lab {
            scenario: scenario.to_owned(),
            ring,
            setup,
            buf: Vec::new(),
            events: Vec::new(),
            sq_thread_took: 0,
        }
    }

    /// Queues `entry` in the SQ (no syscall).
    fn push(&mut self, entry: &squeue::Entry) {
        // SAFETY: every buffer an entry points to is owned by `self` or the
        // caller and outlives the scenario, which reaps every CQE.
        let pushed = unsafe { self.ring.submission().push(entry) };
        assert!(pushed.is_ok(), "the SQ was sized for the scenario");
    }

    /// One raw `io_uring_enter(ring, submit, wait, flags)`; reaps what the
    /// CQ holds afterwards (no syscall). Returns what the kernel returned.
    fn enter(&mut self, submit: u32, wait: u32, flags: u32) -> Result<usize, i32> {
        // SAFETY: no extended argument; the ring is ours.
        let ret = unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(submit, wait, flags, None)
        }
        .map_err(|e| e.raw_os_error().unwrap_or(0));
        self.events.push(Event::Enter {
            submit,
            wait,
            flags,
            ret,
        });
        self.reap();
        ret
    }

    /// Moves every CQE in the ring into the record (reserved before the
    /// go: no allocation, so no brk or mmap); how many there were.
    fn reap(&mut self) -> usize {
        let before = self.events.len();
        for c in self.ring.completion() {
            self.events.push(Event::Cqe {
                user_data: c.user_data(),
                res: c.result(),
            });
        }
        self.events.len() - before
    }

    fn cqes(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Cqe { .. }))
            .count()
    }

    fn nops(&mut self, n: usize, batch: usize) -> bool {
        let mut left = n;
        let mut ok = true;
        while left > 0 {
            let b = left.min(batch);
            for _ in 0..b {
                self.push(&opcode::Nop::new().build().user_data(NOP));
            }
            ok &= self.enter(b as u32, b as u32, GETEVENTS) == Ok(b);
            left -= b;
        }
        ok && self.cqes() == n
    }

    fn recvs(&mut self, m: usize, k: usize) -> bool {
        let Setup::Socket((fd, _)) = self.setup else {
            unreachable!("recvs sets up a socket")
        };
        let mut ok = true;
        for _ in 0..m {
            let entry = opcode::Recv::new(Fd(fd), self.buf.as_mut_ptr(), k as u32)
                .build()
                .user_data(RECV);
            self.push(&entry);
            ok &= self.enter(1, 1, GETEVENTS) == Ok(1);
        }
        ok && self.cqes() == m
    }

    fn recvpoll(&mut self, m: usize, k: usize) -> bool {
        let Setup::Socket((fd, peer)) = self.setup else {
            unreachable!("recvpoll sets up a socket")
        };
        let mut ok = true;
        for _ in 0..m {
            let entry = opcode::Recv::new(Fd(fd), self.buf.as_mut_ptr(), k as u32)
                .build()
                .user_data(RECV);
            self.push(&entry);
            ok &= self.enter(1, 0, 0) == Ok(1);
            // SAFETY: sending `k` bytes of our own buffer's first bytes is
            // fine: the recv writes the same buffer, but only after the data
            // arrives, which is after this copy.
            let sent = unsafe {
                libc::syscall(
                    libc::SYS_sendto,
                    peer,
                    self.buf.as_ptr(),
                    k,
                    libc::MSG_NOSIGNAL,
                    0,
                    0usize,
                )
            };
            ok &= sent == k as i64;
            // The CQE may already be there (task work ran on the way out of
            // sendto); this enter waits only if it is not.
            ok &= self.enter(0, 1, GETEVENTS) == Ok(0);
        }
        ok && self.cqes() == m
    }

    fn fail(&mut self) -> bool {
        let Setup::Fail((closed, pipe)) = self.setup else {
            unreachable!("fail sets up its fds")
        };
        let read = opcode::Read::new(Fd(closed), self.buf.as_mut_ptr(), 16)
            .build()
            .user_data(READ);
        self.push(&read);
        let first = self.enter(1, 1, GETEVENTS);
        let recv = opcode::Recv::new(Fd(pipe), self.buf.as_mut_ptr(), 16)
            .build()
            .user_data(RECV);
        self.push(&recv);
        let second = self.enter(1, 1, GETEVENTS);
        let results: Vec<i32> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Cqe { res, .. } => Some(*res),
                _ => None,
            })
            .collect();
        first == Ok(1) && second == Ok(1) && results == [-libc::EBADF, -libc::ENOTSOCK]
    }

    fn asynchronous(&mut self, bufs: &mut [Vec<u8>]) -> bool {
        let Setup::File(ref file) = self.setup else {
            unreachable!("async opens a file")
        };
        let fd = file.as_raw_fd();
        let n = bufs.len();
        for (i, buf) in bufs.iter_mut().enumerate() {
            let entry = opcode::Read::new(Fd(fd), buf.as_mut_ptr(), buf.len() as u32)
                .offset((i * 4096) as u64)
                .build()
                .flags(squeue::Flags::ASYNC)
                .user_data(READ);
            self.push(&entry);
        }
        let ok = self.enter(n as u32, n as u32, GETEVENTS) == Ok(n);
        // Every read covers a full 4 KiB of the file.
        let full = self
            .events
            .iter()
            .all(|e| !matches!(e, Event::Cqe { res, .. } if *res != 4096));
        ok && full && self.cqes() == n
    }

    fn sqpoll(&mut self, n: usize) -> bool {
        for _ in 0..n {
            self.push(&opcode::Nop::new().build().user_data(NOP));
        }
        // The wake-up comes after the NOPs, as the SQPOLL protocol has it: a
        // wake-up does not restart the SQ thread's idle clock, so one made
        // before them could be followed by the thread going to sleep with
        // the NOPs not yet queued, and nobody to wake it.
        let started = Instant::now();
        let woke = self.enter(0, 0, SQ_WAKEUP);
        let mut reaped = self.cqes();
        // The SQ thread posts a NOP's CQE before it moves the SQ head past
        // the batch: wait for both, or the head's advance reads short.
        while (reaped < n || !self.ring.submission().is_empty()) && started.elapsed() < POLL_LIMIT {
            reaped += self.reap();
            std::hint::spin_loop();
        }
        self.sq_thread_took = n - self.ring.submission().len();
        woke == Ok(0) && reaped == n && self.sq_thread_took == n
    }

    fn report(&self) {
        let mut out = String::new();
        let (mut enters, mut sqes, mut cqes, mut bytes, mut errors) = (0, 0, 0, 0i64, 0);
        let p = self.ring.params();
        out.push_str(&format!(
            "ring scenario={} sq_entries={} cq_entries={} sqpoll={}\n",
            self.scenario,
            p.sq_entries(),
            p.cq_entries(),
            u8::from(p.is_setup_sqpoll())
        ));
        for e in &self.events {
            match *e {
                Event::Enter {
                    submit,
                    wait,
                    flags,
                    ret,
                } => {
                    enters += 1;
                    let ret = match ret {
                        Ok(n) => {
                            sqes += n;
                            format!("ret={n}")
                        }
                        Err(errno) => format!("errno={}", errno_name(errno)),
                    };
                    out.push_str(&format!(
                        "enter submit={submit} wait={wait} flags={} {ret}\n",
                        flag_names(flags)
                    ));
                }
                Event::Cqe { user_data, res } => {
                    cqes += 1;
                    let op = match user_data {
                        NOP => "nop",
                        RECV => "recv",
                        READ => "read",
                        _ => "?",
                    };
                    if res < 0 {
                        errors += 1;
                        out.push_str(&format!(
                            "cqe op={op} res={res} errno={}\n",
                            errno_name(-res)
                        ));
                    } else {
                        let moved = if user_data == NOP { 0 } else { res };
                        bytes += i64::from(moved);
                        out.push_str(&format!("cqe op={op} res={res} bytes={moved}\n"));
                    }
                }
            }
        }
        sqes += self.sq_thread_took;
        out.push_str(&format!(
            "total enters={enters} sqes={sqes} cqes={cqes} bytes={bytes} errors={errors}\n"
        ));
        let _ = std::io::stderr().write_all(out.as_bytes());
    }
}

/// `io_uring_enter` flags, as in <linux/io_uring.h>.
const GETEVENTS: u32 = 1 << 0;
const SQ_WAKEUP: u32 = 1 << 1;

fn flag_names(flags: u32) -> String {
    let mut names = Vec::new();
    if flags & GETEVENTS != 0 {
        names.push("GETEVENTS");
    }
    if flags & SQ_WAKEUP != 0 {
        names.push("SQ_WAKEUP");
    }
    if names.is_empty() {
        "0".to_owned()
    } else {
        names.join("|")
    }
}

fn errno_name(errno: i32) -> String {
    match errno {
        libc::EBADF => "EBADF".to_owned(),
        libc::ENOTSOCK => "ENOTSOCK".to_owned(),
        libc::EINTR => "EINTR".to_owned(),
        libc::EAGAIN => "EAGAIN".to_owned(),
        libc::ECANCELED => "ECANCELED".to_owned(),
        libc::EINVAL => "EINVAL".to_owned(),
        libc::EBUSY => "EBUSY".to_owned(),
        n => n.to_string(),
    }
}

fn socketpair() -> (i32, i32) {
    let mut pair = [0i32; 2];
    // SAFETY: valid two-element array.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    if rc != 0 {
        fatal("socketpair", std::io::Error::last_os_error());
    }
    (pair[0], pair[1])
}

/// A socketpair whose peer has sent `m` × `k` bytes already.
fn sent_pair(m: usize, k: usize) -> (i32, i32) {
    let (fd, peer) = socketpair();
    // Room for all of it, with the per-send overhead a unix socket counts
    // against the sender; SO_SNDBUFFORCE (root) goes past wmem_max.
    let room = (m * (k + 1024) * 2).min(i32::MAX as usize) as i32;
    // SAFETY: an int option and its size.
    unsafe {
        let len = std::mem::size_of::<i32>() as libc::socklen_t;
        let val = (&room as *const i32).cast();
        if libc::setsockopt(peer, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, val, len) != 0 {
            libc::setsockopt(peer, libc::SOL_SOCKET, libc::SO_SNDBUF, val, len);
        }
    }
    let data = vec![0x5au8; k];
    for i in 0..m {
        // SAFETY: `data` is `k` readable bytes.
        let sent = unsafe {
            libc::send(
                peer,
                data.as_ptr().cast(),
                k,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if sent != k as isize {
            eprintln!(
                "uringlab: send {} of {m} ({k} bytes) did not fit in the socket buffer; ask for less",
                i + 1
            );
            std::process::exit(1);
        }
    }
    (fd, peer)
}

/// A descriptor number that is surely closed, and a pipe's read end.
fn fail_fds() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: a valid two-element array; closing a descriptor we made.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            fatal("pipe2", std::io::Error::last_os_error());
        }
        let closed = libc::dup(fds[1]);
        libc::close(closed);
        (closed, fds[0])
    }
}

/// A regular file of at least MAX_BATCH × 4 KiB, already in the page cache:
/// this program's own executable, or a temporary file where that is smaller.
fn regular_file() -> std::fs::File {
    let need = (MAX_BATCH * 4096) as u64;
    if let Ok(f) = std::fs::File::open("/proc/self/exe") {
        if f.metadata().map(|m| m.len() >= need).unwrap_or(false) {
            return f;
        }
    }
    let path = std::env::temp_dir().join(format!("uringlab-{}", std::process::id()));
    let result = std::fs::write(&path, vec![0x5au8; need as usize])
        .and_then(|()| std::fs::File::open(&path));
    let _ = std::fs::remove_file(&path);
    result.unwrap_or_else(|e| fatal("cannot make a file to read", e))
}
