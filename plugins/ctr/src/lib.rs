//! Built-in plugin `ctr`: click-through backbones (MF, FM, NFM), the naive (CT)
//! estimator and the basic losses (BCE, BPR, MSE). Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

mod fields;
mod losses;
mod mf;
mod naive;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![
        mf::def(),
        fields::fm_def(),
        fields::nfm_def(),
        naive::def(),
        losses::bce_def(),
        losses::bpr_def(),
        losses::mse_def(),
    ]
}

causalrec_sdk::export_plugin!("ctr", components);
