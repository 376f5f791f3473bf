//! Evaluation protocols that need a trained run: labelled-pair AUC / log-loss
//! on a split's interactions (label = rating at or above the positive
//! threshold), and pointwise MSE / AUC / log-loss on any labelled part
//! (CTAR's per-test-set table, unbiased test sets); per impression list
//! AUC / MRR / nDCG@K on any labelled part, rows grouped by an interaction
//! column (MIND's protocol, IV4Rec+ section 6.2); all-ranking over every
//! item, for a run or for the popularity baseline, optionally with item
//! groups (`ckl@K`), a post-hoc re-ranker, a split of the users by
//! interest drift `eta_u` (DecRS Table 4: `<metric>|eta><t>`), and HCR's
//! analyses (section 4.4): active vs less-active users by training
//! interactions (`<metric>|active`, `|less_active`), chronological subsets
//! of each user's held-out positives (`<metric>|period<j>`), and normalized
//! recall of item groups split by a ratio of two training statistics
//! (`nrecall@K|high_ratio`, `|low_ratio`).

use std::collections::{BTreeMap, HashMap};

use causalrec_datasets::Column;
use causalrec_sdk::groups::{user_sequences, ItemGroups};

use crate::data::{Data, Part};
use crate::eval::{
    auc, auc_of_candidates, log_loss, top_k, GroupRecallAccumulator, ImpressionAccumulator,
    RankingAccumulator,
};
use crate::rerank::Reranker;
use crate::train::Run;
use rayon::prelude::*;

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
    /// Repeat every metric over the active users (this share of all users,
    /// by number of training interactions; [`active_users`]) and the
    /// others: `<metric>|active`, `<metric>|less_active`.
    pub active_share: Option<f64>,
    /// Every metric on each chronological subset of the held-out positives
    /// ([`period_positives`]): `<metric>|period<j>`, `j` from 1.
    pub time_subsets: Option<TimeSubsets>,
    /// Normalized recall of two item groups split by a ratio of training
    /// statistics ([`ratio_item_groups`]): `nrecall@K|high_ratio`, ...
    pub ratio_groups: Option<RatioGroups>,
}

/// The suffixes of the activity groups.
pub const ACTIVITY_SUFFIXES: [&str; 2] = ["|active", "|less_active"];

/// The suffixes of the like/click-ratio item groups (high first).
pub const RATIO_SUFFIXES: [&str; 2] = ["|high_ratio", "|low_ratio"];

/// The key suffix of chronological subset `j` (from 1): `|period2`.
pub fn period_suffix(j: usize) -> String {
    format!("|period{j}")
}

/// Which held-out parts the chronological subsets divide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeldOut {
    Valid,
    Test,
    /// Validation and test together (HCR section 4.4.2).
    Both,
}

impl HeldOut {
    /// The option values.
    pub const VALUES: [&'static str; 3] = ["valid+test", "valid", "test"];

    /// Parse `valid+test` / `valid` / `test`.
    pub fn parse(s: &str) -> Result<HeldOut, String> {
        match s {
            "valid+test" => Ok(HeldOut::Both),
            "valid" => Ok(HeldOut::Valid),
            "test" => Ok(HeldOut::Test),
            other => Err(format!(
                "time_subsets.from must be one of {}, got '{other}'",
                Self::VALUES.join(", ")
            )),
        }
    }
}

/// `time_subsets`: `k` chronological subsets of each user's held-out
/// positives in `from`.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSubsets {
    pub k: usize,
    pub from: HeldOut,
}

/// A per-item statistic of the training interactions.
#[derive(Clone, Debug, PartialEq)]
pub enum ItemStat {
    /// Training rows (clicks, with `train_positives: "all"`).
    Interactions,
    /// Training rows at or above `positive_threshold` (likes).
    Positives,
    /// The sum of a numeric interaction column over the training rows.
    Column(String),
}

impl ItemStat {
    /// `interactions`, `positives`, or an interaction column's name.
    pub fn parse(s: &str) -> ItemStat {
        match s {
            "interactions" => ItemStat::Interactions,
            "positives" => ItemStat::Positives,
            c => ItemStat::Column(c.to_string()),
        }
    }

    fn name(&self) -> &str {
        match self {
            ItemStat::Interactions => "interactions",
            ItemStat::Positives => "positives",
            ItemStat::Column(c) => c,
        }
    }
}

/// `ratio_groups`: items with a positive `den` sorted by `num / den`
/// (descending); the first `high_share` of them form the high group, the
/// rest the low group.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioGroups {
    pub num: ItemStat,
    pub den: ItemStat,
    pub high_share: f64,
}

impl Default for RatioGroups {
    /// HCR's like/click ratio, groups 1:2 in size.
    fn default() -> Self {
        RatioGroups {
            num: ItemStat::Positives,
            den: ItemStat::Interactions,
            high_share: 1.0 / 3.0,
        }
    }
}

/// A share strictly between 0 and 1, or an error naming `option`.
fn open_share(option: &str, s: f64) -> Result<f64, String> {
    if s.is_finite() && s > 0.0 && s < 1.0 {
        Ok(s)
    } else {
        Err(format!("{option} must be a number in (0, 1), got {s}"))
    }
}

