//! The histogram layout shared by the programs that fill histograms and the
//! model that reads percentiles from them: log2 buckets split into four
//! linear sub-buckets (as HdrHistogram does), so a bucket spans at most a
//! quarter of its lower bound and values below 8 have a bucket each. Views
//! that draw bars fold them back into powers of two ([`fold_pow2`]); figures
//! only ever drawn as bars are kept in powers of two ([`Pow2Hist`]).

/// Sub-buckets per power of two, as a shift.
const SUB_BITS: u32 = 2;
const SUBS: usize = 1 << SUB_BITS;

/// Fine buckets: 0..=3 hold the values 0..=3; from 4 on, bucket
/// `4 + 4·(e − 2) + s` holds `[2^e + s·2^(e−2), 2^e + (s+1)·2^(e−2))`. The
/// last bucket also takes everything from its lower bound up (≥ 2^48 − 2^45).
pub const HIST_BUCKETS: usize = 188;

/// A histogram in fine buckets; see [`HIST_BUCKETS`].
pub type Hist = [u64; HIST_BUCKETS];

/// `v`, which the compiler may no longer reason about (the verifier still
/// does). In BPF a register move onto itself, where `black_box` stores and
/// reloads it (+26 ns on a traced `epoll_wait`). Not an empty `asm`: the
/// kernel refuses its zero-length line info.
#[inline(always)]
fn opaque(v: u64) -> u64 {
    #[cfg(target_arch = "bpf")]
    {
        let mut v = v;
        // SAFETY: `v = v`: no memory, no other register.
        unsafe { core::arch::asm!("{0} = {0}", inout(reg) v, options(pure, nomem, nostack)) };
        v
    }
    #[cfg(not(target_arch = "bpf"))]
    core::hint::black_box(v)
}

/// `floor(log2 v)` for `v > 0`, without a branch (BPF has no
/// count-leading-zeros, and a branch per step would fork the verifier's
/// walk: the exit program fills nine histograms). The bits below the top
/// one are set by six shift-ors, the top one is isolated, and a de Bruijn
/// multiplication turns it into an index into a 64-byte table: 27 BPF
/// instructions, where a six-step binary search over the bit length took
/// 46.
#[inline(always)]
fn floor_log2(v: u64) -> u32 {
    let mut x = v;
    x |= x >> 1;
    x |= x >> 2;
    x |= x >> 4;
    x |= x >> 8;
    x |= x >> 16;
    x |= x >> 32;
    let top = x ^ (x >> 1);
    // Below 64 after the shift, a bound the verifier sees.
    let index = (top.wrapping_mul(DE_BRUIJN_64) >> 58) as usize;
    u32::from(LOG2_OF_DE_BRUIJN[index])
}

/// A de Bruijn sequence B(2, 6): its top six bits, shifted left by any
/// 0..=63, are distinct.
const DE_BRUIJN_64: u64 = 0x0218_a392_cd3d_5dbf;

/// `LOG2_OF_DE_BRUIJN[(1 << k) * DE_BRUIJN_64 >> 58] == k`.
static LOG2_OF_DE_BRUIJN: [u8; 64] = {
    let mut table = [0u8; 64];
    let mut k = 0;
    while k < 64 {
        table[((1u64 << k).wrapping_mul(DE_BRUIJN_64) >> 58) as usize] = k as u8;
        k += 1;
    }
    table
};

/// The fine bucket a value falls in.
#[inline(always)]
pub fn bucket(v: u64) -> usize {
    if v < SUBS as u64 {
        return v as usize;
    }
    let e = floor_log2(v);
    let sub = ((v >> (e - SUB_BITS)) as usize) & (SUBS - 1);
    // Opaque, so the bound is checked on the very value the index is:
    // from `e`'s range the compiler would clamp a copy the verifier cannot
    // tie to it.
    let b = opaque((SUBS + (e - SUB_BITS) as usize * SUBS + sub) as u64) as usize;
    if b >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        b
    }
}

/// Lower bound (inclusive) of a fine bucket's values.
pub const fn bucket_low(b: usize) -> u64 {
    if b < SUBS {
        return b as u64;
    }
    let e = ((b - SUBS) / SUBS) as u32 + SUB_BITS;
    let sub = ((b - SUBS) % SUBS) as u64;
    (1u64 << e) + (sub << (e - SUB_BITS))
}

/// Upper bound (exclusive) of a fine bucket's values; the last is open.
pub const fn bucket_high(b: usize) -> u64 {
    if b + 1 >= HIST_BUCKETS {
        u64::MAX
    } else {
        bucket_low(b + 1)
    }
}

/// Power-of-two buckets, for bars and Prometheus: bucket 0 holds 0, bucket
/// `p ≥ 1` holds `[2^(p−1), 2^p)`, the last also everything larger.
pub const POW2_BUCKETS: usize = 49;

/// The power-of-two bucket holding fine bucket `b` (fine buckets never
/// straddle a power of two).
#[inline(always)]
pub const fn pow2_of(b: usize) -> usize {
    if b < SUBS {
        // The values 0, 1, 2, 3.
        match b {
            0 => 0,
            1 => 1,
            _ => 2,
        }
    } else {
        (b - SUBS) / SUBS + SUB_BITS as usize + 1
    }
}

/// Lower bound (inclusive) of a power-of-two bucket.
pub const fn pow2_low(p: usize) -> u64 {
    if p == 0 {
        0
    } else {
        1u64 << (p - 1)
    }
}

/// Upper bound (exclusive) of a power-of-two bucket; the last is open.
pub const fn pow2_high(p: usize) -> u64 {
    if p == 0 {
        1
    } else if p >= POW2_BUCKETS - 1 {
        u64::MAX
    } else {
        1u64 << p
    }
}

/// A histogram in power-of-two buckets: for the figures that are only ever
/// drawn as bars, never read as percentiles (a quarter of the size).
pub type Pow2Hist = [u64; POW2_BUCKETS];

/// The power-of-two bucket a value falls in.
#[inline(always)]
pub fn pow2_bucket(v: u64) -> usize {
    if v == 0 {
        return 0;
    }
    // Opaque: as in `bucket`.
    let b = opaque(u64::from(floor_log2(v)) + 1) as usize;
    if b >= POW2_BUCKETS {
        POW2_BUCKETS - 1
    } else {
        b
    }
}

/// A fine histogram folded into power-of-two buckets.
pub fn fold_pow2(h: &Hist) -> Pow2Hist {
    let mut out = [0; POW2_BUCKETS];
    for (b, n) in h.iter().enumerate() {
        out[pow2_of(b)] += n;
    }
    out
}

#[cfg(test)]
mod floor_log2_tests {
    use super::floor_log2;

    #[test]
    fn agrees_with_leading_zeros_around_every_power_of_two() {
        for k in 0..64u32 {
            let p = 1u64 << k;
            for v in [
                p,
                p | (p >> 1),
                p.wrapping_add(p - 1),
                p + 1,
                (p << 1).wrapping_sub(1),
            ] {
                if v != 0 {
                    assert_eq!(floor_log2(v), 63 - v.leading_zeros(), "{v:#x}");
                }
            }
        }
        assert_eq!(floor_log2(u64::MAX), 63);
    }
}
