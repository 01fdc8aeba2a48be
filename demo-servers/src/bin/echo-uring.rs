//! `echo-uring`: one thread, io_uring — completions instead of readiness.
//!
//! select, poll and epoll tell the server *which* sockets are ready, and the
//! server then makes one syscall per receive and per send. io_uring turns
//! that around: the server queues requests — accept, receive into this
//! buffer, send these bytes, close — as submission queue entries (SQEs) in a
//! ring it shares with the kernel, and collects their results as completion
//! queue entries (CQEs) from a second ring. The payload moves inside the
//! kernel on the server's behalf; no `recvfrom`/`sendto` of its own.
//!
//! The loop makes exactly one `io_uring_enter(2)` per iteration, which
//! submits everything queued since the last one and waits for at least one
//! completion (`submit_and_wait(1)`), then handles every CQE in the ring. So
//! a tracer sees SQEs per enter and CQEs per wait where the other models
//! show ready fds per wait. Only when more SQEs were queued in one iteration
//! than the SQ holds does an enter not wait, so that the rest can follow.
//!
//! Per connection: one receive in flight while the buffer has room and the
//! peer has not closed, and one send in flight while echo bytes are pending;
//! a short send is followed by a send of the rest. The buffer is an
//! [`EchoRing`] of 64 KiB: the kernel holds pointers into it while requests
//! are in flight, so it cannot move, and a full ring takes no receive — the
//! backpressure of the other servers. A connection ends with a close SQE
//! once the peer's EOF and everything before it have been echoed, or after
//! an error (a reset), once its in-flight requests have been cancelled and
//! have completed: until then the kernel may still write into its buffer.
//!
//! One accept SQE is in flight at a time and re-queued at each completion,
//! so a connection storm is taken at one connection per iteration, beside
//! the other clients' completions. A full descriptor table (EMFILE) is met
//! like the others meet it: the listener's spare descriptor sheds one
//! waiting connection.
//!
//! SIGINT/SIGTERM: the stop self-pipe is watched by a poll SQE, so a signal
//! that lands just before the enter still completes something and wakes it;
//! an enter interrupted by the signal returns EINTR, which is a stop check
//! too. Then the `stopped:` line, like every server.
//!
//! `--sqpoll` (IORING_SETUP_SQPOLL): a kernel thread of this process
//! (`iou-sqp-PID`) polls the SQ and submits the entries itself. While it is
//! awake the loop queues SQEs and reaps CQEs with no syscall at all; it
//! enters the kernel only to wait when no completion is ready, or to wake
//! the thread, which sleeps after `--sqpoll-idle` ms without work.
//!
//! Where io_uring cannot be set up (`kernel.io_uring_disabled`, a seccomp
//! filter, a kernel before 5.6) the server says so in one line and exits 1
//! before it listens.

use std::collections::VecDeque;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{IntoRawFd, RawFd};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use demo_servers::net::{self, Listener};
use demo_servers::ring::EchoRing;
use demo_servers::server::{self, ServerArgs};
use demo_servers::signals::StopPipe;
use demo_servers::stats::Stats;
use io_uring::{cqueue, opcode, squeue, types::Fd, IoUring};

/// Echo server on io_uring: one ring, one io_uring_enter per loop iteration.
#[derive(Debug, Parser)]
#[command(name = "echo-uring", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// IORING_SETUP_SQPOLL: a kernel thread submits the SQEs, so the loop
    /// makes no syscall to submit while that thread is awake.
    #[arg(long)]
    sqpoll: bool,
    /// With --sqpoll: milliseconds without work before the SQ thread sleeps
    /// (and the next submission needs a wakeup enter).
    #[arg(long, value_name = "MS", default_value_t = 100, requires = "sqpoll")]
    sqpoll_idle: u32,
}

/// SQ entries. More SQEs queued in one iteration wait for the next.
const SQ_ENTRIES: u32 = 1024;

/// CQ entries: room for the completions of thousands of connections, each
/// with at most a receive and a send in flight. Past that the kernel keeps
/// the overflow (IORING_FEAT_NODROP) until the ring has room again.
const CQ_ENTRIES: u32 = 16 * 1024;

