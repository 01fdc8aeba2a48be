//! Types shared by the eBPF programs (`tracer-ebpf`) and user space
//! (`tracer-user`): map keys and values, the histogram layout, the syscall
//! kinds, the map sizes and the names both sides must spell alike.
//!
//! Every type that crosses the kernel boundary is `#[repr(C)]`, `Copy`, has no
//! `bool` and no implicit padding (checked by `const` asserts), so both sides
//! agree byte for byte. `aya::Pod` is implemented behind the `user` feature.
#![no_std]

pub mod counter;
pub mod duration;
pub mod hist;
pub mod kind;
pub mod names;
pub mod records;

pub use hist::{bucket_high, bucket_low, log2_bucket, Hist, HIST_BUCKETS};
pub use kind::{ErrnoClass, SyscallKind, ERRNO_CLASSES, SYSCALL_KINDS};
pub use names::{globals, maps};
pub use records::{traced, LastWakeup, Stat, StatsKey, SyscallStats, ThreadState, STAT_COUNT};

/// How many processes can be traced at once (explicit pids, `--comm` matches
/// and followed children together).
pub const MAX_TRACED_TGIDS: u32 = 4096;
/// Per-thread in-flight slots. Threads beyond this are not measured; each
/// failed insert is counted in [`Stat::ThreadMapFull`].
pub const MAX_THREADS: u32 = 16_384;
/// (tgid, syscall kind) aggregation slots.
pub const MAX_STATS_KEYS: u32 = 16_384;
/// Eventpolls whose last wakeup is remembered (thundering-herd detection).
pub const MAX_EPOLL_SETS: u32 = 16_384;

/// Slots of the candidates filter: an id (tgid or tid) may be traced only
/// when its slot, `id & (CANDIDATE_SLOTS - 1)`, is non-zero. Ids that share a
/// slot with a traced one fall through to the exact lookups.
pub const CANDIDATE_SLOTS: u32 = 1 << 16;

/// The candidates-filter slot of a tgid or tid.
#[inline(always)]
pub const fn candidate_slot(id: u32) -> u32 {
    id & (CANDIDATE_SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_buckets_hold_their_bounds() {
        assert_eq!(log2_bucket(0), 0);
        assert_eq!(log2_bucket(1), 1);
        assert_eq!(log2_bucket(2), 2);
        assert_eq!(log2_bucket(3), 2);
        assert_eq!(log2_bucket(4), 3);
        for b in 1..HIST_BUCKETS - 1 {
            let (low, high) = (bucket_low(b), bucket_high(b));
            assert_eq!(log2_bucket(low), b, "low edge of {b}");
            assert_eq!(log2_bucket(high - 1), b, "high edge of {b}");
            assert_eq!(log2_bucket(high), b + 1, "next bucket after {b}");
        }
        assert_eq!(log2_bucket(u64::MAX), HIST_BUCKETS - 1);
        assert_eq!(bucket_high(HIST_BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn candidate_slots_wrap() {
        assert_eq!(candidate_slot(5), 5);
        assert_eq!(candidate_slot(CANDIDATE_SLOTS + 5), 5);
        assert!(candidate_slot(u32::MAX) < CANDIDATE_SLOTS);
    }
}
