//! The executor: the host side of the graph handle.
//!
//! One [`HostGraph`] lives for one step (training or inference). Plugins call
//! ops through it; it keeps the tensors of the step on a tape indexed by
//! `VarId`, resolves parameter and table names in the current scope, and
//! records the leaves of every embedding lookup so that [`Model::apply_grads`]
//! can scatter their gradients into the row-sparse store.
//!
//! Every tape entry also records where it came from ([`Origin`]: op code,
//! parameter, lookup, input, constant) and the scope it was made in, so that a
//! non-finite loss can be traced to the first op whose output went non-finite
//! after the fact ([`HostGraph::first_non_finite`]); with `probe` set, a replay
//! adds a zero variable to every float output so that the gradient flowing into
//! each entry can be read after backward (only when a gradient went non-finite).

pub mod init;
pub mod kernels;
pub mod ops;
pub mod phases;
pub mod store;

use std::collections::{BTreeMap, HashMap};

use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use candle_core::{backprop::GradStore, DType, Device, Tensor, Var};
use causalrec_sdk::graph::Graph;
use causalrec_sdk::{ops::OP_SET_VERSION, Init, OpCall, Schema, VarId};
use rand_chacha::ChaCha8Rng;

use store::{DenseOptimizer, DenseStore, OptimConfig, TableStore};

/// The parameters of a model: dense ones and embedding tables, with their optimizers.
pub struct Model {
    pub dense: DenseStore,
    pub tables: TableStore,
    pub dense_opt: DenseOptimizer,
    pub optim: OptimConfig,
    pub device: Device,
    pub dtype: DType,
    /// Scope -> table namespace override (embedding sharing between backbones).
    pub table_namespace: HashMap<String, String>,
    /// Clip the global L2 norm of a step's gradients (dense and touched rows) to this value.
    pub clip_grad_norm: Option<f64>,
    /// Where training steps' time goes, when asked for (`bench train --phases`).
    pub phases: Option<phases::PhaseTimes>,
    /// During one evaluation (`Run::with_eval_memo`): the results of
    /// inference ops that read no batch input (parameters, whole tables,
    /// constants and ops of them), by a hash of how they were made, so
    /// that every block of users reuses them (a graph backbone's
    /// propagation over the whole graph runs once, not once per block).
    pub eval_memo: Option<HashMap<u64, Tensor>>,
}

impl Model {
    pub fn new(seed: u64, dtype: DType, device: Device, optim: OptimConfig) -> Self {
        Model {
            dense: DenseStore::new(seed, dtype, device.clone()),
            tables: TableStore::new(seed),
            dense_opt: DenseOptimizer::new(optim.clone()),
            optim,
            device,
            dtype,
            table_namespace: HashMap::new(),
            clip_grad_norm: None,
            phases: None,
            eval_memo: None,
        }
    }

    /// Count the time since `since` to `phase` of the step, if steps are timed.
    pub fn timed(&mut self, phase: &str, since: std::time::Instant) {
        if let Some(p) = &mut self.phases {
            p.add(phase, since);
        }
    }

    /// Backward from `loss`, then update dense parameters and the touched
    /// table rows (clipped to [`Model::clip_grad_norm`] when set).
    pub fn apply_grads(&mut self, loss: &Tensor, leaves: &[Leaf]) -> Result<(), String> {
        let mut g = self.grads(loss, leaves)?;
        if let Some(c) = self.clip_grad_norm {
            g.clip(c)?;
        }
        self.apply(g)
    }

