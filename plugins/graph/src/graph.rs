//! The user-item bipartite graph of the training interactions, and the
//! computation subgraphs the graph backbones propagate over (pure Rust: no
//! tensors here).
//!
//! # Nodes and edges
//!
//! One node per user (`0..n_users`) and per item (`n_users + i`); an
//! undirected edge per distinct training (user, item) pair, stored in both
//! directions as one CSR over all nodes. The pairs are the rows of part
//! `train_positive` when the data has it (implicit feedback: the training
//! positives), else of part `train` (only rows with label > 0 when the run
//! has labels).
//!
//! # K-hop subgraphs and why they are exact
//!
//! A K-layer graph convolution computes the layer-k value of a node from
//! layer-(k-1) values of its neighbours (and, in MMGCN, of the node itself).
//! Let `S_0` be the batch's nodes and `S_j = S_{j-1} ∪ N(S_{j-1})` the nodes
//! within j hops. Layer k need only be evaluated on `S_{K-k}`: its inputs are
//! the layer-(k-1) values on `S_{K-k} ∪ N(S_{K-k}) = S_{K-k+1}`, exactly where
//! layer k-1 was evaluated, and layer 0 (the embedding lookup) covers `S_K`.
//! By induction on k, every layer's value on `S_{K-k}` equals its value on
//! the whole graph, provided that
//! 1. each target of layer k aggregates over *all* of its neighbours (they
//!    all lie in `S_{K-k+1}`, so the subgraph keeps every edge out of a node
//!    of `S_{K-1}`), and
//! 2. edge weights use the degrees of the *whole* graph: a node on the
//!    boundary of the subgraph has lost neighbours, so its subgraph degree
//!    is wrong, but its full-graph degree is what `1/sqrt(|N_u||N_i|)` and
//!    `1/|N_t|` need.
//!
//! In particular every layer's value on the batch nodes `S_0` is the
//! full-graph value, which is all a training step reads.
//!
//! Local node numbers follow hop order, so `S_j` is a prefix of the local
//! numbering (`hop_size[j]` long), and edges are sorted by target, so the
//! edges into `S_j` are a prefix of the edge list (`offsets[hop_size[j]]`
//! long): layer k narrows both. The whole graph is the same structure with
//! every prefix equal to all nodes ([`Subgraph::full`]), so one propagation
//! routine serves training steps and whole-graph inference.
//!
//! With `max_neighbors > 0` each target keeps a uniform sample of at most
//! that many neighbours (drawn once per step, seeded by the batch), and its
//! edge weights are scaled by `|N_t| / sampled`: a weighted sum stays an
//! unbiased estimate and a mean becomes the sample mean. Only
//! `max_neighbors = 0` is exact.

use std::borrow::Cow;
use std::collections::HashMap;

use causalrec_sdk::{Result, TrainData};

/// Node ids travel to the host as float constants; f32 represents every
/// integer below 2^24 exactly.
pub const MAX_NODES: usize = 1 << 24;

/// Edge normalisation, always from full-graph degrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// `1 / sqrt(|N_t| |N_s|)` (GCN / LightGCN symmetric normalisation).
    Symmetric,
    /// `1 / |N_t|` (mean over the target's neighbours).
    Mean,
}

/// The user-item bipartite graph (both directions, one CSR over all nodes).
#[derive(Clone, Debug)]
pub struct BiGraph {
    n_users: usize,
    n_items: usize,
    offsets: Vec<usize>,
    adj: Vec<u32>,
    /// Where the edges came from (for messages).
    pub source: String,
}

impl BiGraph {
    /// The graph of distinct `(user, item)` pairs.
    pub fn from_pairs(n_users: usize, n_items: usize, pairs: &[(u32, u32)]) -> Result<BiGraph> {
        let n = n_users + n_items;
        if n >= MAX_NODES {
            return Err(format!(
                "the user-item graph has {n} nodes; graph backbones support fewer than {MAX_NODES}"
            ));
        }
        let mut edges: Vec<(u32, u32)> = Vec::with_capacity(pairs.len() * 2);
        for &(u, i) in pairs {
            if u as usize >= n_users {
                return Err(format!("user id {u} out of range (n_users = {n_users})"));
            }
            if i as usize >= n_items {
                return Err(format!("item id {i} out of range (n_items = {n_items})"));
            }
            let iv = (n_users + i as usize) as u32;
            edges.push((u, iv));
            edges.push((iv, u));
        }
        edges.sort_unstable();
        edges.dedup();
        let mut offsets = vec![0usize; n + 1];
        for &(a, _) in &edges {
            offsets[a as usize + 1] += 1;
        }
        for v in 0..n {
            offsets[v + 1] += offsets[v];
        }
        Ok(BiGraph {
            n_users,
            n_items,
            offsets,
            adj: edges.into_iter().map(|e| e.1).collect(),
            source: String::new(),
        })
    }

