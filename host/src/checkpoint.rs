//! Checkpoints a killed run resumes from (`host run --resume RUN_DIR`).
//!
//! - A training's state ([`save_state`] / [`load_state`]): one safetensors
//!   file, written atomically, holding the model (`dense/..`, `table/..`), the
//!   optimizer state (`optim/m/..`, `optim/v/..` per dense parameter,
//!   `rows/m|v|t/..` per table), the best parameters of early stopping
//!   (`best/dense/..`, `best/table/..`), the epoch's example order
//!   (`state/order`) and a JSON [`Progress`] (`state/progress`, bytes): epoch,
//!   batches done, the partial epoch sums, the random generator's position,
//!   the epoch logs, the early-stopping state.
//! - The run's manifest ([`Manifest`], `resume.json`): the recipe (path and
//!   content hash), seed, device, settings, and per training its key (run
//!   name), configuration (and its hash) and whether it finished. A resumed
//!   run re-executes the recipe: a finished training loads its final state,
//!   the interrupted one continues from its last checkpoint, a changed recipe
//!   or training configuration is refused.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::exec::store::{DenseMoments, RowState, Table};
use crate::exec::Model;
use crate::report::{model_tensors, save_tensors, write_atomic};
use crate::train::EpochLog;

/// Where a training stands, beyond its tensors.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// The training configuration's hash ([`config_hash`]).
    pub config_hash: String,
    /// The epoch in progress or last ended (1-based; 0: none started).
    pub epoch: usize,
    /// Batches of `epoch` done.
    pub batches_done: usize,
    /// `epoch` ended: validated, logged, early-stopping state updated.
    pub epoch_done: bool,
    /// Training ended (every epoch, or early stop).
    pub finished: bool,
    /// The epoch's loss sum, batch count and term sums so far.
    pub sum: f64,
    pub count: usize,
    pub term_sums: BTreeMap<String, f64>,
    /// The run's random generator: seed (hex), stream, word position.
    pub rng_seed: String,
    pub rng_stream: u64,
    pub rng_word_pos: String,
    /// The dense optimizer's step counter.
    pub dense_step: u64,
    pub history: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_valid: Option<f64>,
    pub since_best: usize,
    /// Seconds spent training so far (the report's `train_seconds`).
    pub train_seconds: f64,
}

/// Best-epoch parameters: dense (name, values) and tables (name, rows).
pub type BestParams<'a> = (&'a [(String, Tensor)], &'a [(String, Vec<f32>)]);

/// Best-epoch parameters, owned.
pub type OwnedBest = (Vec<(String, Tensor)>, Vec<(String, Vec<f32>)>);

/// A loaded training state.
pub struct State {
    pub progress: Progress,
    pub order: Vec<usize>,
    /// Best-epoch parameters, when early stopping kept some.
    pub best: Option<OwnedBest>,
    tensors: HashMap<String, Tensor>,
}

fn te(e: candle_core::Error) -> String {
    e.to_string()
}

