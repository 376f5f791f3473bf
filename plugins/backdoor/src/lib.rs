//! Built-in plugin `backdoor`: backdoor adjustment for bias amplification.
//!
//! - `decrs`: DecRS (Wang et al. KDD'21, "Deconfounded Recommendation for
//!   Alleviating Bias Amplification"): the backdoor operator M(d_bar, u)
//!   (Eq. 7 DecRS-EP, Eq. 8 DecRS-FM) appended as one more field of any
//!   field-interaction backbone (FM, NFM, DCN), trained next to the
//!   conventional model, fused per user by interest drift (Eq. 10-12).
//!
//! The other DecRS baselines live where they are reusable: Unawareness is
//! the field backbones' `exclude`, IPS with group propensities is
//! `debias`'s `ips` (`propensity: "group"`), and Calibration, Diversity
//! and FairCo are the host's all-ranking re-rankers.
//!
//! Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

pub mod decrs;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![decrs::def()]
}

causalrec_sdk::export_plugin!("backdoor", components);