    /// The graph of the training interactions (see the module doc for which rows).
    pub fn from_train_data(data: &TrainData) -> Result<BiGraph> {
        let n_rows = data.user.len();
        if data.item.len() != n_rows {
            return Err(format!(
                "the interaction table has {} user ids but {} item ids",
                n_rows,
                data.item.len()
            ));
        }
        let (rows, source): (Vec<u32>, &str) = match data.part("train_positive") {
            Some(p) if !p.is_empty() => (p.to_vec(), "train_positive"),
            _ => {
                let train = data.require_part("train")?;
                if data.label.is_empty() {
                    (train.to_vec(), "train")
                } else {
                    let mut rows = Vec::new();
                    for &r in train {
                        let y = data.label.get(r as usize).ok_or_else(|| {
                            format!(
                                "part 'train' row {r} has no label ({} labels)",
                                data.label.len()
                            )
                        })?;
                        if *y > 0.0 {
                            rows.push(r);
                        }
                    }
                    (rows, "train (label > 0)")
                }
            }
        };
        let mut pairs = Vec::with_capacity(rows.len());
        for &r in &rows {
            let r = r as usize;
            if r >= n_rows {
                return Err(format!(
                    "part '{source}' names row {r}, but the interaction table has {n_rows} rows"
                ));
            }
            pairs.push((data.user[r], data.item[r]));
        }
        if pairs.is_empty() {
            return Err(format!(
                "no training interactions to build the user-item graph from (part '{source}' is empty)"
            ));
        }
        let mut g = BiGraph::from_pairs(data.n_users as usize, data.n_items as usize, &pairs)?;
        g.source = source.to_string();
        Ok(g)
    }

    pub fn n_users(&self) -> usize {
        self.n_users
    }
    pub fn n_items(&self) -> usize {
        self.n_items
    }
    /// Users plus items.
    pub fn n_nodes(&self) -> usize {
        self.n_users + self.n_items
    }
    /// Distinct user-item pairs.
    pub fn n_edges(&self) -> usize {
        self.adj.len() / 2
    }
    /// The node of item `i`.
    pub fn item_node(&self, i: u32) -> u32 {
        (self.n_users + i as usize) as u32
    }
    /// Neighbours of node `v` (global node ids).
    pub fn neighbours(&self, v: u32) -> &[u32] {
        let v = v as usize;
        &self.adj[self.offsets[v]..self.offsets[v + 1]]
    }
    /// Degree of node `v` in the whole graph.
    pub fn degree(&self, v: u32) -> usize {
        let v = v as usize;
        self.offsets[v + 1] - self.offsets[v]
    }
    /// The target factor of the weights into `t` when it keeps `kept` of
    /// its neighbours: edge weights factor as `target(t) * source(s)`, with
    /// the sampling correction `|N_t| / kept` folded into the target factor.
    pub fn target_scale(&self, norm: Norm, t: u32, kept: usize) -> f64 {
        if kept == 0 {
            return 0.0;
        }
        let (dt, k) = (self.degree(t) as f64, kept as f64);
        match norm {
            // 1/sqrt(|N_t|) * |N_t|/kept
            Norm::Symmetric => dt.sqrt() / k,
            // 1/|N_t| * |N_t|/kept
            Norm::Mean => 1.0 / k,
        }
    }
    /// The source factor of the weights out of `s` (1 for [`Norm::Mean`]).
    pub fn source_scale(&self, norm: Norm, s: u32) -> f64 {
        match norm {
            Norm::Symmetric => 1.0 / (self.degree(s).max(1) as f64).sqrt(),
            Norm::Mean => 1.0,
        }
    }
}

