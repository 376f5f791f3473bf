//! Evaluation protocols that need a trained run: labelled-pair AUC / log-loss
//! on a split's interactions (label = rating at or above the positive
//! threshold), and pointwise MSE / AUC / log-loss on any labelled part
//! (CTAR's per-test-set table, unbiased test sets); per impression list
//! AUC / MRR / nDCG@K on any labelled part, rows grouped by an interaction
//! column (MIND's protocol, IV4Rec+ section 6.2); all-ranking over every
//! item, for a run or for the popularity baseline, optionally with item
//! groups (`ckl@K`), a post-hoc re-ranker and a split of the users by
//! interest drift `eta_u` (DecRS Table 4: `<metric>|eta><t>`).

use std::collections::{BTreeMap, HashMap};

use causalrec_datasets::Column;
use causalrec_sdk::groups::{user_sequences, ItemGroups};

use crate::data::{Data, Part};
use crate::eval::{auc, log_loss, top_k, ImpressionAccumulator, RankingAccumulator};
use crate::rerank::Reranker;
use crate::train::Run;

/// AUC and log-loss of the run's scores on the interactions of `part`.
pub fn labelled_eval(
    run: &mut Run,
    data: &Data,
    part: Part,
) -> Result<BTreeMap<String, f64>, String> {
    let rows = match part {
        Part::Valid => &data.split.valid,
        Part::Test => &data.split.test,
    };
    if rows.is_empty() {
        return Err("the split has no interactions to evaluate".into());
    }
    let labels: Vec<bool> = match (data.config.positive_threshold, data.ds.rating_col()) {
        (Some(t), Some(r)) => rows.iter().map(|&k| r[k] >= t).collect(),
        _ => {
            return Err(
                "auc needs labelled interactions: a rating column and a positive_threshold".into(),
            )
        }
    };
    let scores = score_rows(run, data, rows)?;
    let mut m = BTreeMap::new();
    m.insert(
        "auc".into(),
        auc(&scores, &labels).ok_or("auc: the split has only one class")?,
    );
    m.insert("logloss".into(), log_loss(&scores, &labels));
    m.insert("pairs".into(), rows.len() as f64);
    Ok(m)
}

/// How a score maps to a prediction of the label.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Link {
    /// The score is the prediction (rating regression, MSE-trained MF).
    Identity,
    /// The score is a logit; the prediction is its sigmoid.
    Logit,
}

impl Link {
    /// Parse `identity` / `logit`.
    pub fn parse(s: &str) -> Result<Link, String> {
        match s {
            "identity" => Ok(Link::Identity),
            "logit" => Ok(Link::Logit),
            other => Err(format!("link must be 'identity' or 'logit', got '{other}'")),
        }
    }
}

/// Pointwise metrics of the run on labelled interaction `rows`: `mse` and
/// `mae` of the prediction against the label, `mean_prediction` and
/// `mean_label` (calibration), `auc` (labels at or above the
/// positive threshold, 0.5 by default, are positives; absent when the rows
/// hold one class), `logloss` (with [`Link::Logit`]), `n` and `positives`.
pub fn pointwise_eval(
    run: &mut Run,
    data: &Data,
    rows: &[usize],
    link: Link,
) -> Result<BTreeMap<String, f64>, String> {
    let labels = row_labels(data, "pointwise", rows)?;
    let scores = score_rows(run, data, rows)?;
    let y: Vec<f64> = labels.iter().map(|&v| f64::from(v)).collect();
    let pred: Vec<f64> = match link {
        Link::Identity => scores.clone(),
        Link::Logit => scores.iter().map(|&s| 1.0 / (1.0 + (-s).exp())).collect(),
    };
    let n = rows.len() as f64;
    let mse = pred
        .iter()
        .zip(&y)
        .map(|(p, t)| (p - t).powi(2))
        .sum::<f64>()
        / n;
    let mae = pred.iter().zip(&y).map(|(p, t)| (p - t).abs()).sum::<f64>() / n;
    let is_pos = positive_labels(data, &labels);
    let mut m = BTreeMap::new();
    m.insert("mse".into(), mse);
    m.insert("mae".into(), mae);
    if let Some(a) = auc(&scores, &is_pos) {
        m.insert("auc".into(), a);
    }
    if link == Link::Logit {
        m.insert("logloss".into(), log_loss(&scores, &is_pos));
    }
    // Calibration: the mean prediction against the mean label.
    m.insert("mean_prediction".into(), pred.iter().sum::<f64>() / n);
    m.insert("mean_label".into(), y.iter().sum::<f64>() / n);
    m.insert("n".into(), n);
    m.insert(
        "positives".into(),
        is_pos.iter().filter(|&&p| p).count() as f64,
    );
    Ok(m)
}

