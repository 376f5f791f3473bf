//! Train / validation / test splits of a data set's interactions.
//!
//! A [`Split`] holds row indices into [`Dataset::inter`]. Ratio splits cut a
//! sequence of `n` rows at two cumulative points,
//! `c1 = round_half_down(n * r[0])` and
//! `c2 = round_half_down(n * (r[0] + r[1]))`: rows `..c1` go to train,
//! `c1..c2` to validation and `c2..` to test. Rounding half down means
//! `2.5 -> 2`, `2.6 -> 3` (a tolerance of 1e-9 absorbs floating-point noise
//! such as `10 * 0.7 = 7.000000000000001`). Ratios must be finite,
//! non-negative and sum to 1 within 1e-6.
//!
//! [`chrono_clicks`] trains on the earliest clicks (every interaction) and
//! evaluates on each user's later liked interactions only.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::error::{DataError, Result};
use crate::table::{Dataset, Role};

/// Row indices (into [`Dataset::inter`]) of the three parts of a split.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Validation rows.
    pub valid: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

impl Split {
    /// The sizes of train, valid and test.
    pub fn sizes(&self) -> [usize; 3] {
        [self.train.len(), self.valid.len(), self.test.len()]
    }

    /// The total number of rows in the three parts.
    pub fn len(&self) -> usize {
        self.train.len() + self.valid.len() + self.test.len()
    }

    /// Whether all three parts are empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_ratios(ratios: [f64; 3]) -> Result<()> {
    if ratios.iter().any(|r| !r.is_finite() || *r < 0.0) {
        return Err(DataError::Config(format!(
            "split ratios must be finite and non-negative, got {ratios:?}"
        )));
    }
    let sum: f64 = ratios.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(DataError::Config(format!(
            "split ratios must sum to 1, got {ratios:?} (sum {sum})"
        )));
    }
    Ok(())
}

/// Rounds half down: the nearest integer, ties going down.
fn round_half_down(x: f64) -> usize {
    (x - 0.5 - 1e-9).ceil().max(0.0) as usize
}

/// The two cut points of `n` rows (see the module documentation).
fn cuts(n: usize, r: [f64; 3]) -> (usize, usize) {
    let c1 = round_half_down(n as f64 * r[0]).min(n);
    let c2 = round_half_down(n as f64 * (r[0] + r[1])).clamp(c1, n);
    (c1, c2)
}

fn timestamps(ds: &Dataset) -> Result<std::borrow::Cow<'_, [f64]>> {
    ds.timestamp_col().ok_or_else(|| {
        DataError::Config(format!(
            "data set '{}' has no timestamp column; a chronological split needs one",
            ds.name
        ))
    })
}

/// Sorts rows by timestamp; the sort is stable, so ties keep row order.
fn sort_by_time(rows: &mut [usize], ts: &[f64]) {
    rows.sort_by(|&a, &b| ts[a].total_cmp(&ts[b]));
}

/// Rows grouped by dense user id, each group in ascending row order.
fn rows_per_user(ds: &Dataset) -> Vec<Vec<usize>> {
    let mut groups = vec![Vec::new(); ds.n_users];
    for (row, &u) in ds.user_col().iter().enumerate() {
        groups[u as usize].push(row);
    }
    groups
}

/// Sorts all interactions by timestamp (stable: ties by row index) and cuts
/// the sequence by the global `ratios` (train, valid, test). Each part is
/// in chronological order.
pub fn chrono_global(ds: &Dataset, ratios: [f64; 3]) -> Result<Split> {
    check_ratios(ratios)?;
    let ts = timestamps(ds)?;
    let mut order: Vec<usize> = (0..ds.n_inter()).collect();
    sort_by_time(&mut order, &ts);
    let (c1, c2) = cuts(order.len(), ratios);
    Ok(Split {
        test: order.split_off(c2),
        valid: order.split_off(c1),
        train: order,
    })
}

