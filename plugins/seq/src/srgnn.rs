//! SR-GNN (Wu et al. 2019, "Session-based Recommendation with Graph Neural
//! Networks", AAAI; Section 3, Eq. (1)-(7)).
//!
//! The user's history is the session `s = [v_{s,1}, ..., v_{s,n}]` (oldest first).
//! - Session graph (Section 3.2): one node per distinct item, one edge
//!   `v_{s,i-1} -> v_{s,i}` per pair of consecutive clicks. `A_s = [A_out, A_in]`:
//!   `A_out[i][j]` = occurrences of the edge `i -> j` divided by the out-degree
//!   of `i` (its outgoing edges, counted with repetition); `A_in[i][j]` =
//!   occurrences of `j -> i` divided by the in-degree of `i`. Built in Rust per
//!   example from the history ids and mask ([`SessionGraph`]) and fed as constants.
//! - Gated GNN (Eq. 1-5), `steps` times with shared weights, from the node
//!   embeddings `v^0` (the history hook point at each item's first click):
//!   `a_i = [A_out,i: V H_out ; A_in,i: V H_in] + b` (Eq. 1, with the paper's
//!   `H in R^{d x 2d}` applied block-wise to the outgoing and incoming halves),
//!   `z_i = sigmoid(W_z a_i + U_z v_i)`, `r_i = sigmoid(W_r a_i + U_r v_i)`,
//!   `v~_i = tanh(W_o a_i + U_o (r_i ⊙ v_i))`, `v_i <- (1 - z_i) ⊙ v_i + z_i ⊙ v~_i`.
//! - Session embedding (Eq. 6-7): local `s_l = v_n` (the last click);
//!   global `s_g = sum_i alpha_i v_i` over the clicks, with
//!   `alpha_i = q^T sigmoid(W_1 v_n + W_2 v_i + c)` (no softmax, as in the paper);
//!   hybrid `s_h = W_3 [s_l ; s_g]`.
//! - Score (Eq. 8 before the softmax): `z_i = s_h^T v_i` with the item embedding.
//!
//! `encode_user` returns `s_h`; it does not depend on the candidate, so
//! `score_all` scores every item at once. An empty session gives `s_h = 0`.
//! The paper's gates have no biases; neither do these.

use causalrec_sdk::nn::Linear;
use causalrec_sdk::{ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, Var};

use crate::common::{self, DotProduct, UserTower};

pub struct SrGnn {
    dim: usize,
    steps: usize,
    init_std: f64,
}

pub fn def() -> ComponentDef {
    ComponentDef::backbone(
        "srgnn",
        "SR-GNN (Wu et al. 2019): session graph of the history, gated GNN, soft attention with \
         the last click; dot-product score",
        vec![
            ParamSpec::new(
                "dim",
                64,
                "embedding size d of items (and hidden size of the GNN)",
            ),
            ParamSpec::new("steps", 1, "propagation steps of the gated GNN"),
            ParamSpec::new(
                "init_std",
                0.1,
                "standard deviation of the normal initialisation of the embeddings",
            ),
        ],
        |p| SrGnn::from_params(p).map(DotProduct),
    )
}

/// The session graph of one example.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionGraph {
    /// Distinct items, in the order of their first click.
    pub nodes: Vec<u32>,
    /// Per node: the history position of its first click.
    pub first: Vec<usize>,
    /// Per click, in order: `(history position, node)`.
    pub alias: Vec<(usize, usize)>,
    /// `n x n`, row-major: normalised outgoing adjacency.
    pub a_out: Vec<f64>,
    /// `n x n`, row-major: normalised incoming adjacency.
    pub a_in: Vec<f64>,
}

