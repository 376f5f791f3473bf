//! A data set prepared for training and evaluation: the loaded [`Dataset`],
//! its split, positives, the schema components see, and batch assembly
//! (ids, labels and feature fields as tensors).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use causalrec_datasets::{
    self as ds, AtomicOptions, Column, Dataset, FieldKind, Role, Split, Table,
};
use causalrec_sdk::component::catalog_input;
use causalrec_sdk::{DataColumn, DataPart, FieldSchema, FieldSide, FieldType, Schema, TrainData};
use serde::{Deserialize, Serialize};

use crate::exec::Batch;
use crate::history::Histories;
use crate::pair_filter::PairFilter;

/// How to load and split a data set (the recipe's `dataset(..)` options).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataConfig {
    /// `bundled` (the synthetic quick-start set), `ml-100k`, or a folder of RecBole atomic files.
    pub source: String,
    /// `chrono_global`, `chrono_user`, `random`, `loo`, `given`, or
    /// `chrono_clicks` (HCR's protocol: the earliest `ratios[0]` of all
    /// interactions by time train; of the later ones, each user's liked
    /// rows, at or above `positive_threshold`, are cut in time order into
    /// validation and test by `ratios[1] : ratios[2]`, at least one in test;
    /// later rows that are not liked go to no part).
    pub split: String,
    /// Train, validation and test shares (sum 1).
    pub ratios: [f64; 3],
    /// Ratings (or, with `label`, label values) >= this are positives ("likes");
    /// `None` makes every interaction positive.
    pub positive_threshold: Option<f32>,
    /// Which training interactions are training positives: the liked ones
    /// (`threshold`, the default) or every one, a click (`all`; then
    /// `positive_threshold` still defines the positives of validation and
    /// test, and [`Data::train_pos_like`] flags the liked training positives).
    #[serde(default)]
    pub train_positives: TrainPositives,
    /// Extra roles for fields, e.g. `("class", "group")`.
    pub roles: Vec<(String, String)>,
    /// Feature fields to leave out when loading.
    pub drop_fields: Vec<String>,
    pub seed: u64,
    /// Pointwise training on labelled rows: the name of the interaction
    /// table's label column (e.g. CTAR's `islike`, OBD's `click`). `None`
    /// trains on positives with sampled negatives (implicit feedback).
    #[serde(default)]
    pub label: Option<String>,
    /// With the `given` split: the part to train on (default `train`);
    /// `a+b` trains on the union of parts `a` and `b`.
    #[serde(default)]
    pub train_part: Option<String>,
    /// Reader options of typed sources (e.g. CTAR's `task`), as strings.
    #[serde(default)]
    pub reader: Vec<(String, String)>,
    /// Maximum history length `L` for backbones that read histories.
    #[serde(default = "default_history")]
    pub history: usize,
    /// Dense item features to derive: (new field, source item field, hash
    /// buckets; 0 = multi-hot over the source's vocabulary, or the source
    /// as it is when it is already dense: float / float_seq).
    #[serde(default)]
    pub modalities: Vec<(String, String, usize)>,
    /// Dense item feature files (`.npy`: one field named after the file;
    /// `.npz`: one field per array), row `i` = item `i`, role `modality`.
    #[serde(default)]
    pub item_features: Vec<PathBuf>,
    /// Impression lists for a rating log (`window` seconds, `like`
    /// threshold): adds the columns `impression` and `click`
    /// ([`ds::impressions::chrono_window_impressions`]).
    #[serde(default)]
    pub impressions: Option<(f64, f32)>,
    /// A token interaction column whose values name the data set's parts
    /// ([`ds::parts_from_column`]; e.g. `policy` with values `train` /
    /// `test` for `split: "given"`), replacing parts the reader gave.
    #[serde(default)]
    pub parts_column: Option<String>,
    /// With `split: "given"` and no given `valid` part: the share of the
    /// training rows moved, seeded by `seed`, to validation
    /// ([`ds::hold_out_valid`]; CP2Rec's 8:2 train/validation protocol).
    #[serde(default)]
    pub valid_share: Option<f64>,
    /// Interaction columns that become context feature fields
    /// `inter.<name>` ([`FieldSide::Context`]); batches of interaction rows
    /// carry them (pointwise training, every row-scored evaluation).
    #[serde(default)]
    pub context: Vec<String>,
    /// Item statistics from the training rows ([`ds::ItemStat`]: `exposure`,
    /// `ctr`), added as float item fields `stat_<name>` with role `proxy`.
    #[serde(default)]
    pub item_stats: Vec<String>,
    /// Read the parsed data through the binary cache beside the source
    /// files (default on; [`load_dataset_cached`]).
    #[serde(default = "default_cache")]
    pub cache: bool,
}

