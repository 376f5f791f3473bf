//! Item groups and users' historical group distributions (DecRS, Wang et al.
//! KDD'21), shared by estimators (the backdoor prior, interest drift,
//! group propensities) and the host's evaluation (C_KL, re-rankers).
//!
//! - `q^i`: item `i`'s distribution over groups, uniform over its groups
//!   (a movie in two genres is half in each);
//! - `d_u` (Eq. 3): the mean of `q^i` over the items the user clicked;
//! - the confounder prior `d_bar = sum_u P(d_u) d_u` with `P(d_u)`
//!   proportional to `|H_u|`, i.e. the mean of `q^i` over every click;
//! - `eta_u` (Eq. 10): the symmetric KL divergence between the group
//!   distributions of the first and second half of the user's history in
//!   time order, normalised by Eq. 12;
//! - `C_KL` (Steck 2018): `KL(p || (1 - a) q + a p)` with `a = 0.01`, terms
//!   with `p(g) < 1e-5` skipped. The DecRS authors' code uses the same
//!   smoothed KL for Eq. 10, which keeps `eta_u` finite when a half misses
//!   a group.
//!
//! Everything here is plain Rust over [`TrainData`] columns (no tensors).

use crate::abi::{DataColumn, TrainData};
use crate::model::Result;

/// Steck's smoothing weight of the calibration KL.
pub const CALIBRATION_ALPHA: f64 = 0.01;

/// Each item's distribution over `n_groups` groups.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemGroups {
    n_groups: usize,
    /// Per item: (group, q) pairs summing to one; empty for an item with no group.
    q: Vec<Vec<(u32, f64)>>,
    /// Group names (the column's vocabulary without padding), when known.
    pub names: Vec<String>,
}

impl ItemGroups {
    /// Groups from per-item group ids (`0..n_groups`); duplicates count once.
    pub fn from_ids(n_groups: usize, per_item: &[Vec<u32>]) -> Result<ItemGroups> {
        let mut q = Vec::with_capacity(per_item.len());
        for (i, gs) in per_item.iter().enumerate() {
            let mut gs = gs.clone();
            gs.sort_unstable();
            gs.dedup();
            if let Some(&g) = gs.iter().find(|&&g| g as usize >= n_groups) {
                return Err(format!(
                    "item {i} has group {g}, but there are {n_groups} groups"
                ));
            }
            let w = 1.0 / gs.len().max(1) as f64;
            q.push(gs.into_iter().map(|g| (g, w)).collect());
        }
        Ok(ItemGroups {
            n_groups,
            q,
            names: (0..n_groups).map(|g| g.to_string()).collect(),
        })
    }

    /// Groups from an item column (token: one group per item; token_seq: a
    /// bag, e.g. genres). Token id 0 is padding (no group); group `g` is
    /// token id `g + 1`.
    pub fn from_column(col: &DataColumn, n_items: usize) -> Result<ItemGroups> {
        let name = col.name.as_str();
        if col.vocab.len() < 2 {
            return Err(format!(
                "group column '{name}' is not a categorical column with at least one value"
            ));
        }
        let n_groups = col.vocab.len() - 1;
        let per_item: Vec<Vec<u32>> = if col.offsets.is_empty() {
            if col.tokens.len() != n_items {
                return Err(format!(
                    "group column '{name}' has {} rows, expected one per item ({n_items})",
                    col.tokens.len()
                ));
            }
            col.tokens
                .iter()
                .map(|&t| if t == 0 { vec![] } else { vec![t - 1] })
                .collect()
        } else {
            if col.offsets.len() != n_items + 1 {
                return Err(format!(
                    "group column '{name}' has {} rows, expected one per item ({n_items})",
                    col.offsets.len().saturating_sub(1)
                ));
            }
            col.offsets
                .windows(2)
                .map(|w| {
                    col.tokens[w[0] as usize..w[1] as usize]
                        .iter()
                        .filter(|&&t| t != 0)
                        .map(|&t| t - 1)
                        .collect()
                })
                .collect()
        };
        let mut g = ItemGroups::from_ids(n_groups, &per_item)
            .map_err(|e| format!("group column '{name}': {e}"))?;
        g.names = col.vocab.iter().skip(1).map(|v| v.to_string()).collect();
        Ok(g)
    }

    /// The item column named `name`, or the one with role `group` when
    /// `name` is empty; errors list the item columns.
    pub fn from_train_data(data: &TrainData, name: &str) -> Result<ItemGroups> {
        let found = data.items.iter().find(|c| {
            if name.is_empty() {
                c.role.as_str() == "group"
            } else {
                c.name.as_str() == name
            }
        });
        let col = found.ok_or_else(|| {
            let have: Vec<String> = data
                .items
                .iter()
                .map(|c| format!("{} ({})", c.name, c.role))
                .collect();
            let want = if name.is_empty() {
                "an item column with role 'group' (set it with dataset(.., #{roles: #{<column>: \"group\"}}))".to_string()
            } else {
                format!("item column '{name}'")
            };
            format!("no {want}; item columns: {}", have.join(", "))
        })?;
        ItemGroups::from_column(col, data.n_items as usize)
    }

