//! causalrec host: the runtime that loads plugins and runs recipes.
//!
//! - [`plugins`]: discovery and loading of stable-ABI plugins.
//! - [`exec`]: the candle executor behind the graph handle, parameter stores, optimizers.
//! - [`data`]: data sets prepared for training (split, positives, schema, batches).
//! - [`info`]: `host data info`: statistics and the seed papers' data set tables.
//! - [`history`]: per-user positive sequences as `history` batch inputs.
//! - [`train`]: components, the training loop, scoring.
//! - [`checks`]: finite-difference gradient checks, `score_all` vs `predict`.
//! - [`eval`], [`protocols`]: metrics and evaluation protocols.
//! - [`rerank`]: post-hoc re-rankers (calibration, diversity, FairCo).
//! - [`stats`]: paired t-test and distance correlation for recipes.
//! - [`plot`]: SVG bar charts for recipes.
//! - [`recipe`]: the Rhai recipe API; [`sandbox`]: its limits and allowed folders.
//! - [`report`]: the run directory (atomic writes).
//! - [`checkpoint`]: training state and the run manifest for `host run --resume`.
//! - [`bench`]: `host bench train`; [`compare`]: `host report`.
//! - [`alloc_cache`]: the global allocator (freed large blocks reused inside evaluations).
pub mod alloc_cache;
pub mod batches;
pub mod bench;
pub mod checkpoint;
pub mod checks;
pub mod compare;
pub mod data;
pub mod eval;
pub mod exec;
pub mod history;
pub mod info;
pub mod pair_filter;
pub mod plot;
pub mod plugins;
pub mod procfs;
pub mod protocols;
pub mod recipe;
pub mod report;
pub mod rerank;
pub mod sandbox;
pub mod stats;
pub mod train;

/// True when the environment variable `var` is `0`: each of the host's
/// speed switches (`CAUSALREC_PREFETCH`, `CAUSALREC_HUGEPAGES`,
/// `CAUSALREC_ALLOC_CACHE`, `CAUSALREC_EVAL_MEMO`) is on unless set so.
pub fn switched_off(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v == "0")
}
