//! What the graph backbones share: their common parameters (`dim`,
//! `layers`, `init_std`, `max_neighbors`, `sample_seed`), the graph state
//! built in `prepare`, the batch's propagation subgraph of a step, and the
//! backbone contract around a model's two propagations ([`GraphModel`]):
//! the batch's subgraph in `embed`, the whole graph in `score_all`
//! (inference only), dot-product scores.

use std::sync::{Arc, Mutex};

use causalrec_sdk::{
    BackboneImpl, BackboneInfo, Ctx, Emb, ParamSpec, Params, Result, TrainData, Var,
};

use crate::graph::{BiGraph, Norm, Subgraph};
use crate::prop;

/// Largest `layers` accepted.
pub const MAX_LAYERS: usize = 8;

/// The parameter specs every graph backbone declares; `layers` gets the
/// model's default and help.
pub fn param_specs(dim_help: &str, layers: usize, layers_help: &str) -> Vec<ParamSpec> {
    vec![
        ParamSpec::new("dim", 64, dim_help),
        ParamSpec::new("layers", layers, layers_help),
        ParamSpec::new(
            "init_std",
            0.1,
            "standard deviation of the normal initialisation of the embedding tables",
        ),
        ParamSpec::new(
            "max_neighbors",
            0,
            "neighbours kept per node in a training step (0 = all: exact; else a uniform sample)",
        ),
        ParamSpec::new("sample_seed", 0, "seed of the neighbour sampling"),
    ]
}

/// The graph state `prepare` builds: the graph, its whole-graph
/// propagation structure, and model-specific data `X`.
pub struct Prepared<X> {
    pub graph: BiGraph,
    pub full: Subgraph,
    pub extra: X,
}

/// The common parameters and the prepared state of a graph backbone.
pub struct GraphCore<X> {
    pub who: &'static str,
    pub dim: usize,
    pub layers: usize,
    pub init_std: f64,
    pub max_neighbors: usize,
    pub sample_seed: u64,
    pub norm: Norm,
    state: Mutex<Option<Arc<Prepared<X>>>>,
}

/// A step's propagation subgraph and the batch rows in it.
pub struct BatchGraph {
    /// The batch's users and items as global nodes (`items` is `None` for
    /// batches of users only).
    pub users: Vec<u32>,
    pub items: Option<Vec<u32>>,
    pub sub: Subgraph,
    /// Table rows of the subgraph's users and items, and the permutation to
    /// local order (see [`Subgraph::tables`]).
    pub user_rows: Vec<u32>,
    pub item_rows: Vec<u32>,
    pub perm: Option<Vec<u32>>,
}

impl<X> GraphCore<X> {
    /// Read and validate the common parameters; `min_layers` is the model's
    /// smallest valid `layers`.
    pub fn new(who: &'static str, p: &Params, min_layers: usize, norm: Norm) -> Result<Self> {
        let (dim, layers, init_std) = (p.usize("dim")?, p.usize("layers")?, p.f64("init_std")?);
        if dim == 0 {
            return Err(format!("{who}: dim must be at least 1"));
        }
        if !(min_layers..=MAX_LAYERS).contains(&layers) {
            return Err(format!(
                "{who}: layers must be in {min_layers}..={MAX_LAYERS}, got {layers}"
            ));
        }
        if !(init_std.is_finite() && init_std > 0.0) {
            return Err(format!(
                "{who}: init_std must be a positive number, got {init_std}"
            ));
        }
        Ok(GraphCore {
            who,
            dim,
            layers,
            init_std,
            max_neighbors: p.usize("max_neighbors")?,
            sample_seed: p.usize("sample_seed")? as u64,
            norm,
            state: Mutex::new(None),
        })
    }

    /// Build the graph of `data` and keep it with `extra`.
    pub fn prepare(&self, data: &TrainData, extra: X) -> Result<()> {
        let graph = BiGraph::from_train_data(data).map_err(|e| format!("{}: {e}", self.who))?;
        let full = Subgraph::full(&graph, self.layers, self.norm);
        *self
            .state
            .lock()
            .map_err(|_| format!("{}: poisoned lock", self.who))? =
            Some(Arc::new(Prepared { graph, full, extra }));
        Ok(())
    }

    /// The prepared state, checked against the data of this step.
    pub fn prepared(&self, g: &Ctx<'_, '_>) -> Result<Arc<Prepared<X>>> {
        let st = self
            .state
            .lock()
            .map_err(|_| format!("{}: poisoned lock", self.who))?
            .clone()
            .ok_or_else(|| {
                format!(
                    "{}: prepare() was not called before the first step",
                    self.who
                )
            })?;
        let s = g.schema();
        if s.n_users as usize != st.graph.n_users() || s.n_items as usize != st.graph.n_items() {
            return Err(format!(
                "{}: prepared on a graph of {} users and {} items, but the data has {} and {}",
                self.who,
                st.graph.n_users(),
                st.graph.n_items(),
                s.n_users,
                s.n_items
            ));
        }
        Ok(st)
    }

