//! `echo-select`: one thread, non-blocking sockets, `select(2)`.
//!
//! The oldest readiness interface, shown as the textbook uses it: every turn
//! of the loop rebuilds a read set and a write set (the fd_set bitmaps) from
//! the connections' state, hands both to the kernel — which copies them in,
//! scans every descriptor below `nfds`, and copies them back — and then scans
//! all descriptors again in user space with `FD_ISSET`. The cost grows with
//! the highest descriptor number, not with the number that are ready.
//!
//! Write interest is taken only while echo bytes are pending, and read
//! interest is dropped while a connection's buffer is full (backpressure).
//!
//! An `fd_set` holds exactly `FD_SETSIZE` (1024) bits. A descriptor at or
//! above that cannot be watched — `FD_SET` on it would write past the
//! bitmap, undefined behaviour — so such a connection is refused: one log
//! line saying why, closed, counted as an error.
//!
//! Which syscall: on x86_64 this issues the `select` syscall itself
//! (`syscall(SYS_select, …)`), because glibc's `select()` wrapper is
//! implemented with `pselect6` there; architectures without a `select`
//! syscall (aarch64) use glibc's wrapper, i.e. `pselect6`.

use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::process::ExitCode;

use clap::Parser;
use demo_servers::conn::{Conn, Readiness};
use demo_servers::net::Listener;
use demo_servers::server::{self, ServerArgs};
use demo_servers::signals::StopPipe;
use demo_servers::stats::Stats;

/// Echo server on select(2) with read and write sets; refuses fds >= 1024.
#[derive(Debug, Parser)]
#[command(name = "echo-select", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// Connections accepted per wake-up, so a connection storm cannot starve
/// the clients already being served (the listener stays readable).
const ACCEPT_BATCH: usize = 64;

static STATS: Stats = Stats::new("echo-select");

fn main() -> ExitCode {
    let args = Args::parse();
    server::exit_status(STATS.name(), run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    let stop = StopPipe::install()?;
    let mut listener = server::start(&args.server, true)?;
    event_loop(&mut listener, &stop)?;
    server::report_stop(&STATS)
}

fn event_loop(listener: &mut Listener, stop: &StopPipe) -> io::Result<()> {
    // Indexed by descriptor: select speaks in descriptor numbers anyway.
    let mut conns: Vec<Option<Conn>> = (0..FD_SETSIZE).map(|_| None).collect();
    while !stop.requested() {
        // Rebuild both sets from scratch: select overwrites them with the
        // ready subset, so they must be refilled before every call.
        let mut readers = FdSet::new();
        let mut writers = FdSet::new();
        readers.insert(stop.fd());
        readers.insert(listener.fd());
        let mut nfds = stop.fd().max(listener.fd()) + 1;
        for conn in conns.iter().flatten() {
            if conn.wants_read() {
                readers.insert(conn.fd());
            }
            if conn.wants_write() {
                writers.insert(conn.fd());
            }
            nfds = nfds.max(conn.fd() + 1);
        }

        match select(nfds, &mut readers, &mut writers) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if readers.contains(stop.fd()) {
            break;
        }

        // The user-space half of select's cost: test every descriptor.
        for (fd, slot) in conns.iter_mut().enumerate().take(nfds as usize) {
            let Some(conn) = slot else { continue };
            let ready = Readiness {
                readable: readers.contains(fd as RawFd),
                writable: writers.contains(fd as RawFd),
                hangup: false,
            };
            if (ready.readable || ready.writable) && !conn.on_ready(ready, &STATS) {
                *slot = None; // closes the socket
            }
        }

        // Accept last, so a descriptor closed above and reused here cannot
        // be mistaken for the old connection's readiness.
        if readers.contains(listener.fd()) {
            accept_batch(listener, &mut conns);
        }
    }
    Ok(())
}

fn accept_batch(listener: &mut Listener, conns: &mut [Option<Conn>]) {
    for _ in 0..ACCEPT_BATCH {
        match listener.accept() {
            Ok(Some(fd)) => admit(fd, conns),
            Ok(None) => return,
            Err(e) => STATS.conn_error(format_args!("accept"), &e),
        }
    }
}

/// Keeps a connection only if select can watch its descriptor.
fn admit(fd: OwnedFd, conns: &mut [Option<Conn>]) {
    let conn = Conn::new(fd);
    let raw = conn.fd() as usize;
    if raw >= FD_SETSIZE {
        STATS.refused(format_args!(
            "fd {raw} >= FD_SETSIZE ({FD_SETSIZE}), select(2) cannot watch it"
        ));
        return; // dropping `conn` closes it
    }
    STATS.connection();
    conns[raw] = Some(conn);
}

/// A safe `fd_set`: only descriptors below `FD_SETSIZE` can go in.
struct FdSet(libc::fd_set);

impl FdSet {
    fn new() -> FdSet {
        // SAFETY: FD_ZERO initialises the whole bitmap.
        unsafe {
            let mut set = std::mem::MaybeUninit::<libc::fd_set>::uninit();
            libc::FD_ZERO(set.as_mut_ptr());
            FdSet(set.assume_init())
        }
    }

    fn insert(&mut self, fd: RawFd) {
        // Refusal in `admit` guarantees this; the check keeps it sound even
        // if that ever changed.
        assert!(
            (0..FD_SETSIZE as RawFd).contains(&fd),
            "fd {fd} outside fd_set"
        );
        // SAFETY: fd is within the bitmap, checked above.
        unsafe { libc::FD_SET(fd, &mut self.0) }
    }

    fn contains(&self, fd: RawFd) -> bool {
        // SAFETY: fd is within the bitmap, checked first.
        (0..FD_SETSIZE as RawFd).contains(&fd) && unsafe { libc::FD_ISSET(fd, &self.0) }
    }
}

/// Blocks in select until a watched descriptor is ready (no timeout: the
/// stop signal arrives through the self-pipe, which is in the read set).
fn select(nfds: RawFd, readers: &mut FdSet, writers: &mut FdSet) -> io::Result<usize> {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: both sets are live fd_sets covering nfds <= FD_SETSIZE bits;
    // NULL except-set and NULL timeout are allowed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_select,
            nfds,
            &mut readers.0 as *mut libc::fd_set,
            &mut writers.0 as *mut libc::fd_set,
            std::ptr::null_mut::<libc::fd_set>(),
            std::ptr::null_mut::<libc::timeval>(),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: as above, through glibc's wrapper (pselect6).
    let ret = unsafe {
        libc::select(
            nfds,
            &mut readers.0,
            &mut writers.0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        ) as libc::c_long
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
