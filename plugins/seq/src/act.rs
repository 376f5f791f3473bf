//! DIN's activations (Zhou et al. 2018, "Deep Interest Network for
//! Click-Through Rate Prediction", Section 4.3, Eq. (8) and (9)).
//!
//! - PReLU (Eq. 8): `f(s) = s` if `s > 0`, else `alpha s`, with one learned
//!   `alpha` per unit (initialised to 0.25).
//! - Dice (Eq. 9): `f(s) = p(s) s + (1 - p(s)) alpha s` with
//!   `p(s) = sigmoid((s - E[s]) / sqrt(Var[s] + eps))`, `eps = 1e-8`, one
//!   learned `alpha` per unit (initialised to 0.25). In training `E[s]` and
//!   `Var[s]` are the mean and (biased) variance of each unit over the
//!   mini-batch, gradients flowing through them; only valid rows count where a
//!   row weight is given (the history's padding does not). At inference they
//!   are moving averages over the training batches (momentum 0.99).
//!
//! The moving averages live in the component (the SDK has no non-trainable
//! state in the host's parameter store), so they are neither checkpointed nor
//! restored: an instance that has not trained (a resumed run's evaluation)
//! normalises by the statistics of the inference batch instead.

use std::collections::HashMap;
use std::sync::Mutex;

use causalrec_sdk::{Ctx, Init, Result, Var};

/// `eps` of Dice's normalisation.
pub const DICE_EPS: f64 = 1e-8;
/// Weight of the old value in the moving averages of Dice's statistics.
pub const MOMENTUM: f64 = 0.99;
/// Initial `alpha` of PReLU and Dice.
pub const ALPHA_INIT: f64 = 0.25;

/// Which activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Dice,
    Prelu,
}

impl Kind {
    /// `dice` or `prelu`.
    pub fn parse(s: &str) -> Result<Kind> {
        match s {
            "dice" => Ok(Kind::Dice),
            "prelu" => Ok(Kind::Prelu),
            other => Err(format!(
                "unknown activation '{other}' (DIN supports dice, prelu)"
            )),
        }
    }
}

/// Moving averages of one Dice layer's statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

impl Moments {
    /// Fold a batch's statistics in (the first batch initialises them).
    pub fn update(old: Option<&Moments>, mean: &[f64], var: &[f64]) -> Moments {
        match old {
            Some(o) if o.mean.len() == mean.len() && o.var.len() == var.len() => {
                let mix = |a: &[f64], b: &[f64]| -> Vec<f64> {
                    a.iter()
                        .zip(b)
                        .map(|(a, b)| MOMENTUM * a + (1.0 - MOMENTUM) * b)
                        .collect()
                };
                Moments {
                    mean: mix(&o.mean, mean),
                    var: mix(&o.var, var),
                }
            }
            _ => Moments {
                mean: mean.to_vec(),
                var: var.to_vec(),
            },
        }
    }
}

/// Dice as a plain function of one unit's values (for tests and documentation):
/// batch statistics of `s`, then Eq. (9).
#[cfg(test)]
pub fn dice_reference(s: &[f64], alpha: f64) -> Vec<f64> {
    let n = s.len().max(1) as f64;
    let mean = s.iter().sum::<f64>() / n;
    let var = s.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    s.iter()
        .map(|&x| {
            let p = 1.0 / (1.0 + (-(x - mean) / (var + DICE_EPS).sqrt()).exp());
            p * x + (1.0 - p) * alpha * x
        })
        .collect()
}

/// An activation with its per-layer state.
pub struct Activation {
    pub kind: Kind,
    moments: Mutex<HashMap<String, Moments>>,
}

impl Activation {
    pub fn new(kind: Kind) -> Activation {
        Activation {
            kind,
            moments: Mutex::new(HashMap::new()),
        }
    }

    /// The moving averages of layer `name`, if it has trained.
    pub fn moments(&self, name: &str) -> Option<Moments> {
        let m = self.moments.lock().unwrap_or_else(|e| e.into_inner());
        m.get(name).cloned()
    }

