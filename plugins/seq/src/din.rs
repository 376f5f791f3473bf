//! DIN: Deep Interest Network (Zhou et al. 2018, "Deep Interest Network for
//! Click-Through Rate Prediction", KDD; Section 4.3, Eq. (3), Fig. 2).
//!
//! - Embedding: the user profile `p_u` (a user-id embedding; user feature
//!   fields are not read), the candidate `v_A` and the behaviours `e_1..e_L`
//!   from one item table (`item`), or, with `item_text`, a learned linear
//!   map of fixed item vectors (plus the ID embedding with `item_id`), as
//!   DIN runs on MIND in IV4Rec+ ([`common::ItemText`]).
//! - Local activation unit: `a(e_j, v_A)` is a feed-forward network over
//!   `[e_j ; e_j - v_A ; e_j ⊙ v_A ; v_A]` (the paper's "out product" of the two
//!   embeddings is taken element-wise, with their difference, as DIN's
//!   released model does), hidden sizes `attention_layers`, each followed by
//!   `activation`, then a linear unit with one output. The weights are NOT
//!   normalised by a softmax (Section 4.3: "normalization with softmax on the
//!   output of a(·) is abandoned" to keep the intensity of the interests);
//!   padding positions get weight 0.
//! - User interest (Eq. 3): `v_U(A) = sum_j a(e_j, v_A) e_j` (0 for an empty history).
//! - Prediction: an MLP over `[p_u ; v_U(A) ; v_A]` with hidden sizes `layers`,
//!   each followed by `activation` (Dice or PReLU, see [`crate::act`]), then a
//!   linear output: one logit.
//!
//! Stages: `embed` -> `user`, `item`, `history`, `history_mask`;
//! `encode_user` -> the interest `v_U(A)` `[B, d]`, pooled with respect to the
//! candidate in the hook point's `item` (so it needs a candidate);
//! `encode_item` -> `v_A`; `predict(user = v_U(A), item = v_A)` -> the MLP's
//! logit, reading `p_u` from the hook point's `user`. The user representation
//! depends on the candidate, so there is no `score_all`: the host scores
//! (user, item) pairs.

use causalrec_sdk::nn::Linear;
use causalrec_sdk::{
    BackboneImpl, BackboneInfo, ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, TrainData,
    Var,
};

use crate::act::{Activation, Kind};
use crate::common;

pub struct Din {
    dim: usize,
    init_std: f64,
    attention_layers: Vec<usize>,
    layers: Vec<usize>,
    act: Activation,
    text: Option<common::ItemText>,
}

pub fn def() -> ComponentDef {
    ComponentDef::backbone(
        "din",
        "DIN (Zhou et al. 2018): local activation unit over the history w.r.t. the candidate, \
         unnormalised sum pooling, MLP with Dice or PReLU",
        [
            ParamSpec::new("dim", 64, "embedding size d of users and items"),
            ParamSpec::new(
                "attention_layers",
                "80,40",
                "hidden sizes of the local activation unit (text \"80,40\" or a list)",
            ),
            ParamSpec::new(
                "layers",
                "200,80",
                "hidden sizes of the prediction MLP (text \"200,80\" or a list)",
            ),
            ParamSpec::new(
                "activation",
                "dice",
                "activation of both networks: dice or prelu",
            ),
            ParamSpec::new(
                "init_std",
                0.1,
                "standard deviation of the normal initialisation of the embeddings",
            ),
        ]
        .into_iter()
        .chain(common::ItemText::params())
        .collect(),
        Din::from_params,
    )
}

impl Din {
    fn from_params(p: &Params) -> Result<Din> {
        let (dim, init_std) = common::dim_and_std(p, "din")?;
        Ok(Din {
            dim,
            init_std,
            attention_layers: p.layer_sizes("attention_layers")?,
            layers: p.layer_sizes("layers")?,
            act: Activation::new(Kind::parse(&p.string("activation")?)?),
            text: common::ItemText::from_params(p)?,
        })
    }

