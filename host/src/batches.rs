//! Training batches: a run's examples turned into step inputs (sampled
//! negatives, labels, histories), and the pipeline that assembles the next
//! batches on a worker thread while the current step computes.
//!
//! The pipeline is exact: negatives and each step's seed come from the
//! run's one random stream, drawn in the order a sequential loop draws
//! them (batch k's negatives, then step k's seed, then batch k + 1's), and
//! every step receives the stream's state right after its own draws, which
//! is what a checkpoint written after that step records. A run with the
//! pipeline and one without give the same parameters bit for bit.

use std::sync::mpsc::sync_channel;

use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::{ids_tensor, Data};
use crate::exec::Batch;
use crate::history::HistoryOf;
use crate::train::te;

/// How many assembled batches may wait ahead of the running step.
pub const PREFETCH: usize = 2;

/// False when `CAUSALREC_PREFETCH=0`: batches are assembled in the step's
/// thread (the same draws; for measuring what the worker thread saves).
fn prefetch_enabled() -> bool {
    !crate::switched_off("CAUSALREC_PREFETCH")
}

/// What a run needs to assemble its training batches.
#[derive(Clone, Debug)]
pub struct Batcher {
    /// Sampled negatives per positive (pair batches).
    pub negatives: usize,
    pub device: Device,
    /// Some backbone reads the `history` input.
    pub needs_history: bool,
}

impl Batcher {
    /// A uniform negative for `user`, excluding its training items.
    fn sample_negative(data: &Data, user: u32, rng: &mut ChaCha8Rng) -> u32 {
        let n = data.ds.n_items as u32;
        for _ in 0..64 {
            let j = rng.random_range(0..n);
            if !data.seen_in_training(user, j) {
                return j;
            }
        }
        rng.random_range(0..n)
    }

    /// One batch from the training positives `idx` (indices into
    /// `data.train_pos`): positives first, then `negatives` each. With
    /// `train_positives: "all"` the batch also carries `like` `[B]` f32:
    /// each positive's like flag, 0 for the negatives (the order of `label`).
    pub fn pairs(&self, data: &Data, idx: &[usize], rng: &mut ChaCha8Rng) -> Result<Batch, String> {
        let k = self.negatives;
        let n = idx.len();
        let mut users: Vec<u32> = idx.iter().map(|&p| data.train_pos[p].0).collect();
        let mut items: Vec<u32> = idx.iter().map(|&p| data.train_pos[p].1).collect();
        let mut labels = vec![1f32; n];
        let (mut pos_row, mut neg_row) = (Vec::with_capacity(n * k), Vec::with_capacity(n * k));
        for r in 0..n {
            for _ in 0..k {
                let u = users[r];
                let j = Self::sample_negative(data, u, rng);
                pos_row.push(r as u32);
                neg_row.push(users.len() as u32);
                users.push(u);
                items.push(j);
                labels.push(0.0);
            }
        }
        let dev = &self.device;
        let mut b = data.pair_batch(&users, &items, dev)?;
        b.inputs.insert(
            "label".into(),
            Tensor::from_vec(labels, users.len(), dev).map_err(te)?,
        );
        // With click positives: whether each example is liked (0 for negatives).
        if let Some(like) = data.batch_like(idx, pos_row.len()) {
            b.inputs.insert(
                "like".into(),
                Tensor::from_vec(like, users.len(), dev).map_err(te)?,
            );
        }
        if self.needs_history {
            // Each negative shares the history of its positive.
            let keys: Vec<HistoryOf> = idx
                .iter()
                .map(|&p| HistoryOf::TrainPositive(p))
                .chain(
                    pos_row
                        .iter()
                        .map(|&r| HistoryOf::TrainPositive(idx[r as usize])),
                )
                .collect();
            data.histories.add_to(&mut b, &keys, dev)?;
        }
        if k > 0 {
            b.inputs
                .insert("pos_row".into(), ids_tensor(&pos_row, dev)?);
            b.inputs
                .insert("neg_row".into(), ids_tensor(&neg_row, dev)?);
        }
        Ok(b)
    }

    /// The batch of training examples `idx` (indices into the epoch's
    /// list): labelled rows in pointwise mode, else positives + negatives.
    pub fn batch_of(
        &self,
        data: &Data,
        idx: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<Batch, String> {
        if data.labels.is_none() {
            return self.pairs(data, idx, rng);
        }
        let rows: Vec<usize> = idx.iter().map(|&k| data.split.train[k]).collect();
        let mut b = data.row_batch(&rows, &self.device)?;
        if self.needs_history {
            let (users, times) = (data.ds.user_col(), &data.row_times);
            let keys: Vec<HistoryOf> = rows
                .iter()
                .map(|&r| HistoryOf::Before(users[r], times[r]))
                .collect();
            data.histories.add_to(&mut b, &keys, &self.device)?;
        }
        Ok(b)
    }

    /// Batch `idx`, then the seed of its step, both from `rng`.
    fn prepare(
        &self,
        data: &Data,
        idx: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<(Batch, u64), String> {
        let b = self.batch_of(data, idx, rng)?;
        Ok((b, rng.random()))
    }

    /// Call `step(k, batch, seed, rng_after)` for each of `chunks` in order,
    /// drawing from `rng` as a sequential loop would (see the module
    /// documentation); on the CPU the next [`PREFETCH`] batches are
    /// assembled on a worker thread meanwhile. `rng_after` is the stream's
    /// state after step k's draws. Stops at the first error, of assembly or
    /// of `step`.
    pub fn for_each<F>(
        &self,
        data: &Data,
        chunks: &[&[usize]],
        mut rng: ChaCha8Rng,
        mut step: F,
    ) -> Result<(), String>
    where
        F: FnMut(usize, &Batch, u64, &ChaCha8Rng) -> Result<(), String>,
    {
        // A CUDA context belongs to the thread that made it: assemble there.
        if !self.device.is_cpu() || chunks.len() < 2 || !prefetch_enabled() {
            for (k, c) in chunks.iter().enumerate() {
                let (b, seed) = self.prepare(data, c, &mut rng)?;
                step(k, &b, seed, &rng)?;
            }
            return Ok(());
        }
        std::thread::scope(|s| {
            let (tx, rx) = sync_channel(PREFETCH);
            s.spawn(move || {
                for c in chunks {
                    let r = self
                        .prepare(data, c, &mut rng)
                        .map(|(b, seed)| (b, seed, rng.clone()));
                    let failed = r.is_err();
                    // A closed channel: the consumer stopped.
                    if tx.send(r).is_err() || failed {
                        break;
                    }
                }
            });
            for k in 0..chunks.len() {
                let (b, seed, after) = rx
                    .recv()
                    .map_err(|_| "the batch worker stopped before the epoch's end".to_string())??;
                step(k, &b, seed, &after)?;
            }
            Ok(())
        })
    }
}
