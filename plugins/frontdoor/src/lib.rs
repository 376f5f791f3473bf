//! Built-in plugin `frontdoor`: front-door adjustment and the multi-task
//! click/like baselines it is compared with.
//!
//! - `hcr`: HCR (Zhu et al., "Mitigating Hidden Confounding Effects for
//!   Causal Recommendation"): click and integrated features as mediators,
//!   multi-task training of a click model and a decomposed like model on
//!   two multi-modal backbones, front-door inference (Eq. 11) and the
//!   ablations HCR-T / HCR-S1 / HCR-S2 (Eq. 13-15);
//! - `esmm`, `multi_ipw`, `multi_dr`: CTR + CVR multi-task estimators.
//!
//! CT (like-only training) is the `naive` estimator on the likes.
//! Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

pub mod hcr;
pub mod modal;
pub mod multitask;
pub mod prob;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![
        hcr::def(),
        multitask::esmm_def(),
        multitask::ipw_def(),
        multitask::dr_def(),
    ]
}

causalrec_sdk::export_plugin!("frontdoor", components);
