//! `echo-poll`: one thread, non-blocking sockets, `poll(2)`.
//!
//! poll fixes select's two worst traits — the 1024-descriptor ceiling and
//! the bitmaps that must be rebuilt because the kernel overwrites them —
//! but keeps its cost model: every call copies the whole `pollfd` array in
//! (8 bytes per descriptor) and the `revents` back, the kernel polls every
//! entry, and user space scans every entry for `revents`. The work grows
//! with the number of connections watched, idle or not.
//!
//! The array is kept between calls: entry 0 is the stop self-pipe, entry 1
//! the listener, then one entry per connection, parallel to `conns`. Only
//! `events` is refreshed from each connection's state (write interest only
//! while echo bytes are pending, no read interest while its buffer is full).
//!
//! glibc's `poll()` issues the `poll` syscall on x86_64 (`ppoll` where no
//! `poll` syscall exists, e.g. aarch64).

use std::io;
use std::process::ExitCode;

use clap::Parser;
use demo_servers::conn::{Conn, Readiness};
use demo_servers::net::Listener;
use demo_servers::server::{self, ServerArgs};
use demo_servers::signals::StopPipe;
use demo_servers::stats::Stats;

/// Echo server on poll(2) with read and write interest per connection.
#[derive(Debug, Parser)]
#[command(name = "echo-poll", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

/// Connections accepted per wake-up, so a connection storm cannot starve
/// the clients already being served (the listener stays readable).
const ACCEPT_BATCH: usize = 64;

/// `pollfds` entries before the first connection.
const FIXED: usize = 2;

static STATS: Stats = Stats::new("echo-poll");

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

fn pollfd(fd: i32, events: i16) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn event_loop(listener: &mut Listener, stop: &StopPipe) -> io::Result<()> {
    let mut pollfds = vec![
        pollfd(stop.fd(), libc::POLLIN),
        pollfd(listener.fd(), libc::POLLIN),
    ];
    // conns[i] is watched by pollfds[FIXED + i].
    let mut conns: Vec<Conn> = Vec::new();
    while !stop.requested() {
        for (pfd, conn) in pollfds[FIXED..].iter_mut().zip(&conns) {
            pfd.events = interest(conn);
        }

        // SAFETY: `pollfds` is a live array of exactly that many entries.
        let ret = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, -1) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if pollfds[0].revents != 0 {
            break;
        }

        // The user-space half of poll's cost: look at every entry. Walk
        // backwards so swap_remove only moves entries already visited.
        for i in (FIXED..pollfds.len()).rev() {
            let revents = pollfds[i].revents;
            if revents == 0 {
                continue;
            }
            let ready = Readiness {
                readable: revents & (libc::POLLIN | libc::POLLERR) != 0,
                writable: revents & (libc::POLLOUT | libc::POLLERR) != 0,
                hangup: revents & (libc::POLLHUP | libc::POLLNVAL) != 0,
            };
            if !conns[i - FIXED].on_ready(ready, &STATS) {
                pollfds.swap_remove(i);
                conns.swap_remove(i - FIXED); // closes the socket
            }
        }

        if pollfds[1].revents != 0 {
            for _ in 0..ACCEPT_BATCH {
                match listener.accept() {
                    Ok(Some(fd)) => {
                        STATS.connection();
                        let conn = Conn::new(fd);
                        pollfds.push(pollfd(conn.fd(), interest(&conn)));
                        conns.push(conn);
                    }
                    Ok(None) => break,
                    Err(e) => STATS.conn_error(format_args!("accept"), &e),
                }
            }
        }
    }
    Ok(())
}

/// The events a connection wants reported; POLLERR and POLLHUP come anyway.
fn interest(conn: &Conn) -> i16 {
    let mut events = 0;
    if conn.wants_read() {
        events |= libc::POLLIN;
    }
    if conn.wants_write() {
        events |= libc::POLLOUT;
    }
    events
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