    /// Apply to `s` `[N, H]`; `weight` `[N, 1]` (1 = the row counts in Dice's
    /// batch statistics) leaves padding rows out.
    pub fn apply<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        name: &str,
        s: Var<'c>,
        weight: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        let h = s.dim(-1);
        let alpha = g.param(&format!("{name}.alpha"), &[h], Init::constant(ALPHA_INIT));
        match self.kind {
            // max(s, 0) + alpha min(s, 0)
            Kind::Prelu => Ok(s.relu() - alpha * (-s).relu()),
            Kind::Dice => {
                if !g.training() {
                    if let Some(m) = self.moments(name).filter(|m| m.mean.len() == h) {
                        let (mean, var) =
                            (g.constant(&m.mean, &[1, h]), g.constant(&m.var, &[1, h]));
                        let p = ((s - mean) * (var + DICE_EPS).powf(-0.5)).sigmoid();
                        // p s + (1 - p) alpha s = s (alpha + p (1 - alpha)).
                        return Ok(s * (p * alpha.affine(-1.0, 1.0) + alpha));
                    }
                } else {
                    // The moving averages, from the batch's statistics (no gradient).
                    self.record(g, name, s.detach(), weight)?;
                }
                // The batch's statistics, gradients flowing through them: one op.
                Ok(s.dice(alpha, weight, DICE_EPS))
            }
        }
    }

    /// Fold the batch's `E[s]` and `Var[s]` (each `[1, H]`, over the rows
    /// of weight 1) into layer `name`'s moving averages.
    fn record<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        name: &str,
        s: Var<'c>,
        weight: Option<Var<'c>>,
    ) -> Result<()> {
        let (mean, var) = match weight {
            Some(w) => {
                let count = w.sum_all().clamp(1.0, f64::INFINITY);
                let mean = (s * w).sum_keepdim(0) / count;
                let var = ((s - mean).square() * w).sum_keepdim(0) / count;
                (mean, var)
            }
            None => {
                let mean = s.mean_keepdim(0);
                (mean, (s - mean).square().mean_keepdim(0))
            }
        };
        let (mv, vv) = (g.values(mean)?, g.values(var)?);
        let mut all = self.moments.lock().unwrap_or_else(|e| e.into_inner());
        let next = Moments::update(all.get(name), &mv, &vv);
        all.insert(name.to_string(), next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_formula_on_a_small_vector() {
        // s = [1, 3]: mean 2, variance 1, so (s - E s) / sqrt(Var s + eps) = [-1, 1]
        // (up to eps); p = [sigmoid(-1), sigmoid(1)] = [0.268941, 0.731059].
        let out = dice_reference(&[1.0, 3.0], 0.5);
        let p0 = 1.0 / (1.0 + 1f64.exp());
        let p1 = 1.0 - p0;
        let want = [
            p0 * 1.0 + (1.0 - p0) * 0.5,
            p1 * 3.0 + (1.0 - p1) * 0.5 * 3.0,
        ];
        for (a, b) in out.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{out:?} vs {want:?}");
        }
        assert!((want[0] - 0.634471).abs() < 1e-6);
        assert!((want[1] - 2.596588).abs() < 1e-6);
        // alpha = 1 makes Dice the identity; a constant unit gives p = 1/2.
        let id = dice_reference(&[-2.0, 0.5, 4.0], 1.0);
        assert!(id
            .iter()
            .zip([-2.0, 0.5, 4.0])
            .all(|(a, b)| (a - b).abs() < 1e-12));
        let flat = dice_reference(&[2.0, 2.0], 0.0);
        assert!(flat.iter().all(|v| (v - 1.0).abs() < 1e-12));
    }

    #[test]
    fn moving_averages_start_at_the_first_batch_then_mix() {
        let m = Moments::update(None, &[1.0, 2.0], &[4.0, 5.0]);
        assert_eq!(m.mean, vec![1.0, 2.0]);
        let m = Moments::update(Some(&m), &[11.0, 2.0], &[4.0, 15.0]);
        assert!((m.mean[0] - 1.1).abs() < 1e-12 && (m.mean[1] - 2.0).abs() < 1e-12);
        assert!((m.var[0] - 4.0).abs() < 1e-12 && (m.var[1] - 5.1).abs() < 1e-12);
        // A layer that changed width starts over.
        let m = Moments::update(Some(&m), &[7.0], &[1.0]);
        assert_eq!(m.mean, vec![7.0]);
    }

    #[test]
    fn activation_names() {
        assert_eq!(Kind::parse("dice").unwrap(), Kind::Dice);
        assert_eq!(Kind::parse("prelu").unwrap(), Kind::Prelu);
        assert!(Kind::parse("relu").unwrap_err().contains("dice, prelu"));
    }
}
