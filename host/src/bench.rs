//! `host bench train`: end-to-end training throughput of one backbone on a
//! uniform random log of a chosen size (`causalrec_datasets::synthetic::
//! uniform_log`): batch assembly (negative sampling, features, history)
//! plus the training step, timed per step after warm-up. Prints examples/s,
//! step-time percentiles and the process's peak resident memory, as the
//! PyTorch counterpart `benches/reference/train_step.py` does.

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
    /// Timed steps, after `warmup` untimed ones.
    pub steps: usize,
    pub warmup: usize,
    pub seed: u64,
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
}

/// The `q`-quantile of sorted `v` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

/// Peak resident memory of this process in MB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Run the benchmark.
pub fn bench_train(b: &BenchTrain, reg: &Registry, device: Device) -> Result<BenchResult, String> {
    if b.steps == 0 || b.batch == 0 {
        return Err("bench train: --steps and --batch must be > 0".into());
    }
    let t0 = Instant::now();
    let ds = causalrec_datasets::synthetic::uniform_log(b.users, b.rows, b.inter, b.seed)
        .map_err(|e| e.to_string())?;
    let cfg = DataConfig {
        source: "uniform-log".into(),
        split: "random".into(),
        ratios: [0.98, 0.01, 0.01],
        seed: b.seed,
        ..DataConfig::default()
    };
    let data = Data::from_dataset(ds, cfg)?;
    let spec = |kind: &str, name: &str, ron: String| ComponentSpec {
        kind: kind.into(),
        name: name.into(),
        params_ron: ron,
        share: None,
    };
    let backbone = spec("backbone", &b.model, format!("{{\"dim\": {}}}", b.dim));
    reg.create(
        causalrec_sdk::ComponentKind::Backbone,
        &b.model,
        &backbone.params_ron,
    )
    .map_err(|e| format!("bench train --model {}: {e}", b.model))?;
    let comps = Components::build(
        reg,
        &[backbone],
        &spec("estimator", "naive", String::new()),
        &spec("loss", "bpr", String::new()),
    )?;
    let mut tc = TrainConfig {
        batch_size: b.batch,
        negatives: b.negatives,
        seed: b.seed,
        epochs: 1,
        ..TrainConfig::default()
    };
    tc.optim.lr = 1e-3;
    let mut run = Run::new("bench", comps, tc, device)?;
    run.prepare(&data)?;
    let setup_seconds = t0.elapsed().as_secs_f64();

    let mut order: Vec<usize> = (0..data.train_pos.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(b.seed));
    let examples = b.batch * (1 + b.negatives);
    let mut times = Vec::with_capacity(b.steps);
    for s in 0..b.warmup + b.steps {
        let start = (s * b.batch) % order.len().max(1);
        let idx: Vec<usize> = (0..b.batch)
            .map(|k| order[(start + k) % order.len()])
            .collect();
        let t = Instant::now();
        let batch = run.make_batch(&data, &idx)?;
        run.step(&data, &batch)?;
        if s >= b.warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
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
        setup_seconds,
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
