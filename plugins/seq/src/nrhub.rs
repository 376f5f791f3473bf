//! NRHUB (Wu et al. 2019, "Neural News Recommendation with Heterogeneous User
//! Behavior", EMNLP): attentive multi-view user modelling.
//!
//! Each kind of user behaviour is one view of the user:
//! - `clicked`: the clicked items (the `history` hook point);
//! - `browsed`: browsed items, where the batch has `view.browsed` `[B, L]`
//!   item ids and `view.browsed.mask` (hook points `view.browsed`, `view.browsed.mask`);
//! - `query`: search queries, where the schema has a token_seq field named
//!   `view.query` or with role `query` (user or context side) and the batch
//!   carries it with its `.mask` (hook points `view.query`, `view.query.mask`).
//!
//! A record (item or query) is its embedding: items from the item table
//! shared with the candidate, queries from a `query` table. (The paper encodes
//! the text of news, webpages and queries with CNNs and word-level attention;
//! here records are ids, as in IV4Rec+'s use of NRHUB, which removes the text
//! encoders.) Record-level attention per view `v` (additive attention,
//! [`causalrec_sdk::nn::AdditiveAttention`]):
//! `alpha_j = softmax_j(q_v^T tanh(V_v r_j + b_v))` over the view's valid
//! records, `u_v = sum_j alpha_j r_j`. View-level attention combines the views:
//! `beta_v = softmax_v(q^T tanh(U u_v + b))` over the views the row has
//! records in, `u = sum_v beta_v u_v` (with a single view `u = u_clicked`).
//! Click score: `y = u^T n`, the inner product with the candidate's embedding.
//!
//! The user vector does not depend on the candidate, so `score_all` scores
//! every item at once (`u` times the item table). An empty history gives `u = 0`.

use causalrec_sdk::nn::AdditiveAttention;
use causalrec_sdk::{
    ComponentDef, Ctx, Emb, FieldSchema, FieldSide, FieldType, Init, ParamSpec, Params, Result, Var,
};

use crate::common::{self, DotProduct, UserTower, ITEM_TABLE};

pub struct Nrhub {
    dim: usize,
    attention_dim: usize,
    init_std: f64,
}

pub fn def() -> ComponentDef {
    ComponentDef::backbone(
        "nrhub",
        "NRHUB (Wu et al. 2019): record- and view-level additive attention over clicked items, \
         browsed items and search queries; dot-product score",
        vec![
            ParamSpec::new("dim", 64, "embedding size d of items and queries"),
            ParamSpec::new(
                "attention_dim",
                64,
                "hidden size of the record- and view-level attention",
            ),
            ParamSpec::new(
                "init_std",
                0.1,
                "standard deviation of the normal initialisation of the embeddings",
            ),
        ],
        |p| Nrhub::from_params(p).map(DotProduct),
    )
}

/// The batch input of a query view: a token_seq field named `view.query` or
/// with role `query`, on the user or context side, present in the batch.
fn query_field(g: &Ctx<'_, '_>) -> Option<FieldSchema> {
    let fields = g.schema().fields;
    let usable = |f: &&FieldSchema| {
        f.ty == FieldType::TokenSeq && f.side != FieldSide::Item && g.has_input(f.name.as_str())
    };
    let named = fields
        .iter()
        .filter(usable)
        .find(|f| f.name.as_str() == "view.query");
    named
        .or_else(|| {
            fields
                .iter()
                .filter(usable)
                .find(|f| f.role.as_str() == "query")
        })
        .cloned()
}

impl Nrhub {
    fn from_params(p: &Params) -> Result<Nrhub> {
        let (dim, init_std) = common::dim_and_std(p, "nrhub")?;
        Ok(Nrhub {
            dim,
            attention_dim: common::positive(p, "nrhub", "attention_dim")?,
            init_std,
        })
    }

    /// Records and mask of one behaviour input (`<name>` ids, `<name>.mask`).
    fn records<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        table: &str,
        name: &str,
    ) -> Result<(Var<'c>, Var<'c>)> {
        let mask_name = format!("{name}.mask");
        if !g.has_input(&mask_name) {
            return Err(format!(
                "nrhub: the batch has '{name}' but no '{mask_name}' (1 = valid record)"
            ));
        }
        Ok((
            g.lookup(table, g.input(name)),
            g.input(&mask_name).to_float(),
        ))
    }
}

impl UserTower for Nrhub {
    fn dim(&self) -> usize {
        self.dim
    }

    fn init_std(&self) -> f64 {
        self.init_std
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let mut emb = common::embed_items_and_history(g, "nrhub", self.dim, self.init_std)?;
        if g.has_input("view.browsed") {
            let (r, m) = self.records(g, ITEM_TABLE, "view.browsed")?;
            emb.set("view.browsed", r.id);
            emb.set("view.browsed.mask", m.id);
        }
        match query_field(g) {
            Some(f) => {
                g.embedding(
                    "query",
                    f.vocab as usize,
                    self.dim,
                    Init::normal(self.init_std),
                );
                let (r, m) = self.records(g, "query", f.name.as_str())?;
                emb.set("view.query", r.id);
                emb.set("view.query.mask", m.id);
            }
            None if g.has_input("view.query") => {
                return Err(
                    "nrhub: the batch has 'view.query' but the schema has no token_seq \
                            field 'view.query' (or with role 'query') to size the query table"
                        .into(),
                )
            }
            None => {}
        }
        Ok(emb)
    }

    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        let (clicked, clicked_mask) = common::history(g, emb)?;
        let mut views = vec![("clicked", clicked, clicked_mask)];
        for (view, name) in [("browsed", "view.browsed"), ("query", "view.query")] {
            if emb.get(name).is_some() {
                let records = g.get(emb, name)?;
                let mask = g.get(emb, &format!("{name}.mask"))?;
                views.push((view, records, mask));
            }
        }
        let pooled: Vec<(Var<'c>, Var<'c>)> = views
            .iter()
            .map(|&(view, x, m)| {
                let att = AdditiveAttention::new(
                    &format!("{view}.attention"),
                    self.dim,
                    self.attention_dim,
                );
                (att.forward(g, x, Some(m)), common::any_valid(m))
            })
            .collect();
        if let [(only, _)] = pooled.as_slice() {
            return Ok(*only);
        }
        let (us, present): (Vec<Var<'c>>, Vec<Var<'c>>) = pooled.into_iter().unzip();
        let att = AdditiveAttention::new("view.attention", self.dim, self.attention_dim);
        Ok(att.forward(g, g.stack(&us, 1), Some(g.stack(&present, 1))))
    }
}
