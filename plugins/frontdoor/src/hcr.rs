//! HCR (Zhu et al., "Mitigating Hidden Confounding Effects for Causal
//! Recommendation"): front-door adjustment through the click and the
//! integrated user-item features as mediators.
//!
//! Two multi-modal backbones (role `f` = MMGCN1, role `h` = MMGCN2,
//! section 4.1.3; give both `share: "g"` to share the embedding layer as
//! the paper does, or not for HCR-NS). With `Y` the inner product of a
//! user's and an item's representations fused over modalities (mean), `z`
//! every modality, `e` the exposure modality (`exposure`), `c` the content
//! modalities (all but `e`), and each `Y` read as a probability through
//! the sigmoid ("Y(z1) and Y(e1) are the predictive probabilities"):
//! - click model (Eq. 9): `f = sigma(Y(z1)) * sigma(Y(e1))`;
//! - like model on clicked pairs (Eq. 10): `h = h1 * h2`,
//!   `h1 = sigma(Y(z2))`, `h2 = sigma(Y(e2)) * sigma(Y(c2))`.
//!
//! Training (Eq. 6, Algorithm 1): cross-entropy of `f` against the click
//! label over the batch plus `beta` times cross-entropy of `h` against the
//! like label over the batch's clicked examples (the cross-entropy is on
//! the product probabilities, so the recipe's loss is not used).
//!
//! Inference (`inference`), as log-probabilities:
//! - `hcr` (Eq. 11): `f * h1`;
//! - `hcr_t` (Eq. 13): `f * h1 * h2`;
//! - `hcr_s1` (Eq. 14): `f`;
//! - `hcr_s2` (Eq. 15): `h1`.
//!
//! `score_all` scores every item at once from the backbones' all-item
//! modality outputs (`all_modality:<m>`).

use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, Emb, EstimatorImpl, LossHandle, ParamSpec, Params, Result, Var,
};

use crate::modal::{self, log_sigmoid};
use crate::prob::{bce_log_prob, click_like, clicked_only};

/// Which estimate ranks items.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Inference {
    Hcr,
    HcrT,
    HcrS1,
    HcrS2,
}

pub struct Hcr {
    exposure: String,
    beta: f64,
    like: String,
    inference: Inference,
}

fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "exposure",
            "",
            "the exposure modality e (an item modality field without `item.`, e.g. title)",
        ),
        ParamSpec::new("beta", 1.0, "weight of the like task in Eq. 6"),
        ParamSpec::new(
            "like",
            "like",
            "batch input of the like label (`like` for click batches, `inter.<column>` for labelled rows)",
        ),
        ParamSpec::new(
            "inference",
            "hcr",
            "hcr (Eq. 11), hcr_t (Eq. 13), hcr_s1 (Eq. 14) or hcr_s2 (Eq. 15)",
        ),
    ]
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "hcr",
        "HCR (Zhu et al.): front-door adjustment via click and integrated features, multi-task click/like training on two multi-modal backbones",
        params(),
        make,
    )
    .with_estimand(
        "P(like | do(u, i)) by front-door adjustment: the effect of the item through the mediators (the click and the integrated features), with the hidden confounder between item features and likes blocked",
    )
}

fn make(p: &Params) -> Result<Hcr> {
    let inference = match p.string("inference")?.as_str() {
        "hcr" => Inference::Hcr,
        "hcr_t" => Inference::HcrT,
        "hcr_s1" => Inference::HcrS1,
        "hcr_s2" => Inference::HcrS2,
        other => {
            return Err(format!(
                "inference must be hcr, hcr_t, hcr_s1 or hcr_s2, got '{other}'"
            ))
        }
    };
    let exposure = p.string("exposure")?;
    if exposure.is_empty() {
        return Err(
            "hcr needs `exposure`: the modality that drives clicks directly (e.g. the title)"
                .into(),
        );
    }
    let beta = p.non_negative("beta")?;
    Ok(Hcr {
        exposure,
        beta,
        like: p.string("like")?,
        inference,
    })
}

/// The log-probabilities of one forward pass (`[B]` or `[B, n_items]`).
struct Parts<'c> {
    /// `ln f`.
    f: Var<'c>,
    /// `ln h1`.
    h1: Var<'c>,
    /// `ln h2`.
    h2: Var<'c>,
}

impl Hcr {
    fn parts<'c>(&self, g: &'c Ctx<'_, '_>, ef: &Emb, eh: &Emb) -> Result<Parts<'c>> {
        let mods = modal::modalities(ef);
        if modal::modalities(eh) != mods {
            return Err("hcr: the f and h backbones have different modalities".into());
        }
        let (e, c) = modal::split(&mods, &self.exposure, "hcr")?;
        let all: Vec<&str> = mods.iter().map(String::as_str).collect();
        let f = log_sigmoid(modal::score(g, ef, &all)?) + log_sigmoid(modal::score(g, ef, &[e])?);
        let h1 = log_sigmoid(modal::score(g, eh, &all)?);
        let h2 = log_sigmoid(modal::score(g, eh, &[e])?) + log_sigmoid(modal::score(g, eh, &c)?);
        Ok(Parts { f, h1, h2 })
    }

    fn rank<'c>(&self, p: Parts<'c>) -> Var<'c> {
        match self.inference {
            Inference::Hcr => p.f + p.h1,
            Inference::HcrT => p.f + p.h1 + p.h2,
            Inference::HcrS1 => p.f,
            Inference::HcrS2 => p.h1,
        }
    }
}

impl EstimatorImpl for Hcr {
    fn roles(&self) -> Vec<String> {
        vec!["f".into(), "h".into()]
    }

    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        _loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let (click, like) = click_like(g, &self.like, "hcr")?;
        let p = self.parts(g, &bb.get("f")?.embed(g)?, &bb.get("h")?.embed(g)?)?;
        let click_loss = bce_log_prob(p.f, click, None);
        let like_loss = bce_log_prob(p.h1 + p.h2, like, Some(clicked_only(click)));
        Ok(vec![
            ("click".into(), click_loss),
            ("like".into(), like_loss * self.beta),
        ])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let (ef, eh) = (bb.get("f")?.embed(g)?, bb.get("h")?.embed(g)?);
        Ok(self.rank(self.parts(g, &ef, &eh)?))
    }

    /// The all-ranking batch holds users only; multi-modal graph backbones
    /// then give every item's modality representations (else `None`: the
    /// host scores pairs).
    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        let ef = bb.get("f")?.embed(g)?;
        if !modal::has_all_items(&ef) {
            return Ok(None);
        }
        let eh = bb.get("h")?.embed(g)?;
        Ok(Some(self.rank(self.parts(g, &ef, &eh)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        let parse = |ron: &str| make(&Params::parse("hcr", &params(), ron).unwrap());
        assert!(parse(r#"{"exposure": "title"}"#).is_ok());
        let e = parse("{}").err().unwrap();
        assert!(e.contains("exposure"), "{e}");
        let e = parse(r#"{"exposure": "title", "inference": "hcr_x"}"#)
            .err()
            .unwrap();
        assert!(e.contains("hcr_s2"), "{e}");
        let e = parse(r#"{"exposure": "title", "beta": -1.0}"#)
            .err()
            .unwrap();
        assert!(e.contains("beta"), "{e}");
    }
}