/// A small deterministic generator (splitmix64) for neighbour sampling.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n >= 1).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One group of max-aggregation targets padded to the same width.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxBucket {
    /// Padded neighbour count (a power of two).
    pub width: usize,
    /// Local target ids.
    pub targets: Vec<u32>,
    /// `targets.len() * width` local source ids, row-major; a target with
    /// fewer neighbours repeats its first one (a repeat never changes a max).
    pub sources: Vec<u32>,
}

/// The nodes and edges one propagation runs over (see the module doc).
#[derive(Clone, Debug)]
pub struct Subgraph {
    /// Global node ids in local order (hop order).
    pub nodes: Vec<u32>,
    /// `hop_size[j] = |S_j|`, for `j = 0..=K`.
    pub hop_size: Vec<usize>,
    /// Local CSR over the targets `0..hop_size[K-1]`: the edges into local
    /// node `t` are `offsets[t]..offsets[t + 1]`.
    pub offsets: Vec<usize>,
    /// Local source of each edge.
    pub src: Vec<u32>,
    /// The weight of edge `s -> t` is `tgt_scale[t] * src_scale[s]`
    /// (full-graph normalisation, see [`BiGraph::target_scale`]); one entry
    /// per target `0..hop_size[K-1]`.
    pub tgt_scale: Vec<f64>,
    /// One entry per node; empty when every source factor is 1.
    pub src_scale: Vec<f64>,
    /// Global -> local ids (empty for the whole graph, where they agree).
    index: HashMap<u32, u32>,
    full: bool,
}

/// Source factors of `nodes`, or nothing when they are all 1.
fn source_scales(graph: &BiGraph, norm: Norm, nodes: &[u32]) -> Vec<f64> {
    match norm {
        Norm::Mean => Vec::new(),
        Norm::Symmetric => nodes.iter().map(|&s| graph.source_scale(norm, s)).collect(),
    }
}