    /// Backward from `loss`: the dense parameters' gradients and, per table,
    /// the touched rows with their gradients summed per row.
    pub fn grads(&self, loss: &Tensor, leaves: &[Leaf]) -> Result<StepGrads, String> {
        let grads: GradStore = loss.backward().map_err(|e| format!("backward: {e}"))?;
        let mut dense = Vec::new();
        for (name, var) in &self.dense.params {
            if let Some(g) = grads.get(var.as_tensor()) {
                // A parameter's gradient is built from forward tensors (e.g.
                // `x^T dy`) and keeps the step's whole graph alive; the Adam
                // moments would then chain every step's graph (memory grows
                // with each step). The optimizer needs values only.
                dense.push((name.clone(), var.clone(), g.detach()));
            }
        }
        // Per table, its lookups' rows and gradients.
        let mut per_table: BTreeMap<&str, Vec<LeafGrad<'_>>> = BTreeMap::new();
        for leaf in leaves {
            let Some(g) = grads.get(leaf.var.as_tensor()) else {
                continue;
            };
            let g: Vec<f32> = g
                .to_dtype(DType::F32)
                .and_then(|g| g.flatten_all())
                .and_then(|g| g.to_vec1())
                .map_err(|e| e.to_string())?;
            per_table
                .entry(leaf.table.as_str())
                .or_default()
                .push((&leaf.rows, g, leaf.dim));
        }
        let tables = per_table
            .into_iter()
            .map(|(name, parts)| {
                let (rows, g) = sum_per_row(parts);
                (name.to_string(), rows, g)
            })
            .collect();
        Ok(StepGrads { dense, tables })
    }

