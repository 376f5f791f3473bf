//! Evaluation metrics and protocols.
//!
//! - All-ranking Recall@K and NDCG@K over items not seen in training (HCR, DecRS):
//!   every item is scored for each test user, items seen in training (and, on
//!   the test split, in validation) are excluded, and the top K are compared
//!   with the user's held-out positives.
//! - AUC and log-loss for labelled pairs.
//! - `ckl@K`: Steck's calibration KL between a user's training history's
//!   group distribution and the top-K list's (DecRS section 4.1).
//! - Per impression list (MIND's official `evaluate.py`, IV4Rec+ section
//!   6.2): AUC, MRR and nDCG@K of one list's scores against its clicks,
//!   averaged over lists by [`ImpressionAccumulator`].
//! - Normalized recall of item groups (HCR section 4.4.3): per group the
//!   recall of the user's relevant items in the group, normalized by the
//!   group's share of the top-K list ([`GroupRecallAccumulator`]).

use std::collections::BTreeMap;

use causalrec_sdk::groups::{calibration_kl, ItemGroups};

/// Recall@K: hits in the top K over the number of relevant items.
pub fn recall_at_k(ranked: &[u32], relevant: &[u32], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let hits = ranked
        .iter()
        .take(k)
        .filter(|i| relevant.binary_search(i).is_ok())
        .count();
    hits as f64 / relevant.len() as f64
}

/// NDCG@K with binary relevance: DCG over the ideal DCG of min(K, |relevant|) hits.
pub fn ndcg_at_k(ranked: &[u32], relevant: &[u32], k: usize) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| relevant.binary_search(i).is_ok())
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..k.min(relevant.len()))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    dcg / idcg
}