/// Of every user of the data set, whether it is active: users sorted by
/// their number of training interactions (descending, ties by user id),
/// the first `round(share * n_users)` are active (HCR section 4.4.1: the
/// top 40% of users by clicks).
pub fn active_users(data: &Data, share: f64) -> Result<Vec<bool>, String> {
    let share = open_share("active_share", share)?;
    let n = data.ds.n_users;
    let mut count = vec![0usize; n];
    let users = data.ds.user_col();
    for &r in &data.split.train {
        count[users[r] as usize] += 1;
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| count[b].cmp(&count[a]).then(a.cmp(&b)));
    let mut active = vec![false; n];
    for &u in order.iter().take((share * n as f64).round() as usize) {
        active[u] = true;
    }
    Ok(active)
}

/// Per subset `j < k`, per user, the sorted held-out positives of subset
/// `j`: each user's positives in `from` (validation before test) in time
/// order (ties by row), an item counted once at its first row, divided
/// into `k` consecutive parts as equal as possible, the first `n mod k`
/// parts one longer (HCR section 4.4.2: "for each user, we evenly divide
/// the corresponding liked items in validation and test sets into four
/// subsets chronologically").
pub fn period_positives(data: &Data, ts: &TimeSubsets) -> Result<Vec<Vec<Vec<u32>>>, String> {
    if ts.k == 0 {
        return Err("time_subsets.k must be at least 1, got 0".into());
    }
    let parts: &[Part] = match ts.from {
        HeldOut::Valid => &[Part::Valid],
        HeldOut::Test => &[Part::Test],
        HeldOut::Both => &[Part::Valid, Part::Test],
    };
    let (users, items) = (data.ds.user_col(), data.ds.item_col());
    let n = data.ds.n_users;
    // (time, part, row, item) of every positive row, per user.
    let mut rows: Vec<Vec<(f64, usize, usize, u32)>> = vec![Vec::new(); n];
    for (p, &part) in parts.iter().enumerate() {
        let split_rows = match part {
            Part::Valid => &data.split.valid,
            Part::Test => &data.split.test,
        };
        let pos = data.positives(part);
        for &r in split_rows {
            let (u, i) = (users[r] as usize, items[r]);
            if pos[u].binary_search(&i).is_ok() {
                rows[u].push((data.row_times[r], p, r, i));
            }
        }
    }
    let mut out = vec![vec![Vec::new(); n]; ts.k];
    for (u, mut rs) in rows.into_iter().enumerate() {
        rs.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        let mut seen = std::collections::HashSet::new();
        let seq: Vec<u32> = rs
            .into_iter()
            .filter_map(|(.., i)| seen.insert(i).then_some(i))
            .collect();
        let (base, extra) = (seq.len() / ts.k, seq.len() % ts.k);
        let mut start = 0;
        for (j, subset) in out.iter_mut().enumerate() {
            let len = base + usize::from(j < extra);
            let mut s = seq[start..start + len].to_vec();
            s.sort_unstable();
            subset[u] = s;
            start += len;
        }
    }
    Ok(out)
}

/// Per item, a statistic of the training interactions.
pub fn item_stat(data: &Data, stat: &ItemStat) -> Result<Vec<f64>, String> {
    let items = data.ds.item_col();
    let mut out = vec![0f64; data.ds.n_items];
    match stat {
        ItemStat::Interactions => {
            for &r in &data.split.train {
                out[items[r] as usize] += 1.0;
            }
        }
        ItemStat::Positives => {
            // With `train_positives: "all"` the liked ones are flagged.
            let flags = data.train_pos_like.as_deref();
            for (k, &r) in data.train_pos_rows.iter().enumerate() {
                if flags.is_none_or(|f| f[k] > 0.0) {
                    out[items[r] as usize] += 1.0;
                }
            }
        }
        ItemStat::Column(name) => {
            let col = data.ds.inter.column(name).ok_or_else(|| {
                format!(
                    "no interaction column '{name}' (a statistic is 'interactions', 'positives' or a numeric interaction column: {})",
                    data.ds.inter.field_names()
                )
            })?;
            let value: Box<dyn Fn(usize) -> f64> = match (col.as_floats(), col.as_floats64()) {
                (Some(v), _) => Box::new(move |r| f64::from(v[r])),
                (_, Some(v)) => Box::new(move |r| v[r]),
                _ => return Err(format!("interaction column '{name}' is not numeric")),
            };
            for &r in &data.split.train {
                out[items[r] as usize] += value(r);
            }
        }
    }
    Ok(out)
}

