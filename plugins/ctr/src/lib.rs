//! Built-in plugin `ctr`: click-through backbones (MF, NCF/NeuMF; the
//! field-interaction FM, NFM, DCN and NCF over fields), the naive (CT) estimator and the basic
//! losses (BCE, BPR, MSE). Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

mod check;
mod dcn;
mod fields;
mod fm;
mod losses;
mod mf;
mod naive;
mod ncf;
mod ncf_fields;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![
        mf::def(),
        ncf::def(),
        ncf_fields::def(),
        fm::fm_def(),
        fm::nfm_def(),
        dcn::def(),
        naive::def(),
        losses::bce_def(),
        losses::bpr_def(),
        losses::mse_def(),
    ]
}

causalrec_sdk::export_plugin!("ctr", components);