static STATS: Stats = Stats::new("echo-uring");

fn main() -> ExitCode {
    let args = Args::parse();
    server::exit_status(STATS.name(), run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    let stop = StopPipe::install()?;
    let sqpoll = args.sqpoll.then_some(args.sqpoll_idle);
    let ring = Ring::new(sqpoll).context(
        "io_uring is not available (disabled by kernel.io_uring_disabled, \
         forbidden by a seccomp filter, or a kernel before 5.6)",
    )?;
    let listener = server::start(&args.server, true)?;
    // Kept until the process exits, never dropped: the kernel may write
    // into a connection's buffer until the ring is torn down, and at exit
    // the ring goes before the memory does.
    let mut server = ManuallyDrop::new(Server {
        ring,
        listener,
        stop,
        conns: Vec::new(),
        free: Vec::new(),
        cqes: Vec::new(),
    });
    server.event_loop()?;
    server::report_stop(&STATS)
}

/// What a request is for: the top byte of its `user_data`; the rest is the
/// connection's slot (receive, send, cancel) or the descriptor (close).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Accept = 1,
    Stop = 2,
    Recv = 3,
    Send = 4,
    Cancel = 5,
    Close = 6,
}

impl Op {
    fn token(self, index: usize) -> u64 {
        (self as u64) << 56 | index as u64
    }

    fn of(user_data: u64) -> Option<(Op, usize)> {
        let op = match user_data >> 56 {
            1 => Op::Accept,
            2 => Op::Stop,
            3 => Op::Recv,
            4 => Op::Send,
            5 => Op::Cancel,
            6 => Op::Close,
            _ => return None,
        };
        Some((op, (user_data & ((1 << 56) - 1)) as usize))
    }
}

/// The ring and the SQEs that did not fit into it yet.
struct Ring {
    uring: IoUring,
    sqpoll: bool,
    overflow: VecDeque<squeue::Entry>,
}

impl Ring {
    fn new(sqpoll_idle_ms: Option<u32>) -> io::Result<Ring> {
        let mut builder = IoUring::builder();
        builder.setup_cqsize(CQ_ENTRIES);
        if let Some(idle) = sqpoll_idle_ms {
            builder.setup_sqpoll(idle);
        }
        Ok(Ring {
            uring: builder.build(SQ_ENTRIES)?,
            sqpoll: sqpoll_idle_ms.is_some(),
            overflow: VecDeque::new(),
        })
    }

    /// Queues one SQE, behind any that are still waiting for room.
    ///
    /// # Safety
    ///
    /// Every buffer the entry points to must stay valid until its CQE.
    unsafe fn push(&mut self, entry: squeue::Entry) {
        if self.overflow.is_empty() {
            // SAFETY: the caller keeps the entry's buffers alive.
            if unsafe { self.uring.submission().push(&entry) }.is_ok() {
                return;
            }
        }
        self.overflow.push_back(entry);
    }

    /// Moves waiting SQEs into the SQ as far as it has room.
    fn refill(&mut self) {
        let mut sq = self.uring.submission();
        while let Some(entry) = self.overflow.front() {
            // SAFETY: entries in `overflow` were pushed under push's contract.
            if unsafe { sq.push(entry) }.is_err() {
                break;
            }
            self.overflow.pop_front();
        }
    }

    /// The iteration's one `io_uring_enter`: submit and wait for a CQE.
    /// With SQPOLL it is made only when it must be (see the module doc).
    fn enter(&mut self) -> io::Result<()> {
        // SQEs left over: submit without waiting, so they follow at once.
        let want = usize::from(self.overflow.is_empty());
        if self.sqpoll {
            let ready = !self.uring.completion().is_empty();
            if want == 0 && self.uring.submission().is_full() {
                // The SQ thread has not taken the last batch yet.
                return self.uring.submitter().squeue_wait().map(drop);
            }
            if ready || want == 0 {
                // A syscall only if the SQ thread sleeps and needs a wakeup.
                return self.uring.submitter().submit().map(drop);
            }
        }
        self.uring.submitter().submit_and_wait(want).map(drop)
    }
}

