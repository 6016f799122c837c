//! A small seeded random number generator (xoshiro256++ seeded through SplitMix64).
//!
//! Written here rather than taken from `rand` so that the same seed gives the same numbers on every
//! machine and with every version of this crate's dependencies: shuffles and initial weights are
//! part of what a seed promises.

/// A seeded generator. The same seed gives the same sequence everywhere.
///
/// ```
/// let mut a = minibatch::Rng::new(7);
/// let mut b = minibatch::Rng::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.uniform(-1.0, 1.0) < 1.0);
/// ```
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        Rng { s: [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)] }
    }

    /// A generator for one stream of a seed (an epoch, a worker): independent of the other streams.
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        let mut x = stream;
        Self::new(seed ^ splitmix64(&mut x))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform float in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// A standard normal float (mean 0, standard deviation 1), by the Box-Muller transform.
    pub fn normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let (u, v) = (1.0 - self.next_f64(), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A draw from the gamma distribution of shape `shape` (> 0) and scale 1, by Marsaglia and
    /// Tsang's method (for a shape below 1, a draw of shape + 1 times `u^(1/shape)`).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = 1.0 - self.next_f64();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.next_f64();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// A draw from the beta distribution `Beta(a, b)` (both > 0), in `[0, 1]`: `x / (x + y)` of two
    /// gamma draws. MixUp's mixing weight is `Beta(alpha, alpha)`.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        if x + y == 0.0 {
            // Both underflowed (tiny shapes): the distribution's mass is at the two ends.
            return if self.next_f64() < a / (a + b) { 1.0 } else { 0.0 };
        }
        x / (x + y)
    }

    /// A random permutation of `0..n` (Fisher-Yates): PyTorch's `randperm`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            v.swap(i, self.below(i + 1));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beta_draws_have_the_distributions_mean_and_variance() {
        // Beta(a, b): mean a / (a + b), variance ab / ((a + b)^2 (a + b + 1)).
        for (a, b) in [(0.4, 0.4), (1.0, 1.0), (2.0, 5.0)] {
            let mut rng = Rng::new(3);
            let n = 200_000;
            let xs: Vec<f64> = (0..n).map(|_| rng.beta(a, b)).collect();
            assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let (m, v) = (a / (a + b), a * b / ((a + b).powi(2) * (a + b + 1.0)));
            assert!((mean - m).abs() < 0.005, "Beta({a}, {b}) mean {mean}, expected {m}");
            assert!((var - v).abs() < 0.003, "Beta({a}, {b}) variance {var}, expected {v}");
        }
    }

    #[test]
    fn permutation_is_a_permutation_and_depends_on_seed() {
        let p = Rng::new(1).permutation(1000);
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        assert_ne!(p, Rng::new(2).permutation(1000));
        assert_eq!(p, Rng::new(1).permutation(1000));
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(3);
        let mut seen = [0usize; 7];
        for _ in 0..7000 {
            seen[r.below(7)] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn streams_differ() {
        assert_ne!(Rng::with_stream(5, 0).next_u64(), Rng::with_stream(5, 1).next_u64());
    }
}
