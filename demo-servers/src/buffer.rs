//! The bounded per-connection echo buffer.
//!
//! Bytes received and not yet sent back wait here. The bound is the
//! backpressure: when the buffer is full the server stops reading that
//! connection (drops read interest), so a client that sends without reading
//! fills its own socket buffers and then blocks — it cannot make the server
//! hold more than [`CAPACITY`] bytes for it, nor slow anyone else down.

use std::io;
use std::os::fd::RawFd;

use crate::sys;

/// Per-connection bound on bytes held by the server.
pub const CAPACITY: usize = 64 * 1024;

/// A linear buffer: pending bytes are `data[start..]`, free space is the
/// vector's spare capacity. Memory is reserved on the first read, so
/// thousands of idle connections cost no buffer pages.
#[derive(Debug, Default)]
pub struct EchoBuf {
    data: Vec<u8>,
    start: usize,
}

impl EchoBuf {
    pub fn new() -> EchoBuf {
        EchoBuf::default()
    }

    /// Bytes received and not yet echoed.
    pub fn pending(&self) -> &[u8] {
        &self.data[self.start..]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.data.len()
    }

    /// Full means: stop reading until some of it has been sent.
    pub fn is_full(&self) -> bool {
        self.data.len() - self.start == CAPACITY
    }

    /// One `recvfrom` into the free space; `Ok(0)` is end of stream.
    /// Must not be called when [`is_full`](Self::is_full).
    pub fn recv_from(&mut self, fd: RawFd) -> io::Result<usize> {
        self.make_room();
        let free = CAPACITY - self.data.len();
        debug_assert!(free > 0, "recv_from on a full buffer");
        // SAFETY: the spare capacity is at least `free` bytes (reserved by
        // make_room), recvfrom initialises the `n` bytes it reports, and
        // set_len covers exactly those.
        unsafe {
            let n = sys::recv_raw(fd, self.data.as_mut_ptr().add(self.data.len()), free)?;
            self.data.set_len(self.data.len() + n);
            Ok(n)
        }
    }

    /// Marks `n` pending bytes as sent.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }

    /// Reserves the buffer on first use and slides pending bytes to the
    /// front when the tail is shorter than the consumed head, so a read
    /// always gets a useful amount of room and copying stays cheap.
    fn make_room(&mut self) {
        if self.data.capacity() < CAPACITY {
            self.data.reserve_exact(CAPACITY - self.data.len());
        }
        let tail = CAPACITY - self.data.len();
        if self.start > 0 && tail < self.start {
            self.data.drain(..self.start);
            self.start = 0;
        }
    }

    /// Test hook: appends bytes as if received.
    #[cfg(test)]
    fn push(&mut self, bytes: &[u8]) {
        self.make_room();
        assert!(bytes.len() <= CAPACITY - self.data.len());
        self.data.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_to_capacity_and_drains() {
        let mut b = EchoBuf::new();
        assert!(b.is_empty() && !b.is_full());
        b.push(&vec![7; CAPACITY]);
        assert!(b.is_full());
        b.consume(10);
        assert!(!b.is_full());
        assert_eq!(b.pending().len(), CAPACITY - 10);
        b.consume(CAPACITY - 10);
        assert!(b.is_empty());
    }

    #[test]
    fn compacts_when_head_is_large() {
        let mut b = EchoBuf::new();
        b.push(&vec![1; CAPACITY - 100]);
        b.consume(CAPACITY - 200); // 100 pending, tail of 100 < head
        b.push(&[2; 1000]);
        assert_eq!(b.pending().len(), 1100);
        assert_eq!(&b.pending()[..100], &[1; 100][..]);
        assert_eq!(&b.pending()[100..], &[2; 1000][..]);
    }

    #[test]
    fn recv_from_reads_a_socket_and_reports_eof() {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"hello").unwrap();
        drop(a);
        let mut buf = EchoBuf::new();
        assert_eq!(buf.recv_from(b.as_raw_fd()).unwrap(), 5);
        assert_eq!(buf.pending(), b"hello");
        assert_eq!(buf.recv_from(b.as_raw_fd()).unwrap(), 0);
    }
}