/// The item groups of [`RatioGroups`]: per item `Some(0)` (high ratio),
/// `Some(1)` (low) or `None` (a zero denominator: no ratio). Items are
/// sorted by `num / den` descending, ties by item id; the first
/// `round(high_share * n)` of the `n` items with a ratio are high (HCR
/// section 4.4.3: sorted by like/click ratio, two subsets 1:2 in size).
pub fn ratio_item_groups(data: &Data, rg: &RatioGroups) -> Result<Vec<Option<usize>>, String> {
    let share = open_share("ratio_groups.high_share", rg.high_share)?;
    let stat = |s: &ItemStat, what: &str| {
        item_stat(data, s).map_err(|e| format!("ratio_groups.{what}: {e}"))
    };
    let (num, den) = (stat(&rg.num, "num")?, stat(&rg.den, "den")?);
    let mut order: Vec<usize> = (0..den.len()).filter(|&i| den[i] > 0.0).collect();
    if order.is_empty() {
        return Err(format!(
            "ratio_groups.den: no item has a positive '{}' in training",
            rg.den.name()
        ));
    }
    let ratio = |i: usize| num[i] / den[i];
    order.sort_by(|&a, &b| ratio(b).total_cmp(&ratio(a)).then(a.cmp(&b)));
    let n_high = (share * order.len() as f64).round() as usize;
    let mut group = vec![None; den.len()];
    for (rank, &i) in order.iter().enumerate() {
        group[i] = Some(usize::from(rank >= n_high));
    }
    Ok(group)
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

/// Every metric key [`all_ranking_with`] reports for `ks` and `opts`
/// (what `host check` hands a recipe).
pub fn ranking_metric_names(ks: &[usize], opts: &RankingOptions) -> Vec<String> {
    let mut base = vec!["auc".to_string()];
    for k in ks {
        base.extend([format!("recall@{k}"), format!("ndcg@{k}")]);
        if opts.groups.is_some() {
            base.push(format!("ckl@{k}"));
        }
    }
    let mut names = base.clone();
    names.push("users".into());
    let mut suffixes: Vec<String> = opts
        .drift_thresholds
        .iter()
        .map(|&t| drift_suffix(t))
        .collect();
    if opts.active_share.is_some() {
        suffixes.extend(ACTIVITY_SUFFIXES.map(String::from));
    }
    if let Some(t) = &opts.time_subsets {
        suffixes.extend((1..=t.k).map(period_suffix));
    }
    for sfx in &suffixes {
        names.extend(base.iter().map(|m| format!("{m}{sfx}")));
        names.push(format!("users{sfx}"));
    }
    if opts.ratio_groups.is_some() {
        for sfx in RATIO_SUFFIXES {
            for k in ks {
                for m in ["grecall", "gshare", "nrecall"] {
                    names.push(format!("{m}@{k}{sfx}"));
                }
            }
            names.extend([format!("users{sfx}"), format!("items{sfx}")]);
        }
    }
    names
}

/// Insert a group's metrics under `sfx`: every name of `names` (NaN when
/// the group lacks it, as a group without users does) and `users`.
fn insert_group(
    m: &mut BTreeMap<String, f64>,
    names: &[String],
    sfx: &str,
    acc: &RankingAccumulator,
) {
    let got = acc.finish();
    for k in names {
        m.insert(format!("{k}{sfx}"), got.get(k).copied().unwrap_or(f64::NAN));
    }
    m.insert(format!("users{sfx}"), acc.users as f64);
}

/// The items `u` does not rank on `part`: seen in training, and on test
/// also in validation (sorted).
fn excluded_items(data: &Data, part: Part, u: usize) -> Vec<u32> {
    let mut excluded = data.train_seen[u].clone();
    if part == Part::Test {
        excluded.extend(&data.valid_seen[u]);
        excluded.sort_unstable();
        excluded.dedup();
    }
    excluded
}

/// Scores per block of users in [`all_ranking`] (at most 256 users): 64M
/// floats, 256 MiB. A block's matrix product reads every item's embedding
/// once, so small blocks of many items wait on memory: at 10^6 items (a
/// 256 MB item side) and 2,000 users, measured on 2 cores (`host bench
/// rank --data uniform --items 1000000 --inter 1000000`), with each block
/// copied out of its tensor, blocks of 5 users took 16.6 s, of 8 users
/// 14.4 s, of 17 users 10.8 s, of 68 users 11.9 s; read in place
/// ([`Scores`]), blocks of 8 users took 11.4-11.7 s, of 17 users 7.1-7.9 s,
/// of 68 users 5.2-5.6 s (peak RSS 0.73 GB), of 135 users 4.8-5.0 s (1.0
/// GB). Fewer than 2^18 items make blocks of 256 users.
const SCORE_BLOCK_FLOATS: usize = 1 << 26;

/// A scorer's block of scores, `[users * items]` row-major: values, or a
/// tensor. A contiguous f32 tensor on the CPU (a `score_all` matrix
/// product's output) is read where it lies; copying a block of up to
/// [`SCORE_BLOCK_FLOATS`] floats into a vector cost a pass over it and the
/// kernel zeroing the fresh pages of the copy (a block that large is mapped
/// on its own, not reused from the heap).
pub enum Scores {
    Values(Vec<f32>),
    Tensor(candle_core::Tensor),
}

impl From<Vec<f32>> for Scores {
    fn from(v: Vec<f32>) -> Self {
        Scores::Values(v)
    }
}

impl From<candle_core::Tensor> for Scores {
    fn from(t: candle_core::Tensor) -> Self {
        Scores::Tensor(t)
    }
}

/// [`Scores`] readable as one slice: borrowed from the vector or the
/// tensor's storage (held read-locked while the view lives), or copied
/// from a tensor of another type, layout or device.
pub enum ScoresView<'a> {
    Slice(&'a [f32]),
    Storage(candle_core::StorageRef<'a>, std::ops::Range<usize>),
    Copied(Vec<f32>),
}

impl Scores {
    /// The scores as one slice.
    pub fn view(&self) -> Result<ScoresView<'_>, String> {
        let t = match self {
            Scores::Values(v) => return Ok(ScoresView::Slice(v)),
            Scores::Tensor(t) => t,
        };
        if t.dtype() == candle_core::DType::F32 {
            let (storage, layout) = t.storage_and_layout();
            if let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(_)), Some((a, b))) =
                (&*storage, layout.contiguous_offsets())
            {
                return Ok(ScoresView::Storage(storage, a..b));
            }
        }
        crate::train::f32_values(t).map(ScoresView::Copied)
    }
}

impl std::ops::Deref for ScoresView<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            ScoresView::Slice(s) => s,
            ScoresView::Storage(storage, range) => match &**storage {
                candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)) => &v[range.clone()],
                // `Scores::view` makes this variant for CPU f32 storage only.
                _ => unreachable!("a scores view holds CPU f32 storage"),
            },
            ScoresView::Copied(v) => v,
        }
    }
}

