//! `f_search` (IV4Rec+ Eq. 3): the user's instrument `z_u` from the query
//! vectors of the user's search history.
//!
//! - Multi-head self-attention over the queries `z_1..z_L` (`H` heads of
//!   width `d_k`): `e_{k,h} = W^V_h sum_j alpha^h_{k,j} z_j` with
//!   `alpha^h_{k,j} = softmax_j((W^Q_h z_k)^T W^K_h z_j)` over valid
//!   positions (as written in the paper, without a `1/sqrt(d_k)` scale),
//!   `e_k = W^O [e_{k,1} ; ... ; e_{k,H}]` (`d_q` wide).
//! - Additive attention: `beta_k = softmax_k(w^T tanh(V_1 q_k + V_2 e_k + b))`,
//!   `z_u = sum_k beta_k e_k`. The attention query `q_k` follows the
//!   backbone (section 4.2.3): the candidate item for DIN (`candidate`), the
//!   last clicked item for SR-GNN (`last`), the query representation itself
//!   for NRHUB (`self`).
//! - The ablation "without f_search" (`search: "mean"`) is the masked mean
//!   of the raw query vectors.
//!
//! A user with no search history gets `z_u = 0`.

use causalrec_sdk::nn::Linear;
use causalrec_sdk::{Ctx, Init, Result, Var};

/// Which vector is the additive attention's query `q_k`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AttentionQuery {
    /// The candidate item's embedding (DIN).
    Candidate,
    /// The last clicked item's embedding (SR-GNN).
    Last,
    /// The query representation `e_k` itself (NRHUB).
    SelfQuery,
}

impl AttentionQuery {
    /// `candidate`, `last` or `self`.
    pub fn parse(s: &str, who: &str) -> Result<AttentionQuery> {
        match s {
            "candidate" => Ok(AttentionQuery::Candidate),
            "last" => Ok(AttentionQuery::Last),
            "self" => Ok(AttentionQuery::SelfQuery),
            other => Err(format!(
                "{who}: parameter 'search_query' must be 'candidate' (DIN), 'last' (SR-GNN) or \
                 'self' (NRHUB), got '{other}'"
            )),
        }
    }
}

/// The search encoder.
#[derive(Clone, Debug)]
pub struct Search {
    /// Self-attention + additive attention (the paper), or the masked mean.
    pub attention: bool,
    pub heads: usize,
    pub head_dim: usize,
    pub dq: usize,
    pub query: AttentionQuery,
}

impl Search {
    /// `z: [B, L, d_q]` query vectors, `mask: [B, L]`, `item: [B, d]` the
    /// item vector for `candidate` / `last` (ignored for `self`). `[B, d_q]`.
    pub fn forward<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        z: Var<'c>,
        mask: Var<'c>,
        item: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        if !self.attention {
            let n = mask.sum_keepdim(1).clamp(1.0, f64::INFINITY);
            return Ok((z * mask.unsqueeze(2)).sum(1) / n);
        }
        let hk = self.head_dim;
        let mut heads = Vec::with_capacity(self.heads);
        for h in 0..self.heads {
            let lin =
                |w: &str| Linear::new(&format!("iv.search.head{h}.{w}"), self.dq, hk).no_bias();
            let q = lin("q").forward(g, z);
            let k = lin("k").forward(g, z);
            let v = lin("v").forward(g, z);
            let a = q
                .matmul(k.transpose(1, 2))
                .masked_softmax(-1, mask.unsqueeze(1));
            heads.push(a.matmul(v));
        }
        let e = Linear::new("iv.search.out", self.heads * hk, self.dq)
            .no_bias()
            .forward(g, g.concat(&heads, -1));
        // Additive attention with the backbone's query vector.
        let v2 = Linear::new("iv.search.additive.v2", self.dq, hk).forward(g, e);
        let pre = match self.query {
            AttentionQuery::SelfQuery => {
                v2 + Linear::new("iv.search.additive.v1", self.dq, hk)
                    .no_bias()
                    .forward(g, e)
            }
            AttentionQuery::Candidate | AttentionQuery::Last => {
                let item = item.ok_or_else(|| {
                    "iv: f_search with search_query 'candidate' or 'last' needs an item vector"
                        .to_string()
                })?;
                let d = item.dim(-1);
                let q = Linear::new("iv.search.additive.v1", d, hk)
                    .no_bias()
                    .forward(g, item);
                v2 + q.unsqueeze(1)
            }
        };
        let w = g.param("iv.search.additive.w", &[hk, 1], Init::XAVIER);
        let b = pre.dim(0) as i64;
        let l = pre.dim(1) as i64;
        let scores = pre
            .tanh()
            .reshape(&[-1, hk as i64])
            .matmul(w)
            .reshape(&[b, l]);
        let beta = scores.masked_softmax(1, mask);
        Ok(beta.unsqueeze(1).matmul(e).squeeze(1))
    }
}

/// The last valid entry of each history row: `history [B, L, d]`,
/// `mask [B, L]` (valid entries left-aligned) -> `[B, d]` (0 for an empty row).
pub fn last_item<'c>(g: &'c Ctx<'_, '_>, history: Var<'c>, mask: Var<'c>) -> Var<'c> {
    let l = mask.dim(1);
    // One-hot of the last valid position: mask[j] - mask[j + 1], mask[L] = 0.
    let pick = if l > 1 {
        let zero = mask.narrow(1, 0, 1) * 0.0;
        mask - g.concat(&[mask.narrow(1, 1, l - 1), zero], 1)
    } else {
        mask
    };
    (pick.unsqueeze(1).matmul(history)).squeeze(1)
}
