//! The executor: the host side of the graph handle.
//!
//! One [`HostGraph`] lives for one step (training or inference). Plugins call
//! ops through it; it keeps the tensors of the step on a tape indexed by
//! `VarId`, resolves parameter and table names in the current scope, and
//! records the leaves of every embedding lookup so that [`Model::apply_grads`]
//! can scatter their gradients into the row-sparse store.

pub mod ops;
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
        }
    }

    /// Backward from `loss`, then update dense parameters and the touched table rows.
    pub fn apply_grads(&mut self, loss: &Tensor, leaves: &[Leaf]) -> Result<(), String> {
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
        self.dense_opt
            .step(&dense)
            .map_err(|e| format!("dense update: {e}"))?;
        // Sum leaf gradients per table row, then one row-wise update per table.
        let mut per_table: BTreeMap<&str, RowGrads> = BTreeMap::new();
        for leaf in leaves {
            let Some(g) = grads.get(leaf.var.as_tensor()) else {
                continue;
            };
            let g: Vec<f32> = g
                .to_dtype(DType::F32)
                .and_then(|g| g.flatten_all())
                .and_then(|g| g.to_vec1())
                .map_err(|e| e.to_string())?;
            let dim = leaf.dim;
            let entry = per_table.entry(leaf.table.as_str()).or_default();
            for (k, &row) in leaf.rows.iter().enumerate() {
                let slot = *entry.2.entry(row).or_insert_with(|| {
                    entry.0.push(row);
                    entry.1.extend(std::iter::repeat_n(0.0, dim));
                    entry.0.len() - 1
                });
                for j in 0..dim {
                    entry.1[slot * dim + j] += g[k * dim + j];
                }
            }
        }
        if self.optim.dense_tables {
            for (name, t) in self.tables.tables.iter_mut() {
                let (rows, g) = match per_table.get(name.as_str()) {
                    Some((rows, g, _)) => (rows.as_slice(), g.as_slice()),
                    None => (&[][..], &[][..]),
                };
                t.update_dense(rows, g, &self.optim);
            }
        } else {
            for (name, (rows, g, _)) in per_table {
                if let Some(t) = self.tables.tables.get_mut(name) {
                    t.update(&rows, &g, &self.optim);
                }
            }
        }
        Ok(())
    }
}

/// Per table: touched rows, their summed gradients (row-major), row -> slot.
type RowGrads = (Vec<u32>, Vec<f32>, HashMap<u32, usize>);

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
    model: &'s mut Model,
    batch: &'s Batch,
    schema: &'s Schema,
    training: bool,
    rng: &'s mut ChaCha8Rng,
    scopes: Vec<String>,
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
            model,
            batch,
            schema,
            training,
            rng,
            scopes: Vec::new(),
        }
    }

    /// Put a tensor on the tape.
    pub fn push(&mut self, t: Tensor) -> VarId {
        self.tape.push(t);
        VarId(self.tape.len() as u32 - 1)
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
        let full = self.table_name(table);
        let ids_t = self.get(ids)?.clone();
        let flat: Vec<u32> = ids_t
            .flatten_all()
            .and_then(|t| t.to_dtype(DType::U32))
            .and_then(|t| t.to_vec1())
            .map_err(|e| format!("ids: {e}"))?;
        let mut rows = flat.clone();
        rows.sort_unstable();
        rows.dedup();
        let local: Vec<u32> = flat
            .iter()
            .map(|r| rows.binary_search(r).unwrap_or(0) as u32)
            .collect();
        let gathered =
            self.model
                .tables
                .gather(&full, &rows, self.model.dtype, &self.model.device)?;
        let dim = gathered.dim(1).map_err(|e| e.to_string())?;
        let var = Var::from_tensor(&gathered).map_err(|e| e.to_string())?;
        let idx =
            Tensor::from_vec(local, flat.len(), &self.model.device).map_err(|e| e.to_string())?;
        let mut shape = ids_t.dims().to_vec();
        shape.push(dim);
        let out = var
            .as_tensor()
            .index_select(&idx, 0)
            .and_then(|t| t.reshape(shape))
            .map_err(|e| e.to_string())?;
        if self.training {
            self.leaves.push(Leaf {
                table: full,
                rows,
                dim,
                var,
            });
        }
        Ok(self.push(out))
    }
}

impl Graph for HostGraph<'_> {
    fn op_set_version(&self) -> u32 {
        OP_SET_VERSION
    }

    fn op(&mut self, call: OpCall) -> RResult<VarId, RString> {
        let inputs: Result<Vec<Tensor>, String> =
            call.inputs.iter().map(|&v| self.get(v).cloned()).collect();
        let r = inputs.and_then(|inputs| {
            let mut env = ops::OpEnv {
                dtype: self.model.dtype,
                device: &self.model.device,
                training: self.training,
                rng: self.rng,
            };
            ops::apply(call.code, &inputs, &call.ints, &call.floats, &mut env)
        });
        ok(r.map(|t| self.push(t)))
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
        ok(r.map(|v| self.push(v.as_tensor().clone())))
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
        ok(r.map(|t| self.push(t)))
    }

    fn input(&mut self, name: RStr<'_>) -> RResult<VarId, RString> {
        match self.batch.inputs.get(name.as_str()) {
            // Float inputs (labels, masks, dense features) follow the model's dtype.
            Some(t) if t.dtype().is_float() && t.dtype() != self.model.dtype => ok(t
                .to_dtype(self.model.dtype)
                .map(|t| self.push(t))
                .map_err(|e| e.to_string())),
            Some(t) => RResult::ROk(self.push(t.clone())),
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
        let r = Tensor::from_slice(values.as_slice(), shape, &self.model.device)
            .and_then(|t| t.to_dtype(self.model.dtype))
            .map_err(|e| e.to_string());
        ok(r.map(|t| self.push(t)))
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
    }

    fn exit_scope(&mut self) {
        self.scopes.pop();
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