impl SessionGraph {
    /// The graph of the clicks `(history position, item)`, oldest first.
    pub fn new(clicks: &[(usize, u32)]) -> SessionGraph {
        let mut nodes: Vec<u32> = Vec::new();
        let mut first = Vec::new();
        let mut alias = Vec::with_capacity(clicks.len());
        for &(pos, item) in clicks {
            let node = match nodes.iter().position(|&x| x == item) {
                Some(k) => k,
                None => {
                    nodes.push(item);
                    first.push(pos);
                    nodes.len() - 1
                }
            };
            alias.push((pos, node));
        }
        let n = nodes.len();
        let mut count = vec![0f64; n * n];
        for w in alias.windows(2) {
            count[w[0].1 * n + w[1].1] += 1.0;
        }
        let mut a_out = vec![0f64; n * n];
        let mut a_in = vec![0f64; n * n];
        for i in 0..n {
            let out_deg: f64 = (0..n).map(|j| count[i * n + j]).sum();
            let in_deg: f64 = (0..n).map(|j| count[j * n + i]).sum();
            for j in 0..n {
                if out_deg > 0.0 {
                    a_out[i * n + j] = count[i * n + j] / out_deg;
                }
                if in_deg > 0.0 {
                    a_in[i * n + j] = count[j * n + i] / in_deg;
                }
            }
        }
        SessionGraph {
            nodes,
            first,
            alias,
            a_out,
            a_in,
        }
    }

    /// The node of the last click, if any.
    pub fn last(&self) -> Option<usize> {
        self.alias.last().map(|&(_, node)| node)
    }
}

/// The constants of a batch of session graphs, padded to `n` nodes each.
/// Indices are into flattened tensors (`[B * L]` positions, `[B * n]` nodes).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionBatch {
    /// Nodes per example after padding (at least 1).
    pub n: usize,
    /// `[B * n]`: the flat history position of each node's first click (0 for padding).
    pub node_pos: Vec<f64>,
    /// `[B * L]`: the flat node of each history position (0 for padding).
    pub alias: Vec<f64>,
    /// `[B]`: the flat node of the last click (0 for an empty session).
    pub last: Vec<f64>,
    /// `[B]`: 1 when the session has a click.
    pub has_last: Vec<f64>,
    /// `[B, n, n]`.
    pub a_out: Vec<f64>,
    /// `[B, n, n]`.
    pub a_in: Vec<f64>,
}

impl SessionBatch {
    /// From the history ids and mask (`[B, L]`, row-major, as floats);
    /// ids must be integers in `[0, n_items)`.
    pub fn new(ids: &[f64], mask: &[f64], b: usize, l: usize, n_items: u64) -> Result<Self> {
        if ids.len() != b * l || mask.len() != b * l {
            return Err(format!(
                "srgnn: history has {} ids and {} mask entries, expected {b} x {l}",
                ids.len(),
                mask.len()
            ));
        }
        let mut graphs = Vec::with_capacity(b);
        for r in 0..b {
            let mut clicks = Vec::new();
            for j in 0..l {
                if mask[r * l + j] == 0.0 {
                    continue;
                }
                let id = ids[r * l + j];
                if !(id >= 0.0 && id.fract() == 0.0 && id < n_items as f64) {
                    return Err(format!(
                        "srgnn: history row {r} position {j} holds {id}, not an item id in [0, {n_items})"
                    ));
                }
                clicks.push((j, id as u32));
            }
            graphs.push(SessionGraph::new(&clicks));
        }
        let n = graphs
            .iter()
            .map(|s| s.nodes.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut out = SessionBatch {
            n,
            node_pos: vec![0.0; b * n],
            alias: vec![0.0; b * l],
            last: vec![0.0; b],
            has_last: vec![0.0; b],
            a_out: vec![0.0; b * n * n],
            a_in: vec![0.0; b * n * n],
        };
        for (r, s) in graphs.iter().enumerate() {
            let k = s.nodes.len();
            for (node, &pos) in s.first.iter().enumerate() {
                out.node_pos[r * n + node] = (r * l + pos) as f64;
            }
            for &(pos, node) in &s.alias {
                out.alias[r * l + pos] = (r * n + node) as f64;
            }
            if let Some(node) = s.last() {
                out.last[r] = (r * n + node) as f64;
                out.has_last[r] = 1.0;
            }
            for i in 0..k {
                for j in 0..k {
                    out.a_out[(r * n + i) * n + j] = s.a_out[i * k + j];
                    out.a_in[(r * n + i) * n + j] = s.a_in[i * k + j];
                }
            }
        }
        Ok(out)
    }
}

impl SrGnn {
    fn from_params(p: &Params) -> Result<SrGnn> {
        let (dim, init_std) = common::dim_and_std(p, "srgnn")?;
        Ok(SrGnn {
            dim,
            steps: common::positive(p, "srgnn", "steps")?,
            init_std,
        })
    }