fn default_cache() -> bool {
    true
}

fn default_history() -> usize {
    50
}

/// The `train_positives` option: which training interactions are positives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainPositives {
    /// The liked ones (at or above `positive_threshold`).
    #[default]
    Threshold,
    /// Every training interaction (clicks); likes only define evaluation positives.
    All,
}

impl TrainPositives {
    /// The valid option values.
    pub const VALUES: [&'static str; 2] = ["all", "threshold"];

    /// Parse an option value, naming the option and the valid values on error.
    pub fn parse(s: &str) -> Result<TrainPositives, String> {
        match s {
            "all" => Ok(TrainPositives::All),
            "threshold" => Ok(TrainPositives::Threshold),
            other => Err(format!(
                "unknown train_positives '{other}' (valid: {})",
                Self::VALUES.join(", ")
            )),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: "bundled".into(),
            split: "chrono_user".into(),
            ratios: [0.8, 0.1, 0.1],
            positive_threshold: Some(4.0),
            train_positives: TrainPositives::Threshold,
            roles: Vec::new(),
            drop_fields: Vec::new(),
            seed: 2024,
            label: None,
            train_part: None,
            reader: Vec::new(),
            history: default_history(),
            modalities: Vec::new(),
            item_features: Vec::new(),
            impressions: None,
            parts_column: None,
            valid_share: None,
            context: Vec::new(),
            item_stats: Vec::new(),
            cache: true,
        }
    }
}

/// A prepared data set.
pub struct Data {
    /// Unique per loaded data set in this process (keys `prepare`).
    pub id: u64,
    pub name: String,
    pub ds: Dataset,
    pub split: Split,
    pub schema: Schema,
    /// Training positives as (user, item).
    pub train_pos: Vec<(u32, u32)>,
    /// The interaction row of each training positive.
    pub train_pos_rows: Vec<usize>,
    /// With `train_positives: "all"`: per training positive, 1.0 if it is
    /// liked (at or above `positive_threshold`), else 0.0; `None` otherwise.
    pub train_pos_like: Option<Vec<f32>>,
    /// Per-user positive sequences for history inputs.
    pub histories: Histories,
    /// The time of every interaction row ([`row_times`]).
    pub row_times: Vec<f64>,
    /// Per user, sorted items seen in training (any label): excluded from sampling and ranking.
    pub train_seen: Vec<Vec<u32>>,
    /// The (user, item) pairs of `train_seen` in a Bloom filter, asked
    /// before a user's list is searched ([`Data::seen_in_training`]).
    pub train_filter: PairFilter,
    /// Per user, sorted positives of the validation / test split.
    pub valid_pos: Vec<Vec<u32>>,
    pub test_pos: Vec<Vec<u32>>,
    /// Per user, sorted items of the validation split (any label): excluded when ranking on test.
    pub valid_seen: Vec<Vec<u32>>,
    /// Pointwise mode: the label of every interaction row (from `config.label`).
    pub labels: Option<Vec<f32>>,
    pub config: DataConfig,
    /// Whether the parsed data came from the binary cache ([`load_dataset_cached`]).
    pub cache: ds::CacheUse,
    /// Every item's feature inputs (`catalog.item.<field>`), made at the
    /// first all-ranking batch on a device and handed to later ones.
    catalog: std::sync::Mutex<Option<(Device, BTreeMap<String, Tensor>)>>,
}

static NEXT_DATA_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Which split to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Part {
    Valid,
    Test,
}

/// The value of reader option `key` (`--set key=value`, a recipe's `reader`).
fn reader_option<'a>(cfg: &'a DataConfig, key: &str) -> Option<&'a str> {
    cfg.reader
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The reader a configuration names: of a folder `atomic` (the default),
/// `ctar`, `movielens`, `kuairec`, `mind` or `obd`, of a file `amazon`
/// (reader option `format`); the named sources `ctar` and `obd` are the
/// releases in ../shared/data.
pub fn source_format(cfg: &DataConfig) -> &str {
    match (cfg.source.as_str(), reader_option(cfg, "format")) {
        ("ctar", _) => "ctar",
        ("obd", _) => "obd",
        (_, Some(f)) => f,
        (_, None) => "atomic",
    }
}

