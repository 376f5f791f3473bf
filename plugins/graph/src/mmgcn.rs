//! MMGCN (Wei et al. 2019, "MMGCN: Multi-modal Graph Convolution Network
//! for Personalized Recommendation of Micro-video").
//!
//! One graph convolution per modality `m` over the user-item bipartite
//! graph. Layer-0 node inputs: item `i` takes its modality feature `i_m`
//! (here projected to `latent` dims by a linear layer, or the raw feature
//! with `latent = 0`); user `u` takes a learned preference vector `u_m` of
//! the same width (table `user_pref.<m>`). Every node also has an id
//! embedding `u_id` / `i_id` (tables `user`, `item`, width `dim`), shared
//! across modalities. Layer `l = 1..L` of modality `m`, for a node `v`
//! (users and items alike; the weights are per modality and layer):
//! - aggregation (Eqs. 1-3):
//!   `h_m = LeakyReLU(1/|N_v| sum_{j in N_v} W1_m x_j)` (`aggr: "mean"`) or
//!   `h_m = LeakyReLU(max_{j in N_v} W1_m x_j)` (`aggr: "max"`, element-wise);
//! - combination (Eq. 5): `x^_v = LeakyReLU(W2_m x_v) + v_id`, then
//!   `x_v' = LeakyReLU(W3_m [h_m ; x^_v])` (Eq. 6, `concat: true`) or
//!   `x_v' = LeakyReLU(W3_m h_m + x^_v)` (Eq. 7, `concat: false`),
//!
//! where `x` is the previous layer's representation (the layer-0 input for
//! `l = 1`). `W1_m` maps to `dim` (so `d'_m = dim`), `W2_m` and `W3_m` map
//! to `dim`; no biases, LeakyReLU slope 0.01. Prediction: the sums over
//! modalities `u* = sum_m u_m^(L)`, `i* = sum_m i_m^(L)`, `y_ui = u*^T i*`
//! (trained here with the recipe's loss, BPR in the paper).
//!
//! Named outputs of `embed` (for estimators that combine modality scores,
//! e.g. HCR): `modality:<m>` = `i_m^(L)` of the batch's items and
//! `user_modality:<m>` = `u_m^(L)` of its users (`[B, dim]` each), next to
//! `user` = `u*` and `item` = `i*`. `<m>` is the item field's name without
//! `item.` (e.g. `modality:genre`). An all-ranking batch (users only, at
//! inference) gets `all_modality:<m>` and `all_item` `[n_items, dim]` for
//! every item instead, from one whole-graph propagation.
//!
//! Modalities are the item fields of kind `float_seq` with role `modality`
//! (`dataset(.., #{modalities: ..})` builds them from categorical fields);
//! `prepare` reads each whole matrix from the training data's item
//! columns, and errors when there is none. The graph and the K-hop
//! training subgraphs are those of [`crate::graph`] (mean normalisation
//! `1/|N_v|` from full-graph degrees), so training steps touch only the
//! batch's L-hop neighbourhood and are exact with `max_neighbors = 0`;
//! `score_all` (inference) propagates over the whole graph.

use causalrec_sdk::nn::Linear;
use causalrec_sdk::{ComponentDef, Ctx, Emb, Init, ParamSpec, Params, Result, TrainData, Var};

use crate::common::{self, GraphBackbone, GraphCore, GraphModel, Prepared};
use crate::graph::{Norm, Subgraph};
use crate::prop::{self, Aggr, Plan};

/// LeakyReLU negative slope.
const SLOPE: f64 = 0.01;

/// One modality's item feature matrix.
#[derive(Debug)]
pub struct Modality {
    name: String,
    dim: usize,
    /// `n_items * dim`, row-major.
    values: Vec<f32>,
}

impl Modality {
    /// Rows `items` as a constant `[items.len(), dim]`.
    fn rows<'c>(&self, g: &'c Ctx<'_, '_>, items: &[u32]) -> Var<'c> {
        let mut v = Vec::with_capacity(items.len() * self.dim);
        for &i in items {
            let r = i as usize * self.dim;
            v.extend(self.values[r..r + self.dim].iter().map(|&x| f64::from(x)));
        }
        g.constant(&v, &[items.len(), self.dim])
    }
}