/// The run's score of every interaction row in `rows` (one (user, item)
/// example per row with the row's context fields, in row order), in chunks
/// of 8192.
pub fn score_rows(run: &mut Run, data: &Data, rows: &[usize]) -> Result<Vec<f64>, String> {
    run.prepare(data)?;
    let mut scores = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(8192) {
        scores.extend(run.score_rows(data, chunk)?.into_iter().map(f64::from));
    }
    Ok(scores)
}

/// The labels (`dataset(.., #{label})`) of `rows`, for the `protocol`
/// named in errors: there must be labels and at least one row.
fn row_labels(data: &Data, protocol: &str, rows: &[usize]) -> Result<Vec<f32>, String> {
    let labels = data.labels.as_ref().ok_or_else(|| {
        format!("{protocol} evaluation needs a label column: dataset(.., #{{label: \"<column>\"}})")
    })?;
    if rows.is_empty() {
        return Err(format!("{protocol} evaluation: the part has no rows"));
    }
    Ok(rows.iter().map(|&r| labels[r]).collect())
}

/// Which labels are positives: at or above the data's positive threshold
/// (0.5 by default).
fn positive_labels(data: &Data, labels: &[f32]) -> Vec<bool> {
    let t = data.config.positive_threshold.unwrap_or(0.5);
    labels.iter().map(|&v| v >= t).collect()
}

/// The value of interaction column `by` for every row of the data, as a
/// grouping key: token ids, or the bits of a float.
pub fn group_keys(data: &Data, by: &str) -> Result<Vec<u64>, String> {
    let inter = &data.ds.inter;
    let col = inter.column(by).ok_or_else(|| {
        format!(
            "no interaction column '{by}' for option 'by' (interaction columns: {})",
            inter.field_names()
        )
    })?;
    match col {
        Column::Token(v) => Ok(v.iter().map(|&t| u64::from(t)).collect()),
        Column::Float(v) => Ok(v.iter().map(|&x| u64::from(x.to_bits())).collect()),
        Column::Float64(v) => Ok(v.iter().map(|x| x.to_bits()).collect()),
        Column::TokenSeq { .. } | Column::FloatSeq { .. } => Err(format!(
            "option 'by': interaction column '{by}' holds lists; it must hold one token or number per row"
        )),
    }
}

/// Per impression list (MIND's protocol): the rows of a part grouped by
/// the value of interaction column `by`, each list scored by the run and
/// measured by [`crate::eval::impression_metrics`] against its labels
/// (positives at or above the positive threshold), averaged over the lists
/// with both a click and a non-click: `auc`, `mrr`, `ndcg@K`, with
/// `impressions` (lists used) and `skipped` (one-class lists).
pub fn impression_eval(
    run: &mut Run,
    data: &Data,
    rows: &[usize],
    by: &str,
    ks: &[usize],
) -> Result<BTreeMap<String, f64>, String> {
    let (keys, clicked) = impression_inputs(data, rows, by)?;
    let scores = score_rows(run, data, rows)?;
    impression_lists(rows, &keys, &scores, &clicked, ks)
}

/// What [`impression_eval`] reads besides scores, checked: the list key of
/// every data row (column `by`) and whether each of `rows` is clicked.
pub fn impression_inputs(
    data: &Data,
    rows: &[usize],
    by: &str,
) -> Result<(Vec<u64>, Vec<bool>), String> {
    let keys = group_keys(data, by)?;
    let clicked = positive_labels(data, &row_labels(data, "impressions", rows)?);
    Ok((keys, clicked))
}