/// Training on clicks, evaluation on likes (HCR's protocol, Zhu et al.,
/// section 4.1.1): the earliest `ratios[0]` of ALL interactions by time go
/// to train (the cut of [`chrono_global`]: ties by row order, train in
/// chronological order). Of the later interactions, per user only the rows
/// `liked(row)` accepts are kept, in time order: the first
/// `round_half_down(m * ratios[1] / (ratios[1] + ratios[2]))` of a user's `m`
/// liked rows go to validation and the rest to test, with at least one in
/// test when `m > 0`. Later rows that are not liked go to no part (they stay
/// rankable candidates). Validation and test are sorted by row index.
///
/// Ratios follow the module rules, and `ratios[0]` must lie strictly between
/// 0 and 1.
pub fn chrono_clicks(
    ds: &Dataset,
    ratios: [f64; 3],
    liked: impl Fn(usize) -> bool,
) -> Result<Split> {
    check_ratios(ratios)?;
    if !(ratios[0] > 0.0 && ratios[0] < 1.0) {
        return Err(DataError::Config(format!(
            "chrono_clicks: the train ratio must be in (0, 1), got {ratios:?}"
        )));
    }
    let global = chrono_global(ds, ratios)?;
    let valid_share = ratios[1] / (ratios[1] + ratios[2]);
    let mut later = vec![Vec::new(); ds.n_users];
    let users = ds.user_col();
    for r in global.valid.into_iter().chain(global.test) {
        if liked(r) {
            later[users[r] as usize].push(r);
        }
    }
    let mut split = Split {
        train: global.train,
        ..Split::default()
    };
    for rows in later {
        let m = rows.len();
        let (_, mut c) = cuts(m, [0.0, valid_share, 1.0 - valid_share]);
        if m > 0 && c == m {
            c = m - 1;
        }
        split.valid.extend_from_slice(&rows[..c]);
        split.test.extend_from_slice(&rows[c..]);
    }
    split.valid.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

/// Per user, sorts the user's interactions by timestamp (stable) and cuts
/// them by `ratios`, so that validation and test hold each user's latest
/// interactions.
///
/// Rule: for a user with `m` interactions the cut points are those of the
/// module documentation applied to `m`, except that when `ratios[0] > 0`
/// every user keeps at least one training interaction (`c1 >= 1`); in
/// particular every user with 3 or more interactions has one in train.
/// Each part is sorted by row index.
pub fn chrono_per_user(ds: &Dataset, ratios: [f64; 3]) -> Result<Split> {
    check_ratios(ratios)?;
    let ts = timestamps(ds)?;
    let mut split = Split::default();
    for mut rows in rows_per_user(ds) {
        sort_by_time(&mut rows, &ts);
        let m = rows.len();
        let (mut c1, mut c2) = cuts(m, ratios);
        if m > 0 && ratios[0] > 0.0 && c1 == 0 {
            c1 = 1;
            c2 = c2.max(1);
        }
        split.train.extend_from_slice(&rows[..c1]);
        split.valid.extend_from_slice(&rows[c1..c2]);
        split.test.extend_from_slice(&rows[c2..]);
    }
    split.train.sort_unstable();
    split.valid.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

/// Shuffles all interactions with a [`ChaCha8Rng`] seeded by `seed` and
/// cuts them by `ratios`. The same seed gives the same split. Each part is
/// sorted by row index.
pub fn random_split(ds: &Dataset, ratios: [f64; 3], seed: u64) -> Result<Split> {
    check_ratios(ratios)?;
    Ok(shuffle_cut((0..ds.n_inter()).collect(), ratios, seed))
}

/// Shuffles `order` with a [`ChaCha8Rng`] seeded by `seed`, cuts it by
/// `ratios` (checked by the caller) and sorts each part.
fn shuffle_cut(mut order: Vec<usize>, ratios: [f64; 3], seed: u64) -> Split {
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let (c1, c2) = cuts(order.len(), ratios);
    let mut split = Split {
        test: order.split_off(c2),
        valid: order.split_off(c1),
        train: order,
    };
    split.train.sort_unstable();
    split.valid.sort_unstable();
    split.test.sort_unstable();
    split
}

/// Moves a seeded random `share` of `split.train` to `split.valid` (CP2Rec's
/// protocol: the biased feedback split 8:2 into train and validation, the
/// unbiased part kept as test). `split.valid` must be empty and `share` in
/// (0, 1). The train rows are shuffled with a [`ChaCha8Rng`] seeded by
/// `seed` and cut like [`random_split`] with ratios `[1 - share, share, 0]`:
/// of `n` rows, `round_half_down(n * (1 - share))` stay in train and the
/// rest go to validation. Both parts end sorted by row index; test is
/// untouched. The same seed gives the same rows.
pub fn hold_out_valid(split: &mut Split, share: f64, seed: u64) -> Result<()> {
    if !(share > 0.0 && share < 1.0) {
        return Err(DataError::Config(format!(
            "valid_share must be a number in (0, 1), got {share}"
        )));
    }
    if !split.valid.is_empty() {
        return Err(DataError::Config(format!(
            "valid_share: the split already has {} validation rows (a given 'valid' part); \
             drop valid_share or the part",
            split.valid.len()
        )));
    }
    let cut = shuffle_cut(
        std::mem::take(&mut split.train),
        [1.0 - share, share, 0.0],
        seed,
    );
    split.train = cut.train;
    split.valid = cut.valid;
    Ok(())
}

/// Replaces the data set's named parts ([`Dataset::parts`]) by the values
/// of the token interaction column `column`: each distinct value names the
/// part of the rows holding it (e.g. a `policy` column with values `train`
/// and `test`, so that one atomic file carries a biased-train /
/// unbiased-test pair for [`given`]). Rows with an empty cell (the padding
/// token) go to no part. Parts the reader gave are dropped. Fails, naming
/// the column and the data set, when `column` is missing or not a token
/// column, or when no row has a value.
pub fn parts_from_column(ds: &mut Dataset, column: &str) -> Result<()> {
    let Some((i, meta)) = ds.inter.field(column) else {
        return Err(DataError::Config(format!(
            "parts_column: data set '{}' has no interaction column '{column}' \
             (expected a token column; interaction columns: {})",
            ds.name,
            ds.inter.field_names()
        )));
    };
    let ids = match ds.inter.columns[i].as_tokens() {
        Some(ids) if !matches!(meta.role, Role::User | Role::Item) => ids,
        _ => {
            return Err(DataError::Config(format!(
                "parts_column: column '{column}' of data set '{}' is a {} {} column; \
                 expected a token column whose values name parts (e.g. train, test)",
                ds.name, meta.kind, meta.role
            )))
        }
    };
    let mut parts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (row, &id) in ids.iter().enumerate() {
        match meta.token_str(id) {
            Some(name) if id != 0 => parts.entry(name.to_string()).or_default().push(row),
            _ => {}
        }
    }
    if parts.is_empty() {
        return Err(DataError::Config(format!(
            "parts_column: column '{column}' of data set '{}' has no values to name parts",
            ds.name
        )));
    }
    ds.parts = parts;
    Ok(())
}

/// Leave-one-out: per user, in time order (row order if the data set has no
/// timestamps), the last interaction goes to test and the one before it to
/// validation, the rest to train. A user with 2 interactions gives one to
/// train and one to test; a user with 1 gives it to train. Each part is
/// sorted by row index.
pub fn leave_one_out(ds: &Dataset) -> Result<Split> {
    let ts = ds.timestamp_col();
    let mut split = Split::default();
    for mut rows in rows_per_user(ds) {
        if let Some(ts) = &ts {
            sort_by_time(&mut rows, ts);
        }
        match rows.len() {
            0 => {}
            1 => split.train.push(rows[0]),
            2 => {
                split.train.push(rows[0]);
                split.test.push(rows[1]);
            }
            m => {
                split.train.extend_from_slice(&rows[..m - 2]);
                split.valid.push(rows[m - 2]);
                split.test.push(rows[m - 1]);
            }
        }
    }
    split.train.sort_unstable();
    split.valid.sort_unstable();
    split.test.sort_unstable();
    Ok(split)
}

/// The split the data set itself gives ([`Dataset::parts`]): the parts
/// named `train`, `valid` and `test` (a missing `valid` is empty). This is
/// the biased-train / unbiased-test split of KuaiRec, OBD and CTAR.
pub fn given(ds: &Dataset) -> Result<Split> {
    let part = |name: &str| ds.parts.get(name).cloned();
    let train = part("train").ok_or_else(|| {
        DataError::Config(format!(
            "data set '{}' gives no 'train' part (parts: {}); use a computed split",
            ds.name,
            ds.parts.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let test = part("test")
        .ok_or_else(|| DataError::Config(format!("data set '{}' gives no 'test' part", ds.name)))?;
    Ok(Split {
        train,
        valid: part("valid").unwrap_or_default(),
        test,
    })
}

/// The rows of `rows` whose rating is at least `min_rating`, in the given
/// order. Fails if the data set has no rating column.
///
/// # Panics
/// If a row index is out of range of `ds.inter`.
pub fn threshold_positive(ds: &Dataset, rows: &[usize], min_rating: f32) -> Result<Vec<usize>> {
    let ratings = ds.rating_col().ok_or_else(|| {
        DataError::Config(format!(
            "data set '{}' has no rating column to threshold",
            ds.name
        ))
    })?;
    Ok(rows
        .iter()
        .copied()
        .filter(|&r| ratings[r] >= min_rating)
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::table::{Column, FieldKind, FieldMeta, Role, Table};

    /// Interactions (user, item, rating, timestamp), users/items dense.
    pub(crate) fn ds(rows: &[(u32, u32, f32, f32)], with_time: bool) -> Dataset {
        let n_users = rows.iter().map(|r| r.0 + 1).max().unwrap_or(0) as usize;
        let n_items = rows.iter().map(|r| r.1 + 1).max().unwrap_or(0) as usize;
        let user_ids: Vec<String> = (0..n_users).map(|u| format!("u{u}")).collect();
        let item_ids: Vec<String> = (0..n_items).map(|i| format!("i{i}")).collect();
        let mut inter = Table::new();
        let mut um = FieldMeta::new("user_id", FieldKind::Token, Role::User);
        um.vocab = user_ids.clone();
        let mut im = FieldMeta::new("item_id", FieldKind::Token, Role::Item);
        im.vocab = item_ids.clone();
        inter
            .push(um, Column::Token(rows.iter().map(|r| r.0).collect()))
            .unwrap();
        inter
            .push(im, Column::Token(rows.iter().map(|r| r.1).collect()))
            .unwrap();
        inter
            .push(
                FieldMeta::new("rating", FieldKind::Float, Role::Rating),
                Column::Float(rows.iter().map(|r| r.2).collect()),
            )
            .unwrap();
        if with_time {
            inter
                .push(
                    FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
                    Column::Float(rows.iter().map(|r| r.3).collect()),
                )
                .unwrap();
        }
        let ds = Dataset {
            name: "tiny".into(),
            inter,
            users: None,
            items: None,
            n_users,
            n_items,
            user_ids,
            item_ids,
            parts: Default::default(),
        };
        ds.validate().unwrap();
        ds
    }

    /// 10 rows, user 0 has rows 0,2,4,6,8; user 1 rows 1,3,5,7,9 (user 1 also
    /// needs items), times chosen with one tie.
    fn ten() -> Dataset {
        let t = [50.0, 10.0, 40.0, 30.0, 30.0, 90.0, 20.0, 70.0, 60.0, 80.0];
        let rows: Vec<(u32, u32, f32, f32)> = (0..10)
            .map(|r| ((r % 2) as u32, r as u32, (r % 5 + 1) as f32, t[r]))
            .collect();
        ds(&rows, true)
    }

    #[test]
    fn round_half_down_rule() {
        assert_eq!(round_half_down(2.5), 2);
        assert_eq!(round_half_down(2.51), 3);
        assert_eq!(round_half_down(2.4), 2);
        assert_eq!(round_half_down(10.0 * 0.7), 7);
        assert_eq!(round_half_down(0.0), 0);
        assert_eq!(cuts(10, [0.8, 0.1, 0.1]), (8, 9));
        assert_eq!(cuts(5, [0.5, 0.25, 0.25]), (2, 4));
        assert_eq!(cuts(0, [0.8, 0.1, 0.1]), (0, 0));
    }

    #[test]
    fn chrono_global_exact() {
        // time order: row1(10) row6(20) row3(30) row4(30, tie -> after 3)
        // row2(40) row0(50) row8(60) row7(70) row9(80) row5(90)
        let s = chrono_global(&ten(), [0.6, 0.2, 0.2]).unwrap();
        assert_eq!(s.train, vec![1, 6, 3, 4, 2, 0]);
        assert_eq!(s.valid, vec![8, 7]);
        assert_eq!(s.test, vec![9, 5]);
    }

    #[test]
    fn chrono_per_user_exact() {
        // user 0 rows by time: 6(20) 4(30) 2(40) 0(50) 8(60)
        // user 1 rows by time: 1(10) 3(30) 7(70) 9(80) 5(90)
        // m = 5, ratios .5/.25/.25: c1 = rhd(2.5) = 2, c2 = rhd(3.75) = 4
        let s = chrono_per_user(&ten(), [0.5, 0.25, 0.25]).unwrap();
        assert_eq!(s.train, vec![1, 3, 4, 6]);
        assert_eq!(s.valid, vec![0, 2, 7, 9]);
        assert_eq!(s.test, vec![5, 8]);
    }

    #[test]
    fn chrono_per_user_keeps_one_training_row() {
        // user 0: 3 rows; ratios .1/.45/.45 would give c1 = rhd(0.3) = 0
        let d = ds(
            &[
                (0, 0, 1.0, 3.0),
                (0, 1, 1.0, 1.0),
                (0, 2, 1.0, 2.0),
                (1, 0, 1.0, 5.0),
            ],
            true,
        );
        let s = chrono_per_user(&d, [0.1, 0.45, 0.45]).unwrap();
        // user 0 by time: 1, 2, 0 -> c1 = 1, c2 = rhd(1.65) = 2
        // user 1: 1 row -> c1 forced to 1
        assert_eq!(s.train, vec![1, 3]);
        assert_eq!(s.valid, vec![2]);
        assert_eq!(s.test, vec![0]);
    }

    #[test]
    fn random_split_is_seeded_and_partitions() {
        let d = ten();
        let a = random_split(&d, [0.6, 0.2, 0.2], 1).unwrap();
        let b = random_split(&d, [0.6, 0.2, 0.2], 1).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.sizes(), [6, 2, 2]);
        let mut all: Vec<usize> = [a.train.clone(), a.valid.clone(), a.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let differs = (2..20).any(|seed| random_split(&d, [0.6, 0.2, 0.2], seed).unwrap() != a);
        assert!(differs);
    }

    /// `ten()` plus a token column `policy`: rows 0..10 hold train, test,
    /// train, (empty), test, train, train, test, train, train.
    fn with_policy() -> Dataset {
        let mut d = ten();
        let mut meta = FieldMeta::new("policy", FieldKind::Token, Role::Feature);
        meta.vocab.extend(["train".to_string(), "test".to_string()]);
        d.inter
            .push(meta, Column::Token(vec![1, 2, 1, 0, 2, 1, 1, 2, 1, 1]))
            .unwrap();
        d.parts.insert("old".into(), vec![0]);
        d
    }

    #[test]
    fn parts_from_a_token_column() {
        let mut d = with_policy();
        parts_from_column(&mut d, "policy").unwrap();
        assert_eq!(d.parts.keys().collect::<Vec<_>>(), ["test", "train"]);
        assert_eq!(d.parts["train"], vec![0, 2, 5, 6, 8, 9]);
        assert_eq!(d.parts["test"], vec![1, 4, 7]);
        let s = given(&d).unwrap();
        assert_eq!(s.sizes(), [6, 0, 3]);
    }

    #[test]
    fn parts_column_errors_name_the_column_and_what_was_expected() {
        let mut d = with_policy();
        let e = parts_from_column(&mut d, "arm").unwrap_err().to_string();
        assert!(
            e.contains("'arm'") && e.contains("'tiny'") && e.contains("policy"),
            "{e}"
        );
        assert!(e.contains("token column"), "{e}");
        let e = parts_from_column(&mut d, "rating").unwrap_err().to_string();
        assert!(
            e.contains("'rating'") && e.contains("float") && e.contains("token column"),
            "{e}"
        );
        let e = parts_from_column(&mut d, "user_id")
            .unwrap_err()
            .to_string();
        assert!(e.contains("'user_id'") && e.contains("user"), "{e}");
        assert_eq!(
            d.parts.keys().collect::<Vec<_>>(),
            ["old"],
            "untouched on error"
        );
    }

    #[test]
    fn hold_out_valid_is_seeded_and_keeps_test() {
        let d = with_policy();
        let mut d2 = d.clone();
        parts_from_column(&mut d2, "policy").unwrap();
        let given = given(&d2).unwrap();
        let mut a = given.clone();
        hold_out_valid(&mut a, 0.25, 7).unwrap();
        // 6 train rows: round_half_down(6 * 0.75) = rhd(4.5) = 4 stay
        assert_eq!(a.sizes(), [4, 2, 3]);
        assert_eq!(a.test, given.test);
        let mut all = [a.train.clone(), a.valid.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, given.train);
        let mut b = given.clone();
        hold_out_valid(&mut b, 0.25, 7).unwrap();
        assert_eq!(a, b);
        // the same shuffle as random_split over those rows
        let mut whole = Split {
            train: (0..10).collect(),
            ..Split::default()
        };
        hold_out_valid(&mut whole, 0.2, 3).unwrap();
        let r = random_split(&d, [0.8, 0.2, 0.0], 3).unwrap();
        assert_eq!((whole.train, whole.valid), (r.train, r.valid));
        let differs = (8..30).any(|seed| {
            let mut c = given.clone();
            hold_out_valid(&mut c, 0.25, seed).unwrap();
            c != a
        });
        assert!(differs);
    }

    #[test]
    fn hold_out_valid_rejects_bad_shares_and_given_valid_rows() {
        let mut s = Split {
            train: vec![0, 1, 2],
            ..Split::default()
        };
        for bad in [0.0, 1.0, -0.1, f64::NAN] {
            let e = hold_out_valid(&mut s, bad, 0).unwrap_err().to_string();
            assert!(e.contains("valid_share") && e.contains("(0, 1)"), "{e}");
        }
        s.valid = vec![3];
        let e = hold_out_valid(&mut s, 0.5, 0).unwrap_err().to_string();
        assert!(
            e.contains("valid_share") && e.contains("1 validation rows"),
            "{e}"
        );
        assert_eq!(s.train, vec![0, 1, 2]);
    }

    #[test]
    fn leave_one_out_exact() {
        let s = leave_one_out(&ten()).unwrap();
        assert_eq!(s.train, vec![1, 2, 3, 4, 6, 7]);
        assert_eq!(s.valid, vec![0, 9]);
        assert_eq!(s.test, vec![5, 8]);
        let d = ds(
            &[(0, 0, 1.0, 0.0), (1, 0, 1.0, 0.0), (1, 1, 1.0, 0.0)],
            false,
        );
        let s = leave_one_out(&d).unwrap();
        assert_eq!((s.train, s.valid, s.test), (vec![0, 1], vec![], vec![2]));
    }

    #[test]
    fn threshold_positive_exact() {
        // ratings: r % 5 + 1 -> 1 2 3 4 5 1 2 3 4 5
        let d = ten();
        assert_eq!(
            threshold_positive(&d, &[9, 0, 3, 4, 8], 4.0).unwrap(),
            vec![9, 3, 4, 8]
        );
        let mut no_rating = d.clone();
        no_rating.inter.remove("rating");
        assert!(matches!(
            threshold_positive(&no_rating, &[0], 4.0),
            Err(DataError::Config(_))
        ));
    }

    #[test]
    fn bad_ratios_and_missing_timestamps_are_errors() {
        let d = ten();
        for r in [[0.5, 0.2, 0.2], [0.8, 0.3, -0.1], [f64::NAN, 0.5, 0.5]] {
            assert!(matches!(chrono_global(&d, r), Err(DataError::Config(_))));
            assert!(matches!(chrono_per_user(&d, r), Err(DataError::Config(_))));
            assert!(matches!(random_split(&d, r, 0), Err(DataError::Config(_))));
        }
        assert!(chrono_global(&d, [0.7, 0.1, 0.2 + 5e-7]).is_ok());
        let untimed = ds(&[(0, 0, 1.0, 0.0)], false);
        let err = chrono_global(&untimed, [0.8, 0.1, 0.1]).unwrap_err();
        assert!(err.to_string().contains("timestamp"), "{err}");
        assert!(chrono_per_user(&untimed, [0.8, 0.1, 0.1]).is_err());
    }
}
