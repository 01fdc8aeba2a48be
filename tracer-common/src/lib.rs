//! Types shared by the eBPF programs (`tracer-ebpf`) and user space
//! (`tracer-user`): map keys and values, the histogram layout, the syscall
//! kinds, the map sizes and the names both sides must spell alike.
//!
//! Every type that crosses the kernel boundary is `#[repr(C)]`, `Copy`, has no
//! `bool` and no implicit padding (checked by `const` asserts), so both sides
//! agree byte for byte. `aya::Pod` is implemented behind the `user` feature.
#![no_std]
// The histogram code's register barrier (`hist::opaque`).
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

pub mod counter;
pub mod duration;
pub mod hist;
pub mod kind;
pub mod names;
pub mod records;
pub mod uring;

pub use hist::{
    bucket, bucket_high, bucket_low, fold_pow2, pow2_bucket, pow2_high, pow2_low, pow2_of, Hist,
    Pow2Hist, HIST_BUCKETS, POW2_BUCKETS,
};
pub use kind::{ErrnoClass, SyscallKind, ERRNO_CLASSES, SYSCALL_KINDS};
pub use names::{globals, maps};
pub use records::{
    admit, traced, uring_path, ExitRecord, ExitedThreads, LastWakeup, Stat, StatsKey, SyscallStats,
    ThreadState, UringReq, UringStats, STAT_COUNT,
};

/// How many processes can be traced at once (explicit pids, `--comm` matches
/// and followed children together).
pub const MAX_TRACED_TGIDS: u32 = 4096;
/// Processes user space evicted from a full traced set and the kernel must
/// not admit again (an LRU map: the oldest are forgotten first, and an
/// evicted process's entry goes when it exits).
pub const MAX_EVICTED: u32 = 16_384;
/// `--all`, `--cgroup`: processes whose time of joining (admission, a move
/// into the cgroup) is kept until user space learns of them (an LRU map:
/// one moved and never admitted is forgotten in time).
pub const MAX_JOINED: u32 = 16_384;
/// Bytes of the `--cgroup` path the programs compare a moved process's new
/// cgroup with (`globals::CGROUP_PATH`).
pub const CGROUP_PATH_LEN: usize = 128;
/// Per-thread in-flight slots. Threads beyond this are not measured; each
/// failed claim is counted in [`Stat::ThreadMapFull`].
pub const MAX_THREADS: u32 = 16_384;
/// The kernel's highest pid_max (PID_MAX_LIMIT on 64-bit): the size of
/// `THREAD_INDEX` when /proc/sys/kernel/pid_max cannot be read.
pub const PID_MAX_LIMIT: u32 = 4 * 1024 * 1024;
/// Threads `THREAD_INDEX` keeps the slot of in one entry: an array entry
/// takes 8 bytes, so two u32 slots fill it (16 MiB at PID_MAX_LIMIT).
pub const TIDS_PER_INDEX_ENTRY: u32 = 2;
/// `BPF_F_MMAPABLE`: user space reads `THREAD_STATES` through a mapping,
/// not one syscall per slot.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// (tgid, syscall kind) aggregation slots. Preallocated per CPU at ~8.5 KiB
/// each: 17 MiB per CPU.
pub const MAX_STATS_KEYS: u32 = 2048;
/// Kinds a thread caches its aggregates' slots for (`ThreadState::stats_slots`):
/// every [`SyscallKind`], rounded up to whole words.
pub const STATS_SLOT_KINDS: usize = 32;
const _: () = assert!(SYSCALL_KINDS <= STATS_SLOT_KINDS);
// A cached slot is kept plus one in a u16.
const _: () = assert!(MAX_STATS_KEYS < u16::MAX as u32);
/// io_uring requests in flight whose submission time is kept (an LRU map:
/// requests that never complete — CQE skipped — are evicted, not leaked).
pub const MAX_URING_REQS: u32 = 65_536;
/// Eventpolls whose last wakeup is remembered (thundering-herd detection).
pub const MAX_EPOLL_SETS: u32 = 16_384;

