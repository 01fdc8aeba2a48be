//! The verifiable byte stream loadgen sends (and the tests reuse).
//!
//! Every connection's stream is a walk through one fixed pseudo-random table
//! whose length is a prime, starting at a per-connection offset. The byte at
//! stream offset `k` of connection `c` is therefore known without storing
//! what was sent, so every echoed byte is compared against the expectation:
//! a flipped byte, a lost or duplicated byte, reordering, or bytes delivered
//! to the wrong connection all show up as a mismatch.

/// Length of the table's period: prime, so different offsets never line up.
pub const PERIOD: usize = 65_521;

/// Longest slice [`Pattern::slice`] hands out in one piece.
pub const MAX_SLICE: usize = 64 * 1024;

pub struct Pattern {
    /// `PERIOD` bytes, then `MAX_SLICE` more continuing the cycle, so any
    /// slice up to `MAX_SLICE` long is contiguous.
    table: Vec<u8>,
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern::new()
    }
}

impl Pattern {
    pub fn new() -> Pattern {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut table: Vec<u8> = (0..PERIOD)
            .map(|_| {
                // xorshift64*: fast, fixed, good enough to make neighbours differ.
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect();
        // MAX_SLICE may exceed PERIOD, so wrap around as often as needed.
        for i in PERIOD..PERIOD + MAX_SLICE {
            table.push(table[i - PERIOD]);
        }
        Pattern { table }
    }

    /// The starting point of connection number `index`'s stream.
    pub fn stream_seed(index: usize) -> u64 {
        (index as u64).wrapping_mul(7_919).wrapping_add(1) % PERIOD as u64
    }

    /// The bytes at `offset..offset + len` of the stream starting at `seed`.
    /// `len` must be at most [`MAX_SLICE`].
    pub fn slice(&self, seed: u64, offset: u64, len: usize) -> &[u8] {
        assert!(len <= MAX_SLICE, "pattern slice longer than MAX_SLICE");
        let start = ((seed + offset % PERIOD as u64) % PERIOD as u64) as usize;
        &self.table[start..start + len]
    }

    /// Fills `out` with the stream from `offset`, any length.
    pub fn fill(&self, seed: u64, offset: u64, out: &mut [u8]) {
        for (i, chunk) in out.chunks_mut(MAX_SLICE).enumerate() {
            let at = offset + (i * MAX_SLICE) as u64;
            chunk.copy_from_slice(self.slice(seed, at, chunk.len()));
        }
    }

    /// The index in `data` of the first byte that differs from the stream at
    /// `offset`, if any.
    pub fn first_mismatch(&self, seed: u64, offset: u64, data: &[u8]) -> Option<usize> {
        for (i, chunk) in data.chunks(MAX_SLICE).enumerate() {
            let at = offset + (i * MAX_SLICE) as u64;
            let expected = self.slice(seed, at, chunk.len());
            if chunk != expected {
                let j = chunk.iter().zip(expected).position(|(a, b)| a != b)?;
                return Some(i * MAX_SLICE + j);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_agree_across_the_period_boundary() {
        let p = Pattern::new();
        let mut long = vec![0; 3 * PERIOD];
        p.fill(5, 0, &mut long);
        for off in [0u64, 1, 65_000, PERIOD as u64 - 1, PERIOD as u64 + 7] {
            assert_eq!(
                p.slice(5, off, 100),
                &long[off as usize..off as usize + 100]
            );
        }
    }

    #[test]
    fn detects_a_flipped_byte_and_a_shift() {
        let p = Pattern::new();
        let mut data = vec![0; 200_000];
        p.fill(9, 1234, &mut data);
        assert_eq!(p.first_mismatch(9, 1234, &data), None);
        data[150_000] ^= 1;
        assert_eq!(p.first_mismatch(9, 1234, &data), Some(150_000));
        assert!(p.first_mismatch(9, 1235, &data[..1000]).is_some());
        assert!(p.first_mismatch(10, 1234, &data[..1000]).is_some());
    }

    #[test]
    fn neighbouring_connections_start_apart() {
        assert_ne!(Pattern::stream_seed(0), Pattern::stream_seed(1));
    }
}
