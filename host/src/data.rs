//! A data set prepared for training and evaluation: the loaded [`Dataset`],
//! its split, positives, the schema components see, and batch assembly
//! (ids, labels and feature fields as tensors).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use causalrec_datasets::{
    self as ds, AtomicOptions, Column, Dataset, FieldKind, Role, Split, Table,
};
use causalrec_sdk::{FieldSchema, FieldSide, FieldType, Schema};
use serde::{Deserialize, Serialize};

use crate::exec::Batch;

/// How to load and split a data set (the recipe's `dataset(..)` options).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataConfig {
    /// `bundled` (the synthetic quick-start set), `ml-100k`, or a folder of RecBole atomic files.
    pub source: String,
    /// `chrono_global`, `chrono_user` or `random`.
    pub split: String,
    pub ratios: [f64; 3],
    /// Ratings >= this are positives; `None` makes every interaction positive.
    pub positive_threshold: Option<f32>,
    /// Extra roles for fields, e.g. `("class", "group")`.
    pub roles: Vec<(String, String)>,
    /// Feature fields to leave out when loading.
    pub drop_fields: Vec<String>,
    pub seed: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: "bundled".into(),
            split: "chrono_user".into(),
            ratios: [0.8, 0.1, 0.1],
            positive_threshold: Some(4.0),
            roles: Vec::new(),
            drop_fields: Vec::new(),
            seed: 2024,
        }
    }
}

/// A prepared data set.
pub struct Data {
    pub name: String,
    pub ds: Dataset,
    pub split: Split,
    pub schema: Schema,
    /// Training positives as (user, item).
    pub train_pos: Vec<(u32, u32)>,
    /// Per user, sorted items seen in training (any label): excluded from sampling and ranking.
    pub train_seen: Vec<Vec<u32>>,
    /// Per user, sorted positives of the validation / test split.
    pub valid_pos: Vec<Vec<u32>>,
    pub test_pos: Vec<Vec<u32>>,
    /// Per user, sorted items of the validation split (any label): excluded when ranking on test.
    pub valid_seen: Vec<Vec<u32>>,
    pub config: DataConfig,
}

/// Which split to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Part {
    Valid,
    Test,
}

