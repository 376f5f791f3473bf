//! Propensity models shared by the unbiased-learning estimators (IPS, SNIPS,
//! Rel, CP2Rec's unbiased loss): `P(O = 1)` of each batch example, studied
//! once from the training data (`prepare`), served as a `[B]` tensor.
//!
//! Sources (parameter `propensity`):
//! - `naive_bayes` (Schnabel et al. 2016, Eq. 18; the MF-IPS baseline of
//!   CTAR): for a binary label `y`,
//!   `P(O=1 | Y=y) = P(Y=y | O=1) P(O=1) / P(Y=y)`, with `P(Y=y | O=1)`
//!   from the labels of `biased_part`, `P(Y=y)` from the labels of
//!   `unbiased_part` (randomised), and `P(O=1) = |biased| / (users * items)`;
//! - `column`: a logged propensity per interaction (an interaction column,
//!   e.g. Open Bandit's `propensity_score`), read from the batch as
//!   `inter.<column>`;
//! - `group` (DecRS's IPS baseline, after Saito et al. 2020): the share of
//!   item i's groups in the user's training history, `sum_g q^i_g d_u(g)`
//!   ([`crate::groups`]);
//! - `popularity` (Saito et al. 2020, "Unbiased recommender learning from
//!   missing-not-at-random implicit feedback", Eq. 15): the item's exposure
//!   propensity `theta_i = (n_i / max_j n_j)^eta`, `n_i` the item's rows in
//!   `stats_part` (the training positives in implicit runs, the logged
//!   impressions in pointwise runs);
//! - `position` (position-based click model): `theta_k = CTR_k / CTR_top`,
//!   the click rate of the `stats_part` rows at position `k` over that of
//!   the top position (the smallest position value), from the interaction
//!   column `position_column`; positions clipped to at most 1; a position
//!   never seen in `stats_part` gets 1 (no correction).
//!
//! Every propensity is clipped below by `clip` (and at least [`FLOOR`],
//! `1e-12` for logged ones, so no weight is infinite).
//!
//! IPS weights ([`Propensity::weights`]): `naive_bayes` and `column` model
//! whether a rating is observed, so every example gets `1 / p`; `group`,
//! `popularity` and `position` model the exposure behind a click (Saito et
//! al.; Joachims et al. 2017), so positives get `1 / theta` and the other
//! examples (non-clicks, sampled negatives) weight 1.
//!
//! Plain Rust over [`TrainData`] plus the ops of [`Ctx`]; no tensors here.

use std::sync::Mutex;

use crate::abi::{DataColumn, TrainData};
use crate::groups::{training_histories, ItemGroups};
use crate::model::{Ctx, Result, Var};
use crate::params::{ParamSpec, Params};

/// The smallest propensity an estimated source serves (`clip = 0`).
pub const FLOOR: f64 = 1e-6;
/// The smallest logged propensity served (`column`, `clip = 0`).
const LOGGED_FLOOR: f64 = 1e-12;

/// Where propensities come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    NaiveBayes { biased: String, unbiased: String },
    Column(String),
    Group(String),
    Popularity { eta: f64 },
    Position { column: String },
}

impl Source {
    /// The source's name as the `propensity` parameter spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Source::NaiveBayes { .. } => "naive_bayes",
            Source::Column(_) => "column",
            Source::Group(_) => "group",
            Source::Popularity { .. } => "popularity",
            Source::Position { .. } => "position",
        }
    }
}

/// What `prepare` computed.
#[derive(Clone, Debug, PartialEq)]
enum Prepared {
    /// Propensities of labels 0 and 1 (clipped) and their inverses.
    NaiveBayes { p: [f64; 2], inv: [f64; 2] },
    /// Per-user group distributions and per-item group vectors, flattened
    /// (`[n_users * N]`, `[n_items * N]`).
    Group {
        n_groups: usize,
        users: Vec<f64>,
        items: Vec<f64>,
    },
    /// One clipped propensity per item.
    Items(Vec<f64>),
    /// One clipped propensity per position id (token id, or the integer value
    /// of a float column).
    Positions(Vec<f64>),
}

