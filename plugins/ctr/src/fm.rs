//! FM (Rendle 2010, "Factorization Machines", ICDM) and NFM (He & Chua 2017,
//! "Neural Factorization Machines for Sparse Predictive Analytics", SIGIR)
//! over the shared field embedding of `fields.rs`.
//!
//! FM (eq. 1, with the O(kn) form of Lemma 3.1):
//! `y = b + sum_f w_f + 0.5 * sum_d ((sum_f v_f)^2 - sum_f v_f^2)`.
//! NFM (eq. 1-4): `y = b + sum_f w_f + h^T MLP(dropout(f_BI))`, with
//! `f_BI` the bi-interaction pooling (the FM pairwise term before the sum).

use causalrec_sdk::nn::{Act, Linear, Mlp};
use causalrec_sdk::{ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, Var};

use crate::check::layer_sizes;
use crate::fields::{field_def, FieldEmbedder, FieldHead};

/// FM's head: the pairwise interactions plus the first-order terms.
pub struct Fm;

pub fn fm_def() -> ComponentDef {
    field_def::<Fm>(
        "fm",
        "Factorization machine (Rendle 2010) over user, item and feature fields",
        64,
        vec![],
    )
}

impl FieldHead for Fm {
    fn from_params(_p: &Params) -> Result<Self> {
        Ok(Fm)
    }

    fn logit<'c>(&self, g: &'c Ctx<'_, '_>, _fields: &FieldEmbedder, emb: &Emb) -> Result<Var<'c>> {
        let b = g.param("bias", &[1], Init::ZEROS);
        Ok(FieldEmbedder::bi_interaction(g, emb)?.sum(-1) + g.get(emb, "linear")? + b)
    }

    fn scores_all(&self) -> bool {
        true
    }

    /// The pairwise sum splits into the pairs within the user-side fields
    /// U, the pairs within the item-side fields I (the item id and its
    /// features) and the cross term `<sum_U v_f, sum_I v_f>`, so
    /// `y(u, i) = FM(U) + [w_I + pairs(I)](i) + <sum_U v_f, sum_I v_f(i)>`:
    /// one matmul against every item's summed fields plus a per-item
    /// constant. The item features of every item come from the batch's
    /// catalog inputs; without them (a host that does not send them) `None`,
    /// and the host scores (user, item) pairs.
    fn score_all<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        fields: &FieldEmbedder,
        user: Var<'c>,
    ) -> Result<Option<Var<'c>>> {
        let Some((items, item_terms)) = fields.catalog_items(g)? else {
            return Ok(None);
        };
        // The batch holds users only, so this is FM over the user-side fields.
        let user_side = self.logit(g, fields, &fields.embed(g)?)?;
        Ok(Some(
            user.matmul(items.transpose(0, 1)) + item_terms.unsqueeze(0) + user_side.unsqueeze(1),
        ))
    }
}

/// NFM's head: bi-interaction pooling, a ReLU tower, a linear output.
pub struct Nfm {
    layers: Vec<usize>,
    dropout: f64,
    bi_dropout: f64,
}

pub fn nfm_def() -> ComponentDef {
    field_def::<Nfm>(
        "nfm",
        "Neural factorization machine (He & Chua 2017): bi-interaction pooling + MLP",
        64,
        vec![
            ParamSpec::new(
                "layers",
                vec![64usize],
                "hidden layer sizes of the MLP above bi-interaction pooling ([] = NFM-0)",
            ),
            ParamSpec::new("dropout", 0.2, "dropout rate of the hidden layers"),
            ParamSpec::new(
                "bi_dropout",
                0.5,
                "dropout rate on the bi-interaction vector",
            ),
        ],
    )
}

impl FieldHead for Nfm {
    fn from_params(p: &Params) -> Result<Self> {
        Ok(Nfm {
            layers: layer_sizes(p, "layers", 0)?,
            dropout: p.rate("dropout")?,
            bi_dropout: p.rate("bi_dropout")?,
        })
    }

    fn logit<'c>(&self, g: &'c Ctx<'_, '_>, fields: &FieldEmbedder, emb: &Emb) -> Result<Var<'c>> {
        let bi = FieldEmbedder::bi_interaction(g, emb)?.dropout(self.bi_dropout);
        let mut sizes = vec![fields.dim];
        sizes.extend(&self.layers);
        let hidden = Mlp::new("mlp", &sizes, Act::Relu, self.dropout).forward(g, bi);
        let out = Linear::new("out", *sizes.last().unwrap_or(&fields.dim), 1).no_bias();
        let b = g.param("bias", &[1], Init::ZEROS);
        Ok(out.forward(g, hidden).squeeze(-1) + g.get(emb, "linear")? + b)
    }
}
