//! Built-in plugin `graph`: graph-convolution backbones over the user-item
//! bipartite graph of the training interactions.
//!
//! - `lightgcn`: LightGCN (He et al. 2020), light graph convolution and a
//!   layer mean, scored by a dot product;
//! - `mmgcn`: MMGCN (Wei et al. 2019), one graph convolution per item
//!   modality with aggregation and combination layers; exposes per-modality
//!   user and item representations as named outputs (`user_modality:<m>`,
//!   `modality:<m>`) for estimators such as HCR.
//!
//! Both build the graph once in `prepare`; a training step propagates over
//! the K-hop subgraph of its batch only (exact, see [`graph`]), through
//! `edge_sum` message passing ([`prop`]), never a dense
//! adjacency; `score_all` (inference) propagates over the whole graph with
//! the same code. Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

mod common;
pub mod graph;
mod lightgcn;
mod mmgcn;
pub mod prop;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![lightgcn::def(), mmgcn::def()]
}

causalrec_sdk::export_plugin!("graph", components);