/// Load the data set a configuration names (no splitting); `roles` apply
/// to the loaded fields of every format ([`Dataset::set_roles`]: an error
/// for a field no table has).
pub fn load_dataset(cfg: &DataConfig, repo_root: &Path) -> Result<Dataset, String> {
    load_dataset_cached(cfg, repo_root).map(|(ds, _)| ds)
}

/// [`load_dataset`] through the binary cache of parsed data
/// ([`ds::cached_with_status`], `.causalrec-cache/` beside the source files)
/// when `cfg.cache` is on and the source is a folder or file of data
/// (not `bundled`); says whether the cache was used.
pub fn load_dataset_cached(
    cfg: &DataConfig,
    repo_root: &Path,
) -> Result<(Dataset, ds::CacheUse), String> {
    let roles = parse_roles(cfg)?;
    let sources = if cfg.cache {
        cache_sources(cfg, repo_root)
    } else {
        Vec::new()
    };
    let paths: Vec<&Path> = sources.iter().map(|p| p.as_path()).collect();
    // Everything the reader's result depends on besides the files' contents.
    let key = format!(
        "host {} reader={:?} roles={:?} drop={:?} modalities={:?}",
        source_format(cfg),
        cfg.reader,
        cfg.roles,
        cfg.drop_fields,
        cfg.modalities
    );
    let mut failure = None;
    let loaded = ds::cached_with_status(&paths, &key, || {
        load_source(cfg, repo_root, roles.clone()).map_err(|e| {
            failure = Some(e.clone());
            ds::DataError::Config(e)
        })
    });
    let (mut ds, used) = match (loaded, failure) {
        (Ok(r), _) => r,
        (Err(_), Some(e)) => return Err(e),
        (Err(e), None) => return Err(e.to_string()),
    };
    ds.set_roles(&roles).map_err(|e| e.to_string())?;
    Ok((ds, used))
}

/// The files a source's data set is read from (their size and time key the
/// cache): every visible file of its folder, or of an atomic `folder/stem`
/// the files `stem.*`, or the file itself; none for `bundled` or a source
/// that does not resolve (the reader then reports it).
fn cache_sources(cfg: &DataConfig, repo_root: &Path) -> Vec<PathBuf> {
    if cfg.source == "bundled" {
        return Vec::new();
    }
    let file = repo_root.join(&cfg.source);
    if source_format(cfg) == "amazon" {
        return if file.is_file() {
            vec![file]
        } else {
            Vec::new()
        };
    }
    let Ok((dir, stem)) = resolve_source(&cfg.source, repo_root) else {
        return Vec::new();
    };
    let whole_folder = dir.file_name().and_then(|s| s.to_str()) == Some(stem.as_str());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|s| s.to_str()).unwrap_or(".");
            !name.starts_with('.')
                && (whole_folder || p.file_stem().and_then(|s| s.to_str()) == Some(stem.as_str()))
        })
        .collect();
    files.sort();
    files
}

/// The `roles` option as typed roles; the error names the field and lists the roles.
fn parse_roles(cfg: &DataConfig) -> Result<Vec<(String, Role)>, String> {
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
    Ok(roles)
}