    /// The activation of the first hidden layer (its pre-activation `first`
    /// given), the remaining hidden layers `sizes[1..]` (Linear then the
    /// activation), then a linear unit with one output: `[N, 1]`.
    fn network<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        name: &str,
        sizes: &[usize],
        first: Var<'c>,
        row_weight: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        let mut x = self.act.apply(g, &format!("{name}.0"), first, row_weight)?;
        for (i, w) in sizes.windows(2).enumerate() {
            let layer = format!("{name}.{}", i + 1);
            x = Linear::new(&layer, w[0], w[1]).forward(g, x);
            x = self.act.apply(g, &layer, x, row_weight)?;
        }
        let last = sizes.last().copied().unwrap_or(0);
        Ok(Linear::new(&format!("{name}.out"), last, 1).forward(g, x))
    }

    /// `v_U(A) = sum_j a(e_j, v_A) e_j`: `[B, d]`.
    fn interest<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        let (e, mask) = common::history(g, emb)?;
        let v = g.get(emb, "item").map_err(|_| {
            "din: the user interest is pooled w.r.t. the candidate, but the hook point has no \
             'item' (DIN cannot score every item at once; score (user, item) pairs)"
                .to_string()
        })?;
        let (b, l, d) = (e.dim(0), e.dim(1), self.dim);
        let h = *self
            .attention_layers
            .first()
            .ok_or("din: 'attention_layers' is empty")?;
        // The first layer of the activation unit, W = [W_0; W_1; W_2; W_3] over
        // [e ; e - v ; e * v ; v], computed as e (W_0 + W_1) + (e * v) W_2 +
        // v (W_3 - W_1) + bias: the same function and parameters, without the
        // [B * L, 4d] input (the largest tensor of the model).
        let w = g.param("attention.0.weight", &[4 * d, h], Init::XAVIER);
        let bias = g.param("attention.0.bias", &[h], Init::ZEROS);
        let block = |k: usize| w.narrow(0, k * d, d);
        let di = d as i64;
        let per_click = e.reshape(&[-1, di]).matmul(block(0) + block(1))
            + (e * v.unsqueeze(1)).reshape(&[-1, di]).matmul(block(2));
        let per_candidate = v.matmul(block(3) - block(1)) + bias;
        let (bi, li, hi) = (b as i64, l as i64, h as i64);
        let first =
            (per_click.reshape(&[bi, li, hi]) + per_candidate.unsqueeze(1)).reshape(&[-1, hi]);
        let weight = mask.reshape(&[-1, 1]);
        let a = self
            .network(g, "attention", &self.attention_layers, first, Some(weight))?
            .reshape(&[bi, li])
            * mask;
        Ok((a.unsqueeze(-1) * e).sum(1))
    }
}

impl BackboneImpl for Din {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: false,
            needs_history: true,
            dim: self.dim as u64,
        }
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let mut emb = match &self.text {
            Some(t) => t.embed(g, "din", self.dim, self.init_std)?,
            None => common::embed_items_and_history(g, "din", self.dim, self.init_std)?,
        };
        g.embedding(
            "user",
            g.schema().n_users as usize,
            self.dim,
            Init::normal(self.init_std),
        );
        emb.set("user", g.lookup("user", g.input("user")).id);
        Ok(emb)
    }

    /// The attention-pooled interest w.r.t. the hook point's candidate `item`.
    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        self.interest(g, emb)
    }

    fn encode_item<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        g.get(emb, "item")
    }

    fn prepare(&self, data: &TrainData) -> Result<()> {
        match &self.text {
            Some(t) => t.prepare(data, "din"),
            None => Ok(()),
        }
    }

    fn predict<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        user: Var<'c>,
        item: Var<'c>,
        emb: &Emb,
    ) -> Result<Var<'c>> {
        let profile = g.get(emb, "user")?;
        let x = g.concat(&[profile, user, item], -1);
        let h = *self.layers.first().ok_or("din: 'layers' is empty")?;
        let first = Linear::new("mlp.0", 3 * self.dim, h).forward(g, x);
        Ok(self
            .network(g, "mlp", &self.layers, first, None)?
            .squeeze(-1))
    }
}