    /// Number of groups N.
    pub fn n_groups(&self) -> usize {
        self.n_groups
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.q.len()
    }

    /// `q^i` as (group, weight) pairs.
    pub fn of(&self, item: u32) -> &[(u32, f64)] {
        self.q.get(item as usize).map_or(&[], Vec::as_slice)
    }

    /// `q^i` as a dense vector.
    pub fn dense(&self, item: u32) -> Vec<f64> {
        let mut v = vec![0.0; self.n_groups];
        for &(g, w) in self.of(item) {
            v[g as usize] += w;
        }
        v
    }

    /// Eq. 3: the mean of `q^i` over `items` (zeros when empty).
    pub fn distribution(&self, items: &[u32]) -> Vec<f64> {
        let mut d = vec![0.0; self.n_groups];
        for &i in items {
            for &(g, w) in self.of(i) {
                d[g as usize] += w;
            }
        }
        if !items.is_empty() {
            let n = items.len() as f64;
            d.iter_mut().for_each(|x| *x /= n);
        }
        d
    }

    /// The confounder prior `d_bar = sum_u P(d_u) d_u`, `P(d_u) = |H_u| / sum_v |H_v|`.
    pub fn prior(&self, histories: &[Vec<u32>]) -> Vec<f64> {
        let total: usize = histories.iter().map(Vec::len).sum();
        let mut d = vec![0.0; self.n_groups];
        if total == 0 {
            return d;
        }
        for h in histories.iter().filter(|h| !h.is_empty()) {
            let p = h.len() as f64 / total as f64;
            for (x, y) in d.iter_mut().zip(self.distribution(h)) {
                *x += p * y;
            }
        }
        d
    }

    /// `eta_u` (Eq. 10): symmetric smoothed KL between the group
    /// distributions of the first `len/2` and the remaining items of a
    /// time-ordered history (0 for fewer than two items).
    pub fn drift(&self, history: &[u32]) -> f64 {
        if history.len() < 2 {
            return 0.0;
        }
        let (a, b) = history.split_at(history.len() / 2);
        let (p, q) = (self.distribution(a), self.distribution(b));
        calibration_kl(&p, &q) + calibration_kl(&q, &p)
    }
}

/// Steck's calibration KL `sum_g p(g) log(p(g) / q~(g))`, `q~ = (1 - a) q + a p`,
/// `a` = [`CALIBRATION_ALPHA`], skipping `p(g) < 1e-5`.
pub fn calibration_kl(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .filter(|(&pg, _)| pg >= 1e-5)
        .map(|(&pg, &qg)| {
            let qs = (1.0 - CALIBRATION_ALPHA) * qg + CALIBRATION_ALPHA * pg;
            pg * (pg / qs).ln()
        })
        .sum()
}

/// Eq. 12: `((eta - min) / (max - min))^alpha` over all users (every value
/// 1 when all are equal). `alpha = 0` gives 1 everywhere.
pub fn normalise_drift(etas: &[f64], alpha: f64) -> Vec<f64> {
    let lo = etas.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = etas.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    etas.iter()
        .map(|&e| {
            if hi > lo {
                ((e - lo) / (hi - lo)).powf(alpha)
            } else {
                1.0
            }
        })
        .collect()
}

/// Each user's items of part `part` in time order (the interaction column
/// with role `timestamp`, ties and missing timestamps by row order).
pub fn user_sequences(data: &TrainData, part: &str) -> Result<Vec<Vec<u32>>> {
    let rows = data.require_part(part)?;
    let time = data
        .inter
        .iter()
        .find(|c| c.role.as_str() == "timestamp" && !c.doubles.is_empty());
    let mut order: Vec<u32> = rows.to_vec();
    if let Some(t) = time {
        order.sort_by(|&a, &b| {
            t.doubles[a as usize]
                .total_cmp(&t.doubles[b as usize])
                .then(a.cmp(&b))
        });
    } else {
        order.sort_unstable();
    }
    let mut seqs = vec![Vec::new(); data.n_users as usize];
    for r in order {
        let u = data.user[r as usize] as usize;
        let seq = seqs
            .get_mut(u)
            .ok_or_else(|| format!("row {r} has user id {u} beyond n_users"))?;
        seq.push(data.item[r as usize]);
    }
    Ok(seqs)
}

/// The part holding the training positives: `train_positive` in
/// implicit-feedback runs, else `train`.
pub fn positives_part(data: &TrainData) -> &'static str {
    if data.part("train_positive").is_some() {
        "train_positive"
    } else {
        "train"
    }
}

