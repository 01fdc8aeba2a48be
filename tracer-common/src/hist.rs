//! The log2 histogram layout shared by the programs that fill histograms and
//! the model that reads percentiles from them.

/// Log2 histogram buckets: bucket 0 holds the value 0, bucket `b >= 1` holds
/// values in `[2^(b-1), 2^b)`; the last bucket also takes everything larger.
pub const HIST_BUCKETS: usize = 48;

/// A log2 histogram; see [`HIST_BUCKETS`] for the bucket bounds.
pub type Hist = [u64; HIST_BUCKETS];

/// The bucket a value falls in. Branch-light so the verifier and the hot path
/// both stay cheap: a binary search over the bit length.
#[inline(always)]
pub const fn log2_bucket(v: u64) -> usize {
    if v == 0 {
        return 0;
    }
    let mut bits = 0u32;
    let mut x = v;
    if x >= 1 << 32 {
        x >>= 32;
        bits += 32;
    }
    if x >= 1 << 16 {
        x >>= 16;
        bits += 16;
    }
    if x >= 1 << 8 {
        x >>= 8;
        bits += 8;
    }
    if x >= 1 << 4 {
        x >>= 4;
        bits += 4;
    }
    if x >= 1 << 2 {
        x >>= 2;
        bits += 2;
    }
    if x >= 1 << 1 {
        bits += 1;
    }
    // bits = floor(log2 v), so v is in [2^bits, 2^(bits+1)) → bucket bits+1.
    let b = bits as usize + 1;
    if b >= HIST_BUCKETS {
        HIST_BUCKETS - 1
    } else {
        b
    }
}

/// Lower bound (inclusive) of a bucket's values.
pub const fn bucket_low(b: usize) -> u64 {
    if b == 0 {
        0
    } else {
        1u64 << (b - 1)
    }
}

/// Upper bound (exclusive) of a bucket's values; the last bucket is open.
pub const fn bucket_high(b: usize) -> u64 {
    if b == 0 {
        1
    } else if b >= HIST_BUCKETS - 1 {
        u64::MAX
    } else {
        1u64 << b
    }
}
