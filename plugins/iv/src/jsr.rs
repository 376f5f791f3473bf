//! `jsr`: JSR, joint search and recommendation (Zamani and Croft, "Joint
//! Modeling and Optimization of Search and Recommendation", DESIRES 2018),
//! IV4Rec+'s search-enhanced baseline: "a separate search model and
//! recommendation model [trained] by optimizing a joint loss. The search
//! component ... a fully-connected feed-forward network" (section 6.2).
//!
//! The recommendation model is the backbone on its default path. The search
//! model maps a query vector through a feed-forward network to the item
//! space, `s(q) = FFN(z_q)`, and scores an item by `s(q)^T t_i` with the
//! item representation `t_i` shared with the recommender (the backbone's
//! `item` hook point, i.e. its item embedding table): the search data then
//! trains the shared item representations. Search examples are the
//! (query, item) pairs of the batch — each item with its query (the query
//! that clicked it) as a positive, and the query with another batch item
//! (the batch rotated by one) as a negative — with binary cross-entropy.
//! Joint loss: `L_rec + search_weight * L_search`. Ranking: the recommender alone.

use causalrec_sdk::nn::{Act, Mlp};
use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, LossHandle, ParamSpec, Params, Result, TrainData,
    Var,
};

use crate::queries;
use causalrec_sdk::{keep, prepared, PreparedVectors};

pub struct Jsr {
    queries: queries::QuerySource,
    layers: Vec<usize>,
    search_weight: f64,
    table: PreparedVectors,
}

fn params() -> Vec<ParamSpec> {
    let mut v = queries::QuerySource::params();
    v.extend([
        ParamSpec::new(
            "layers",
            "64",
            "hidden sizes of the search model's feed-forward network (text or list)",
        ),
        ParamSpec::new(
            "search_weight",
            1.0,
            "weight of the search loss in the joint loss",
        ),
    ]);
    v
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "jsr",
        "JSR (Zamani & Croft 2018): a feed-forward search model over query vectors sharing the recommender's item \
         representations, trained jointly (L_rec + search_weight * L_search)",
        params(),
        make,
    )
    .with_estimand(
        "the associational click probability with item representations shared with a search model (a multi-task baseline; no causal adjustment)",
    )
}

fn make(p: &Params) -> Result<Jsr> {
    Ok(Jsr {
        queries: queries::QuerySource::from_params(p)?,
        layers: p.layer_sizes("layers")?,
        search_weight: p.non_negative("search_weight")?,
        table: PreparedVectors::default(),
    })
}

impl EstimatorImpl for Jsr {
    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let table = prepared(&self.table, "jsr")?;
        let (logit, emb) = bb.main()?.forward(g)?;
        let rec = loss.on_labels(g, logit)?;
        let item = g
            .get(&emb, "item")
            .map_err(|e| format!("jsr needs the backbone's candidate item representation: {e}"))?;
        let (b, d) = (item.dim(0), item.dim(1));
        let z = table.gather(g, g.input("item"))?;
        let mut sizes = vec![table.dim()];
        sizes.extend_from_slice(&self.layers);
        sizes.push(d);
        let s = Mlp::new("jsr.search", &sizes, Act::Relu, 0.0)
            .linear_output()
            .forward(g, z);
        let pos = (s * item).sum(1);
        // The batch rotated by one: item r+1 is row r's negative.
        let next: Vec<f64> = (0..b).map(|r| ((r + 1) % b) as f64).collect();
        let other = item.index_select(g.constant(&next, &[b]), 0);
        let neg = (s * other).sum(1);
        let ones = g.constant(&vec![1.0; b], &[b]);
        let search = pos.bce_with_logits(ones, None) + neg.bce_with_logits(ones * 0.0, None);
        Ok(vec![
            ("loss".into(), rec),
            ("search".into(), search * self.search_weight),
        ])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.main()?.forward(g)?.0)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        bb.main()?.forward_all(g)
    }

    fn prepare(&self, data: &TrainData) -> Result<()> {
        keep(&self.table, self.queries.read(data, "jsr")?, "jsr")
    }
}