/// A propensity model: its source, the clip, and what `prepare` studied.
#[derive(Debug)]
pub struct Propensity {
    source: Source,
    clip: f64,
    stats_part: String,
    state: Mutex<Option<Prepared>>,
}

/// `p` clipped below by `clip` and `floor`, and above by 1.
fn clipped(p: f64, clip: f64, floor: f64) -> f64 {
    p.max(clip).max(floor).min(1.0)
}

impl Propensity {
    /// The parameters every propensity user declares.
    pub fn param_specs() -> Vec<ParamSpec> {
        vec![
            ParamSpec::new(
                "propensity",
                "naive_bayes",
                "propensity source: naive_bayes (from a biased and an unbiased part), column (logged), group (the user's history share of the item's groups), popularity (Saito et al. 2020: (n_i / max n)^eta) or position (CTR at the position over CTR at the top)",
            ),
            ParamSpec::new(
                "biased_part",
                "train_obs",
                "naive_bayes: the part holding the biased (observational) labels",
            ),
            ParamSpec::new(
                "unbiased_part",
                "train_rct",
                "naive_bayes: the part holding the unbiased (randomised) labels",
            ),
            ParamSpec::new(
                "column",
                "propensity_score",
                "column: the interaction column with the logged propensity",
            ),
            ParamSpec::new(
                "groups",
                "",
                "group: the item column of the groups (empty: the one with role 'group')",
            ),
            ParamSpec::new(
                "eta",
                0.5,
                "popularity: the exponent of the relative item popularity",
            ),
            ParamSpec::new(
                "position_column",
                "position",
                "position: the interaction column with the display position",
            ),
            ParamSpec::new(
                "stats_part",
                "train",
                "popularity / position: the part whose rows are counted",
            ),
            ParamSpec::new("clip", 0.0, "lower bound on propensities (0: none)"),
        ]
    }

    /// Read the source and the clip; errors name the parameter.
    pub fn from_params(p: &Params) -> Result<Self> {
        let source = match p.string("propensity")?.as_str() {
            "naive_bayes" => Source::NaiveBayes {
                biased: p.string("biased_part")?,
                unbiased: p.string("unbiased_part")?,
            },
            "column" => Source::Column(p.string("column")?),
            "group" => Source::Group(p.string("groups")?),
            "popularity" => Source::Popularity {
                eta: p.non_negative("eta")?,
            },
            "position" => {
                let column = p.string("position_column")?;
                if column.is_empty() {
                    return Err("parameter 'position_column' must name an interaction column".into());
                }
                Source::Position { column }
            }
            other => {
                return Err(format!(
                    "parameter 'propensity' must be 'naive_bayes', 'column', 'group', 'popularity' or 'position', got '{other}'"
                ))
            }
        };
        let clip = p.f64("clip")?;
        if !(0.0..1.0).contains(&clip) {
            return Err(format!("parameter 'clip' must be in [0, 1), got {clip}"));
        }
        Ok(Propensity {
            source,
            clip,
            stats_part: p.string("stats_part")?,
            state: Mutex::new(None),
        })
    }

    /// The source.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Study the training data (naive-Bayes rates, group tables, item
    /// popularity, position CTRs); `column` needs nothing.
    pub fn prepare(&self, data: &TrainData) -> Result<()> {
        let who = self.source.name();
        let prepared = match &self.source {
            Source::Column(_) => None,
            Source::NaiveBayes { biased, unbiased } => {
                let inv = naive_bayes_inverse(data, biased, unbiased, self.clip)?;
                Some(Prepared::NaiveBayes {
                    p: [1.0 / inv[0], 1.0 / inv[1]],
                    inv,
                })
            }
            Source::Group(column) => {
                let g = ItemGroups::from_train_data(data, column)
                    .map_err(|e| format!("propensity 'group': {e}"))?;
                let seqs = training_histories(data)?;
                Some(Prepared::Group {
                    n_groups: g.n_groups(),
                    users: seqs.iter().flat_map(|s| g.distribution(s)).collect(),
                    items: (0..data.n_items as u32).flat_map(|i| g.dense(i)).collect(),
                })
            }
            Source::Popularity { eta } => {
                let theta = item_popularity(data, &self.stats_part, *eta)?;
                Some(Prepared::Items(
                    theta
                        .into_iter()
                        .map(|t| clipped(t, self.clip, FLOOR))
                        .collect(),
                ))
            }
            Source::Position { column } => {
                let theta = position_propensities(data, &self.stats_part, column)?;
                Some(Prepared::Positions(
                    theta
                        .into_iter()
                        .map(|t| clipped(t, self.clip, FLOOR))
                        .collect(),
                ))
            }
        };
        *self
            .state
            .lock()
            .map_err(|_| format!("propensity '{who}': poisoned lock"))? = prepared;
        Ok(())
    }

