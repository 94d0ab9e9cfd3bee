//! A latency histogram of bounded size: log-linear buckets (32 per power of two, so each
//! bucket is at most ~3% wide) over microseconds, plus the exact maximum. 100k agents over
//! minutes make millions of samples; this keeps a couple of thousand counters instead.

/// Linear sub-buckets per power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Enough buckets for every u64.
const BUCKETS: usize = (SUB as usize) * (64 - SUB_BITS as usize + 1);

/// Counts of values (microseconds) in log-linear buckets.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        self.counts[bucket(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding the sample of rank
    /// ceil(q * n), never above the exact maximum; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = bounds(i);
                return (lo + (hi - lo) / 2).min(self.max);
            }
        }
        self.max
    }
}

/// The bucket of a value: exact below `SUB`, then `SUB` linear steps per power of two.
fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = exp - SUB_BITS;
    let mantissa = (v >> shift) & (SUB - 1);
    (SUB as usize) * (shift as usize + 1) + mantissa as usize
}

/// The lowest and highest value of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let sub = SUB as usize;
    if i < sub {
        return (i as u64, i as u64);
    }
    let shift = (i / sub - 1) as u32;
    let mantissa = (i % sub) as u64;
    let lo = (SUB + mantissa) << shift;
    let width = 1u64 << shift;
    (lo, lo.saturating_add(width - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_contain_their_values() {
        for v in [
            0,
            1,
            31,
            32,
            33,
            63,
            64,
            1000,
            123_456,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let (lo, hi) = bounds(bucket(v));
            assert!(lo <= v && v <= hi, "{v} not in {lo}..={hi}");
            assert!(hi - lo <= v / 16, "bucket of {v} too wide: {lo}..={hi}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread_are_within_a_bucket() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let near = |got: u64, want: u64| {
            let err = got.abs_diff(want) as f64 / want as f64;
            assert!(err < 0.04, "got {got}, want about {want}");
        };
        near(h.quantile(0.5), 5000);
        near(h.quantile(0.99), 9900);
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.count(), 10_000);
    }

    #[test]
    fn small_and_empty_sets() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), 0);
        h.record(7);
        assert_eq!(
            (h.quantile(0.0), h.quantile(0.5), h.quantile(0.99)),
            (7, 7, 7)
        );
        // One slow call among a hundred fast ones is the p99's neighbour, not its value.
        let mut h = Histogram::default();
        (0..99).for_each(|_| h.record(10));
        h.record(5000);
        assert_eq!(h.quantile(0.99), 10);
        assert_eq!(h.quantile(1.0), 5000);
        assert_eq!((h.count(), h.max()), (100, 5000));
    }
}
