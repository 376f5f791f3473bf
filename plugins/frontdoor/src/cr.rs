//! CR (Wang et al. SIGIR'21, "Clicks can be Cheating: Counterfactual
//! Recommendation for Mitigating Clickbait Issue", arXiv 2009.09945), the
//! clickbait baseline of HCR's Table 2: a click model whose exposure
//! features (e.g. the title) have a direct effect on the click, and a
//! counterfactual inference that removes that direct effect.
//!
//! One multi-modal backbone (role `main`, MMGCN as in the paper). In the
//! paper's causal graph the user `U`, the item content `I` and the exposure
//! features `E` give the user-item matching `K`, and `E` also affects the
//! click `Y` directly. With `Y(x)` the inner product of the user's and the
//! item's representations fused over the modalities `x` (mean; see
//! [`crate::modal`]), `z` every modality and `e` the exposure modality
//! (`exposure`):
//! - matching score `Y_k = Y(z)` (the authors' code: the mean of the
//!   visual, acoustic and textual representations, the exposure modality
//!   included) and exposure score `Y_e = Y(e)` (their code: the caption's
//!   representation alone, from the same graph network);
//! - multiplication fusion: `Y_{u,i,e} = Y_k * sigma(Y_e)`.
//!
//! Training (multi-task): the recipe's loss of the fused `Y_{u,i,e}`
//! against the click label plus `alpha` times the recipe's loss of the
//! exposure-only branch `Y_e` against the click label (the paper tunes
//! `alpha` in {1, 2, 3, 5}; the authors' code uses BPR for both terms).
//!
//! Inference (`inference`):
//! - `tie` (CR's ranking): the total indirect effect
//!   `TIE = TE - NDE = Y_{i,e} - Y_{i*,e}`: the factual prediction minus
//!   the prediction in the counterfactual world where the item's content
//!   takes the reference value and only the exposure features act,
//!   `TIE = (Y_k - Y_{k*}) * sigma(Y_e)`. The reference `Y_{k*}` of a user
//!   is the mean of `Y_k` over every item (the authors' inference
//!   subtracts each user's mean matching score over all items); `Y` is
//!   linear in the item representation, so this is the matching with the
//!   mean fused item representation of all items;
//! - `factual`: the fused click model `Y_{u,i,e}` itself, for comparison.
//!
//! Choices, where the paper and code leave room: the equation numbers of
//! the paper could not be checked here (only the authors' code was at
//! hand), so the parts are named rather than numbered; the loss is the
//! recipe's (BCE in the HCR recipe) instead of the code's BPR; the
//! reference is the mean over the *representations* of every item (after
//! graph propagation), as the code computes it, not the representation of
//! mean raw features.
//!
//! `score_all` scores every item from the backbone's all-item modality
//! outputs (`all_modality:<m>`, see [`modal::has_all_items`]); per-pair
//! TIE scoring reads the reference from the backbone's `score_all` of the
//! fused user representation (MMGCN: `<u, sum_m i_m>` for every item, so
//! the mean over items divided by the number of modalities is `Y_{k*}`),
//! one whole-graph propagation per batch.

use causalrec_sdk::{
    BackboneHandle, Backbones, ComponentDef, Ctx, Emb, EstimatorImpl, LossHandle, ParamSpec,
    Params, Result, Var,
};

use crate::modal;

/// Which estimate ranks items.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Inference {
    /// `(Y_k - Y_{k*}) * sigma(Y_e)`.
    Tie,
    /// `Y_k * sigma(Y_e)`.
    Factual,
}

pub struct Cr {
    exposure: String,
    alpha: f64,
    inference: Inference,
}

fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "exposure",
            "",
            "the exposure modality e (an item modality field without `item.`, e.g. title)",
        ),
        ParamSpec::new(
            "alpha",
            1.0,
            "weight of the exposure-only branch's loss (paper grid 1, 2, 3, 5)",
        ),
        ParamSpec::new(
            "inference",
            "tie",
            "tie (counterfactual: TIE, CR's ranking) or factual (the fused click model)",
        ),
    ]
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "cr",
        "CR (Wang et al. 2021): clickbait-aware click model Y_k * sigmoid(Y_e) on a multi-modal backbone, ranked by the counterfactual total indirect effect",
        params(),
        make,
    )
    .with_estimand(
        "the total indirect effect of the item (its content) on clicks, i.e. the click prediction with the direct effect of exposure features (clickbait) subtracted counterfactually",
    )
}