/// One client connection.
struct Conn {
    /// Closed by a close SQE, never by `close(2)` from here.
    fd: RawFd,
    buf: EchoRing,
    recv_in_flight: bool,
    send_in_flight: bool,
    /// The peer closed its sending side (a receive returned 0).
    eof: bool,
    /// An error was counted: no new requests; the ones in flight are
    /// cancelled and the connection closes when they have completed.
    failed: bool,
    cancelled: bool,
}

struct Server {
    ring: Ring,
    listener: Listener,
    stop: StopPipe,
    /// Connections by slot; `free` lists the empty slots.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// The CQEs of one iteration, copied out of the ring.
    cqes: Vec<cqueue::Entry>,
}

impl Server {
    fn event_loop(&mut self) -> io::Result<()> {
        self.arm_accept();
        self.arm_stop();
        loop {
            self.ring.refill();
            match self.ring.enter() {
                Ok(()) => {}
                // A signal: the stop check below decides. EBUSY: completions
                // wait in the kernel's overflow list; reaping makes room.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
            if self.stop.requested() {
                return Ok(());
            }
            self.cqes.extend(self.ring.uring.completion());
            let mut cqes = std::mem::take(&mut self.cqes);
            for cqe in cqes.drain(..) {
                if self.complete(&cqe) {
                    return Ok(());
                }
            }
            self.cqes = cqes;
        }
    }

    /// Handles one CQE; true when it says stop.
    fn complete(&mut self, cqe: &cqueue::Entry) -> bool {
        let res = cqe.result();
        let Some((op, index)) = Op::of(cqe.user_data()) else {
            return false;
        };
        match op {
            Op::Accept => self.accepted(res),
            Op::Stop => {
                if self.stop.requested() || res > 0 {
                    return true;
                }
                self.arm_stop();
            }
            Op::Recv => self.received(index, res),
            Op::Send => self.sent(index, res),
            // The cancelled request completes on its own, with -ECANCELED
            // or its real result; the cancel's own result says nothing more.
            Op::Cancel => {}
            Op::Close => {
                if res < 0 {
                    STATS.conn_error(format_args!("close fd {index}"), &errno(res));
                }
            }
        }
        false
    }

    fn arm_accept(&mut self) {
        let entry = opcode::Accept::new(
            Fd(self.listener.fd()),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(Op::Accept.token(0));
        // SAFETY: no buffers: the peer address is not asked for.
        unsafe { self.ring.push(entry) };
    }

    fn arm_stop(&mut self) {
        let entry = opcode::PollAdd::new(Fd(self.stop.fd()), libc::POLLIN as u32)
            .build()
            .user_data(Op::Stop.token(0));
        // SAFETY: a poll has no buffers.
        unsafe { self.ring.push(entry) };
    }

    fn accepted(&mut self, res: i32) {
        if res >= 0 {
            self.serve(res);
        } else if matches!(-res, libc::EMFILE | libc::ENFILE) {
            // The connection still waits in the backlog and the next accept
            // would fail the same way: shed it with the spare descriptor.
            match self.listener.accept() {
                Ok(Some(fd)) => self.serve(fd.into_raw_fd()),
                Ok(None) => {}
                Err(e) => STATS.conn_error(format_args!("accept"), &e),
            }
        } else {
            STATS.conn_error(format_args!("accept"), &errno(res));
        }
        self.arm_accept();
    }

    /// Takes an accepted descriptor into a slot and queues its first receive.
    fn serve(&mut self, fd: RawFd) {
        // Best effort, as in Listener::accept: no Nagle delay on echoes.
        let _ = net::set_nodelay(fd);
        STATS.connection();
        let conn = Conn {
            fd,
            buf: EchoRing::new(),
            recv_in_flight: false,
            send_in_flight: false,
            eof: false,
            failed: false,
            cancelled: false,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.conns[slot] = Some(conn);
                slot
            }
            None => {
                self.conns.push(Some(conn));
                self.conns.len() - 1
            }
        };
        self.pump(slot);
    }

    fn received(&mut self, slot: usize, res: i32) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        conn.recv_in_flight = false;
        if !conn.failed {
            match res {
                0 => conn.eof = true,
                n if n > 0 => conn.buf.filled(n as usize),
                err => fail(conn, err),
            }
        }
        self.pump(slot);
    }

