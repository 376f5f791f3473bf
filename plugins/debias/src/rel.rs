//! Rel: relevance maximisation with propensity-weighted labels (Saito,
//! Yaginuma, Nishino, Sakata and Nakata, "Unbiased recommender learning from
//! missing-not-at-random implicit feedback", WSDM 2020; the "Rel" baseline
//! of CP2Rec).
//!
//! A click `y` is exposure times relevance, so `y / theta` (theta the
//! exposure propensity, clipped) is an unbiased estimate of relevance, and
//! the loss is the log loss on that label:
//!
//! `L = mean_b -[ (y_b / theta_b) log sigma(s_b) + (1 - y_b / theta_b) log(1 - sigma(s_b)) ]`,
//!
//! computed as `softplus(s) - (y / theta) s`. The propensities are
//! [`Propensity`]'s (any source: `popularity` as in the paper, `position`,
//! `column`, ...). Inference is the backbone's score.

use causalrec_sdk::propensity::Propensity;
use causalrec_sdk::{ComponentDef, Var};

use crate::ips::{make, Objective};

pub fn def() -> ComponentDef {
    let mut params = Propensity::param_specs();
    // Saito et al. estimate exposure from item popularity.
    for p in params.iter_mut().filter(|p| p.name == "propensity") {
        p.default_ron = "\"popularity\"".into();
    }
    ComponentDef::estimator(
        "rel",
        "Rel (Saito et al. 2020): log loss on propensity-weighted labels y / theta (item-popularity propensities by default)",
        params,
        |p| make(p, Objective::Rel),
    )
    .with_estimand(
        "the loss on true relevance rather than on clicks: with P(click) = P(exposed) P(relevant), clicks weighted by 1 / P(exposed) give an unbiased estimate of the relevance loss",
    )
}

/// The Rel loss of logits `s` `[B]`, labels `y` `[B]` and propensities
/// `theta` `[B]`: `mean(softplus(s) - (y / theta) s)`.
pub fn rel_loss<'c>(s: Var<'c>, y: Var<'c>, theta: Var<'c>) -> Var<'c> {
    (s.softplus() - y / theta * s).mean_all()
}
