//! # causalrec-sdk — the stable ABI of causalrec plugins
//!
//! A plugin is a `cdylib` built against this crate only. It exports one root
//! module ([`plugin::PluginModRef`]) that lists its components (backbones,
//! estimators, losses) and constructs them from RON parameters.
//!
//! Plugins never touch tensors: they build computation through a [`graph::Graph`]
//! handle the host passes in. The host owns every tensor, the device and the
//! autodiff tape, so one graph spans backbone, estimator and loss.
//!
//! Layers, from the wire up:
//! - [`abi`]: the `#[repr(C)]` value types that cross the boundary.
//! - [`ops`]: the versioned op codes of the graph.
//! - [`graph`]: the graph handle (`#[sabi_trait]`).
//! - [`component`]: the component contracts (backbone, estimator, loss).
//! - [`plugin`]: the root module, the export macro, panic-catching adapters.
//! - [`groups`]: item groups and group distributions (DecRS statistics), plain Rust.
//! - [`propensity`]: propensity models (naive Bayes, logged, item groups, item popularity,
//!   position) shared by the unbiased-learning estimators.
//! - [`model`], [`nn`], [`params`]: the ergonomic layer plugin authors write against
//!   (`Var` with operators, `Linear`/`Mlp`/`Attention`, typed parameters).

#![allow(non_local_definitions)]

pub mod abi;
pub mod component;
pub mod graph;
pub mod groups;
pub mod item_vectors;
pub mod model;
pub mod nn;
pub mod ops;
pub mod params;
pub mod plugin;
pub mod propensity;

pub use abi::*;
pub use component::{
    BackboneHandle, BackboneImpl, BackboneRef, Backbones, EstimatorImpl, EstimatorRef, LossHandle,
    LossImpl, LossRef,
};
pub use graph::{GraphMut, Graph_TO};
pub use item_vectors::{keep, prepared, ItemVectors, PreparedVectors};
pub use model::{Ctx, Error, Result, Var};
pub use params::{ParamSpec, Params};
pub use plugin::{ComponentDef, PluginModRef};

/// Re-exported so the export macro works in crates that do not name abi_stable.
pub use abi_stable;
