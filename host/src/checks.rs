//! Model self-checks for plugin authors and the zoo's tests:
//! - [`grad_check`]: the analytic gradient of a training loss against central
//!   finite differences, for sampled entries of every dense parameter and of
//!   every embedding row the batch touched;
//! - [`score_all_agreement`]: a backbone's all-item scores (`score_all`)
//!   against its per-pair `predict` on every item, for a sample of users.
//!
//! Run them on an f64 model (`TrainConfig::f64`). Table rows are stored as
//! f32, so a table entry is perturbed by `h` rounded to f32 and the quotient
//! uses the perturbation actually applied.

use std::collections::BTreeMap;

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::Data;
use crate::train::Run;

/// What [`grad_check`] measured.
#[derive(Clone, Debug, Default)]
pub struct GradReport {
    /// Entries compared.
    pub checked: usize,
    /// Entries outside `|a - n| <= atol + rtol * max(|a|, |n|)`.
    pub failures: Vec<String>,
    pub max_abs_err: f64,
    /// Largest `|a - n| / max(|a|, |n|)` over entries with `max(|a|, |n|) > atol`.
    pub max_rel_err: f64,
    /// Parameters and tables whose gradient was entirely zero on the batch.
    pub zero_grad: Vec<String>,
    /// Entries skipped because the loss is not smooth there (the one-sided
    /// differences disagree: a ReLU or max switches inside `[-h, h]`).
    pub kinks: usize,
}

/// Options of [`grad_check`].
#[derive(Clone, Debug)]
pub struct GradCheckOptions {
    /// Training examples in the batch.
    pub batch: usize,
    /// Entries sampled per parameter / per table.
    pub per_param: usize,
    /// Step of the central difference.
    pub h: f64,
    pub rtol: f64,
    pub atol: f64,
    pub seed: u64,
}

impl Default for GradCheckOptions {
    fn default() -> Self {
        GradCheckOptions {
            batch: 8,
            per_param: 4,
            h: 1e-6,
            rtol: 1e-4,
            atol: 1e-6,
            seed: 7,
        }
    }
}

fn te(e: candle_core::Error) -> String {
    e.to_string()
}

fn scalar(t: &Tensor) -> Result<f64, String> {
    t.to_dtype(DType::F64)
        .and_then(|v| v.to_scalar::<f64>())
        .map_err(te)
}

fn flat(t: &Tensor) -> Result<Vec<f64>, String> {
    t.to_dtype(DType::F64)
        .and_then(|v| v.flatten_all())
        .and_then(|v| v.to_vec1::<f64>())
        .map_err(te)
}

/// Which scalar a check perturbs.
enum Entry {
    Dense(String, usize),
    Row(String, usize),
}

/// Compare analytic and numeric gradients of the training loss on one batch.
pub fn grad_check(run: &mut Run, data: &Data, o: &GradCheckOptions) -> Result<GradReport, String> {
    if run.model.dtype != DType::F64 {
        return Err("grad_check needs an f64 model (train option f64: true)".into());
    }
    run.prepare(data)?;
    let n = run.n_train(data).min(o.batch.max(1));
    let idx: Vec<usize> = (0..n).collect();
    let batch = run.batch_of(data, &idx)?;
    let step_seed = o.seed ^ 0xda7a;
    let (loss, _, leaves) = run.forward_loss(data, &batch, step_seed)?;
    let grads = loss.backward().map_err(|e| format!("backward: {e}"))?;

    // Analytic gradients: dense params, and table rows summed over leaves.
    let mut analytic: Vec<(Entry, f64)> = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let mut report = GradReport::default();
    for (name, var) in &run.model.dense.params {
        let Some(g) = grads.get(var.as_tensor()) else {
            continue;
        };
        let g = flat(g)?;
        if g.iter().all(|&x| x == 0.0) {
            report.zero_grad.push(name.clone());
        }
        for _ in 0..o.per_param.min(g.len()) {
            let k = rng.random_range(0..g.len());
            analytic.push((Entry::Dense(name.clone(), k), g[k]));
        }
    }
    let mut rows: BTreeMap<String, BTreeMap<usize, f64>> = BTreeMap::new();
    for leaf in &leaves {
        let Some(g) = grads.get(leaf.var.as_tensor()) else {
            continue;
        };
        let g = flat(g)?;
        let sums = rows.entry(leaf.table.clone()).or_default();
        for (k, &row) in leaf.rows.iter().enumerate() {
            for j in 0..leaf.dim {
                *sums.entry(row as usize * leaf.dim + j).or_default() += g[k * leaf.dim + j];
            }
        }
    }
    for (table, sums) in &rows {
        let entries: Vec<(usize, f64)> = sums.iter().map(|(&k, &v)| (k, v)).collect();
        if entries.iter().all(|e| e.1 == 0.0) {
            report.zero_grad.push(table.clone());
        }
        for _ in 0..o.per_param.min(entries.len()) {
            let (k, v) = entries[rng.random_range(0..entries.len())];
            analytic.push((Entry::Row(table.clone(), k), v));
        }
    }

    for (entry, a) in analytic {
        let Some(num) = numeric(run, data, &batch, step_seed, &entry, o.h)? else {
            report.kinks += 1;
            continue;
        };
        let err = (a - num).abs();
        let scale = a.abs().max(num.abs());
        report.checked += 1;
        report.max_abs_err = report.max_abs_err.max(err);
        if scale > o.atol {
            report.max_rel_err = report.max_rel_err.max(err / scale);
        }
        if err > o.atol + o.rtol * scale {
            let what = match &entry {
                Entry::Dense(n, k) => format!("{n}[{k}]"),
                Entry::Row(n, k) => format!("{n}[{k}]"),
            };
            report
                .failures
                .push(format!("{what}: analytic {a:.8e}, numeric {num:.8e}"));
        }
    }
    Ok(report)
}

