//! Readers for published data set formats, each in its own module, all
//! built on the shared plumbing of [`delimited`].

pub mod amazon;
pub mod delimited;
pub mod kuairec;
pub mod movielens;