/// [`impression_eval`] on given scores: `rows[j]` (scored `scores[j]`,
/// clicked `clicked[j]`) belongs to the list `keys[rows[j]]`; lists and
/// their items keep the order of `rows`.
pub fn impression_lists(
    rows: &[usize],
    keys: &[u64],
    scores: &[f64],
    clicked: &[bool],
    ks: &[usize],
) -> Result<BTreeMap<String, f64>, String> {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut lists: Vec<Vec<usize>> = Vec::new();
    for (j, &r) in rows.iter().enumerate() {
        let l = *index.entry(keys[r]).or_insert_with(|| {
            lists.push(Vec::new());
            lists.len() - 1
        });
        lists[l].push(j);
    }
    let mut acc = ImpressionAccumulator::new(ks);
    for l in &lists {
        let s: Vec<f64> = l.iter().map(|&j| scores[j]).collect();
        let c: Vec<bool> = l.iter().map(|&j| clicked[j]).collect();
        acc.add_list(&s, &c);
    }
    if acc.lists == 0 {
        return Err(format!(
            "impressions: none of the {} impression lists has both a clicked and an unclicked item",
            lists.len()
        ));
    }
    Ok(acc.finish())
}

/// Options of an all-ranking evaluation beyond the list lengths.
#[derive(Clone, Debug, Default)]
pub struct RankingOptions {
    /// Item groups: adds `ckl@K` (the user's training positives against
    /// the top-K list); needed by `rerank` and `drift_thresholds`.
    pub groups: Option<ItemGroups>,
    /// Re-rank each user's candidates; metrics are computed on its lists.
    pub rerank: Option<Reranker>,
    /// Repeat every metric over the users with `eta_u > t`, keyed
    /// `<metric>|eta>t`, with `users|eta>t`.
    pub drift_thresholds: Vec<f64>,
}

/// The item groups of a data column: `auto` is the item column with role
/// `group`, anything else an item column's name.
pub fn item_groups(data: &Data, column: &str) -> Result<ItemGroups, String> {
    let name = if column == "auto" { "" } else { column };
    ItemGroups::from_train_data(&data.train_data(), name).map_err(|e| format!("groups: {e}"))
}

/// The key suffix of a drift threshold: `|eta>0.5`.
pub fn drift_suffix(t: f64) -> String {
    format!("|eta>{t}")
}

/// All-ranking Recall/NDCG@K on a part of the split: every user with
/// positives there ranks every item, excluding items seen in training (and
/// in validation, on test). `score` gives `[users.len() * n_items]` row-major.
pub fn all_ranking(
    data: &Data,
    part: Part,
    ks: &[usize],
    score: impl FnMut(&[u32]) -> Result<Vec<f32>, String>,
) -> Result<BTreeMap<String, f64>, String> {
    all_ranking_with(data, part, ks, RankingOptions::default(), score)
}