/// All-ranking Recall/NDCG@K on a part of the split: every user with
/// positives there ranks every item, excluding items seen in training (and
/// in validation, on test). `score` gives `[users.len() * n_items]` row-major.
pub fn all_ranking<S: Into<Scores>>(
    data: &Data,
    part: Part,
    ks: &[usize],
    score: impl FnMut(&[u32]) -> Result<S, String>,
) -> Result<BTreeMap<String, f64>, String> {
    all_ranking_with(data, part, ks, RankingOptions::default(), score)
}

/// The user and item segments of [`RankingOptions`], checked against the
/// data: activity per user, chronological subsets, ratio item groups.
pub struct Segments {
    pub active: Option<Vec<bool>>,
    pub periods: Option<Vec<Vec<Vec<u32>>>>,
    /// The held-out parts the periods exclude, as on the part evaluated:
    /// `Test` only when they are the test positives alone.
    pub period_part: Part,
    pub ratio_groups: Option<Vec<Option<usize>>>,
}

impl Segments {
    /// Compute (and so check) the segments `opts` asks for.
    pub fn new(data: &Data, opts: &RankingOptions) -> Result<Segments, String> {
        if let (Some(_), Some(r)) = (&opts.time_subsets, &opts.rerank) {
            return Err(format!(
                "time_subsets ranks each subset by score; it cannot be combined with rerank ({})",
                r.name()
            ));
        }
        Ok(Segments {
            active: opts
                .active_share
                .map(|s| active_users(data, s))
                .transpose()?,
            periods: opts
                .time_subsets
                .as_ref()
                .map(|t| period_positives(data, t))
                .transpose()?,
            period_part: match &opts.time_subsets {
                Some(TimeSubsets {
                    from: HeldOut::Test,
                    ..
                }) => Part::Test,
                _ => Part::Valid,
            },
            ratio_groups: opts
                .ratio_groups
                .as_ref()
                .map(|r| ratio_item_groups(data, r))
                .transpose()?,
        })
    }
}

/// [`all_ranking`] with [`RankingOptions`]: `ckl@K` with groups, metrics on
/// re-ranked lists, per-drift-group and per-activity-group metrics,
/// metrics per chronological subset of the held-out positives, and
/// normalized recall of ratio item groups.
pub fn all_ranking_with<S: Into<Scores>>(
    data: &Data,
    part: Part,
    ks: &[usize],
    opts: RankingOptions,
    score: impl FnMut(&[u32]) -> Result<S, String>,
) -> Result<BTreeMap<String, f64>, String> {
    // Every block of users makes score tensors of the same sizes: freed
    // ones are reused instead of mapped and zeroed again.
    crate::alloc_cache::scope(|| ranking_blocks(data, part, ks, opts, score))
}

