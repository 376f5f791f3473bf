//! DIB (Liu, Cheng, Zhu, Dong, He, Pan and Ming, "Mitigating confounding bias in
//! recommendation via information bottleneck", RecSys 2021), on any backbone.
//!
//! Every embedding is split into an unbiased component `z` and a biased
//! component `c` (the authors' code: `z` and `c` are separate halves of a
//! doubled embedding, `[z, 0]` and `[0, c]`, fed to one shared predictor
//! `f`). Here the backbone's embeddings are the doubled ones: `z` is their
//! even coordinates, `c` their odd coordinates ([`crate::hook::masked`]),
//! and `f` is the backbone's own predictor, so `f(z, c)` is the plain
//! forward pass. Scalar hook points (biases, FM's first-order sum) belong
//! to `z`. With `L` the recipe's loss, the objective is
//!
//! `L_DIB = (1 - alpha) L(f(z), y) - gamma L(f(c), y) + alpha L(f(z, c), y)`:
//! `z` alone must predict, `c` alone must not (the information bottleneck
//! pushes the bias into `c`), and both together fit the biased feedback.
//! Inference uses `f(z)`. The paper's ranges: alpha in [0.1, 0.2], gamma
//! in [0.001, 0.005].
//!
//! `score_all` is not offered: the backbone's all-item path reads the item
//! tables unmasked, so the host scores (user, item) pairs instead.

use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, LossHandle, ParamSpec, Params, Result, Var,
};

use crate::hook::{masked, Half};

pub struct Dib {
    alpha: f64,
    gamma: f64,
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "dib",
        "DIB (Liu et al. RecSys 2021): embeddings split into unbiased z and biased c; (1 - alpha) L(f(z)) - gamma L(f(c)) + alpha L(f(z, c)); inference f(z)",
        vec![
            ParamSpec::new(
                "alpha",
                0.15,
                "weight of the loss of the whole embedding f(z, c) (paper: 0.1 to 0.2)",
            ),
            ParamSpec::new(
                "gamma",
                0.003,
                "weight of the (maximised) loss of the biased component f(c) (paper: 0.001 to 0.005)",
            ),
        ],
        |p: &Params| {
            let alpha = p.non_negative("alpha")?;
            if alpha > 1.0 {
                return Err(format!(
                    "dib: parameter 'alpha' must be in [0, 1], got {alpha}"
                ));
            }
            Ok(Dib {
                alpha,
                gamma: p.non_negative("gamma")?,
            })
        },
    )
    .with_estimand(
        "the unbiased preference f(z): the part z of the embeddings from which the biased part c, which absorbs the confounding, has been separated",
    )
}

impl EstimatorImpl for Dib {
    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let b = bb.main()?;
        let emb = b.embed(g)?;
        let s_zc = b.forward_from(g, &emb)?;
        let s_z = b.forward_from(g, &masked(g, &emb, Half::Even)?)?;
        let s_c = b.forward_from(g, &masked(g, &emb, Half::Odd)?)?;
        Ok(vec![
            ("z".into(), loss.on_labels(g, s_z)? * (1.0 - self.alpha)),
            ("c".into(), loss.on_labels(g, s_c)? * -self.gamma),
            ("zc".into(), loss.on_labels(g, s_zc)? * self.alpha),
        ])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let b = bb.main()?;
        let emb = b.embed(g)?;
        b.forward_from(g, &masked(g, &emb, Half::Even)?)
    }
}
