//! Latency percentiles in fixed memory: a log-linear histogram (the
//! HdrHistogram idea) of nanoseconds, 32 linear steps per power of two, so
//! any percentile it reports is within 1/32 (3.1 %) of the exact one and a
//! run of any length costs the same 16 KiB.

/// Sub-buckets per power of two (2^SUB_BITS).
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Values below SUB are counted exactly; above, 59 powers of two remain.
const BUCKETS: usize = SUB + (64 - SUB_BITS as usize) * SUB;

/// A histogram of latencies in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            sum: 0,
        }
    }
}

/// The bucket of `v`: exact below SUB, else the power of two and the next
/// SUB_BITS bits below the leading one.
fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let top = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = top - SUB_BITS;
    let mantissa = ((v >> shift) as usize) & (SUB - 1);
    SUB + (shift as usize) * SUB + mantissa
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let shift = ((i - SUB) / SUB) as u32;
    let mantissa = ((i - SUB) % SUB) as u64;
    let low = (SUB as u64 + mantissa) << shift;
    low + ((1u64 << shift) - 1)
}

impl Histogram {
    /// Count one latency.
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
        self.sum += ns as u128;
    }

    /// Add another histogram's counts (one per job thread).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The mean in nanoseconds (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The largest latency counted.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The `p`-th percentile (0 < p <= 100) by nearest rank: the smallest
    /// value with at least p % of the counts at or below it, reported as
    /// its bucket's upper bound (never above the maximum seen). 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = rank(p, self.total);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

/// The nearest rank of percentile `p` among `n` values (1-based).
fn rank(p: f64, n: u64) -> u64 {
    let p = p.clamp(f64::MIN_POSITIVE, 100.0);
    // p * n / 100 in floating point can land a hair above a whole rank
    // (99.9 % of 1000 is 999.0000000000001): round that away first.
    let exact = p * n as f64 / 100.0;
    let r = if (exact - exact.round()).abs() < 1e-9 {
        exact.round()
    } else {
        exact.ceil()
    };
    (r as u64).clamp(1, n)
}

/// The exact nearest-rank percentile of sorted `values` (for checking the
/// histogram, and for small sample sets).
pub fn exact_percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[rank(p, sorted.len() as u64) as usize - 1]
}

/// The percentiles every result reports, and the points of its CDF.
pub const REPORTED: &[f64] = &[50.0, 99.0, 99.9];
/// Points of the latency CDF drawn by `--plot`.
pub const CDF_POINTS: &[f64] = &[
    1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: reproducible test data without a dependency.
    struct Rng(u64);
    impl Rng {
        fn random_range(&mut self, r: std::ops::Range<u64>) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            r.start + (z ^ (z >> 31)) % (r.end - r.start)
        }
    }

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = None;
        for i in 0..BUCKETS {
            let u = upper(i);
            if let Some(l) = last {
                assert!(u > l, "bucket {i} upper {u} not above {l}");
            }
            assert_eq!(index(u), i, "upper bound of {i} falls elsewhere");
            if i > 0 {
                assert_eq!(index(upper(i - 1) + 1), i);
            }
            last = Some(u);
        }
        assert_eq!(upper(BUCKETS - 1), u64::MAX);
        for v in [0, 1, 31, 32, 33, 63, 64, 1000, 1 << 40, u64::MAX] {
            let i = index(v);
            assert!(v <= upper(i) && (i == 0 || v > upper(i - 1)), "{v}");
        }
    }

    #[test]
    fn nearest_rank_as_textbooks_define_it() {
        // The classic example: 15, 20, 35, 40, 50.
        let v = [15, 20, 35, 40, 50];
        assert_eq!(exact_percentile(&v, 5.0), 15);
        assert_eq!(exact_percentile(&v, 30.0), 20);
        assert_eq!(exact_percentile(&v, 40.0), 20);
        assert_eq!(exact_percentile(&v, 50.0), 35);
        assert_eq!(exact_percentile(&v, 100.0), 50);
        assert_eq!(exact_percentile(&[], 50.0), 0);
        // p99.9 of 1000 values is the 999th, of 999 values the last.
        let s: Vec<u64> = (1..=1000).collect();
        assert_eq!(exact_percentile(&s, 99.9), 999);
        assert_eq!(exact_percentile(&s[..999], 99.9), 999);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in [15u64, 20, 3, 7, 30] {
            h.record(v);
        }
        let mut s = [15u64, 20, 3, 7, 30];
        s.sort();
        for p in [1.0, 20.0, 40.0, 50.0, 60.0, 80.0, 99.0, 100.0] {
            assert_eq!(h.percentile(p), exact_percentile(&s, p), "p{p}");
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.max(), 30);
        assert_eq!(h.mean(), 15.0);
    }

    #[test]
    fn percentiles_within_one_thirty_second_of_exact() {
        let mut rng = Rng(7);
        for shape in 0..3 {
            let mut h = Histogram::default();
            let mut parts = [Histogram::default(), Histogram::default()];
            let mut all = Vec::new();
            for i in 0..20_000 {
                let v: u64 = match shape {
                    0 => rng.random_range(1_000..200_000),
                    // Long tail: most fast, a few 100x slower.
                    1 if i % 500 == 0 => rng.random_range(5_000_000..50_000_000),
                    1 => rng.random_range(20_000..40_000),
                    _ => rng.random_range(0..u32::MAX as u64) << rng.random_range(0..20),
                };
                h.record(v);
                parts[i % 2].record(v);
                all.push(v);
            }
            all.sort();
            let mut merged = parts[0].clone();
            merged.merge(&parts[1]);
            for &p in CDF_POINTS.iter().chain(REPORTED) {
                let exact = exact_percentile(&all, p);
                let got = h.percentile(p);
                assert!(
                    got >= exact,
                    "shape {shape} p{p}: {got} below exact {exact}"
                );
                assert!(
                    (got - exact) as f64 <= exact as f64 / 32.0 + 1.0,
                    "shape {shape} p{p}: {got} vs exact {exact}"
                );
                assert_eq!(merged.percentile(p), got, "merge changed p{p}");
            }
            assert_eq!(h.percentile(100.0), *all.last().unwrap());
            assert_eq!(merged.count(), 20_000);
        }
    }

    #[test]
    fn an_empty_histogram_reports_zero() {
        let h = Histogram::default();
        assert_eq!(h.percentile(99.0), 0);
        assert_eq!(h.mean(), 0.0);
    }
}
