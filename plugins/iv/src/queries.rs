//! The instruments: one search-query vector per item (IV4Rec+ section
//! 4.3.1 / 6.1: "we retrieve a query q clicked item j", on MIND one query
//! per article built from its category, subcategory and entities), read
//! from a dense item field by the SDK's [`ItemVectors`] and gathered for the
//! batch's items only.
//!
//! The vectors are fixed inputs (the paper embeds queries with BERT or the
//! platform's models and does not train them). An item whose query vector
//! is all zeros has no query ([`ItemVectors::is_nonzero`]).

use causalrec_sdk::{ItemVectors, Result, TrainData};

/// The per-item query vectors of a data set.
pub type QueryTable = ItemVectors;

/// Read the query vectors from the float_seq item field `field`, named by
/// the estimator's parameter `queries`. `who` names the estimator in errors.
pub fn read(data: &TrainData, field: &str, who: &str) -> Result<QueryTable> {
    ItemVectors::from_data(data, field, who, "queries")
}