type State = Prepared<Vec<Modality>>;

pub struct Mmgcn {
    core: GraphCore<Vec<Modality>>,
    aggr: Aggr,
    concat: bool,
    latent: usize,
    /// Modality names to use (empty = every modality field).
    wanted: Vec<String>,
}

pub fn def() -> ComponentDef {
    let mut params = common::param_specs(
        "id embedding and representation size",
        2,
        "L, graph convolution layers per modality (>= 1)",
    );
    params.extend([
        ParamSpec::new("aggr", "mean", "aggregation layer: mean (Eq. 2) or max (Eq. 3)"),
        ParamSpec::new(
            "concat",
            false,
            "combination layer: true = W3 [h ; x^] (Eq. 6), false = W3 h + x^ (Eq. 7)",
        ),
        ParamSpec::new(
            "latent",
            64,
            "width of the projected item features and user preference vectors (0 = raw feature width, no projection)",
        ),
        ParamSpec::new(
            "modalities",
            "",
            "comma-separated modality names to use (empty = every item field with role modality)",
        ),
    ]);
    ComponentDef::backbone(
        "mmgcn",
        "MMGCN: one graph convolution per item modality (aggregation + combination layers with id embeddings), modality representations summed, dot product",
        params,
        |p: &Params| {
            let aggr = match p.string("aggr")?.as_str() {
                "mean" => Aggr::Sum,
                "max" => Aggr::Max,
                other => return Err(format!("mmgcn: aggr must be 'mean' or 'max', got '{other}'")),
            };
            Ok(GraphBackbone(Mmgcn {
                core: GraphCore::new("mmgcn", p, 1, Norm::Mean)?,
                aggr,
                concat: p.bool("concat")?,
                latent: p.usize("latent")?,
                wanted: p
                    .string("modalities")?
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            }))
        },
    )
}

