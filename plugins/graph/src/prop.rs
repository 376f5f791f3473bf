//! Message passing on the host graph over a [`Subgraph`]: the one routine
//! both graph backbones use for training steps (a batch's K-hop subgraph)
//! and for whole-graph inference ([`Subgraph::full`]).
//!
//! A layer sums source rows along the edges into their targets in one op
//! (`edge_sum`: no per-edge message rows are made); edge lists travel as
//! constants. Edge weights factor into a target and a source factor
//! ([`crate::graph::BiGraph::target_scale`]), so they scale node rows rather
//! than edge rows. Max aggregation pads each target's neighbours to a
//! power of two (targets grouped by width, padding repeats a neighbour) and
//! takes the max as the mean of the entries attaining it,
//! `sum(x * hit) / sum(hit)` with `hit` the (constant) indicator of
//! `x == max`: the value is the max, and the gradient splits ties evenly
//! (a plain reduce-max hands the full gradient to every tied entry, which
//! is wrong when items share a feature vector or a neighbour is repeated).
//! No dense adjacency is ever built.

use causalrec_sdk::{Ctx, Result, Var};

use crate::graph::{BiGraph, Subgraph};

/// How a layer aggregates its neighbours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggr {
    /// `sum_s w_ts x_s` with the subgraph's edge weights.
    Sum,
    /// Element-wise `max_s x_s`.
    Max,
}

/// A 1-D id constant.
pub fn ids<'c>(g: &'c Ctx<'_, '_>, ids: &[u32]) -> Var<'c> {
    let v: Vec<f64> = ids.iter().map(|&x| f64::from(x)).collect();
    g.constant(&v, &[ids.len()])
}

/// `[rows, dim]` zeros.
pub fn zeros<'c>(g: &'c Ctx<'_, '_>, rows: usize, dim: usize) -> Var<'c> {
    g.scalar(0.0).broadcast_as(&[rows, dim])
}

/// The edge constants of one subgraph on the current step's graph.
pub struct Plan<'c, 's> {
    pub sub: &'s Subgraph,
    /// `(targets [E], sources [E], target factors [T, 1])`, absent without edges.
    edges: Option<(Var<'c>, Var<'c>, Var<'c>)>,
    /// Source factors `[N, 1]`, absent when all 1.
    src_scale: Option<Var<'c>>,
}

impl<'c, 's> Plan<'c, 's> {
    /// Send the edge lists of `sub` to the graph (once per propagation).
    pub fn new(g: &'c Ctx<'_, '_>, sub: &'s Subgraph) -> Plan<'c, 's> {
        let e = sub.n_edges();
        let edges = (e > 0).then(|| {
            (
                ids(g, &sub.edge_targets()),
                ids(g, &sub.src),
                g.constant(&sub.tgt_scale, &[sub.tgt_scale.len(), 1]),
            )
        });
        let src_scale = (e > 0 && !sub.src_scale.is_empty())
            .then(|| g.constant(&sub.src_scale, &[sub.src_scale.len(), 1]));
        Plan {
            sub,
            edges,
            src_scale,
        }
    }

    /// Layer `l` (1-based) aggregation: `x` holds the previous layer's rows
    /// of the first `layer_sources(l)` local nodes; the result holds the
    /// first `layer_targets(l)` (zero for a target without neighbours).
    pub fn aggregate(&self, g: &'c Ctx<'_, '_>, x: Var<'c>, l: usize, aggr: Aggr) -> Var<'c> {
        let (nt, e) = (self.sub.layer_targets(l), self.sub.layer_edges(l));
        let d = x.dim(-1);
        let Some((tgt, src, a)) = self.edges.filter(|_| e > 0) else {
            return zeros(g, nt, d);
        };
        match aggr {
            // Weights factor as a[t] * b[s]: scale the node rows, not the
            // (many more) edge rows.
            Aggr::Sum => {
                let x = match self.src_scale {
                    Some(b) => x * b.narrow(0, 0, self.sub.layer_sources(l)),
                    None => x,
                };
                x.edge_sum(src.narrow(0, 0, e), tgt.narrow(0, 0, e), nt) * a.narrow(0, 0, nt)
            }
            Aggr::Max => {
                let mut out = zeros(g, nt, d);
                for b in self.sub.max_buckets(l) {
                    let (rows, w) = (b.targets.len(), b.width);
                    let x3 = x.index_select(ids(g, &b.sources), 0).reshape(&[
                        rows as i64,
                        w as i64,
                        d as i64,
                    ]);
                    // 1 where an entry attains its target's max, ties included.
                    let top = x3.max_keepdim(1).detach();
                    let hit = g
                        .scalar(1.0)
                        .broadcast_as(&[rows, w, d])
                        .masked_fill(x3.detach() - top, 0.0);
                    let m = (x3 * hit).sum(1) / hit.sum(1);
                    out = out.index_add(ids(g, &b.targets), m, 0);
                }
                out
            }
        }
    }
}

/// Per-node rows in the subgraph's local order from a user-side and an
/// item-side tensor whose rows follow [`Subgraph::tables`].
pub fn assemble<'c>(
    g: &'c Ctx<'_, '_>,
    users: Option<Var<'c>>,
    items: Option<Var<'c>>,
    perm: Option<&[u32]>,
) -> Var<'c> {
    let x = match (users, items) {
        (Some(u), Some(i)) => g.concat(&[u, i], 0),
        (Some(u), None) => u,
        (None, Some(i)) => i,
        (None, None) => {
            g.set_error("graph propagation over a subgraph without nodes");
            return g.scalar(0.0);
        }
    };
    match perm {
        Some(p) => x.index_select(ids(g, p), 0),
        None => x,
    }
}

/// The batch's users and items as global node ids: `(users, items)`, where
/// `items` is `None` for batches of users only (all-item scoring).
pub fn batch_nodes(g: &Ctx<'_, '_>, graph: &BiGraph) -> Result<(Vec<u32>, Option<Vec<u32>>)> {
    let node_ids = |name: &str, n: usize, offset: usize| -> Result<Vec<u32>> {
        g.values(g.input(name))?
            .into_iter()
            .map(|v| {
                if v >= 0.0 && v.fract() == 0.0 && (v as usize) < n {
                    Ok((v as usize + offset) as u32)
                } else {
                    Err(format!(
                        "batch input '{name}' holds {v}, outside 0..{n} of the graph built in prepare"
                    ))
                }
            })
            .collect()
    };
    let users = node_ids("user", graph.n_users(), 0)?;
    let items = if g.has_input("item") {
        Some(node_ids("item", graph.n_items(), graph.n_users())?)
    } else {
        None
    };
    Ok((users, items))
}

/// Rows `nodes` (global ids) of `x` (rows in the subgraph's local order).
pub fn rows_of<'c>(
    g: &'c Ctx<'_, '_>,
    sub: &Subgraph,
    x: Var<'c>,
    nodes: &[u32],
) -> Result<Var<'c>> {
    let local: Vec<u32> = nodes
        .iter()
        .map(|&v| {
            sub.local(v)
                .ok_or_else(|| format!("node {v} is not in the propagation subgraph"))
        })
        .collect::<Result<_>>()?;
    Ok(x.index_select(ids(g, &local), 0))
}