/// [`all_ranking`] with [`RankingOptions`]: `ckl@K` with groups, metrics on
/// re-ranked lists, and per-drift-group metrics.
pub fn all_ranking_with(
    data: &Data,
    part: Part,
    ks: &[usize],
    mut opts: RankingOptions,
    mut score: impl FnMut(&[u32]) -> Result<Vec<f32>, String>,
) -> Result<BTreeMap<String, f64>, String> {
    let kmax = ks.iter().copied().max().unwrap_or(10);
    if opts.groups.is_none() {
        if let Some(r) = &opts.rerank {
            return Err(format!(
                "rerank ({}) needs item groups: set groups: \"<item column>\" or \"auto\"",
                r.name()
            ));
        }
        if !opts.drift_thresholds.is_empty() {
            return Err(
                "drift_thresholds needs item groups: set groups: \"<item column>\" or \"auto\""
                    .into(),
            );
        }
    }
    if let Some(r) = &opts.rerank {
        if r.candidates < kmax {
            return Err(format!(
                "rerank.candidates ({}) must be at least the largest k ({kmax})",
                r.candidates
            ));
        }
    }
    if let Some(t) = opts.drift_thresholds.iter().find(|t| !t.is_finite()) {
        return Err(format!("drift_thresholds must be finite numbers, got {t}"));
    }
    let n = data.ds.n_items;
    if let Some(g) = &opts.groups {
        if g.n_items() != n {
            return Err(format!(
                "groups cover {} items, the data set has {n}",
                g.n_items()
            ));
        }
    }
    // Each user's training positives (their group distribution is p_u).
    let history: Vec<Vec<u32>> = match &opts.groups {
        Some(_) => {
            let mut h = vec![Vec::new(); data.ds.n_users];
            for &(u, i) in &data.train_pos {
                h[u as usize].push(i);
            }
            h
        }
        None => Vec::new(),
    };
    // eta_u from the time-ordered training positives (Eq. 10).
    let eta: Vec<f64> = match (&opts.groups, opts.drift_thresholds.is_empty()) {
        (Some(g), false) => user_sequences(&data.train_data(), "train_positive")?
            .iter()
            .map(|s| g.drift(s))
            .collect(),
        _ => Vec::new(),
    };
    let relevant = data.positives(part);
    let users: Vec<u32> = (0..data.ds.n_users as u32)
        .filter(|&u| !relevant[u as usize].is_empty())
        .collect();
    let chunk = (1 << 16) / n.max(1) + 1;
    let mut acc = RankingAccumulator::new(ks);
    let mut by_drift: Vec<RankingAccumulator> = opts
        .drift_thresholds
        .iter()
        .map(|_| RankingAccumulator::new(ks))
        .collect();
    for us in users.chunks(chunk.clamp(1, 256)) {
        let scores = score(us)?;
        if scores.len() != us.len() * n {
            return Err(format!(
                "the scorer returned {} scores for {} users x {n} items",
                scores.len(),
                us.len()
            ));
        }
        for (k, &u) in us.iter().enumerate() {
            let mut excluded = data.train_seen[u as usize].clone();
            if part == Part::Test {
                excluded.extend(&data.valid_seen[u as usize]);
                excluded.sort_unstable();
                excluded.dedup();
            }
            let s = &scores[k * n..(k + 1) * n];
            let p = opts
                .groups
                .as_ref()
                .map(|g| g.distribution(&history[u as usize]));
            let ranked = match (&mut opts.rerank, &opts.groups, &p) {
                (Some(r), Some(g), Some(p)) => Some(r.rerank(s, &excluded, g, p, kmax)),
                // One top-K for every drift group.
                _ if !by_drift.is_empty() => Some(top_k(s, kmax, &excluded)),
                _ => None,
            };
            let calibration = opts.groups.as_ref().zip(p.as_deref());
            let rel = &relevant[u as usize];
            acc.add_user(s, &excluded, rel, ranked.as_deref(), calibration);
            for (a, &t) in by_drift.iter_mut().zip(&opts.drift_thresholds) {
                if eta[u as usize] > t {
                    a.add_user(s, &excluded, rel, ranked.as_deref(), calibration);
                }
            }
        }
    }
    let mut m = acc.finish();
    let names: Vec<String> = m.keys().cloned().collect();
    m.insert("users".into(), acc.users as f64);
    for (a, &t) in by_drift.iter().zip(&opts.drift_thresholds) {
        let sfx = drift_suffix(t);
        let got = a.finish();
        // A group without users reports NaN for every metric.
        for k in &names {
            m.insert(format!("{k}{sfx}"), got.get(k).copied().unwrap_or(f64::NAN));
        }
        m.insert(format!("users{sfx}"), a.users as f64);
    }
    Ok(m)
}

/// The popularity ranking (items by their number of training positives,
/// the same list for every user) under [`all_ranking`]: the baseline every
/// personalised model should beat.
pub fn popularity(data: &Data, part: Part, ks: &[usize]) -> Result<BTreeMap<String, f64>, String> {
    popularity_with(data, part, ks, RankingOptions::default())
}