fn make(p: &Params) -> Result<Cr> {
    let inference = match p.string("inference")?.as_str() {
        "tie" => Inference::Tie,
        "factual" => Inference::Factual,
        other => {
            return Err(format!(
                "cr: inference must be tie or factual, got '{other}'"
            ))
        }
    };
    let exposure = p.string("exposure")?;
    if exposure.is_empty() {
        return Err(
            "cr needs `exposure`: the modality the user sees before clicking (e.g. the title)"
                .into(),
        );
    }
    let alpha = p.non_negative("alpha")?;
    Ok(Cr {
        exposure,
        alpha,
        inference,
    })
}

/// The scores of one forward pass (`[B]`, or `[B, n_items]` in an
/// all-ranking batch).
struct Scores<'c> {
    /// `Y_k = Y(z)`.
    k: Var<'c>,
    /// `Y_e = Y(e)`.
    e: Var<'c>,
}

impl Cr {
    fn scores<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<(Scores<'c>, Vec<String>)> {
        let mods = modal::modalities(emb);
        let (e, _) = modal::split(&mods, &self.exposure, "cr")?;
        let all: Vec<&str> = mods.iter().map(String::as_str).collect();
        let s = Scores {
            k: modal::score(g, emb, &all)?,
            e: modal::score(g, emb, &[e])?,
        };
        Ok((s, mods))
    }

    /// `Y_{k*}` of the batch's users: the mean of `Y_k` over every item,
    /// `[B, 1]` in an all-ranking batch (from the scores at hand), `[B]`
    /// for pairs (from the backbone's all-item scores).
    fn reference<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        b: &BackboneHandle<'_>,
        emb: &Emb,
        mods: &[String],
        k: Var<'c>,
    ) -> Result<Var<'c>> {
        if modal::has_all_items(emb) {
            return Ok(k.mean_keepdim(1));
        }
        let all: Vec<&str> = mods.iter().map(String::as_str).collect();
        let u = modal::user_rep(g, emb, &all)?;
        let every = b.score_all(g, u)?.ok_or(
            "cr: TIE inference needs the reference over every item, and the backbone cannot score every item (score_all); use mmgcn",
        )?;
        Ok(every.mean(1) * (1.0 / mods.len() as f64))
    }
}

impl EstimatorImpl for Cr {
    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let emb = bb.main()?.embed(g)?;
        let (s, _) = self.scores(g, &emb)?;
        let (click, w) = (g.input("label"), g.try_input("weight"));
        let fused = s.k * s.e.sigmoid();
        Ok(vec![
            (
                "click".into(),
                loss.compute(g, &[("logit", fused)], click, w)?,
            ),
            (
                "exposure".into(),
                loss.compute(g, &[("logit", s.e)], click, w)? * self.alpha,
            ),
        ])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let b = bb.main()?;
        let emb = b.embed(g)?;
        let (s, mods) = self.scores(g, &emb)?;
        match self.inference {
            Inference::Factual => Ok(s.k * s.e.sigmoid()),
            Inference::Tie => {
                let k_ref = self.reference(g, &b, &emb, &mods, s.k)?;
                Ok((s.k - k_ref) * s.e.sigmoid())
            }
        }
    }

    /// The all-ranking batch holds users only; MMGCN then gives every
    /// item's modality representations (else `None`: the host scores pairs).
    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        let b = bb.main()?;
        let emb = b.embed(g)?;
        if !modal::has_all_items(&emb) {
            return Ok(None);
        }
        let (s, mods) = self.scores(g, &emb)?;
        Ok(Some(match self.inference {
            Inference::Factual => s.k * s.e.sigmoid(),
            Inference::Tie => (s.k - self.reference(g, &b, &emb, &mods, s.k)?) * s.e.sigmoid(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ron: &str) -> Result<Cr> {
        make(&Params::parse("cr", &params(), ron).unwrap())
    }

    #[test]
    fn parameters_are_checked() {
        let cr = parse(r#"{"exposure": "title"}"#).unwrap();
        assert_eq!(cr.inference, Inference::Tie);
        assert_eq!(cr.alpha, 1.0);
        let cr = parse(r#"{"exposure": "title", "alpha": 3.0, "inference": "factual"}"#).unwrap();
        assert_eq!((cr.inference, cr.alpha), (Inference::Factual, 3.0));
        let e = parse("{}").err().unwrap();
        assert!(e.starts_with("cr") && e.contains("exposure"), "{e}");
        let e = parse(r#"{"exposure": "title", "inference": "nde"}"#)
            .err()
            .unwrap();
        assert!(
            e.contains("cr") && e.contains("inference") && e.contains("tie or factual"),
            "{e}"
        );
        for bad in ["-1.0", "NaN"] {
            let e = parse(&format!(r#"{{"exposure": "title", "alpha": {bad}}}"#))
                .err()
                .unwrap();
            assert!(e.contains("cr") && e.contains("alpha"), "{e}");
        }
    }
}
