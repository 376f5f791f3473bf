//! Post-hoc re-rankers over one user's candidate list (the DecRS paper's
//! baselines, Wang et al. KDD'21 section 4.1): the top-N items by score
//! (training items excluded) are re-ordered into a list of K.
//!
//! - [`calibration`] (Steck, RecSys'18): greedy maximisation of
//!   `(1 - lambda) * sum s(i) - lambda * C_KL(p, q(list))`;
//! - [`diversity`] (Ziegler et al., WWW'05 topic diversification): rank
//!   merging of score rank and dissimilarity rank with factor `Theta_F`;
//! - [`FairCo`] (Morik et al., SIGIR'20): exposure-vs-merit fairness
//!   controller over groups, stateful across the users it ranks in turn.
//!
//! Scores are logits; relevance is their sigmoid. Group distributions `q^i`
//! and `C_KL` come from [`causalrec_sdk::groups`].

use causalrec_sdk::groups::{calibration_kl, ItemGroups};

use crate::eval::top_k;

/// The default number of candidates re-ranked per user.
pub const DEFAULT_CANDIDATES: usize = 100;

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

/// The top-`n` items by score (descending, ties by id) outside `excluded`
/// (sorted), with their relevance (the sigmoid of the score).
pub fn candidates(scores: &[f32], excluded: &[u32], n: usize) -> (Vec<u32>, Vec<f64>) {
    let items = top_k(scores, n, excluded);
    let rel = items.iter().map(|&i| sigmoid(scores[i as usize])).collect();
    (items, rel)
}

