//! CVIB (Wang et al., "Information theoretic counterfactual
//! learning from missing-not-at-random feedback", NeurIPS 2020), on any
//! backbone.
//!
//! With `p = sigma(s)` the predictions on the batch's observed pairs and
//! `p_u` those on unobserved pairs, `p_o = mean(p)`, `q = mean(p_u)`:
//!
//! `L = L_obs(s, y) + alpha * -[p_o log q + (1 - p_o) log(1 - q)] + gamma * mean(p log p)`:
//! the recipe's loss on the observed feedback, the balancing cross-entropy
//! between the mean predictions on observed and unobserved pairs (the
//! information-bottleneck term that keeps the representation from encoding
//! whether a pair was observed), and the confidence term on the observed
//! predictions. `q` is clipped to `[1e-7, 1 - 1e-7]` inside the logs.
//!
//! Unobserved pairs: each row's user with the item side of the next batch
//! row ([`crate::hook::shifted_pairs`]); the host shuffles training rows,
//! so these are random (user, item) pairs. The authors draw them uniformly
//! from all pairs; here the items follow the batch's item distribution
//! (with sampled negatives in the batch, partly uniform). Inference is the
//! backbone's score.

use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, LossHandle, ParamSpec, Params, Result, Var,
};

use crate::hook::shifted_pairs;

const EPS: f64 = 1e-7;

pub struct Cvib {
    alpha: f64,
    gamma: f64,
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "cvib",
        "CVIB (Wang et al. NeurIPS 2020): observed loss + alpha * balancing cross-entropy between mean predictions on observed and unobserved pairs + gamma * confidence",
        vec![
            ParamSpec::new(
                "alpha",
                0.1,
                "weight of the balancing term between observed and unobserved pairs",
            ),
            ParamSpec::new(
                "gamma",
                0.01,
                "weight of the confidence term mean(p log p) on observed pairs",
            ),
        ],
        |p: &Params| {
            Ok(Cvib {
                alpha: p.non_negative("alpha")?,
                gamma: p.non_negative("gamma")?,
            })
        },
    )
    .with_estimand(
        "the prediction under no selection bias: observed and unobserved pairs made indistinguishable to the predictor (the counterfactual information bottleneck's balancing term)",
    )
}

/// CVIB's two regularisers from the logits of observed pairs `s` and of
/// unobserved pairs `s_u`: (balancing cross-entropy, mean(p log p)).
pub fn cvib_terms<'c>(s: Var<'c>, s_u: Var<'c>) -> (Var<'c>, Var<'c>) {
    let p = s.sigmoid();
    let p_o = p.mean_all();
    let q = s_u.sigmoid().mean_all().clamp(EPS, 1.0 - EPS);
    let balance = -(p_o * q.log() + p_o.affine(-1.0, 1.0) * q.affine(-1.0, 1.0).log());
    // log p = -softplus(-s), stable for large |s|.
    let confidence = (p * -(-s).softplus()).mean_all();
    (balance, confidence)
}

impl EstimatorImpl for Cvib {
    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let b = bb.main()?;
        let emb = b.embed(g)?;
        let s = b.forward_from(g, &emb)?;
        let s_u = b.forward_from(g, &shifted_pairs(g, &emb)?)?;
        let (balance, confidence) = cvib_terms(s, s_u);
        Ok(vec![
            ("loss".into(), loss.on_labels(g, s)?),
            ("balance".into(), balance * self.alpha),
            ("confidence".into(), confidence * self.gamma),
        ])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.main()?.forward(g)?.0)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        bb.main()?.forward_all(g)
    }
}