/// AUC by the rank-sum (Mann-Whitney) formula, ties counted as one half.
/// `None` when one class is empty.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            ranks[idx[k]] = avg;
        }
        i = j + 1;
    }
    let n_pos = labels.iter().filter(|&&l| l).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let rank_sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(r, _)| r)
        .sum();
    Some((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// Mean binary log-loss of logits, computed stably.
pub fn log_loss(logits: &[f64], labels: &[bool]) -> f64 {
    let n = logits.len().max(1) as f64;
    logits
        .iter()
        .zip(labels)
        .map(|(&x, &y)| {
            let t = if y { 1.0 } else { 0.0 };
            x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
        })
        .sum::<f64>()
        / n
}

/// Indices of the top `k` scores (descending; equal scores by lower id),
/// skipping `excluded` (sorted) items. One pass: an item is compared with
/// the k-th best so far as an integer key, and only one that beats it is
/// looked up among the exclusions and put in the heap.
pub fn top_k(scores: &[f32], k: usize, excluded: &[u32]) -> Vec<u32> {
    use std::cmp::{Ordering, Reverse};
    use std::collections::BinaryHeap;
    /// A candidate by [`order_key`]; greater = ranked higher (higher score,
    /// then lower id).
    #[derive(PartialEq, Eq)]
    struct Cand(i32, u32);
    impl PartialOrd for Cand {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Cand {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.cmp(&o.0).then(o.1.cmp(&self.1))
        }
    }
    if k == 0 {
        return Vec::new();
    }
    // The k best so far; the top of the heap is the worst of them. Items
    // come in increasing id, so one whose key only equals the worst's ranks
    // below it: beating the worst needs a greater key.
    let mut best: BinaryHeap<Reverse<Cand>> = BinaryHeap::with_capacity(k + 1);
    let mut threshold = i32::MIN;
    for (i, &x) in scores.iter().enumerate() {
        let key = order_key(x);
        if best.len() == k && key <= threshold {
            continue;
        }
        let i = i as u32;
        if excluded.binary_search(&i).is_ok() {
            continue;
        }
        if best.len() < k {
            best.push(Reverse(Cand(key, i)));
        } else if let Some(mut worst) = best.peek_mut() {
            *worst = Reverse(Cand(key, i));
        }
        if best.len() == k {
            threshold = best.peek().map_or(i32::MIN, |w| w.0 .0);
        }
    }
    let mut out: Vec<Cand> = best.into_iter().map(|Reverse(c)| c).collect();
    out.sort_by(|a, b| b.cmp(a));
    out.into_iter().map(|c| c.1).collect()
}

/// An integer that orders as `f32::total_cmp` orders the floats.
#[inline(always)]
fn order_key(x: f32) -> i32 {
    let b = x.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

/// The AUC of one user's `relevant` items against every other
/// item not in `excluded` (sorted ids), as [`auc`] over those candidates
/// (ties count one half; a NaN ranks above every number, as `total_cmp`
/// orders a positive NaN for [`auc`] and [`top_k`]), without sorting the items. With
/// few relevant items each one counts the scores at or above its own in a
/// pass over the items (branch-free comparisons, in cache-sized tiles),
/// the non-candidates' counts then taken back out; with many, each
/// candidate is placed among the sorted relevant scores by binary search.
/// `None` when either side is empty.
pub fn auc_of_candidates(scores: &[f32], excluded: &[u32], relevant: &[u32]) -> Option<f64> {
    let n = scores.len();
    // Each relevant item counts once, as a label per candidate does in `auc`.
    let mut relevant: Vec<u32> = relevant
        .iter()
        .copied()
        .filter(|&i| (i as usize) < n)
        .collect();
    relevant.sort_unstable();
    relevant.dedup();
    let excluded = &excluded[..excluded.partition_point(|&e| (e as usize) < n)];
    // The items that are not candidates: excluded or relevant, sorted.
    let mut others: Vec<u32> = excluded.iter().chain(&relevant).copied().collect();
    others.sort_unstable();
    others.dedup();
    let pos: Vec<f32> = relevant
        .iter()
        .filter(|&i| excluded.binary_search(i).is_err())
        .map(|&i| scores[i as usize])
        .collect();
    let n_neg = (n - others.len()) as u64;
    if pos.is_empty() || n_neg == 0 {
        return None;
    }
    let n_pos = pos.len();
    // Twice the wins (a win 2, a tie 1), summed exactly in integers.
    let twice_wins: u64 = if n_pos <= FEW_RELEVANT {
        let (mut at_or_above, mut equal) = (vec![0u64; n_pos], vec![0u64; n_pos]);
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        for tile in scores.chunks(AUC_TILE) {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 (checked above).
                unsafe { count_tile_avx2(tile, &pos, &mut at_or_above, &mut equal) };
                continue;
            }
            count_tile(tile, &pos, &mut at_or_above, &mut equal);
        }
        // The non-candidates' counts taken back out.
        let other_scores: Vec<f32> = others.iter().map(|&i| scores[i as usize]).collect();
        let (mut ge_others, mut eq_others) = (vec![0u64; n_pos], vec![0u64; n_pos]);
        count_tile(&other_scores, &pos, &mut ge_others, &mut eq_others);
        (0..n_pos)
            .map(|j| {
                let (ge, eq) = (at_or_above[j] - ge_others[j], equal[j] - eq_others[j]);
                // Candidates below p: n_neg - ge; equal to it: eq.
                2 * (n_neg - ge) + eq
            })
            .sum()
    } else {
        let mut numbers: Vec<f32> = pos.iter().copied().filter(|p| !p.is_nan()).collect();
        numbers.sort_by(f32::total_cmp);
        let nans = (n_pos - numbers.len()) as u64;
        let mut others = others.iter().copied().peekable();
        let mut twice = 0u64;
        for (i, &x) in scores.iter().enumerate() {
            if others.next_if_eq(&(i as u32)).is_some() {
                continue;
            }
            twice += if x.is_nan() {
                nans
            } else {
                let below_or_equal = numbers.partition_point(|&p| p <= x);
                let below = numbers.partition_point(|&p| p < x);
                2 * ((numbers.len() - below_or_equal) as u64 + nans)
                    + (below_or_equal - below) as u64
            };
        }
        twice
    };
    Some(twice_wins as f64 / 2.0 / (n_pos as f64 * n_neg as f64))
}

/// Per relevant score `pos[j]`: add to `at_or_above[j]` the scores of
/// `tile` at or above it and to `equal[j]` those equal to it (as
/// [`auc_of_candidates`] orders NaN: above every number, equal to NaN).
#[inline(always)]
fn count_tile(tile: &[f32], pos: &[f32], at_or_above: &mut [u64], equal: &mut [u64]) {
    for (j, &p) in pos.iter().enumerate() {
        let (mut ge, mut eq) = (0u32, 0u32);
        if p.is_nan() {
            for &x in tile {
                ge += u32::from(x.is_nan());
            }
            eq = ge;
        } else {
            for &x in tile {
                // NaN x: at or above p (one "not less than" comparison).
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                let at_or_above = !(x < p);
                ge += u32::from(at_or_above);
                eq += u32::from(x == p);
            }
        }
        at_or_above[j] += u64::from(ge);
        equal[j] += u64::from(eq);
    }
}

/// [`count_tile`] compiled for AVX2 (8 comparisons per instruction).
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn count_tile_avx2(tile: &[f32], pos: &[f32], at_or_above: &mut [u64], equal: &mut [u64]) {
    count_tile(tile, pos, at_or_above, equal)
}

/// Relevant items up to which [`auc_of_candidates`] counts per relevant
/// item in passes over the scores (`relevant x items` comparisons, 8 per
/// AVX2 instruction) rather than by a binary search per item (`items x
/// log relevant`, each step a dependent load). Measured (criterion
/// `auc_of_candidates_*_of_1m`, 2-core VM): 200 relevant items 9.4 ms by
/// passes against 9-26 ms by search, 1000 items 44 against 24 ms.
const FEW_RELEVANT: usize = 384;

/// Scores per tile of [`auc_of_candidates`]' passes (16 KiB, in L1).
const AUC_TILE: usize = 4096;

/// Accumulates ranking metrics over users.
#[derive(Default)]
pub struct RankingAccumulator {
    pub ks: Vec<usize>,
    sums: BTreeMap<String, f64>,
    pub users: usize,
    /// Users with both relevant and other candidates (the AUC's denominator).
    auc_users: usize,
}

impl RankingAccumulator {
    pub fn new(ks: &[usize]) -> Self {
        RankingAccumulator {
            ks: ks.to_vec(),
            sums: BTreeMap::new(),
            users: 0,
            auc_users: 0,
        }
    }

    /// The longest list the metrics read (the largest K).
    pub fn kmax(&self) -> usize {
        self.ks.iter().copied().max().unwrap_or(10)
    }

    /// Add one user's scores.
    pub fn add(&mut self, scores: &[f32], excluded: &[u32], relevant: &[u32]) {
        self.add_user(scores, excluded, relevant, None, None);
    }

    /// Add one user: Recall/NDCG@K on `ranked` (a re-ranker's list) or, when
    /// `None`, on the top K by score; AUC on the scores; with
    /// `calibration = (groups, p_u)`, `ckl@K = C_KL(p_u, q(top K))`.
    pub fn add_user(
        &mut self,
        scores: &[f32],
        excluded: &[u32],
        relevant: &[u32],
        ranked: Option<&[u32]>,
        calibration: Option<(&ItemGroups, &[f64])>,
    ) {
        let by_score;
        let ranked = match ranked {
            Some(r) => r,
            None => {
                by_score = top_k(scores, self.kmax(), excluded);
                &by_score
            }
        };
        let auc = auc_of_candidates(scores, excluded, relevant);
        self.add_ranked(ranked, auc, relevant, calibration);
    }

    /// Add one user from a ranked list and its AUC computed apart (e.g.
    /// per user in parallel): the same sums as [`RankingAccumulator::add_user`].
    pub fn add_ranked(
        &mut self,
        ranked: &[u32],
        auc: Option<f64>,
        relevant: &[u32],
        calibration: Option<(&ItemGroups, &[f64])>,
    ) {
        for &k in &self.ks {
            *self.sums.entry(format!("recall@{k}")).or_default() +=
                recall_at_k(ranked, relevant, k);
            *self.sums.entry(format!("ndcg@{k}")).or_default() += ndcg_at_k(ranked, relevant, k);
            if let Some((groups, p)) = calibration {
                let q = groups.distribution(&ranked[..k.min(ranked.len())]);
                *self.sums.entry(format!("ckl@{k}")).or_default() += calibration_kl(p, &q);
            }
        }
        // AUC of the user's relevant items against every other candidate.
        if let Some(a) = auc {
            *self.sums.entry("auc".into()).or_default() += a;
            self.auc_users += 1;
        }
        self.users += 1;
    }

    /// Mean of every metric over users (AUC over users it is defined for).
    pub fn finish(&self) -> BTreeMap<String, f64> {
        let n = self.users.max(1) as f64;
        let na = self.auc_users.max(1) as f64;
        self.sums
            .iter()
            .map(|(k, v)| (k.clone(), v / if k == "auc" { na } else { n }))
            .collect()
    }
}

/// Recall of item groups normalized by their share of the lists (HCR
/// section 4.4.3: "the recall metric normalized by proportions of target
/// item group in recommendation list"). For group `g` and a user with
/// relevant items in `g`: `grecall@K` = hits of the top K among the
/// user's relevant items in `g` over their number, `gshare@K` = the
/// fraction of the top-K list (of its length, when shorter) in `g`. Both
/// are averaged over the users with relevant items in `g`, and
/// `nrecall@K = mean grecall@K / mean gshare@K` (NaN when the group is in
/// none of those lists).
pub struct GroupRecallAccumulator {
    pub ks: Vec<usize>,
    /// The group of every item; `None`: in no group.
    group_of: Vec<Option<usize>>,
    /// Per group: users, then per K the sums of recall and share.
    users: Vec<usize>,
    recall: Vec<Vec<f64>>,
    share: Vec<Vec<f64>>,
}

impl GroupRecallAccumulator {
    /// `group_of[i]`: the group (below `n_groups`) of item `i`, if any.
    pub fn new(ks: &[usize], group_of: Vec<Option<usize>>, n_groups: usize) -> Self {
        GroupRecallAccumulator {
            ks: ks.to_vec(),
            group_of,
            users: vec![0; n_groups],
            recall: vec![vec![0.0; ks.len()]; n_groups],
            share: vec![vec![0.0; ks.len()]; n_groups],
        }
    }

    /// Add one user's ranked list (at least the largest K long, unless
    /// fewer candidates) and sorted relevant items.
    pub fn add_user(&mut self, ranked: &[u32], relevant: &[u32]) {
        let group = |i: u32| self.group_of.get(i as usize).copied().flatten();
        for g in 0..self.users.len() {
            let rel: Vec<u32> = relevant
                .iter()
                .copied()
                .filter(|&i| group(i) == Some(g))
                .collect();
            if rel.is_empty() {
                continue;
            }
            self.users[g] += 1;
            for (j, &k) in self.ks.iter().enumerate() {
                let top = &ranked[..k.min(ranked.len())];
                self.recall[g][j] += recall_at_k(top, &rel, k);
                if !top.is_empty() {
                    let in_g = top.iter().filter(|&&i| group(i) == Some(g)).count();
                    self.share[g][j] += in_g as f64 / top.len() as f64;
                }
            }
        }
    }

    /// Per group: `grecall@K`, `gshare@K`, `nrecall@K` and `users`
    /// (NaN metrics for a group without users).
    pub fn finish(&self) -> Vec<BTreeMap<String, f64>> {
        (0..self.users.len())
            .map(|g| {
                let n = self.users[g] as f64;
                let mut m = BTreeMap::new();
                for (j, &k) in self.ks.iter().enumerate() {
                    let (r, s) = (self.recall[g][j] / n, self.share[g][j] / n);
                    m.insert(format!("grecall@{k}"), r);
                    m.insert(format!("gshare@{k}"), s);
                    m.insert(
                        format!("nrecall@{k}"),
                        if s > 0.0 { r / s } else { f64::NAN },
                    );
                }
                m.insert("users".into(), n);
                m
            })
            .collect()
    }
}

/// The positions of one impression list from the highest score down, as
/// MIND's `np.argsort(y_score)[::-1]` orders them with a stable sort: of
/// equal scores the later row comes first.
pub fn impression_order(scores: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    idx.reverse();
    idx
}

/// MIND's `dcg_score(y_true, y_score, k)`: the top `k` by score (in
/// [`impression_order`]), gains `2^rel - 1` (1 for a click, 0 otherwise),
/// discounts `log2(rank + 1)`.
pub fn dcg_score(scores: &[f64], clicked: &[bool], k: usize) -> f64 {
    impression_order(scores)
        .iter()
        .take(k)
        .enumerate()
        .filter(|&(_, &i)| clicked[i])
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum()
}

/// MIND's `ndcg_score(y_true, y_score, k)`: [`dcg_score`] over the DCG of
/// the list ordered by its labels; 0 without clicks.
pub fn ndcg_score(scores: &[f64], clicked: &[bool], k: usize) -> f64 {
    let ideal: Vec<f64> = clicked.iter().map(|&c| f64::from(u8::from(c))).collect();
    let best = dcg_score(&ideal, clicked, k);
    if best == 0.0 {
        return 0.0;
    }
    dcg_score(scores, clicked, k) / best
}

/// MIND's `mrr_score(y_true, y_score)`: the sum over clicked items of
/// `1 / rank` (ranks from 1 in [`impression_order`]) over the number of
/// clicks; 0 without clicks.
pub fn mrr_score(scores: &[f64], clicked: &[bool]) -> f64 {
    let n = clicked.iter().filter(|&&c| c).count();
    if n == 0 {
        return 0.0;
    }
    let rr: f64 = impression_order(scores)
        .iter()
        .enumerate()
        .filter(|&(_, &i)| clicked[i])
        .map(|(r, _)| 1.0 / (r + 1) as f64)
        .sum();
    rr / n as f64
}

/// The metrics of one impression list: `auc`, `mrr` and `ndcg@K`; `None`
/// when the list has no click or no non-click (AUC is undefined and MIND's
/// scorer fails there).
pub fn impression_metrics(
    scores: &[f64],
    clicked: &[bool],
    ks: &[usize],
) -> Option<BTreeMap<String, f64>> {
    let a = auc(scores, clicked)?;
    let mut m = BTreeMap::new();
    m.insert("auc".to_string(), a);
    m.insert("mrr".to_string(), mrr_score(scores, clicked));
    for &k in ks {
        m.insert(format!("ndcg@{k}"), ndcg_score(scores, clicked, k));
    }
    Some(m)
}

/// Means of [`impression_metrics`] over impression lists; lists without a
/// click or without a non-click are counted as skipped.
#[derive(Default)]
pub struct ImpressionAccumulator {
    pub ks: Vec<usize>,
    sums: BTreeMap<String, f64>,
    /// Lists the means are over.
    pub lists: usize,
    /// Lists with one class only.
    pub skipped: usize,
}

impl ImpressionAccumulator {
    pub fn new(ks: &[usize]) -> Self {
        ImpressionAccumulator {
            ks: ks.to_vec(),
            ..ImpressionAccumulator::default()
        }
    }

    /// Add one impression list's scores and clicks.
    pub fn add_list(&mut self, scores: &[f64], clicked: &[bool]) {
        match impression_metrics(scores, clicked, &self.ks) {
            Some(m) => {
                for (k, v) in m {
                    *self.sums.entry(k).or_default() += v;
                }
                self.lists += 1;
            }
            None => self.skipped += 1,
        }
    }

    /// The mean of every metric over the lists used, with `impressions`
    /// (lists used) and `skipped`.
    pub fn finish(&self) -> BTreeMap<String, f64> {
        let n = self.lists.max(1) as f64;
        let mut m: BTreeMap<String, f64> =
            self.sums.iter().map(|(k, v)| (k.clone(), v / n)).collect();
        m.insert("impressions".into(), self.lists as f64);
        m.insert("skipped".into(), self.skipped as f64);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_ndcg_hand_computed() {
        // ranked: 5, 3, 9, 1 ; relevant: {1, 3, 7}
        let ranked = [5, 3, 9, 1];
        let rel = [1, 3, 7];
        assert!((recall_at_k(&ranked, &rel, 2) - 1.0 / 3.0).abs() < 1e-12);
        assert!((recall_at_k(&ranked, &rel, 4) - 2.0 / 3.0).abs() < 1e-12);
        // DCG@4 = 1/log2(3) + 1/log2(5); IDCG@4 (3 relevant) = 1 + 1/log2(3) + 1/2
        let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!((ndcg_at_k(&ranked, &rel, 4) - dcg / idcg).abs() < 1e-12);
        // NDCG@1: nothing at rank 1 -> 0; perfect list -> 1.
        assert_eq!(ndcg_at_k(&ranked, &rel, 1), 0.0);
        assert!((ndcg_at_k(&[1, 3, 7], &rel, 3) - 1.0).abs() < 1e-12);
        assert_eq!(recall_at_k(&ranked, &[], 3), 0.0);
    }

    #[test]
    fn auc_hand_computed() {
        // pos scores {0.9, 0.4}, neg {0.5, 0.1}: pairs won 3 of 4 -> 0.75
        let s = [0.9, 0.4, 0.5, 0.1];
        let l = [true, true, false, false];
        assert!((auc(&s, &l).unwrap() - 0.75).abs() < 1e-12);
        // a tie between a positive and a negative counts one half: 0.5
        assert!((auc(&[0.3, 0.3], &[true, false]).unwrap() - 0.5).abs() < 1e-12);
        assert!(auc(&[0.1, 0.2], &[true, true]).is_none());
    }

    #[test]
    fn log_loss_hand_computed() {
        // logit 0 -> ln 2 for either label; large logits stay finite
        assert!((log_loss(&[0.0, 0.0], &[true, false]) - 2f64.ln()).abs() < 1e-12);
        let l = log_loss(&[50.0], &[false]);
        assert!((l - 50.0).abs() < 1e-9);
    }

    #[test]
    fn top_k_and_candidate_auc_match_sorting_everything() {
        // Scores with many ties (values in 0..8), random exclusions.
        let mut x: u64 = 99;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        // Up to 2000 items, some cases with half of them relevant (the
        // AUC's binary-search path past FEW_RELEVANT), some with a NaN score.
        for case in 0..400 {
            let n = 1 + next(if case % 4 == 0 { 2000 } else { 60 }) as usize;
            let mut s: Vec<f32> = (0..n).map(|_| next(8) as f32 - 3.0).collect();
            let nan = (case % 5 == 0).then(|| next(n as u64) as u32);
            if let Some(i) = nan {
                s[i as usize] = f32::NAN;
            }
            let mut excluded: Vec<u32> = (0..n as u32).filter(|_| next(4) == 0).collect();
            excluded.dedup();
            let dense = if case % 3 == 0 { 2 } else { 5 };
            let mut relevant: Vec<u32> = (0..n as u32).filter(|_| next(dense) == 0).collect();
            // One NaN at most (the reference `auc` ties no two NaNs): on a
            // candidate in half of those cases, perhaps on a relevant item
            // in the others.
            if case % 10 == 0 {
                relevant.retain(|&i| Some(i) != nan);
            }
            if let Some(&first) = relevant.first() {
                relevant.push(first); // a repeated id counts once
            }
            relevant.reverse(); // order must not matter
            let k = next(if case % 2 == 0 { 12 } else { 80 }) as usize;
            // By hand: every candidate sorted by score desc, then id asc.
            let mut all: Vec<u32> = (0..n as u32)
                .filter(|i| excluded.binary_search(i).is_err())
                .collect();
            all.sort_by(|&a, &b| s[b as usize].total_cmp(&s[a as usize]).then(a.cmp(&b)));
            all.truncate(k);
            assert_eq!(top_k(&s, k, &excluded), all, "case {case}");
            let (cs, cl): (Vec<f64>, Vec<bool>) = (0..n as u32)
                .filter(|i| excluded.binary_search(i).is_err())
                .map(|i| (f64::from(s[i as usize]), relevant.contains(&i)))
                .unzip();
            match (auc(&cs, &cl), auc_of_candidates(&s, &excluded, &relevant)) {
                (Some(a), Some(b)) => assert!((a - b).abs() < 1e-12, "case {case}: {a} vs {b}"),
                (a, b) => assert_eq!(a, b, "case {case}"),
            }
        }
    }

    #[test]
    fn top_k_excludes_and_orders() {
        let s = [0.1, 0.9, 0.5, 0.9, 0.7];
        assert_eq!(top_k(&s, 3, &[]), vec![1, 3, 4]);
        assert_eq!(top_k(&s, 3, &[1, 4]), vec![3, 2, 0]);
        assert_eq!(top_k(&s, 10, &[0, 1, 2, 3, 4]), Vec::<u32>::new());
    }

    #[test]
    fn accumulator_means() {
        let mut acc = RankingAccumulator::new(&[1]);
        acc.add(&[0.9, 0.1], &[], &[0]); // hit
        acc.add(&[0.9, 0.1], &[], &[1]); // miss
                                         // scores [0.5, 0.9, 0.1, 0.7], item 3 excluded, relevant {0}:
                                         // 0 beats 2, loses to 1 -> AUC 1/2.
        acc.add(&[0.5, 0.9, 0.1, 0.7], &[3], &[0]);
        let m = acc.finish();
        assert!((m["recall@1"] - 1.0 / 3.0).abs() < 1e-12);
        assert!((m["ndcg@1"] - 1.0 / 3.0).abs() < 1e-12);
        // AUCs 1, 0, 1/2 -> mean 1/2.
        assert!((m["auc"] - 0.5).abs() < 1e-12);
    }

    #[test]
    fn accumulator_takes_a_ranked_list_and_computes_ckl() {
        // items 0, 1 in group A, 2 in B; history p = [.5, .5]
        let g = ItemGroups::from_ids(2, &[vec![0], vec![0], vec![1]]).unwrap();
        let p = [0.5, 0.5];
        let mut acc = RankingAccumulator::new(&[1, 2]);
        // by score: [0, 1]; the given list [2, 0] puts the relevant item 2 first
        acc.add_user(&[0.9, 0.8, 0.1], &[], &[2], Some(&[2, 0]), Some((&g, &p)));
        let m = acc.finish();
        assert_eq!((m["recall@1"], m["ndcg@1"]), (1.0, 1.0));
        // ckl@1: q = [0, 1]: .5 ln(.5 / .005) + .5 ln(.5 / (.99 + .005));
        // ckl@2: q = [.5, .5] -> 0
        let want = 0.5 * 100f64.ln() + 0.5 * (0.5f64 / 0.995).ln();
        assert!((m["ckl@1"] - want).abs() < 1e-12, "{}", m["ckl@1"]);
        assert!(m["ckl@2"].abs() < 1e-12);
        // AUC stays on the scores: item 2 scores lowest -> 0
        assert_eq!(m["auc"], 0.0);
        // without a list, by score: [0, 1] misses; no groups, no ckl
        let mut acc = RankingAccumulator::new(&[2]);
        acc.add_user(&[0.9, 0.8, 0.1], &[], &[2], None, None);
        let m = acc.finish();
        assert_eq!(m["recall@2"], 0.0);
        assert!(!m.contains_key("ckl@2"));
    }
    #[test]
    fn impression_metrics_hand_computed() {
        // Two clicks, no ties. Scores [.9, .3, .7, .1, .5], clicks at 1 and 2.
        // By score: 0 (.9), 2 (.7, click), 4 (.5), 1 (.3, click), 3 (.1):
        // clicks at ranks 2 and 4.
        //   MRR = (1/2 + 1/4) / 2 = 0.375
        //   DCG@5 = 1/log2(3) + 1/log2(5) = 0.6309298 + 0.4306766 = 1.0616064,
        //   ideal (both clicks first) = 1 + 1/log2(3) = 1.6309298 -> nDCG@5 = 0.650921
        //   DCG@2 = 1/log2(3) -> nDCG@2 = 0.6309298 / 1.6309298 = 0.386853
        //   AUC: .7 beats .1, .5, loses to .9 (2); .3 beats .1 only (1) -> 3/6
        let s = [0.9, 0.3, 0.7, 0.1, 0.5];
        let c = [false, true, true, false, false];
        assert_eq!(impression_order(&s), vec![0, 2, 4, 1, 3]);
        let m = impression_metrics(&s, &c, &[2, 5]).unwrap();
        let l3 = 1.0 / 3f64.log2();
        assert!((m["mrr"] - 0.375).abs() < 1e-12);
        assert!((m["ndcg@5"] - (l3 + 1.0 / 5f64.log2()) / (1.0 + l3)).abs() < 1e-12);
        assert!((m["ndcg@5"] - 0.650921).abs() < 1e-6);
        assert!((m["ndcg@2"] - 0.386853).abs() < 1e-6);
        assert!((m["auc"] - 0.5).abs() < 1e-12);
        assert_eq!(m.len(), 4);

        // Ties. Scores [.5, .5, .2, .5], one click at 0. A stable argsort
        // gives 2, 0, 1, 3; reversed (MIND's [::-1]): 3, 1, 0, 2, so the
        // later of equal scores comes first and the click is at rank 3.
        //   MRR = 1/3; DCG@5 = 1/log2(4) = 0.5, ideal 1 -> nDCG@5 = 0.5;
        //   nDCG@2 = 0 (top two: 3, 1)
        //   AUC (ties half): .5 vs .5 (1/2), .2 (1), .5 (1/2) -> 2/3
        let s = [0.5, 0.5, 0.2, 0.5];
        let c = [true, false, false, false];
        assert_eq!(impression_order(&s), vec![3, 1, 0, 2]);
        let m = impression_metrics(&s, &c, &[2, 5]).unwrap();
        assert!((m["mrr"] - 1.0 / 3.0).abs() < 1e-12);
        assert!((m["ndcg@5"] - 0.5).abs() < 1e-12);
        assert_eq!(m["ndcg@2"], 0.0);
        assert!((m["auc"] - 2.0 / 3.0).abs() < 1e-12);
        // A click that ties with every other item and comes last in the list
        // is ranked first: MRR 1, nDCG 1 (AUC stays 1/2).
        let m = impression_metrics(&[0.3, 0.3], &[false, true], &[1]).unwrap();
        assert_eq!((m["mrr"], m["ndcg@1"], m["auc"]), (1.0, 1.0, 0.5));

        // One class only: no metrics (MIND's scorer fails on such lists).
        assert!(impression_metrics(&[0.1, 0.2], &[true, true], &[5]).is_none());
        assert!(impression_metrics(&[0.1, 0.2], &[false, false], &[5]).is_none());
        // The functions themselves give 0 without clicks.
        assert_eq!(mrr_score(&[0.1], &[false]), 0.0);
        assert_eq!(ndcg_score(&[0.1], &[false], 5), 0.0);
    }

    #[test]
    fn impression_accumulator_means_and_skips() {
        let mut acc = ImpressionAccumulator::new(&[5]);
        acc.add_list(
            &[0.9, 0.3, 0.7, 0.1, 0.5],
            &[false, true, true, false, false],
        );
        acc.add_list(&[0.5, 0.5, 0.2, 0.5], &[true, false, false, false]);
        acc.add_list(&[0.1, 0.2], &[false, false]);
        acc.add_list(&[0.4], &[true]);
        let m = acc.finish();
        // The two lists above: MRR .375 and 1/3, AUC 1/2 and 2/3.
        assert!((m["mrr"] - (0.375 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((m["auc"] - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((m["ndcg@5"] - (0.650921 + 0.5) / 2.0).abs() < 1e-6);
        assert_eq!((m["impressions"], m["skipped"]), (2.0, 2.0));
        assert_eq!(m.len(), 5);
    }
}