    fn prepared(&self) -> Result<Prepared> {
        let who = self.source.name();
        self.state
            .lock()
            .map_err(|_| format!("propensity '{who}': poisoned lock"))?
            .clone()
            .ok_or_else(|| format!("propensity '{who}': prepare() was not called before training"))
    }

    /// P(O = 1) of each batch example, `[B]`, clipped below by `clip`.
    pub fn propensity<'c>(&self, g: &'c Ctx<'_, '_>) -> Result<Var<'c>> {
        if let Source::Column(c) = &self.source {
            let name = format!("inter.{c}");
            let p = g.try_input(&name).ok_or_else(|| {
                format!("propensity 'column': the batch has no '{name}' (is '{c}' an interaction column? parameter 'column')")
            })?;
            return Ok(p.clamp(self.clip.max(LOGGED_FLOOR), 1.0));
        }
        Ok(match self.prepared()? {
            Prepared::NaiveBayes { p, .. } => g.input("label").affine(p[1] - p[0], p[0]),
            Prepared::Group {
                n_groups: n,
                users,
                items,
            } => {
                let du = g
                    .constant(&users, &[users.len() / n, n])
                    .index_select(g.input("user"), 0);
                let qi = g
                    .constant(&items, &[items.len() / n, n])
                    .index_select(g.input("item"), 0);
                (du * qi).sum(-1).clamp(self.clip.max(FLOOR), 1.0)
            }
            Prepared::Items(theta) => g
                .constant(&theta, &[theta.len()])
                .index_select(g.input("item"), 0),
            Prepared::Positions(theta) => {
                let column = match &self.source {
                    Source::Position { column } => column.as_str(),
                    _ => "position",
                };
                let name = format!("inter.{column}");
                let k = g.try_input(&name).ok_or_else(|| {
                    format!(
                        "propensity 'position': the batch has no '{name}' (position propensities need labelled row batches with the interaction column '{column}'; parameter 'position_column')"
                    )
                })?;
                g.constant(&theta, &[theta.len()]).index_select(k, 0)
            }
        })
    }

    /// The IPS weight of each batch example, `[B]` (no self-normalisation):
    /// `1 / p` for `naive_bayes` and `column`; `1 / theta` on positives and 1
    /// elsewhere for `group`, `popularity` and `position`.
    pub fn weights<'c>(&self, g: &'c Ctx<'_, '_>) -> Result<Var<'c>> {
        if let Source::NaiveBayes { .. } = self.source {
            if let Prepared::NaiveBayes { inv, .. } = self.prepared()? {
                // w = y * inv1 + (1 - y) * inv0 for binary labels.
                return Ok(g.input("label").affine(inv[1] - inv[0], inv[0]));
            }
        }
        let p = self.propensity(g)?;
        Ok(match self.source {
            Source::NaiveBayes { .. } | Source::Column(_) => p.powf(-1.0),
            // positives 1/p, the rest 1: y * (1/p - 1) + 1
            Source::Group(_) | Source::Popularity { .. } | Source::Position { .. } => {
                g.input("label") * (p.powf(-1.0) - 1.0) + 1.0
            }
        })
    }
}

/// Fraction of label 1 among `rows`; errors on a label that is not 0 or 1.
fn positive_rate(data: &TrainData, rows: &[u32], part: &str, who: &str) -> Result<f64> {
    if rows.is_empty() {
        return Err(format!("propensity '{who}': part '{part}' is empty"));
    }
    let mut pos = 0usize;
    for &r in rows {
        let y = data.label[r as usize];
        if y == 1.0 {
            pos += 1;
        } else if y != 0.0 {
            return Err(format!(
                "propensity '{who}' needs binary labels; part '{part}' has label {y}"
            ));
        }
    }
    Ok(pos as f64 / rows.len() as f64)
}

