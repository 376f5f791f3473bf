//! The run directory: resolved configuration (RON), `metrics.jsonl` per epoch,
//! `report.json` and `report.md` with the final metrics of every train/evaluate
//! call, and checkpoints (safetensors).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::exec::Model;

/// One row of the final report: a named result with its metrics.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    pub name: String,
    pub kind: String,
    pub values: BTreeMap<String, serde_json::Value>,
}

/// The output folder of one `host run`.
pub struct RunDir {
    pub path: PathBuf,
    metrics: File,
    pub rows: Vec<ReportRow>,
    pub tables: Vec<String>,
    /// Lines at the top of report.md: each training's estimand and the data
    /// it trained on (see [`RunDir::note`]).
    pub provenance: Vec<String>,
}

/// UTC `YYYYmmdd-HHMMSS` from the system clock.
pub fn timestamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

impl RunDir {
    /// Create the folder (and its parents).
    pub fn create(path: &Path) -> Result<RunDir, String> {
        std::fs::create_dir_all(path.join("checkpoints"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let metrics = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.join("metrics.jsonl"))
            .map_err(|e| format!("{}: {e}", path.join("metrics.jsonl").display()))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
            rows: Vec::new(),
            tables: Vec::new(),
            provenance: Vec::new(),
        })
    }

    /// Append one JSON line to `metrics.jsonl`.
    pub fn log_metrics(&mut self, v: &impl Serialize) -> Result<(), String> {
        let line = serde_json::to_string(v).map_err(|e| e.to_string())?;
        writeln!(self.metrics, "{line}").map_err(|e| format!("metrics.jsonl: {e}"))
    }

    /// Write the resolved configuration.
    pub fn write_config(&self, cfg: &impl Serialize) -> Result<(), String> {
        let text = ron::ser::to_string_pretty(cfg, ron::ser::PrettyConfig::default())
            .map_err(|e| e.to_string())?;
        std::fs::write(self.path.join("config.ron"), text).map_err(|e| format!("config.ron: {e}"))
    }

    /// Add a provenance line (once; repeated lines are kept once).
    pub fn note(&mut self, line: String) {
        if !self.provenance.contains(&line) {
            self.provenance.push(line);
        }
    }

    /// Write `report.json` and `report.md` (called after every result, so nothing is lost).
    pub fn write_report(&self) -> Result<(), String> {
        let json = serde_json::to_string_pretty(&self.rows).map_err(|e| e.to_string())?;
        std::fs::write(self.path.join("report.json"), json)
            .map_err(|e| format!("report.json: {e}"))?;
        let mut md = String::from("# causalrec report\n\n");
        if !self.provenance.is_empty() {
            md.push_str("## Estimands and data\n\n");
            for l in &self.provenance {
                md.push_str(&format!("- {l}\n"));
            }
            md.push('\n');
        }
        for r in &self.rows {
            md.push_str(&format!(
                "## {} ({})\n\n| metric | value |\n|---|---:|\n",
                r.name, r.kind
            ));
            for (k, v) in &r.values {
                // Metric names may hold `|` (`recall@20|eta>1`).
                md.push_str(&format!(
                    "| {} | {} |\n",
                    k.replace('|', "\\|"),
                    fmt_value(v)
                ));
            }
            md.push('\n');
        }
        for t in &self.tables {
            md.push_str(t);
            md.push('\n');
        }
        std::fs::write(self.path.join("report.md"), md).map_err(|e| format!("report.md: {e}"))
    }
}

/// A JSON value for a table cell (numbers with 4 decimals).
pub fn fmt_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() != 0.0 => format!("{f:.4}"),
            _ => n.to_string(),
        },
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A run name as a file name: characters other than ASCII letters, digits,
/// `.`, `-` and `_` become `_` (names such as "w/o ABT" hold separators).
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Save every dense parameter and table of a model as safetensors.
pub fn save_checkpoint(model: &Model, path: &Path) -> Result<(), String> {
    let mut map: HashMap<String, Tensor> = HashMap::new();
    for (k, v) in &model.dense.params {
        map.insert(
            format!("dense/{k}"),
            v.as_tensor()
                .to_device(&Device::Cpu)
                .map_err(|e| e.to_string())?,
        );
    }
    for (k, t) in &model.tables.tables {
        let x = Tensor::from_slice(&t.data, (t.rows, t.dim), &Device::Cpu)
            .map_err(|e| e.to_string())?;
        map.insert(format!("table/{k}"), x);
    }
    let tmp = path.with_extension("tmp");
    candle_core::safetensors::save(&map, &tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_names_become_safe_file_stems() {
        assert_eq!(super::file_stem("w/o ABT, BD-0"), "w_o_ABT__BD-0");
        assert_eq!(super::file_stem("CP2Rec-PROJ-NCF.1"), "CP2Rec-PROJ-NCF.1");
    }
}
