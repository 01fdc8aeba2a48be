//! `echo-epoll`: one thread, non-blocking sockets, `epoll_wait(2)`.
//!
//! epoll splits select's single call in two: `epoll_ctl` registers interest
//! once and keeps it in the kernel, and `epoll_wait` returns only the ready
//! descriptors. Nothing proportional to the number of watched connections is
//! copied or scanned per call, which is why idle connections cost (almost)
//! nothing here — the claim the demo measures. The price is extra
//! `epoll_ctl` calls whenever interest changes.
//!
//! Two modes:
//!
//! - Level-triggered (default): the same loop as select and poll. Read
//!   interest while the buffer has room, write interest only while echo
//!   bytes are pending, changed with `EPOLL_CTL_MOD` only when the wanted
//!   set actually changes (usually never: the echo goes out right after the
//!   read, see `Conn::on_ready`).
//! - `--edge` (`EPOLLET`): each connection is registered once for
//!   `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET` and never modified. An edge
//!   is reported once, so the connection is read and written until EAGAIN;
//!   the loop remembers "still readable/writable" itself. To keep one
//!   streaming client from starving the others, a connection's turn is cut
//!   after [`EDGE_BUDGET`] bytes, and it is put on a ready list that is
//!   served on the next turn (with a zero timeout, since no edge will come).
//!
//! The listener stays level-triggered in both modes, so a bounded accept
//! batch can never lose a connection. Connections are removed with
//! `EPOLL_CTL_DEL` before `close`: close alone would drop them from the
//! interest set too, but the explicit call keeps muxtrace's interest-set
//! count (tracked from `epoll_ctl`) exact.
//!
//! glibc 2.36's `epoll_wait()` issues the `epoll_wait` syscall on x86_64
//! (`epoll_pwait` where there is none, e.g. aarch64).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;

use clap::Parser;
use demo_servers::conn::{Conn, Io, Readiness};
use demo_servers::net::Listener;
use demo_servers::server::{self, ServerArgs};
use demo_servers::signals::StopPipe;
use demo_servers::stats::Stats;
use demo_servers::sys::cvt;

/// Echo server on epoll(7): level-triggered, or edge-triggered with --edge.
#[derive(Debug, Parser)]
#[command(name = "echo-epoll", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Edge-triggered (EPOLLET): read and write each connection until EAGAIN.
    #[arg(long)]
    edge: bool,
}

/// Connections accepted per wake-up, so a connection storm cannot starve
/// the clients already being served (the listener stays readable).
const ACCEPT_BATCH: usize = 64;

/// Events returned per `epoll_wait` at most.
const MAX_EVENTS: usize = 256;

/// Bytes read from one connection per turn in edge mode before it yields.
const EDGE_BUDGET: usize = 64 * 1024;

/// `epoll_event.u64` tokens of the two fixed descriptors; connections use
/// their descriptor number, which is never this large.
const STOP_TOKEN: u64 = u64::MAX;
const LISTENER_TOKEN: u64 = u64::MAX - 1;

static STATS: Stats = Stats::new("echo-epoll");

