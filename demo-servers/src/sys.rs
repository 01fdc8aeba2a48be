//! Checked wrappers over raw libc calls shared by the servers and loadgen.
//!
//! Payload I/O is always `recvfrom(2)` and `sendto(2)`, issued directly (not
//! through `read`/`write` and not through glibc's `recv`/`send`, which are
//! the same syscalls under another name). Using socket calls for payload keeps
//! payload apart from the self-pipe's `read`/`write` in a trace, and
//! `MSG_NOSIGNAL` turns a write to a closed peer into `EPIPE` instead of a
//! SIGPIPE, whatever the signal disposition.

use std::io;
use std::os::fd::RawFd;

/// Turns a `-1` return into the `errno` error.
pub fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// One `recvfrom(fd, buf, len, 0, NULL, NULL)`, retried on EINTR.
///
/// # Safety
///
/// `buf` must be valid for writes of `len` bytes.
pub unsafe fn recv_raw(fd: RawFd, buf: *mut u8, len: usize) -> io::Result<usize> {
    loop {
        // SAFETY: the caller guarantees `buf` is writable for `len` bytes.
        let ret = unsafe {
            libc::recvfrom(
                fd,
                buf.cast(),
                len,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        match cvt_size(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// One `recvfrom` into `buf`; `Ok(0)` is end of stream.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes.
    unsafe { recv_raw(fd, buf.as_mut_ptr(), buf.len()) }
}

/// One `sendto(fd, buf, len, MSG_NOSIGNAL, NULL, 0)`, retried on EINTR.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a live slice; no address is passed.
        let ret = unsafe {
            libc::sendto(
                fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
                std::ptr::null(),
                0,
            )
        };
        match cvt_size(ret) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Sets an integer socket option.
pub fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option value is a live `c_int` and its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Whether an error only means "not now" on a non-blocking descriptor.
pub fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock as `std::time::Instant`
/// and `timerfd`, as a plain number that is cheap to store per message.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}