/// The modality matrices of `data` (item columns with role `modality`).
fn read_modalities(data: &TrainData, wanted: &[String]) -> Result<Vec<Modality>> {
    let n = data.n_items as usize;
    let fields = || {
        let names: Vec<String> = data
            .items
            .iter()
            .map(|c| format!("{} ({})", c.name, c.role))
            .collect();
        if names.is_empty() {
            "the data has no item features".to_string()
        } else {
            format!("item fields: {}", names.join(", "))
        }
    };
    let cols: Vec<_> = data
        .items
        .iter()
        .filter(|c| c.role.as_str() == "modality")
        .collect();
    if cols.is_empty() {
        return Err(format!(
            "mmgcn needs item modality features: item float_seq fields with role 'modality', and \
             there are none ({}); build them with dataset(.., #{{modalities: #{{genre: \"<token field>\", \
             title: #{{from: \"<text field>\", hash: 64}}}}}})",
            fields()
        ));
    }
    for w in wanted {
        if !cols.iter().any(|c| c.name.as_str() == w) {
            return Err(format!(
                "mmgcn: modality '{w}' is not an item modality field (modality fields: {})",
                cols.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut out = Vec::new();
    for c in cols {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == c.name.as_str()) {
            continue;
        }
        let name = c.name.to_string();
        let (dim, values) = c.dense_rows(n, &format!("mmgcn: modality '{name}'"))?;
        out.push(Modality { name, dim, values });
    }
    Ok(out)
}

impl Mmgcn {
    /// Width of the layer-0 node inputs of a modality.
    fn width0(&self, m: &Modality) -> usize {
        if self.latent > 0 {
            self.latent
        } else {
            m.dim
        }
    }

    fn declare(&self, g: &Ctx<'_, '_>, st: &State) {
        let s = g.schema();
        let init = Init::normal(self.core.init_std);
        g.embedding("user", s.n_users as usize, self.core.dim, init);
        g.embedding("item", s.n_items as usize, self.core.dim, init);
        for m in &st.extra {
            g.embedding(
                &format!("user_pref.{}", m.name),
                s.n_users as usize,
                self.width0(m),
                init,
            );
        }
    }

    /// Every modality's layer-L representation of the batch nodes `S_0` of
    /// `sub`, given the rows of every node of `sub` (local order) of the id
    /// embeddings and of each modality's user preference table, and the
    /// items of `sub` (table ids, local order).
    fn propagate<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        st: &State,
        sub: &Subgraph,
        inputs: &Inputs<'c, '_>,
    ) -> Vec<Var<'c>> {
        let plan = Plan::new(g, sub);
        let d = self.core.dim;
        st.extra
            .iter()
            .zip(&inputs.prefs)
            .map(|(m, &pref)| {
                let items = (!inputs.items.is_empty()).then(|| {
                    let f = m.rows(g, inputs.items);
                    if self.latent > 0 {
                        Linear::new(&format!("{}.proj", m.name), m.dim, self.latent).forward(g, f)
                    } else {
                        f
                    }
                });
                let mut x = prop::assemble(g, pref, items, inputs.perm);
                let mut width = self.width0(m);
                for l in 1..=self.core.layers {
                    let nt = sub.layer_targets(l);
                    let p = |w: &str, rows: usize| {
                        g.param(&format!("{}.{w}.{l}", m.name), &[rows, d], Init::XAVIER)
                    };
                    let w1 = p("W1", width);
                    // Mean commutes with W1 (aggregate first, on fewer rows); max does not.
                    let a = match self.aggr {
                        Aggr::Sum => plan.aggregate(g, x, l, Aggr::Sum).matmul(w1),
                        Aggr::Max => plan.aggregate(g, x.matmul(w1), l, Aggr::Max),
                    };
                    let h = a.leaky_relu(SLOPE);
                    let own = x.narrow(0, 0, nt);
                    let xhat =
                        own.matmul(p("W2", width)).leaky_relu(SLOPE) + inputs.ids.narrow(0, 0, nt);
                    x = if self.concat {
                        g.concat(&[h, xhat], 1)
                            .matmul(p("W3", 2 * d))
                            .leaky_relu(SLOPE)
                    } else {
                        (h.matmul(p("W3", d)) + xhat).leaky_relu(SLOPE)
                    };
                    width = d;
                }
                x.narrow(0, 0, sub.hop_size[0])
            })
            .collect()
    }
}

/// What a propagation reads, in the subgraph's local order.
struct Inputs<'c, 'a> {
    /// Id embeddings of every node.
    ids: Var<'c>,
    /// Per modality: preference rows of the subgraph's users (none without users).
    prefs: Vec<Option<Var<'c>>>,
    /// Items of the subgraph (table ids).
    items: &'a [u32],
    perm: Option<&'a [u32]>,
}

impl GraphModel for Mmgcn {
    type Extra = Vec<Modality>;

    fn core(&self) -> &GraphCore<Vec<Modality>> {
        &self.core
    }

    fn extra(&self, data: &TrainData) -> Result<Vec<Modality>> {
        read_modalities(data, &self.wanted)
    }

    fn embed(&self, g: &Ctx<'_, '_>, st: &State) -> Result<Emb> {
        self.declare(g, st);
        let b = self.core.batch(g, &st.graph)?;
        let inputs = Inputs {
            ids: b.assemble(g, b.lookup(g, "user", false), b.lookup(g, "item", true)),
            prefs: st
                .extra
                .iter()
                .map(|m| b.lookup(g, &format!("user_pref.{}", m.name), false))
                .collect(),
            items: &b.item_rows,
            perm: b.perm.as_deref(),
        };
        let reps = self.propagate(g, st, &b.sub, &inputs);
        let mut emb = Emb::default();
        let (mut user, mut item): (Option<Var<'_>>, Option<Var<'_>>) = (None, None);
        for (m, &rep) in st.extra.iter().zip(&reps) {
            let (u, i) = b.outputs(g, rep)?;
            emb.set(&format!("user_modality:{}", m.name), u.id);
            user = Some(user.map_or(u, |s| s + u));
            if let Some(i) = i {
                emb.set(&format!("modality:{}", m.name), i.id);
                item = Some(item.map_or(i, |s| s + i));
            }
        }
        emb.set("user", user.ok_or("mmgcn: no modality to propagate")?.id);
        if let Some(i) = item {
            emb.set("item", i.id);
        }
        Ok(emb)
    }

    /// `user_modality:<m>` / `user` of the batch's users and, for every
    /// item, `all_modality:<m>` / `all_item` (`[n_items, dim]`), from one
    /// propagation over the whole graph, so an estimator can combine
    /// modality scores over every item (HCR).
    fn embed_all_ranking(&self, g: &Ctx<'_, '_>, st: &State) -> Result<Emb> {
        let (nu, ni) = (st.graph.n_users(), st.graph.n_items());
        let users = g.input("user");
        let mut emb = Emb::default();
        let (mut user, mut item): (Option<Var<'_>>, Option<Var<'_>>) = (None, None);
        for (m, rep) in st.extra.iter().zip(self.full_graph(g, st)) {
            let u = rep.narrow(0, 0, nu).index_select(users, 0);
            let i = rep.narrow(0, nu, ni);
            emb.set(&format!("user_modality:{}", m.name), u.id);
            emb.set(&format!("all_modality:{}", m.name), i.id);
            user = Some(user.map_or(u, |s| s + u));
            item = Some(item.map_or(i, |s| s + i));
        }
        emb.set("user", user.ok_or("mmgcn: no modality to propagate")?.id);
        emb.set(
            "all_item",
            item.ok_or("mmgcn: no modality to propagate")?.id,
        );
        Ok(emb)
    }

    fn all_items<'c>(&self, g: &'c Ctx<'_, '_>, st: &State) -> Result<Var<'c>> {
        let (nu, ni) = (st.graph.n_users(), st.graph.n_items());
        self.full_graph(g, st)
            .into_iter()
            .map(|r| r.narrow(0, nu, ni))
            .reduce(|a, b| a + b)
            .ok_or_else(|| "mmgcn: no modality to propagate".into())
    }
}