/// Naive-Bayes inverse propensities `[1/P(O=1|Y=0), 1/P(O=1|Y=1)]`, the
/// propensities clipped below by `clip`.
pub fn naive_bayes_inverse(
    data: &TrainData,
    biased: &str,
    unbiased: &str,
    clip: f64,
) -> Result<[f64; 2]> {
    if data.label.is_empty() {
        return Err(
            "naive_bayes propensities need labelled data: dataset(.., #{label: \"<column>\"})"
                .into(),
        );
    }
    let b = data.require_part(biased)?;
    let u = data.require_part(unbiased)?;
    let p_y1_obs = positive_rate(data, b, biased, "naive_bayes")?;
    let p_y1 = positive_rate(data, u, unbiased, "naive_bayes")?;
    let p_obs = b.len() as f64 / (data.n_users as f64 * data.n_items as f64);
    let mut inv = [0.0; 2];
    for (y, (cond, marg)) in [(1.0 - p_y1_obs, 1.0 - p_y1), (p_y1_obs, p_y1)]
        .into_iter()
        .enumerate()
    {
        if marg == 0.0 {
            return Err(format!(
                "naive_bayes: label {y} never occurs in the unbiased part '{unbiased}'"
            ));
        }
        let p = (cond * p_obs / marg).max(clip);
        if p <= 0.0 {
            return Err(format!(
                "naive_bayes: label {y} never occurs in the biased part '{biased}', so its propensity is 0 (set clip > 0)"
            ));
        }
        inv[y] = 1.0 / p;
    }
    Ok(inv)
}

/// Saito et al.'s relative item popularity `(n_i / max_j n_j)^eta` over the
/// rows of `part` (unclipped; 0 for items without rows).
pub fn item_popularity(data: &TrainData, part: &str, eta: f64) -> Result<Vec<f64>> {
    let rows = data
        .require_part(part)
        .map_err(|e| format!("propensity 'popularity' (parameter 'stats_part'): {e}"))?;
    let mut n = vec![0u64; data.n_items as usize];
    for &r in rows {
        let i = *data.item.get(r as usize).ok_or_else(|| {
            format!(
                "propensity 'popularity': part '{part}' has row {r}, but the table has {} rows",
                data.item.len()
            )
        })? as usize;
        *n.get_mut(i).ok_or_else(|| {
            format!(
                "propensity 'popularity': row {r} has item {i}, but there are {} items",
                data.n_items
            )
        })? += 1;
    }
    let max = n.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return Err(format!(
            "propensity 'popularity': part '{part}' (parameter 'stats_part') has no rows to count"
        ));
    }
    Ok(n.iter()
        .map(|&c| (c as f64 / max as f64).powf(eta))
        .collect())
}

/// Each row's position as a table index, and the numeric value of each
/// index (for finding the top position): token columns index by token id
/// (value: the token parsed as a number), float columns by their integer
/// value.
fn position_ids(col: &DataColumn) -> Result<(Vec<usize>, Vec<Option<f64>>)> {
    let name = col.name.as_str();
    if !col.offsets.is_empty() {
        return Err(format!(
            "propensity 'position': column '{name}' is a sequence column; expected one position per interaction (token or float)"
        ));
    }
    if !col.tokens.is_empty() {
        let values = col
            .vocab
            .iter()
            .map(|v| v.as_str().trim().parse::<f64>().ok())
            .collect();
        return Ok((col.tokens.iter().map(|&t| t as usize).collect(), values));
    }
    if !col.floats.is_empty() {
        let mut ids = Vec::with_capacity(col.floats.len());
        for (r, &x) in col.floats.iter().enumerate() {
            if !(x >= 0.0 && x.fract() == 0.0 && x < 1e6) {
                return Err(format!(
                    "propensity 'position': column '{name}' row {r} is {x}; expected a non-negative integer position"
                ));
            }
            ids.push(x as usize);
        }
        let n = ids.iter().copied().max().map_or(0, |m| m + 1);
        return Ok((ids, (0..n).map(|k| Some(k as f64)).collect()));
    }
    Err(format!(
        "propensity 'position': column '{name}' is empty or not a token/float column"
    ))
}

