//! One echo connection of a multiplexed server: its buffer and I/O steps.
//!
//! The event loops decide *when* to touch a connection; this module decides
//! *what* one touch does, identically for select, poll and epoll, so their
//! syscall counts differ only by the waiting call.
//!
//! Interest follows the state: read interest while the peer has not closed
//! and the buffer has room ([`Conn::wants_read`]), write interest only while
//! echo bytes are pending ([`Conn::wants_write`]). Every open connection
//! wants one or the other, so it is always watched for something.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::buffer::EchoBuf;
use crate::stats::Stats;
use crate::sys;

/// What one read or write step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Io {
    /// Moved this many bytes (> 0).
    Moved(usize),
    /// The socket is not ready: EAGAIN.
    WouldBlock,
    /// The peer closed its sending side (reads only).
    Eof,
}

/// Readiness as one wait call reported it, translated by the caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Readiness {
    pub readable: bool,
    pub writable: bool,
    /// POLLHUP/EPOLLHUP: the connection is gone both ways (a reset, in
    /// practice), so echo bytes still pending can never be delivered.
    pub hangup: bool,
}

pub struct Conn {
    fd: OwnedFd,
    buf: EchoBuf,
    eof: bool,
}

impl Conn {
    pub fn new(fd: OwnedFd) -> Conn {
        Conn {
            fd,
            buf: EchoBuf::new(),
            eof: false,
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Read interest: the peer may send more and there is room for it.
    /// A full buffer drops read interest — that is the backpressure.
    pub fn wants_read(&self) -> bool {
        !self.eof && !self.buf.is_full()
    }

    /// Write interest: only while echo bytes are pending.
    pub fn wants_write(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The peer has closed its side and everything it sent was echoed: the
    /// connection is done and should be closed.
    pub fn is_finished(&self) -> bool {
        self.eof && self.buf.is_empty()
    }

    /// One `recvfrom` into the buffer. Call only when [`wants_read`](Self::wants_read).
    pub fn read_once(&mut self) -> io::Result<Io> {
        match self.buf.recv_from(self.fd()) {
            Ok(0) => {
                self.eof = true;
                Ok(Io::Eof)
            }
            Ok(n) => Ok(Io::Moved(n)),
            Err(e) if sys::would_block(&e) => Ok(Io::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// One `sendto` of the pending bytes; counts what was echoed.
    /// Call only when [`wants_write`](Self::wants_write).
    pub fn write_once(&mut self, stats: &Stats) -> io::Result<Io> {
        match sys::send(self.fd(), self.buf.pending()) {
            Ok(n) => {
                self.buf.consume(n);
                stats.echoed(n);
                Ok(Io::Moved(n))
            }
            Err(e) if sys::would_block(&e) => Ok(Io::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// The level-triggered step shared by select, poll and level-triggered
    /// epoll: at most one read and one or two writes per readiness report,
    /// so one busy client cannot starve the rest of the loop.
    ///
    /// After a successful read the echo is sent at once instead of waiting
    /// for the next wait call to report writability: a socket is almost
    /// always writable, and that saves a wait per message (write interest is
    /// taken only when this optimistic send comes up short).
    ///
    /// Returns whether to keep the connection; errors are counted and logged
    /// here, and the caller closes the connection on `false`.
    pub fn on_ready(&mut self, ready: Readiness, stats: &Stats) -> bool {
        if let Err(e) = self.step(ready, stats) {
            stats.conn_error(format_args!("connection fd {}", self.fd()), &e);
            return false;
        }
        if self.is_finished() {
            return false;
        }
        if ready.hangup {
            stats.conn_error(
                format_args!("connection fd {}", self.fd()),
                &io::Error::from(io::ErrorKind::ConnectionReset),
            );
            return false;
        }
        true
    }

    fn step(&mut self, ready: Readiness, stats: &Stats) -> io::Result<()> {
        if ready.writable && self.wants_write() {
            self.write_once(stats)?;
        }
        if ready.readable && self.wants_read() {
            if let Io::Moved(_) = self.read_once()? {
                self.write_once(stats)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("fd", &self.fd())
            .field("pending", &self.buf.pending().len())
            .field("eof", &self.eof)
            .finish()
    }
}