/// The data set of the configured source and format, as its reader gives
/// it (`roles` go to the atomic reader, which types fields by them).
fn load_source(
    cfg: &DataConfig,
    repo_root: &Path,
    roles: Vec<(String, Role)>,
) -> Result<Dataset, String> {
    let reader_opt = |k: &str| reader_option(cfg, k);
    let format = source_format(cfg);
    if let Some((k, _)) = cfg
        .reader
        .iter()
        .find(|(k, _)| k != "format" && (format != "ctar" || k != "task"))
    {
        return Err(format!(
            "data set '{}' takes no reader option '{k}'",
            cfg.source
        ));
    }
    if cfg.source == "bundled" && format != "atomic" {
        return Err(format!(
            "the bundled data set is atomic files, not '{format}'"
        ));
    }
    // Fields that dense features are built from are dropped after building.
    let mut cfg = cfg.clone();
    cfg.drop_fields.retain(|f| {
        !cfg.modalities
            .iter()
            .any(|(_, from, _)| from.split('+').any(|src| src.trim() == f))
    });
    let cfg = &cfg;
    match (cfg.source.as_str(), format) {
        ("bundled", _) => {
            let mut opts = ds::synthetic::synth_options();
            opts.roles.extend(roles);
            opts.drop_fields = cfg.drop_fields.clone();
            ds::load_atomic(
                &ds::synthetic::bundled_dir(),
                ds::synthetic::BUNDLED_NAME,
                &opts,
            )
        }
        (source, "ctar") => {
            let (dir, _) = resolve_source(source, repo_root)?;
            let task = match reader_opt("task").unwrap_or("user_tag") {
                "user_tag" => ds::CtarTask::UserTag,
                "rating" => ds::CtarTask::Rating,
                other => {
                    return Err(format!(
                        "ctar: task must be 'user_tag' or 'rating', got '{other}'"
                    ))
                }
            };
            ds::load_ctar(&dir, &ds::CtarOptions { task })
        }
        (_, "atomic") => {
            let (dir, stem) = resolve_source(&cfg.source, repo_root)?;
            let opts = AtomicOptions {
                roles,
                drop_fields: cfg.drop_fields.clone(),
                ..AtomicOptions::default()
            };
            ds::load_atomic(&dir, &stem, &opts)
        }
        (source, "movielens") => {
            let (dir, _) = resolve_source(source, repo_root)?;
            ds::load_movielens(&dir, &ds::MovieLensOptions::default())
        }
        (source, "kuairec") => {
            let (dir, _) = resolve_source(source, repo_root)?;
            ds::load_kuairec(&dir, &ds::KuaiRecOptions::default())
        }
        (source, "mind") => {
            let (dir, _) = resolve_source(source, repo_root)?;
            ds::load_mind(&dir, &ds::MindOptions::default())
        }
        // A folder holding the `bts` (train) and `random` (test) logs.
        (source, "obd") => {
            let (dir, _) = resolve_source(source, repo_root)?;
            ds::load_obd_pair(&dir)
        }
        (source, "amazon") => {
            let file = repo_root.join(source);
            if !file.is_file() {
                return Err(format!(
                    "amazon: '{}' is not a ratings file (user,item,rating,timestamp lines)",
                    file.display()
                ));
            }
            ds::load_amazon(&file, None, &ds::AmazonOptions::default())
        }
        (_, other) => {
            return Err(format!(
                "unknown data format '{other}' (valid: atomic, ctar, movielens, kuairec, mind, obd, amazon)"
            ))
        }
    }
    .map_err(|e| e.to_string())
}

/// Sources named by the host rather than by a path.
pub fn is_named_source(source: &str) -> bool {
    source == "bundled" || SHARED_SOURCES.contains(&source)
}

/// Real data sets found by name under `datasets/data/` or `../shared/data/`.
const SHARED_SOURCES: [&str; 3] = ["ml-100k", "ctar", "obd"];