    /// Update dense parameters and the touched rows from a step's gradients.
    pub fn apply(&mut self, g: StepGrads) -> Result<(), String> {
        let t0 = std::time::Instant::now();
        self.dense_opt
            .step(&g.dense)
            .map_err(|e| format!("dense update: {e}"))?;
        self.timed("update dense", t0);
        if self.optim.dense_tables {
            // Every table, every row (see OptimConfig::dense_tables).
            let mut by_name: HashMap<String, (Vec<u32>, Vec<f32>)> = g
                .tables
                .into_iter()
                .map(|(n, r, gr)| (n, (r, gr)))
                .collect();
            for (name, t) in self.tables.tables.iter_mut() {
                let (rows, grad) = by_name.remove(name).unwrap_or_default();
                t.update_dense(&rows, &grad, &self.optim);
            }
        } else {
            for (name, rows, grad) in g.tables {
                if let Some(t) = self.tables.tables.get_mut(&name) {
                    let t0 = std::time::Instant::now();
                    t.update(&rows, &grad, &self.optim);
                    if let Some(p) = &mut self.phases {
                        p.add(&format!("update {name}"), t0);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The distinct values of `ids` in increasing order, and for every id its
/// index among them: one sort of (id, position) pairs and one pass, with no
/// search per id.
fn distinct_sorted(ids: &[u32]) -> (Vec<u32>, Vec<u32>) {
    let mut keyed: Vec<u64> = ids
        .iter()
        .enumerate()
        .map(|(k, &r)| (r as u64) << 32 | k as u64)
        .collect();
    keyed.sort_unstable();
    let mut rows: Vec<u32> = Vec::with_capacity(ids.len());
    let mut local = vec![0u32; ids.len()];
    for key in keyed {
        let r = (key >> 32) as u32;
        if rows.last() != Some(&r) {
            rows.push(r);
        }
        local[(key & 0xffff_ffff) as usize] = rows.len() as u32 - 1;
    }
    (rows, local)
}

/// A 64-bit hash of `what` (SipHash with fixed keys: the same in every
/// graph of a process).
fn hash_of(what: impl std::hash::Hash) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    what.hash(&mut h);
    h.finish()
}

/// One lookup's distinct rows, the gradient of its leaf (row-major) and the row width.
type LeafGrad<'a> = (&'a [u32], Vec<f32>, usize);

/// One table's lookup gradients summed per row: the touched rows (in
/// first-seen order) and their gradients. A lookup's rows are distinct
/// (`do_lookup` gathers each once), so a table looked up once keeps its
/// leaf's gradient as it is; several lookups are merged row by row.
fn sum_per_row(mut parts: Vec<LeafGrad<'_>>) -> (Vec<u32>, Vec<f32>) {
    if parts.len() == 1 {
        let (rows, g, _) = parts.pop().expect("one part");
        return (rows.to_vec(), g);
    }
    let (mut rows, mut sum) = (Vec::new(), Vec::new());
    let mut slot_of: HashMap<u32, usize> = HashMap::new();
    for (leaf_rows, g, dim) in parts {
        for (k, &row) in leaf_rows.iter().enumerate() {
            let slot = *slot_of.entry(row).or_insert_with(|| {
                rows.push(row);
                sum.extend(std::iter::repeat_n(0.0f32, dim));
                rows.len() - 1
            });
            for j in 0..dim {
                sum[slot * dim + j] += g[k * dim + j];
            }
        }
    }
    (rows, sum)
}

/// The gradients of one step: dense (name, parameter, gradient) and, per
/// table, (name, touched rows, their summed gradients row-major).
pub struct StepGrads {
    pub dense: Vec<(String, Var, Tensor)>,
    pub tables: Vec<(String, Vec<u32>, Vec<f32>)>,
}

impl StepGrads {
    /// The squared global L2 norm (dense gradients and touched rows), and
    /// when it is not finite, the first parameter or table whose gradient
    /// holds a NaN or an infinity. One device sync for the dense part.
    pub fn sq_norm(&self) -> Result<(f64, Option<String>), String> {
        let te = |e: candle_core::Error| e.to_string();
        let sq = |g: &Tensor| g.to_dtype(DType::F64).and_then(|g| g.sqr()?.sum_all());
        let mut total = 0.0f64;
        if !self.dense.is_empty() {
            let sums: Vec<Tensor> = self
                .dense
                .iter()
                .map(|(_, _, g)| sq(g))
                .collect::<Result<_, _>>()
                .map_err(te)?;
            total += Tensor::stack(&sums, 0)
                .and_then(|s| s.sum_all()?.to_scalar::<f64>())
                .map_err(te)?;
        }
        let mut bad = None;
        if !total.is_finite() {
            for (name, _, g) in &self.dense {
                let v: Vec<f64> = g
                    .to_dtype(DType::F64)
                    .and_then(|g| g.flatten_all()?.to_vec1())
                    .map_err(te)?;
                if v.iter().any(|x| !x.is_finite()) {
                    bad = Some(format!("parameter '{name}'"));
                    break;
                }
            }
        }
        for (name, _, g) in &self.tables {
            let s = sum_of_squares(g);
            if !s.is_finite() && bad.is_none() {
                bad = Some(format!("embedding table '{name}'"));
            }
            total += s;
        }
        Ok((total, bad))
    }

    /// Scale every gradient by `clip / norm` when the global L2 norm exceeds
    /// `clip`; returns the norm before clipping.
    pub fn clip(&mut self, clip: f64) -> Result<f64, String> {
        let norm = self.sq_norm()?.0.sqrt();
        self.clip_norm(norm, clip)?;
        Ok(norm)
    }

    /// [`StepGrads::clip`] with the norm known ([`StepGrads::sq_norm`]).
    pub fn clip_norm(&mut self, norm: f64, clip: f64) -> Result<(), String> {
        if norm > clip {
            self.scale(clip / norm)?;
        }
        Ok(())
    }

    /// Multiply every gradient by `s`.
    pub fn scale(&mut self, s: f64) -> Result<(), String> {
        for (_, _, g) in self.dense.iter_mut() {
            *g = (&*g * s).map_err(|e| e.to_string())?;
        }
        for (_, _, g) in self.tables.iter_mut() {
            g.iter_mut().for_each(|x| *x = (*x as f64 * s) as f32);
        }
        Ok(())
    }
}

/// `sum x^2` in f64, over 8 running sums (independent additions, so the
/// loop vectorises instead of waiting on one accumulator).
fn sum_of_squares(g: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let chunks = g.chunks_exact(8);
    let rest: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += (x as f64) * (x as f64);
        }
    }
    acc.iter().sum::<f64>() + rest
}

/// Where a tape entry came from.
#[derive(Clone, Debug)]
pub enum Origin {
    /// An op of the SDK op set (its code).
    Op(u32),
    /// A dense parameter (full name).
    Param(String),
    /// An embedding lookup of a table (full name).
    Lookup(String),
    /// A whole table (inference).
    Table(String),
    /// A batch input.
    Input(String),
    /// A constant from the plugin.
    Constant,
    /// Put on the tape by host code.
    Host,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Op(c) => write!(f, "op {}", causalrec_sdk::ops::op_name(*c)),
            Origin::Param(n) => write!(f, "parameter '{n}'"),
            Origin::Lookup(n) => write!(f, "lookup of table '{n}'"),
            Origin::Table(n) => write!(f, "table '{n}'"),
            Origin::Input(n) => write!(f, "input '{n}'"),
            Origin::Constant => write!(f, "a constant"),
            Origin::Host => write!(f, "a host value"),
        }
    }
}

