//! `host bench train`: end-to-end training throughput of one backbone on a
//! uniform random log of a chosen size (`causalrec_datasets::synthetic::
//! uniform_log`): batch assembly (negative sampling, features, history)
//! plus the training step, timed per step after warm-up. Prints examples/s,
//! step-time percentiles and the process's peak resident memory, as the
//! PyTorch counterpart `benches/reference/train_step.py` does.
//!
//! `host bench rank`: the all-ranking protocol (blocked user x item score
//! matrix, training-item masking, top-K, Recall/NDCG) over ML-100K or a
//! uniform random log, scored by random MF embeddings (one matrix product
//! per block of users) or, with a model, by an untrained backbone's
//! `score_all` as a training run evaluates, timed end to end.

use std::time::Instant;

use candle_core::Device;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::{Data, DataConfig};
use crate::plugins::Registry;
use crate::train::{ComponentSpec, Components, Run, TrainConfig};

/// What to benchmark.
#[derive(Clone, Debug)]
pub struct BenchTrain {
    /// Backbone name (`mf`, `fm`, `nfm`, `din`, `mmgcn`, ...).
    pub model: String,
    /// Item table rows.
    pub rows: usize,
    pub users: usize,
    /// Training interactions in the log.
    pub inter: usize,
    /// Positives per batch (each with `negatives` sampled negatives).
    pub batch: usize,
    pub negatives: usize,
    pub dim: usize,
    /// Width of three random dense item modalities (`visual`, `acoustic`,
    /// `textual`) for multi-modal backbones (MMGCN); 0: none.
    pub modality_width: usize,
    /// Timed steps, after `warmup` untimed ones.
    pub steps: usize,
    pub warmup: usize,
    pub seed: u64,
    /// Time each phase of the step too ([`crate::exec::phases::PhaseTimes`]).
    pub phases: bool,
}

/// The measured figures.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    pub model: String,
    pub rows: usize,
    pub batch: usize,
    pub examples_per_step: usize,
    pub examples_per_second: f64,
    pub step_ms_p50: f64,
    pub step_ms_p90: f64,
    pub step_ms_p99: f64,
    pub peak_rss_mb: f64,
    pub setup_seconds: f64,
    /// With `phases`: per phase of the step, its median over the timed
    /// steps (a lookup's time is part of `forward`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_ms_p50: Option<std::collections::BTreeMap<String, f64>>,
}

/// The `q`-quantile of sorted `v` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

/// Peak resident memory of this process in MB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    crate::procfs::kib("/proc/self/status", "VmHWM").map_or(0.0, |kb| kb as f64 / 1024.0)
}

/// A uniform random log (`synthetic::uniform_log`), with random item
/// modalities (names, width) when given, split at random by `ratios`.
fn uniform_data(
    users: usize,
    items: usize,
    inter: usize,
    seed: u64,
    ratios: [f64; 3],
    modalities: Option<(&[&str], usize)>,
) -> Result<Data, String> {
    use causalrec_datasets::synthetic;
    let mut ds = synthetic::uniform_log(users, items, inter, seed).map_err(|e| e.to_string())?;
    if let Some((names, width)) = modalities {
        synthetic::add_random_modalities(&mut ds, names, width, seed).map_err(|e| e.to_string())?;
    }
    let cfg = DataConfig {
        source: "uniform-log".into(),
        split: "random".into(),
        ratios,
        seed,
        ..DataConfig::default()
    };
    Data::from_dataset(ds, cfg)
}

/// A run of backbone `model` (naive estimator, BPR loss, Adam, lr 1e-3),
/// prepared on `data`: what `bench train` trains and `bench rank --model`
/// scores with.
#[allow(clippy::too_many_arguments)]
fn bench_run(
    reg: &Registry,
    model: &str,
    dim: usize,
    batch: usize,
    negatives: usize,
    seed: u64,
    device: Device,
    data: &Data,
) -> Result<Run, String> {
    let spec = |kind: &str, name: &str, ron: String| ComponentSpec {
        kind: kind.into(),
        name: name.into(),
        params_ron: ron,
        share: None,
    };
    let backbone = spec("backbone", model, format!("{{\"dim\": {dim}}}"));
    reg.create(
        causalrec_sdk::ComponentKind::Backbone,
        model,
        &backbone.params_ron,
    )
    .map_err(|e| format!("bench --model {model}: {e}"))?;
    let comps = Components::build(
        reg,
        &[backbone],
        &spec("estimator", "naive", String::new()),
        &spec("loss", "bpr", String::new()),
    )?;
    let mut tc = TrainConfig {
        batch_size: batch,
        negatives,
        seed,
        epochs: 1,
        ..TrainConfig::default()
    };
    tc.optim.lr = 1e-3;
    let mut run = Run::new("bench", comps, tc, device)?;
    run.prepare(data)?;
    Ok(run)
}

