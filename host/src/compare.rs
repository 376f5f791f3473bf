//! `host report RUN_DIR...`: runs side by side. Each run folder's
//! `report.json` (what `train` and `evaluate` recorded) and `metrics.jsonl`
//! (one line per epoch) are read; runs whose names differ only in a seed
//! suffix (`MF-0`, `MF-1`, ... or `fm_seed3`) form one model, and the
//! same run name in several folders counts as one seed per folder. The
//! comparison is a Markdown table per evaluation (mean ± sample std over
//! seeds, and the number of seeds), an optional paired t-test between two
//! chosen models (seeds paired in order), and SVG plots: training loss and
//! each per-epoch validation metric against the epoch (mean over seeds),
//! and bar charts of per-group metrics (`recall@20|active`, C_KL).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::plot::{write_bars_svg, write_lines_svg, Bars, Lines};
use crate::stats::paired_t_test;

/// One named series of (x, y) points.
type Series = (String, Vec<(f64, f64)>);

/// One `report.json` row.
#[derive(Deserialize)]
struct ReportRow {
    name: String,
    kind: String,
    values: BTreeMap<String, serde_json::Value>,
}

/// One `metrics.jsonl` line (the fields the comparison reads).
#[derive(Deserialize)]
struct EpochLine {
    run: String,
    epoch: usize,
    loss: f64,
    #[serde(default)]
    valid: BTreeMap<String, f64>,
}

/// One seed of one model: its metrics per evaluation kind, and its epochs.
#[derive(Default)]
struct Seed {
    /// (folder index, seed number in the name) — the pairing order.
    order: (usize, i64),
    metrics: BTreeMap<String, BTreeMap<String, f64>>,
    /// (epoch, loss, validation metrics).
    epochs: Vec<(usize, f64, BTreeMap<String, f64>)>,
}

/// Models by name, each with its seeds in pairing order.
pub struct Comparison {
    models: BTreeMap<String, Vec<Seed>>,
}

/// Split a run name into its model name and seed number: a trailing
/// `-<n>`, `_<n>`, `-seed<n>`, `_seed<n>`, `-s<n>` or `_s<n>`; otherwise the
/// whole name with seed 0.
pub fn model_and_seed(run: &str) -> (String, i64) {
    if let Some(cut) = run.rfind(['-', '_']) {
        let tail = &run[cut + 1..];
        let digits = tail
            .strip_prefix("seed")
            .or_else(|| tail.strip_prefix('s'))
            .unwrap_or(tail);
        if cut > 0 && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = digits.parse() {
                return (run[..cut].to_string(), n);
            }
        }
    }
    (run.to_string(), 0)
}

