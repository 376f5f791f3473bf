//! Built-in plugin `seq`: backbones that read the user's history (the host's
//! `history` / `history_mask` inputs) — DIN (Zhou et al. 2018), NRHUB (Wu et
//! al. 2019) and SR-GNN (Wu et al. 2019), the underlying models of IV4Rec+.
//! Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

mod act;
mod common;
mod din;
mod nrhub;
mod srgnn;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![din::def(), nrhub::def(), srgnn::def()]
}

causalrec_sdk::export_plugin!("seq", components);