/// A prepared benchmark: the data, the run and the batch order, stepped
/// one training step at a time (the criterion benches drive it too).
pub struct BenchSession {
    run: Run,
    data: Data,
    order: Vec<usize>,
    batch: usize,
    next: usize,
    /// Examples one step trains on (positives and their negatives).
    pub examples_per_step: usize,
    /// Seconds to build the log, the data set and the run.
    pub setup_seconds: f64,
}

impl BenchSession {
    /// Build the log, the data set and a run of `b.model` (naive estimator,
    /// BPR loss, Adam).
    pub fn new(b: &BenchTrain, reg: &Registry, device: Device) -> Result<BenchSession, String> {
        if b.batch == 0 {
            return Err("bench train: --batch must be > 0".into());
        }
        let t0 = Instant::now();
        let modalities = ["visual", "acoustic", "textual"];
        let modalities = (b.modality_width > 0).then_some((&modalities[..], b.modality_width));
        let data = uniform_data(
            b.users,
            b.rows,
            b.inter,
            b.seed,
            [0.98, 0.01, 0.01],
            modalities,
        )?;
        let run = bench_run(
            reg,
            &b.model,
            b.dim,
            b.batch,
            b.negatives,
            b.seed,
            device,
            &data,
        )?;
        let mut order: Vec<usize> = (0..data.train_pos.len()).collect();
        if order.is_empty() {
            return Err("bench train: the log has no training positives".into());
        }
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(b.seed));
        Ok(BenchSession {
            run,
            data,
            order,
            batch: b.batch,
            next: 0,
            examples_per_step: b.batch * (1 + b.negatives),
            setup_seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// The training positives of the next batch.
    fn next_indices(&mut self) -> Vec<usize> {
        let n = self.order.len();
        let idx: Vec<usize> = (0..self.batch)
            .map(|k| self.order[(self.next + k) % n])
            .collect();
        self.next = (self.next + self.batch) % n;
        idx
    }

    /// One training step on the next batch: batch assembly, then the step
    /// (in sequence, as criterion times one call).
    pub fn step(&mut self) -> Result<(), String> {
        let idx = self.next_indices();
        let batch = self.run.make_batch(&self.data, &idx)?;
        self.run.step(&self.data, &batch).map(drop)
    }
}

/// Run the benchmark.
pub fn bench_train(b: &BenchTrain, reg: &Registry, device: Device) -> Result<BenchResult, String> {
    if b.steps == 0 {
        return Err("bench train: --steps must be > 0".into());
    }
    let mut session = BenchSession::new(b, reg, device)?;
    if b.phases {
        session.run.model.phases = Some(Default::default());
    }
    // As training runs: the next batches are assembled on a worker thread
    // while a step computes; a step's time is from the previous step's end
    // to its own.
    let idxs: Vec<Vec<usize>> = (0..b.warmup + b.steps)
        .map(|_| session.next_indices())
        .collect();
    let chunks: Vec<&[usize]> = idxs.iter().map(Vec::as_slice).collect();
    let mut times = Vec::with_capacity(b.steps);
    let mut last = Instant::now();
    session.run.steps(&session.data, &chunks, |k| {
        let now = Instant::now();
        if k >= b.warmup {
            times.push((now - last).as_secs_f64());
        }
        last = now;
        Ok(())
    })?;
    let examples = session.examples_per_step;
    let total: f64 = times.iter().sum();
    times.sort_by(f64::total_cmp);
    Ok(BenchResult {
        model: b.model.clone(),
        rows: b.rows,
        batch: b.batch,
        examples_per_step: examples,
        examples_per_second: (examples * times.len()) as f64 / total.max(1e-12),
        step_ms_p50: 1e3 * quantile(&times, 0.5),
        step_ms_p90: 1e3 * quantile(&times, 0.9),
        step_ms_p99: 1e3 * quantile(&times, 0.99),
        peak_rss_mb: peak_rss_mb(),
        setup_seconds: session.setup_seconds,
        phase_ms_p50: session
            .run
            .model
            .phases
            .as_ref()
            .map(|p| p.median_ms(b.warmup)),
    })
}

/// What `host bench rank` measures.
#[derive(Clone, Debug)]
pub struct BenchRank {
    /// `ml-100k` (the real data, chronological per-user split) or
    /// `uniform` (a uniform random log of `users` x `items`).
    pub data: String,
    pub users: usize,
    pub items: usize,
    /// Interactions of the uniform log.
    pub inter: usize,
    pub dim: usize,
    pub ks: Vec<usize>,
    pub seed: u64,
    /// Score through this backbone's `score_all` (untrained, as a training
    /// run evaluates: the plugin's graph, its `table_all` reads, the
    /// estimator) instead of one matrix product of random embeddings.
    pub model: Option<String>,
}

/// The measured figures of `host bench rank`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RankResult {
    pub data: String,
    /// Users ranked (those with test positives) and items per user.
    pub users: usize,
    pub items: usize,
    /// Wall seconds of the whole evaluation (scoring, masking, top-K, metrics).
    pub seconds: f64,
    pub users_per_second: f64,
    /// Scores computed per second (users x items / seconds).
    pub scores_per_second: f64,
    /// The backbone scored with (`None`: random MF embeddings).
    pub model: Option<String>,
    pub peak_rss_mb: f64,
    pub metrics: std::collections::BTreeMap<String, f64>,
}

/// Time the all-ranking evaluation on the test part.
pub fn bench_rank(
    b: &BenchRank,
    reg: &Registry,
    repo_root: &std::path::Path,
) -> Result<RankResult, String> {
    use candle_core::Tensor;
    let data = match b.data.as_str() {
        "ml-100k" => Data::load(
            DataConfig {
                source: "ml-100k".into(),
                seed: b.seed,
                ..DataConfig::default()
            },
            repo_root,
        )?,
        "uniform" => uniform_data(b.users, b.items, b.inter, b.seed, [0.8, 0.1, 0.1], None)?,
        other => {
            return Err(format!(
                "bench rank --data: 'ml-100k' or 'uniform', got '{other}'"
            ))
        }
    };
    let n_items = data.ds.n_items;
    let part = crate::data::Part::Test;
    let (metrics, seconds) = match &b.model {
        Some(model) => {
            let mut run = bench_run(reg, model, b.dim, 1024, 1, b.seed, Device::Cpu, &data)?;
            let t0 = Instant::now();
            let m = run.with_eval_memo(|run| {
                crate::protocols::all_ranking(&data, part, &b.ks, |us| run.score_users(&data, us))
            })?;
            (m, t0.elapsed().as_secs_f64())
        }
        None => {
            let te = |e: candle_core::Error| e.to_string();
            let dev = Device::Cpu;
            let users = Tensor::randn(0f32, 0.1, (data.ds.n_users, b.dim), &dev).map_err(te)?;
            let items_t = Tensor::randn(0f32, 0.1, (n_items, b.dim), &dev)
                .and_then(|t| t.t()?.contiguous())
                .map_err(te)?;
            let t0 = Instant::now();
            let m = crate::protocols::all_ranking(&data, part, &b.ks, |us| {
                let idx = Tensor::from_vec(us.to_vec(), us.len(), &dev).map_err(te)?;
                users
                    .index_select(&idx, 0)
                    .and_then(|u| u.matmul(&items_t))
                    .map_err(te)
            })?;
            (m, t0.elapsed().as_secs_f64())
        }
    };
    let ranked = metrics.get("users").copied().unwrap_or(0.0) as usize;
    Ok(RankResult {
        data: b.data.clone(),
        users: ranked,
        items: n_items,
        seconds,
        users_per_second: ranked as f64 / seconds.max(1e-12),
        scores_per_second: (ranked * n_items) as f64 / seconds.max(1e-12),
        model: b.model.clone(),
        peak_rss_mb: peak_rss_mb(),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(quantile(&v, 0.5), 5.0);
        assert_eq!(quantile(&v, 0.9), 9.0);
        assert_eq!(quantile(&v, 0.99), 10.0);
        assert_eq!(quantile(&[3.0], 0.5), 3.0);
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mb() > 1.0);
        }
    }
}