/// Write a training state: the model, with `optim` its optimizer state,
/// the order, the best parameters and the progress.
pub fn save_state(
    path: &Path,
    model: &Model,
    optim: bool,
    progress: &Progress,
    order: &[usize],
    best: Option<BestParams<'_>>,
) -> Result<(), String> {
    let cpu = Device::Cpu;
    let mut map = model_tensors(model)?;
    if optim {
        let (step, dense) = model.dense_opt.export_state();
        debug_assert_eq!(step, progress.dense_step);
        for (k, s) in dense {
            map.insert(format!("optim/m/{k}"), s.m.to_device(&cpu).map_err(te)?);
            map.insert(format!("optim/v/{k}"), s.v.to_device(&cpu).map_err(te)?);
        }
        for (k, t) in &model.tables.tables {
            let s = t.export_state();
            for (what, v) in [("m", s.m), ("v", s.v)] {
                if !v.is_empty() {
                    let n = v.len();
                    map.insert(
                        format!("rows/{what}/{k}"),
                        Tensor::from_vec(v, n, &cpu).map_err(te)?,
                    );
                }
            }
            if !s.t.is_empty() {
                let n = s.t.len();
                map.insert(
                    format!("rows/t/{k}"),
                    Tensor::from_vec(s.t, n, &cpu).map_err(te)?,
                );
            }
        }
    }
    if let Some((dense, tables)) = best {
        for (k, t) in dense {
            map.insert(format!("best/dense/{k}"), t.to_device(&cpu).map_err(te)?);
        }
        for (k, d) in tables {
            map.insert(
                format!("best/table/{k}"),
                Tensor::from_slice(d, d.len(), &cpu).map_err(te)?,
            );
        }
    }
    let ord: Vec<u32> = order.iter().map(|&i| i as u32).collect();
    let n = ord.len();
    map.insert(
        "state/order".into(),
        Tensor::from_vec(ord, n, &cpu).map_err(te)?,
    );
    let json = serde_json::to_vec(progress).map_err(|e| e.to_string())?;
    let n = json.len();
    map.insert(
        "state/progress".into(),
        Tensor::from_vec(json, n, &cpu).map_err(te)?,
    );
    save_tensors(&map, path)
}

/// Read a training state written by [`save_state`].
pub fn load_state(path: &Path) -> Result<State, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let tensors = candle_core::safetensors::load(path, &Device::Cpu)
        .map_err(|e| at(format!("not a readable checkpoint ({e})")))?;
    let bytes: Vec<u8> = tensors
        .get("state/progress")
        .ok_or_else(|| at("no training state (state/progress) in this checkpoint".into()))?
        .to_vec1()
        .map_err(|e| at(e.to_string()))?;
    let progress: Progress =
        serde_json::from_slice(&bytes).map_err(|e| at(format!("state/progress: {e}")))?;
    let order = match tensors.get("state/order") {
        Some(t) => t.to_vec1::<u32>().map_err(|e| at(e.to_string()))?,
        None => Vec::new(),
    };
    let mut bd = Vec::new();
    let mut bt = Vec::new();
    for (k, t) in &tensors {
        if let Some(n) = k.strip_prefix("best/dense/") {
            bd.push((n.to_string(), t.clone()));
        } else if let Some(n) = k.strip_prefix("best/table/") {
            bt.push((
                n.to_string(),
                t.to_vec1::<f32>().map_err(|e| at(e.to_string()))?,
            ));
        }
    }
    let best = (!bd.is_empty() || !bt.is_empty()).then_some((bd, bt));
    Ok(State {
        progress,
        order: order.into_iter().map(|i| i as usize).collect(),
        best,
        tensors,
    })
}

