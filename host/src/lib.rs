//! causalrec host: the runtime that loads plugins and runs recipes.
pub mod exec;