/// Steck's calibrated re-ranking: starting from an empty list, repeatedly
/// append the candidate maximising `(1 - lambda) * sum_{i in list} s(i) -
/// lambda * C_KL(p, q(list))`, `q(list)` the plain mean of `q^i` over the
/// list, until it holds `k` items. Ties go to the higher-scored candidate.
pub fn calibration(
    scores: &[f32],
    excluded: &[u32],
    groups: &ItemGroups,
    p: &[f64],
    k: usize,
    n: usize,
    lambda: f64,
) -> Vec<u32> {
    let (items, rel) = candidates(scores, excluded, n);
    let dense: Vec<Vec<f64>> = items.iter().map(|&i| groups.dense(i)).collect();
    let mut taken = vec![false; items.len()];
    let mut list = Vec::with_capacity(k);
    // Running sums of relevance and of q^i over the list.
    let (mut rel_sum, mut q_sum) = (0.0, vec![0.0; groups.n_groups()]);
    let mut q = vec![0.0; groups.n_groups()];
    while list.len() < k.min(items.len()) {
        let len = (list.len() + 1) as f64;
        let mut best: Option<(usize, f64)> = None;
        for c in (0..items.len()).filter(|&c| !taken[c]) {
            for ((qg, s), d) in q.iter_mut().zip(&q_sum).zip(&dense[c]) {
                *qg = (s + d) / len;
            }
            let obj = (1.0 - lambda) * (rel_sum + rel[c]) - lambda * calibration_kl(p, &q);
            if best.is_none_or(|(_, b)| obj > b) {
                best = Some((c, obj));
            }
        }
        let Some((c, _)) = best else { break };
        taken[c] = true;
        rel_sum += rel[c];
        for (s, d) in q_sum.iter_mut().zip(&dense[c]) {
            *s += d;
        }
        list.push(items[c]);
    }
    list
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// Ziegler's topic diversification: the first item is the top-scored
/// candidate; each next position ranks the remaining candidates by score
/// (`rank_s`, 1 = best) and by their summed cosine similarity of `q^i` to
/// the items already chosen (`rank_d`, 1 = least similar; ties by score),
/// and takes the one minimising `rank_s * (1 - factor) + rank_d * factor`
/// (ties by score).
pub fn diversity(
    scores: &[f32],
    excluded: &[u32],
    groups: &ItemGroups,
    k: usize,
    n: usize,
    factor: f64,
) -> Vec<u32> {
    let (items, _) = candidates(scores, excluded, n);
    let dense: Vec<Vec<f64>> = items.iter().map(|&i| groups.dense(i)).collect();
    // `remaining` stays in score order (the candidates' order).
    let mut remaining: Vec<usize> = (0..items.len()).collect();
    let mut sim = vec![0.0f64; items.len()];
    let mut list = Vec::with_capacity(k);
    while list.len() < k.min(items.len()) {
        let pick = if list.is_empty() {
            0
        } else {
            let mut by_sim: Vec<usize> = (0..remaining.len()).collect();
            by_sim.sort_by(|&a, &b| sim[remaining[a]].total_cmp(&sim[remaining[b]]));
            let mut rank_d = vec![0usize; remaining.len()];
            for (r, &j) in by_sim.iter().enumerate() {
                rank_d[j] = r + 1;
            }
            let mut best = (0, f64::INFINITY);
            for (j, &rd) in rank_d.iter().enumerate() {
                let v = (j + 1) as f64 * (1.0 - factor) + rd as f64 * factor;
                if v < best.1 {
                    best = (j, v);
                }
            }
            best.0
        };
        let c = remaining.remove(pick);
        for &o in &remaining {
            sim[o] += cosine(&dense[o], &dense[c]);
        }
        list.push(items[c]);
    }
    list
}

/// FairCo (Morik et al. 2020) over users ranked in turn: cumulative
/// exposure `Exp_G` (position-based `1 / log2(1 + rank)` of every shown
/// item, split over its groups by `q^i`) and merit `Merit_G` (relevance of
/// every user's candidates, split by `q^i`). The `tau`-th user's candidate
/// `d` is ranked by `s(d) + lambda * (tau - 1) * err(d)` with
/// `err(d) = max_G' Exp_G'/Merit_G' - Exp_G(d)/Merit_G(d)` (the
/// `q^d`-weighted mean over `d`'s groups; groups without merit skipped).
#[derive(Clone, Debug)]
pub struct FairCo {
    pub lambda: f64,
    pub exposure: Vec<f64>,
    pub merit: Vec<f64>,
    /// Users ranked so far (`tau - 1` for the next one).
    pub users: usize,
}

impl FairCo {
    /// A controller over `n_groups` groups with no history.
    pub fn new(n_groups: usize, lambda: f64) -> FairCo {
        FairCo {
            lambda,
            exposure: vec![0.0; n_groups],
            merit: vec![0.0; n_groups],
            users: 0,
        }
    }

    /// The fairness error of an item: how far its groups' exposure per
    /// merit lags behind the most exposed group's (0 without merit).
    pub fn error(&self, groups: &ItemGroups, item: u32) -> f64 {
        let ratio = |g: usize| (self.merit[g] > 0.0).then(|| self.exposure[g] / self.merit[g]);
        let Some(top) = (0..self.merit.len()).filter_map(ratio).reduce(f64::max) else {
            return 0.0;
        };
        let (mut sum, mut w) = (0.0, 0.0);
        for &(g, q) in groups.of(item) {
            if let Some(r) = ratio(g as usize) {
                sum += q * (top - r);
                w += q;
            }
        }
        if w > 0.0 {
            sum / w
        } else {
            0.0
        }
    }

    /// The next user's list of `k` out of its top-`n` candidates (the
    /// controller is not updated; see [`FairCo::update`]). Also returns the
    /// candidates' relevance, which the update needs.
    pub fn rank(
        &self,
        scores: &[f32],
        excluded: &[u32],
        groups: &ItemGroups,
        k: usize,
        n: usize,
    ) -> (Vec<u32>, Vec<u32>, Vec<f64>) {
        let (items, rel) = candidates(scores, excluded, n);
        let weight = self.lambda * self.users as f64;
        let adj: Vec<f64> = items
            .iter()
            .zip(&rel)
            .map(|(&i, &r)| {
                if weight == 0.0 {
                    r
                } else {
                    r + weight * self.error(groups, i)
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..items.len()).collect();
        // Stable: ties keep score order.
        order.sort_by(|&a, &b| adj[b].total_cmp(&adj[a]));
        let list = order.iter().take(k).map(|&c| items[c]).collect();
        (list, items, rel)
    }

    /// Add one user's shown `list` (exposure) and `candidates` with their
    /// relevance (merit), and count the user.
    pub fn update(
        &mut self,
        groups: &ItemGroups,
        list: &[u32],
        candidates: &[u32],
        relevance: &[f64],
    ) {
        for (r, &i) in list.iter().enumerate() {
            let e = 1.0 / ((r + 2) as f64).log2();
            for &(g, q) in groups.of(i) {
                self.exposure[g as usize] += e * q;
            }
        }
        for (&i, &m) in candidates.iter().zip(relevance) {
            for &(g, q) in groups.of(i) {
                self.merit[g as usize] += m * q;
            }
        }
        self.users += 1;
    }

    /// Rank the next user and update the controller with the result.
    pub fn next(
        &mut self,
        scores: &[f32],
        excluded: &[u32],
        groups: &ItemGroups,
        k: usize,
        n: usize,
    ) -> Vec<u32> {
        let (list, items, rel) = self.rank(scores, excluded, groups, k, n);
        self.update(groups, &list, &items, &rel);
        list
    }
}

/// Which re-ranker, with its parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    Calibration { lambda: f64 },
    Diversity { factor: f64 },
    FairCo { lambda: f64 },
}

/// A re-ranking of every evaluated user's list.
#[derive(Clone, Debug)]
pub struct Reranker {
    pub method: Method,
    /// Candidates per user (top-N by score).
    pub candidates: usize,
    fairco: Option<FairCo>,
}

impl Reranker {
    /// Check the parameter's range (`lambda` and `factor` in [0, 1];
    /// FairCo's `lambda` >= 0) and that there are candidates.
    pub fn new(method: Method, candidates: usize) -> Result<Reranker, String> {
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("rerank.{name} must be in [0, 1], got {v}"))
            }
        };
        match &method {
            Method::Calibration { lambda } => unit("lambda", *lambda)?,
            Method::Diversity { factor } => unit("factor", *factor)?,
            Method::FairCo { lambda } => {
                if !(lambda.is_finite() && *lambda >= 0.0) {
                    return Err(format!(
                        "rerank.lambda of fairco must be a finite number >= 0, got {lambda}"
                    ));
                }
            }
        }
        if candidates == 0 {
            return Err("rerank.candidates must be at least 1".into());
        }
        Ok(Reranker {
            method,
            candidates,
            fairco: None,
        })
    }

    /// The method's name as recipes spell it.
    pub fn name(&self) -> &'static str {
        match self.method {
            Method::Calibration { .. } => "calibration",
            Method::Diversity { .. } => "diversity",
            Method::FairCo { .. } => "fairco",
        }
    }

    /// The next user's list of `k` items; `p` is the user's history
    /// distribution (used by calibration). FairCo users count in call order.
    pub fn rerank(
        &mut self,
        scores: &[f32],
        excluded: &[u32],
        groups: &ItemGroups,
        p: &[f64],
        k: usize,
    ) -> Vec<u32> {
        let n = self.candidates;
        match self.method {
            Method::Calibration { lambda } => {
                calibration(scores, excluded, groups, p, k, n, lambda)
            }
            Method::Diversity { factor } => diversity(scores, excluded, groups, k, n, factor),
            Method::FairCo { lambda } => self
                .fairco
                .get_or_insert_with(|| FairCo::new(groups.n_groups(), lambda))
                .next(scores, excluded, groups, k, n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logit(p: f64) -> f32 {
        (p / (1.0 - p)).ln() as f32
    }

    /// Items 0..4: 0 and 1 in group A, 2 and 3 in group B, 4 in both.
    fn groups() -> ItemGroups {
        ItemGroups::from_ids(2, &[vec![0], vec![0], vec![1], vec![1], vec![0, 1]]).unwrap()
    }

    #[test]
    fn candidates_are_top_n_with_sigmoid_relevance() {
        let s = [logit(0.9), logit(0.2), logit(0.7), logit(0.6)];
        let (items, rel) = candidates(&s, &[2], 2);
        assert_eq!(items, vec![0, 3]);
        assert!((rel[0] - 0.9).abs() < 1e-6 && (rel[1] - 0.6).abs() < 1e-6);
    }

    #[test]
    fn zero_weights_keep_the_score_order() {
        let g = groups();
        let s = [logit(0.5), logit(0.9), logit(0.8), logit(0.3), logit(0.7)];
        let want = vec![1, 2, 4, 0];
        assert_eq!(calibration(&s, &[], &g, &[1.0, 0.0], 4, 100, 0.0), want);
        assert_eq!(diversity(&s, &[], &g, 4, 100, 0.0), want);
        let mut f = FairCo::new(2, 0.0);
        for _ in 0..3 {
            assert_eq!(f.next(&s, &[], &g, 4, 100), want);
        }
        // exclusions and the candidate cut: only items 1 and 2 are candidates
        assert_eq!(diversity(&s, &[4], &g, 3, 2, 0.0), vec![1, 2]);
    }

    #[test]
    fn calibration_hand_computed() {
        // Relevance 0.9 (item 0, A), 0.8 (item 1, A), 0.6 (item 2, B); the
        // history p = [0.5, 0.5]; lambda = 0.5, K = 2.
        // Step 1: {0} and {1} have q = [1, 0]: C_KL = .5 ln(.5/(.99+.005))
        //   + .5 ln(.5/.005) = 1.9585; {2} the same by symmetry. Objectives
        //   .5 * rel - .5 * 1.9585: item 0 (0.9) wins.
        // Step 2: {0,1}: q = [1, 0], obj = .5 * 1.7 - .5 * 1.9585 = -0.1293;
        //   {0,2}: q = [.5, .5], C_KL = 0, obj = .5 * 1.5 = 0.75 -> item 2.
        let g = ItemGroups::from_ids(2, &[vec![0], vec![0], vec![1]]).unwrap();
        let s = [logit(0.9), logit(0.8), logit(0.6)];
        let p = [0.5, 0.5];
        let kl1 = 0.5 * (0.5f64 / 0.995).ln() + 0.5 * (0.5f64 / 0.005).ln();
        assert!((calibration_kl(&p, &[1.0, 0.0]) - kl1).abs() < 1e-12);
        assert!((kl1 - 1.9585).abs() < 1e-4);
        assert_eq!(calibration(&s, &[], &g, &p, 2, 100, 0.5), vec![0, 2]);
        // With all the weight on relevance, the score order.
        assert_eq!(calibration(&s, &[], &g, &p, 2, 100, 0.0), vec![0, 1]);
        // A history all in A: calibration keeps A items even at lambda .5:
        // {0,1} KL(p=[1,0]) = ln(1/(.99+.01)) = 0, {0,2}: ln(1/(.495+.01)) = .6832
        // -> .5 * 1.7 = .85 vs .5 * 1.5 - .5 * .6832 = .4084.
        assert_eq!(
            calibration(&s, &[], &g, &[1.0, 0.0], 2, 100, 0.5),
            vec![0, 1]
        );
    }

    #[test]
    fn diversity_hand_computed() {
        // Score order: 0 (A), 1 (A), 4 (A+B), 2 (B), 3 (B).
        // Theta_F = 0.5, K = 3. Position 1: item 0.
        // Position 2, remaining in score order 1, 4, 2, 3 (rank_s 1..4);
        //   similarity to {0}: 1 -> 1, 4 -> cos([.5,.5],[1,0]) = .7071, 2 -> 0,
        //   3 -> 0; rank_d (ascending, ties by score): 2 -> 1, 3 -> 2, 4 -> 3, 1 -> 4.
        //   merged: 1: .5*1 + .5*4 = 2.5; 4: .5*2 + .5*3 = 2.5; 2: .5*3 + .5*1 = 2;
        //   3: .5*4 + .5*2 = 3 -> item 2.
        // Position 3, remaining 1, 4, 3 (rank_s 1..3); similarity to {0, 2}:
        //   1 -> 1 + 0 = 1, 4 -> .7071 * 2 = 1.4142, 3 -> 0 + 1 = 1;
        //   rank_d: 1 -> 1, 3 -> 2, 4 -> 3; merged: 1: 1, 4: 2.5, 3: 2.5 -> item 1.
        let g = groups();
        let s = [logit(0.9), logit(0.8), logit(0.6), logit(0.5), logit(0.7)];
        assert_eq!(diversity(&s, &[], &g, 3, 100, 0.5), vec![0, 2, 1]);
        // Theta_F = 1: the least similar every time: 0, then 2 (B, sim 0,
        // first in score order among 2, 3), then {1 -> 1, 4 -> 1.414, 3 -> 1}
        // -> 1 (ties by score).
        assert_eq!(diversity(&s, &[], &g, 3, 100, 1.0), vec![0, 2, 1]);
        // Theta_F = 0.2 at position 2: 1: .8 + .8 = 1.6; 4: 1.6 + .6 = 2.2;
        // 2: 2.4 + .2 = 2.6; 3: 3.2 + .4 = 3.6 -> item 1 (the score order).
        assert_eq!(diversity(&s, &[], &g, 2, 100, 0.2), vec![0, 1]);
    }

    #[test]
    fn fairco_hand_computed() {
        // Items 0 (A), 1 (A), 2 (B); relevance 0.9, 0.8, 0.7; K = 2,
        // lambda = 1.
        let g = ItemGroups::from_ids(2, &[vec![0], vec![0], vec![1]]).unwrap();
        let s = [logit(0.9), logit(0.8), logit(0.7)];
        let mut f = FairCo::new(2, 1.0);
        // User 1 (tau - 1 = 0): score order [0, 1].
        assert_eq!(f.next(&s, &[], &g, 2, 100), vec![0, 1]);
        // Exposure: A = 1 + 1/log2(3) = 1.6309, B = 0.
        // Merit: A = .9 + .8 = 1.7, B = .7.
        let e_a = 1.0 + 1.0 / 3f64.log2();
        assert!((f.exposure[0] - e_a).abs() < 1e-9 && f.exposure[1] == 0.0);
        assert!((f.merit[0] - 1.7).abs() < 1e-6 && (f.merit[1] - 0.7).abs() < 1e-6);
        // User 2 (tau - 1 = 1): A's ratio .9594 is the max; err(A) = 0,
        // err(B) = .9594 - 0 -> item 2: .7 + .9594 = 1.6594 first, then 0.
        assert!((f.error(&g, 2) - e_a / 1.7).abs() < 1e-6);
        assert_eq!(f.error(&g, 0), 0.0);
        assert_eq!(f.next(&s, &[], &g, 2, 100), vec![2, 0]);
        // Exposure: A = 1.6309 + .6309 = 2.2619, B = 1; merit doubles:
        // A 3.4, B 1.4. Ratios A .6653, B .7143: B leads, err(A) = .0490,
        // user 3 (tau - 1 = 2): 0: .9 + .098 = .998, 1: .8 + .098 = .898,
        // 2: .7 -> [0, 1].
        let err_a = 1.0 / 1.4 - (e_a + 1.0 / 3f64.log2()) / 3.4;
        assert!((f.error(&g, 1) - err_a).abs() < 1e-6, "{}", f.error(&g, 1));
        assert_eq!(f.next(&s, &[], &g, 2, 100), vec![0, 1]);
        assert_eq!(f.users, 3);
    }

    #[test]
    fn fairco_multi_group_items_and_groups_without_merit() {
        // Group C (2) never appears among candidates: no merit, skipped.
        let g = ItemGroups::from_ids(3, &[vec![0], vec![0, 1], vec![2]]).unwrap();
        let mut f = FairCo::new(3, 1.0);
        f.exposure = vec![2.0, 0.0, 5.0];
        f.merit = vec![1.0, 1.0, 0.0];
        // ratios: A 2, B 0, C skipped; item 1 (A+B, q .5/.5): mean of
        // (2 - 2) and (2 - 0) = 1; item 2 (only C): 0.
        assert!((f.error(&g, 1) - 1.0).abs() < 1e-12);
        assert_eq!(f.error(&g, 2), 0.0);
    }

    #[test]
    fn reranker_checks_its_parameters() {
        assert!(Reranker::new(Method::Calibration { lambda: 1.5 }, 100)
            .unwrap_err()
            .contains("rerank.lambda must be in [0, 1]"));
        assert!(Reranker::new(Method::FairCo { lambda: -1.0 }, 100)
            .unwrap_err()
            .contains(">= 0"));
        assert!(Reranker::new(Method::Diversity { factor: 0.5 }, 0)
            .unwrap_err()
            .contains("candidates"));
        let g = groups();
        let s = [0.5f32, 0.9, 0.8, 0.3, 0.7];
        let mut r = Reranker::new(Method::FairCo { lambda: 0.0 }, 3).unwrap();
        assert_eq!(r.name(), "fairco");
        assert_eq!(r.rerank(&s, &[], &g, &[], 2), vec![1, 2]);
    }
}
