//! Percentiles from the histograms the programs fill.

use tracer_common::{bucket_high, bucket_low, counter::Range, Hist, HIST_BUCKETS};

/// The value below which a fraction `q` of the samples fall, interpolated
/// linearly inside its bucket and never outside the window's `range` of
/// values (exact min and max). A bucket spans at most a quarter of its lower
/// bound, and values below 8 have a bucket each, so the error is under 25 %
/// of the value and 0 for small counts; averages, by contrast, are exact.
pub fn percentile(hist: &Hist, q: f64, range: &Range) -> f64 {
    let p = unclamped(hist, q);
    if range.is_empty() {
        p
    } else {
        p.clamp(range.min() as f64, range.max() as f64)
    }
}

fn unclamped(hist: &Hist, q: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0u64;
    for (b, &n) in hist.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if (seen + n) as f64 >= rank {
            let low = bucket_low(b) as f64;
            let high = if b == HIST_BUCKETS - 1 {
                low * 1.25
            } else {
                bucket_high(b) as f64
            };
            // A bucket one value wide is that value.
            if high - low <= 1.0 {
                return low;
            }
            // The sample's position inside the bucket, mid-rank, so a single
            // sample lands mid-bucket rather than on its edge.
            let within = ((rank - seen as f64 - 0.5) / n as f64).clamp(0.0, 1.0);
            return low + (high - low) * within;
        }
        seen += n;
    }
    0.0
}
