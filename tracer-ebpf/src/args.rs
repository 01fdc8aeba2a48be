//! Reading a syscall's arguments from its tracepoint record, and the user
//! memory they point at (fd sets, timeouts).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, bpf_probe_read_user_buf},
    programs::TracePointContext,
    EbpfContext,
};
use tracer_common::Stat;

use crate::filter::lost;

/// Syscall tracepoint records: 8 bytes of common fields, the syscall number,
/// then each argument in an 8-byte slot from offset 16; `sys_exit_*` has the
/// return value at 16.
#[inline(always)]
pub fn arg(ctx: &TracePointContext, i: usize) -> u64 {
    // SAFETY: i < 6 at every call site, so the load stays inside the record
    // (the verifier checks the constant offset). A direct context load is
    // cheaper than the bpf_probe_read helper.
    unsafe { *(ctx.as_ptr() as *const u8).add(16 + 8 * i).cast::<u64>() }
}

/// A field at an offset known only at load time: the verifier forbids context
/// loads at a variable offset, so this goes through the probe-read helper.
/// `None` (counted) when the record is not laid out as its format file said.
#[inline(always)]
pub fn field<T: Copy>(ctx: &TracePointContext, offset: u32) -> Option<T> {
    // SAFETY: read_at checks the read with bpf_probe_read.
    match unsafe { ctx.read_at::<T>(offset as usize) } {
        Ok(v) => Some(v),
        Err(_) => {
            lost!(
                Stat::RecordReadFailed,
                "cannot read {} bytes at offset {} of a tracepoint record",
                core::mem::size_of::<T>() as u32,
                offset
            );
            None
        }
    }
}

/// The calling thread's id, for log lines on rare paths.
#[inline(always)]
pub fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// Sentinel for "no timeout: blocks until ready".
pub const INFINITE: u64 = u64::MAX;
pub const FD_SETSIZE: u64 = 1024;

/// Microseconds of a user `timespec`/`timeval` (`sub_unit_ns` = 1 for
/// timespec, 1000 for timeval). `None` for a NULL pointer (block forever).
#[inline(always)]
pub fn read_timeout_us(ptr: u64, sub_unit_ns: u64) -> Option<u64> {
    if ptr == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_user checks the address; a bad one is an Err.
    match unsafe { bpf_probe_read_user(ptr as *const [i64; 2]) } {
        Ok([sec, frac]) => {
            // Clamped so the multiplication cannot overflow (no 128-bit maths in BPF).
            let sec = if sec < 0 {
                0
            } else if sec > 1 << 40 {
                1 << 40
            } else {
                sec as u64
            };
            let frac = if frac < 0 { 0 } else { frac as u64 };
            Some(sec * 1_000_000 + (frac & 0xffff_ffff) * sub_unit_ns / 1000)
        }
        Err(_) => {
            lost!(
                Stat::UserReadFailed,
                "cannot read a timeout at {:x} (tid {})",
                ptr,
                current_tid()
            );
            Some(0)
        }
    }
}

/// Reads two u64s from user memory (pselect6's `{sigset_t *, size_t}`).
#[inline(always)]
pub fn read_user_pair(ptr: u64) -> Option<[u64; 2]> {
    // SAFETY: bpf_probe_read_user checks the address; a bad one is an Err.
    match unsafe { bpf_probe_read_user(ptr as *const [u64; 2]) } {
        Ok(pair) => Some(pair),
        Err(_) => {
            lost!(
                Stat::UserReadFailed,
                "cannot read pselect6's sigmask argument at {:x} (tid {})",
                ptr,
                current_tid()
            );
            None
        }
    }
}

/// Popcount of one fd set's first `n` bits, read from user memory in one go.
#[inline(always)]
pub fn fd_set_popcount(ptr: u64, n: u64) -> u64 {
    if ptr == 0 || n == 0 {
        return 0;
    }
    let words = n.div_ceil(64);
    let mut buf = [0u64; (FD_SETSIZE / 64) as usize];
    let bytes = (words * 8) as usize;
    // Bounded for the verifier: 8..=128 bytes.
    let bytes = if bytes > 128 { 128 } else { bytes };
    // SAFETY: `bytes & 0xff` ≤ 128 bytes lie inside `buf` (128 bytes).
    let dst =
        unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), bytes & 0xff) };
    if bytes == 0 || dst.len() > 128 {
        return 0;
    }
    // SAFETY: the helper checks the user address; `dst` is a valid buffer.
    if unsafe { bpf_probe_read_user_buf(ptr as *const u8, dst) }.is_err() {
        lost!(
            Stat::UserReadFailed,
            "cannot read a select fd set at {:x} (tid {})",
            ptr,
            current_tid()
        );
        return 0;
    }
    let mut count = 0u64;
    let last = (words - 1) as usize;
    let tail_bits = n - (words - 1) * 64;
    let mut i = 0usize;
    while i < 16 {
        if i > last {
            break;
        }
        let mut w = buf[i];
        if i == last && tail_bits < 64 {
            w &= (1u64 << tail_bits) - 1;
        }
        count += w.count_ones() as u64;
        i += 1;
    }
    count
}
