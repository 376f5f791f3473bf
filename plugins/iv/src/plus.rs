//! `iv4rec_plus`: IV4Rec+ (Si, Sun, Zhang, Xu, Song, Zang, Wen, "Enhancing
//! Recommendation with Search Data in a Causal Learning Manner", TOIS 2023)
//! over any sequential backbone whose embedding stage exposes the hook
//! points `item` (candidate `[B, d]`), `history` (`[B, L, d]`) and
//! `history_mask` (DIN, NRHUB, SR-GNN).
//!
//! - `variant: "i"` — IV4Rec+(I) (section 4.3): every history item and the
//!   candidate are reconstructed from their own query vector
//!   (`t_hat_j = f_proj(z_j)`, Eq. 10-12) and the backbone runs its own
//!   user encoder on the reconstructed history (Eq. 13) and predicts from
//!   the reconstructed pair (Eq. 14): the estimator rewrites the hook
//!   points and calls the backbone's default path.
//! - `variant: "ui"` — IV4Rec+(UI) (section 4.2): the user treatment is the
//!   backbone's encoded user `t_u` (`encode_user`), its instrument
//!   `z_u = f_search(Q_u)` over the queries of the user's history (section
//!   6.1: "we construct user search queries by linking queries of each item
//!   interacted by users"); the item treatment is the encoded candidate
//!   `t_i`, its instrument the candidate's query `z_i`; both are
//!   reconstructed (Eq. 4-6) and the backbone's `predict` scores the pair
//!   (Eq. 7).
//! - Loss (Eq. 15-17): the recipe's loss on the click label (`L_O`), plus
//!   `L_IV`: `gamma * sum_j ||t_hat_j - t_j||^2` over the candidate and the
//!   valid history items (I), or `gamma_user ||t_hat_u - t_u||^2 +
//!   gamma_item ||t_hat_i - t_i||^2` (UI), averaged over the batch, with a
//!   stop-gradient on the treatments. `lambda ||Theta||^2` is the
//!   optimiser's `l2`.
//! - Ablations (section 6.4): `iv_loss: false` (without L_IV), `alpha: 0`
//!   (without residual, by the detach trick of section 6.4.4, see
//!   [`crate::reconstruct`]), `alpha: 0.5` (a fixed alpha), `search: "mean"`
//!   (without f_search, UI only).
//!
//! Query vectors: the float_seq item field named by `queries` ([`crate::queries`]).

use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, Emb, EstimatorImpl, LossHandle, ParamSpec, Params, Result,
    TrainData, Var,
};

use crate::queries;
use crate::reconstruct::{projection, regression_error, Alpha, Combine};
use crate::search::{last_item, AttentionQuery, Search};
use causalrec_sdk::{keep, prepared, PreparedVectors};

/// Which treatments are reconstructed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Variant {
    /// The user (from the search history) and the candidate.
    Ui,
    /// Every history item and the candidate.
    I,
}

pub struct IvPlus {
    variant: Variant,
    queries: queries::QuerySource,
    gamma: f64,
    gamma_user: f64,
    gamma_item: f64,
    iv_loss: bool,
    proj_layers: Vec<usize>,
    weight_layers: Vec<usize>,
    alpha: Alpha,
    dropout: f64,
    search: Search,
    table: PreparedVectors,
}

/// The parameters shared by the IV estimators (query field, MLP sizes, alpha).
pub fn common_params() -> Vec<ParamSpec> {
    let mut v = queries::QuerySource::params();
    v.extend([
        ParamSpec::new(
            "proj_layers",
            "64",
            "hidden sizes of f_proj, the treatment regression MLP (text \"64\" or a list)",
        ),
        ParamSpec::new(
            "weight_layers",
            "64",
            "hidden sizes of f_weight, the residual-weight MLP (text or list)",
        ),
        ParamSpec::new(
            "alpha",
            "learned",
            "residual weight: \"learned\" (sigmoid MLP, Eq. 6) or a number in [0, 1] (0 = without residual: the value t_hat, the treatment trained through the residual by the detach trick of section 6.4.4)",
        ),
        ParamSpec::new("dropout", 0.0, "dropout rate of the MLPs"),
    ]);
    v
}

