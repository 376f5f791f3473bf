//! Readers for published data set formats, one module per format. Each
//! returns a [`crate::Dataset`]; errors name the file, the 1-based line and
//! the column, and nothing is returned half-loaded.
//!
//! Shared plumbing: [`delimited`] (reading delimited text: line splitting,
//! CSV quoting, headers, typed cells, error positions, dates) and
//! `columns` (the column builders).

pub mod amazon;
pub(crate) mod columns;
pub mod ctar;
pub mod delimited;
pub mod kuairec;
pub mod mind;
pub mod movielens;
pub mod npy;
pub mod obd;