/// A tape entry's origin, the scope path it was made in (index into
/// [`HostGraph::scope_paths`]) and, when probing, its op's inputs.
#[derive(Clone, Debug)]
pub struct TapeMeta {
    pub origin: Origin,
    pub scope: u32,
    pub inputs: Vec<u32>,
}

/// The index of the first tensor holding a NaN or an infinity (float tensors only).
pub fn first_non_finite(tape: &[Tensor]) -> Option<usize> {
    tape.iter().position(|t| !all_finite(t))
}

/// Whether every element of a tensor is finite (integer tensors always are).
pub fn all_finite(t: &Tensor) -> bool {
    if !t.dtype().is_float() {
        return true;
    }
    match t
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all()?.to_vec1::<f64>())
    {
        Ok(v) => v.iter().all(|x| x.is_finite()),
        Err(_) => true,
    }
}

/// The leaf of one embedding lookup: which rows it gathered.
pub struct Leaf {
    pub table: String,
    pub rows: Vec<u32>,
    pub dim: usize,
    pub var: Var,
}

/// A batch: named input tensors.
#[derive(Clone, Default)]
pub struct Batch {
    pub inputs: BTreeMap<String, Tensor>,
}

/// The host graph of one step.
pub struct HostGraph<'s> {
    pub tape: Vec<Tensor>,
    pub leaves: Vec<Leaf>,
    /// Per tape entry: origin and scope.
    pub meta: Vec<TapeMeta>,
    /// Scope paths (`estimator/main`) seen in this step; `""` is the root.
    pub scope_paths: Vec<String>,
    current_scope: u32,
    /// Replay mode: every float op output gets a zero variable added, kept
    /// in `probes` (tape index, variable) to read the gradient into it.
    pub probe: bool,
    pub probes: Vec<(u32, Var)>,
    model: &'s mut Model,
    batch: &'s Batch,
    schema: &'s Schema,
    training: bool,
    rng: &'s mut ChaCha8Rng,
    scopes: Vec<String>,
    /// With the model's evaluation memo on: tape entries that read no batch
    /// input, and the hash of how each was made.
    memo_keys: HashMap<u32, u64>,
}

fn ok<T>(r: Result<T, String>) -> RResult<T, RString> {
    match r {
        Ok(v) => RResult::ROk(v),
        Err(e) => RResult::RErr(e.into()),
    }
}

impl<'s> HostGraph<'s> {
    pub fn new(
        model: &'s mut Model,
        batch: &'s Batch,
        schema: &'s Schema,
        training: bool,
        rng: &'s mut ChaCha8Rng,
    ) -> Self {
        HostGraph {
            tape: Vec::new(),
            leaves: Vec::new(),
            meta: Vec::new(),
            scope_paths: vec![String::new()],
            current_scope: 0,
            probe: false,
            probes: Vec::new(),
            model,
            batch,
            schema,
            training,
            rng,
            scopes: Vec::new(),
            memo_keys: HashMap::new(),
        }
    }

    /// Whether ops that read no batch input are memoised (inference within
    /// `Run::with_eval_memo`).
    fn memoising(&self) -> bool {
        !self.training && self.model.eval_memo.is_some()
    }