fn params() -> Vec<ParamSpec> {
    let mut v = vec![
        ParamSpec::new(
            "variant",
            "i",
            "\"i\": IV4Rec+(I), reconstruct every history item and the candidate; \"ui\": IV4Rec+(UI), the user and the candidate",
        ),
        ParamSpec::new("gamma", 0.1, "gamma_0, weight of L_IV in IV4Rec+(I) (Eq. 17)"),
        ParamSpec::new("gamma_user", 0.1, "gamma_1, weight of the user's IV regression (UI)"),
        ParamSpec::new("gamma_item", 0.1, "gamma_2, weight of the item's IV regression (UI)"),
        ParamSpec::new("iv_loss", true, "train with L_IV (false = the ablation without L_IV)"),
        ParamSpec::new(
            "search",
            "attention",
            "f_search (UI): \"attention\" (self-attention + additive attention, Eq. 3) or \"mean\" (without f_search)",
        ),
        ParamSpec::new(
            "search_query",
            "candidate",
            "the additive attention's query (UI): candidate (DIN), last (SR-GNN), self (NRHUB)",
        ),
        ParamSpec::new("heads", 4, "H, self-attention heads of f_search"),
        ParamSpec::new("head_dim", 16, "d_k, width of each head and of the additive attention"),
    ];
    v.extend(common_params());
    v
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "iv4rec_plus",
        "IV4Rec+ (Si et al. TOIS): search queries as instruments; treatments regressed on query vectors, \
         reconstructed as fitted + alpha * residual; variant i (every history item and the candidate) or ui (user and candidate)",
        params(),
        make,
    )
    .with_estimand(
        "the causal effect of the item (treatment) representations on the click: the confounded part removed by reconstructing treatments from search queries, which act as instruments (related to the outcome only through the item)",
    )
}

fn make(p: &Params) -> Result<IvPlus> {
    const WHO: &str = "iv4rec_plus";
    let variant = match p.string("variant")?.as_str() {
        "i" => Variant::I,
        "ui" => Variant::Ui,
        other => {
            return Err(format!(
                "{WHO}: parameter 'variant' must be 'i' or 'ui', got '{other}'"
            ))
        }
    };
    let attention = match p.string("search")?.as_str() {
        "attention" => true,
        "mean" => false,
        other => {
            return Err(format!(
                "{WHO}: parameter 'search' must be 'attention' or 'mean', got '{other}'"
            ))
        }
    };
    let positive = |name: &str| -> Result<usize> {
        let v = p.usize(name)?;
        if v == 0 {
            return Err(format!("{WHO}: parameter '{name}' must be at least 1"));
        }
        Ok(v)
    };
    Ok(IvPlus {
        variant,
        queries: queries::QuerySource::from_params(p)?,
        gamma: p.non_negative("gamma")?,
        gamma_user: p.non_negative("gamma_user")?,
        gamma_item: p.non_negative("gamma_item")?,
        iv_loss: p.bool("iv_loss")?,
        proj_layers: p.layer_sizes("proj_layers")?,
        weight_layers: p.layer_sizes("weight_layers")?,
        alpha: Alpha::from_params(p, WHO)?,
        dropout: p.rate("dropout")?,
        search: Search {
            attention,
            heads: positive("heads")?,
            head_dim: positive("head_dim")?,
            dq: 0,
            query: AttentionQuery::parse(&p.string("search_query")?, WHO)?,
        },
        table: PreparedVectors::default(),
    })
}

/// The sequential hook points `(item [B, d], history [B, L, d], mask [B, L])`.
pub fn seq_hooks<'c>(
    g: &'c Ctx<'_, '_>,
    emb: &Emb,
    who: &str,
) -> Result<(Var<'c>, Var<'c>, Var<'c>)> {
    let get = |name: &str| {
        g.get(emb, name).map_err(|e| {
            format!(
                "{who} needs a sequential backbone (DIN, NRHUB, SR-GNN) whose embedding stage \
                 gives 'item', 'history' and 'history_mask': {e}"
            )
        })
    };
    Ok((get("item")?, get("history")?, get("history_mask")?))
}

