//! Fixed per-item vectors read from a dense (float_seq) item field: search
//! query embeddings (IV4Rec+'s instruments), pretrained text embeddings of
//! the items (the treatments of IV4Rec+'s MIND setting), any item feature
//! matrix a component uses as an input and does not train.
//!
//! The vectors live in plugin memory; a step uploads only the rows of its
//! batch (`[B, d]` for candidates, `[B, L, d]` for histories), never the
//! whole table.

use std::sync::{Arc, Mutex};

use crate::{Ctx, Result, TrainData, Var};

/// Where a component keeps the table it reads in `prepare`.
pub type PreparedVectors = Mutex<Option<Arc<ItemVectors>>>;

/// Keep `table` in `cell` (a component's `prepare`). `who` names the component.
pub fn keep(cell: &PreparedVectors, table: ItemVectors, who: &str) -> Result<()> {
    *cell
        .lock()
        .map_err(|_| format!("{who}: state lock poisoned"))? = Some(Arc::new(table));
    Ok(())
}

/// The table kept in `cell` by `prepare`, or an error saying `prepare` did
/// not run. `who` names the component.
pub fn prepared(cell: &PreparedVectors, who: &str) -> Result<Arc<ItemVectors>> {
    cell.lock()
        .map_err(|_| format!("{who}: state lock poisoned"))?
        .clone()
        .ok_or_else(|| {
            format!("{who}: the item vector table is not prepared (prepare was not called)")
        })
}

/// One fixed vector per item (row `i` = item `i`).
#[derive(Clone, Debug)]
pub struct ItemVectors {
    dim: usize,
    values: Vec<f32>,
    n_items: usize,
}

impl ItemVectors {
    /// Read the float_seq item field `field`, named by the component's
    /// parameter `param`. `who` names the component in errors.
    pub fn from_data(data: &TrainData, field: &str, who: &str, param: &str) -> Result<ItemVectors> {
        let n = data.n_items as usize;
        let Some(col) = data.items.iter().find(|c| c.name.as_str() == field) else {
            let dense: Vec<&str> = data
                .items
                .iter()
                .filter(|c| c.offsets.len() == n + 1 && !c.floats.is_empty())
                .map(|c| c.name.as_str())
                .collect();
            return Err(format!(
                "{who}: parameter '{param}' names item field '{field}', which the data does not have \
                 (dense item fields: {}); build one with dataset(.., #{{modalities: #{{{field}: \
                 #{{from: \"<text field>\", hash: 64}}}}}}) or attach a matrix with item_features",
                if dense.is_empty() { "none".to_string() } else { dense.join(", ") }
            ));
        };
        let (dim, values) = col.dense_rows(n, &format!("{who}: {param} field '{field}'"))?;
        Ok(ItemVectors {
            dim,
            values,
            n_items: n,
        })
    }

    /// A table from raw rows (tests).
    pub fn from_rows(dim: usize, values: Vec<f32>) -> ItemVectors {
        let n_items = values.len() / dim.max(1);
        ItemVectors {
            dim,
            values,
            n_items,
        }
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.n_items
    }

    /// True when the table has no items.
    pub fn is_empty(&self) -> bool {
        self.n_items == 0
    }

    /// Width `d` of a vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Item `i`'s vector.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// True when item `i`'s vector is not all zeros (an all-zero row marks
    /// an item without one, e.g. without a query).
    pub fn is_nonzero(&self, i: usize) -> bool {
        self.row(i).iter().any(|&x| x != 0.0)
    }

    /// The vectors of `ids`, row after row (`ids.len() x d` values).
    pub fn rows_of(&self, ids: &[f64]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(ids.len() * self.dim);
        for &id in ids {
            let i = id as usize;
            if id < 0.0 || i >= self.n_items {
                return Err(format!(
                    "item id {id} outside the item vector table ({} items)",
                    self.n_items
                ));
            }
            out.extend(self.row(i).iter().map(|&x| x as f64));
        }
        Ok(out)
    }

    /// The vectors of the item ids in `ids` (any shape `S`) as a constant
    /// `S + [d]`, with the values.
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

    /// The vectors of the item ids in `ids` (any shape `S`) as a constant
    /// `S + [d]`.
    pub fn gather<'c>(&self, g: &'c Ctx<'_, '_>, ids: Var<'c>) -> Result<Var<'c>> {
        Ok(self.gather_values(g, ids)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_zero_rows() {
        let t = ItemVectors::from_rows(2, vec![1.0, 0.0, 0.0, 0.0, 0.5, -1.0]);
        assert_eq!(t.dim(), 2);
        assert_eq!(t.row(2), &[0.5, -1.0]);
        assert!(t.is_nonzero(0) && !t.is_nonzero(1) && t.is_nonzero(2));
        assert!(t.rows_of(&[3.0]).unwrap_err().contains("outside"));
        assert_eq!(t.rows_of(&[2.0, 0.0]).unwrap(), vec![0.5, -1.0, 1.0, 0.0]);
    }
}
