//! The graph handle the host passes into every component call.
//!
//! Every method returns values, never panics across the boundary. The trait
//! is a prefix-typed `#[sabi_trait]`: methods after the last prefix field can
//! be appended by a newer SDK without breaking older plugins.

use abi_stable::{
    sabi_trait,
    sabi_types::RMut,
    std_types::{RResult, RSlice, RStr, RString, RVec},
};

use crate::abi::{Init, OpCall, Schema, VarId};

/// The host's computation graph for one step, seen from a plugin.
#[sabi_trait]
pub trait Graph {
    /// The op-set version the host implements.
    fn op_set_version(&self) -> u32;

    /// Apply an op; see [`crate::ops`].
    fn op(&mut self, call: OpCall) -> RResult<VarId, RString>;

    /// Declare (first call) or fetch (later calls) a dense parameter by name.
    /// Names are namespaced by the host per component instance.
    fn param(
        &mut self,
        name: RStr<'_>,
        shape: RSlice<'_, u64>,
        init: Init,
    ) -> RResult<VarId, RString>;

    /// Declare an embedding table (row-sparse, kept and updated by the host).
    fn embedding(
        &mut self,
        name: RStr<'_>,
        rows: u64,
        dim: u64,
        init: Init,
    ) -> RResult<(), RString>;

    /// Gather rows `ids` (any shape of integers) of a declared table: result `ids.shape + [dim]`.
    /// Only the rows touched are part of the step.
    fn lookup(&mut self, table: RStr<'_>, ids: VarId) -> RResult<VarId, RString>;

    /// The whole table as a constant (inference only: `score_all`); an error in training.
    fn table_all(&mut self, table: RStr<'_>) -> RResult<VarId, RString>;

    /// A tensor of the current batch by name (ids, labels, features, masks).
    fn input(&mut self, name: RStr<'_>) -> RResult<VarId, RString>;

    /// Names of the inputs the current batch holds.
    fn input_names(&self) -> RVec<RString>;

    /// A constant from values (row-major) and a shape.
    fn constant(
        &mut self,
        values: RSlice<'_, f64>,
        shape: RSlice<'_, u64>,
    ) -> RResult<VarId, RString>;

    /// The shape of a handle.
    fn shape(&self, v: VarId) -> RResult<RVec<u64>, RString>;

    /// The data set's schema.
    fn schema(&self) -> Schema;

    /// True in a training step (dropout active), false at inference.
    fn training(&self) -> bool;

    /// Enter a parameter namespace (the host's backbone proxies call this).
    fn enter_scope(&mut self, scope: RStr<'_>);

    /// Leave the innermost namespace.
    fn exit_scope(&mut self);

    /// Read a tensor's values (row-major, as f64): for small statistics only.
    #[sabi(last_prefix_field)]
    fn values(&mut self, v: VarId) -> RResult<RVec<f64>, RString>;
}

/// The graph handle as components receive it.
pub type GraphMut<'a> = Graph_TO<'a, RMut<'a, ()>>;