/// [`all_ranking_with`]'s work, block after block of users.
fn ranking_blocks<S: Into<Scores>>(
    data: &Data,
    part: Part,
    ks: &[usize],
    mut opts: RankingOptions,
    mut score: impl FnMut(&[u32]) -> Result<S, String>,
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
    let seg = Segments::new(data, &opts)?;
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
    // Users with positives on the part, or in a chronological subset.
    let users: Vec<u32> = (0..data.ds.n_users as u32)
        .filter(|&u| {
            !relevant[u as usize].is_empty()
                || seg
                    .periods
                    .as_ref()
                    .is_some_and(|p| p.iter().any(|s| !s[u as usize].is_empty()))
        })
        .collect();
    // Users per scoring block ([`SCORE_BLOCK_FLOATS`]): a scorer reads the
    // item side once per block, not once per user.
    let chunk = SCORE_BLOCK_FLOATS / n.max(1) + 1;
    let new_acc = |len: usize| -> Vec<RankingAccumulator> {
        (0..len).map(|_| RankingAccumulator::new(ks)).collect()
    };
    let mut acc = RankingAccumulator::new(ks);
    let mut by_drift = new_acc(opts.drift_thresholds.len());
    let mut by_activity = new_acc(if seg.active.is_some() { 2 } else { 0 });
    let mut by_period = new_acc(seg.periods.as_ref().map_or(0, Vec::len));
    let mut by_ratio = seg
        .ratio_groups
        .clone()
        .map(|g| GroupRecallAccumulator::new(ks, g, 2));
    for us in users.chunks(chunk.clamp(1, 256)) {
        let block: Scores = score(us)?.into();
        let scores = block.view()?;
        if scores.len() != us.len() * n {
            return Err(format!(
                "the scorer returned {} scores for {} users x {n} items",
                scores.len(),
                us.len()
            ));
        }
        // The k-th user's top-K list by score and AUC.
        let by_score = |k: usize, u: u32| {
            let s = &scores[k * n..(k + 1) * n];
            let excluded = excluded_items(data, part, u as usize);
            let rel = &relevant[u as usize];
            (
                top_k(s, kmax, &excluded),
                auc_of_candidates(s, &excluded, rel),
            )
        };
        // Per user in parallel (a re-ranker keeps state across users, so
        // its lists are made in order below).
        let mut lists: Vec<Option<(Vec<u32>, Option<f64>)>> = if opts.rerank.is_none() {
            us.par_iter()
                .enumerate()
                .map(|(k, &u)| (!relevant[u as usize].is_empty()).then(|| by_score(k, u)))
                .collect()
        } else {
            vec![None; us.len()]
        };
        for (k, &u) in us.iter().enumerate() {
            let s = &scores[k * n..(k + 1) * n];
            let p = opts
                .groups
                .as_ref()
                .map(|g| g.distribution(&history[u as usize]));
            let calibration = opts.groups.as_ref().zip(p.as_deref());
            let rel = &relevant[u as usize];
            if !rel.is_empty() {
                let (ranked, auc) = match (lists[k].take(), &mut opts.rerank, &opts.groups, &p) {
                    (Some(list), ..) => list,
                    (None, Some(r), Some(g), Some(p)) => {
                        let excluded = excluded_items(data, part, u as usize);
                        let ranked = r.rerank(s, &excluded, g, p, kmax);
                        (ranked, auc_of_candidates(s, &excluded, rel))
                    }
                    (None, ..) => by_score(k, u),
                };
                acc.add_ranked(&ranked, auc, rel, calibration);
                for (a, &t) in by_drift.iter_mut().zip(&opts.drift_thresholds) {
                    if eta[u as usize] > t {
                        a.add_ranked(&ranked, auc, rel, calibration);
                    }
                }
                if let Some(active) = &seg.active {
                    let a = &mut by_activity[usize::from(!active[u as usize])];
                    a.add_ranked(&ranked, auc, rel, calibration);
                }
                if let Some(g) = &mut by_ratio {
                    g.add_user(&ranked, rel);
                }
            }
            if let Some(periods) = &seg.periods {
                let excluded = excluded_items(data, seg.period_part, u as usize);
                let ranked = top_k(s, kmax, &excluded);
                for (a, subset) in by_period.iter_mut().zip(periods) {
                    let rel = &subset[u as usize];
                    if !rel.is_empty() {
                        a.add_user(s, &excluded, rel, Some(&ranked), calibration);
                    }
                }
            }
        }
    }
    let mut m = acc.finish();
    let names: Vec<String> = m.keys().cloned().collect();
    m.insert("users".into(), acc.users as f64);
    for (a, &t) in by_drift.iter().zip(&opts.drift_thresholds) {
        insert_group(&mut m, &names, &drift_suffix(t), a);
    }
    for (a, sfx) in by_activity.iter().zip(ACTIVITY_SUFFIXES) {
        insert_group(&mut m, &names, sfx, a);
    }
    for (j, a) in by_period.iter().enumerate() {
        insert_group(&mut m, &names, &period_suffix(j + 1), a);
    }
    if let (Some(g), Some(groups)) = (&by_ratio, &seg.ratio_groups) {
        for (gi, (got, sfx)) in g.finish().into_iter().zip(RATIO_SUFFIXES).enumerate() {
            for (k, v) in got {
                m.insert(format!("{k}{sfx}"), v);
            }
            let items = groups.iter().filter(|&&x| x == Some(gi)).count();
            m.insert(format!("items{sfx}"), items as f64);
        }
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
        Ok(us
            .iter()
            .flat_map(|_| counts.iter().copied())
            .collect::<Vec<f32>>())
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
        let pairs: Vec<(u32, u32)> = rows.iter().map(|r| (r.0, r.1)).collect();
        let times: Vec<f64> = rows.iter().map(|r| r.2).collect();
        let (inter, user_ids, item_ids) = id_table(3, 5, &pairs, times);
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
            user_ids,
            item_ids,
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

    /// An interaction table of (user, item) rows and their times, with
    /// vocabularies `u<k>` / `i<k>`; also the two vocabularies.
    pub(super) fn id_table(
        n_users: usize,
        n_items: usize,
        rows: &[(u32, u32)],
        times: Vec<f64>,
    ) -> (Table, Vec<String>, Vec<String>) {
        let mut inter = Table::new();
        let mut um = FieldMeta::new("user_id", FieldKind::Token, Role::User);
        um.vocab = (0..n_users).map(|u| format!("u{u}")).collect();
        let mut im = FieldMeta::new("item_id", FieldKind::Token, Role::Item);
        im.vocab = (0..n_items).map(|i| format!("i{i}")).collect();
        let (users, items) = rows.iter().copied().unzip();
        inter.push(um.clone(), Column::Token(users)).unwrap();
        inter.push(im.clone(), Column::Token(items)).unwrap();
        inter
            .push(
                FieldMeta::new("timestamp", FieldKind::Float, Role::Timestamp),
                Column::Float64(times),
            )
            .unwrap();
        (inter, um.vocab, im.vocab)
    }

    /// Every user scores item i as 5 - i.
    fn scores(us: &[u32]) -> Result<Vec<f32>, String> {
        Ok(us
            .iter()
            .flat_map(|_| (0..5).map(|i| 5.0 - i as f32))
            .collect())
    }

    pub(super) fn close(m: &BTreeMap<String, f64>, k: &str, want: f64) {
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

/// HCR's analyses (section 4.4) on a data set small enough to rank by hand.
#[cfg(test)]
mod hcr_analyses {
    use super::tests::close;
    use super::*;
    use crate::data::{DataConfig, TrainPositives};
    use causalrec_datasets::{Column, Dataset, FieldKind, FieldMeta, Role};

    /// 3 users, 8 items; (user, item, like, time), `like` the rating.
    /// Train (clicks): u0: 0 (liked), 1, 2; u1: 0, 3 (liked); u2: 1 (liked).
    /// Valid: u0: 4 (liked, t 10); u1: 5 (not liked, t 10), 2 (liked, t 11).
    /// Test: u0: 3 (t 21), 5 (t 20); u1: 4 (t 20), 1 (t 22); u2: 2 (t 20), all liked.
    const ROWS: [(u32, u32, f32, f64); 14] = [
        (0, 0, 1.0, 1.0),
        (0, 1, 0.0, 2.0),
        (0, 2, 0.0, 3.0),
        (1, 0, 0.0, 1.0),
        (1, 3, 1.0, 2.0),
        (2, 1, 1.0, 1.0),
        (0, 4, 1.0, 10.0),
        (1, 5, 0.0, 10.0),
        (1, 2, 1.0, 11.0),
        (0, 3, 1.0, 21.0),
        (0, 5, 1.0, 20.0),
        (1, 4, 1.0, 20.0),
        (1, 1, 1.0, 22.0),
        (2, 2, 1.0, 20.0),
    ];

    fn data(train_positives: TrainPositives) -> Data {
        let pairs: Vec<(u32, u32)> = ROWS.iter().map(|r| (r.0, r.1)).collect();
        let times = ROWS.iter().map(|r| r.3).collect();
        let (mut inter, user_ids, item_ids) = super::tests::id_table(3, 8, &pairs, times);
        inter
            .push(
                FieldMeta::new("like", FieldKind::Float, Role::Rating),
                Column::Float(ROWS.iter().map(|r| r.2).collect()),
            )
            .unwrap();
        let ds = Dataset {
            name: "hcr-tiny".into(),
            inter,
            users: None,
            items: None,
            n_users: 3,
            n_items: 8,
            user_ids,
            item_ids,
            parts: [
                ("train".to_string(), (0..6).collect()),
                ("valid".to_string(), (6..9).collect()),
                ("test".to_string(), (9..14).collect()),
            ]
            .into_iter()
            .collect(),
        };
        let cfg = DataConfig {
            split: "given".into(),
            positive_threshold: Some(1.0),
            train_positives,
            ..DataConfig::default()
        };
        Data::from_dataset(ds, cfg).unwrap()
    }

    /// Every user ranks 6, 4, 3, 5, 1, 2, 0, 7.
    fn scores(us: &[u32]) -> Result<Vec<f32>, String> {
        let s = [2.0, 4.0, 3.0, 6.0, 7.0, 5.0, 8.0, 1.0];
        Ok(us.iter().flat_map(|_| s).collect())
    }

    /// 1 / log2(3): the gain of a hit at rank 2.
    fn l2() -> f64 {
        1.0 / 3f64.log2()
    }

    fn eval(opts: RankingOptions) -> BTreeMap<String, f64> {
        all_ranking_with(
            &data(TrainPositives::All),
            Part::Test,
            &[2, 3],
            opts,
            scores,
        )
        .unwrap()
    }

    #[test]
    fn plain_test_ranking() {
        // Test (train and valid items excluded):
        //   u0: 6, 3, 5, 7; relevant {3, 5}: R@2 1/2, R@3 1
        //   u1: 6, 4, 1, 7; relevant {1, 4}: R@2 1/2, R@3 1
        //   u2: 6, 4, 3, 5, 2, 0, 7; relevant {2}: R@2 0, R@3 0
        let m = eval(RankingOptions::default());
        close(&m, "users", 3.0);
        close(&m, "recall@2", 1.0 / 3.0);
        close(&m, "recall@3", 2.0 / 3.0);
        // u0, u1: a hit at rank 2 of two relevant -> l2 / (1 + l2); at 3
        // also rank 3: (l2 + 1/2) / (1 + l2).
        close(&m, "ndcg@2", 2.0 / 3.0 * l2() / (1.0 + l2()));
        close(&m, "ndcg@3", 2.0 / 3.0 * (l2() + 0.5) / (1.0 + l2()));
    }

    #[test]
    fn scores_are_read_in_place_from_a_tensor_or_copied_the_same() {
        use candle_core::{DType, Device, Tensor};
        let values: Vec<f32> = (0..12).map(|x| x as f32 * 0.5 - 2.0).collect();
        let t = Tensor::from_vec(values.clone(), (3, 4), &Device::Cpu).unwrap();
        // A contiguous f32 tensor is borrowed, a narrowed one from its offset.
        let s = Scores::from(t.clone());
        assert!(matches!(s.view().unwrap(), ScoresView::Storage(..)));
        assert_eq!(&*s.view().unwrap(), &values[..]);
        let rows = Scores::from(t.narrow(0, 1, 2).unwrap());
        assert!(matches!(rows.view().unwrap(), ScoresView::Storage(..)));
        assert_eq!(&*rows.view().unwrap(), &values[4..]);
        // A transposed or f64 tensor is copied, in row-major order, as f32.
        let tt = Scores::from(t.t().unwrap());
        let v = &values;
        let want: Vec<f32> = (0..4)
            .flat_map(|c| (0..3).map(move |r| v[r * 4 + c]))
            .collect();
        assert!(matches!(tt.view().unwrap(), ScoresView::Copied(_)));
        assert_eq!(&*tt.view().unwrap(), &want[..]);
        let f64s = Scores::from(t.to_dtype(DType::F64).unwrap());
        assert!(matches!(f64s.view().unwrap(), ScoresView::Copied(_)));
        assert_eq!(&*f64s.view().unwrap(), &values[..]);
        // The ranking is the same from a tensor as from the values.
        let from_tensor = all_ranking(&data(TrainPositives::All), Part::Test, &[2, 3], |us| {
            let v = scores(us)?;
            Tensor::from_vec(v, (us.len(), 8), &Device::Cpu).map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(from_tensor, eval(RankingOptions::default()));
    }

    #[test]
    fn active_and_less_active_users_hand_computed() {
        let d = data(TrainPositives::All);
        // Training clicks: u0 3, u1 2, u2 1.
        assert_eq!(active_users(&d, 0.4).unwrap(), vec![true, false, false]);
        assert_eq!(active_users(&d, 0.5).unwrap(), vec![true, true, false]);
        let m = eval(RankingOptions {
            active_share: Some(0.4),
            ..RankingOptions::default()
        });
        close(&m, "users|active", 1.0);
        close(&m, "recall@2|active", 0.5);
        close(&m, "recall@3|active", 1.0);
        close(&m, "ndcg@2|active", l2() / (1.0 + l2()));
        close(&m, "users|less_active", 2.0);
        close(&m, "recall@2|less_active", 0.25);
        close(&m, "recall@3|less_active", 0.5);
        close(&m, "ndcg@3|less_active", (l2() + 0.5) / (1.0 + l2()) / 2.0);
        // The main metrics are unchanged.
        close(&m, "recall@3", 2.0 / 3.0);
        // Everyone active: the other group is empty, its metrics NaN.
        let m = eval(RankingOptions {
            active_share: Some(0.9),
            ..RankingOptions::default()
        });
        close(&m, "users|active", 3.0);
        close(&m, "recall@3|active", 2.0 / 3.0);
        close(&m, "users|less_active", 0.0);
        assert!(m["recall@3|less_active"].is_nan());
    }

    #[test]
    fn chronological_subsets_hand_computed() {
        let d = data(TrainPositives::All);
        // valid+test positives in time order: u0 4, 5, 3; u1 2, 4, 1 (5 is
        // not liked); u2 2. Two subsets, the first one longer.
        let p = period_positives(
            &d,
            &TimeSubsets {
                k: 2,
                from: HeldOut::Both,
            },
        )
        .unwrap();
        assert_eq!(p[0], vec![vec![4, 5], vec![2, 4], vec![2]]);
        assert_eq!(p[1], vec![vec![3], vec![1], vec![]]);
        let p3 = period_positives(
            &d,
            &TimeSubsets {
                k: 3,
                from: HeldOut::Both,
            },
        )
        .unwrap();
        assert_eq!(p3[2], vec![vec![3], vec![1], vec![]]);
        let m = eval(RankingOptions {
            time_subsets: Some(TimeSubsets {
                k: 2,
                from: HeldOut::Both,
            }),
            ..RankingOptions::default()
        });
        // Only training items excluded:
        //   u0: 6, 4, 3, 5, 7: period 1 {4, 5}: R@2 1/2, R@3 1/2; period 2 {3}: 0, 1
        //   u1: 6, 4, 5, 1, 2, 7: period 1 {2, 4}: 1/2, 1/2; period 2 {1}: 0, 0
        //   u2: 6, 4, 3, 5, 2, 0, 7: period 1 {2}: 0, 0
        close(&m, "users|period1", 3.0);
        close(&m, "recall@2|period1", 1.0 / 3.0);
        close(&m, "recall@3|period1", 1.0 / 3.0);
        close(&m, "ndcg@2|period1", 2.0 / 3.0 * l2() / (1.0 + l2()));
        close(&m, "users|period2", 2.0);
        close(&m, "recall@2|period2", 0.0);
        close(&m, "recall@3|period2", 0.5);
        close(&m, "ndcg@3|period2", 0.5 * 0.5);
        close(&m, "recall@3", 2.0 / 3.0);

        // The test positives alone, validation items excluded as on test:
        //   u0: 6, 3, 5, 7: period 1 {5} (t 20): R@2 0, R@3 1; period 2 {3}: 1, 1
        //   u1: 6, 4, 1, 7: period 1 {4}: 1, 1; period 2 {1}: 0, 1
        //   u2: period 1 {2}: 0, 0
        let m = eval(RankingOptions {
            time_subsets: Some(TimeSubsets {
                k: 2,
                from: HeldOut::Test,
            }),
            ..RankingOptions::default()
        });
        close(&m, "recall@2|period1", 1.0 / 3.0);
        close(&m, "recall@3|period1", 2.0 / 3.0);
        close(&m, "recall@2|period2", 0.5);
        close(&m, "recall@3|period2", 1.0);
        close(&m, "users|period2", 2.0);
    }

    #[test]
    fn ratio_groups_and_normalized_recall_hand_computed() {
        let d = data(TrainPositives::All);
        // Training likes / clicks per item: 0: 1/2, 1: 1/2, 2: 0/1, 3: 1/1;
        // 4-7 no clicks (no ratio). Sorted: 3, 0, 1, 2.
        assert_eq!(
            item_stat(&d, &ItemStat::Interactions).unwrap(),
            vec![2.0, 2.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        );
        let likes = vec![1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(item_stat(&d, &ItemStat::Positives).unwrap(), likes);
        assert_eq!(
            item_stat(&d, &ItemStat::Column("like".into())).unwrap(),
            likes
        );
        // Trained on the likes, the statistics are the same.
        let dl = data(TrainPositives::Threshold);
        assert_eq!(item_stat(&dl, &ItemStat::Positives).unwrap(), likes);
        // 1:2 of the four items with a ratio: round(4 / 3) = 1 high.
        let g = ratio_item_groups(&d, &RatioGroups::default()).unwrap();
        let (h, l) = (Some(0), Some(1));
        assert_eq!(g, vec![l, l, l, h, None, None, None, None]);
        let rg = RatioGroups {
            high_share: 0.5,
            ..RatioGroups::default()
        };
        let g = ratio_item_groups(&d, &rg).unwrap();
        assert_eq!(g, vec![h, l, l, h, None, None, None, None]);
        let m = eval(RankingOptions {
            ratio_groups: Some(rg),
            ..RankingOptions::default()
        });
        // High {0, 3}, low {1, 2}. Test lists (top 3):
        //   u0: 6, 3, 5; relevant high {3}: recall@2 1, @3 1; share of high
        //     in the list @2 1/2, @3 1/3; no relevant low item.
        //   u1: 6, 4, 1; relevant low {1}: recall@2 0, @3 1; share of low
        //     @2 0, @3 1/3.
        //   u2: 6, 4, 3; relevant low {2}: recall 0, 0; share of low 0, 0.
        close(&m, "items|high_ratio", 2.0);
        close(&m, "items|low_ratio", 2.0);
        close(&m, "users|high_ratio", 1.0);
        close(&m, "grecall@2|high_ratio", 1.0);
        close(&m, "gshare@2|high_ratio", 0.5);
        close(&m, "nrecall@2|high_ratio", 2.0);
        close(&m, "gshare@3|high_ratio", 1.0 / 3.0);
        close(&m, "nrecall@3|high_ratio", 3.0);
        close(&m, "users|low_ratio", 2.0);
        close(&m, "grecall@3|low_ratio", 0.5);
        close(&m, "gshare@3|low_ratio", 1.0 / 6.0);
        close(&m, "nrecall@3|low_ratio", 3.0);
        // No low item in any top 2: no share to normalize by.
        close(&m, "gshare@2|low_ratio", 0.0);
        assert!(m["nrecall@2|low_ratio"].is_nan());
    }

    #[test]
    fn every_option_at_once_reports_the_names_check_lists() {
        let opts = RankingOptions {
            active_share: Some(0.4),
            time_subsets: Some(TimeSubsets {
                k: 4,
                from: HeldOut::Both,
            }),
            ratio_groups: Some(RatioGroups::default()),
            ..RankingOptions::default()
        };
        let names = ranking_metric_names(&[2, 3], &opts);
        let m = eval(opts);
        let got: Vec<&String> = m.keys().collect();
        let mut want: Vec<&String> = names.iter().collect();
        want.sort();
        assert_eq!(got, want);
        // Four subsets of at most three positives: the fourth is empty.
        close(&m, "users|period4", 0.0);
        close(&m, "users|period1", 3.0);
        // u0 {4}, u1 {2}, u2 {2} first; only training items excluded:
        // u0's 4 at rank 2, u1's 2 and u2's 2 outside the top 3.
        close(&m, "recall@2|period1", 1.0 / 3.0);
    }

    #[test]
    fn bad_segment_options_name_the_option() {
        let d = data(TrainPositives::All);
        for s in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            let e = active_users(&d, s).unwrap_err();
            assert!(
                e.starts_with("active_share must be a number in (0, 1), got"),
                "{e}"
            );
        }
        let e = period_positives(
            &d,
            &TimeSubsets {
                k: 0,
                from: HeldOut::Both,
            },
        )
        .unwrap_err();
        assert_eq!(e, "time_subsets.k must be at least 1, got 0");
        let e = HeldOut::parse("train").unwrap_err();
        assert_eq!(
            e,
            "time_subsets.from must be one of valid+test, valid, test, got 'train'"
        );
        let bad = |rg: RatioGroups| ratio_item_groups(&d, &rg).unwrap_err();
        let e = bad(RatioGroups {
            high_share: 1.0,
            ..RatioGroups::default()
        });
        assert_eq!(
            e,
            "ratio_groups.high_share must be a number in (0, 1), got 1"
        );
        let e = bad(RatioGroups {
            num: ItemStat::parse("clicks"),
            ..RatioGroups::default()
        });
        assert!(
            e.starts_with("ratio_groups.num: no interaction column 'clicks' (a statistic is 'interactions', 'positives' or a numeric interaction column: user_id, item_id, timestamp, like)"),
            "{e}"
        );
        let e = bad(RatioGroups {
            den: ItemStat::parse("item_id"),
            ..RatioGroups::default()
        });
        assert_eq!(
            e,
            "ratio_groups.den: interaction column 'item_id' is not numeric"
        );
        // Zero denominators everywhere: no item has a ratio.
        let mut zero = data(TrainPositives::All);
        zero.train_pos_like = Some(vec![0.0; zero.train_pos_rows.len()]);
        let e = ratio_item_groups(
            &zero,
            &RatioGroups {
                num: ItemStat::Interactions,
                den: ItemStat::Positives,
                high_share: 0.5,
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            "ratio_groups.den: no item has a positive 'positives' in training"
        );
        // Subsets rank by score: no re-ranker with them.
        let opts = RankingOptions {
            groups: Some(ItemGroups::from_ids(1, &vec![vec![0]; 8]).unwrap()),
            rerank: Some(
                Reranker::new(crate::rerank::Method::Calibration { lambda: 0.5 }, 5).unwrap(),
            ),
            time_subsets: Some(TimeSubsets {
                k: 2,
                from: HeldOut::Both,
            }),
            ..RankingOptions::default()
        };
        let e = all_ranking_with(&d, Part::Test, &[2], opts, scores).unwrap_err();
        assert_eq!(
            e,
            "time_subsets ranks each subset by score; it cannot be combined with rerank (calibration)"
        );
    }
}