/// Resolve a data source name to a folder and a file stem.
pub fn resolve_source(source: &str, repo_root: &Path) -> Result<(PathBuf, String), String> {
    let candidates: Vec<PathBuf> = if SHARED_SOURCES.contains(&source) {
        vec![
            repo_root.join("datasets/data").join(source),
            repo_root.join("../shared/data").join(source),
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
        // `folder/stem` names atomic files `folder/stem.inter`, .. (a
        // simulator's output folder holds several data sets).
        if !c.is_dir() && c.with_extension("inter").is_file() {
            if let (Some(dir), Some(stem)) = (c.parent(), c.file_name().and_then(|s| s.to_str())) {
                return Ok((dir.to_path_buf(), stem.to_string()));
            }
        }
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

fn field_schema(f: &causalrec_datasets::FieldMeta, side: FieldSide, prefix: &str) -> FieldSchema {
    FieldSchema {
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
    }
}

fn side_fields(t: Option<&Table>, side: FieldSide, prefix: &str, out: &mut Vec<FieldSchema>) {
    let Some(t) = t else { return };
    out.extend(t.fields.iter().map(|f| field_schema(f, side, prefix)));
}

/// The `item_stats` option: each statistic from the training rows as the
/// float item field `stat_<name>` (role `proxy`); `clicks` are the positive
/// training rows of pointwise data (`ctr` needs them).
fn add_item_stats(
    ds: &mut Dataset,
    names: &[String],
    train: &[usize],
    clicks: Option<&[usize]>,
) -> Result<(), String> {
    if names.is_empty() {
        return Ok(());
    }
    let stats = names
        .iter()
        .map(|s| ds::ItemStat::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let clicked = match clicks {
        Some(rows) => {
            let mut c = vec![false; ds.n_inter()];
            for &r in rows {
                c[r] = true;
            }
            Some(c)
        }
        None if stats.contains(&ds::ItemStat::Ctr) => {
            return Err(
                "item_stats 'ctr' needs labelled rows: dataset(.., #{label: \"<column>\"})".into(),
            )
        }
        None => None,
    };
    ds::add_item_stats(ds, &stats, train, clicked.as_deref()).map_err(|e| e.to_string())
}

/// The `context` option's interaction columns as fields `inter.<name>`
/// ([`FieldSide::Context`], the column's type, vocabulary and role). The
/// user / item id columns and the label column cannot be context.
fn context_fields(ds: &Dataset, cfg: &DataConfig) -> Result<Vec<FieldSchema>, String> {
    let mut out: Vec<FieldSchema> = Vec::new();
    for name in &cfg.context {
        let (_, f) = ds.inter.field(name).ok_or_else(|| {
            format!(
                "context: data set '{}' has no interaction column '{name}' (interaction columns: {})",
                ds.name,
                ds.inter.field_names()
            )
        })?;
        if matches!(f.role, Role::User | Role::Item) || cfg.label.as_deref() == Some(name) {
            let what = if matches!(f.role, Role::User | Role::Item) {
                format!("the {} id column", f.role)
            } else {
                "the label column".to_string()
            };
            return Err(format!(
                "context: column '{name}' of data set '{}' is {what}; name other interaction columns (interaction columns: {})",
                ds.name,
                ds.inter.field_names()
            ));
        }
        let field = field_schema(f, FieldSide::Context, "inter");
        if !out.iter().any(|o| o.name == field.name) {
            out.push(field);
        }
    }
    Ok(out)
}

/// 1.0 for each of `rows` that is in `liked`, else 0.0.
fn like_flags(rows: &[usize], liked: &[usize]) -> Vec<f32> {
    let liked: std::collections::HashSet<usize> = liked.iter().copied().collect();
    rows.iter()
        .map(|r| if liked.contains(r) { 1.0 } else { 0.0 })
        .collect()
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
    /// Whether `user` has `item` in training (`train_seen`).
    pub fn seen_in_training(&self, user: u32, item: u32) -> bool {
        self.train_filter.may_contain(user, item)
            && self.train_seen[user as usize].binary_search(&item).is_ok()
    }

    /// Load and split.
    pub fn load(cfg: DataConfig, repo_root: &Path) -> Result<Data, String> {
        let (ds, cache) = load_dataset_cached(&cfg, repo_root)?;
        let mut data = Data::from_dataset(ds, cfg)?;
        data.cache = cache;
        Ok(data)
    }

    /// Split and index a loaded data set.
    pub fn from_dataset(mut ds: Dataset, cfg: DataConfig) -> Result<Data, String> {
        if let Some((window, like)) = cfg.impressions {
            ds::impressions::chrono_window_impressions(&mut ds, window, like)
                .map_err(|e| e.to_string())?;
        }
        for f in &cfg.item_features {
            ds::attach_item_features(&mut ds, f, &ds::NpyOptions::default())
                .map_err(|e| e.to_string())?;
        }
        for (name, from, buckets) in &cfg.modalities {
            let enc = match buckets {
                0 => ds::DenseEncoding::MultiHot,
                &d => ds::DenseEncoding::HashedWords(d),
            };
            ds::add_dense_item_feature(&mut ds, name, from, enc).map_err(|e| e.to_string())?;
        }
        if let Some(items) = ds.items.as_mut() {
            for (name, from, _) in &cfg.modalities {
                for src in from.split('+').map(str::trim) {
                    if name != src && cfg.drop_fields.iter().any(|f| f == src) {
                        items.remove_field(src);
                    }
                }
            }
        }
        if let Some(col) = &cfg.parts_column {
            ds::parts_from_column(&mut ds, col).map_err(|e| e.to_string())?;
        }
        let labels = match &cfg.label {
            None => None,
            Some(name) => Some(label_column(&ds, name)?),
        };
        // Positives ("likes", for ranking and negative sampling): in
        // pointwise mode the label column at or above the threshold, else
        // the rating.
        let pos = |rows: &[usize]| -> Result<Vec<usize>, String> {
            match (cfg.positive_threshold, &labels) {
                (Some(t), Some(y)) => Ok(rows.iter().copied().filter(|&r| y[r] >= t).collect()),
                (Some(t), None) => ds::threshold_positive(&ds, rows, t).map_err(|e| e.to_string()),
                (None, _) => Ok(rows.to_vec()),
            }
        };
        let mut split = match cfg.split.as_str() {
            "chrono_global" => ds::chrono_global(&ds, cfg.ratios),
            "chrono_clicks" => {
                let mut liked = vec![false; ds.n_inter()];
                for r in pos(&(0..ds.n_inter()).collect::<Vec<_>>())? {
                    liked[r] = true;
                }
                ds::chrono_clicks(&ds, cfg.ratios, |r| liked[r])
            }
            "chrono_user" => ds::chrono_per_user(&ds, cfg.ratios),
            "random" => ds::random_split(&ds, cfg.ratios, cfg.seed),
            "loo" => ds::leave_one_out(&ds),
            "given" => ds::given(&ds),
            other => {
                return Err(format!(
                "unknown split '{other}' (valid: chrono_global, chrono_user, chrono_clicks, random, loo, given)"
            ))
            }
        }
        .map_err(|e| e.to_string())?;
        if let Some(p) = &cfg.train_part {
            if cfg.split != "given" {
                return Err(format!(
                    "train_part '{p}' needs split: \"given\" (the split is '{}')",
                    cfg.split
                ));
            }
            // `a+b` trains on the union of parts a and b.
            let mut rows = Vec::new();
            for name in p.split('+').map(str::trim) {
                rows.extend(ds.parts.get(name).ok_or_else(|| {
                    format!(
                        "data set '{}' has no part '{name}' (parts: {})",
                        ds.name,
                        ds.parts.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })?);
            }
            rows.sort_unstable();
            rows.dedup();
            split.train = rows;
        }
        if let Some(share) = cfg.valid_share {
            if cfg.split != "given" {
                return Err(format!(
                    "valid_share needs split: \"given\" (the split is '{}'; computed splits take ratios)",
                    cfg.split
                ));
            }
            if ds.parts.contains_key("valid") {
                return Err(format!(
                    "valid_share: data set '{}' gives a 'valid' part already; drop valid_share",
                    ds.name
                ));
            }
            ds::hold_out_valid(&mut split, share, cfg.seed).map_err(|e| e.to_string())?;
        }
        let (train_pos_rows, train_pos_like) = match cfg.train_positives {
            TrainPositives::Threshold => (pos(&split.train)?, None),
            TrainPositives::All => {
                let liked = pos(&split.train)?;
                let flags = like_flags(&split.train, &liked);
                (split.train.clone(), Some(flags))
            }
        };
        let (valid_pos_rows, test_pos_rows) = (pos(&split.valid)?, pos(&split.test)?);
        // Item statistics: a click is a positive training row (pointwise data).
        let clicks = match &labels {
            Some(_) if !cfg.item_stats.is_empty() => Some(pos(&split.train)?),
            _ => None,
        };
        add_item_stats(&mut ds, &cfg.item_stats, &split.train, clicks.as_deref())?;
        let (users, items) = (ds.user_col(), ds.item_col());
        let pairs = |rows: &[usize]| {
            rows.iter()
                .map(|&r| (users[r], items[r]))
                .collect::<Vec<_>>()
        };
        let train_pos = pairs(&train_pos_rows);
        if train_pos.is_empty() {
            return Err("the training split has no positive interactions".into());
        }
        let n = ds.n_users;
        let mut fields = Vec::new();
        side_fields(ds.users.as_ref(), FieldSide::User, "user", &mut fields);
        side_fields(ds.items.as_ref(), FieldSide::Item, "item", &mut fields);
        fields.extend(context_fields(&ds, &cfg)?);
        let schema = Schema {
            n_users: ds.n_users as u64,
            n_items: ds.n_items as u64,
            fields: fields.into(),
            history_len: cfg.history as u64,
        };
        let row_times = row_times(&ds);
        let timed: Vec<(u32, u32, f64)> = train_pos_rows
            .iter()
            .zip(&train_pos)
            .map(|(&r, &(u, i))| (u, i, row_times[r]))
            .collect();
        let histories = Histories::build(ds.n_users, &timed, cfg.history);
        let train_seen = by_user(n, pairs(&split.train).into_iter());
        let seen_pairs = train_seen
            .iter()
            .enumerate()
            .flat_map(|(u, items)| items.iter().map(move |&i| (u as u32, i)));
        let train_filter = PairFilter::new(seen_pairs.clone().count(), seen_pairs);
        Ok(Data {
            name: ds.name.clone(),
            train_filter,
            train_seen,
            valid_pos: by_user(n, pairs(&valid_pos_rows).into_iter()),
            test_pos: by_user(n, pairs(&test_pos_rows).into_iter()),
            valid_seen: by_user(n, pairs(&split.valid).into_iter()),
            labels,
            cache: ds::CacheUse::Uncached,
            catalog: Default::default(),
            train_pos,
            train_pos_rows,
            train_pos_like,
            histories,
            row_times,
            id: NEXT_DATA_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            schema,
            split,
            ds,
            config: cfg,
        })
    }

    /// The rows of a named part: the data's own parts (e.g. `test_2`) or
    /// the split's `train`, `valid`, `test`.
    pub fn part_rows(&self, name: &str) -> Result<&[usize], String> {
        match name {
            "train" => return Ok(&self.split.train),
            "valid" => return Ok(&self.split.valid),
            "test" if !self.ds.parts.contains_key("test") => return Ok(&self.split.test),
            _ => {}
        }
        self.ds.parts.get(name).map(Vec::as_slice).ok_or_else(|| {
            let mut names: Vec<&str> = vec!["train", "valid", "test"];
            names.extend(self.ds.parts.keys().map(String::as_str));
            names.sort_unstable();
            names.dedup();
            format!(
                "no part '{name}' in data set '{}' (parts: {})",
                self.name,
                names.join(", ")
            )
        })
    }

    /// Pointwise mode: a batch of interaction rows with ids, `label`, item
    /// and user features, and every other interaction column as `inter.<name>`.
    pub fn row_batch(&self, rows: &[usize], device: &Device) -> Result<Batch, String> {
        let labels = self
            .labels
            .as_ref()
            .ok_or("row batches need a label column: dataset(.., #{label: \"<column>\"})")?;
        let (u, i) = (self.ds.user_col(), self.ds.item_col());
        let users: Vec<u32> = rows.iter().map(|&r| u[r]).collect();
        let items: Vec<u32> = rows.iter().map(|&r| i[r]).collect();
        let mut b = self.pair_batch(&users, &items, device)?;
        let y: Vec<f32> = rows.iter().map(|&r| labels[r]).collect();
        b.inputs.insert(
            "label".into(),
            Tensor::from_vec(y, rows.len(), device).map_err(|e| e.to_string())?,
        );
        let rows32: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        add_table(&mut b, "inter", &self.ds.inter, &rows32, device)?;
        Ok(b)
    }

    /// Add the `context` fields (`inter.<name>`) of interaction `rows` to
    /// a batch of those rows' (user, item) pairs; nothing without `context`.
    pub fn add_context(
        &self,
        batch: &mut Batch,
        rows: &[usize],
        device: &Device,
    ) -> Result<(), String> {
        if self.config.context.is_empty() {
            return Ok(());
        }
        let inter = &self.ds.inter;
        let cols = inter
            .fields
            .iter()
            .zip(&inter.columns)
            .filter(|(f, _)| self.config.context.contains(&f.name));
        let rows32: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
        add_columns(batch, "inter", cols, &rows32, device)
    }

    /// What components see in `prepare`: the interaction table, item
    /// features and parts (`train` = the rows training uses,
    /// `train_positive` = the training positives' rows, all of `train` with
    /// `train_positives: "all"`, `train_like` = the liked ones among them).
    pub fn train_data(&self) -> TrainData {
        let mut parts: Vec<DataPart> = self
            .ds
            .parts
            .iter()
            .filter(|(k, _)| k.as_str() != "train")
            .map(|(k, rows)| DataPart {
                name: k.as_str().into(),
                rows: rows.iter().map(|&r| r as u32).collect(),
            })
            .collect();
        parts.push(DataPart {
            name: "train".into(),
            rows: self.split.train.iter().map(|&r| r as u32).collect(),
        });
        parts.push(DataPart {
            name: "train_positive".into(),
            rows: self.train_pos_rows.iter().map(|&r| r as u32).collect(),
        });
        // The liked training rows: every training positive unless
        // `train_positives: "all"` made the positives clicks.
        let liked: Vec<u32> = match &self.train_pos_like {
            None => self.train_pos_rows.iter().map(|&r| r as u32).collect(),
            Some(flags) => self
                .train_pos_rows
                .iter()
                .zip(flags)
                .filter(|(_, &f)| f > 0.0)
                .map(|(&r, _)| r as u32)
                .collect(),
        };
        parts.push(DataPart {
            name: "train_like".into(),
            rows: liked.into(),
        });
        let inter = &self.ds.inter;
        let skip = |f: &causalrec_datasets::FieldMeta| matches!(f.role, Role::User | Role::Item);
        TrainData {
            n_users: self.ds.n_users as u64,
            n_items: self.ds.n_items as u64,
            user: self.ds.user_col().to_vec().into(),
            item: self.ds.item_col().to_vec().into(),
            label: self.labels.clone().unwrap_or_default().into(),
            inter: inter
                .fields
                .iter()
                .zip(&inter.columns)
                .filter(|(f, _)| !skip(f))
                .map(|(f, c)| data_column(f, c))
                .collect(),
            items: self
                .ds
                .items
                .iter()
                .flat_map(|t| t.fields.iter().zip(&t.columns))
                .map(|(f, c)| data_column(f, c))
                .collect(),
            parts: parts.into(),
        }
    }

    /// The `like` input of an implicit batch built from the training
    /// positives `idx` (indices into `train_pos`) followed by `n_negatives`
    /// sampled negatives: each positive's like flag, then 0 per negative.
    /// `None` unless `train_positives: "all"`.
    pub fn batch_like(&self, idx: &[usize], n_negatives: usize) -> Option<Vec<f32>> {
        let flags = self.train_pos_like.as_ref()?;
        let mut like: Vec<f32> = idx.iter().map(|&p| flags[p]).collect();
        like.resize(idx.len() + n_negatives, 0.0);
        Some(like)
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
        b.inputs.extend(self.catalog_inputs(device)?);
        Ok(b)
    }

    /// The feature fields of every item, in item id order, as the inputs
    /// `catalog.item.<field>` (with `.mask` for token bags): what a
    /// backbone whose score splits into a user and an item part (FM) needs
    /// to score every item with its features at once. Made once per device.
    pub fn catalog_inputs(&self, device: &Device) -> Result<BTreeMap<String, Tensor>, String> {
        let Some(t) = &self.ds.items else {
            return Ok(BTreeMap::new());
        };
        let mut made = self.catalog.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((d, inputs)) = made.as_ref() {
            if d.same_device(device) {
                return Ok(inputs.clone());
            }
        }
        let mut b = Batch::default();
        let items: Vec<u32> = (0..self.ds.n_items as u32).collect();
        add_table(&mut b, &catalog_input("item"), t, &items, device)?;
        *made = Some((device.clone(), b.inputs.clone()));
        Ok(b.inputs)
    }
}

/// The time of every interaction row: its timestamp, else its row index.
pub fn row_times(ds: &Dataset) -> Vec<f64> {
    match ds.timestamp_col() {
        Some(t) if t.len() == ds.n_inter() => t.into_owned(),
        _ => (0..ds.n_inter()).map(|r| r as f64).collect(),
    }
}

pub(crate) fn label_column(ds: &Dataset, name: &str) -> Result<Vec<f32>, String> {
    let col = ds.inter.column(name).ok_or_else(|| {
        format!(
            "data set '{}' has no label column '{name}' (interaction columns: {})",
            ds.name,
            ds.inter.field_names()
        )
    })?;
    col.as_floats().map(<[f32]>::to_vec).ok_or_else(|| {
        format!(
            "label column '{name}' of data set '{}' is not a float column",
            ds.name
        )
    })
}

fn data_column(f: &causalrec_datasets::FieldMeta, c: &Column) -> DataColumn {
    let mut d = DataColumn {
        name: f.name.as_str().into(),
        role: f.role.as_str().into(),
        vocab: f.vocab.iter().map(|v| v.as_str().into()).collect(),
        ..DataColumn::default()
    };
    match c {
        Column::Token(v) => d.tokens = v.clone().into(),
        Column::TokenSeq { offsets, values } => {
            d.tokens = values.clone().into();
            d.offsets = offsets.clone().into();
        }
        Column::Float(v) => d.floats = v.clone().into(),
        Column::Float64(v) => d.doubles = v.clone().into(),
        Column::FloatSeq { offsets, values } => {
            d.floats = values.clone().into();
            d.offsets = offsets.clone().into();
        }
    }
    d
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
    add_columns(batch, prefix, t.fields.iter().zip(&t.columns), rows, device)
}

/// Add `rows` of each column as the input `<prefix>.<field>` (with
/// `.mask` for token bags).
fn add_columns<'a>(
    batch: &mut Batch,
    prefix: &str,
    cols: impl IntoIterator<Item = (&'a causalrec_datasets::FieldMeta, &'a Column)>,
    rows: &[u32],
    device: &Device,
) -> Result<(), String> {
    let b = rows.len();
    for (meta, col) in cols {
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