    fn linear(&self, name: &str, input: usize) -> Linear {
        Linear::new(name, input, self.dim).no_bias()
    }

    /// One gated-GNN step (Eq. 1-5) on node states `v` `[B, n, d]`.
    fn gnn_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        v: Var<'c>,
        a_out: Var<'c>,
        a_in: Var<'c>,
    ) -> Var<'c> {
        let d = self.dim;
        let b = g.param("gnn.b", &[2 * d], Init::ZEROS);
        let m_out = a_out.matmul(self.linear("gnn.h_out", d).forward(g, v));
        let m_in = a_in.matmul(self.linear("gnn.h_in", d).forward(g, v));
        let a = g.concat(&[m_out, m_in], -1) + b;
        let gate = |w: &str, u: &str, h: Var<'c>| {
            self.linear(w, 2 * d).forward(g, a) + self.linear(u, d).forward(g, h)
        };
        let z = gate("gnn.w_z", "gnn.u_z", v).sigmoid();
        let r = gate("gnn.w_r", "gnn.u_r", v).sigmoid();
        let candidate = gate("gnn.w_o", "gnn.u_o", r * v).tanh();
        v + z * (candidate - v)
    }
}

impl UserTower for SrGnn {
    fn dim(&self) -> usize {
        self.dim
    }

    fn init_std(&self) -> f64 {
        self.init_std
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        common::embed_items_and_history(g, "srgnn", self.dim, self.init_std)
    }

