//! A small, fixed-algorithm random generator, so a seed means the same run on every machine
//! and every version: xoshiro256++ seeded through SplitMix64 (Blackman & Vigna).

/// xoshiro256++; one independent stream per (seed, stream number).
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator for `stream` (e.g. a site's number) under `seed`.
    pub fn new(seed: u64, stream: u64) -> Rng {
        let mut st = seed ^ splitmix(&mut stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let s = [
            splitmix(&mut st),
            splitmix(&mut st),
            splitmix(&mut st),
            splitmix(&mut st),
        ];
        Rng { s }
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

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential with the given rate (per second); infinite for rate 0.
    pub fn exp(&mut self, rate: f64) -> f64 {
        if rate <= 0.0 {
            return f64::INFINITY;
        }
        -(1.0 - self.uniform()).ln() / rate
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(42, 7);
                move |_| r.next_u64()
            })
            .collect();
        let mut again = Rng::new(42, 7);
        assert!(a.iter().all(|x| *x == again.next_u64()));
        assert_ne!(Rng::new(42, 8).next_u64(), a[0]);
        assert_ne!(Rng::new(43, 7).next_u64(), a[0]);
    }

    #[test]
    fn moments_are_right() {
        let mut r = Rng::new(1, 0);
        let n = 200_000;
        let mean_u: f64 = (0..n).map(|_| r.uniform()).sum::<f64>() / n as f64;
        let mean_e: f64 = (0..n).map(|_| r.exp(4.0)).sum::<f64>() / n as f64;
        let var_n: f64 = (0..n).map(|_| r.normal().powi(2)).sum::<f64>() / n as f64;
        assert!((mean_u - 0.5).abs() < 0.005);
        assert!((mean_e - 0.25).abs() < 0.005);
        assert!((var_n - 1.0).abs() < 0.02);
        assert_eq!(r.exp(0.0), f64::INFINITY);
    }
}
