//! The echo buffer of the completion-based server (`echo-uring`): a ring of
//! [`CAPACITY`] bytes that never moves.
//!
//! A readiness server copies into and out of its buffer inside one syscall,
//! so [`EchoBuf`](crate::buffer::EchoBuf) may slide bytes between calls.
//! Under io_uring the kernel holds pointers into the buffer for as long as a
//! request is in flight — a receive into the free space and a send from the
//! pending bytes can be in flight together — so nothing may move: new bytes
//! wrap around to the front instead. The bound means what it means in
//! `EchoBuf`: a full ring takes no receive, which is the backpressure.
//!
//! Regions are handed out as raw pointers because the kernel, not Rust,
//! writes and reads them; the heap block stays put when the `EchoRing`
//! itself moves, and the caller keeps the ring alive until every request
//! that got a pointer has completed.

use std::mem::MaybeUninit;

pub use crate::buffer::CAPACITY;

/// Received bytes not yet echoed are `received - sent` bytes ending at
/// `received % CAPACITY`. The counters only grow (wrapping), so a full and an
/// empty ring are told apart without a flag.
pub struct EchoRing {
    data: Box<[MaybeUninit<u8>]>,
    received: usize,
    sent: usize,
}

impl EchoRing {
    /// Allocates the ring without touching it: an idle connection costs
    /// address space, not memory pages.
    pub fn new() -> EchoRing {
        EchoRing {
            data: Box::new_uninit_slice(CAPACITY),
            received: 0,
            sent: 0,
        }
    }

    /// Bytes received and not yet echoed.
    pub fn pending(&self) -> usize {
        self.received.wrapping_sub(self.sent)
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Full means: no receive until a send has completed.
    pub fn is_full(&self) -> bool {
        self.pending() == CAPACITY
    }

    /// Where the next receive may write: the free space up to the end of
    /// the block (the rest of it, at the front, is the next receive's).
    /// Length 0 when full.
    pub fn free_region(&mut self) -> (*mut u8, usize) {
        let start = self.received % CAPACITY;
        let len = (CAPACITY - self.pending()).min(CAPACITY - start);
        // SAFETY: `start < CAPACITY`, inside the block.
        (unsafe { self.data.as_mut_ptr().add(start).cast() }, len)
    }

    /// A receive wrote `n` bytes at the start of [`free_region`](Self::free_region).
    pub fn filled(&mut self, n: usize) {
        debug_assert!(n <= CAPACITY - self.pending());
        self.received = self.received.wrapping_add(n);
    }

    /// What the next send may read: pending bytes up to the end of the
    /// block. Length 0 when empty.
    pub fn pending_region(&self) -> (*const u8, usize) {
        let start = self.sent % CAPACITY;
        let len = self.pending().min(CAPACITY - start);
        // SAFETY: `start < CAPACITY`, inside the block.
        (unsafe { self.data.as_ptr().add(start).cast() }, len)
    }

    /// A send took `n` bytes from the start of [`pending_region`](Self::pending_region).
    pub fn consumed(&mut self, n: usize) {
        debug_assert!(n <= self.pending());
        self.sent = self.sent.wrapping_add(n);
    }
}

impl Default for EchoRing {
    fn default() -> EchoRing {
        EchoRing::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a receive of `bytes` does: copy into the free region.
    fn recv(r: &mut EchoRing, bytes: &[u8]) -> usize {
        let (ptr, len) = r.free_region();
        let n = bytes.len().min(len);
        // SAFETY: the region is writable for `len` bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, n) };
        r.filled(n);
        n
    }

    /// What a send of at most `max` bytes does: copy out of the pending region.
    fn send(r: &mut EchoRing, max: usize) -> Vec<u8> {
        let (ptr, len) = r.pending_region();
        let n = len.min(max);
        // SAFETY: the region holds `len` received bytes.
        let out = unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec();
        r.consumed(n);
        out
    }

    #[test]
    fn fills_to_capacity_then_takes_nothing() {
        let mut r = EchoRing::new();
        assert!(r.is_empty());
        assert_eq!(recv(&mut r, &vec![1; CAPACITY + 10]), CAPACITY);
        assert!(r.is_full());
        assert_eq!(r.free_region().1, 0);
        assert_eq!(send(&mut r, 10), vec![1; 10]);
        assert_eq!(r.free_region().1, 10);
    }

    #[test]
    fn wraps_around_without_moving_pending_bytes() {
        let mut r = EchoRing::new();
        recv(&mut r, &vec![1; CAPACITY - 100]);
        let (before, _) = r.pending_region();
        send(&mut r, CAPACITY - 300); // 200 pending at the end of the block
                                      // The free space is split: 100 at the end, then the head.
        assert_eq!(recv(&mut r, &[2; 1000]), 100);
        assert_eq!(recv(&mut r, &[3; 1000]), 1000);
        assert_eq!(r.pending(), 1300);
        // The pending bytes did not move; a send stops at the block's end.
        assert_eq!(r.pending_region().0, before.wrapping_add(CAPACITY - 300));
        let mut out = send(&mut r, usize::MAX);
        assert_eq!(out.len(), 300);
        out.extend(send(&mut r, usize::MAX));
        let mut want = vec![1; 200];
        want.extend([2; 100]);
        want.extend([3; 1000]);
        assert_eq!(out, want);
        assert!(r.is_empty());
    }

    #[test]
    fn regions_never_overlap() {
        let mut r = EchoRing::new();
        let mut step = 0usize;
        for round in 0..1000 {
            step = (step * 31 + 17 + round) % 9000 + 1;
            if round % 3 == 0 {
                send(&mut r, step);
            } else {
                recv(&mut r, &vec![0; step]);
            }
            let (free, flen) = r.free_region();
            let (pend, plen) = r.pending_region();
            let (f0, f1) = (free as usize, free as usize + flen);
            let (p0, p1) = (pend as usize, pend as usize + plen);
            assert!(f1 <= p0 || p1 <= f0 || flen == 0 || plen == 0);
            assert!(r.pending() <= CAPACITY);
        }
    }
}
