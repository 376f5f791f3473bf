//! Built-in plugin `iv`: search queries as instrumental variables for
//! sequential recommenders (DIN, NRHUB, SR-GNN or any backbone exposing the
//! `item` / `history` / `history_mask` hook points).
//!
//! - `iv4rec_plus`: IV4Rec+ (UI) and (I), Eq. 1-17 of Si et al. (TOIS), with
//!   the ablations as parameters ([`plus`]);
//! - `iv4rec`: IV4Rec (WWW'22), closed-form least-squares IV regression ([`ls`]);
//! - `jsr`: JSR, a jointly trained feed-forward search model sharing the
//!   item representations ([`jsr`]).
//!
//! Instruments are fixed per-item query vectors from a dense item field
//! ([`queries`]); the reconstruction maths is shared ([`reconstruct`]), and
//! `f_search` is in [`search`]. Built against `causalrec-sdk` only.

#![allow(non_local_definitions)]

pub mod jsr;
pub mod ls;
pub mod plus;
pub mod queries;
pub mod reconstruct;
pub mod search;

use causalrec_sdk::ComponentDef;

fn components() -> Vec<ComponentDef> {
    vec![plus::def(), ls::def(), jsr::def()]
}

causalrec_sdk::export_plugin!("iv", components);
