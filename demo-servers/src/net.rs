//! Listener setup, `accept4` and the open-file limit.
//!
//! The listener is a std `TcpListener` (socket, `SO_REUSEADDR`, bind, listen)
//! whose backlog is then raised with a second `listen(2)`: std's default of
//! 128 would drop SYNs when a test or loadgen opens thousands of connections
//! at once, and a dropped SYN costs a one-second retransmit.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::{self, cvt};

/// Backlog asked of `listen(2)`; the kernel caps it at `net.core.somaxconn`.
pub const BACKLOG: libc::c_int = 4096;

/// A listening TCP socket plus one spare descriptor kept for EMFILE.
pub struct Listener {
    socket: TcpListener,
    local: SocketAddr,
    /// An open `/dev/null` given up to accept-and-close one connection when
    /// the process is out of descriptors. Without it, a level-triggered loop
    /// would see the listener readable forever and spin.
    reserve: Option<File>,
    nonblocking: bool,
}

impl Listener {
    /// Binds and listens on `addr`; port 0 lets the kernel pick one.
    /// `nonblocking` applies to the listener and to every accepted socket.
    pub fn bind(addr: SocketAddr, nonblocking: bool) -> io::Result<Listener> {
        let socket = TcpListener::bind(addr)?;
        // SAFETY: plain syscall on a descriptor we own.
        cvt(unsafe { libc::listen(socket.as_raw_fd(), BACKLOG) })?;
        socket.set_nonblocking(nonblocking)?;
        let local = socket.local_addr()?;
        Ok(Listener {
            socket,
            local,
            reserve: File::open("/dev/null").ok(),
            nonblocking,
        })
    }

    /// The address actually bound (with the kernel's port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The listening descriptor, to be watched for readability.
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// One `accept4(2)` with `SOCK_CLOEXEC` (and `SOCK_NONBLOCK` for the
    /// multiplexed servers). `Ok(None)` means no connection is waiting.
    ///
    /// Accepted sockets get `TCP_NODELAY`: an echo server that writes a
    /// partial echo and then the rest must not wait for the peer's delayed
    /// ACK (Nagle), or latency would measure the TCP stack instead of the
    /// I/O model.
    ///
    /// On EMFILE/ENFILE the spare descriptor is freed, the waiting connection
    /// is accepted and closed at once, the spare is reopened and the error is
    /// returned for the caller to count (`Ok(None)` if nobody was waiting).
    pub fn accept(&mut self) -> io::Result<Option<OwnedFd>> {
        let mut flags = libc::SOCK_CLOEXEC;
        if self.nonblocking {
            flags |= libc::SOCK_NONBLOCK;
        }
        loop {
            match self.accept_raw(flags) {
                Ok(fd) => {
                    // Best effort: a socket without NODELAY still echoes.
                    let _ = sys::setsockopt_int(
                        fd.as_raw_fd(),
                        libc::IPPROTO_TCP,
                        libc::TCP_NODELAY,
                        1,
                    );
                    return Ok(Some(fd));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sys::would_block(&e) => return Ok(None),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // accept4 reports EMFILE before looking at the queue, so
                    // only the shedding accept tells whether anyone waited.
                    if self.reserve.take().is_none() {
                        // Lost earlier; with luck a descriptor is free now.
                        self.reserve = File::open("/dev/null").ok();
                        return Err(e);
                    }
                    let shed = self.accept_raw(flags).map(drop);
                    self.reserve = File::open("/dev/null").ok();
                    return match shed {
                        Ok(()) => Err(io::Error::new(e.kind(), format!("{e}; connection closed"))),
                        Err(again) if sys::would_block(&again) => Ok(None),
                        Err(other) => Err(other),
                    };
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn accept_raw(&self, flags: libc::c_int) -> io::Result<OwnedFd> {
        // SAFETY: NULL address pointers are allowed; we do not need the peer.
        let fd = cvt(unsafe {
            libc::accept4(self.fd(), std::ptr::null_mut(), std::ptr::null_mut(), flags)
        })?;
        // SAFETY: accept4 just returned this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit and returns the new
/// soft limit: thousands of idle connections need more than the usual 1024.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above; raising soft up to hard needs no privilege.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    }
    Ok(lim.rlim_cur)
}

/// Sets `TCP_NODELAY` on a connected socket.
pub fn set_nodelay(fd: RawFd) -> io::Result<()> {
    sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
}