/// Position-based propensities `CTR_k / CTR_top` over the rows of `part`,
/// one per position id (see [`position_ids`]), at most 1; 1 for positions
/// without rows. Needs binary labels.
pub fn position_propensities(data: &TrainData, part: &str, column: &str) -> Result<Vec<f64>> {
    let who = "position";
    if data.label.is_empty() {
        return Err(
            "propensity 'position' needs click labels: dataset(.., #{label: \"<column>\"})".into(),
        );
    }
    let col = data
        .column(column)
        .map_err(|e| format!("propensity 'position' (parameter 'position_column'): {e}"))?;
    let rows = data
        .require_part(part)
        .map_err(|e| format!("propensity 'position' (parameter 'stats_part'): {e}"))?;
    let (ids, values) = position_ids(col)?;
    let n = values.len().max(ids.iter().copied().max().map_or(0, |m| m + 1));
    let (mut shown, mut clicks) = (vec![0u64; n], vec![0u64; n]);
    for &r in rows {
        let k = *ids.get(r as usize).ok_or_else(|| {
            format!(
                "propensity 'position': part '{part}' has row {r}, but column '{column}' has {} rows",
                ids.len()
            )
        })?;
        shown[k] += 1;
        let y = data.label[r as usize];
        if y == 1.0 {
            clicks[k] += 1;
        } else if y != 0.0 {
            return Err(format!(
                "propensity '{who}' needs binary click labels; part '{part}' has label {y}"
            ));
        }
    }
    // The top position: the smallest position value among those shown.
    let mut top: Option<(usize, f64)> = None;
    for k in (0..n).filter(|&k| shown[k] > 0) {
        let v = values.get(k).copied().flatten().ok_or_else(|| {
            format!(
                "propensity 'position': column '{column}' has position '{}', expected a number (the top position is the smallest)",
                col.vocab.get(k).map(|s| s.as_str()).unwrap_or("?")
            )
        })?;
        if top.is_none_or(|(_, t)| v < t) {
            top = Some((k, v));
        }
    }
    let (top, top_value) = top.ok_or_else(|| {
        format!("propensity 'position': part '{part}' (parameter 'stats_part') has no rows")
    })?;
    if clicks[top] == 0 {
        return Err(format!(
            "propensity 'position': no clicks at the top position {top_value} in part '{part}', so CTR ratios are undefined"
        ));
    }
    let ctr_top = clicks[top] as f64 / shown[top] as f64;
    Ok((0..n)
        .map(|k| {
            if shown[k] == 0 {
                1.0
            } else {
                (clicks[k] as f64 / shown[k] as f64 / ctr_top).min(1.0)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::DataPart;

    fn part(name: &str, rows: std::ops::Range<u32>) -> DataPart {
        DataPart {
            name: name.into(),
            rows: rows.collect(),
        }
    }

    fn data(biased: &[f32], unbiased: &[f32], users: u64, items: u64) -> TrainData {
        let label: Vec<f32> = biased.iter().chain(unbiased).copied().collect();
        let nb = biased.len() as u32;
        TrainData {
            n_users: users,
            n_items: items,
            label: label.clone().into(),
            parts: vec![part("obs", 0..nb), part("rct", nb..label.len() as u32)].into(),
            ..TrainData::default()
        }
    }

    fn params(ron: &str) -> Result<Params> {
        Params::parse("ips", &Propensity::param_specs(), ron)
    }

    #[test]
    fn naive_bayes_matches_hand_computation() {
        // Biased: 3 of 4 positive; unbiased: 1 of 4 positive; 4 of 10x10 cells observed.
        let d = data(&[1., 1., 1., 0.], &[1., 0., 0., 0.], 10, 10);
        let inv = naive_bayes_inverse(&d, "obs", "rct", 0.0).unwrap();
        let p_o = 4.0 / 100.0;
        let p1 = 0.75 * p_o / 0.25;
        let p0 = 0.25 * p_o / 0.75;
        assert!((inv[1] - 1.0 / p1).abs() < 1e-9, "{inv:?}");
        assert!((inv[0] - 1.0 / p0).abs() < 1e-9, "{inv:?}");
        // Through the model: propensities [p0, p1], and the clip.
        let m = Propensity::from_params(
            &params(r#"{"biased_part": "obs", "unbiased_part": "rct", "clip": 0.05}"#).unwrap(),
        )
        .unwrap();
        m.prepare(&d).unwrap();
        match m.prepared().unwrap() {
            Prepared::NaiveBayes { p, .. } => {
                assert!((p[0] - 0.05).abs() < 1e-12, "{p:?}"); // p0 = 1/75 < clip
                assert!((p[1] - p1).abs() < 1e-12, "{p:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn naive_bayes_rejects_bad_inputs() {
        let d = data(&[1., 1.], &[1., 1.], 10, 10);
        let e = naive_bayes_inverse(&d, "obs", "rct", 0.0).unwrap_err();
        assert!(
            e.contains("label 0 never occurs in the unbiased part"),
            "{e}"
        );
        let d = data(&[1., 2.], &[1., 0.], 10, 10);
        let e = naive_bayes_inverse(&d, "obs", "rct", 0.0).unwrap_err();
        assert!(e.contains("binary labels") && e.contains("'obs'"), "{e}");
        let e = naive_bayes_inverse(&d, "nope", "rct", 0.0).unwrap_err();
        assert!(
            e.contains("no part 'nope'") && e.contains("obs, rct"),
            "{e}"
        );
    }

    #[test]
    fn group_propensity_tables_hand_computed() {
        // items: 0 -> {a}, 1 -> {a, b}; user 0 clicked 0 and 1, user 1 clicked 1.
        let d = TrainData {
            n_users: 2,
            n_items: 2,
            user: vec![0, 0, 1].into(),
            item: vec![0, 1, 1].into(),
            items: vec![DataColumn {
                name: "genre".into(),
                role: "group".into(),
                vocab: vec!["".into(), "a".into(), "b".into()].into(),
                tokens: vec![1, 1, 2].into(),
                offsets: vec![0, 1, 3].into(),
                ..DataColumn::default()
            }]
            .into(),
            parts: vec![part("train", 0..3)].into(),
            ..TrainData::default()
        };
        let m = Propensity::from_params(&params(r#"{"propensity": "group"}"#).unwrap()).unwrap();
        m.prepare(&d).unwrap();
        // d_0 = ([1,0] + [.5,.5]) / 2, d_1 = [.5,.5]
        assert_eq!(
            m.prepared().unwrap(),
            Prepared::Group {
                n_groups: 2,
                users: vec![0.75, 0.25, 0.5, 0.5],
                items: vec![1.0, 0.0, 0.5, 0.5],
            }
        );
        let m = Propensity::from_params(
            &params(r#"{"propensity": "group", "groups": "year"}"#).unwrap(),
        )
        .unwrap();
        let e = m.prepare(&d).unwrap_err();
        assert!(e.starts_with("propensity 'group':") && e.contains("'year'"), "{e}");
    }

    #[test]
    fn popularity_is_relative_count_to_the_power_eta() {
        // Items 0..4 with 4, 1, 2, 0 training rows; row 7 is outside `train`.
        let d = TrainData {
            n_users: 1,
            n_items: 4,
            user: vec![0; 8].into(),
            item: vec![0, 0, 1, 0, 2, 0, 2, 3].into(),
            parts: vec![part("train", 0..7)].into(),
            ..TrainData::default()
        };
        let t = item_popularity(&d, "train", 0.5).unwrap();
        let want = [1.0, 0.25f64.sqrt(), 0.5f64.sqrt(), 0.0];
        for (a, b) in t.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{t:?}");
        }
        assert_eq!(item_popularity(&d, "train", 1.0).unwrap(), vec![1.0, 0.25, 0.5, 0.0]);
        // The model clips: 0 -> clip, and eta defaults to 0.5.
        let m = Propensity::from_params(
            &params(r#"{"propensity": "popularity", "clip": 0.1}"#).unwrap(),
        )
        .unwrap();
        m.prepare(&d).unwrap();
        let Prepared::Items(p) = m.prepared().unwrap() else {
            panic!("items")
        };
        assert_eq!(p[3], 0.1);
        assert!((p[1] - 0.5).abs() < 1e-12, "{p:?}");
        let e = item_popularity(&d, "valid", 0.5).unwrap_err();
        assert!(e.contains("'stats_part'") && e.contains("no part 'valid'"), "{e}");
        let e = Propensity::from_params(
            &params(r#"{"propensity": "popularity", "eta": -1.0}"#).unwrap(),
        )
        .unwrap_err();
        assert!(e.contains("'eta'") && e.contains(">= 0"), "{e}");
    }

    fn position_data(pos: DataColumn, label: Vec<f32>) -> TrainData {
        let n = label.len() as u32;
        TrainData {
            n_users: 1,
            n_items: 1,
            user: vec![0; n as usize].into(),
            item: vec![0; n as usize].into(),
            label: label.into(),
            inter: vec![pos].into(),
            parts: vec![part("train", 0..n - 1)].into(),
            ..TrainData::default()
        }
    }

    #[test]
    fn position_propensity_is_ctr_over_top_ctr() {
        // Token column, vocab ["", "2", "1", "3"]: position "1" (id 2) is the top.
        // Rows: pos 1: clicks 1,1,0,0 (CTR .5); pos 2: 1,0,0,0 (.25); pos 3: 0,0 (0);
        // the last row (pos 3, click) is outside `train`.
        let tokens = vec![2, 2, 2, 2, 1, 1, 1, 1, 3, 3, 3];
        let label = vec![1., 1., 0., 0., 1., 0., 0., 0., 0., 0., 1.];
        let col = DataColumn {
            name: "position".into(),
            role: "position".into(),
            vocab: vec!["".into(), "2".into(), "1".into(), "3".into()].into(),
            tokens: tokens.into(),
            ..DataColumn::default()
        };
        let d = position_data(col, label.clone());
        let t = position_propensities(&d, "train", "position").unwrap();
        // id 0 (padding) never shown -> 1
        assert_eq!(t, vec![1.0, 0.5, 1.0, 0.0]);
        let m = Propensity::from_params(
            &params(r#"{"propensity": "position", "clip": 0.2}"#).unwrap(),
        )
        .unwrap();
        m.prepare(&d).unwrap();
        assert_eq!(
            m.prepared().unwrap(),
            Prepared::Positions(vec![1.0, 0.5, 1.0, 0.2])
        );
        // A float column: positions 0 (top), 1; CTR .5 and .25 -> theta [1, .5].
        let col = DataColumn {
            name: "rank".into(),
            floats: vec![0., 0., 1., 1., 1., 1., 0.].into(),
            ..DataColumn::default()
        };
        let d = position_data(col, vec![1., 0., 1., 0., 0., 0., 0.]);
        assert_eq!(position_propensities(&d, "train", "rank").unwrap(), vec![1.0, 0.5]);
        let e = position_propensities(&d, "train", "position").unwrap_err();
        assert!(e.contains("'position_column'") && e.contains("no column 'position'"), "{e}");
        // No click at the top.
        let d = position_data(
            DataColumn {
                name: "rank".into(),
                floats: vec![0., 1., 0.].into(),
                ..DataColumn::default()
            },
            vec![0., 1., 0.],
        );
        let e = position_propensities(&d, "train", "rank").unwrap_err();
        assert!(e.contains("no clicks at the top position 0"), "{e}");
    }

    #[test]
    fn bad_parameters_name_the_parameter() {
        let e = Propensity::from_params(&params(r#"{"propensity": "magic"}"#).unwrap()).unwrap_err();
        assert!(e.contains("'propensity'") && e.contains("'popularity'"), "{e}");
        let e = Propensity::from_params(&params(r#"{"clip": 1.0}"#).unwrap()).unwrap_err();
        assert!(e.contains("'clip'") && e.contains("[0, 1)"), "{e}");
        let m = Propensity::from_params(&params(r#"{"propensity": "popularity"}"#).unwrap()).unwrap();
        let e = m.prepared().unwrap_err();
        assert!(e.contains("prepare() was not called"), "{e}");
    }
}