fn fnv(ids: &[u32]) -> u64 {
    ids.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Subgraph {
    /// The K-hop computation subgraph of `seeds` (global node ids, repeats
    /// allowed); `max_neighbors = 0` keeps every neighbour (exact).
    pub fn expand(
        graph: &BiGraph,
        seeds: &[u32],
        hops: usize,
        max_neighbors: usize,
        norm: Norm,
        seed: u64,
    ) -> Result<Subgraph> {
        if seeds.is_empty() {
            return Err("the batch has no users or items to propagate to".into());
        }
        let n = graph.n_nodes();
        let mut index: HashMap<u32, u32> = HashMap::new();
        let mut nodes: Vec<u32> = Vec::new();
        for &s in seeds {
            if s as usize >= n {
                return Err(format!("node {s} is outside the graph ({n} nodes)"));
            }
            index.entry(s).or_insert_with(|| {
                nodes.push(s);
                (nodes.len() - 1) as u32
            });
        }
        let mut hop_size = vec![nodes.len()];
        let mut offsets = vec![0usize];
        let (mut src, mut tgt_scale) = (Vec::new(), Vec::new());
        let mut rng = SplitMix(seed ^ fnv(seeds));
        let mut start = 0;
        for _ in 0..hops {
            let end = nodes.len();
            for t in start..end {
                let v = nodes[t];
                let nb = graph.neighbours(v);
                let chosen: Cow<'_, [u32]> = if max_neighbors > 0 && nb.len() > max_neighbors {
                    let mut c = nb.to_vec();
                    for j in 0..max_neighbors {
                        let r = j + rng.below(c.len() - j);
                        c.swap(j, r);
                    }
                    c.truncate(max_neighbors);
                    Cow::Owned(c)
                } else {
                    Cow::Borrowed(nb)
                };
                tgt_scale.push(graph.target_scale(norm, v, chosen.len()));
                for &s in chosen.iter() {
                    let ls = *index.entry(s).or_insert_with(|| {
                        nodes.push(s);
                        (nodes.len() - 1) as u32
                    });
                    src.push(ls);
                }
                offsets.push(src.len());
            }
            start = end;
            hop_size.push(nodes.len());
        }
        let src_scale = source_scales(graph, norm, &nodes);
        Ok(Subgraph {
            nodes,
            hop_size,
            offsets,
            src,
            tgt_scale,
            src_scale,
            index,
            full: false,
        })
    }

    /// The whole graph as a subgraph: every prefix is every node.
    pub fn full(graph: &BiGraph, hops: usize, norm: Norm) -> Subgraph {
        let n = graph.n_nodes();
        let nodes: Vec<u32> = (0..n as u32).collect();
        let (offsets, src, tgt_scale) = if hops == 0 {
            (vec![0], Vec::new(), Vec::new())
        } else {
            let tgt_scale = nodes
                .iter()
                .map(|&t| graph.target_scale(norm, t, graph.degree(t)))
                .collect();
            (graph.offsets.clone(), graph.adj.clone(), tgt_scale)
        };
        let src_scale = source_scales(graph, norm, &nodes);
        Subgraph {
            nodes,
            hop_size: vec![n; hops + 1],
            offsets,
            src,
            tgt_scale,
            src_scale,
            index: HashMap::new(),
            full: true,
        }
    }

    /// K.
    pub fn hops(&self) -> usize {
        self.hop_size.len() - 1
    }
    /// Nodes in the subgraph.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// True when it has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Edges in the subgraph.
    pub fn n_edges(&self) -> usize {
        self.src.len()
    }
    /// How many nodes layer `l` (1-based) computes: `|S_{K-l}|`.
    pub fn layer_targets(&self, l: usize) -> usize {
        self.hop_size[self.hops() - l]
    }
    /// How many nodes layer `l` reads: `|S_{K-l+1}|`.
    pub fn layer_sources(&self, l: usize) -> usize {
        self.hop_size[self.hops() + 1 - l]
    }
    /// How many edges layer `l` uses (a prefix of the edge list).
    pub fn layer_edges(&self, l: usize) -> usize {
        self.offsets[self.layer_targets(l)]
    }
    /// The weight of edge `e` into local target `t`.
    pub fn weight(&self, e: usize, t: u32) -> f64 {
        let s = self.src[e] as usize;
        self.tgt_scale[t as usize] * self.src_scale.get(s).copied().unwrap_or(1.0)
    }
    /// The local target of each edge.
    pub fn edge_targets(&self) -> Vec<u32> {
        let mut t = Vec::with_capacity(self.src.len());
        for (v, w) in self.offsets.windows(2).enumerate() {
            t.extend(std::iter::repeat_n(v as u32, w[1] - w[0]));
        }
        t
    }
    /// The local id of a global node.
    pub fn local(&self, global: u32) -> Option<u32> {
        if self.full {
            ((global as usize) < self.nodes.len()).then_some(global)
        } else {
            self.index.get(&global).copied()
        }
    }
    /// Table rows to look up: user ids and item ids (each in local order),
    /// and the permutation that puts `concat(users, items)` in local order
    /// (`None` when that is already the local order).
    pub fn tables(&self, n_users: usize) -> (Vec<u32>, Vec<u32>, Option<Vec<u32>>) {
        let (mut users, mut items) = (Vec::new(), Vec::new());
        let mut pos = Vec::with_capacity(self.nodes.len());
        for &v in &self.nodes {
            if (v as usize) < n_users {
                pos.push((false, users.len()));
                users.push(v);
            } else {
                pos.push((true, items.len()));
                items.push(v - n_users as u32);
            }
        }
        let nu = users.len();
        let perm: Vec<u32> = pos
            .iter()
            .map(|&(is_item, p)| (if is_item { nu + p } else { p }) as u32)
            .collect();
        let identity = perm.iter().enumerate().all(|(i, &p)| p as usize == i);
        (users, items, (!identity).then_some(perm))
    }
    /// The targets of layer `l` grouped for max aggregation: targets with at
    /// least one neighbour, by neighbour count rounded up to a power of two.
    pub fn max_buckets(&self, l: usize) -> Vec<MaxBucket> {
        let mut by_width: Vec<MaxBucket> = Vec::new();
        for t in 0..self.layer_targets(l) {
            let (a, b) = (self.offsets[t], self.offsets[t + 1]);
            if a == b {
                continue;
            }
            let width = (b - a).next_power_of_two();
            let k = match by_width.iter().position(|m| m.width == width) {
                Some(k) => k,
                None => {
                    by_width.push(MaxBucket {
                        width,
                        targets: Vec::new(),
                        sources: Vec::new(),
                    });
                    by_width.len() - 1
                }
            };
            let m = &mut by_width[k];
            m.targets.push(t as u32);
            m.sources.extend_from_slice(&self.src[a..b]);
            m.sources
                .extend(std::iter::repeat_n(self.src[a], width - (b - a)));
        }
        by_width.sort_by_key(|m| m.width);
        by_width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A random bipartite graph with some isolated nodes.
    fn random_graph(n_users: usize, n_items: usize, n_pairs: usize, seed: u64) -> BiGraph {
        let mut rng = SplitMix(seed);
        let pairs: Vec<(u32, u32)> = (0..n_pairs)
            .map(|_| (rng.below(n_users - 1) as u32, rng.below(n_items - 1) as u32))
            .collect();
        BiGraph::from_pairs(n_users, n_items, &pairs).unwrap()
    }

    fn features(n: usize, d: usize, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = SplitMix(seed);
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|_| (rng.below(2001) as f64 - 1000.0) / 1000.0)
                    .collect()
            })
            .collect()
    }

    #[derive(Clone, Copy)]
    enum Agg {
        Sum,
        Max,
    }

    /// A K-layer propagation in plain Rust over a subgraph, mirroring the
    /// tensor code: layer l aggregates (weighted sum or max over buckets)
    /// the previous layer's values into the first `layer_targets(l)` nodes,
    /// then combines them with each target's own value through a
    /// nonlinearity (so the test also covers MMGCN-style layers that read
    /// the node itself). Returns the values of the batch nodes `S_0`.
    fn propagate(sub: &Subgraph, x0: &[Vec<f64>], agg: Agg) -> Vec<Vec<f64>> {
        let d = x0[0].len();
        let mut x: Vec<Vec<f64>> = sub.nodes.iter().map(|&v| x0[v as usize].clone()).collect();
        let tgt = sub.edge_targets();
        for l in 1..=sub.hops() {
            let nt = sub.layer_targets(l);
            let mut a = vec![vec![0.0; d]; nt];
            match agg {
                Agg::Sum => {
                    for (e, &t) in tgt.iter().enumerate().take(sub.layer_edges(l)) {
                        let (w, s) = (sub.weight(e, t), sub.src[e] as usize);
                        for k in 0..d {
                            a[t as usize][k] += w * x[s][k];
                        }
                    }
                }
                Agg::Max => {
                    for b in sub.max_buckets(l) {
                        for (j, &t) in b.targets.iter().enumerate() {
                            let row = &b.sources[j * b.width..(j + 1) * b.width];
                            for k in 0..d {
                                a[t as usize][k] = row
                                    .iter()
                                    .map(|&s| x[s as usize][k])
                                    .fold(f64::NEG_INFINITY, f64::max);
                            }
                        }
                    }
                }
            }
            x = (0..nt)
                .map(|t| (0..d).map(|k| (a[t][k] + 0.5 * x[t][k]).tanh()).collect())
                .collect();
        }
        x.truncate(sub.hop_size[0]);
        x
    }

    fn assert_close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn subgraph_result_equals_full_graph_result_for_batch_nodes() {
        let g = random_graph(40, 60, 150, 1);
        let x0 = features(g.n_nodes(), 3, 2);
        for hops in 0..=3 {
            for norm in [Norm::Symmetric, Norm::Mean] {
                for agg in [Agg::Sum, Agg::Max] {
                    let full = Subgraph::full(&g, hops, norm);
                    let all = propagate(&full, &x0, agg);
                    let seeds = [3, 7, 3, g.item_node(5), g.item_node(59), 39, 0];
                    let sub = Subgraph::expand(&g, &seeds, hops, 0, norm, 0).unwrap();
                    assert!(sub.len() < g.n_nodes() || hops >= 2);
                    let part = propagate(&sub, &x0, agg);
                    assert_eq!(part.len(), sub.hop_size[0]);
                    for &s in &seeds {
                        let l = sub.local(s).unwrap() as usize;
                        assert!(l < sub.hop_size[0]);
                        assert_close(&part[l], &all[s as usize]);
                    }
                }
            }
        }
    }

    #[test]
    fn hop_sets_are_nested_prefixes_and_edges_are_complete() {
        let g = random_graph(30, 30, 60, 3);
        let seeds = [1, g.item_node(2)];
        let sub = Subgraph::expand(&g, &seeds, 3, 0, Norm::Symmetric, 0).unwrap();
        assert_eq!(sub.hops(), 3);
        assert!(sub.hop_size.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*sub.hop_size.last().unwrap(), sub.len());
        // every node of S_{K-1} has all of its neighbours, with full-graph weights
        for t in 0..sub.hop_size[2] {
            let v = sub.nodes[t];
            let (a, b) = (sub.offsets[t], sub.offsets[t + 1]);
            let mut got: Vec<u32> = sub.src[a..b]
                .iter()
                .map(|&s| sub.nodes[s as usize])
                .collect();
            got.sort_unstable();
            assert_eq!(got, g.neighbours(v));
            for e in a..b {
                let s = sub.nodes[sub.src[e] as usize];
                let w = 1.0 / ((g.degree(v) * g.degree(s)) as f64).sqrt();
                assert!((sub.weight(e, t as u32) - w).abs() < 1e-15);
            }
        }
        // layer l's sources lie in S_{K-l+1}
        for l in 1..=3 {
            let e = sub.layer_edges(l);
            assert!(sub.src[..e]
                .iter()
                .all(|&s| (s as usize) < sub.layer_sources(l)));
        }
    }

    #[test]
    fn sampling_caps_fanout_and_scales_weights() {
        let g = random_graph(10, 200, 800, 4);
        let sub = Subgraph::expand(&g, &[0, 1], 2, 5, Norm::Mean, 9).unwrap();
        for t in 0..sub.hop_size[1] {
            let (a, b) = (sub.offsets[t], sub.offsets[t + 1]);
            let deg = g.degree(sub.nodes[t]);
            assert_eq!(b - a, deg.min(5));
            for e in a..b {
                assert!((sub.weight(e, t as u32) - 1.0 / (b - a) as f64).abs() < 1e-15);
            }
        }
        // the same batch samples the same neighbours (grad checks replay batches)
        let again = Subgraph::expand(&g, &[0, 1], 2, 5, Norm::Mean, 9).unwrap();
        assert_eq!(sub.src, again.src);
    }

    #[test]
    fn tables_split_users_and_items_and_permute_back() {
        let g = random_graph(5, 5, 12, 5);
        let seeds = [g.item_node(1), 2, g.item_node(3), 0];
        let sub = Subgraph::expand(&g, &seeds, 1, 0, Norm::Mean, 0).unwrap();
        let (users, items, perm) = sub.tables(5);
        let cat: Vec<u32> = users
            .iter()
            .copied()
            .chain(items.iter().map(|&i| i + 5))
            .collect();
        let perm = perm.expect("items come first here");
        let back: Vec<u32> = perm.iter().map(|&p| cat[p as usize]).collect();
        assert_eq!(back, sub.nodes);
        let full = Subgraph::full(&g, 2, Norm::Mean);
        assert!(full.tables(5).2.is_none());
    }

    #[test]
    fn graph_from_train_data_prefers_train_positive() {
        use causalrec_sdk::DataPart;
        let mut d = TrainData {
            n_users: 2,
            n_items: 3,
            user: vec![0, 0, 1, 1].into(),
            item: vec![0, 1, 1, 2].into(),
            label: vec![1.0, 0.0, 1.0, 0.0].into(),
            ..TrainData::default()
        };
        d.parts.push(DataPart {
            name: "train".into(),
            rows: vec![0, 1, 2, 3].into(),
        });
        let g = BiGraph::from_train_data(&d).unwrap();
        assert_eq!(g.n_edges(), 2, "label > 0 rows only");
        d.parts.push(DataPart {
            name: "train_positive".into(),
            rows: vec![0, 1, 3].into(),
        });
        let g = BiGraph::from_train_data(&d).unwrap();
        assert_eq!(g.n_edges(), 3);
        assert_eq!(g.source, "train_positive");
        assert_eq!(g.neighbours(0), &[2, 3]);
        let d0 = TrainData {
            n_users: 1,
            n_items: 1,
            ..TrainData::default()
        };
        let e = BiGraph::from_train_data(&d0).unwrap_err();
        assert!(e.contains("no part 'train'"), "{e}");
    }
}
