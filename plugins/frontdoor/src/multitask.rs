//! The multi-task click/like baselines of HCR's Table 2, on any backbones
//! (MMGCN in the paper): a CTR model (role `ctr`) trained on clicks over the
//! whole batch (the exposure space: clicks and sampled or logged
//! non-clicks) and a CVR model (role `cvr`, the like given a click) that
//! ranks items.
//!
//! - `esmm` (Ma et al. SIGIR'18, Entire Space Multi-task Model):
//!   `pCTCVR = pCTR * pCVR` trained against `click * like` over the whole
//!   space, next to the CTR loss; the CVR tower is never trained on the
//!   clicked subset alone.
//! - `multi_ipw` (Zhang et al. WWW'20, "Large-scale Causal Approaches to
//!   Debiasing Post-click Conversion Rate Estimation with Multi-task
//!   Learning"): the CVR loss on clicked examples weighted by the inverse of
//!   the CTR model's (detached) click probability, averaged over the whole
//!   space: `1/|D| sum_D c * e / p_ctr`.
//! - `multi_dr` (same paper): doubly robust, with an imputation model (role
//!   `imp`) predicting the CVR error `e`: CVR loss
//!   `1/|D| sum_D [e_hat + c (e - e_hat) / p_ctr]`, imputation loss
//!   `1/|D| sum_D c (e - e_hat)^2 / p_ctr` (each with the other's term
//!   detached).
//!
//! Click labels are `label`; like labels the input named by `like`. The CTR
//! loss is the recipe's loss; the CVR terms are cross-entropies. `clip`
//! bounds the click propensity from below.

use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, LossHandle, ParamSpec, Params, Result, Var,
};

use crate::modal::log_sigmoid;
use crate::prob::{bce_each, bce_log_prob, click_like};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Esmm,
    Ipw,
    Dr,
}

pub struct MultiTask {
    kind: Kind,
    like: String,
    clip: f64,
}

fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "like",
            "like",
            "batch input of the like label (`like` for click batches, `inter.<column>` for labelled rows)",
        ),
        ParamSpec::new(
            "clip",
            0.05,
            "lower bound on the click propensity (multi_ipw, multi_dr)",
        ),
    ]
}

fn make(p: &Params, kind: Kind) -> Result<MultiTask> {
    let clip = p.f64("clip")?;
    if !(clip > 0.0 && clip <= 1.0) {
        return Err(format!("clip must be in (0, 1], got {clip}"));
    }
    Ok(MultiTask {
        kind,
        like: p.string("like")?,
        clip,
    })
}

pub fn esmm_def() -> ComponentDef {
    ComponentDef::estimator(
        "esmm",
        "ESMM (Ma et al. 2018): CTR and CTCVR = CTR x CVR trained over the entire exposure space; ranks by CVR",
        params(),
        |p| make(p, Kind::Esmm),
    )
    .with_estimand(
        "the post-click conversion P(like | click, u, i) over the entire exposure space (pCTCVR = pCTR x pCVR), free of the selection on clicks",
    )
}

pub fn ipw_def() -> ComponentDef {
    ComponentDef::estimator(
        "multi_ipw",
        "Multi-IPW (Zhang et al. 2020): CVR loss on clicks weighted by the inverse CTR propensity, multi-task with CTR",
        params(),
        |p| make(p, Kind::Ipw),
    )
    .with_estimand(
        "the post-click conversion over all exposed pairs, the selection on clicks corrected by inverse click propensities",
    )
}

pub fn dr_def() -> ComponentDef {
    ComponentDef::estimator(
        "multi_dr",
        "Multi-DR (Zhang et al. 2020): doubly robust CVR loss with an imputation model of the CVR error, multi-task with CTR",
        params(),
        |p| make(p, Kind::Dr),
    )
    .with_estimand(
        "the post-click conversion over all exposed pairs by a doubly robust estimator (imputed errors plus an inverse-propensity correction)",
    )
}

impl EstimatorImpl for MultiTask {
    fn roles(&self) -> Vec<String> {
        let mut r = vec!["ctr".to_string(), "cvr".to_string()];
        if self.kind == Kind::Dr {
            r.push("imp".into());
        }
        r
    }

    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let who = match self.kind {
            Kind::Esmm => "esmm",
            Kind::Ipw => "multi_ipw",
            Kind::Dr => "multi_dr",
        };
        let (click, like) = click_like(g, &self.like, who)?;
        let ctr = bb.get("ctr")?.forward(g)?.0;
        let cvr = bb.get("cvr")?.forward(g)?.0;
        let mut terms = vec![(
            "ctr".to_string(),
            loss.compute(g, &[("logit", ctr)], click, None)?,
        )];
        match self.kind {
            Kind::Esmm => {
                let ctcvr = log_sigmoid(ctr) + log_sigmoid(cvr);
                terms.push(("ctcvr".into(), bce_log_prob(ctcvr, click * like, None)));
            }
            Kind::Ipw | Kind::Dr => {
                let inv = ctr.sigmoid().detach().clamp(self.clip, 1.0).powf(-1.0);
                let e = bce_each(cvr, like);
                if self.kind == Kind::Ipw {
                    terms.push(("cvr".into(), (click * inv * e).mean_all()));
                } else {
                    let e_hat = bb.get("imp")?.forward(g)?.0;
                    let dr = e_hat.detach() + click * inv * (e - e_hat.detach());
                    terms.push(("cvr".into(), dr.mean_all()));
                    let imp = click * inv * (e.detach() - e_hat).square();
                    terms.push(("imputation".into(), imp.mean_all()));
                }
            }
        }
        Ok(terms)
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.get("cvr")?.forward(g)?.0)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        bb.get("cvr")?.forward_all(g)
    }
}
