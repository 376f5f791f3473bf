//! Built-in plugin `frontdoor`: front-door adjustment and the multi-task
//! click/like baselines it is compared with.
//!
//! - `hcr`: HCR (Zhu et al., "Mitigating Hidden Confounding Effects for
//!   Causal Recommendation"): click and integrated features as mediators,
//!   multi-task training of a click model and a decomposed like model on
//!   two multi-modal backbones, front-door inference (Eq. 11) and the
//!   ablations HCR-T / HCR-S1 / HCR-S2 (Eq. 13-15);
//! - `esmm`, `multi_ipw`, `multi_dr`: CTR + CVR multi-task estimators;
//! - `cr`: CR (Wang et al., clickbait): click model `Y_k * sigma(Y_e)` with
//!   an exposure-only branch, counterfactual (TIE) inference;
//! - `dcf`: DCF (Wang et al., deconfounded recommender): exposure model on
//!   clicks as a substitute confounder for the like model.
//!
//! CT (like-only training) is the `naive` estimator on the likes.
//! Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

pub mod cr;
pub mod dcf;
pub mod hcr;
pub mod modal;
pub mod multitask;
pub mod prob;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![
        hcr::def(),
        cr::def(),
        dcf::def(),
        multitask::esmm_def(),
        multitask::ipw_def(),
        multitask::dr_def(),
    ]
}

causalrec_sdk::export_plugin!("frontdoor", components);
