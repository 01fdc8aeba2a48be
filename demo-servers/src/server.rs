//! What every echo server does around its event loop: arguments, start-up,
//! the `listening on …` line and the stop report.
//!
//! Start-up order matters for scripts and tests: signal handling is in place
//! before the address is printed, so a SIGTERM sent right after reading the
//! first line is always handled as a clean stop.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;

use crate::net::{self, Listener};
use crate::stats::Stats;

/// Options shared by every echo server.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Address to listen on; port 0 picks a free port. The address chosen is
    /// printed as the first stdout line: `listening on 127.0.0.1:PORT`.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
}

/// Raises the fd limit, binds, and prints the `listening on` line.
pub fn start(args: &ServerArgs, nonblocking: bool) -> anyhow::Result<Listener> {
    // Best effort: a server that cannot raise the limit still works, with
    // fewer connections.
    let _ = net::raise_nofile_limit();
    let listener = Listener::bind(args.listen, nonblocking)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    print_line(&format!("listening on {}", listener.local_addr()))
        .context("cannot write to stdout")?;
    Ok(listener)
}

/// Prints the `stopped: …` line; called once the loop has ended.
pub fn report_stop(stats: &Stats) -> anyhow::Result<()> {
    print_line(&stats.stopped_line()).context("cannot write to stdout")
}

/// Writes one line to stdout and flushes it: the reader is a pipe. A reader
/// that has gone away (it read the address and closed the pipe) is fine:
/// the server keeps serving and still stops cleanly.
fn print_line(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Maps a server's result to its exit status: 0 after a clean stop,
/// 1 with one line on stderr for a runtime failure.
pub fn exit_status(name: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
