//! Evaluation protocols that need a trained run: labelled-pair AUC / log-loss
//! on a split's interactions (label = rating at or above the positive
//! threshold), and pointwise MSE / AUC / log-loss on any labelled part
//! (CTAR's per-test-set table, unbiased test sets); all-ranking over every
//! item, for a run or for the popularity baseline.

use std::collections::BTreeMap;

use crate::data::{Data, Part};
use crate::eval::{auc, log_loss, RankingAccumulator};
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
    let (users, items) = (data.ds.user_col(), data.ds.item_col());
    let labels: Vec<bool> = match (data.config.positive_threshold, data.ds.rating_col()) {
        (Some(t), Some(r)) => rows.iter().map(|&k| r[k] >= t).collect(),
        _ => {
            return Err(
                "auc needs labelled interactions: a rating column and a positive_threshold".into(),
            )
        }
    };
    let mut scores = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(8192) {
        let us: Vec<u32> = chunk.iter().map(|&k| users[k]).collect();
        let is: Vec<u32> = chunk.iter().map(|&k| items[k]).collect();
        scores.extend(run.score_pairs(data, &us, &is)?.into_iter().map(f64::from));
    }
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
    let labels = data
        .labels
        .as_ref()
        .ok_or("pointwise evaluation needs a label column: dataset(.., #{label: \"<column>\"})")?;
    if rows.is_empty() {
        return Err("pointwise evaluation: the part has no rows".into());
    }
    run.prepare(data)?;
    let (users, items) = (data.ds.user_col(), data.ds.item_col());
    let mut scores = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(8192) {
        let us: Vec<u32> = chunk.iter().map(|&k| users[k]).collect();
        let is: Vec<u32> = chunk.iter().map(|&k| items[k]).collect();
        scores.extend(run.score_pairs(data, &us, &is)?.into_iter().map(f64::from));
    }
    let y: Vec<f64> = rows.iter().map(|&r| labels[r] as f64).collect();
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
    let t = data.config.positive_threshold.unwrap_or(0.5) as f64;
    let is_pos: Vec<bool> = y.iter().map(|&v| v >= t).collect();
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

/// All-ranking Recall/NDCG@K on a part of the split: every user with
/// positives there ranks every item, excluding items seen in training (and
/// in validation, on test). `score` gives `[users.len() * n_items]` row-major.
pub fn all_ranking(
    data: &Data,
    part: Part,
    ks: &[usize],
    mut score: impl FnMut(&[u32]) -> Result<Vec<f32>, String>,
) -> Result<BTreeMap<String, f64>, String> {
    let relevant = data.positives(part);
    let users: Vec<u32> = (0..data.ds.n_users as u32)
        .filter(|&u| !relevant[u as usize].is_empty())
        .collect();
    let n = data.ds.n_items;
    let chunk = (1 << 16) / n.max(1) + 1;
    let mut acc = RankingAccumulator::new(ks);
    for us in users.chunks(chunk.clamp(1, 256)) {
        let scores = score(us)?;
        for (k, &u) in us.iter().enumerate() {
            let mut excluded = data.train_seen[u as usize].clone();
            if part == Part::Test {
                excluded.extend(&data.valid_seen[u as usize]);
                excluded.sort_unstable();
                excluded.dedup();
            }
            acc.add(
                &scores[k * n..(k + 1) * n],
                &excluded,
                &relevant[u as usize],
            );
        }
    }
    let mut m = acc.finish();
    m.insert("users".into(), acc.users as f64);
    Ok(m)
}

/// The popularity ranking (items by their number of training positives,
/// the same list for every user) under [`all_ranking`]: the baseline every
/// personalised model should beat.
pub fn popularity(data: &Data, part: Part, ks: &[usize]) -> Result<BTreeMap<String, f64>, String> {
    let mut counts = vec![0f32; data.ds.n_items];
    for &(_, i) in &data.train_pos {
        counts[i as usize] += 1.0;
    }
    all_ranking(data, part, ks, |us| {
        Ok(us.iter().flat_map(|_| counts.iter().copied()).collect())
    })
}
