//! SIGINT/SIGTERM handling for both kinds of server.
//!
//! Multiplexed servers use the self-pipe trick: the handler writes one byte
//! to a non-blocking pipe whose read end sits in the watched set, so the
//! signal wakes `select`/`poll`/`epoll_wait` promptly (even when it lands
//! just before the call, where an EINTR check would miss it) and the stop is
//! handled in the loop like any other event. The blocking server instead
//! blocks both signals in every thread and gives one thread to `sigwait`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::sys::cvt;

static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_signo: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
    let fd = PIPE_WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: errno is thread-local; write(2) is async-signal-safe. The
        // handler restores errno so the interrupted code sees its own.
        unsafe {
            let errno = *libc::__errno_location();
            let byte = 1u8;
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = errno;
        }
    }
}

/// The read end of the self-pipe; keep it alive for the whole event loop.
pub struct StopPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl StopPipe {
    /// Creates the pipe and installs the SIGINT/SIGTERM handler.
    pub fn install() -> io::Result<StopPipe> {
        let mut fds = [-1; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 returns.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
        // SAFETY: pipe2 just returned these; nothing else owns them.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        PIPE_WRITE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        for signo in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is valid; we fill handler and mask.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_stop_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                cvt(libc::sigaction(signo, &sa, std::ptr::null_mut()))?;
            }
        }
        Ok(StopPipe {
            read,
            _write: write,
        })
    }

    /// The descriptor to watch for readability.
    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Whether a stop signal has arrived (also true once the pipe is readable).
    pub fn requested(&self) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}

/// The blocking server's way: SIGINT and SIGTERM blocked in the calling
/// thread (and so in every thread it spawns afterwards), to be collected by
/// [`wait_for_stop`] in a dedicated thread. Call before spawning anything.
pub fn block_stop_signals() -> io::Result<StopSignals> {
    // SAFETY: a zeroed sigset_t is initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(StopSignals(set))
    }
}

/// The blocked stop-signal set returned by [`block_stop_signals`].
pub struct StopSignals(libc::sigset_t);

// SAFETY: a sigset_t is plain data.
unsafe impl Send for StopSignals {}

impl StopSignals {
    /// Blocks until SIGINT or SIGTERM arrives; returns the signal number.
    pub fn wait(&self) -> io::Result<libc::c_int> {
        let mut signo = 0;
        // SAFETY: the set is initialised and `signo` is a live int.
        let rc = unsafe { libc::sigwait(&self.0, &mut signo) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(signo)
    }
}
