//! IPS and SNIPS: the recipe's loss weighted by inverse propensities.
//!
//! Propensity sources:
//! - `naive_bayes` (Schnabel et al. 2016, Eq. 18; the MF-IPS baseline of
//!   CTAR): for a binary label `y`,
//!   `P(O=1 | Y=y) = P(Y=y | O=1) P(O=1) / P(Y=y)`, with `P(Y=y | O=1)`
//!   from the labels of the biased part, `P(Y=y)` from the labels of the
//!   unbiased (randomised) part, and `P(O=1) = |biased| / (users * items)`.
//! - `column`: a logged propensity per interaction (an interaction column,
//!   e.g. Open Bandit's `propensity_score`), read from the batch.
//! - `group` (DecRS's IPS baseline, after Saito et al. 2020): the
//!   propensity of (u, i) is the share of item i's groups in the user's
//!   training history, `sum_g q^i_g d_u(g)` (`causalrec_sdk::groups`), so
//!   items of a user's majority groups are down-weighted; positives get
//!   weight `1 / max(propensity, clip)`, sampled negatives weight 1.
//!
//! The weighted loss is `mean_b w_b * l_b`; `snips` divides the weights by
//! their batch mean (self-normalised IPS). `clip` bounds propensities from
//! below (0 = no clipping).

use std::sync::Mutex;

use causalrec_sdk::groups::{training_histories, ItemGroups};
use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, LossHandle, ParamSpec, Params, Result, TrainData,
    Var,
};

/// Where propensities come from.
#[derive(Clone, Debug, PartialEq)]
enum Source {
    NaiveBayes { biased: String, unbiased: String },
    Column(String),
    Group(String),
}

/// Per-user group distributions and per-item group vectors, flattened
/// (`[n_users * N]`, `[n_items * N]`), for the `group` source.
#[derive(Clone, Debug)]
struct GroupTables {
    n_groups: usize,
    users: Vec<f64>,
    items: Vec<f64>,
}

pub struct Ips {
    source: Source,
    clip: f64,
    self_normalise: bool,
    /// Naive-Bayes inverse propensities of labels 0 and 1, set by `prepare`.
    inv: Mutex<Option<[f64; 2]>>,
    /// Group statistics of the `group` source, set by `prepare`.
    groups: Mutex<Option<GroupTables>>,
}

