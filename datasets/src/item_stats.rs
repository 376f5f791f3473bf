//! Item statistical features computed from the training rows only (CP2Rec's
//! item statistics as confounding proxies): how often an item was shown
//! (`exposure`) and its smoothed click rate (`ctr`). They are added as float
//! item fields `stat_<name>` with [`Role::Proxy`]; validation and test rows
//! never enter them, so they carry no label leakage.
//!
//! - `exposure`: `log(1 + n_i) / log(1 + max_j n_j)` in `[0, 1]`, `n_i` the
//!   item's number of training rows (0 for every item when no item has one).
//! - `ctr`: `(c_i + A * g) / (n_i + A)` with `A` = [`CTR_PRIOR_ROWS`] = 10,
//!   `c_i` the item's clicked training rows and `g` the global training
//!   click rate: the rate shrunk towards `g`, so an item seen a few times
//!   stays near `g`.
//!
//! Items without training rows get exposure 0 and ctr `g`.

use crate::error::{DataError, Result};
use crate::table::{Column, Dataset, FieldKind, FieldMeta, Role, Table};

/// The pseudo-count `A` of the `ctr` smoothing: `A` rows at the global rate.
pub const CTR_PRIOR_ROWS: f64 = 10.0;

/// One item statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStat {
    /// The item's training rows, log-scaled into `[0, 1]`.
    Exposure,
    /// The item's smoothed training click rate.
    Ctr,
}

impl ItemStat {
    /// Every statistic.
    pub const ALL: [ItemStat; 2] = [ItemStat::Exposure, ItemStat::Ctr];

    /// The statistic's name (`exposure`, `ctr`).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStat::Exposure => "exposure",
            ItemStat::Ctr => "ctr",
        }
    }

    /// The item field it becomes: `stat_<name>`.
    pub fn field(self) -> String {
        format!("stat_{}", self.as_str())
    }

    /// Parses a name; the error lists the valid ones.
    pub fn parse(s: &str) -> Result<ItemStat> {
        ItemStat::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                DataError::Config(format!(
                    "item_stats: unknown statistic '{s}' (valid: {})",
                    ItemStat::ALL.map(ItemStat::as_str).join(", ")
                ))
            })
    }
}

/// The per-item values of `stat` over `train_rows` (row `i` = item `i`).
/// `clicked[r]` says whether interaction row `r` is a click; `ctr` needs it.
pub fn item_stat(
    ds: &Dataset,
    stat: ItemStat,
    train_rows: &[usize],
    clicked: Option<&[bool]>,
) -> Result<Vec<f32>> {
    let items = ds.item_col();
    let mut n = vec![0usize; ds.n_items];
    for &r in train_rows {
        n[items[r] as usize] += 1;
    }
    match stat {
        ItemStat::Exposure => {
            let max = n.iter().copied().max().unwrap_or(0);
            let denom = (max as f64).ln_1p();
            Ok(n.iter()
                .map(|&k| {
                    if max == 0 {
                        0.0
                    } else {
                        ((k as f64).ln_1p() / denom) as f32
                    }
                })
                .collect())
        }
        ItemStat::Ctr => {
            let clicked = clicked.ok_or_else(|| {
                DataError::Config(format!(
                    "item_stats: 'ctr' of data set '{}' needs labels (clicks); \
                     name the label column",
                    ds.name
                ))
            })?;
            let mut c = vec![0usize; ds.n_items];
            for &r in train_rows {
                if clicked[r] {
                    c[items[r] as usize] += 1;
                }
            }
            let total: usize = c.iter().sum();
            let g = if train_rows.is_empty() {
                0.0
            } else {
                total as f64 / train_rows.len() as f64
            };
            Ok(c.iter()
                .zip(&n)
                .map(|(&c, &n)| {
                    ((c as f64 + CTR_PRIOR_ROWS * g) / (n as f64 + CTR_PRIOR_ROWS)) as f32
                })
                .collect())
        }
    }
}