/// [`popularity`] under [`all_ranking_with`].
pub fn popularity_with(
    data: &Data,
    part: Part,
    ks: &[usize],
    opts: RankingOptions,
) -> Result<BTreeMap<String, f64>, String> {
    let mut counts = vec![0f32; data.ds.n_items];
    for &(_, i) in &data.train_pos {
        counts[i as usize] += 1.0;
    }
    all_ranking_with(data, part, ks, opts, |us| {
        Ok(us.iter().flat_map(|_| counts.iter().copied()).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DataConfig;
    use crate::rerank::Method;
    use causalrec_datasets::{Column, Dataset, FieldKind, FieldMeta, Role, Table};

    /// Items 0, 1, 4 in genre A, 2, 3 in B. Training (time order):
    /// user 0: 0, 2 (eta = 2 ln 100); user 1: 0, 1 (eta 0); user 2: 2 (eta 0).
    /// Test: user 0 -> 3, user 1 -> 4, user 2 -> 0.
    fn tiny() -> Data {
        let rows: [(u32, u32, f64); 8] = [
            (0, 0, 1.0),
            (0, 2, 2.0),
            (1, 0, 1.0),
            (1, 1, 2.0),
            (2, 2, 1.0),
            (0, 3, 9.0),
            (1, 4, 9.0),
            (2, 0, 9.0),
        ];
        let mut inter = Table::new();
        let mut um = FieldMeta::new("user_id", FieldKind::Token, Role::User);
        um.vocab = (0..3).map(|u| format!("u{u}")).collect();
        let mut im = FieldMeta::new("item_id", FieldKind::Token, Role::Item);
        im.vocab = (0..5).map(|i| format!("i{i}")).collect();
        inter
            .push(
                um.clone(),
                Column::Token(rows.iter().map(|r| r.0).collect()),
            )
            .unwrap();
        inter
            .push(
                im.clone(),
                Column::Token(rows.iter().map(|r| r.1).collect()),
            )
            .unwrap();
        inter
            .push(
                FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
                Column::Float64(rows.iter().map(|r| r.2).collect()),
            )
            .unwrap();
        let mut items = Table::new();
        let mut gm = FieldMeta::new("genre", FieldKind::Token, Role::Group);
        gm.vocab = vec!["".into(), "A".into(), "B".into()];
        items.push(gm, Column::Token(vec![1, 1, 2, 2, 1])).unwrap();
        let ds = Dataset {
            name: "tiny".into(),
            inter,
            users: None,
            items: Some(items),
            n_users: 3,
            n_items: 5,
            user_ids: um.vocab,
            item_ids: im.vocab,
            parts: [
                ("train".to_string(), vec![0, 1, 2, 3, 4]),
                ("test".to_string(), vec![5, 6, 7]),
            ]
            .into_iter()
            .collect(),
        };
        let cfg = DataConfig {
            split: "given".into(),
            positive_threshold: None,
            ..DataConfig::default()
        };
        Data::from_dataset(ds, cfg).unwrap()
    }

    /// Every user scores item i as 5 - i.
    fn scores(us: &[u32]) -> Result<Vec<f32>, String> {
        Ok(us
            .iter()
            .flat_map(|_| (0..5).map(|i| 5.0 - i as f32))
            .collect())
    }

    fn close(m: &BTreeMap<String, f64>, k: &str, want: f64) {
        let got = m
            .get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in {m:?}"));
        assert!((got - want).abs() < 1e-9, "{k}: {got} vs {want}");
    }

    #[test]
    fn ckl_and_drift_groups_hand_computed() {
        let data = tiny();
        let g = item_groups(&data, "auto").unwrap();
        assert_eq!(g.names, vec!["A", "B"]);
        assert_eq!(item_groups(&data, "genre").unwrap(), g);
        assert!(item_groups(&data, "year")
            .unwrap_err()
            .starts_with("groups: no item column 'year'"));
        let opts = RankingOptions {
            groups: Some(g),
            drift_thresholds: vec![0.5, 100.0],
            ..RankingOptions::default()
        };
        let m = all_ranking_with(&data, Part::Test, &[1, 2], opts, scores).unwrap();
        // By score, training items excluded:
        //   user 0 (p = [.5, .5]): [1 (A), 3 (B)], relevant 3: R@1 0, R@2 1;
        //     ckl@1 = KL(p, [1, 0]) = .5 ln(.5/.995) + .5 ln(.5/.005), ckl@2 = 0.
        //   user 1 (p = [1, 0]): [2 (B), 3 (B)], relevant 4: R@1 0, R@2 0;
        //     ckl@1 = ckl@2 = ln(1 / .01) = ln 100.
        //   user 2 (p = [0, 1]): [0 (A), 1 (A)], relevant 0: R@1 1, R@2 1;
        //     ckl@1 = ckl@2 = ln 100.
        let kl_half = 0.5 * (0.5f64 / 0.995).ln() + 0.5 * 100f64.ln();
        let ln100 = 100f64.ln();
        close(&m, "users", 3.0);
        close(&m, "recall@1", 1.0 / 3.0);
        close(&m, "recall@2", 2.0 / 3.0);
        close(&m, "ckl@1", (kl_half + 2.0 * ln100) / 3.0);
        close(&m, "ckl@2", 2.0 * ln100 / 3.0);
        // eta > 0.5: user 0 only (eta = 2 ln 100 = 9.21).
        close(&m, "users|eta>0.5", 1.0);
        close(&m, "recall@1|eta>0.5", 0.0);
        close(&m, "recall@2|eta>0.5", 1.0);
        // NDCG@2 of [miss, hit] with one relevant: (1 / log2 3) / 1
        close(&m, "ndcg@2|eta>0.5", 1.0 / 3f64.log2());
        close(&m, "ckl@1|eta>0.5", kl_half);
        close(&m, "ckl@2|eta>0.5", 0.0);
        // eta > 100: nobody; metrics are NaN.
        close(&m, "users|eta>100", 0.0);
        assert!(m["recall@1|eta>100"].is_nan() && m["ckl@2|eta>100"].is_nan());
    }

    #[test]
    fn calibrated_lists_hand_computed() {
        let data = tiny();
        let rerank = Reranker::new(Method::Calibration { lambda: 0.99 }, 3).unwrap();
        let opts = RankingOptions {
            groups: Some(item_groups(&data, "genre").unwrap()),
            rerank: Some(rerank),
            ..RankingOptions::default()
        };
        let m = all_ranking_with(&data, Part::Test, &[1, 2], opts, scores).unwrap();
        // Candidates (top 3) and lambda .99 (C_KL dominates, score breaks ties):
        //   user 0, p = [.5, .5], [1 A, 3 B, 4 A]: first 1 (every single
        //     item has the same C_KL), then 3 (q = [.5, .5], C_KL 0) -> [1, 3]:
        //     R@1 0, R@2 1, ckl@1 = KL(p, [1, 0]), ckl@2 = 0.
        //   user 1, p = [1, 0], [2 B, 3 B, 4 A]: 4 (C_KL 0), then 2 (both B
        //     items give q = [.5, .5], 2 scores higher) -> [4, 2]: relevant 4:
        //     R@1 1, R@2 1; ckl@1 = 0, ckl@2 = ln(1 / (.495 + .01)).
        //   user 2, p = [0, 1], [0 A, 1 A, 3 B]: 3, then 0 -> [3, 0]: relevant 0:
        //     R@1 0, R@2 1; ckl@1 = 0, ckl@2 = ln(1 / .505).
        let kl_half = 0.5 * (0.5f64 / 0.995).ln() + 0.5 * 100f64.ln();
        let kl_mix = (1.0f64 / 0.505).ln();
        close(&m, "recall@1", 1.0 / 3.0);
        close(&m, "recall@2", 1.0);
        close(&m, "ckl@1", kl_half / 3.0);
        close(&m, "ckl@2", 2.0 * kl_mix / 3.0);
    }

    #[test]
    fn options_need_groups_and_enough_candidates() {
        let data = tiny();
        let opts = RankingOptions {
            drift_thresholds: vec![1.0],
            ..RankingOptions::default()
        };
        let e = all_ranking_with(&data, Part::Test, &[1], opts, scores).unwrap_err();
        assert!(e.contains("drift_thresholds needs item groups"), "{e}");
        let opts = RankingOptions {
            rerank: Some(Reranker::new(Method::Diversity { factor: 0.5 }, 3).unwrap()),
            ..RankingOptions::default()
        };
        let e = all_ranking_with(&data, Part::Test, &[1], opts, scores).unwrap_err();
        assert!(e.contains("rerank (diversity) needs item groups"), "{e}");
        let opts = RankingOptions {
            groups: Some(item_groups(&data, "auto").unwrap()),
            rerank: Some(Reranker::new(Method::Diversity { factor: 0.5 }, 3).unwrap()),
            ..RankingOptions::default()
        };
        let e = all_ranking_with(&data, Part::Test, &[5], opts, scores).unwrap_err();
        assert!(
            e.contains("rerank.candidates (3) must be at least the largest k (5)"),
            "{e}"
        );
        // No options: the plain protocol.
        let m = all_ranking(&data, Part::Test, &[1, 2], scores).unwrap();
        close(&m, "recall@2", 2.0 / 3.0);
        assert!(!m.contains_key("ckl@2"));
    }
}
