//! The ergonomic model-building layer: [`Ctx`] wraps the graph handle of one
//! call, [`Var`] is a copyable tensor handle with operators, so plugin code
//! reads like model code:
//!
//! ```ignore
//! let logit = (user * item).sum(-1) + bias;
//! ```
//!
//! Errors are sticky: the first failing op records its error in the `Ctx` and
//! returns a poisoned `Var`; later ops on poisoned values do nothing. The SDK's
//! adapters check the `Ctx` when a stage returns, so an error reaches the host
//! as a value naming the op, never as a panic.

use std::cell::RefCell;
use std::ops::{Add, Div, Mul, Neg, Sub};

use abi_stable::std_types::{RResult, RString, RVec};

use crate::abi::{Emb, Init, OpCall, Schema, VarId};
use crate::graph::GraphMut;
use crate::ops;

/// Errors of the ergonomic layer: a message for the user.
pub type Error = String;
/// Result of the ergonomic layer.
pub type Result<T> = std::result::Result<T, Error>;

const POISON: VarId = VarId(u32::MAX);

/// The context of one component call: the graph handle plus the first error.
pub struct Ctx<'a, 'b> {
    g: RefCell<&'a mut GraphMut<'b>>,
    err: RefCell<Option<String>>,
}

/// What a [`Var`] needs from its context (object-safe, so `Var` has one lifetime).
pub trait OpSink {
    /// Apply an op, recording the first error.
    fn apply(&self, code: u32, inputs: &[VarId], ints: &[i64], floats: &[f64]) -> VarId;
    /// The shape of a handle (empty when poisoned).
    fn shape_of(&self, v: VarId) -> Vec<usize>;
}

/// A tensor handle of the current graph.
#[derive(Copy, Clone)]
pub struct Var<'c> {
    pub id: VarId,
    sink: &'c dyn OpSink,
}

impl std::fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({})", self.id.0)
    }
}

impl<'a, 'b> Ctx<'a, 'b> {
    /// Wrap the graph handle of a component call.
    pub fn new(g: &'a mut GraphMut<'b>) -> Self {
        Ctx {
            g: RefCell::new(g),
            err: RefCell::new(None),
        }
    }

    fn fail(&self, msg: String) -> VarId {
        let mut e = self.err.borrow_mut();
        if e.is_none() {
            *e = Some(msg);
        }
        POISON
    }

    fn lift(&self, what: &str, r: RResult<VarId, RString>) -> VarId {
        match r {
            RResult::ROk(v) => v,
            RResult::RErr(e) => self.fail(format!("{what}: {e}")),
        }
    }

    /// The first error recorded, if any.
    pub fn error(&self) -> Option<String> {
        self.err.borrow().clone()
    }

    /// Record an error raised by component code.
    pub fn set_error(&self, msg: impl Into<String>) {
        self.fail(msg.into());
    }

    /// `Ok(value)` unless an op failed, in which case that op's error.
    pub fn finish<T>(&self, r: Result<T>) -> Result<T> {
        match (self.error(), r) {
            (Some(e), _) => Err(e),
            (None, r) => r,
        }
    }

    /// Run `f` with the raw graph handle (to call another component).
    /// Fails early when an earlier op already failed.
    pub fn with_graph<R>(
        &self,
        f: impl FnOnce(&mut GraphMut<'b>) -> RResult<R, RString>,
    ) -> Result<R> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let mut g = self.g.borrow_mut();
        f(&mut g).into_result().map_err(|e| e.to_string())
    }