    /// When memoising: the key of a tape entry that reads no batch input
    /// and was made as `what` describes.
    fn memo_key<H: std::hash::Hash>(&self, what: impl FnOnce() -> H) -> Option<u64> {
        self.memoising().then(|| hash_of(what()))
    }

    /// [`HostGraph::push_as`], recording the entry's memo key if it has one.
    fn push_keyed(
        &mut self,
        t: Tensor,
        origin: Origin,
        inputs: Vec<u32>,
        key: Option<u64>,
    ) -> VarId {
        let v = self.push_as(t, origin, inputs);
        if let Some(k) = key {
            self.memo_keys.insert(v.0, k);
        }
        v
    }

    /// Put a tensor on the tape.
    pub fn push(&mut self, t: Tensor) -> VarId {
        self.push_as(t, Origin::Host, Vec::new())
    }

    /// Put a tensor on the tape with its origin (and, when probing, its inputs).
    fn push_as(&mut self, t: Tensor, origin: Origin, inputs: Vec<u32>) -> VarId {
        let probed = self.probe
            && t.dtype().is_float()
            && matches!(origin, Origin::Op(_) | Origin::Lookup(_));
        let t = if probed {
            // `t + 0` has the values of `t`; the zero variable's gradient is
            // the gradient flowing into `t`.
            let z = Var::zeros(t.shape(), t.dtype(), t.device());
            match z.and_then(|z| Ok(((&t + z.as_tensor())?, z))) {
                Ok((s, z)) => {
                    self.probes.push((self.tape.len() as u32, z));
                    s
                }
                Err(_) => t,
            }
        } else {
            t
        };
        self.tape.push(t);
        self.meta.push(TapeMeta {
            origin,
            scope: self.current_scope,
            inputs,
        });
        VarId(self.tape.len() as u32 - 1)
    }

    /// The first tape entry holding a NaN or an infinity (float entries only).
    pub fn first_non_finite(&self) -> Option<usize> {
        first_non_finite(&self.tape)
    }

    fn set_scope_path(&mut self) {
        let path = self.scopes.join("/");
        self.current_scope = match self.scope_paths.iter().position(|p| *p == path) {
            Some(k) => k as u32,
            None => {
                self.scope_paths.push(path);
                self.scope_paths.len() as u32 - 1
            }
        };
    }

    /// The tensor of a handle.
    pub fn get(&self, v: VarId) -> Result<&Tensor, String> {
        self.tape
            .get(v.0 as usize)
            .ok_or_else(|| format!("handle {} does not belong to this step's graph", v.0))
    }

    /// Names are namespaced by the innermost scope (the component instance).
    fn scoped(&self, name: &str) -> String {
        match self.scopes.last() {
            None => name.to_string(),
            Some(s) => format!("{s}/{name}"),
        }
    }

    fn table_name(&self, name: &str) -> String {
        match self
            .scopes
            .last()
            .and_then(|s| self.model.table_namespace.get(s))
        {
            Some(ns) => format!("{ns}/{name}"),
            None => self.scoped(name),
        }
    }