    fn sent(&mut self, slot: usize, res: i32) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        conn.send_in_flight = false;
        if !conn.failed {
            if res >= 0 {
                conn.buf.consumed(res as usize);
                STATS.echoed(res as usize);
            } else {
                fail(conn, res);
            }
        }
        self.pump(slot);
    }

    /// Queues what the connection's state calls for: a send of pending
    /// bytes, a receive into free space, cancels after an error, or the
    /// close once nothing is in flight and nothing is left to do.
    fn pump(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let idle = !conn.recv_in_flight && !conn.send_in_flight;
        if conn.failed {
            if idle {
                self.close(slot);
            } else if !conn.cancelled {
                conn.cancelled = true;
                for (in_flight, op) in [
                    (conn.recv_in_flight, Op::Recv),
                    (conn.send_in_flight, Op::Send),
                ] {
                    if in_flight {
                        let entry = opcode::AsyncCancel::new(op.token(slot))
                            .build()
                            .user_data(Op::Cancel.token(slot));
                        // SAFETY: a cancel has no buffers.
                        unsafe { self.ring.push(entry) };
                    }
                }
            }
            return;
        }
        if conn.eof && idle && conn.buf.is_empty() {
            self.close(slot);
            return;
        }
        if !conn.send_in_flight {
            let (ptr, len) = conn.buf.pending_region();
            if len > 0 {
                conn.send_in_flight = true;
                let entry = opcode::Send::new(Fd(conn.fd), ptr, len as u32)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(Op::Send.token(slot));
                // SAFETY: the region is inside the connection's ring, which
                // is freed only after this send's CQE (close waits for it).
                unsafe { self.ring.push(entry) };
            }
        }
        if !conn.recv_in_flight && !conn.eof {
            let (ptr, len) = conn.buf.free_region();
            if len > 0 {
                conn.recv_in_flight = true;
                let entry = opcode::Recv::new(Fd(conn.fd), ptr, len as u32)
                    .build()
                    .user_data(Op::Recv.token(slot));
                // SAFETY: as for the send.
                unsafe { self.ring.push(entry) };
            }
        }
    }

    /// Frees the slot and queues the close. Nothing is in flight for the
    /// connection, so its buffer can go now; the descriptor number stays
    /// taken until the close has run, so no new connection can be confused
    /// with it.
    fn close(&mut self, slot: usize) {
        if let Some(conn) = self.conns[slot].take() {
            self.free.push(slot);
            let entry = opcode::Close::new(Fd(conn.fd))
                .build()
                .user_data(Op::Close.token(conn.fd as usize));
            // SAFETY: a close has no buffers.
            unsafe { self.ring.push(entry) };
        }
    }
}

/// Counts the connection's error once; `pump` then winds it down.
fn fail(conn: &mut Conn, res: i32) {
    conn.failed = true;
    STATS.conn_error(format_args!("connection fd {}", conn.fd), &errno(res));
}

/// A CQE's negative result as the error it stands for.
fn errno(res: i32) -> io::Error {
    io::Error::from_raw_os_error(-res)
}

#[cfg(test)]
mod tests {
    use super::Op;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }

    #[test]
    fn user_data_round_trips() {
        for op in [
            Op::Accept,
            Op::Stop,
            Op::Recv,
            Op::Send,
            Op::Cancel,
            Op::Close,
        ] {
            for index in [0, 1, 65_535, (1 << 56) - 1] {
                assert_eq!(Op::of(op.token(index)), Some((op, index)));
            }
        }
        assert_eq!(Op::of(0), None);
    }
}
