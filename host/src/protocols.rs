//! Evaluation protocols that need a trained run: labelled-pair AUC / log-loss
//! on a split's interactions (label = rating at or above the positive threshold).

use std::collections::BTreeMap;

use crate::data::{Data, Part};
use crate::eval::{auc, log_loss};
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
