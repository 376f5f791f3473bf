//! Built-in plugin `debias`: debiasing estimators that work on any backbone.
//!
//! - `ips` / `snips`: inverse-propensity weighting of the recipe's loss
//!   (Schnabel et al. 2016), with propensities from naive Bayes on a small
//!   unbiased part (the MF-IPS baseline of CTAR) or from a logged column
//!   (Open Bandit's `propensity_score`), item groups, item popularity or
//!   display positions (`causalrec_sdk::propensity`); `snips` self-normalises the weights.
//! - `rel`: relevance maximisation with propensity-weighted labels (Saito
//!   et al. 2020), propensities from `causalrec_sdk::propensity` (item
//!   popularity by default; also position, logged, naive Bayes, groups).
//! - `cvib`: CVIB (Wang et al. NeurIPS 2020), the observed loss plus a
//!   balancing term between predictions on observed and unobserved pairs.
//! - `dib`: DIB (Liu et al. RecSys 2021), unbiased and biased embedding
//!   components disentangled by an information bottleneck; infers with the
//!   unbiased one.
//! - `cause`: CausE (Bonner and Vasile 2018), control/treatment item
//!   representations tied by a distance penalty.
//!
//! Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

mod cause;
pub mod cvib;
pub mod dib;
pub mod hook;
mod ips;
pub mod rel;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![
        ips::ips_def(),
        ips::snips_def(),
        rel::def(),
        cvib::def(),
        dib::def(),
        cause::def(),
    ]
}

causalrec_sdk::export_plugin!("debias", components);