    /// Wrap a raw handle (from another component or a hook-point map).
    pub fn var(&self, id: VarId) -> Var<'_> {
        Var { id, sink: self }
    }

    /// The handle `name` of a hook-point map; an error lists the names present.
    pub fn get(&self, emb: &Emb, name: &str) -> Result<Var<'_>> {
        emb.get(name).map(|id| self.var(id)).ok_or_else(|| {
            format!(
                "hook point has no '{name}' (it has: {})",
                emb.names().join(", ")
            )
        })
    }

    /// Declare or fetch a dense parameter.
    pub fn param(&self, name: &str, shape: &[usize], init: Init) -> Var<'_> {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let r = self
            .g
            .borrow_mut()
            .param(name.into(), shape.as_slice().into(), init);
        let id = self.lift(&format!("param '{name}'"), r);
        self.var(id)
    }

    /// Declare an embedding table (idempotent for equal shapes).
    pub fn embedding(&self, name: &str, rows: usize, dim: usize, init: Init) {
        if let RResult::RErr(e) =
            self.g
                .borrow_mut()
                .embedding(name.into(), rows as u64, dim as u64, init)
        {
            self.fail(format!("embedding '{name}': {e}"));
        }
    }

    /// Gather rows of a table: `ids.shape + [dim]`.
    pub fn lookup(&self, table: &str, ids: Var<'_>) -> Var<'_> {
        if ids.id == POISON {
            return self.var(POISON);
        }
        let r = self.g.borrow_mut().lookup(table.into(), ids.id);
        self.var(self.lift(&format!("lookup '{table}'"), r))
    }

    /// The whole table (inference only).
    pub fn table_all(&self, table: &str) -> Var<'_> {
        let r = self.g.borrow_mut().table_all(table.into());
        self.var(self.lift(&format!("table_all '{table}'"), r))
    }

    /// A batch input by name.
    pub fn input(&self, name: &str) -> Var<'_> {
        let r = self.g.borrow_mut().input(name.into());
        self.var(self.lift("input", r))
    }

    /// True when the batch holds an input `name`.
    pub fn has_input(&self, name: &str) -> bool {
        self.g
            .borrow()
            .input_names()
            .iter()
            .any(|n| n.as_str() == name)
    }

    /// A batch input if present.
    pub fn try_input(&self, name: &str) -> Option<Var<'_>> {
        self.has_input(name).then(|| self.input(name))
    }

    /// A constant tensor.
    pub fn constant(&self, values: &[f64], shape: &[usize]) -> Var<'_> {
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let r = self
            .g
            .borrow_mut()
            .constant(values.into(), shape.as_slice().into());
        self.var(self.lift("constant", r))
    }

    /// A scalar constant.
    pub fn scalar(&self, v: f64) -> Var<'_> {
        self.constant(&[v], &[])
    }

    /// The data set's schema.
    pub fn schema(&self) -> Schema {
        self.g.borrow().schema()
    }

    /// True in training steps.
    pub fn training(&self) -> bool {
        self.g.borrow().training()
    }

    /// Values of a (small) tensor.
    pub fn values(&self, v: Var<'_>) -> Result<Vec<f64>> {
        self.with_graph(|g| g.values(v.id)).map(RVec::into_vec)
    }

    /// Concatenate along `dim`.
    pub fn concat(&self, vars: &[Var<'_>], dim: i64) -> Var<'_> {
        let ids: Vec<VarId> = vars.iter().map(|v| v.id).collect();
        self.var(self.apply(ops::CONCAT, &ids, &[dim], &[]))
    }

    /// FM's bi-interaction pooling of fields of one shape `[.., d]`:
    /// `0.5 * ((sum_f x_f)^2 - sum_f x_f^2)`, `[.., d]` (the sum of every
    /// pairwise product `x_f * x_g`, f < g), as one op.
    pub fn bi_interaction(&self, fields: &[Var<'_>]) -> Var<'_> {
        let ids: Vec<VarId> = fields.iter().map(|v| v.id).collect();
        self.var(self.apply(ops::BI_INTERACTION, &ids, &[], &[]))
    }

    /// Stack `[B, d]` handles into `[B, n, d]`.
    pub fn stack(&self, vars: &[Var<'_>], dim: i64) -> Var<'_> {
        let parts: Vec<Var<'_>> = vars.iter().map(|v| self.var(v.unsqueeze(dim).id)).collect();
        self.concat(&parts, dim)
    }
}

impl OpSink for Ctx<'_, '_> {
    fn apply(&self, code: u32, inputs: &[VarId], ints: &[i64], floats: &[f64]) -> VarId {
        if self.err.borrow().is_some() || inputs.contains(&POISON) {
            return POISON;
        }
        let call = OpCall {
            code,
            inputs: inputs.into(),
            ints: ints.into(),
            floats: floats.into(),
        };
        let r = self.g.borrow_mut().op(call);
        self.lift(ops::op_name(code), r)
    }

    fn shape_of(&self, v: VarId) -> Vec<usize> {
        if v == POISON {
            return Vec::new();
        }
        match self.g.borrow().shape(v) {
            RResult::ROk(s) => s.iter().map(|&d| d as usize).collect(),
            RResult::RErr(e) => {
                self.fail(format!("shape: {e}"));
                Vec::new()
            }
        }
    }
}

macro_rules! unary {
    ($($(#[$doc:meta])* $name:ident => $code:ident),* $(,)?) => {
        $( $(#[$doc])* pub fn $name(self) -> Var<'c> { self.op(ops::$code, &[], &[], &[]) } )*
    };
}

macro_rules! reduce {
    ($($(#[$doc:meta])* $name:ident, $keep:ident => $code:ident),* $(,)?) => {
        $(
            $(#[$doc])* pub fn $name(self, dim: i64) -> Var<'c> { self.op(ops::$code, &[], &[dim, 0], &[]) }
            $(#[$doc])* #[doc = "(keeping the dim)"]
            pub fn $keep(self, dim: i64) -> Var<'c> { self.op(ops::$code, &[], &[dim, 1], &[]) }
        )*
    };
}

impl<'c> Var<'c> {
    fn op(self, code: u32, more: &[Var<'c>], ints: &[i64], floats: &[f64]) -> Var<'c> {
        let mut ids = vec![self.id];
        ids.extend(more.iter().map(|v| v.id));
        Var {
            id: self.sink.apply(code, &ids, ints, floats),
            sink: self.sink,
        }
    }

    /// The shape.
    pub fn shape(self) -> Vec<usize> {
        self.sink.shape_of(self.id)
    }

    /// Size of dim `d` (negative counts from the end); 0 when unknown.
    pub fn dim(self, d: i64) -> usize {
        let s = self.shape();
        let i = if d < 0 { s.len() as i64 + d } else { d };
        s.get(i as usize).copied().unwrap_or(0)
    }

    unary! {
        /// `exp`.
        exp => EXP, /// `ln`.
        log => LOG, /// `sqrt`.
        sqrt => SQRT, /// `abs`.
        abs => ABS, /// Logistic sigmoid.
        sigmoid => SIGMOID, /// `tanh`.
        tanh => TANH, /// ReLU.
        relu => RELU, /// GELU.
        gelu => GELU, /// Softplus.
        softplus => SOFTPLUS, /// Stop-gradient.
        detach => DETACH, /// Sum of all elements.
        sum_all => SUM_ALL, /// Mean of all elements.
        mean_all => MEAN_ALL, /// Square.
        square => SQUARE, /// Integer to float.
        to_float => TO_FLOAT,
    }

    reduce! {
        /// Sum over a dim.
        sum, sum_keepdim => SUM,
        /// Mean over a dim.
        mean, mean_keepdim => MEAN,
        /// Max over a dim.
        max, max_keepdim => MAX,
        /// Min over a dim.
        min, min_keepdim => MIN,
    }

    /// Batched matrix product.
    pub fn matmul(self, rhs: Var<'c>) -> Var<'c> {
        self.op(ops::MATMUL, &[rhs], &[], &[])
    }
    /// Power.
    pub fn powf(self, e: f64) -> Var<'c> {
        self.op(ops::POW, &[], &[], &[e])
    }
    /// Leaky ReLU.
    pub fn leaky_relu(self, slope: f64) -> Var<'c> {
        self.op(ops::LEAKY_RELU, &[], &[], &[slope])
    }
    /// `self * mul + add`.
    pub fn affine(self, mul: f64, add: f64) -> Var<'c> {
        self.op(ops::AFFINE, &[], &[], &[mul, add])
    }
    /// Clamp.
    pub fn clamp(self, lo: f64, hi: f64) -> Var<'c> {
        self.op(ops::CLAMP, &[], &[], &[lo, hi])
    }
    /// Element-wise max.
    pub fn maximum(self, rhs: Var<'c>) -> Var<'c> {
        self.op(ops::MAXIMUM, &[rhs], &[], &[])
    }
    /// Element-wise min.
    pub fn minimum(self, rhs: Var<'c>) -> Var<'c> {
        self.op(ops::MINIMUM, &[rhs], &[], &[])
    }
    /// Softmax over `dim`.
    pub fn softmax(self, dim: i64) -> Var<'c> {
        self.op(ops::SOFTMAX, &[], &[dim], &[])
    }
    /// Softmax over `dim` restricted to `mask != 0`.
    pub fn masked_softmax(self, dim: i64, mask: Var<'c>) -> Var<'c> {
        self.op(ops::SOFTMAX, &[mask], &[dim], &[])
    }
    /// Log-softmax over `dim`.
    pub fn log_softmax(self, dim: i64) -> Var<'c> {
        self.op(ops::LOG_SOFTMAX, &[], &[dim], &[])
    }
    /// Log-softmax over `dim` restricted to `mask != 0`.
    pub fn masked_log_softmax(self, dim: i64, mask: Var<'c>) -> Var<'c> {
        self.op(ops::LOG_SOFTMAX, &[mask], &[dim], &[])
    }
    /// Narrow a dim.
    pub fn narrow(self, dim: i64, start: usize, len: usize) -> Var<'c> {
        self.op(ops::NARROW, &[], &[dim, start as i64, len as i64], &[])
    }
    /// Reshape (one `-1` allowed).
    pub fn reshape(self, shape: &[i64]) -> Var<'c> {
        self.op(ops::RESHAPE, &[], shape, &[])
    }
    /// Swap two dims.
    pub fn transpose(self, a: i64, b: i64) -> Var<'c> {
        self.op(ops::TRANSPOSE, &[], &[a, b], &[])
    }
    /// Permute dims.
    pub fn permute(self, dims: &[i64]) -> Var<'c> {
        self.op(ops::PERMUTE, &[], dims, &[])
    }
    /// Insert a size-1 dim.
    pub fn unsqueeze(self, dim: i64) -> Var<'c> {
        self.op(ops::UNSQUEEZE, &[], &[dim], &[])
    }
    /// Remove a size-1 dim.
    pub fn squeeze(self, dim: i64) -> Var<'c> {
        self.op(ops::SQUEEZE, &[], &[dim], &[])
    }
    /// Broadcast to a shape.
    pub fn broadcast_as(self, shape: &[usize]) -> Var<'c> {
        let s: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        self.op(ops::BROADCAST_AS, &[], &s, &[])
    }
    /// Select entries `ids` along `dim`.
    pub fn index_select(self, ids: Var<'c>, dim: i64) -> Var<'c> {
        self.op(ops::INDEX_SELECT, &[ids], &[dim], &[])
    }
    /// Gather along `dim`.
    pub fn gather(self, ids: Var<'c>, dim: i64) -> Var<'c> {
        self.op(ops::GATHER, &[ids], &[dim], &[])
    }
    /// Scatter-sum `src` rows into rows `ids` of `self` along `dim` (message passing).
    pub fn index_add(self, ids: Var<'c>, src: Var<'c>, dim: i64) -> Var<'c> {
        self.op(ops::INDEX_ADD, &[ids, src], &[dim], &[])
    }
    /// Message passing over edges as one op: `[rows, d]`, row `t` the sum
    /// of the rows `sources[e]` of `self` (`[N, d]`) over the edges with
    /// `targets[e] = t`: `index_select` then `index_add` without the
    /// `[E, d]` messages (see [`ops::EDGE_SUM`]).
    pub fn edge_sum(self, sources: Var<'c>, targets: Var<'c>, rows: usize) -> Var<'c> {
        self.op(ops::EDGE_SUM, &[sources, targets], &[rows as i64], &[])
    }
    /// `self` where `cond != 0`, else `other` (`self` is the condition's "true" branch).
    pub fn where_cond(cond: Var<'c>, a: Var<'c>, b: Var<'c>) -> Var<'c> {
        cond.op(ops::WHERE, &[a, b], &[], &[])
    }
    /// `value` where `mask != 0`.
    pub fn masked_fill(self, mask: Var<'c>, value: f64) -> Var<'c> {
        self.op(ops::MASKED_FILL, &[mask], &[], &[value])
    }
    /// Inverted dropout (training only).
    pub fn dropout(self, p: f64) -> Var<'c> {
        self.op(ops::DROPOUT, &[], &[], &[p])
    }
    /// Layer norm over the last dim, with an optional `(gain, bias)` pair.
    pub fn layer_norm(self, affine: Option<(Var<'c>, Var<'c>)>, eps: f64) -> Var<'c> {
        match affine {
            Some((gain, bias)) => self.op(ops::LAYER_NORM, &[gain, bias], &[], &[eps]),
            None => self.op(ops::LAYER_NORM, &[], &[], &[eps]),
        }
    }
    /// DIN's Dice of `self` `[N, H]` with the batch's statistics (over the
    /// rows whose `weight` `[N, 1]` is 1, or all rows), one `alpha` `[H]` per unit.
    pub fn dice(self, alpha: Var<'c>, weight: Option<Var<'c>>, eps: f64) -> Var<'c> {
        let more: Vec<Var<'c>> = std::iter::once(alpha).chain(weight).collect();
        self.op(ops::DICE, &more, &[], &[eps])
    }
    /// Mean BCE with logits against `labels`, optionally weighted.
    pub fn bce_with_logits(self, labels: Var<'c>, weights: Option<Var<'c>>) -> Var<'c> {
        let more: Vec<Var<'c>> = std::iter::once(labels).chain(weights).collect();
        self.op(ops::BCE_WITH_LOGITS, &more, &[], &[])
    }
    /// Mean squared error against `target`, optionally weighted.
    pub fn mse(self, target: Var<'c>, weights: Option<Var<'c>>) -> Var<'c> {
        let more: Vec<Var<'c>> = std::iter::once(target).chain(weights).collect();
        self.op(ops::MSE, &more, &[], &[])
    }
    /// BPR loss of `self` (positive scores) against `neg`.
    pub fn bpr(self, neg: Var<'c>) -> Var<'c> {
        self.op(ops::BPR, &[neg], &[], &[])
    }
    /// Cross-entropy of logits `[N, C]` against class ids `[N]`.
    pub fn cross_entropy(self, target: Var<'c>) -> Var<'c> {
        self.op(ops::CROSS_ENTROPY, &[target], &[], &[])
    }
}

macro_rules! binop {
    ($trait:ident, $method:ident, $code:ident, $scalar:expr) => {
        impl<'c> $trait<Var<'c>> for Var<'c> {
            type Output = Var<'c>;
            fn $method(self, rhs: Var<'c>) -> Var<'c> {
                self.op(ops::$code, &[rhs], &[], &[])
            }
        }
        impl<'c> $trait<f64> for Var<'c> {
            type Output = Var<'c>;
            fn $method(self, rhs: f64) -> Var<'c> {
                let (mul, add): (f64, f64) = $scalar(rhs);
                self.affine(mul, add)
            }
        }
    };
}

binop!(Add, add, ADD, |r: f64| (1.0, r));
binop!(Sub, sub, SUB, |r: f64| (1.0, -r));
binop!(Mul, mul, MUL, |r: f64| (r, 0.0));
binop!(Div, div, DIV, |r: f64| (1.0 / r, 0.0));

impl<'c> Neg for Var<'c> {
    type Output = Var<'c>;
    fn neg(self) -> Var<'c> {
        self.op(ops::NEG, &[], &[], &[])
    }
}
