//! Treatment reconstruction (IV4Rec+ Eq. 4-6 and 10-12), shared by every
//! variant:
//!
//! - decomposition: the fitted part `t_hat = f_proj(z)` (an MLP from the
//!   instrument to the treatment; IV4Rec's least squares is in
//!   [`crate::ls`]) and the residual `t_tilde = t - t_hat`;
//! - combination: `t_re = t_hat + alpha * t_tilde`, with
//!   `alpha = sigmoid(f_weight([t_hat ; t]))` learned per vector (an MLP
//!   with a sigmoid output), or a fixed number (the ablations "without
//!   residual", alpha = 0, and "fixed alpha"). Alpha = 0 follows the
//!   paper's "detach" trick (section 6.4.4): `t_re = t_hat + t_tilde -
//!   stopgrad(t_tilde)`, whose value is `t_hat` while the treatment keeps the
//!   gradient of the outcome loss (through `t_tilde`) and `f_proj` is then
//!   fitted by `L_IV` alone (its two paths to the output cancel);
//! - the IV regression loss term `||t_hat - stopgrad(t)||^2` (Eq. 17): the
//!   treatments are the regression's target, so no gradient reaches the
//!   backbone's embeddings from it.

use causalrec_sdk::nn::{Act, Mlp};
use causalrec_sdk::{Ctx, Params, Result, Var};

/// How the residual is weighted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Alpha {
    /// `alpha = sigmoid(f_weight([t_hat ; t]))` (the paper).
    Learned,
    /// A fixed weight in `[0, 1]` (0 = without residual).
    Fixed(f64),
}

impl Alpha {
    /// Parameter `alpha`: `"learned"` or a number in `[0, 1]`.
    pub fn from_params(p: &Params, who: &str) -> Result<Alpha> {
        let a = match p.string("alpha") {
            Ok(s) if s == "learned" => return Ok(Alpha::Learned),
            Ok(s) => s.trim().parse::<f64>().map_err(|_| {
                format!(
                    "{who}: parameter 'alpha' must be \"learned\" or a number in [0, 1], got {s:?}"
                )
            })?,
            Err(_) => p.f64("alpha")?,
        };
        if !(0.0..=1.0).contains(&a) {
            return Err(format!(
                "{who}: parameter 'alpha' must be \"learned\" or a number in [0, 1], got {a}"
            ));
        }
        Ok(Alpha::Fixed(a))
    }
}

/// The combination step (Eq. 6 / 12) for treatments of width `dim`.
#[derive(Clone, Debug)]
pub struct Combine {
    weight: Mlp,
    alpha: Alpha,
}

impl Combine {
    /// `f_weight` named `name`, hidden sizes `hidden`, over `[t_hat ; t]` of width `2 dim`.
    pub fn new(name: &str, dim: usize, hidden: &[usize], alpha: Alpha, dropout: f64) -> Combine {
        let mut sizes = vec![2 * dim];
        sizes.extend_from_slice(hidden);
        sizes.push(1);
        Combine {
            weight: Mlp::new(name, &sizes, Act::Relu, dropout).linear_output(),
            alpha,
        }
    }

    /// `t_re = t_hat + alpha (t - t_hat)` over the last dim of `t`, `t_hat` (`[.., d]`).
    pub fn apply<'c>(&self, g: &'c Ctx<'_, '_>, t: Var<'c>, t_hat: Var<'c>) -> Var<'c> {
        let residual = t - t_hat;
        match self.alpha {
            // Section 6.4.4's "detach" trick for the ablation without the
            // residual: the forward value is t_hat, and the treatment still
            // gets the outcome's gradient through the residual (dropping it
            // outright would leave the backbone's item table untrained).
            Alpha::Fixed(0.0) => t_hat + residual - residual.detach(),
            Alpha::Fixed(a) => t_hat + residual * a,
            Alpha::Learned => {
                let last = t.shape().len() as i64 - 1;
                let a = self
                    .weight
                    .forward(g, g.concat(&[t_hat, t], last))
                    .sigmoid();
                t_hat + residual * a
            }
        }
    }
}

/// `f_proj`: an MLP from the instrument (`d_q`) to the treatment (`d`).
pub fn projection(name: &str, dq: usize, hidden: &[usize], dim: usize, dropout: f64) -> Mlp {
    let mut sizes = vec![dq];
    sizes.extend_from_slice(hidden);
    sizes.push(dim);
    Mlp::new(name, &sizes, Act::Relu, dropout).linear_output()
}

/// Squared error `||t_hat - stopgrad(t)||^2` summed over the last dim: `[..]`.
pub fn regression_error<'c>(t: Var<'c>, t_hat: Var<'c>) -> Var<'c> {
    let last = t.shape().len() as i64 - 1;
    let d = t_hat - t.detach();
    (d * d).sum(last)
}