/// Each user's training positives in time order ([`user_sequences`] of
/// [`positives_part`]).
pub fn training_histories(data: &TrainData) -> Result<Vec<Vec<u32>>> {
    user_sequences(data, positives_part(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::DataPart;

    fn groups() -> ItemGroups {
        // item 0: {0}; item 1: {1}; item 2: {0, 2}; item 3: none
        ItemGroups::from_ids(3, &[vec![0], vec![1], vec![2, 0], vec![]]).unwrap()
    }

    #[test]
    fn distributions_and_prior_hand_computed() {
        let g = groups();
        assert_eq!(g.dense(2), vec![0.5, 0.0, 0.5]);
        // Eq. 3 over {0, 2}: ([1,0,0] + [.5,0,.5]) / 2
        assert_eq!(g.distribution(&[0, 2]), vec![0.75, 0.0, 0.25]);
        // an item without groups counts in |H_u| but adds no mass
        assert_eq!(g.distribution(&[1, 3]), vec![0.0, 0.5, 0.0]);
        // prior: users with 2 and 1 clicks -> weights 2/3, 1/3
        let d = g.prior(&[vec![0, 2], vec![1], vec![]]);
        let want = [0.75 * 2.0 / 3.0, 1.0 / 3.0, 0.25 * 2.0 / 3.0];
        for (a, b) in d.iter().zip(want) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn drift_hand_computed() {
        let g = groups();
        // halves {0} -> [1,0,0] and {1} -> [0,1,0]:
        // KL(p||q~) = 1 * ln(1 / 0.01); symmetric -> 2 ln 100
        let eta = g.drift(&[0, 1]);
        assert!((eta - 2.0 * 100f64.ln()).abs() < 1e-12, "{eta}");
        // halves {0} and {2, 0} (odd length: first half is shorter)
        // p = [1,0,0], q = [.75,0,.25]
        // KL(p||.99q+.01p) = ln(1/(.99*.75+.01))
        // KL(q||.99p+.01q) = .75 ln(.75/(.99+.0075)) + .25 ln(.25/.0025)
        let eta = g.drift(&[0, 2, 0]);
        let want = (1.0f64 / (0.99 * 0.75 + 0.01)).ln()
            + 0.75 * (0.75f64 / (0.99 + 0.0075)).ln()
            + 0.25 * (0.25f64 / 0.0025).ln();
        assert!((eta - want).abs() < 1e-12, "{eta} vs {want}");
        assert_eq!(g.drift(&[0]), 0.0);
        assert!(g.drift(&[0, 0]).abs() < 1e-12);
    }

    #[test]
    fn normalisation_eq12() {
        let n = normalise_drift(&[1.0, 2.0, 5.0], 0.5);
        assert_eq!(n[0], 0.0);
        assert!((n[1] - 0.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(n[2], 1.0);
        assert_eq!(normalise_drift(&[3.0, 3.0], 2.0), vec![1.0, 1.0]);
    }

    #[test]
    fn columns_and_sequences() {
        let col = DataColumn {
            name: "genre".into(),
            role: "group".into(),
            vocab: vec!["".into(), "a".into(), "b".into()].into(),
            tokens: vec![1, 2, 2, 0].into(),
            offsets: vec![0, 1, 3, 3, 4].into(),
            ..DataColumn::default()
        };
        let g = ItemGroups::from_column(&col, 4).unwrap();
        assert_eq!(g.names, vec!["a", "b"]);
        assert_eq!(g.of(1), &[(1, 1.0)]);
        assert!(g.of(2).is_empty() && g.of(3).is_empty());
        assert!(ItemGroups::from_column(&col, 5)
            .unwrap_err()
            .contains("expected one per item (5)"));
        let data = TrainData {
            n_users: 2,
            n_items: 4,
            user: vec![0, 1, 0, 0].into(),
            item: vec![1, 2, 3, 0].into(),
            inter: vec![DataColumn {
                name: "ts".into(),
                role: "timestamp".into(),
                doubles: vec![5.0, 1.0, 2.0, 2.0].into(),
                ..DataColumn::default()
            }]
            .into(),
            items: vec![col].into(),
            parts: vec![DataPart {
                name: "train".into(),
                rows: vec![0, 1, 2, 3].into(),
            }]
            .into(),
            ..TrainData::default()
        };
        assert_eq!(
            user_sequences(&data, "train").unwrap(),
            vec![vec![3, 0, 1], vec![2]]
        );
        // without a `train_positive` part the histories come from `train`
        assert_eq!(positives_part(&data), "train");
        assert_eq!(
            training_histories(&data).unwrap(),
            vec![vec![3, 0, 1], vec![2]]
        );
        assert!(ItemGroups::from_train_data(&data, "").is_ok());
        let e = ItemGroups::from_train_data(&data, "year").unwrap_err();
        assert!(
            e.contains("item column 'year'") && e.contains("genre (group)"),
            "{e}"
        );
    }
}