fn main() -> ExitCode {
    let args = Args::parse();
    server::exit_status(STATS.name(), run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    let stop = StopPipe::install()?;
    let mut listener = server::start(&args.server, true)?;
    let mut server = Server::new(args.edge)?;
    server.add(stop.fd(), libc::EPOLLIN as u32, STOP_TOKEN)?;
    server.add(listener.fd(), libc::EPOLLIN as u32, LISTENER_TOKEN)?;
    server.event_loop(&mut listener, &stop)?;
    server::report_stop(&STATS)
}

/// A connection and, in edge mode, what the last edges said about it.
struct Slot {
    conn: Conn,
    /// The interest currently registered (level-triggered mode).
    registered: u32,
    /// Edge mode: an EPOLLIN edge came and no EAGAIN since.
    can_read: bool,
    /// Edge mode: an EPOLLOUT edge came (or none yet) and no EAGAIN since.
    can_write: bool,
    /// Edge mode: already on the ready list for another turn.
    queued: bool,
}

struct Server {
    epfd: OwnedFd,
    edge: bool,
    /// Indexed by descriptor, grown as needed.
    slots: Vec<Option<Slot>>,
    /// Edge mode: connections whose turn was cut short by the budget.
    again: Vec<RawFd>,
}

impl Server {
    fn new(edge: bool) -> io::Result<Server> {
        // SAFETY: plain syscall; the result is checked and then owned.
        let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Server {
            // SAFETY: epoll_create1 just returned this descriptor.
            epfd: unsafe { OwnedFd::from_raw_fd(epfd) },
            edge,
            slots: Vec::new(),
            again: Vec::new(),
        })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a live epoll_event (ignored for DEL).
        cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    fn event_loop(&mut self, listener: &mut Listener, stop: &StopPipe) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        while !stop.requested() {
            // Block unless edge-mode connections are still owed a turn.
            let timeout = if self.again.is_empty() { -1 } else { 0 };
            // SAFETY: `events` has room for MAX_EVENTS entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    MAX_EVENTS as libc::c_int,
                    timeout,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }

            // Only the ready descriptors come back: no scan of idle ones.
            let mut accept = false;
            for ev in &events[..n as usize] {
                let (mask, token) = (ev.events, ev.u64);
                match token {
                    STOP_TOKEN => return Ok(()),
                    LISTENER_TOKEN => accept = true,
                    fd => self.on_event(fd as RawFd, mask),
                }
            }
            for fd in std::mem::take(&mut self.again) {
                if let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::as_mut) {
                    slot.queued = false;
                    self.edge_turn(fd);
                }
            }
            // Accept last, so a descriptor closed above and reused here
            // cannot receive the old connection's events.
            if accept {
                self.accept_batch(listener);
            }
        }
        Ok(())
    }

    fn accept_batch(&mut self, listener: &mut Listener) {
        for _ in 0..ACCEPT_BATCH {
            let fd = match listener.accept() {
                Ok(Some(fd)) => fd,
                Ok(None) => return,
                Err(e) => {
                    STATS.conn_error(format_args!("accept"), &e);
                    continue;
                }
            };
            let conn = Conn::new(fd);
            let raw = conn.fd();
            let events = if self.edge {
                (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32
            } else {
                interest(&conn)
            };
            if let Err(e) = self.add(raw, events, raw as u64) {
                STATS.conn_error(format_args!("epoll_ctl ADD fd {raw}"), &e);
                continue; // dropping `conn` closes it
            }
            STATS.connection();
            let index = raw as usize;
            if self.slots.len() <= index {
                self.slots.resize_with(index + 1, || None);
            }
            self.slots[index] = Some(Slot {
                conn,
                registered: events,
                can_read: false,
                can_write: true,
                queued: false,
            });
        }
    }

    fn on_event(&mut self, fd: RawFd, mask: u32) {
        let hangup = mask & libc::EPOLLHUP as u32 != 0;
        let error = mask & libc::EPOLLERR as u32 != 0;
        let readable = mask & (libc::EPOLLIN | libc::EPOLLRDHUP) as u32 != 0 || error;
        let writable = mask & libc::EPOLLOUT as u32 != 0 || error;
        let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::as_mut) else {
            return;
        };
        if self.edge {
            // Remember the edges; the turn reads and writes until EAGAIN.
            slot.can_read |= readable || hangup;
            slot.can_write |= writable || hangup;
            self.edge_turn(fd);
            // As in level-triggered mode: a hung-up connection that did
            // not end in an error or a clean finish is closed anyway.
            if hangup && self.slots.get(fd as usize).is_some_and(Option::is_some) {
                STATS.conn_error(
                    format_args!("connection fd {fd}"),
                    &io::Error::from(io::ErrorKind::ConnectionReset),
                );
                self.close(fd);
            }
            return;
        }
        let ready = Readiness {
            readable,
            writable,
            hangup,
        };
        if !slot.conn.on_ready(ready, &STATS) {
            return self.close(fd);
        }
        let wanted = interest(&slot.conn);
        if wanted != slot.registered {
            slot.registered = wanted;
            if let Err(e) = self.ctl(libc::EPOLL_CTL_MOD, fd, wanted, fd as u64) {
                STATS.conn_error(format_args!("epoll_ctl MOD fd {fd}"), &e);
                self.close(fd);
            }
        }
    }

    /// Edge mode: read and write until EAGAIN (or the budget), looping while
    /// either direction makes progress — a write that frees buffer space lets
    /// reading resume, and no new EPOLLIN edge would announce that.
    fn edge_turn(&mut self, fd: RawFd) {
        let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::as_mut) else {
            return;
        };
        let mut budget = EDGE_BUDGET;
        let result = loop {
            let mut progress = false;
            if slot.can_read && slot.conn.wants_read() {
                if budget == 0 {
                    if !slot.queued {
                        slot.queued = true;
                        self.again.push(fd);
                    }
                    break Ok(());
                }
                match slot.conn.read_once() {
                    Ok(Io::Moved(n)) => {
                        budget = budget.saturating_sub(n);
                        progress = true;
                    }
                    Ok(Io::Eof) => progress = true,
                    Ok(Io::WouldBlock) => slot.can_read = false,
                    Err(e) => break Err(e),
                }
            }
            if slot.can_write && slot.conn.wants_write() {
                match slot.conn.write_once(&STATS) {
                    Ok(Io::Moved(_)) => progress = true,
                    Ok(_) => slot.can_write = false,
                    Err(e) => break Err(e),
                }
            }
            if slot.conn.is_finished() || !progress {
                break Ok(());
            }
        };
        match result {
            Err(e) => {
                STATS.conn_error(format_args!("connection fd {fd}"), &e);
                self.close(fd);
            }
            Ok(()) if slot.conn.is_finished() => self.close(fd),
            Ok(()) => {}
        }
    }

    /// Deregisters and closes one connection.
    fn close(&mut self, fd: RawFd) {
        if let Some(slot) = self.slots.get_mut(fd as usize).and_then(Option::take) {
            // Cannot fail for a registered descriptor; close follows anyway.
            let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
            drop(slot);
        }
    }
}

/// Level-triggered interest from the connection's state.
fn interest(conn: &Conn) -> u32 {
    let mut events = 0;
    if conn.wants_read() {
        events |= libc::EPOLLIN;
    }
    if conn.wants_write() {
        events |= libc::EPOLLOUT;
    }
    events as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
