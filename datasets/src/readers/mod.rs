//! Readers for published data set formats, one module per format. Each
//! returns a [`crate::Dataset`]; errors name the file, the 1-based line and
//! the column, and nothing is returned half-loaded.
//!
//! Shared plumbing: [`delimited`] (line splitting, headers, error
//! positions) and `text` (CSV with quoted fields, column builders, dates).

pub mod amazon;
pub mod ctar;
pub mod delimited;
pub mod kuairec;
pub mod mind;
pub mod movielens;
pub mod npy;
pub mod obd;
pub(crate) mod text;
