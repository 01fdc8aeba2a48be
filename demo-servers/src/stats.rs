//! Counters reported when a server stops, and brief error logging.
//!
//! Atomics so the thread-per-connection server can share one instance; the
//! single-threaded servers pay an uncontended relaxed add, which is noise.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How many connection errors are logged one line each before the rest are
/// only counted: a burst of resets must not turn into a wall of stderr.
const LOGGED_ERRORS: u64 = 20;

pub struct Stats {
    name: &'static str,
    connections: AtomicU64,
    bytes_echoed: AtomicU64,
    errors: AtomicU64,
}

impl Stats {
    /// `name` prefixes every log line (the binary's name).
    pub const fn new(name: &'static str) -> Stats {
        Stats {
            name,
            connections: AtomicU64::new(0),
            bytes_echoed: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A connection was accepted and is being served.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// Takes back [`connection`](Self::connection) for a connection that
    /// could not be served after all (its error is counted separately).
    pub fn connection_not_served(&self) {
        self.connections.fetch_sub(1, Relaxed);
    }

    /// `n` bytes were sent back to a client.
    pub fn echoed(&self, n: usize) {
        self.bytes_echoed.fetch_add(n as u64, Relaxed);
    }

    /// Counts an error on one connection (or one failed accept) and logs it
    /// while fewer than [`LOGGED_ERRORS`] have been logged.
    pub fn conn_error(&self, what: fmt::Arguments<'_>, err: &io::Error) {
        let seen = self.errors.fetch_add(1, Relaxed);
        if seen < LOGGED_ERRORS {
            eprintln!("{}: {what}: {err}", self.name);
        } else if seen == LOGGED_ERRORS {
            eprintln!(
                "{}: further connection errors are counted, not logged",
                self.name
            );
        }
    }

    /// Counts a refused connection and always logs why: refusals are
    /// policy the operator must see, not noise.
    pub fn refused(&self, why: fmt::Arguments<'_>) {
        self.errors.fetch_add(1, Relaxed);
        eprintln!("{}: refusing connection: {why}", self.name);
    }

    /// The line printed on stdout when the server stops.
    pub fn stopped_line(&self) -> String {
        format!(
            "stopped: connections={} bytes_echoed={} errors={}",
            self.connections.load(Relaxed),
            self.bytes_echoed.load(Relaxed),
            self.errors.load(Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_line_has_the_documented_shape() {
        let s = Stats::new("t");
        s.connection();
        s.echoed(5);
        s.echoed(7);
        s.refused(format_args!("test"));
        assert_eq!(
            s.stopped_line(),
            "stopped: connections=1 bytes_echoed=12 errors=1"
        );
    }
}