/// The programs' call of the kfunc `bpf_rdonly_cast` as the object holds
/// it: opcode 0x85 (call) with source register 2 (a kernel function by BTF
/// id) and a placeholder id, `KFUNC_PLACEHOLDER`. aya 0.14 cannot resolve
/// kfuncs, so user space writes the running kernel's id into each copy of
/// this instruction before loading, or, on a kernel without the kfunc,
/// replaces it with [`KFUNC_ABSENT_INSN`].
pub const KFUNC_RDONLY_CAST_INSN: u64 = (KFUNC_PLACEHOLDER as u64) << 32 | 0x2085;
/// "MUXc": a call id no kernel's BTF reaches.
pub const KFUNC_PLACEHOLDER: u32 = 0x4d55_5863;
/// `r0 = r1`: what the cast leaves behind where the kernel has no
/// `bpf_rdonly_cast`. The typed reads are then off (`globals::BTF_IDS` all
/// zero) and the verifier never walks the instruction.
pub const KFUNC_ABSENT_INSN: u64 = 0x10bf;

/// Where each struct's id is in `globals::BTF_IDS`.
pub mod btf_ids {
    /// A struct whose first member is a `struct file *` (`kiocb`): an fd
    /// table slot read as one.
    pub const FILE_SLOT: usize = 0;
    pub const FILE: usize = 1;
    pub const INODE: usize = 2;
    pub const EVENTPOLL: usize = 3;
    /// io_uring's request, ring context and shared rings (0 where the
    /// kernel has no io_uring).
    pub const IO_KIOCB: usize = 4;
    pub const IO_RING_CTX: usize = 5;
    pub const IO_RINGS: usize = 6;
    /// A thread's `task_struct`, at the address its slot keeps.
    pub const TASK: usize = 7;
    pub const COUNT: usize = 8;
}

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
    fn every_value_falls_in_its_bucket() {
        for v in (0..100_000u64).chain([u64::MAX / 2, u64::MAX]) {
            let b = bucket(v);
            assert!(bucket_low(b) <= v, "{v} below bucket {b}");
            assert!(v < bucket_high(b) || b == HIST_BUCKETS - 1, "{v} above {b}");
        }
        // Exact below 8; then at most a quarter of the lower bound wide.
        for v in 0..8 {
            assert_eq!(bucket_low(bucket(v)), v);
            assert_eq!(bucket_high(bucket(v)), v + 1);
        }
        for b in 8..HIST_BUCKETS - 1 {
            let (low, high) = (bucket_low(b), bucket_high(b));
            assert!(high > low);
            assert!((high - low) * 4 <= low, "bucket {b}: {low}..{high}");
            assert_eq!(bucket(low), b);
            assert_eq!(bucket(high - 1), b);
        }
        assert_eq!(bucket(1 << 47), HIST_BUCKETS - 4);
    }

    #[test]
    fn pow2_buckets_hold_their_bounds() {
        // Every power of two and its neighbours too: the programs take a
        // call's on-CPU bucket from its wall-time bucket (`pow2_of`).
        let edges = (0..64).flat_map(|e| {
            let p = 1u64 << e;
            [p - 1, p, p + 1, p + p / 2]
        });
        for v in (0..100_000u64).chain(edges).chain([u64::MAX]) {
            let p = pow2_bucket(v);
            assert!(
                pow2_low(p) <= v && (v < pow2_high(p) || p == POW2_BUCKETS - 1),
                "{v}"
            );
            // The same bucket as a fine bucket folded.
            assert_eq!(pow2_of(bucket(v)), p, "{v}");
        }
    }

    #[test]
    fn fine_buckets_fold_into_powers_of_two() {
        for b in 0..HIST_BUCKETS {
            let p = pow2_of(b);
            assert!(pow2_low(p) <= bucket_low(b), "bucket {b} in {p}");
            assert!(
                bucket_high(b) <= pow2_high(p) || p == POW2_BUCKETS - 1,
                "bucket {b} in {p}"
            );
        }
        assert_eq!(pow2_of(HIST_BUCKETS - 1), POW2_BUCKETS - 1);
        let mut h = [0; HIST_BUCKETS];
        h[bucket(0)] += 1;
        h[bucket(3)] += 1;
        h[bucket(1000)] += 2;
        h[bucket(1023)] += 1;
        let folded = fold_pow2(&h);
        assert_eq!(folded[0], 1);
        assert_eq!(folded[2], 1, "3 is in [2, 4)");
        assert_eq!(folded[10], 3, "1000 and 1023 are in [512, 1024)");
        assert_eq!(folded.iter().sum::<u64>(), 5);
    }

    #[test]
    fn candidate_slots_wrap() {
        assert_eq!(candidate_slot(5), 5);
        assert_eq!(candidate_slot(CANDIDATE_SLOTS + 5), 5);
        assert!(candidate_slot(u32::MAX) < CANDIDATE_SLOTS);
    }
}