/// Adds each of `stats` as the float item field `stat_<name>` with
/// [`Role::Proxy`] (creating the item table when the data set has none).
/// Fails when an item field of that name exists already, or when `ctr` is
/// asked for without `clicked`.
pub fn add_item_stats(
    ds: &mut Dataset,
    stats: &[ItemStat],
    train_rows: &[usize],
    clicked: Option<&[bool]>,
) -> Result<()> {
    let mut cols = Vec::new();
    for &stat in stats {
        cols.push((stat, item_stat(ds, stat, train_rows, clicked)?));
    }
    let name = ds.name.clone();
    let items = ds.items.get_or_insert_with(Table::new);
    for (stat, values) in cols {
        let field = stat.field();
        if items.field(&field).is_some() {
            return Err(DataError::Config(format!(
                "item_stats: data set '{name}' already has an item field '{field}'"
            )));
        }
        items.push(
            FieldMeta::new(field, FieldKind::Float, Role::Proxy),
            Column::Float(values),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::tests::ds;

    /// Items 0..3; training rows 0..6: item 0 three times (clicks on rows 0,
    /// 1), item 1 once (a click on row 3), item 2 twice (no click); row 6
    /// (item 3, a click) is test only.
    fn tiny() -> (Dataset, Vec<usize>, Vec<bool>) {
        let rows = [(0, 0), (1, 0), (2, 0), (0, 1), (1, 2), (2, 2), (0, 3)];
        let d = ds(&rows.map(|(u, i)| (u, i, 1.0, 0.0)), false);
        let clicked = vec![true, true, false, true, false, false, true];
        (d, (0..6).collect(), clicked)
    }

    fn close(a: &[f32], b: &[f64]) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn exposure_is_log_scaled_training_counts() {
        let (d, train, _) = tiny();
        let e = item_stat(&d, ItemStat::Exposure, &train, None).unwrap();
        // n = [3, 1, 2, 0]: ln(1 + n) / ln 4
        let l4 = 4f64.ln();
        close(&e, &[1.0, 2f64.ln() / l4, 3f64.ln() / l4, 0.0]);
        let none = item_stat(&d, ItemStat::Exposure, &[], None).unwrap();
        close(&none, &[0.0; 4]);
    }

    #[test]
    fn ctr_is_smoothed_towards_the_global_training_rate() {
        let (d, train, clicked) = tiny();
        let c = item_stat(&d, ItemStat::Ctr, &train, Some(&clicked)).unwrap();
        // g = 3 clicks / 6 rows = 0.5 (the test click on row 6 is not counted)
        close(
            &c,
            &[
                (2.0 + 5.0) / 13.0,
                (1.0 + 5.0) / 11.0,
                (0.0 + 5.0) / 12.0,
                0.5,
            ],
        );
        let e = item_stat(&d, ItemStat::Ctr, &train, None).unwrap_err();
        assert!(
            e.to_string().contains("'ctr'") && e.to_string().contains("labels"),
            "{e}"
        );
    }

    #[test]
    fn stats_become_proxy_item_fields() {
        let (mut d, train, clicked) = tiny();
        add_item_stats(&mut d, &ItemStat::ALL, &train, Some(&clicked)).unwrap();
        let items = d.items.as_ref().unwrap();
        assert_eq!(items.field_names(), "stat_exposure, stat_ctr");
        assert!(items.fields.iter().all(|f| f.role == Role::Proxy));
        assert_eq!(items.n_rows(), 4);
        d.validate().unwrap();
        let e = add_item_stats(&mut d, &[ItemStat::Ctr], &train, Some(&clicked)).unwrap_err();
        assert!(e.to_string().contains("stat_ctr"), "{e}");
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        assert_eq!(ItemStat::parse("ctr").unwrap(), ItemStat::Ctr);
        let e = ItemStat::parse("popularity").unwrap_err().to_string();
        assert!(
            e.contains("'popularity'") && e.contains("exposure, ctr"),
            "{e}"
        );
    }
}