impl State {
    /// Put the checkpoint's parameters (and optimizer state, when it has
    /// one) into a fresh model: dense parameters become the model's (later
    /// declarations find them), tables are created with their rows.
    pub fn restore_model(&self, model: &mut Model, path: &Path) -> Result<(), String> {
        let at = |e: String| format!("{}: {e}", path.display());
        let mut moments: BTreeMap<String, (Option<Tensor>, Option<Tensor>)> = BTreeMap::new();
        for (k, t) in &self.tensors {
            if let Some(n) = k.strip_prefix("dense/") {
                let t = t
                    .to_dtype(model.dtype)
                    .and_then(|t| t.to_device(&model.device))
                    .map_err(|e| at(e.to_string()))?;
                let v = Var::from_tensor(&t).map_err(|e| at(e.to_string()))?;
                model.dense.params.insert(n.to_string(), v);
            } else if let Some(n) = k.strip_prefix("table/") {
                let (rows, dim) = t.dims2().map_err(|e| at(format!("{k}: {e}")))?;
                let data: Vec<f32> = t
                    .to_dtype(DType::F32)
                    .and_then(|t| t.flatten_all()?.to_vec1())
                    .map_err(|e| at(e.to_string()))?;
                let mut table = Table::new(rows, dim, causalrec_sdk::Init::ZEROS, 0);
                table.set_data(data).map_err(|e| at(format!("{k}: {e}")))?;
                model.tables.tables.insert(n.to_string(), table);
            } else if let Some(n) = k.strip_prefix("optim/m/") {
                moments.entry(n.to_string()).or_default().0 = Some(t.clone());
            } else if let Some(n) = k.strip_prefix("optim/v/") {
                moments.entry(n.to_string()).or_default().1 = Some(t.clone());
            }
        }
        let mut dense = BTreeMap::new();
        for (k, (m, v)) in moments {
            let (Some(m), Some(v)) = (m, v) else {
                return Err(at(format!("optimizer state of '{k}' is incomplete")));
            };
            dense.insert(k, DenseMoments { m, v });
        }
        model
            .dense_opt
            .import_state(self.progress.dense_step, dense, &model.device)
            .map_err(|e| at(e.to_string()))?;
        let names: Vec<String> = model.tables.tables.keys().cloned().collect();
        for name in names {
            let get = |w: &str| -> Result<Option<Tensor>, String> {
                Ok(self.tensors.get(&format!("rows/{w}/{name}")).cloned())
            };
            let f32s = |t: Option<Tensor>| -> Result<Vec<f32>, String> {
                t.map(|t| t.to_vec1::<f32>().map_err(|e| at(e.to_string())))
                    .transpose()
                    .map(Option::unwrap_or_default)
            };
            let s = RowState {
                m: f32s(get("m")?)?,
                v: f32s(get("v")?)?,
                t: get("t")?
                    .map(|t| t.to_vec1::<u32>().map_err(|e| at(e.to_string())))
                    .transpose()?
                    .unwrap_or_default(),
            };
            if let Some(t) = model.tables.tables.get_mut(&name) {
                t.import_state(s)
                    .map_err(|e| at(format!("table '{name}': {e}")))?;
            }
        }
        Ok(())
    }
}

/// A stable hash of a value's JSON text (FNV-1a, hex).
pub fn config_hash(v: &impl Serialize) -> String {
    let text = serde_json::to_string(v).unwrap_or_default();
    format!("{:016x}", crate::exec::store::name_seed(0, &text))
}

/// The first field where two JSON values differ, as `a.b[2]: old -> new`.
pub fn first_difference(old: &serde_json::Value, new: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    fn walk(path: &str, a: &Value, b: &Value) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    )
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (a, b))| walk(&format!("{path}[{i}]"), a, b)),
            _ if a == b => None,
            _ => Some(format!("{path}: {a} -> {b}")),
        }
    }
    walk("", old, new)
}

/// One training of a run, as the manifest records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainingEntry {
    /// The run name (`#<n>` appended for the n-th training of the same name).
    pub key: String,
    pub config_hash: String,
    pub config: serde_json::Value,
    pub finished: bool,
}

/// `resume.json`: what a run was started with and how far its trainings got.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub recipe: PathBuf,
    pub recipe_hash: String,
    pub seed: u64,
    pub device: String,
    pub settings: BTreeMap<String, String>,
    pub plugin_dirs: Vec<PathBuf>,
    pub trainings: Vec<TrainingEntry>,
}

impl Manifest {
    pub const FILE: &'static str = "resume.json";

    /// The hash of a recipe file's text.
    pub fn hash_recipe(path: &Path) -> Result<String, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config_hash(&text))
    }

    /// Read a run's manifest.
    pub fn load(run_dir: &Path) -> Result<Manifest, String> {
        let p = run_dir.join(Self::FILE);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            format!(
                "{}: {e} (only runs started by this version of host can be resumed)",
                p.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// Write it (atomically) into the run folder.
    pub fn save(&self, run_dir: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        write_atomic(&run_dir.join(Self::FILE), text.as_bytes())
    }

    pub fn entry(&self, key: &str) -> Option<&TrainingEntry> {
        self.trainings.iter().find(|t| t.key == key)
    }

    /// Add or replace the entry of `e.key`.
    pub fn put(&mut self, e: TrainingEntry) {
        match self.trainings.iter_mut().find(|t| t.key == e.key) {
            Some(t) => *t = e,
            None => self.trainings.push(e),
        }
    }
}