impl IvPlus {
    /// The logit and the per-example IV regression error `[B]` (unweighted
    /// sums for I; `gamma_user`/`gamma_item`-weighted for UI, I's `gamma`
    /// applied by the caller).
    fn forward<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<(Var<'c>, Var<'c>)> {
        const WHO: &str = "iv4rec_plus";
        let table = prepared(&self.table, WHO)?;
        let b = bb.main()?;
        let emb = b.embed(g)?;
        let (item, history, mask) = seq_hooks(g, &emb, WHO)?;
        let dq = table.dim();
        let z_item = table.gather(g, g.input("item"))?;
        let z_hist = table.gather(g, g.input("history"))?;
        match self.variant {
            Variant::I => {
                let d = item.dim(-1);
                let proj = projection("iv.proj", dq, &self.proj_layers, d, self.dropout);
                let combine = Combine::new(
                    "iv.weight",
                    d,
                    &self.weight_layers,
                    self.alpha,
                    self.dropout,
                );
                let item_hat = proj.forward(g, z_item);
                let hist_hat = proj.forward(g, z_hist);
                let mut re = emb.clone();
                re.set("item", combine.apply(g, item, item_hat).id);
                re.set("history", combine.apply(g, history, hist_hat).id);
                let logit = b.forward_from(g, &re)?;
                let err = regression_error(item, item_hat)
                    + (regression_error(history, hist_hat) * mask).sum(1);
                Ok((logit, err))
            }
            Variant::Ui => {
                let t_u = b.encode_user(g, &emb)?;
                let t_i = b.encode_item(g, &emb)?;
                let q = match self.search.query {
                    AttentionQuery::Candidate => Some(t_i),
                    AttentionQuery::Last => Some(last_item(g, history, mask)),
                    AttentionQuery::SelfQuery => None,
                };
                let search = Search {
                    dq,
                    ..self.search.clone()
                };
                let z_user = search.forward(g, z_hist, mask, q)?;
                let (du, di) = (t_u.dim(-1), t_i.dim(-1));
                let u_hat = projection("iv.proj_user", dq, &self.proj_layers, du, self.dropout)
                    .forward(g, z_user);
                let i_hat = projection("iv.proj_item", dq, &self.proj_layers, di, self.dropout)
                    .forward(g, z_item);
                let u_re = Combine::new(
                    "iv.weight_user",
                    du,
                    &self.weight_layers,
                    self.alpha,
                    self.dropout,
                )
                .apply(g, t_u, u_hat);
                let i_re = Combine::new(
                    "iv.weight_item",
                    di,
                    &self.weight_layers,
                    self.alpha,
                    self.dropout,
                )
                .apply(g, t_i, i_hat);
                let logit = b.predict(g, u_re, i_re, &emb)?;
                let err = regression_error(t_u, u_hat) * self.gamma_user
                    + regression_error(t_i, i_hat) * self.gamma_item;
                Ok((logit, err))
            }
        }
    }
}

impl EstimatorImpl for IvPlus {
    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let (logit, err) = self.forward(g, bb)?;
        let l_o = loss.on_labels(g, logit)?;
        let mut terms = vec![("loss".to_string(), l_o)];
        if self.iv_loss {
            let w = match self.variant {
                Variant::I => self.gamma,
                Variant::Ui => 1.0,
            };
            terms.push(("iv".to_string(), err.mean_all() * w));
        }
        Ok(terms)
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(self.forward(g, bb)?.0)
    }

    fn prepare(&self, data: &TrainData) -> Result<()> {
        keep(
            &self.table,
            self.queries.read(data, "iv4rec_plus")?,
            "iv4rec_plus",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ron: &str) -> Result<IvPlus> {
        make(&Params::parse("iv4rec_plus", &params(), ron).unwrap())
    }

    #[test]
    fn parameters_are_checked() {
        let p = parse("{}").unwrap();
        assert_eq!(p.variant, Variant::I);
        assert_eq!(p.alpha, Alpha::Learned);
        assert_eq!(p.search.query, AttentionQuery::Candidate);
        let p =
            parse(r#"{"variant": "ui", "alpha": 0.0, "search": "mean", "search_query": "last"}"#)
                .unwrap();
        assert_eq!(p.variant, Variant::Ui);
        assert_eq!(p.alpha, Alpha::Fixed(0.0));
        assert!(!p.search.attention);
        assert_eq!(p.search.query, AttentionQuery::Last);
        for (ron, want) in [
            (r#"{"variant": "u"}"#, "'variant'"),
            (r#"{"alpha": 1.5}"#, "'alpha'"),
            (r#"{"alpha": "often"}"#, "'alpha'"),
            (r#"{"search": "bm25"}"#, "'search'"),
            (r#"{"search_query": "user"}"#, "'search_query'"),
            (r#"{"heads": 0}"#, "'heads'"),
            (r#"{"gamma": -1}"#, "'gamma'"),
            (r#"{"proj_layers": "64,0"}"#, "'proj_layers'"),
        ] {
            let e = parse(ron).err().unwrap();
            assert!(e.contains("iv4rec_plus") && e.contains(want), "{ron}: {e}");
        }
    }
}
