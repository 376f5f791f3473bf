//! Readers for real data set formats, one module per format. Each returns
//! a [`crate::Dataset`]; errors name the file, the 1-based line and the
//! column, and nothing is returned half-loaded.

pub mod ctar;
pub mod mind;
pub mod npy;
pub mod obd;
pub(crate) mod text;
