//! `echo-blocking`: one thread per connection, blocking sockets.
//!
//! The textbook baseline the multiplexed servers are compared with. The main
//! thread sits in a blocking `accept4`; each connection's thread loops on a
//! blocking `recvfrom` and then `sendto`s everything it got. No readiness
//! call at all: the kernel's scheduler does the multiplexing, one sleeping
//! thread per connection, which is why serving a message costs two syscalls
//! here and at least three in the other servers.
//!
//! Backpressure comes for free: a client that does not read makes its own
//! thread block in `sendto`, and nobody else notices. The price is a thread
//! (stack, kernel task, context switches) per connection.
//!
//! SIGINT/SIGTERM are blocked in every thread and collected by a dedicated
//! thread with `sigwait`, which prints the stop line and exits the process
//! (closing every connection) — blocked `recvfrom`s cannot be interrupted
//! portably any other way.

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::thread;

use anyhow::Context;
use clap::Parser;
use demo_servers::server::{self, ServerArgs};
use demo_servers::signals;
use demo_servers::stats::Stats;
use demo_servers::sys;

/// Echo server, one thread per connection with blocking reads and writes.
#[derive(Debug, Parser)]
#[command(name = "echo-blocking", version)]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

static STATS: Stats = Stats::new("echo-blocking");

/// Small stacks: thousands of idle connections mean thousands of threads,
/// and the read buffer lives on the heap.
const THREAD_STACK: usize = 128 * 1024;

fn main() -> ExitCode {
    let args = Args::parse();
    server::exit_status(STATS.name(), run(&args))
}

fn run(args: &Args) -> anyhow::Result<()> {
    // Before any thread exists, so every thread inherits the blocked mask.
    let stop = signals::block_stop_signals().context("cannot block SIGINT/SIGTERM")?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // Whether sigwait succeeded or not, stopping is the only option.
            let _ = stop.wait();
            let code = match server::report_stop(&STATS) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            std::process::exit(code);
        })
        .context("cannot start the signal thread")?;

    let mut listener = server::start(&args.server, false)?;
    loop {
        let fd = match listener.accept() {
            Ok(Some(fd)) => fd,
            Ok(None) => continue,
            Err(e) => {
                STATS.conn_error(format_args!("accept"), &e);
                continue;
            }
        };
        // Counted before the thread starts, so the count is never behind
        // what a client has already seen echoed.
        STATS.connection();
        let spawned = thread::Builder::new()
            .name("conn".into())
            .stack_size(THREAD_STACK)
            .spawn(move || serve(fd));
        if let Err(e) = spawned {
            // The closure, and with it the socket, was dropped: closed.
            STATS.connection_not_served();
            STATS.conn_error(format_args!("cannot start a connection thread"), &e);
        }
    }
}

/// Echoes one connection until the peer closes it or an error occurs.
fn serve(fd: OwnedFd) {
    let raw = fd.as_raw_fd();
    // The same bounded buffer as the multiplexed servers, so messages are
    // chopped the same way; its pages are touched only as data arrives, so
    // idle threads cost no buffer memory.
    let mut buf = demo_servers::buffer::EchoBuf::new();
    loop {
        match buf.recv_from(raw) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => return STATS.conn_error(format_args!("connection fd {raw}"), &e),
        }
        // A blocking sendto may still send less than asked (a signal, a
        // socket shut down under it): loop until everything went out.
        while !buf.is_empty() {
            match sys::send(raw, buf.pending()) {
                Ok(n) => {
                    buf.consume(n);
                    STATS.echoed(n);
                }
                Err(e) => return STATS.conn_error(format_args!("connection fd {raw}"), &e),
            }
        }
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
