//! Percentiles from the log2 histograms the programs fill.

use tracer_common::{bucket_high, bucket_low, Hist, HIST_BUCKETS};

/// The value below which a fraction `q` of the samples fall, interpolated
/// linearly inside the log2 bucket (so within a factor of 2 of the truth;
/// averages, by contrast, are exact).
pub fn percentile(hist: &Hist, q: f64) -> f64 {
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
            if b == 0 {
                return 0.0;
            }
            let low = bucket_low(b) as f64;
            let high = if b == HIST_BUCKETS - 1 {
                low * 2.0
            } else {
                bucket_high(b) as f64
            };
            // The sample's position inside the bucket, mid-rank, so a single
            // sample lands mid-bucket rather than on its edge.
            let within = ((rank - seen as f64 - 0.5) / n as f64).clamp(0.0, 1.0);
            return low + (high - low) * within;
        }
        seen += n;
    }
    0.0
}
