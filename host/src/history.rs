//! User histories for sequential and attention backbones (DIN, NRHUB, SR-GNN).
//!
//! A user's history is their training positives in time order (ties keep
//! row order). A batch carries `history` `[B, L]` (item ids) and
//! `history_mask` `[B, L]` (1 = valid, 0 = padding): oldest first, valid
//! entries left-aligned, padding (id 0, mask 0) after. What an example sees:
//! - a training positive: the user's positives strictly before it in the
//!   sequence (its sampled negatives share that history);
//! - a labelled row at time `t`: the positives with time `< t`;
//! - an all-ranking or evaluation pair: the latest `L` positives.
//!
//! Only the latest `L` entries of each prefix are kept (`L` = the schema's
//! `history_len`, the dataset option `history`, default 50).

use candle_core::{Device, Tensor};

use crate::exec::Batch;

/// Whose history, cut where.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HistoryOf {
    /// The `k`-th training positive (an index into `Data::train_pos`).
    TrainPositive(usize),
    /// Everything the user did in training.
    Latest(u32),
    /// The user's positives with time strictly before `t`.
    Before(u32, f64),
}

/// Per-user positive sequences, indexed for fast prefix lookup.
#[derive(Clone, Debug, Default)]
pub struct Histories {
    /// Maximum length `L`.
    pub len: usize,
    /// Per user: items in time order.
    items: Vec<Vec<u32>>,
    /// Per user: the time of each entry (row index when the data has no timestamps).
    times: Vec<Vec<f64>>,
    /// Per training positive: its position in its user's sequence.
    position: Vec<u32>,
    /// Per training positive: its user.
    user: Vec<u32>,
}

impl Histories {
    /// Index the training positives: `pos[k] = (user, item, time)`.
    pub fn build(n_users: usize, pos: &[(u32, u32, f64)], len: usize) -> Histories {
        let mut order: Vec<usize> = (0..pos.len()).collect();
        // Stable: equal times keep the row order.
        order.sort_by(|&a, &b| pos[a].2.total_cmp(&pos[b].2));
        let mut items = vec![Vec::new(); n_users];
        let mut times = vec![Vec::new(); n_users];
        let mut position = vec![0u32; pos.len()];
        for k in order {
            let (u, i, t) = pos[k];
            position[k] = items[u as usize].len() as u32;
            items[u as usize].push(i);
            times[u as usize].push(t);
        }
        Histories {
            len,
            items,
            times,
            position,
            user: pos.iter().map(|p| p.0).collect(),
        }
    }

    /// The history of one example: a slice of its user's sequence (at most `len`).
    pub fn of(&self, h: HistoryOf) -> &[u32] {
        let (u, end) = match h {
            HistoryOf::TrainPositive(k) => (self.user[k], self.position[k] as usize),
            HistoryOf::Latest(u) => (u, self.items.get(u as usize).map_or(0, Vec::len)),
            HistoryOf::Before(u, t) => (
                u,
                self.times
                    .get(u as usize)
                    .map_or(0, |ts| ts.partition_point(|&x| x < t)),
            ),
        };
        let seq = self.items.get(u as usize).map_or(&[][..], Vec::as_slice);
        &seq[end.saturating_sub(self.len)..end]
    }

    /// Add `history` and `history_mask` for `keys` (one per batch row) to a batch.
    pub fn add_to(
        &self,
        batch: &mut Batch,
        keys: &[HistoryOf],
        device: &Device,
    ) -> Result<(), String> {
        let (b, l) = (keys.len(), self.len.max(1));
        let mut ids = vec![0u32; b * l];
        let mut mask = vec![0f32; b * l];
        for (r, &k) in keys.iter().enumerate() {
            for (j, &i) in self.of(k).iter().enumerate() {
                ids[r * l + j] = i;
                mask[r * l + j] = 1.0;
            }
        }
        let e = |e: candle_core::Error| e.to_string();
        batch.inputs.insert(
            "history".into(),
            Tensor::from_vec(ids, (b, l), device).map_err(e)?,
        );
        batch.inputs.insert(
            "history_mask".into(),
            Tensor::from_vec(mask, (b, l), device).map_err(e)?,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// User 0: items 10 (t=5), 11 (t=1), 12 (t=5), 13 (t=9); user 1: item 20 (t=2).
    fn sample(len: usize) -> Histories {
        let pos = [
            (0, 10, 5.0),
            (0, 11, 1.0),
            (1, 20, 2.0),
            (0, 12, 5.0),
            (0, 13, 9.0),
        ];
        Histories::build(3, &pos, len)
    }

    #[test]
    fn prefixes_follow_time_then_row_order() {
        let h = sample(50);
        // Sequence of user 0: 11 (t1), 10 (t5, earlier row), 12 (t5), 13 (t9).
        assert_eq!(h.of(HistoryOf::TrainPositive(1)), &[] as &[u32]);
        assert_eq!(h.of(HistoryOf::TrainPositive(0)), &[11]);
        assert_eq!(h.of(HistoryOf::TrainPositive(3)), &[11, 10]);
        assert_eq!(h.of(HistoryOf::TrainPositive(4)), &[11, 10, 12]);
        assert_eq!(h.of(HistoryOf::Latest(0)), &[11, 10, 12, 13]);
        // Strictly before t = 5: only item 11; before 5.5: 11, 10, 12.
        assert_eq!(h.of(HistoryOf::Before(0, 5.0)), &[11]);
        assert_eq!(h.of(HistoryOf::Before(0, 5.5)), &[11, 10, 12]);
        assert_eq!(h.of(HistoryOf::Latest(2)), &[] as &[u32]);
        assert_eq!(h.of(HistoryOf::Latest(1)), &[20]);
    }

    #[test]
    fn keeps_the_latest_len_and_pads_after() {
        let h = sample(2);
        assert_eq!(h.of(HistoryOf::Latest(0)), &[12, 13]);
        let mut b = Batch::default();
        let keys = [
            HistoryOf::Latest(0),
            HistoryOf::Latest(1),
            HistoryOf::Latest(2),
        ];
        h.add_to(&mut b, &keys, &Device::Cpu).unwrap();
        let ids: Vec<Vec<u32>> = b.inputs["history"].to_vec2().unwrap();
        let mask: Vec<Vec<f32>> = b.inputs["history_mask"].to_vec2().unwrap();
        assert_eq!(ids, vec![vec![12, 13], vec![20, 0], vec![0, 0]]);
        assert_eq!(mask, vec![vec![1.0, 1.0], vec![1.0, 0.0], vec![0.0, 0.0]]);
    }
}