    /// The K-hop subgraph of this step's batch; training steps sample
    /// neighbours when `max_neighbors > 0`, inference keeps them all (exact).
    pub fn batch(&self, g: &Ctx<'_, '_>, graph: &BiGraph) -> Result<BatchGraph> {
        let (users, items) = prop::batch_nodes(g, graph)?;
        let seeds: Vec<u32> = users
            .iter()
            .chain(items.iter().flatten())
            .copied()
            .collect();
        let fanout = if g.training() { self.max_neighbors } else { 0 };
        let sub = Subgraph::expand(
            graph,
            &seeds,
            self.layers,
            fanout,
            self.norm,
            self.sample_seed,
        )?;
        let (user_rows, item_rows, perm) = sub.tables(graph.n_users());
        Ok(BatchGraph {
            users,
            items,
            sub,
            user_rows,
            item_rows,
            perm,
        })
    }
}

impl BatchGraph {
    /// Rows of the subgraph's users (or items) of `table`, `None` when it has none.
    pub fn lookup<'c>(&self, g: &'c Ctx<'_, '_>, table: &str, items: bool) -> Option<Var<'c>> {
        let rows = if items {
            &self.item_rows
        } else {
            &self.user_rows
        };
        (!rows.is_empty()).then(|| g.lookup(table, prop::ids(g, rows)))
    }

    /// Per-node rows in local order from user-side and item-side rows.
    pub fn assemble<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        users: Option<Var<'c>>,
        items: Option<Var<'c>>,
    ) -> Var<'c> {
        prop::assemble(g, users, items, self.perm.as_deref())
    }

    /// The batch's user rows and (when the batch has items) item rows of
    /// `x`, a tensor over the batch nodes `S_0` in local order.
    pub fn outputs<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        x: Var<'c>,
    ) -> Result<(Var<'c>, Option<Var<'c>>)> {
        let u = prop::rows_of(g, &self.sub, x, &self.users)?;
        let i = match &self.items {
            Some(items) => Some(prop::rows_of(g, &self.sub, x, items)?),
            None => None,
        };
        Ok((u, i))
    }
}

/// A graph backbone's model: its state from the training data and its two
/// propagations. [`GraphBackbone`] turns it into a backbone.
pub trait GraphModel: Send + Sync + 'static {
    /// Model-specific data `prepare` keeps next to the graph.
    type Extra: Send + Sync + 'static;
    fn core(&self) -> &GraphCore<Self::Extra>;
    /// Read the model-specific data from the training data.
    fn extra(&self, data: &TrainData) -> Result<Self::Extra>;
    /// The hook-point map of this step's batch (`user`, and `item` when the
    /// batch has items), by propagation over the batch's subgraph.
    fn embed(&self, g: &Ctx<'_, '_>, st: &Prepared<Self::Extra>) -> Result<Emb>;
    /// The hook-point map of an all-ranking batch (inference, users and no
    /// items): the batch users' rows of the whole-graph propagation that
    /// also scores every item, which the host's evaluation memo computes
    /// once per evaluation.
    fn embed_all_ranking(&self, g: &Ctx<'_, '_>, st: &Prepared<Self::Extra>) -> Result<Emb>;
    /// Every item's representation `[n_items, dim]`, by propagation over the
    /// whole graph (inference only).
    fn all_items<'c>(&self, g: &'c Ctx<'_, '_>, st: &Prepared<Self::Extra>) -> Result<Var<'c>>;
}

/// The backbone contract of a [`GraphModel`]: `y_ui = <user, item>`.
pub struct GraphBackbone<M>(pub M);

impl<M: GraphModel> BackboneImpl for GraphBackbone<M> {
    fn info(&self) -> BackboneInfo {
        BackboneInfo {
            field_interaction: false,
            score_all: true,
            needs_history: false,
            dim: self.0.core().dim as u64,
        }
    }

    fn prepare(&self, data: &TrainData) -> Result<()> {
        let extra = self.0.extra(data)?;
        self.0.core().prepare(data, extra)
    }

    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        let st = self.0.core().prepared(g)?;
        if !g.training() && !g.has_input("item") {
            self.0.embed_all_ranking(g, &st)
        } else {
            self.0.embed(g, &st)
        }
    }

    fn predict<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        user: Var<'c>,
        item: Var<'c>,
        _emb: &Emb,
    ) -> Result<Var<'c>> {
        Ok((user * item).sum(-1))
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, user: Var<'c>) -> Result<Option<Var<'c>>> {
        let core = self.0.core();
        if g.training() {
            return Err(format!(
                "{}: score_all propagates over the whole graph, so it is for inference only",
                core.who
            ));
        }
        let st = core.prepared(g)?;
        let items = self.0.all_items(g, &st)?;
        Ok(Some(user.matmul(items.transpose(0, 1))))
    }
}