/// Resolve a data source name to a folder and a file stem.
pub fn resolve_source(source: &str, repo_root: &Path) -> Result<(PathBuf, String), String> {
    let candidates: Vec<PathBuf> = if source == "ml-100k" {
        vec![
            repo_root.join("datasets/data/ml-100k"),
            repo_root.join("../shared/data/ml-100k"),
        ]
    } else {
        let p = PathBuf::from(source);
        vec![if p.is_absolute() {
            p
        } else {
            repo_root.join(p)
        }]
    };
    for c in &candidates {
        if c.is_dir() {
            let stem = c
                .file_name()
                .and_then(|s| s.to_str())
                .unwrap_or("data")
                .to_string();
            return Ok((c.clone(), stem));
        }
    }
    let hint = if source == "ml-100k" {
        " (run datasets/fetch-ml100k)"
    } else {
        ""
    };
    Err(format!(
        "data set '{source}' not found; looked in: {}{hint}",
        candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

fn field_type(k: FieldKind) -> FieldType {
    match k {
        FieldKind::Token => FieldType::Token,
        FieldKind::TokenSeq => FieldType::TokenSeq,
        FieldKind::Float => FieldType::Float,
        FieldKind::FloatSeq => FieldType::FloatSeq,
    }
}

fn side_fields(t: Option<&Table>, side: FieldSide, prefix: &str, out: &mut Vec<FieldSchema>) {
    let Some(t) = t else { return };
    for f in &t.fields {
        out.push(FieldSchema {
            name: format!("{prefix}.{}", f.name).into(),
            side,
            ty: field_type(f.kind),
            role: f.role.as_str().into(),
            vocab: if f.kind.is_token() {
                f.vocab_size() as u64
            } else {
                0
            },
            dim: f.dim() as u64,
        });
    }
}

fn by_user(n: usize, rows: impl Iterator<Item = (u32, u32)>) -> Vec<Vec<u32>> {
    let mut v = vec![Vec::new(); n];
    for (u, i) in rows {
        v[u as usize].push(i);
    }
    for l in &mut v {
        l.sort_unstable();
        l.dedup();
    }
    v
}

impl Data {
    /// Load and split.
    pub fn load(cfg: DataConfig, repo_root: &Path) -> Result<Data, String> {
        let mut roles = Vec::new();
        for (f, r) in &cfg.roles {
            let role = Role::parse(r).ok_or_else(|| {
                format!(
                    "unknown role '{r}' for field '{f}'; valid roles: {}",
                    Role::ALL
                        .iter()
                        .map(|r| r.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            roles.push((f.clone(), role));
        }
        let ds = if cfg.source == "bundled" {
            let mut opts = ds::synthetic::synth_options();
            opts.roles.extend(roles);
            opts.drop_fields = cfg.drop_fields.clone();
            ds::load_atomic(
                &ds::synthetic::bundled_dir(),
                ds::synthetic::BUNDLED_NAME,
                &opts,
            )
        } else {
            let (dir, stem) = resolve_source(&cfg.source, repo_root)?;
            let opts = AtomicOptions {
                roles,
                drop_fields: cfg.drop_fields.clone(),
                ..AtomicOptions::default()
            };
            ds::load_atomic(&dir, &stem, &opts)
        }
        .map_err(|e| e.to_string())?;
        Data::from_dataset(ds, cfg)
    }

    /// Split and index a loaded data set.
    pub fn from_dataset(ds: Dataset, cfg: DataConfig) -> Result<Data, String> {
        let split = match cfg.split.as_str() {
            "chrono_global" => ds::chrono_global(&ds, cfg.ratios),
            "chrono_user" => ds::chrono_per_user(&ds, cfg.ratios),
            "random" => ds::random_split(&ds, cfg.ratios, cfg.seed),
            other => {
                return Err(format!(
                    "unknown split '{other}' (valid: chrono_global, chrono_user, random)"
                ))
            }
        }
        .map_err(|e| e.to_string())?;
        let pos = |rows: &[usize]| -> Result<Vec<usize>, String> {
            match cfg.positive_threshold {
                Some(t) => ds::threshold_positive(&ds, rows, t).map_err(|e| e.to_string()),
                None => Ok(rows.to_vec()),
            }
        };
        let (users, items) = (ds.user_col(), ds.item_col());
        let pairs = |rows: &[usize]| {
            rows.iter()
                .map(|&r| (users[r], items[r]))
                .collect::<Vec<_>>()
        };
        let train_pos = pairs(&pos(&split.train)?);
        if train_pos.is_empty() {
            return Err("the training split has no positive interactions".into());
        }
        let n = ds.n_users;
        let mut fields = Vec::new();
        side_fields(ds.users.as_ref(), FieldSide::User, "user", &mut fields);
        side_fields(ds.items.as_ref(), FieldSide::Item, "item", &mut fields);
        let schema = Schema {
            n_users: ds.n_users as u64,
            n_items: ds.n_items as u64,
            fields: fields.into(),
            history_len: 0,
        };
        Ok(Data {
            name: ds.name.clone(),
            train_seen: by_user(n, pairs(&split.train).into_iter()),
            valid_pos: by_user(n, pairs(&pos(&split.valid)?).into_iter()),
            test_pos: by_user(n, pairs(&pos(&split.test)?).into_iter()),
            valid_seen: by_user(n, pairs(&split.valid).into_iter()),
            train_pos,
            schema,
            split,
            ds,
            config: cfg,
        })
    }

    /// Positives of a part, per user.
    pub fn positives(&self, part: Part) -> &[Vec<u32>] {
        match part {
            Part::Valid => &self.valid_pos,
            Part::Test => &self.test_pos,
        }
    }

    /// Add the feature fields of `users` / `items` to a batch.
    pub fn add_features(
        &self,
        batch: &mut Batch,
        users: &[u32],
        items: Option<&[u32]>,
        device: &Device,
    ) -> Result<(), String> {
        if let Some(t) = &self.ds.users {
            add_table(batch, "user", t, users, device)?;
        }
        if let (Some(t), Some(items)) = (&self.ds.items, items) {
            add_table(batch, "item", t, items, device)?;
        }
        Ok(())
    }

    /// A batch of (user, item) pairs with ids and features (no labels).
    pub fn pair_batch(
        &self,
        users: &[u32],
        items: &[u32],
        device: &Device,
    ) -> Result<Batch, String> {
        let mut b = Batch::default();
        b.inputs.insert("user".into(), ids_tensor(users, device)?);
        b.inputs.insert("item".into(), ids_tensor(items, device)?);
        self.add_features(&mut b, users, Some(items), device)?;
        Ok(b)
    }

    /// A batch of users only (for `score_all`).
    pub fn user_batch(&self, users: &[u32], device: &Device) -> Result<Batch, String> {
        let mut b = Batch::default();
        b.inputs.insert("user".into(), ids_tensor(users, device)?);
        self.add_features(&mut b, users, None, device)?;
        Ok(b)
    }
}

/// A 1-D u32 tensor.
pub fn ids_tensor(ids: &[u32], device: &Device) -> Result<Tensor, String> {
    Tensor::from_slice(ids, ids.len(), device).map_err(|e| e.to_string())
}

fn add_table(
    batch: &mut Batch,
    prefix: &str,
    t: &Table,
    rows: &[u32],
    device: &Device,
) -> Result<(), String> {
    let b = rows.len();
    for (meta, col) in t.fields.iter().zip(&t.columns) {
        let name = format!("{prefix}.{}", meta.name);
        let te = |r: candle_core::Result<Tensor>| r.map_err(|e| format!("{name}: {e}"));
        match col {
            Column::Token(v) => {
                let x: Vec<u32> = rows.iter().map(|&r| v[r as usize]).collect();
                batch
                    .inputs
                    .insert(name.clone(), te(Tensor::from_vec(x, b, device))?);
            }
            Column::TokenSeq { .. } => {
                let len = rows
                    .iter()
                    .map(|&r| col.seq(r as usize).len())
                    .max()
                    .unwrap_or(0)
                    .max(1);
                let mut x = vec![0u32; b * len];
                let mut m = vec![0f32; b * len];
                for (k, &r) in rows.iter().enumerate() {
                    for (j, &id) in col.seq(r as usize).iter().enumerate() {
                        x[k * len + j] = id;
                        m[k * len + j] = 1.0;
                    }
                }
                batch
                    .inputs
                    .insert(name.clone(), te(Tensor::from_vec(x, (b, len), device))?);
                batch.inputs.insert(
                    format!("{name}.mask"),
                    te(Tensor::from_vec(m, (b, len), device))?,
                );
            }
            Column::Float(v) => {
                let x: Vec<f32> = rows.iter().map(|&r| v[r as usize]).collect();
                batch
                    .inputs
                    .insert(name.clone(), te(Tensor::from_vec(x, b, device))?);
            }
            Column::Float64(v) => {
                // tensors are f32; the f64 column keeps timestamps exact on the data side
                let x: Vec<f32> = rows.iter().map(|&r| v[r as usize] as f32).collect();
                batch
                    .inputs
                    .insert(name.clone(), te(Tensor::from_vec(x, b, device))?);
            }
            Column::FloatSeq { .. } => {
                let d = meta.dim().max(1);
                let mut x = vec![0f32; b * d];
                for (k, &r) in rows.iter().enumerate() {
                    for (j, &v) in col.float_seq(r as usize).iter().take(d).enumerate() {
                        x[k * d + j] = v;
                    }
                }
                batch
                    .inputs
                    .insert(name.clone(), te(Tensor::from_vec(x, (b, d), device))?);
            }
        }
    }
    Ok(())
}