    fn do_lookup(&mut self, table: &str, ids: VarId) -> Result<VarId, String> {
        let t0 = std::time::Instant::now();
        let full = self.table_name(table);
        let ids_t = self.get(ids)?.clone();
        let flat: Vec<u32> = ids_t
            .flatten_all()
            .and_then(|t| t.to_dtype(DType::U32))
            .and_then(|t| t.to_vec1())
            .map_err(|e| format!("ids: {e}"))?;
        let (dtype, device) = (self.model.dtype, &self.model.device);
        let mut shape = ids_t.dims().to_vec();
        let (out, leaf) = if self.training {
            // A gradient leaf over the distinct rows, which each id selects from.
            let (rows, local) = distinct_sorted(&flat);
            let var = self.model.tables.gather(&full, &rows, dtype, device)?;
            let dim = var.dim(1).map_err(|e| e.to_string())?;
            let idx = Tensor::from_vec(local, flat.len(), device).map_err(|e| e.to_string())?;
            shape.push(dim);
            let out = var
                .index_select(&idx, 0)
                .and_then(|t| t.reshape(shape))
                .map_err(|e| e.to_string())?;
            let leaf = Leaf {
                table: full.clone(),
                rows,
                dim,
                var,
            };
            (out, Some(leaf))
        } else {
            // Inference: every id's row gathered straight into a plain
            // tensor (nothing downstream records a gradient graph, and no
            // distinct rows are needed for a gradient).
            let t = self
                .model
                .tables
                .gather_tensor(&full, &flat, dtype, device)?;
            shape.push(t.dim(1).map_err(|e| e.to_string())?);
            (t.reshape(shape).map_err(|e| e.to_string())?, None)
        };
        if let Some(p) = &mut self.model.phases {
            // Named only when timed: no string per lookup otherwise.
            p.add(&format!("lookup {full}"), t0);
        }
        self.leaves.extend(leaf);
        let origin = Origin::Lookup(full);
        Ok(self.push_as(out, origin, vec![ids.0]))
    }
}

