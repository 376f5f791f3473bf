//! Built-in plugin `proxy`: confounding-proxy priors for CTR prediction.
//!
//! - `cp2rec`: CP2Rec (Liu, Qiao, Tang, Chen, He & Ming, MM'23,
//!   "Prior-Guided Accuracy-Bias Tradeoff Learning for CTR Prediction in
//!   Multimedia Recommendation") over any field-interaction backbone
//!   (DCN, NCF over fields, FM, NFM): the fields split into confounding
//!   proxies `c` and the rest `z` (feature partitioning, section 4.2), `z`
//!   purified against `c` (COS Eq. 3-4, PROJ Eq. 5-6, SOLVE with CLUB
//!   Eq. 7-8; `club.rs`), and the accuracy-bias tradeoff (Eq. 9-13, the
//!   objective Eq. 2).
//!
//! The unbiased-learning baselines (IPS, SNIPS, Rel, CVIB, DIB) are in
//! `debias`; the propensities both use are `causalrec_sdk::propensity`.
//!
//! Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

pub mod club;
pub mod cp2rec;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![cp2rec::def()]
}

causalrec_sdk::export_plugin!("proxy", components);