/// Central difference of the loss in one entry (`None` at a kink); the
/// entry is restored.
fn numeric(
    run: &mut Run,
    data: &Data,
    batch: &crate::exec::Batch,
    seed: u64,
    entry: &Entry,
    h: f64,
) -> Result<Option<f64>, String> {
    let at = |run: &mut Run, delta: f64| -> Result<(f64, f64), String> {
        let applied = set_entry(run, entry, delta)?;
        let (loss, _, _) = run.forward_loss(data, batch, seed)?;
        let v = scalar(&loss)?;
        set_entry(run, entry, -applied)?;
        Ok((v, applied))
    };
    let (up, du) = at(run, h)?;
    let (down, dd) = at(run, -h)?;
    let (base, _) = at(run, 0.0)?;
    let (fwd, bwd) = ((up - base) / du, (base - down) / -dd);
    // A smooth loss has one-sided slopes that agree to O(h); a kink makes
    // them differ by O(1).
    if (fwd - bwd).abs() > 1e-3 * (1.0 + fwd.abs().max(bwd.abs())) {
        return Ok(None);
    }
    Ok(Some((up - down) / (du - dd)))
}

/// Add `delta` to an entry; returns the change actually applied (f32 tables round).
fn set_entry(run: &mut Run, entry: &Entry, delta: f64) -> Result<f64, String> {
    match entry {
        Entry::Dense(name, k) => {
            let var = run.model.dense.params[name].clone();
            let mut v = flat(var.as_tensor())?;
            v[*k] += delta;
            let t = Tensor::from_vec(v, var.dims(), var.device())
                .and_then(|t| t.to_dtype(var.dtype()))
                .map_err(te)?;
            var.set(&t).map_err(te)?;
            Ok(delta)
        }
        Entry::Row(name, k) => {
            let t = run
                .model
                .tables
                .tables
                .get_mut(name)
                .ok_or_else(|| format!("no table '{name}'"))?;
            let w = t.data_mut();
            let old = w[*k];
            // At least 2^6 f32 ulps, so the applied change is never rounded away.
            let floor = f64::from(old.abs()) * 2f64.powi(-17);
            let delta = if delta == 0.0 || delta.abs() >= floor {
                delta
            } else {
                floor.copysign(delta)
            };
            w[*k] = (f64::from(old) + delta) as f32;
            Ok(f64::from(w[*k]) - f64::from(old))
        }
    }
}

/// The largest `|score_all - predict|` over every item for `users`
/// (`None` when the estimator/backbone has no `score_all`).
pub fn score_all_agreement(
    run: &mut Run,
    data: &Data,
    users: &[u32],
) -> Result<Option<f64>, String> {
    run.prepare(data)?;
    let Some(all) = run.score_all_only(data, users)? else {
        return Ok(None);
    };
    let all = crate::train::f32_values(&all)?;
    let n = data.ds.n_items;
    let items: Vec<u32> = (0..n as u32).collect();
    let mut worst = 0f64;
    for (k, &u) in users.iter().enumerate() {
        let pairs = run.score_pairs(data, &vec![u; n], &items)?;
        for (a, b) in all[k * n..(k + 1) * n].iter().zip(&pairs) {
            worst = worst.max(f64::from((a - b).abs()));
        }
    }
    Ok(Some(worst))
}
