//! LightGCN (He et al. 2020, "LightGCN: Simplifying and Powering Graph
//! Convolution Network for Recommendation").
//!
//! Light graph convolution, with no feature transform and no nonlinearity
//! (Eq. 3):
//! `e_u^(k+1) = sum_{i in N_u} 1/sqrt(|N_u||N_i|) e_i^(k)` and
//! `e_i^(k+1) = sum_{u in N_i} 1/sqrt(|N_i||N_u|) e_u^(k)`;
//! layer combination (Eq. 4) with `alpha_k = 1/(K+1)`:
//! `e_u = sum_{k=0..K} alpha_k e_u^(k)`; prediction (Eq. 5) `y_ui = e_u^T e_i`.
//! The only parameters are the layer-0 embeddings (tables `user`, `item`).
//!
//! A training step propagates over the K-hop subgraph of the batch's users
//! and items only (exact: see [`crate::graph`]); `score_all` (inference)
//! propagates over the whole graph with the same code, and so does `embed`
//! for an all-ranking batch (users only, inference): its users' rows are
//! taken from that whole-graph propagation, which the host's evaluation
//! memo computes once for all blocks of users instead of one K-hop
//! subgraph per block.
//!
//! Parameters: `dim`, `layers` (K), `init_std`, `max_neighbors` (0 = every
//! neighbour, exact; else a per-step neighbour sample), `sample_seed`.

use causalrec_sdk::{ComponentDef, Ctx, Emb, Init, Params, Result, TrainData, Var};

use crate::common::{self, GraphBackbone, GraphCore, GraphModel, Prepared};
use crate::graph::{Norm, Subgraph};
use crate::prop::{Aggr, Plan};

pub struct LightGcn(GraphCore<()>);

pub fn def() -> ComponentDef {
    ComponentDef::backbone(
        "lightgcn",
        "LightGCN: embeddings propagated K times over the normalised user-item graph, layer mean, dot product",
        common::param_specs(
            "embedding size",
            3,
            "K, the number of propagation layers (0 = matrix factorisation)",
        ),
        |p: &Params| {
            Ok(GraphBackbone(LightGcn(GraphCore::new(
                "lightgcn",
                p,
                0,
                Norm::Symmetric,
            )?)))
        },
    )
}

impl LightGcn {
    fn declare(&self, g: &Ctx<'_, '_>) {
        let s = g.schema();
        let init = Init::normal(self.0.init_std);
        g.embedding("user", s.n_users as usize, self.0.dim, init);
        g.embedding("item", s.n_items as usize, self.0.dim, init);
    }

    /// Layer mean over `k = 0..=K` on the batch nodes `S_0` of `sub`, from
    /// the layer-0 rows `x0` of every node of `sub` (local order).
    fn propagate<'c>(&self, g: &'c Ctx<'_, '_>, sub: &Subgraph, x0: Var<'c>) -> Var<'c> {
        let plan = Plan::new(g, sub);
        let n0 = sub.hop_size[0];
        let mut x = x0;
        let mut acc = x0.narrow(0, 0, n0);
        for l in 1..=self.0.layers {
            x = plan.aggregate(g, x, l, Aggr::Sum);
            acc = acc + x.narrow(0, 0, n0);
        }
        acc * (1.0 / (self.0.layers as f64 + 1.0))
    }

    /// Every node's final representation (`[n_users + n_items, dim]`, users
    /// first), by propagation over the whole graph (inference only).
    fn full_graph<'c>(&self, g: &'c Ctx<'_, '_>, st: &Prepared<()>) -> Var<'c> {
        self.declare(g);
        let x0 = g.concat(&[g.table_all("user"), g.table_all("item")], 0);
        self.propagate(g, &st.full, x0)
    }
}

impl GraphModel for LightGcn {
    type Extra = ();

    fn core(&self) -> &GraphCore<()> {
        &self.0
    }

    fn extra(&self, _data: &TrainData) -> Result<()> {
        Ok(())
    }

    fn embed(&self, g: &Ctx<'_, '_>, st: &Prepared<()>) -> Result<Emb> {
        self.declare(g);
        let b = self.0.batch(g, &st.graph)?;
        let x0 = b.assemble(g, b.lookup(g, "user", false), b.lookup(g, "item", true));
        let (user, item) = b.outputs(g, self.propagate(g, &b.sub, x0))?;
        let mut emb = Emb::default();
        emb.set("user", user.id);
        if let Some(item) = item {
            emb.set("item", item.id);
        }
        Ok(emb)
    }

    fn embed_all_ranking(&self, g: &Ctx<'_, '_>, st: &Prepared<()>) -> Result<Emb> {
        let users = self
            .full_graph(g, st)
            .narrow(0, 0, st.graph.n_users())
            .index_select(g.input("user"), 0);
        let mut emb = Emb::default();
        emb.set("user", users.id);
        Ok(emb)
    }

    fn all_items<'c>(&self, g: &'c Ctx<'_, '_>, st: &Prepared<()>) -> Result<Var<'c>> {
        Ok(self
            .full_graph(g, st)
            .narrow(0, st.graph.n_users(), st.graph.n_items()))
    }
}
