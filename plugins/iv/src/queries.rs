//! The instruments: one search-query vector per item (IV4Rec+ section
//! 4.3.1 / 6.1: "we retrieve a query q clicked item j", on MIND one query
//! per article built from its category, subcategory and entities), read
//! from a dense item field by the SDK's [`ItemVectors`] and gathered for the
//! batch's items only.
//!
//! The vectors are fixed inputs (the paper embeds queries with BERT or the
//! platform's models and does not train them). An item whose query vector
//! is all zeros has no query ([`ItemVectors::is_nonzero`]). Section 6.2.1:
//! "many items have not been clicked in search logs ... we used cosine
//! similarity to recall relevant queries for items", with item and query
//! embeddings of one model: with `recall` naming a dense item field in the
//! queries' space, such an item takes the query most similar (cosine) to
//! its own vector there ([`recall_missing`]).

use causalrec_sdk::{ItemVectors, ParamSpec, Params, Result, TrainData};

/// The per-item query vectors of a data set.
pub type QueryTable = ItemVectors;

/// Where an estimator's query vectors come from: the parameters `queries`
/// and `recall`.
#[derive(Clone, Debug)]
pub struct QuerySource {
    queries: String,
    recall: String,
}

impl QuerySource {
    /// The parameters `queries` and `recall`.
    pub fn params() -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "queries",
                "query",
                "float_seq item field holding each item's query vector (the instrument; all zeros = no query)",
            ),
            ParamSpec::new(
                "recall",
                "",
                "float_seq item field of item vectors in the queries' space: an item without a query takes \
                 the query most similar to its vector by cosine (section 6.2.1); empty = no recall",
            ),
        ]
    }

    pub fn from_params(p: &Params) -> Result<QuerySource> {
        Ok(QuerySource {
            queries: p.string("queries")?,
            recall: p.string("recall")?,
        })
    }

    /// The query table of `data`, with recalled queries for items without
    /// one when `recall` is set. `who` names the estimator in errors.
    pub fn read(&self, data: &TrainData, who: &str) -> Result<QueryTable> {
        let q = ItemVectors::from_data(data, &self.queries, who, "queries")?;
        if self.recall.is_empty() {
            return Ok(q);
        }
        let r = ItemVectors::from_data(data, &self.recall, who, "recall")?;
        if r.dim() != q.dim() {
            return Err(format!(
                "{who}: recall field '{}' has {} dimensions and query field '{}' {}: cosine recall \
                 needs item and query vectors of one space",
                self.recall,
                r.dim(),
                self.queries,
                q.dim()
            ));
        }
        Ok(recall_missing(&q, &r).0)
    }
}

/// Every item without a query (a zero row of `queries`) gets the query
/// vector of the item with a query that is most similar by cosine to its
/// row of `recall` (ties: the lowest item id); an item whose `recall` row is
/// zero keeps no query. Returns the table and the number of items filled.
pub fn recall_missing(queries: &QueryTable, recall: &ItemVectors) -> (QueryTable, usize) {
    let (n, d) = (queries.len(), queries.dim());
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let with: Vec<(usize, f64)> = (0..n)
        .filter(|&j| queries.is_nonzero(j))
        .map(|j| (j, norm(queries.row(j))))
        .collect();
    let mut values: Vec<f32> = (0..n).flat_map(|i| queries.row(i).to_vec()).collect();
    let mut filled = 0;
    for i in (0..n).filter(|&i| !queries.is_nonzero(i)) {
        let r = recall.row(i);
        let nr = norm(r);
        if nr == 0.0 {
            continue;
        }
        let mut best: Option<(usize, f64)> = None;
        for &(j, nq) in &with {
            let dot: f64 = r
                .iter()
                .zip(queries.row(j))
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let cos = dot / (nr * nq);
            if best.is_none_or(|(_, c)| cos > c) {
                best = Some((j, cos));
            }
        }
        if let Some((j, _)) = best {
            values[i * d..(i + 1) * d].copy_from_slice(queries.row(j));
            filled += 1;
        }
    }
    (ItemVectors::from_rows(d, values), filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_without_a_query_recall_the_most_similar_one() {
        // items 0 and 2 have queries; 1 and 3 have none.
        let q = ItemVectors::from_rows(2, vec![1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0]);
        // item 1's vector (0.6, 0.8): cos 0.6 with (1, 0), 0.8 with (0, 2)
        // -> item 2's query; item 3's vector is zero: no recall.
        let r = ItemVectors::from_rows(2, vec![9.0, 9.0, 0.6, 0.8, 1.0, 1.0, 0.0, 0.0]);
        let (t, filled) = recall_missing(&q, &r);
        assert_eq!(filled, 1);
        assert_eq!(t.row(0), &[1.0, 0.0]);
        assert_eq!(t.row(1), &[0.0, 2.0]);
        assert_eq!(t.row(2), &[0.0, 2.0]);
        assert!(!t.is_nonzero(3));
        // (-1, 0.1): cos -0.995 with (1, 0), 0.0995 with (0, 2) -> item 2's.
        let r = ItemVectors::from_rows(2, vec![0.0, 0.0, -1.0, 0.1, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(recall_missing(&q, &r).0.row(1), &[0.0, 2.0]);
    }
}