fn read_report(dir: &Path) -> Result<Vec<ReportRow>, String> {
    let path = dir.join("report.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e} (expected a run folder written by `host run`, with report.json)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a causalrec report ({e})",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

fn read_epochs(dir: &Path) -> Result<Vec<EpochLine>, String> {
    let path = dir.join("metrics.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new()); // runs evaluated without training epochs
    };
    let mut out = Vec::new();
    for (k, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: EpochLine = serde_json::from_str(line).map_err(|e| {
            format!(
                "{}:{}:{}: not a metrics line ({e})",
                path.display(),
                k + 1,
                e.column()
            )
        })?;
        out.push(v);
    }
    Ok(out)
}

impl Comparison {
    /// Read every folder of `dirs`.
    pub fn load(dirs: &[PathBuf]) -> Result<Comparison, String> {
        if dirs.is_empty() {
            return Err("host report: give at least one run folder".into());
        }
        let mut by_run: BTreeMap<(usize, String), Seed> = BTreeMap::new();
        for (d, dir) in dirs.iter().enumerate() {
            for row in read_report(dir)? {
                let seed = by_run.entry((d, row.name.clone())).or_default();
                // Later rows of the same run and kind replace earlier ones.
                let m = seed.metrics.entry(row.kind).or_default();
                for (k, v) in row.values {
                    // Row counts are the same for every model: not compared.
                    if k == "n" || k == "positives" {
                        continue;
                    }
                    if let Some(x) = v.as_f64() {
                        m.insert(k, x);
                    }
                }
            }
            for e in read_epochs(dir)? {
                let seed = by_run.entry((d, e.run.clone())).or_default();
                seed.epochs.push((e.epoch, e.loss, e.valid));
            }
        }
        let mut models: BTreeMap<String, Vec<Seed>> = BTreeMap::new();
        for ((d, run), mut seed) in by_run {
            let (model, n) = model_and_seed(&run);
            seed.order = (d, n);
            seed.epochs.sort_by_key(|e| e.0);
            models.entry(model).or_default().push(seed);
        }
        for seeds in models.values_mut() {
            seeds.sort_by_key(|s| s.order);
        }
        Ok(Comparison { models })
    }

    /// The model names.
    pub fn models(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }

    /// Every evaluation kind with the metrics any model reports for it.
    fn kinds(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for seeds in self.models.values() {
            for s in seeds {
                for (kind, m) in &s.metrics {
                    out.entry(kind)
                        .or_default()
                        .extend(m.keys().map(String::as_str));
                }
            }
        }
        out.into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect()
    }

    /// A model's values of one metric, one per seed that reports it.
    fn values(&self, model: &str, kind: &str, metric: &str) -> Vec<f64> {
        self.models.get(model).map_or(Vec::new(), |seeds| {
            seeds
                .iter()
                .filter_map(|s| s.metrics.get(kind)?.get(metric).copied())
                .collect()
        })
    }

    /// The Markdown comparison: per evaluation kind, a table of models x
    /// metrics with `mean ± std (n)`; then, with `pair`, the paired t-test
    /// of every shared metric of the two models.
    pub fn markdown(&self, pair: Option<(&str, &str)>) -> Result<String, String> {
        let mut md = String::from("# causalrec comparison\n\n");
        md.push_str("Mean ± sample standard deviation over seeds (n = seeds).\n\n");
        for (kind, metrics) in self.kinds() {
            md.push_str(&format!("## {kind}\n\n| model |"));
            for m in &metrics {
                md.push_str(&format!(" {} |", m.replace('|', "\\|")));
            }
            md.push_str("\n|---|");
            md.push_str(&"---:|".repeat(metrics.len()));
            md.push('\n');
            for model in self.models.keys() {
                let cells: Vec<String> = metrics
                    .iter()
                    .map(|m| mean_std_cell(&self.values(model, kind, m)))
                    .collect();
                if cells.iter().all(|c| c == "—") {
                    continue;
                }
                md.push_str(&format!("| {model} | {} |\n", cells.join(" | ")));
            }
            md.push('\n');
        }
        if let Some((a, b)) = pair {
            for m in [a, b] {
                if !self.models.contains_key(m) {
                    return Err(format!(
                        "host report --pair: no model '{m}' in these runs (models: {})",
                        self.models().join(", ")
                    ));
                }
            }
            md.push_str(&format!(
                "## Paired t-test: {a} vs {b}\n\nSeeds paired in order (folder, then seed number); two-sided p.\n\n| evaluation | metric | mean {a} - {b} | t | p | pairs |\n|---|---|---:|---:|---:|---:|\n"
            ));
            for (kind, metrics) in self.kinds() {
                for m in metrics {
                    let (x, y) = (self.values(a, kind, m), self.values(b, kind, m));
                    if x.len() < 2 || x.len() != y.len() {
                        continue;
                    }
                    let t = paired_t_test(&x, &y)?;
                    md.push_str(&format!(
                        "| {kind} | {} | {:.4} | {:.3} | {:.4} | {} |\n",
                        m.replace('|', "\\|"),
                        t.mean_diff,
                        t.t,
                        t.p,
                        t.n
                    ));
                }
            }
            md.push('\n');
        }
        Ok(md)
    }

    /// Write the plots into `out`; returns the files written.
    pub fn plots(&self, out: &Path) -> Result<Vec<PathBuf>, String> {
        let mut written = Vec::new();
        // Training loss and every validation metric against the epoch.
        let mut curves: BTreeMap<String, Vec<Series>> = BTreeMap::new();
        for (model, seeds) in &self.models {
            let mut per: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
            for s in seeds {
                for (epoch, loss, valid) in &s.epochs {
                    per.entry("loss".into())
                        .or_default()
                        .entry(*epoch)
                        .or_default()
                        .push(*loss);
                    for (k, v) in valid {
                        per.entry(format!("valid {k}"))
                            .or_default()
                            .entry(*epoch)
                            .or_default()
                            .push(*v);
                    }
                }
            }
            for (what, by_epoch) in per {
                let pts: Vec<(f64, f64)> = by_epoch
                    .into_iter()
                    .map(|(e, v)| (e as f64, v.iter().sum::<f64>() / v.len() as f64))
                    .filter(|p| p.1.is_finite())
                    .collect();
                if !pts.is_empty() {
                    curves.entry(what).or_default().push((model.clone(), pts));
                }
            }
        }
        for (what, series) in curves {
            let path = out.join(format!("curve_{}.svg", crate::report::file_stem(&what)));
            write_lines_svg(
                &path,
                &Lines {
                    title: format!("{what} per epoch (mean over seeds)"),
                    x_label: "epoch".into(),
                    y_label: what.clone(),
                    series,
                },
            )?;
            written.push(path);
        }
        // Per-group metrics (`<metric>|<group>`) and C_KL as bar charts.
        for (kind, metrics) in self.kinds() {
            let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for m in &metrics {
                if let Some((base, _)) = m.split_once('|') {
                    groups.entry(base).or_default().push(m);
                } else if m.starts_with("ckl@") {
                    groups.entry("ckl").or_default().push(m);
                }
            }
            for (base, names) in groups {
                let series: Vec<(String, Vec<f64>)> = self
                    .models
                    .keys()
                    .filter_map(|model| {
                        let v: Vec<f64> = names
                            .iter()
                            .map(|n| mean(&self.values(model, kind, n)))
                            .collect();
                        v.iter().all(|x| x.is_finite()).then(|| (model.clone(), v))
                    })
                    .collect();
                if series.is_empty() {
                    continue;
                }
                let categories = names
                    .iter()
                    .map(|n| n.split_once('|').map_or(*n, |(_, g)| g).to_string())
                    .collect();
                let path = out.join(format!(
                    "groups_{}_{}.svg",
                    crate::report::file_stem(kind),
                    crate::report::file_stem(base)
                ));
                write_bars_svg(
                    &path,
                    &Bars {
                        title: format!("{base} by group ({kind})"),
                        y_label: base.to_string(),
                        categories,
                        series,
                    },
                )?;
                written.push(path);
            }
        }
        Ok(written)
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// `mean ± std (n)`; `mean (1)` for one seed; `—` for none.
fn mean_std_cell(v: &[f64]) -> String {
    match v.len() {
        0 => "—".into(),
        1 => format!("{:.4} (1)", v[0]),
        n => {
            let m = mean(v);
            let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt();
            format!("{m:.4} ± {s:.4} ({n})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_suffixes() {
        assert_eq!(model_and_seed("MF-3"), ("MF".into(), 3));
        assert_eq!(model_and_seed("fm_seed12"), ("fm".into(), 12));
        assert_eq!(model_and_seed("DecFM-s2"), ("DecFM".into(), 2));
        assert_eq!(model_and_seed("MF-IPS-0"), ("MF-IPS".into(), 0));
        assert_eq!(model_and_seed("MF-IPS"), ("MF-IPS".into(), 0));
        assert_eq!(model_and_seed("w/o ABT"), ("w/o ABT".into(), 0));
        assert_eq!(model_and_seed("-5"), ("-5".into(), 0));
    }

    #[test]
    fn cells() {
        assert_eq!(mean_std_cell(&[]), "—");
        assert_eq!(mean_std_cell(&[0.5]), "0.5000 (1)");
        // mean 2, sample std 1
        assert_eq!(mean_std_cell(&[1.0, 2.0, 3.0]), "2.0000 ± 1.0000 (3)");
    }
}