fn params() -> Vec<ParamSpec> {
    vec![
        ParamSpec::new(
            "propensity",
            "naive_bayes",
            "propensity source: naive_bayes (from a biased and an unbiased part), column (logged) or group (the user's history share of the item's groups)",
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
        ParamSpec::new("clip", 0.0, "lower bound on propensities (0: none)"),
    ]
}

fn make(p: &Params, self_normalise: bool) -> Result<Ips> {
    let source = match p.string("propensity")?.as_str() {
        "naive_bayes" => Source::NaiveBayes {
            biased: p.string("biased_part")?,
            unbiased: p.string("unbiased_part")?,
        },
        "column" => Source::Column(p.string("column")?),
        "group" => Source::Group(p.string("groups")?),
        other => {
            return Err(format!(
                "propensity must be 'naive_bayes', 'column' or 'group', got '{other}'"
            ))
        }
    };
    let clip = p.f64("clip")?;
    if !(0.0..1.0).contains(&clip) {
        return Err(format!("clip must be in [0, 1), got {clip}"));
    }
    Ok(Ips {
        source,
        clip,
        self_normalise,
        inv: Mutex::new(None),
        groups: Mutex::new(None),
    })
}

pub fn ips_def() -> ComponentDef {
    ComponentDef::estimator(
        "ips",
        "Inverse propensity scoring: the loss weighted by 1/propensity (naive-Bayes or logged propensities)",
        params(),
        |p| make(p, false),
    )
}

pub fn snips_def() -> ComponentDef {
    ComponentDef::estimator(
        "snips",
        "Self-normalised IPS: inverse-propensity weights divided by their batch mean",
        params(),
        |p| make(p, true),
    )
}

/// Fraction of label 1 among `rows`; errors on a label that is not 0 or 1.
fn positive_rate(data: &TrainData, rows: &[u32], part: &str) -> Result<f64> {
    if rows.is_empty() {
        return Err(format!("part '{part}' is empty"));
    }
    let mut pos = 0usize;
    for &r in rows {
        let y = data.label[r as usize];
        if y == 1.0 {
            pos += 1;
        } else if y != 0.0 {
            return Err(format!(
                "naive_bayes propensities need binary labels; part '{part}' has label {y}"
            ));
        }
    }
    Ok(pos as f64 / rows.len() as f64)
}

/// Naive-Bayes inverse propensities `[1/P(O=1|Y=0), 1/P(O=1|Y=1)]`.
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
    let p_y1_obs = positive_rate(data, b, biased)?;
    let p_y1 = positive_rate(data, u, unbiased)?;
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

/// The `group` source's tables from the training positives.
fn group_tables(data: &TrainData, column: &str) -> Result<GroupTables> {
    let g = ItemGroups::from_train_data(data, column).map_err(|e| format!("ips: {e}"))?;
    let seqs = training_histories(data)?;
    Ok(GroupTables {
        n_groups: g.n_groups(),
        users: seqs.iter().flat_map(|s| g.distribution(s)).collect(),
        items: (0..data.n_items as u32).flat_map(|i| g.dense(i)).collect(),
    })
}

impl Ips {
    fn weights<'c>(&self, g: &'c Ctx<'_, '_>) -> Result<Var<'c>> {
        let w = match &self.source {
            Source::NaiveBayes { .. } => {
                let inv = self
                    .inv
                    .lock()
                    .map_err(|_| "ips: poisoned lock".to_string())?
                    .ok_or("ips: prepare() was not called before training")?;
                // w = y * inv1 + (1 - y) * inv0 for binary labels.
                g.input("label").affine(inv[1] - inv[0], inv[0])
            }
            Source::Column(c) => {
                let name = format!("inter.{c}");
                let p = g.try_input(&name).ok_or_else(|| {
                    format!("ips: the batch has no '{name}' (is '{c}' an interaction column?)")
                })?;
                p.clamp(self.clip.max(1e-12), 1.0).powf(-1.0)
            }
            Source::Group(_) => {
                let t = self
                    .groups
                    .lock()
                    .map_err(|_| "ips: poisoned lock".to_string())?
                    .clone()
                    .ok_or("ips: prepare() was not called before training")?;
                let n = t.n_groups;
                let du = g
                    .constant(&t.users, &[t.users.len() / n, n])
                    .index_select(g.input("user"), 0);
                let qi = g
                    .constant(&t.items, &[t.items.len() / n, n])
                    .index_select(g.input("item"), 0);
                let p = (du * qi).sum(-1).clamp(self.clip.max(1e-6), 1.0);
                // positives 1/p, negatives 1: y * (1/p - 1) + 1
                let y = g.input("label");
                y * (p.powf(-1.0) - 1.0) + 1.0
            }
        };
        Ok(if self.self_normalise {
            w / w.mean_all()
        } else {
            w
        })
    }
}

impl EstimatorImpl for Ips {
    fn prepare(&self, data: &TrainData) -> Result<()> {
        if let Source::Group(column) = &self.source {
            let t = group_tables(data, column)?;
            *self
                .groups
                .lock()
                .map_err(|_| "ips: poisoned lock".to_string())? = Some(t);
        }
        if let Source::NaiveBayes { biased, unbiased } = &self.source {
            let inv = naive_bayes_inverse(data, biased, unbiased, self.clip)?;
            *self
                .inv
                .lock()
                .map_err(|_| "ips: poisoned lock".to_string())? = Some(inv);
        }
        Ok(())
    }

    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let logit = self.score(g, bb)?;
        let w = self.weights(g)?;
        let l = loss.compute(g, &[("logit", logit)], g.input("label"), Some(w))?;
        Ok(vec![("loss".into(), l)])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.main()?.forward(g)?.0)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        bb.main()?.forward_all(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causalrec_sdk::DataPart;

    fn data(biased: &[f32], unbiased: &[f32], users: u64, items: u64) -> TrainData {
        let label: Vec<f32> = biased.iter().chain(unbiased).copied().collect();
        let nb = biased.len() as u32;
        TrainData {
            n_users: users,
            n_items: items,
            label: label.clone().into(),
            parts: vec![
                DataPart {
                    name: "obs".into(),
                    rows: (0..nb).collect(),
                },
                DataPart {
                    name: "rct".into(),
                    rows: (nb..label.len() as u32).collect(),
                },
            ]
            .into(),
            ..TrainData::default()
        }
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
        use causalrec_sdk::DataColumn;
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
            parts: vec![DataPart {
                name: "train".into(),
                rows: vec![0, 1, 2].into(),
            }]
            .into(),
            ..TrainData::default()
        };
        let t = group_tables(&d, "").unwrap();
        assert_eq!(t.n_groups, 2);
        // d_0 = ([1,0] + [.5,.5]) / 2, d_1 = [.5,.5]
        assert_eq!(t.users, vec![0.75, 0.25, 0.5, 0.5]);
        assert_eq!(t.items, vec![1.0, 0.0, 0.5, 0.5]);
        let e = group_tables(&d, "year").unwrap_err();
        assert!(e.starts_with("ips:") && e.contains("'year'"), "{e}");
    }
}
