//! The instruments: one search-query vector per item (IV4Rec+ section
//! 4.3.1 / 6.1: "we retrieve a query q clicked item j", on MIND one query
//! per article built from its category, subcategory and entities), read
//! from a dense item field and gathered for the batch's items only.
//!
//! The vectors are fixed inputs (the paper embeds queries with BERT or the
//! platform's models and does not train them), so they live in plugin
//! memory and a step uploads only the rows of its batch (`[B, d_q]` for the
//! candidates, `[B, L, d_q]` for the histories), never the whole table.
//! An item whose query vector is all zeros has no query: it is marked in
//! [`QueryTable::has_query`] so the estimators can count it.

use causalrec_sdk::{Ctx, Result, TrainData, Var};

/// The per-item query vectors of a data set.
#[derive(Clone, Debug)]
pub struct QueryTable {
    dim: usize,
    values: Vec<f32>,
    n_items: usize,
}

impl QueryTable {
    /// Read the float_seq item field `field` (row `i` = item `i`'s query
    /// vector). `who` names the estimator in errors.
    pub fn from_data(data: &TrainData, field: &str, who: &str) -> Result<QueryTable> {
        let n = data.n_items as usize;
        let Some(col) = data.items.iter().find(|c| c.name.as_str() == field) else {
            let dense: Vec<&str> = data
                .items
                .iter()
                .filter(|c| c.offsets.len() == n + 1 && !c.floats.is_empty())
                .map(|c| c.name.as_str())
                .collect();
            return Err(format!(
                "{who}: parameter 'queries' names item field '{field}', which the data does not have \
                 (dense item fields: {}); build one with dataset(.., #{{modalities: #{{{field}: \
                 #{{from: \"<query text field>\", hash: 64}}}}}}) or attach a matrix with item_features",
                if dense.is_empty() { "none".to_string() } else { dense.join(", ") }
            ));
        };
        let (dim, values) = col.dense_rows(n, &format!("{who}: query field '{field}'"))?;
        Ok(QueryTable {
            dim,
            values,
            n_items: n,
        })
    }

    /// A table from raw rows (tests).
    pub fn from_rows(dim: usize, values: Vec<f32>) -> QueryTable {
        let n_items = values.len() / dim.max(1);
        QueryTable {
            dim,
            values,
            n_items,
        }
    }

    /// Width `d_q` of a query vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Item `i`'s query vector.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// True when item `i` has a query (a non-zero vector).
    pub fn has_query(&self, i: usize) -> bool {
        self.row(i).iter().any(|&x| x != 0.0)
    }

    /// The query vectors of `ids`, row after row (`ids.len() x d_q` values).
    pub fn rows_of(&self, ids: &[f64]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(ids.len() * self.dim);
        for &id in ids {
            let i = id as usize;
            if id < 0.0 || i >= self.n_items {
                return Err(format!(
                    "iv: item id {id} outside the query table ({} items)",
                    self.n_items
                ));
            }
            out.extend(self.row(i).iter().map(|&x| x as f64));
        }
        Ok(out)
    }

    /// The query vectors of the item ids in `ids` (any shape `S`) as a
    /// constant `S + [d_q]`, with the values.
    pub fn gather_values<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        ids: Var<'c>,
    ) -> Result<(Var<'c>, Vec<f64>)> {
        let mut shape = ids.shape();
        let values = self.rows_of(&g.values(ids)?)?;
        shape.push(self.dim);
        Ok((g.constant(&values, &shape), values))
    }

    /// The query vectors of the item ids in `ids` (any shape `S`) as a
    /// constant `S + [d_q]`.
    pub fn gather<'c>(&self, g: &'c Ctx<'_, '_>, ids: Var<'c>) -> Result<Var<'c>> {
        Ok(self.gather_values(g, ids)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_missing_queries() {
        let t = QueryTable::from_rows(2, vec![1.0, 0.0, 0.0, 0.0, 0.5, -1.0]);
        assert_eq!(t.dim(), 2);
        assert_eq!(t.row(2), &[0.5, -1.0]);
        assert!(t.has_query(0) && !t.has_query(1) && t.has_query(2));
    }
}
