//! CLUB (Cheng, Hao, Dai, Liu, Gan & Carin, ICML 2020), "A Contrastive
//! Log-ratio Upper Bound of Mutual Information", as CP2Rec-SOLVE uses it
//! (Eq. 7-8) to drive I(z; c) to zero.
//!
//! The variational distribution `q_theta(c | z)` is a diagonal Gaussian
//! whose mean and log-variance are two-layer networks of `z` (ReLU hidden
//! layer; the log-variance head ends in tanh, as in the CLUB authors'
//! estimator). Two terms come out of one batch:
//! - [`Club::upper_bound`], Eq. 8:
//!   `1/I sum_i [log q(c_i | z_i) - 1/I sum_j log q(c_j | z_i)]`. The
//!   Gaussian's normalising constant cancels, leaving
//!   `sum_d [(mu_i - c_i)^2 - 1/I sum_j (mu_i - c_j)^2] / (-2 sigma_i^2)`,
//!   and the inner mean is `(mu_i - c_bar)^2 + var(c)` (the batch mean
//!   and population variance of `c` per dimension), so no `I x I` matrix
//!   is built. `q`'s parameters are held fixed here (stop-gradient): the
//!   bound trains the encoder, not the estimator of the bound.
//! - [`Club::fit_loss`]: the negative log-likelihood (up to constants)
//!   `1/I sum_i sum_d [(mu_i - c_i)^2 / sigma_i^2 + log sigma_i^2]` that
//!   fits `q_theta` alongside, with `z` and `c` held fixed.

use causalrec_sdk::{Ctx, Init, Var};

/// The variational network `q_theta(c | z)` of one CLUB estimator.
#[derive(Clone, Debug)]
pub struct Club {
    /// Parameter name prefix.
    pub name: String,
    /// Width of `z` and of `c`.
    pub dim: usize,
    /// Width of the hidden layer of each head.
    pub hidden: usize,
}

impl Club {
    /// One head: `Linear -> ReLU -> Linear` (then tanh for the log-variance).
    fn head<'c>(&self, g: &'c Ctx<'_, '_>, z: Var<'c>, head: &str, fixed: bool) -> Var<'c> {
        let p = |layer: usize, what: &str, shape: &[usize], init: Init| {
            let v = g.param(&format!("{}.{head}.{layer}.{what}", self.name), shape, init);
            if fixed {
                v.detach()
            } else {
                v
            }
        };
        let w0 = p(0, "weight", &[self.dim, self.hidden], Init::XAVIER);
        let b0 = p(0, "bias", &[self.hidden], Init::ZEROS);
        let w1 = p(1, "weight", &[self.hidden, self.dim], Init::XAVIER);
        let b1 = p(1, "bias", &[self.dim], Init::ZEROS);
        let out = (z.matmul(w0) + b0).relu().matmul(w1) + b1;
        if head == "logvar" {
            out.tanh()
        } else {
            out
        }
    }

    /// Mean and log-variance of `q(c | z)`, each `[B, dim]`.
    pub fn gaussian<'c>(&self, g: &'c Ctx<'_, '_>, z: Var<'c>, fixed: bool) -> (Var<'c>, Var<'c>) {
        (
            self.head(g, z, "mu", fixed),
            self.head(g, z, "logvar", fixed),
        )
    }

    /// Eq. 8's estimate of I(z; c) on the batch, with `q` fixed.
    pub fn upper_bound<'c>(&self, g: &'c Ctx<'_, '_>, z: Var<'c>, c: Var<'c>) -> Var<'c> {
        let (mu, logvar) = self.gaussian(g, z, true);
        let half_precision = (-logvar).exp() * 0.5;
        let positive = (mu - c).square();
        let c_bar = c.mean_keepdim(0);
        let var = (c - c_bar).square().mean_keepdim(0);
        let negative = (mu - c_bar).square() + var;
        ((negative - positive) * half_precision).sum(-1).mean_all()
    }

    /// The fitting loss of `q_theta`, with `z` and `c` fixed.
    pub fn fit_loss<'c>(&self, g: &'c Ctx<'_, '_>, z: Var<'c>, c: Var<'c>) -> Var<'c> {
        let (mu, logvar) = self.gaussian(g, z.detach(), false);
        ((mu - c.detach()).square() * (-logvar).exp() + logvar)
            .sum(-1)
            .mean_all()
    }
}