impl Graph for HostGraph<'_> {
    fn op_set_version(&self) -> u32 {
        OP_SET_VERSION
    }

    fn op(&mut self, call: OpCall) -> RResult<VarId, RString> {
        // An op of inputs that read no batch input: its result is the same
        // in every block of an evaluation, found by how it is made.
        let key = if self.memoising() {
            let keys: Option<Vec<u64>> = call
                .inputs
                .iter()
                .map(|v| self.memo_keys.get(&v.0).copied())
                .collect();
            keys.map(|keys| {
                let floats: Vec<u64> = call.floats.iter().map(|f| f.to_bits()).collect();
                hash_of(("op", call.code, keys, call.ints.as_slice(), floats))
            })
        } else {
            None
        };
        let known = key.and_then(|k| self.model.eval_memo.as_ref()?.get(&k).cloned());
        let r = match known {
            Some(t) => Ok(t),
            None => call
                .inputs
                .iter()
                .map(|&v| self.get(v).cloned())
                .collect::<Result<Vec<Tensor>, String>>()
                .and_then(|inputs| {
                    let mut env = ops::OpEnv {
                        dtype: self.model.dtype,
                        device: &self.model.device,
                        training: self.training,
                        rng: self.rng,
                    };
                    ops::apply(call.code, &inputs, &call.ints, &call.floats, &mut env)
                }),
        };
        let ids = if self.probe {
            call.inputs.iter().map(|v| v.0).collect()
        } else {
            Vec::new()
        };
        ok(r.map(|t| {
            if let (Some(k), Some(m)) = (key, self.model.eval_memo.as_mut()) {
                m.entry(k).or_insert_with(|| t.clone());
            }
            self.push_keyed(t, Origin::Op(call.code), ids, key)
        }))
    }

    fn param(
        &mut self,
        name: RStr<'_>,
        shape: RSlice<'_, u64>,
        init: Init,
    ) -> RResult<VarId, RString> {
        let full = self.scoped(name.as_str());
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let r = self.model.dense.get_or_init(&full, &shape, init);
        // Inference reads the values only: detached (the same storage), so
        // that no op records a gradient graph that would keep every
        // intermediate result alive until the output is dropped.
        let training = self.training;
        ok(r.map(|v| {
            let t = if training {
                v.as_tensor().clone()
            } else {
                v.as_tensor().detach()
            };
            let key = self.memo_key(|| ("param", &full));
            self.push_keyed(t, Origin::Param(full), Vec::new(), key)
        }))
    }

    fn embedding(
        &mut self,
        name: RStr<'_>,
        rows: u64,
        dim: u64,
        init: Init,
    ) -> RResult<(), RString> {
        let full = self.table_name(name.as_str());
        ok(self
            .model
            .tables
            .declare(&full, rows as usize, dim as usize, init))
    }

    fn lookup(&mut self, table: RStr<'_>, ids: VarId) -> RResult<VarId, RString> {
        ok(self.do_lookup(table.as_str(), ids))
    }

    fn table_all(&mut self, table: RStr<'_>) -> RResult<VarId, RString> {
        if self.training {
            return RResult::RErr(
                "table_all is for inference only: a training step must not touch a whole table"
                    .into(),
            );
        }
        let full = self.table_name(table.as_str());
        let r = self
            .model
            .tables
            .all(&full, self.model.dtype, &self.model.device);
        let key = self.memo_key(|| ("table", &full));
        ok(r.map(|t| self.push_keyed(t, Origin::Table(full), Vec::new(), key)))
    }

    fn input(&mut self, name: RStr<'_>) -> RResult<VarId, RString> {
        match self.batch.inputs.get(name.as_str()) {
            // Float inputs (labels, masks, dense features) follow the model's dtype.
            Some(t) if t.dtype().is_float() && t.dtype() != self.model.dtype => ok(t
                .to_dtype(self.model.dtype)
                .map(|t| self.push_as(t, Origin::Input(name.to_string()), Vec::new()))
                .map_err(|e| e.to_string())),
            Some(t) => {
                let origin = Origin::Input(name.to_string());
                RResult::ROk(self.push_as(t.clone(), origin, Vec::new()))
            }
            None => RResult::RErr(
                format!(
                    "the batch has no input '{}' (it has: {})",
                    name,
                    self.batch
                        .inputs
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into(),
            ),
        }
    }

    fn input_names(&self) -> RVec<RString> {
        self.batch
            .inputs
            .keys()
            .map(|k| RString::from(k.as_str()))
            .collect()
    }

    fn constant(
        &mut self,
        values: RSlice<'_, f64>,
        shape: RSlice<'_, u64>,
    ) -> RResult<VarId, RString> {
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        if shape.iter().product::<usize>() != values.len() {
            return RResult::RErr(
                format!("constant: {} values for shape {shape:?}", values.len()).into(),
            );
        }
        let key = self.memo_key(|| {
            let bits: Vec<u64> = values.iter().map(|x| x.to_bits()).collect();
            ("constant", &shape, bits)
        });
        let r = Tensor::from_slice(values.as_slice(), shape, &self.model.device)
            .and_then(|t| t.to_dtype(self.model.dtype))
            .map_err(|e| e.to_string());
        ok(r.map(|t| self.push_keyed(t, Origin::Constant, Vec::new(), key)))
    }

    fn shape(&self, v: VarId) -> RResult<RVec<u64>, RString> {
        ok(self
            .get(v)
            .map(|t| t.dims().iter().map(|&d| d as u64).collect()))
    }

    fn schema(&self) -> Schema {
        self.schema.clone()
    }

    fn training(&self) -> bool {
        self.training
    }

    fn enter_scope(&mut self, scope: RStr<'_>) {
        self.scopes.push(scope.to_string());
        self.set_scope_path();
    }

    fn exit_scope(&mut self) {
        self.scopes.pop();
        self.set_scope_path();
    }

    fn values(&mut self, v: VarId) -> RResult<RVec<f64>, RString> {
        let r = self.get(v).and_then(|t| {
            t.flatten_all()
                .and_then(|t| t.to_dtype(DType::F64))
                .and_then(|t| t.to_vec1::<f64>())
                .map_err(|e| e.to_string())
        });
        ok(r.map(RVec::from))
    }
}

#[cfg(test)]
mod tests {
    use super::distinct_sorted;

    #[test]
    fn distinct_sorted_rows_and_each_ids_place_among_them() {
        let ids = [7u32, 3, 7, 900, 0, 3, u32::MAX];
        let (rows, local) = distinct_sorted(&ids);
        assert_eq!(rows, [0, 3, 7, 900, u32::MAX]);
        assert_eq!(local, [2, 1, 2, 3, 0, 1, 4]);
        for (k, &r) in ids.iter().enumerate() {
            assert_eq!(rows[local[k] as usize], r);
        }
        assert_eq!(distinct_sorted(&[]), (vec![], vec![]));
    }
}