    /// The hybrid session embedding `s_h` `[B, d]`.
    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        let (h, mask) = common::history(g, emb)?;
        let ids = g.input("history");
        let (b, l, d) = (h.dim(0), h.dim(1), self.dim);
        let s = SessionBatch::new(&g.values(ids)?, &g.values(mask)?, b, l, g.schema().n_items)?;
        let n = s.n;
        let (bi, li, ni, di) = (b as i64, l as i64, n as i64, d as i64);
        let a_out = g.constant(&s.a_out, &[b, n, n]);
        let a_in = g.constant(&s.a_in, &[b, n, n]);
        // v^0: each node's embedding, read from the (possibly rewritten) history.
        let flat_h = h.reshape(&[-1, di]);
        let mut v = flat_h
            .index_select(g.constant(&s.node_pos, &[b * n]), 0)
            .reshape(&[bi, ni, di]);
        for _ in 0..self.steps {
            v = self.gnn_step(g, v, a_out, a_in);
        }
        let flat_v = v.reshape(&[-1, di]);
        // Node state of every click [B, L, d] and of the last click [B, d].
        let clicks = flat_v
            .index_select(g.constant(&s.alias, &[b * l]), 0)
            .reshape(&[bi, li, di]);
        let has_last = g.constant(&s.has_last, &[b, 1]);
        let s_l = flat_v.index_select(g.constant(&s.last, &[b]), 0) * has_last;
        let c = g.param("attention.c", &[d], Init::ZEROS);
        let act = (self.linear("attention.w1", d).forward(g, s_l).unsqueeze(1)
            + self.linear("attention.w2", d).forward(g, clicks)
            + c)
            .sigmoid();
        let alpha = Linear::new("attention.q", d, 1)
            .no_bias()
            .forward(g, act)
            .squeeze(-1)
            * mask;
        let s_g = (alpha.unsqueeze(-1) * clicks).sum(1);
        Ok(self
            .linear("w3", 2 * d)
            .forward(g, g.concat(&[s_l, s_g], -1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clicks(items: &[u32]) -> Vec<(usize, u32)> {
        items.iter().copied().enumerate().collect()
    }

    #[test]
    fn session_graph_of_a_sequence_with_a_repeat() {
        // [3, 5, 3, 7]: nodes 3, 5, 7; edges 3->5, 5->3, 3->7.
        let s = SessionGraph::new(&clicks(&[3, 5, 3, 7]));
        assert_eq!(s.nodes, vec![3, 5, 7]);
        assert_eq!(s.first, vec![0, 1, 3]);
        assert_eq!(s.alias, vec![(0, 0), (1, 1), (2, 0), (3, 2)]);
        assert_eq!(s.last(), Some(2));
        // Out: 3 -> {5, 7} half each; 5 -> 3; 7 has no outgoing edge.
        #[rustfmt::skip]
        let a_out = vec![
            0.0, 0.5, 0.5,
            1.0, 0.0, 0.0,
            0.0, 0.0, 0.0,
        ];
        // In: 3 <- 5; 5 <- 3; 7 <- 3.
        #[rustfmt::skip]
        let a_in = vec![
            0.0, 1.0, 0.0,
            1.0, 0.0, 0.0,
            1.0, 0.0, 0.0,
        ];
        assert_eq!(s.a_out, a_out);
        assert_eq!(s.a_in, a_in);
    }

    #[test]
    fn repeated_edges_and_self_loops_count_with_multiplicity() {
        // [1, 2, 1, 2, 2]: 1->2 twice, 2->1 once, 2->2 once.
        let s = SessionGraph::new(&clicks(&[1, 2, 1, 2, 2]));
        assert_eq!(s.nodes, vec![1, 2]);
        assert_eq!(s.a_out, vec![0.0, 1.0, 0.5, 0.5]);
        // In-degree of 1: 1 (from 2); of 2: 3 (1->2 twice, 2->2 once).
        assert_eq!(s.a_in, vec![0.0, 1.0, 2.0 / 3.0, 1.0 / 3.0]);
        let single = SessionGraph::new(&clicks(&[9]));
        assert_eq!((single.a_out, single.a_in), (vec![0.0], vec![0.0]));
        let empty = SessionGraph::new(&[]);
        assert!(empty.nodes.is_empty() && empty.last().is_none());
    }

    #[test]
    fn batch_pads_nodes_and_points_into_flat_tensors() {
        // Row 0: [3, 5, 3, 7]; row 1: [4] then padding; row 2: empty. L = 4.
        let ids = [3.0, 5.0, 3.0, 7.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let mask = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let s = SessionBatch::new(&ids, &mask, 3, 4, 10).unwrap();
        assert_eq!(s.n, 3);
        // Row 0's nodes first clicked at positions 0, 1, 3; row 1's node at flat position 4.
        assert_eq!(
            s.node_pos,
            vec![0.0, 1.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            s.alias,
            vec![0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(s.last, vec![2.0, 3.0, 0.0]);
        assert_eq!(s.has_last, vec![1.0, 1.0, 0.0]);
        assert_eq!(
            &s.a_out[..9],
            &[0.0, 0.5, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!(s.a_out[9..].iter().all(|&x| x == 0.0));
        assert_eq!(&s.a_in[..9], &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        // An all-empty batch still has one (padding) node per row.
        let e = SessionBatch::new(&[0.0; 4], &[0.0; 4], 2, 2, 10).unwrap();
        assert_eq!((e.n, e.has_last.clone()), (1, vec![0.0, 0.0]));
    }

    #[test]
    fn batch_rejects_bad_ids_and_shapes() {
        let err = SessionBatch::new(&[1.0, 12.0], &[1.0, 1.0], 1, 2, 10).unwrap_err();
        assert!(err.contains("position 1 holds 12"), "{err}");
        assert!(SessionBatch::new(&[1.5], &[1.0], 1, 1, 10).is_err());
        assert!(SessionBatch::new(&[1.0], &[1.0], 2, 1, 10).is_err());
        // Padding ids are not checked.
        assert!(SessionBatch::new(&[1.0, 99.0], &[1.0, 0.0], 1, 2, 10).is_ok());
    }
}
