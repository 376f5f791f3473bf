//! Built-in plugin `debias`: debiasing estimators that work on any backbone.
//!
//! - `ips` / `snips`: inverse-propensity weighting of the recipe's loss
//!   (Schnabel et al. 2016), with propensities from naive Bayes on a small
//!   unbiased part (the MF-IPS baseline of CTAR) or from a logged column
//!   (Open Bandit's `propensity_score`); `snips` self-normalises the weights.
//! - `cause`: CausE (Bonner and Vasile 2018), control/treatment item
//!   representations tied by a distance penalty.
//!
//! Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

mod cause;
mod ips;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![ips::ips_def(), ips::snips_def(), cause::def()]
}

causalrec_sdk::export_plugin!("debias", components);