impl Mmgcn {
    /// Every node's layer-L representation per modality (`[n_users +
    /// n_items, dim]`, users first), by propagation over the whole graph.
    fn full_graph<'c>(&self, g: &'c Ctx<'_, '_>, st: &State) -> Vec<Var<'c>> {
        self.declare(g, st);
        let all_items: Vec<u32> = (0..st.graph.n_items() as u32).collect();
        let inputs = Inputs {
            ids: g.concat(&[g.table_all("user"), g.table_all("item")], 0),
            prefs: st
                .extra
                .iter()
                .map(|m| Some(g.table_all(&format!("user_pref.{}", m.name))))
                .collect(),
            items: &all_items,
            perm: None,
        };
        self.propagate(g, st, &st.full, &inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causalrec_sdk::DataColumn;

    fn data_with(items: Vec<DataColumn>) -> TrainData {
        TrainData {
            n_users: 2,
            n_items: 3,
            items: items.into(),
            ..TrainData::default()
        }
    }

    fn modality(name: &str, dim: u32, values: Vec<f32>) -> DataColumn {
        DataColumn {
            name: name.into(),
            role: "modality".into(),
            floats: values.into(),
            offsets: (0..=3).map(|r| r * dim).collect::<Vec<u32>>().into(),
            ..DataColumn::default()
        }
    }

    #[test]
    fn reads_a_synthetic_modality_matrix() {
        let d = data_with(vec![
            modality("genre", 2, vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.5]),
            modality("title", 1, vec![0.1, 0.2, 0.3]),
        ]);
        let ms = read_modalities(&d, &[]).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!((ms[0].name.as_str(), ms[0].dim), ("genre", 2));
        let ms = read_modalities(&d, &["title".into()]).unwrap();
        assert_eq!(ms.len(), 1);
        assert_eq!(ms[0].values, vec![0.1, 0.2, 0.3]);
        let e = read_modalities(&d, &["audio".into()]).unwrap_err();
        assert!(e.contains("'audio'") && e.contains("genre, title"), "{e}");
    }

    #[test]
    fn missing_or_ragged_modalities_are_clear_errors() {
        let plain = DataColumn {
            name: "class".into(),
            role: "feature".into(),
            ..DataColumn::default()
        };
        let e = read_modalities(&data_with(vec![plain]), &[]).unwrap_err();
        assert!(
            e.contains("needs item modality features") && e.contains("class (feature)"),
            "{e}"
        );
        let mut ragged = modality("genre", 2, vec![1.0; 6]);
        ragged.offsets = vec![0u32, 2, 3, 6].into();
        let e = read_modalities(&data_with(vec![ragged]), &[]).unwrap_err();
        assert!(e.contains("same width"), "{e}");
    }
}
