//! Initial parameter values from a seed.
//!
//! Every initialiser is one ChaCha8 stream per parameter, read in element
//! order: a normal value takes four 32-bit words (two uniform `f64`s for
//! Box-Muller), a uniform one two, a constant none. Because the stream is
//! seekable, a large table is filled in parallel chunks, each starting at
//! its first element's word, and holds the same values to the bit as the
//! one-at-a-time stream ([`init_iter`]).

use causalrec_sdk::{Init, InitKind};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// An initialiser for a parameter of a given shape.
#[derive(Clone, Copy)]
struct Stream {
    kind: InitKind,
    scale: f64,
    /// The uniform initialisers' bound.
    bound: f64,
}

impl Stream {
    fn new(init: Init, shape: &[usize]) -> Self {
        let bound = match init.kind {
            InitKind::Xavier => {
                let (fan_in, fan_out) = match shape.len() {
                    0 => (1, 1),
                    1 => (shape[0], shape[0]),
                    k => (shape[k - 2], shape[k - 1]),
                };
                init.scale * (6.0 / (fan_in + fan_out).max(1) as f64).sqrt()
            }
            _ => init.scale,
        };
        Stream {
            kind: init.kind,
            scale: init.scale,
            bound,
        }
    }

    /// The 32-bit words of the stream one value takes.
    fn words_per_value(&self) -> u128 {
        match self.kind {
            InitKind::Normal => 4,
            InitKind::Uniform | InitKind::Xavier => 2,
            InitKind::Zeros | InitKind::Ones | InitKind::Constant => 0,
        }
    }

    /// The stream of `seed`, placed at value `index`.
    fn rng_at(&self, seed: u64, index: usize) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        if index > 0 {
            rng.set_word_pos(index as u128 * self.words_per_value());
        }
        rng
    }

    /// The next value.
    #[inline]
    fn value(&self, rng: &mut ChaCha8Rng) -> f64 {
        match self.kind {
            InitKind::Zeros => 0.0,
            InitKind::Ones => 1.0,
            InitKind::Constant => self.scale,
            InitKind::Normal => standard_normal(rng) * self.scale,
            InitKind::Uniform | InitKind::Xavier => (rng.random::<f64>() * 2.0 - 1.0) * self.bound,
        }
    }
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Values of an initialiser for `n` elements of a parameter of the given shape.
pub fn init_values(init: Init, shape: &[usize], seed: u64) -> Vec<f64> {
    init_iter(init, shape, seed).collect()
}

/// [`init_values`] one value at a time.
pub fn init_iter(init: Init, shape: &[usize], seed: u64) -> impl Iterator<Item = f64> {
    let n: usize = shape.iter().product();
    let stream = Stream::new(init, shape);
    let mut rng = stream.rng_at(seed, 0);
    (0..n).map(move |_| stream.value(&mut rng))
}

/// [`init_iter`]'s values as `f32`, made in parallel chunks of
/// [`INIT_CHUNK`] values (the same values on any number of threads): a
/// 10^7 x 64 table's normal values took 35 s on one thread.
pub fn init_f32(init: Init, shape: &[usize], seed: u64) -> Vec<f32> {
    use rayon::prelude::*;
    let n: usize = shape.iter().product();
    let stream = Stream::new(init, shape);
    // Zeroed pages, faulted in by the threads that fill them.
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(INIT_CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut rng = stream.rng_at(seed, c * INIT_CHUNK);
            for x in chunk {
                *x = stream.value(&mut rng) as f32;
            }
        });
    out
}

/// Values per parallel chunk of [`init_f32`].
const INIT_CHUNK: usize = 1 << 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_made_in_parallel_hold_the_one_stream_s_values() {
        // Past three chunk boundaries, for each initialiser.
        let n = 3 * INIT_CHUNK + 5;
        for kind in [
            InitKind::Normal,
            InitKind::Uniform,
            InitKind::Xavier,
            InitKind::Zeros,
            InitKind::Constant,
        ] {
            let init = Init { kind, scale: 0.3 };
            let shape = [n / 5, 5];
            let serial: Vec<f32> = init_iter(init, &shape, 17).map(|x| x as f32).collect();
            let parallel = init_f32(init, &shape, 17);
            assert_eq!(serial.len(), n / 5 * 5);
            assert!(
                serial
                    .iter()
                    .zip(&parallel)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{kind:?}"
            );
            // The values are the initialiser's: a normal's spread is its scale.
            if kind == InitKind::Normal {
                let var = serial.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / n as f64;
                assert!((var.sqrt() - 0.3).abs() < 0.005, "sd {}", var.sqrt());
            }
        }
    }
}
