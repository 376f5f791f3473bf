//! Rhai recipes: the script API that wires data, components, training and
//! evaluation together, and the sandbox it runs in.
//!
//! API: `dataset(source[, #{..}])`, `backbone(name[, #{..}])`, `estimator(..)`,
//! `loss(..)`, `train(data, backbone_or_array, estimator[, #{..}])`,
//! `evaluate(run, "all_ranking" | "auc" | "pointwise" | "impressions"[, #{..}])`,
//! `print_table([title,] rows)`,
//! `setting(name, default)` (values from `--set`), `data_info(data)`,
//! `paired_t_test(a, b)`, `dcor(xs, ys)` (distance correlation of paired
//! vectors), `item_embeddings(run, table, ids)` (rows of a trained embedding
//! table), `plot_bars(file, #{..})`, `set_estimator(run, estimator(..))`
//! (a trained run under another inference rule, parameters kept),
//! `representations(run, #{part, max_rows})` (the estimator's named
//! per-example representations), `plot_pca(file, #{title, series})` (their
//! 2-D PCA as an SVG scatter plot).
//!
//! Labelled-row protocols: `evaluate(run, "pointwise", #{part, link})` and
//! `evaluate(run, "impressions", #{part, by, k})` (MIND's per-impression-list
//! AUC, MRR, nDCG@K over the rows of a part grouped by column `by`).
//!
//! All-ranking options (`evaluate` and `popularity`): `k`, `split`,
//! `groups` (an item column, or `"auto"` for the one with role `group`:
//! adds `ckl@K`), `rerank: #{method: "calibration" | "diversity" | "fairco",
//! lambda | factor, candidates}`, `drift_thresholds: [..]` (every metric
//! again as `<metric>|eta>t` for the users with interest drift above `t`),
//! `active_share: s` (every metric again over the top `s` of users by
//! training interactions, `|active`, and the rest, `|less_active`),
//! `time_subsets: k | #{k, from}` (every metric on each of `k`
//! chronological subsets of each user's held-out positives, `|period<j>`)
//! and `ratio_groups: #{num, den, high_share}` (normalized recall of the
//! items with the highest `num / den` training ratio and of the rest:
//! `nrecall@K|high_ratio`, `|low_ratio`).
//!
//! Sandbox ([`crate::sandbox`]): operation, call-depth, expression, string,
//! array and map limits; no file access except through these functions,
//! whose paths must resolve (links and `..` followed) inside the repository,
//! the shared data folder or the output folder, writes only inside the
//! output folder; `import` only of modules under `scripts/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::Device;
use causalrec_sdk::ComponentKind;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position, AST};
use serde::Serialize;

use crate::checkpoint::{config_hash, first_difference, Manifest, TrainingEntry};
use crate::data::{Data, DataConfig, Part, TrainPositives};
use crate::exec::store::TableState;
use crate::plugins::Registry;
use crate::protocols::RankingOptions;
use crate::report::{fmt_value, ReportRow, RunDir};
use crate::rerank::{Method, Reranker};
use crate::sandbox::{Folders, Limits};
use crate::train::{ComponentSpec, Components, Run, TrainConfig};

/// What a recipe run needs from the command line.
#[derive(Clone, Debug, Serialize)]
pub struct SessionConfig {
    pub recipe: PathBuf,
    pub repo_root: PathBuf,
    pub out: PathBuf,
    pub seed: u64,
    pub device: String,
    pub settings: BTreeMap<String, String>,
    /// Only parse and resolve names (`host check`).
    #[serde(skip)]
    pub check_only: bool,
}

/// Everything the script functions share.
pub struct Session {
    pub cfg: SessionConfig,
    pub registry: Arc<Registry>,
    pub device: Device,
    pub out: Option<Mutex<RunDir>>,
    pub resolved: Mutex<Vec<ResolvedCall>>,
    run_counter: Mutex<usize>,
    /// The run's `resume.json` as it grows, and the one a resumed run
    /// started from ([`Session::start_manifest`]).
    manifest: Mutex<Option<Manifest>>,
    resumed: Mutex<Option<Manifest>>,
    /// Trainings per run name so far (the manifest's keys).
    train_keys: Mutex<BTreeMap<String, usize>>,
}

/// One resolved `train` call, for `config.ron`.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedCall {
    pub run: String,
    pub data: DataConfig,
    pub backbones: Vec<ComponentSpec>,
    pub estimator: ComponentSpec,
    pub loss: ComponentSpec,
    pub train: TrainConfig,
}

/// A prepared data set handle in scripts.
#[derive(Clone)]
pub struct DataHandle(pub Arc<Data>);

/// A trained run handle in scripts.
#[derive(Clone)]
pub struct RunHandle {
    pub run: Arc<Mutex<Run>>,
    pub data: Arc<Data>,
    pub name: String,
}

type Res<T> = Result<T, Box<EvalAltResult>>;

fn fail<T>(msg: impl Into<String>, pos: Position) -> Res<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        pos,
    )))
}

/// The options `dataset(source, #{..})` takes.
pub const DATASET_OPTIONS: &[&str] = &[
    "split",
    "ratios",
    "positive_threshold",
    "train_positives",
    "roles",
    "drop",
    "seed",
    "label",
    "train_part",
    "task",
    "format",
    "history",
    "modalities",
    "item_features",
    "impressions",
    "parts_column",
    "valid_share",
    "context",
    "item_stats",
    "cache",
];

/// RON text of a Rhai value (component parameters cross the ABI as RON).
pub fn to_ron(v: &Dynamic) -> Result<String, String> {
    if v.is_unit() {
        return Ok("()".into());
    }
    if let Some(b) = v.clone().try_cast::<bool>() {
        return Ok(b.to_string());
    }
    if let Some(i) = v.clone().try_cast::<i64>() {
        return Ok(i.to_string());
    }
    if let Some(f) = v.clone().try_cast::<f64>() {
        return Ok(if f.fract() == 0.0 && f.is_finite() {
            format!("{f:.1}")
        } else {
            format!("{f}")
        });
    }
    if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        return ron::to_string(s.as_str()).map_err(|e| e.to_string());
    }
    if let Some(a) = v.clone().try_cast::<Array>() {
        let parts: Result<Vec<String>, String> = a.iter().map(to_ron).collect();
        return Ok(format!("[{}]", parts?.join(", ")));
    }
    if let Some(m) = v.clone().try_cast::<Map>() {
        let parts: Result<Vec<String>, String> = m
            .iter()
            .map(|(k, v)| {
                Ok(format!(
                    "{}: {}",
                    ron::to_string(k.as_str()).map_err(|e| e.to_string())?,
                    to_ron(v)?
                ))
            })
            .collect();
        return Ok(format!("{{{}}}", parts?.join(", ")));
    }
    Err(format!(
        "value of type {} cannot be a parameter",
        v.type_name()
    ))
}

fn get_f64(m: &Map, k: &str, default: f64, pos: Position) -> Res<f64> {
    match m.get(k) {
        None => Ok(default),
        Some(v) => v
            .as_float()
            .or_else(|_| v.as_int().map(|i| i as f64))
            .or_else(|t| fail(format!("option '{k}' must be a number, got {t}"), pos)),
    }
}

/// `modalities: #{ genre: "class", title: #{ from: "movie_title", hash: 64 } }`
/// (`from: "class+movie_title"` joins fields):
/// a dense item feature per entry, multi-hot over the source field's
/// vocabulary, or a hashed bag of its words with `hash` buckets.
fn modalities(v: &Dynamic, pos: Position) -> Res<Vec<(String, String, usize)>> {
    let Some(m) = v.clone().try_cast::<Map>() else {
        return fail(
            "modalities must be a map #{name: \"field\"} (a token/token_seq field, multi-hot, or a dense float/float_seq field as it is) or #{name: #{from: \"field\", hash: 64}}",
            pos,
        );
    };
    let mut out = Vec::new();
    for (name, spec) in m {
        let (from, hash) = match spec.clone().try_cast::<Map>() {
            Some(o) => {
                check_keys(&o, &["from", "hash"], &format!("modalities.{name}"), pos)?;
                (
                    get_str(&o, "from", "", pos)?,
                    get_usize(&o, "hash", 0, pos)?,
                )
            }
            None => (spec.to_string(), 0),
        };
        if from.is_empty() {
            return fail(
                format!("modalities.{name} needs `from`: the item field to build it from"),
                pos,
            );
        }
        out.push((name.to_string(), from, hash));
    }
    Ok(out)
}

/// The `split` option of an evaluation: `test` (default) or `valid`.
fn split_part(opts: &Map, pos: Position) -> Res<Part> {
    match get_str(opts, "split", "test", pos)?.as_str() {
        "test" => Ok(Part::Test),
        "valid" => Ok(Part::Valid),
        other => fail(
            format!("split must be 'test' or 'valid', got '{other}'"),
            pos,
        ),
    }
}

/// The `k` option of a ranking evaluation (default `[10, 20]`).
fn ks_option(opts: &Map, pos: Position) -> Res<Vec<usize>> {
    match opts.get("k") {
        None => Ok(vec![10, 20]),
        Some(v) => v
            .clone()
            .into_array()
            .or_else(|t| fail(format!("k must be an array of integers, got {t}"), pos))?
            .iter()
            .map(|x| x.as_int().map(|i| i.max(1) as usize))
            .collect::<Result<_, _>>()
            .or_else(|t| fail(format!("k must hold integers, got {t}"), pos)),
    }
}

/// What `evaluate` returns under `host check` (nothing is trained): every
/// metric the call would report, as 0, so the rest of a recipe type-checks.
fn check_metrics(names: &[String]) -> Map {
    names
        .iter()
        .map(|n| (n.as_str().into(), Dynamic::from_float(0.0)))
        .collect()
}

fn get_bool(m: &Map, k: &str, default: bool, pos: Position) -> Res<bool> {
    match m.get(k) {
        None => Ok(default),
        Some(v) => v
            .as_bool()
            .or_else(|t| fail(format!("option '{k}' must be true or false, got {t}"), pos)),
    }
}

fn get_usize(m: &Map, k: &str, default: usize, pos: Position) -> Res<usize> {
    match m.get(k) {
        None => Ok(default),
        Some(v) => match v.as_int() {
            Ok(i) if i >= 0 => Ok(i as usize),
            Ok(i) => fail(format!("option '{k}' must be >= 0, got {i}"), pos),
            Err(t) => fail(format!("option '{k}' must be an integer, got {t}"), pos),
        },
    }
}

fn get_str(m: &Map, k: &str, default: &str, pos: Position) -> Res<String> {
    match m.get(k) {
        None => Ok(default.into()),
        Some(v) => v
            .clone()
            .into_string()
            .or_else(|t| fail(format!("option '{k}' must be a string, got {t}"), pos)),
    }
}

/// Option `k` as an array of strings (empty when absent); the error names
/// the option, the index and what the strings are (`what`).
fn string_list(m: &Map, k: &str, what: &str, pos: Position) -> Res<Vec<String>> {
    let Some(v) = m.get(k) else {
        return Ok(Vec::new());
    };
    let a = v.clone().into_array().or_else(|t| {
        fail(
            format!("option '{k}' must be an array of {what}, got {t}"),
            pos,
        )
    })?;
    a.into_iter()
        .enumerate()
        .map(|(i, x)| {
            x.into_string().or_else(|t| {
                fail(
                    format!("option '{k}'[{i}] must be a string ({what}), got {t}"),
                    pos,
                )
            })
        })
        .collect()
}

fn check_keys(m: &Map, valid: &[&str], what: &str, pos: Position) -> Res<()> {
    for k in m.keys() {
        if !valid.contains(&k.as_str()) {
            return fail(
                format!(
                    "unknown option '{k}' for {what}; valid options: {}",
                    valid.join(", ")
                ),
                pos,
            );
        }
    }
    Ok(())
}

/// The all-ranking-only options of `evaluate` / `popularity`.
pub const RANKING_OPTIONS: [&str; 6] = [
    "groups",
    "rerank",
    "drift_thresholds",
    "active_share",
    "time_subsets",
    "ratio_groups",
];

/// A number (integer or float) of a Rhai value.
fn number(v: &Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// An array of numbers, errors naming `what` and the index.
fn numbers(v: &Dynamic, what: &str, pos: Position) -> Res<Vec<f64>> {
    let a = v
        .clone()
        .into_array()
        .or_else(|t| fail(format!("{what} must be an array of numbers, got {t}"), pos))?;
    a.iter()
        .enumerate()
        .map(|(k, x)| match number(x) {
            Some(f) => Ok(f),
            None => fail(
                format!("{what}[{k}] must be a number, got {}", x.type_name()),
                pos,
            ),
        })
        .collect()
}

/// An array of vectors (arrays of numbers; a number is a vector of one),
/// errors naming `what` and the index.
fn vectors(a: &Array, what: &str, pos: Position) -> Res<Vec<Vec<f64>>> {
    a.iter()
        .enumerate()
        .map(|(k, v)| match number(v) {
            Some(x) => Ok(vec![x]),
            None => numbers(v, &format!("{what}[{k}]"), pos),
        })
        .collect()
}

/// The map value of `option`, or an error naming it and its `shape`.
fn map_option(v: &Dynamic, option: &str, shape: &str, pos: Position) -> Res<Map> {
    v.clone().try_cast::<Map>().map_or_else(
        || {
            fail(
                format!(
                    "option '{option}' must be a map {shape}, got {}",
                    v.type_name()
                ),
                pos,
            )
        },
        Ok,
    )
}

/// `rerank: #{method, lambda | factor, candidates}`.
fn rerank_option(v: &Dynamic, pos: Position) -> Res<Reranker> {
    let shape = "#{method: \"calibration\" | \"diversity\" | \"fairco\", lambda: <number> (calibration, fairco) | factor: <number> (diversity), candidates: <integer, default 100>}";
    let m = map_option(v, "rerank", shape, pos)?;
    check_keys(
        &m,
        &["method", "lambda", "factor", "candidates"],
        "rerank",
        pos,
    )?;
    let method = get_str(&m, "method", "", pos)?;
    let (param, unused) = match method.as_str() {
        "calibration" | "fairco" => ("lambda", "factor"),
        "diversity" => ("factor", "lambda"),
        "" => {
            return fail(
                "rerank needs 'method': one of calibration, diversity, fairco",
                pos,
            )
        }
        other => {
            return fail(
                format!(
                "unknown rerank method '{other}'; valid methods: calibration, diversity, fairco"
            ),
                pos,
            )
        }
    };
    if m.contains_key(unused) {
        return fail(
            format!("rerank method '{method}' takes '{param}', not '{unused}'"),
            pos,
        );
    }
    if !m.contains_key(param) {
        return fail(
            format!("rerank method '{method}' needs '{param}' (a number)"),
            pos,
        );
    }
    let x = match m.get(param).and_then(number) {
        Some(x) => x,
        None => {
            return fail(
                format!(
                    "rerank.{param} must be a number, got {}",
                    m[param].type_name()
                ),
                pos,
            )
        }
    };
    let method = match method.as_str() {
        "calibration" => Method::Calibration { lambda: x },
        "diversity" => Method::Diversity { factor: x },
        _ => Method::FairCo { lambda: x },
    };
    let candidates = get_usize(&m, "candidates", crate::rerank::DEFAULT_CANDIDATES, pos)?;
    Reranker::new(method, candidates).or_else(|e| fail(e, pos))
}

/// `plot_bars`' `series`: a map `#{name: [values]}` (bars in name order)
/// or an array `[#{name, values}]` (bars in array order).
fn series_option(v: &Dynamic, pos: Position) -> Res<Vec<(String, Vec<f64>)>> {
    let shape = "a map #{name: [values]} or an array [#{name: \"..\", values: [..]}]";
    if let Some(m) = v.clone().try_cast::<Map>() {
        return m
            .iter()
            .map(|(name, vals)| {
                Ok((
                    name.to_string(),
                    numbers(vals, &format!("series '{name}'"), pos)?,
                ))
            })
            .collect();
    }
    let Some(a) = v.clone().try_cast::<Array>() else {
        return fail(
            format!("option 'series' must be {shape}, got {}", v.type_name()),
            pos,
        );
    };
    a.iter()
        .enumerate()
        .map(|(k, x)| {
            let Some(m) = x.clone().try_cast::<Map>() else {
                return fail(
                    format!(
                        "series[{k}] must be #{{name, values}}, got {}",
                        x.type_name()
                    ),
                    pos,
                );
            };
            check_keys(&m, &["name", "values"], &format!("series[{k}]"), pos)?;
            let name = get_str(&m, "name", "", pos)?;
            let Some(vals) = m.get("values") else {
                return fail(
                    format!("series[{k}] needs 'values': one number per category"),
                    pos,
                );
            };
            Ok((
                name.clone(),
                numbers(vals, &format!("series '{name}'"), pos)?,
            ))
        })
        .collect()
}

/// `groups`, `rerank` and `drift_thresholds` of an all-ranking evaluation.
fn ranking_options(data: &Data, opts: &Map, ks: &[usize], pos: Position) -> Res<RankingOptions> {
    let groups = match opts.get("groups") {
        None => None,
        Some(v) => {
            let name = v.clone().into_string().or_else(|t| {
                fail(
                    format!("option 'groups' must be a string: an item column, or \"auto\" for the one with role 'group'; got {t}"),
                    pos,
                )
            })?;
            if name.is_empty() {
                None
            } else {
                Some(crate::protocols::item_groups(data, &name).or_else(|e| fail(e, pos))?)
            }
        }
    };
    let rerank = opts
        .get("rerank")
        .map(|v| rerank_option(v, pos))
        .transpose()?;
    let drift_thresholds = match opts.get("drift_thresholds") {
        None => Vec::new(),
        Some(v) => numbers(v, "option 'drift_thresholds'", pos)?,
    };
    if let Some(t) = drift_thresholds.iter().find(|t| !t.is_finite()) {
        return fail(format!("drift_thresholds must be finite, got {t}"), pos);
    }
    if groups.is_none() {
        for (key, set) in [
            ("rerank", rerank.is_some()),
            ("drift_thresholds", !drift_thresholds.is_empty()),
        ] {
            if set {
                return fail(
                    format!("option '{key}' needs item groups: add groups: \"<item column>\" or \"auto\""),
                    pos,
                );
            }
        }
    }
    let kmax = ks.iter().copied().max().unwrap_or(10);
    if let Some(r) = &rerank {
        if r.candidates < kmax {
            return fail(
                format!(
                    "rerank.candidates ({}) must be at least the largest k ({kmax})",
                    r.candidates
                ),
                pos,
            );
        }
    }
    let active_share = match opts.get("active_share") {
        None => None,
        Some(v) => match number(v) {
            Some(x) => Some(x),
            None => {
                return fail(
                    format!(
                        "option 'active_share' must be a number in (0, 1) (the share of users, by training interactions, in the active group), got {}",
                        v.type_name()
                    ),
                    pos,
                )
            }
        },
    };
    let o = RankingOptions {
        groups,
        rerank,
        drift_thresholds,
        active_share,
        time_subsets: opts
            .get("time_subsets")
            .map(|v| time_subsets_option(v, pos))
            .transpose()?,
        ratio_groups: opts
            .get("ratio_groups")
            .map(|v| ratio_groups_option(v, pos))
            .transpose()?,
    };
    // The segments are checked against the data here (also under `host check`).
    crate::protocols::Segments::new(data, &o).or_else(|e| fail(e, pos))?;
    Ok(o)
}

/// `time_subsets: k` or `#{k, from: "valid+test" | "valid" | "test"}`.
fn time_subsets_option(v: &Dynamic, pos: Position) -> Res<crate::protocols::TimeSubsets> {
    use crate::protocols::{HeldOut, TimeSubsets};
    let shape =
        "an integer k or #{k: <integer>, from: \"valid+test\" (default) | \"valid\" | \"test\"}";
    let (k, from) = if let Ok(k) = v.as_int() {
        (Dynamic::from_int(k), "valid+test".to_string())
    } else if let Some(m) = v.clone().try_cast::<Map>() {
        check_keys(&m, &["k", "from"], "time_subsets", pos)?;
        let Some(k) = m.get("k") else {
            return fail(format!("time_subsets needs 'k': {shape}"), pos);
        };
        (k.clone(), get_str(&m, "from", "valid+test", pos)?)
    } else {
        return fail(
            format!(
                "option 'time_subsets' must be {shape}, got {}",
                v.type_name()
            ),
            pos,
        );
    };
    let k = match k.as_int() {
        Ok(k) if k >= 1 => k as usize,
        _ => {
            return fail(
                format!("time_subsets.k must be an integer >= 1, got {k}"),
                pos,
            )
        }
    };
    let from = HeldOut::parse(&from).or_else(|e| fail(e, pos))?;
    Ok(TimeSubsets { k, from })
}

/// `ratio_groups: #{num, den, high_share}`; statistics are
/// `"interactions"`, `"positives"` or a numeric interaction column.
fn ratio_groups_option(v: &Dynamic, pos: Position) -> Res<crate::protocols::RatioGroups> {
    use crate::protocols::{ItemStat, RatioGroups};
    let shape = "#{num, den, high_share} (statistics: \"interactions\", \"positives\" or a numeric interaction column)";
    let m = map_option(v, "ratio_groups", shape, pos)?;
    check_keys(&m, &["num", "den", "high_share"], "ratio_groups", pos)?;
    let d = RatioGroups::default();
    let stat = |key: &str, default: &ItemStat| -> Res<ItemStat> {
        match m.get(key) {
            None => Ok(default.clone()),
            Some(v) => v.clone().into_string().map(|s| ItemStat::parse(&s)).or_else(|t| {
                fail(
                    format!("ratio_groups.{key} must be a string (\"interactions\", \"positives\" or an interaction column), got {t}"),
                    pos,
                )
            }),
        }
    };
    let high_share = match m.get("high_share") {
        None => d.high_share,
        Some(x) => match number(x) {
            Some(x) => x,
            None => {
                return fail(
                    format!(
                        "ratio_groups.high_share must be a number in (0, 1), got {}",
                        x.type_name()
                    ),
                    pos,
                )
            }
        },
    };
    Ok(RatioGroups {
        num: stat("num", &d.num)?,
        den: stat("den", &d.den)?,
        high_share,
    })
}

/// The evaluation's label in the report: `evaluate all_ranking (test, calibration)`.
fn ranking_kind(what: &str, part: Part, opts: &RankingOptions) -> String {
    let split = if part == Part::Test { "test" } else { "valid" };
    match &opts.rerank {
        Some(r) => format!("{what} ({split}, {})", r.name()),
        None => format!("{what} ({split})"),
    }
}

/// Escape `|` for a Markdown table cell.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

impl Session {
    pub fn new(
        cfg: SessionConfig,
        registry: Arc<Registry>,
        device: Device,
    ) -> Result<Arc<Session>, String> {
        let out = if cfg.check_only {
            None
        } else {
            Some(Mutex::new(RunDir::create(&cfg.out)?))
        };
        Ok(Arc::new(Session {
            cfg,
            registry,
            device,
            out,
            resolved: Mutex::new(Vec::new()),
            run_counter: Mutex::new(0),
            manifest: Mutex::new(None),
            resumed: Mutex::new(None),
            train_keys: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Record the run in `resume.json` (written now, updated at every
    /// training's start and end); with `resumed`, trainings it lists as
    /// finished are loaded instead of trained, an unfinished one continues
    /// from its last checkpoint.
    pub fn start_manifest(&self, m: Manifest, resumed: Option<Manifest>) -> Result<(), String> {
        if let Some(o) = &self.out {
            m.save(&o.lock().unwrap_or_else(|e| e.into_inner()).path)?;
        }
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = Some(m);
        *self.resumed.lock().unwrap_or_else(|e| e.into_inner()) = resumed;
        Ok(())
    }

    /// Update the manifest's entry for a training and write it.
    fn manifest_put(&self, e: TrainingEntry) -> Result<(), String> {
        let mut g = self.manifest.lock().unwrap_or_else(|e| e.into_inner());
        let (Some(m), Some(o)) = (g.as_mut(), &self.out) else {
            return Ok(());
        };
        m.put(e);
        m.save(&o.lock().unwrap_or_else(|e| e.into_inner()).path)
    }

    /// Fit a run inside the run folder, or on resume load / continue it
    /// (see [`crate::checkpoint`]).
    fn fit_or_resume(&self, run: &mut Run, data: &Data, call: &ResolvedCall) -> Result<(), String> {
        let out = self.out.as_ref().expect("run dir");
        let ckpt = out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .path
            .join("checkpoints");
        let key = {
            let mut k = self.train_keys.lock().unwrap_or_else(|e| e.into_inner());
            let n = k.entry(run.name.clone()).or_insert(0);
            *n += 1;
            match *n {
                1 => run.name.clone(),
                n => format!("{}#{n}", run.name),
            }
        };
        let config = serde_json::json!({"call": call, "device": self.cfg.device});
        let hash = config_hash(&config);
        run.set_config_hash(hash.clone());
        let final_path = ckpt.join(format!(
            "{}.safetensors",
            crate::report::file_stem(&run.name)
        ));
        let old = self
            .resumed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|m| m.entry(&key).cloned());
        let mut done = false;
        if let Some(old) = old {
            if old.config_hash != hash {
                let diff = first_difference(&old.config, &config).unwrap_or_default();
                return Err(format!(
                    "--resume: training '{key}' was started with another configuration ({diff}); \
                     resuming would mix two runs: start a new run instead"
                ));
            }
            let last = run.last_checkpoint(&ckpt);
            if old.finished {
                run.restore(&final_path)?;
                done = true;
                eprintln!(
                    "resume: training '{key}' had finished; loaded {}",
                    final_path.display()
                );
            } else if last.is_file() {
                run.restore(&last)?;
                eprintln!(
                    "resume: training '{key}' continues from {} (epoch {})",
                    last.display(),
                    run.logged_epochs()
                );
            }
            let logged = run.logged_epochs();
            out.lock()
                .unwrap_or_else(|e| e.into_inner())
                .drop_metrics_after(&run.name, logged)?;
        }
        let entry = |finished| TrainingEntry {
            key: key.clone(),
            config_hash: hash.clone(),
            config: config.clone(),
            finished,
        };
        self.manifest_put(entry(done))?;
        if done {
            return Ok(());
        }
        let mut log_error = None;
        run.fit(data, Some(&ckpt), |log| {
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = o.log_metrics(log) {
                log_error.get_or_insert(e);
            }
        })?;
        if let Some(e) = log_error {
            return Err(e);
        }
        run.save_final(&final_path)?;
        self.manifest_put(entry(true))
    }

    /// The folders this session's recipe may read and write.
    fn folders(&self) -> Folders {
        Folders {
            repo_root: self.cfg.repo_root.clone(),
            out: self.cfg.out.clone(),
        }
    }

    /// Is `p` inside one of the folders scripts may read?
    fn check_path(&self, p: &Path) -> Result<(), String> {
        self.folders().readable(p).map(|_| ())
    }

    fn component(
        &self,
        kind: ComponentKind,
        name: &str,
        params: &Map,
        pos: Position,
    ) -> Res<ComponentSpec> {
        let mut params = params.clone();
        let share = if kind == ComponentKind::Backbone {
            params.remove("share").map(|v| v.to_string())
        } else {
            None
        };
        let keys: Vec<String> = params.keys().map(|k| k.to_string()).collect();
        self.registry
            .check_params(kind, name, &keys)
            .or_else(|e| fail(e, pos))?;
        let ron = to_ron(&Dynamic::from_map(params)).or_else(|e| fail(e, pos))?;
        // Construct once to validate parameter types now, with the script position.
        self.registry
            .create(kind, name, &ron)
            .or_else(|e| fail(e, pos))?;
        Ok(ComponentSpec {
            kind: kind.as_str().into(),
            name: name.into(),
            params_ron: ron,
            share,
        })
    }

    fn dataset(&self, source: &str, opts: &Map, pos: Position) -> Res<DataHandle> {
        check_keys(opts, DATASET_OPTIONS, "dataset()", pos)?;
        let mut cfg = DataConfig {
            source: source.into(),
            seed: self.cfg.seed,
            ..DataConfig::default()
        };
        cfg.split = get_str(opts, "split", &cfg.split, pos)?;
        if let Some(r) = opts.get("ratios") {
            let a = r
                .clone()
                .into_array()
                .or_else(|t| fail(format!("ratios must be an array, got {t}"), pos))?;
            if a.len() != 3 {
                return fail(
                    format!(
                        "ratios must have 3 numbers (train, valid, test), got {}",
                        a.len()
                    ),
                    pos,
                );
            }
            for (k, v) in a.iter().enumerate() {
                cfg.ratios[k] = v
                    .as_float()
                    .or_else(|_| v.as_int().map(|i| i as f64))
                    .or_else(|t| fail(format!("ratio must be a number, got {t}"), pos))?;
            }
        }
        if let Some(t) = opts.get("positive_threshold") {
            cfg.positive_threshold = if t.is_unit() {
                None
            } else {
                Some(get_f64(opts, "positive_threshold", 4.0, pos)? as f32)
            };
        }
        if let Some(v) = opts.get("impressions") {
            let m = v.clone().try_cast::<Map>().ok_or_else(|| {
                Box::new(EvalAltResult::ErrorRuntime(
                    "impressions must be a map #{window: <seconds>, like: <rating threshold>}"
                        .into(),
                    pos,
                ))
            })?;
            check_keys(&m, &["window", "like"], "dataset().impressions", pos)?;
            cfg.impressions = Some((
                get_f64(&m, "window", 86400.0, pos)?,
                get_f64(&m, "like", 4.0, pos)? as f32,
            ));
        }
        if opts.contains_key("train_positives") {
            let v = get_str(opts, "train_positives", "threshold", pos)?;
            cfg.train_positives = TrainPositives::parse(&v).or_else(|e| fail(e, pos))?;
        }
        if let Some(r) = opts.get("roles") {
            let m = r.clone().try_cast::<Map>().ok_or_else(|| {
                Box::new(EvalAltResult::ErrorRuntime(
                    "roles must be a map #{field: role}".into(),
                    pos,
                ))
            })?;
            for (k, v) in m {
                cfg.roles.push((k.to_string(), v.to_string()));
            }
        }
        if let Some(d) = opts.get("drop") {
            let a = d.clone().into_array().or_else(|t| {
                fail(
                    format!("drop must be an array of field names, got {t}"),
                    pos,
                )
            })?;
            cfg.drop_fields = a.iter().map(|v| v.to_string()).collect();
        }
        cfg.seed = get_usize(opts, "seed", cfg.seed as usize, pos)? as u64;
        if opts.contains_key("label") {
            cfg.label = Some(get_str(opts, "label", "", pos)?);
            if !opts.contains_key("positive_threshold") {
                // Binary labels: 1 is positive.
                cfg.positive_threshold = Some(0.5);
            }
        }
        if opts.contains_key("train_part") {
            cfg.train_part = Some(get_str(opts, "train_part", "train", pos)?);
        }
        cfg.history = get_usize(opts, "history", cfg.history, pos)?;
        cfg.cache = get_bool(opts, "cache", cfg.cache, pos)?;
        if let Some(m) = opts.get("modalities") {
            cfg.modalities = modalities(m, pos)?;
        }
        if let Some(v) = opts.get("item_features") {
            let files = v.clone().into_array().or_else(|t| {
                fail(
                    format!("item_features must be an array of .npy/.npz paths, got {t}"),
                    pos,
                )
            })?;
            for f in files {
                let p = self.cfg.repo_root.join(f.to_string());
                self.check_path(&p).or_else(|e| fail(e, pos))?;
                cfg.item_features.push(p);
            }
        }
        for key in ["task", "format"] {
            if opts.contains_key(key) {
                cfg.reader.push((key.into(), get_str(opts, key, "", pos)?));
            }
        }
        if opts.contains_key("parts_column") {
            cfg.parts_column = Some(get_str(opts, "parts_column", "", pos)?);
        }
        if opts.contains_key("valid_share") {
            cfg.valid_share = Some(get_f64(opts, "valid_share", 0.0, pos)?);
        }
        cfg.context = string_list(opts, "context", "interaction column names", pos)?;
        cfg.item_stats = string_list(opts, "item_stats", "statistic names (exposure, ctr)", pos)?;
        if !crate::data::is_named_source(source) {
            let p = self.cfg.repo_root.join(source);
            self.check_path(&p).or_else(|e| fail(e, pos))?;
        }
        let data = Data::load(cfg, &self.cfg.repo_root).or_else(|e| fail(e, pos))?;
        Ok(DataHandle(Arc::new(data)))
    }

    fn train(
        &self,
        data: &DataHandle,
        backbones: Vec<ComponentSpec>,
        est: &ComponentSpec,
        opts: &Map,
        pos: Position,
    ) -> Res<RunHandle> {
        check_keys(
            opts,
            &[
                "lr",
                "epochs",
                "batch_size",
                "optimizer",
                "l2",
                "table_updates",
                "negatives",
                "early_stop",
                "metric",
                "loss",
                "seed",
                "name",
                "link",
                "f64",
                "checkpoint_every",
                "clip_grad_norm",
                "table_state",
            ],
            "train()",
            pos,
        )?;
        let d = TrainConfig::default();
        let mut cfg = TrainConfig {
            epochs: get_usize(opts, "epochs", d.epochs, pos)?,
            batch_size: get_usize(opts, "batch_size", d.batch_size, pos)?,
            negatives: get_usize(opts, "negatives", d.negatives, pos)?,
            early_stop: get_usize(opts, "early_stop", d.early_stop, pos)?,
            metric: get_str(opts, "metric", &d.metric, pos)?,
            seed: get_usize(opts, "seed", self.cfg.seed as usize, pos)? as u64,
            f64: get_bool(opts, "f64", false, pos)?,
            ..d
        };
        cfg.optim.lr = get_f64(opts, "lr", cfg.optim.lr, pos)?;
        cfg.optim.l2 = get_f64(opts, "l2", cfg.optim.l2, pos)?;
        cfg.optim.kind = get_str(opts, "optimizer", &cfg.optim.kind, pos)?;
        cfg.optim.dense_tables = match get_str(opts, "table_updates", "sparse", pos)?.as_str() {
            "sparse" => false,
            "dense" => true,
            other => {
                return fail(
                    format!(
                        "train(): table_updates must be \"sparse\" or \"dense\", got \"{other}\""
                    ),
                    pos,
                )
            }
        };
        cfg.optim.table_state = TableState::parse(&get_str(opts, "table_state", "auto", pos)?)
            .or_else(|e| fail(format!("train(): {e}"), pos))?;
        cfg.optim.validate().or_else(|e| fail(e, pos))?;
        let loss = match opts.get("loss") {
            None => ComponentSpec {
                kind: "loss".into(),
                name: "bce".into(),
                params_ron: String::new(),
                share: None,
            },
            Some(v) => match v.clone().try_cast::<ComponentSpec>() {
                Some(s) => s,
                None => self.component(ComponentKind::Loss, &v.to_string(), &Map::new(), pos)?,
            },
        };
        cfg.link = get_str(
            opts,
            "link",
            if loss.name == "mse" {
                "identity"
            } else {
                "logit"
            },
            pos,
        )?;
        crate::protocols::Link::parse(&cfg.link).or_else(|e| fail(e, pos))?;
        cfg.checkpoint_every = get_usize(opts, "checkpoint_every", 0, pos)?;
        cfg.clip_grad_norm = get_f64(opts, "clip_grad_norm", 0.0, pos)?;
        let name = {
            let mut c = self.run_counter.lock().unwrap_or_else(|e| e.into_inner());
            *c += 1;
            let default = format!(
                "{}-{}-{}",
                backbones
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
                est.name,
                c
            );
            get_str(opts, "name", &default, pos)?
        };
        let comps =
            Components::build(&self.registry, &backbones, est, &loss).or_else(|e| fail(e, pos))?;
        let call = ResolvedCall {
            run: name.clone(),
            data: data.0.config.clone(),
            backbones: backbones.clone(),
            estimator: est.clone(),
            loss: loss.clone(),
            train: cfg.clone(),
        };
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call.clone());
        let mut run = Run::new(&name, comps, cfg, self.device.clone()).or_else(|e| fail(e, pos))?;
        if !self.cfg.check_only {
            let out = self.out.as_ref().expect("run dir");
            {
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                for line in self.provenance(est, &data.0) {
                    o.note(line);
                }
            }
            self.fit_or_resume(&mut run, &data.0, &call)
                .or_else(|e| fail(e, pos))?;
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            let mut values = BTreeMap::new();
            values.insert("best_epoch".into(), serde_json::json!(run.best_epoch));
            values.insert("epochs_run".into(), serde_json::json!(run.history.len()));
            values.insert("train_seconds".into(), serde_json::json!(run.train_seconds));
            if let Some(l) = run.history.last() {
                values.insert("final_loss".into(), serde_json::json!(l.loss));
                values.insert(
                    "examples_per_second".into(),
                    serde_json::json!(l.examples_per_second),
                );
            }
            o.rows.push(ReportRow {
                name: name.clone(),
                kind: "train".into(),
                values,
            });
            o.write_report().or_else(|e| fail(e, pos))?;
        }
        Ok(RunHandle {
            run: Arc::new(Mutex::new(run)),
            data: data.0.clone(),
            name,
        })
    }

    /// `set_estimator(run, estimator(..))`: the trained run under another
    /// estimator with the same roles (e.g. another inference rule); every
    /// parameter is kept. Returns the run.
    fn set_estimator(&self, r: &RunHandle, est: &ComponentSpec, pos: Position) -> Res<RunHandle> {
        if est.kind != "estimator" {
            return fail(
                format!("set_estimator() needs an estimator(..), got a {}", est.kind),
                pos,
            );
        }
        let (e, label) = Components::estimator(&self.registry, est).or_else(|e| fail(e, pos))?;
        r.run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_estimator(e, label)
            .or_else(|e| fail(e, pos))?;
        Ok(r.clone())
    }

    /// `run_stats(run)`: epochs run, best epoch, mean seconds per epoch and
    /// training examples per second (positives and their negatives).
    fn run_stats(&self, r: &RunHandle) -> Map {
        let run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        let h = &run.history;
        let n = h.len().max(1) as f64;
        let mut m = Map::new();
        m.insert("epochs_run".into(), (h.len() as i64).into());
        m.insert("best_epoch".into(), (run.best_epoch as i64).into());
        m.insert(
            "seconds_per_epoch".into(),
            (h.iter().map(|l| l.seconds).sum::<f64>() / n).into(),
        );
        m.insert(
            "examples_per_second".into(),
            (h.iter().map(|l| l.examples_per_second).sum::<f64>() / n).into(),
        );
        m
    }

    /// `popularity(data, #{k, split, groups, rerank, drift_thresholds,
    /// active_share, time_subsets, ratio_groups})`:
    /// all-ranking metrics of the popularity ranking.
    fn popularity(&self, d: &DataHandle, opts: &Map, pos: Position) -> Res<Map> {
        let valid: Vec<&str> = ["k", "split"].into_iter().chain(RANKING_OPTIONS).collect();
        check_keys(opts, &valid, "popularity()", pos)?;
        let (part, ks) = (split_part(opts, pos)?, ks_option(opts, pos)?);
        let ranking = ranking_options(&d.0, opts, &ks, pos)?;
        if self.cfg.check_only {
            return Ok(Map::new());
        }
        let m = crate::protocols::popularity_with(&d.0, part, &ks, ranking)
            .or_else(|e| fail(e, pos))?;
        let mut out: Map = m.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        out.insert("model".into(), "popularity".into());
        Ok(out)
    }

    /// Where a recipe may write `file` ([`Folders::writable`]).
    fn output_file(&self, file: &str) -> Result<PathBuf, String> {
        self.folders().writable(file)
    }

    /// `plot_bars(file, #{title, y_label, categories, series})`: a grouped
    /// bar chart as SVG in the output folder; returns the written path.
    fn plot_bars(&self, file: &str, spec: &Map, pos: Position) -> Res<String> {
        check_keys(
            spec,
            &["title", "y_label", "categories", "series"],
            "plot_bars()",
            pos,
        )?;
        if !file.ends_with(".svg") {
            return fail(
                format!("plot_bars writes SVG: the file name must end in .svg, got '{file}'"),
                pos,
            );
        }
        let categories: Vec<String> = match spec.get("categories") {
            None => return fail("plot_bars needs 'categories': an array of names", pos),
            Some(v) => v
                .clone()
                .into_array()
                .or_else(|t| {
                    fail(
                        format!("option 'categories' must be an array of names, got {t}"),
                        pos,
                    )
                })?
                .iter()
                .map(|c| c.to_string())
                .collect(),
        };
        let series = match spec.get("series") {
            None => {
                return fail(
                    "plot_bars needs 'series': a map #{name: [one value per category]}",
                    pos,
                )
            }
            Some(v) => series_option(v, pos)?,
        };
        let bars = crate::plot::Bars {
            title: get_str(spec, "title", "", pos)?,
            y_label: get_str(spec, "y_label", "", pos)?,
            categories,
            series,
        };
        bars.validate().or_else(|e| fail(e, pos))?;
        if self.cfg.check_only {
            return Ok(file.into());
        }
        let path = self.output_file(file).or_else(|e| fail(e, pos))?;
        crate::plot::write_bars_svg(&path, &bars).or_else(|e| fail(e, pos))?;
        Ok(path.display().to_string())
    }

    /// `representations(run, #{part, max_rows})`: the estimator's named
    /// per-example representations on up to `max_rows` rows of a part
    /// (evenly spaced), as `#{name: [[..], ..]}`.
    fn representations(&self, r: &RunHandle, opts: &Map, pos: Position) -> Res<Map> {
        check_keys(opts, &["part", "max_rows"], "representations()", pos)?;
        let part = get_str(opts, "part", "test", pos)?;
        let max_rows = get_usize(opts, "max_rows", 2000, pos)?;
        if max_rows == 0 {
            return fail("representations: max_rows must be at least 1", pos);
        }
        let rows = r.data.part_rows(&part).or_else(|e| fail(e, pos))?;
        if rows.is_empty() {
            return fail(format!("representations: part '{part}' has no rows"), pos);
        }
        let step = rows.len().div_ceil(max_rows);
        let picked: Vec<usize> = rows.iter().step_by(step).copied().collect();
        let mut out = Map::new();
        if self.cfg.check_only {
            out.insert(
                "c".into(),
                Dynamic::from_array(vec![Dynamic::from_array(vec![0.0.into(); 2]); 3]),
            );
            return Ok(out);
        }
        let mut run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        let named = run
            .represent_rows(&r.data, &picked)
            .or_else(|e| fail(e, pos))?;
        for (name, vecs) in named {
            let arr: Array = vecs
                .into_iter()
                .map(|v| {
                    Dynamic::from_array(
                        v.into_iter()
                            .map(|x| Dynamic::from_float(f64::from(x)))
                            .collect(),
                    )
                })
                .collect();
            out.insert(name.into(), Dynamic::from_array(arr));
        }
        Ok(out)
    }

    /// `plot_pca(file, #{title, series: #{name: [[..], ..]}})`: every
    /// series' vectors projected together onto their first two principal
    /// components, one colour per series, as SVG in the output folder;
    /// returns `#{file, explained: [share of PC1, share of PC2]}`.
    fn plot_pca(&self, file: &str, spec: &Map, pos: Position) -> Res<Map> {
        check_keys(spec, &["title", "series"], "plot_pca()", pos)?;
        if !file.ends_with(".svg") {
            return fail(
                format!("plot_pca writes SVG: the file name must end in .svg, got '{file}'"),
                pos,
            );
        }
        let Some(series) = spec.get("series").and_then(|v| v.clone().try_cast::<Map>()) else {
            return fail(
                "plot_pca needs 'series': a map #{name: [[vector], ..]}",
                pos,
            );
        };
        if self.cfg.check_only {
            // `representations` has no real vectors to give in check mode.
            let mut out = Map::new();
            out.insert("file".into(), file.into());
            out.insert(
                "explained".into(),
                Dynamic::from_array(vec![0.0.into(), 0.0.into()]),
            );
            return Ok(out);
        }
        let mut names = Vec::new();
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        for (name, v) in &series {
            let a = v.clone().into_array().or_else(|t| {
                fail(
                    format!("plot_pca: series '{name}' must be an array of vectors, got {t}"),
                    pos,
                )
            })?;
            let vs = vectors(&a, &format!("plot_pca: series '{name}'"), pos)?;
            names.push(name.to_string());
            sizes.push(vs.len());
            all.extend(vs);
        }
        let pca = crate::stats::pca_2d(&all).or_else(|e| fail(e, pos))?;
        let mut sc = crate::plot::Scatter {
            title: get_str(spec, "title", "", pos)?,
            x_label: format!("PC1 ({:.0}% of variance)", 100.0 * pca.explained[0]),
            y_label: format!("PC2 ({:.0}% of variance)", 100.0 * pca.explained[1]),
            series: Vec::new(),
        };
        let mut at = 0;
        for (name, n) in names.into_iter().zip(sizes) {
            sc.series.push((name, pca.points[at..at + n].to_vec()));
            at += n;
        }
        let mut out = Map::new();
        out.insert(
            "explained".into(),
            Dynamic::from_array(
                pca.explained
                    .iter()
                    .map(|&x| Dynamic::from_float(x))
                    .collect(),
            ),
        );
        let path = self.output_file(file).or_else(|e| fail(e, pos))?;
        crate::plot::write_scatter_svg(&path, &sc).or_else(|e| fail(e, pos))?;
        out.insert("file".into(), path.display().to_string().into());
        Ok(out)
    }

    /// `grad_check(run, #{batch, per_param, h, rtol, atol})`: analytic vs
    /// finite-difference gradients of the run's training loss (f64 runs).
    fn grad_check(&self, r: &RunHandle, opts: &Map, pos: Position) -> Res<Map> {
        check_keys(
            opts,
            &["batch", "per_param", "h", "rtol", "atol", "seed"],
            "grad_check()",
            pos,
        )?;
        let d = crate::checks::GradCheckOptions::default();
        let o = crate::checks::GradCheckOptions {
            batch: get_usize(opts, "batch", d.batch, pos)?,
            per_param: get_usize(opts, "per_param", d.per_param, pos)?,
            h: get_f64(opts, "h", d.h, pos)?,
            rtol: get_f64(opts, "rtol", d.rtol, pos)?,
            atol: get_f64(opts, "atol", d.atol, pos)?,
            seed: get_usize(opts, "seed", d.seed as usize, pos)? as u64,
        };
        let mut m = Map::new();
        if self.cfg.check_only {
            return Ok(m);
        }
        let mut run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        let rep = crate::checks::grad_check(&mut run, &r.data, &o).or_else(|e| fail(e, pos))?;
        m.insert("checked".into(), (rep.checked as i64).into());
        m.insert("failures".into(), (rep.failures.len() as i64).into());
        m.insert("max_abs_err".into(), rep.max_abs_err.into());
        m.insert("max_rel_err".into(), rep.max_rel_err.into());
        m.insert(
            "first_failure".into(),
            rep.failures.first().cloned().unwrap_or_default().into(),
        );
        m.insert("zero_grad".into(), rep.zero_grad.join(",").into());
        m.insert("kinks".into(), (rep.kinks as i64).into());
        Ok(m)
    }

    /// `score_all_check(run, #{users})`: the largest |score_all - predict|
    /// over every item for the first `users` users (() without score_all).
    fn score_all_check(&self, r: &RunHandle, opts: &Map, pos: Position) -> Res<Dynamic> {
        check_keys(opts, &["users"], "score_all_check()", pos)?;
        let n = get_usize(opts, "users", 4, pos)?.min(r.data.ds.n_users);
        if self.cfg.check_only {
            return Ok(Dynamic::UNIT);
        }
        let users: Vec<u32> = (0..n as u32).collect();
        let mut run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        Ok(
            crate::checks::score_all_agreement(&mut run, &r.data, &users)
                .or_else(|e| fail(e, pos))?
                .map_or(Dynamic::UNIT, Dynamic::from),
        )
    }

    fn evaluate(&self, r: &RunHandle, protocol: &str, opts: &Map, pos: Position) -> Res<Map> {
        let valid: Vec<&str> = ["k", "split", "part", "link", "by"]
            .into_iter()
            .chain(RANKING_OPTIONS)
            .collect();
        check_keys(opts, &valid, "evaluate()", pos)?;
        if protocol != "impressions" && opts.contains_key("by") {
            return fail(
                format!("option 'by' applies only to evaluate(run, \"impressions\", ..), not to '{protocol}'"),
                pos,
            );
        }
        if protocol == "impressions" {
            return self.evaluate_impressions(r, opts, pos);
        }
        if protocol != "all_ranking" {
            if let Some(key) = RANKING_OPTIONS.iter().find(|k| opts.contains_key(**k)) {
                return fail(
                    format!("option '{key}' applies only to evaluate(run, \"all_ranking\", ..), not to '{protocol}'"),
                    pos,
                );
            }
        }
        if protocol == "pointwise" {
            return self.evaluate_pointwise(r, opts, pos);
        }
        let (part, ks) = (split_part(opts, pos)?, ks_option(opts, pos)?);
        let ranking = if protocol == "all_ranking" {
            Some(ranking_options(&r.data, opts, &ks, pos)?)
        } else {
            None
        };
        if self.cfg.check_only {
            let names: Vec<String> = match &ranking {
                Some(o) => crate::protocols::ranking_metric_names(&ks, o),
                None => vec!["auc".into(), "logloss".into(), "pairs".into()],
            };
            return Ok(check_metrics(&names));
        }
        let mut run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        let mut kind = format!(
            "evaluate {protocol} ({})",
            if part == Part::Test { "test" } else { "valid" }
        );
        let metrics = match (protocol, ranking) {
            ("all_ranking", Some(o)) => {
                kind = ranking_kind("evaluate all_ranking", part, &o);
                run.rank_eval_with(&r.data, part, &ks, o)
                    .or_else(|e| fail(e, pos))?
            }
            ("auc", _) => crate::protocols::labelled_eval(&mut run, &r.data, part)
                .or_else(|e| fail(e, pos))?,
            (other, _) => {
                return fail(
                    format!(
                        "unknown protocol '{other}'; valid protocols: all_ranking, auc, impressions, pointwise"
                    ),
                    pos,
                )
            }
        };
        self.record_eval(r, &kind, &metrics, pos)
    }

    /// `evaluate(run, "pointwise", #{part: "test_2"})`: MSE/MAE/AUC(/log-loss)
    /// on the labelled rows of any part of the data.
    fn evaluate_pointwise(&self, r: &RunHandle, opts: &Map, pos: Position) -> Res<Map> {
        let part = get_str(opts, "part", "test", pos)?;
        let rows = r.data.part_rows(&part).or_else(|e| fail(e, pos))?.to_vec();
        let mut run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        let link = get_str(opts, "link", &run.cfg.link, pos)?;
        let link = crate::protocols::Link::parse(&link).or_else(|e| fail(e, pos))?;
        if self.cfg.check_only {
            let names = [
                "mse",
                "mae",
                "auc",
                "logloss",
                "mean_prediction",
                "mean_label",
                "n",
                "positives",
            ];
            return Ok(check_metrics(&names.map(String::from)));
        }
        let metrics = crate::protocols::pointwise_eval(&mut run, &r.data, &rows, link)
            .or_else(|e| fail(format!("part '{part}': {e}"), pos))?;
        self.record_eval(r, &format!("evaluate pointwise ({part})"), &metrics, pos)
    }

    /// `evaluate(run, "impressions", #{part: "test", by: "impression", k: [5, 10]})`:
    /// MIND's per-impression-list AUC, MRR and nDCG@K on the labelled rows
    /// of a part grouped by interaction column `by`, with `impressions`
    /// (lists used) and `skipped` (lists without a click or a non-click).
    fn evaluate_impressions(&self, r: &RunHandle, opts: &Map, pos: Position) -> Res<Map> {
        for key in ["split", "link"] {
            if opts.contains_key(key) {
                return fail(
                    format!("option '{key}' does not apply to evaluate(run, \"impressions\", ..); it takes part, by and k"),
                    pos,
                );
            }
        }
        let part = get_str(opts, "part", "test", pos)?;
        let by = get_str(opts, "by", "impression", pos)?;
        let ks = if opts.contains_key("k") {
            ks_option(opts, pos)?
        } else {
            vec![5, 10]
        };
        let rows = r.data.part_rows(&part).or_else(|e| fail(e, pos))?.to_vec();
        if self.cfg.check_only {
            crate::protocols::impression_inputs(&r.data, &rows, &by)
                .or_else(|e| fail(format!("part '{part}': {e}"), pos))?;
            let mut names = vec!["auc".to_string(), "mrr".to_string()];
            names.extend(ks.iter().map(|k| format!("ndcg@{k}")));
            names.extend(["impressions".to_string(), "skipped".to_string()]);
            return Ok(check_metrics(&names));
        }
        let mut run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        let metrics = crate::protocols::impression_eval(&mut run, &r.data, &rows, &by, &ks)
            .or_else(|e| fail(format!("part '{part}': {e}"), pos))?;
        self.record_eval(
            r,
            &format!("evaluate impressions ({part}, by {by})"),
            &metrics,
            pos,
        )
    }

    /// `item_embeddings(run, table, ids)`: rows `ids` of a trained
    /// embedding table (`"item"` or a full name such as `"main/item"`) as
    /// an array of arrays of floats; under `host check`, `[0.0]` per id.
    fn item_embeddings(
        &self,
        r: &RunHandle,
        table: &str,
        ids: &Array,
        pos: Position,
    ) -> Res<Array> {
        let ids: Vec<i64> = ids
            .iter()
            .enumerate()
            .map(|(k, v)| {
                v.as_int().or_else(|_| {
                    fail(
                        format!(
                            "item_embeddings: ids[{k}] must be an integer row index, got {}",
                            v.type_name()
                        ),
                        pos,
                    )
                })
            })
            .collect::<Res<_>>()?;
        if self.cfg.check_only {
            return Ok(ids
                .iter()
                .map(|_| Dynamic::from_array(vec![Dynamic::from_float(0.0)]))
                .collect());
        }
        let run = r.run.lock().unwrap_or_else(|e| e.into_inner());
        let (name, t) = run
            .model
            .tables
            .find(table)
            .or_else(|e| fail(format!("item_embeddings: {e}"), pos))?;
        ids.iter()
            .enumerate()
            .map(|(k, &id)| match usize::try_from(id) {
                Ok(row) if row < t.rows => Ok(Dynamic::from_array(
                    t.row(row)
                        .iter()
                        .map(|&x| Dynamic::from_float(f64::from(x)))
                        .collect(),
                )),
                _ => fail(
                    format!(
                        "item_embeddings: ids[{k}] = {id} is out of range for table '{name}' with {} rows",
                        t.rows
                    ),
                    pos,
                ),
            })
            .collect()
    }

    /// Return metrics to the script and add them to the report.
    /// The report's provenance lines of one training: what its estimator
    /// targets (the plugin's declared estimand) and where its data came from
    /// (each line once per report, however many runs share it).
    fn provenance(&self, est: &ComponentSpec, data: &Data) -> Vec<String> {
        let estimand = match self.registry.find(ComponentKind::Estimator, &est.name) {
            Ok((plugin, c)) if !c.estimand.is_empty() => {
                format!(
                    "estimand of `{}` (plugin `{}`): {}",
                    est.name, plugin.name, c.estimand
                )
            }
            Ok((plugin, _)) => format!(
                "estimand of `{}` (plugin `{}`): not declared by the plugin",
                est.name, plugin.name
            ),
            Err(e) => e,
        };
        let c = &data.config;
        let source = match crate::data::resolve_source(&c.source, &self.cfg.repo_root) {
            Ok((path, format)) => format!("`{}` ({}, {format})", c.source, path.display()),
            Err(_) => format!("`{}`", c.source),
        };
        let (tr, va, te) = (
            data.split.train.len(),
            data.split.valid.len(),
            data.split.test.len(),
        );
        let data_line = format!(
            "data `{}`: source {source}, split `{}`{}, {} users x {} items, {} interactions (train {tr}, valid {va}, test {te}), seed {}, parse cache {}",
            data.name,
            c.split,
            c.label.as_ref().map_or(String::new(), |l| format!(", label `{l}`")),
            data.ds.n_users,
            data.ds.n_items,
            data.ds.n_inter(),
            c.seed,
            data.cache.as_str()
        );
        vec![estimand, data_line]
    }

    fn record_eval(
        &self,
        r: &RunHandle,
        kind: &str,
        metrics: &BTreeMap<String, f64>,
        pos: Position,
    ) -> Res<Map> {
        let mut m = Map::new();
        let mut values = BTreeMap::new();
        m.insert("run".into(), Dynamic::from(r.name.clone()));
        for (k, v) in metrics {
            m.insert(k.as_str().into(), Dynamic::from_float(*v));
            values.insert(k.clone(), serde_json::json!(v));
        }
        if let Some(out) = &self.out {
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            o.rows.push(ReportRow {
                name: r.name.clone(),
                kind: kind.into(),
                values,
            });
            o.write_report().or_else(|e| fail(e, pos))?;
        }
        Ok(m)
    }

    fn print_table(
        &self,
        title: &str,
        rows: Array,
        order: Option<Array>,
        pos: Position,
    ) -> Res<()> {
        let maps: Vec<Map> = rows
            .into_iter()
            .map(|r| r.try_cast::<Map>().ok_or(()))
            .collect::<Result<_, _>>()
            .or_else(|_| fail("print_table takes an array of maps", pos))?;
        let mut cols: Vec<String> = Vec::new();
        for m in &maps {
            for k in m.keys() {
                if !cols.iter().any(|c| c == k.as_str()) {
                    cols.push(k.to_string());
                }
            }
        }
        if let Some(i) = cols.iter().position(|c| c == "run") {
            let c = cols.remove(i);
            cols.insert(0, c);
        }
        // An explicit column order comes first; other columns follow.
        if let Some(order) = order {
            for (k, name) in order.iter().rev().enumerate() {
                let name = name.to_string();
                match cols.iter().position(|c| *c == name) {
                    Some(i) => {
                        let c = cols.remove(i);
                        cols.insert(0, c);
                    }
                    // `host check` evaluates nothing, so rows have no metrics.
                    None if self.cfg.check_only => {}
                    None => {
                        return fail(
                            format!(
                                "print_table: no row has column '{name}' (column {k} from the end)"
                            ),
                            pos,
                        )
                    }
                }
            }
        }
        let mut s = String::new();
        if !title.is_empty() {
            s.push_str(&format!("### {title}\n\n"));
        }
        let header: Vec<String> = cols.iter().map(|c| md_cell(c)).collect();
        s.push_str(&format!(
            "| {} |\n|{}|\n",
            header.join(" | "),
            cols.iter().map(|_| "---").collect::<Vec<_>>().join("|")
        ));
        for m in &maps {
            let cells: Vec<String> = cols
                .iter()
                .map(|c| match m.get(c.as_str()) {
                    None => String::new(),
                    Some(v) if v.is_float() => {
                        fmt_value(&serde_json::json!(v.as_float().unwrap_or(f64::NAN)))
                    }
                    Some(v) => md_cell(&v.to_string()),
                })
                .collect();
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        println!("{s}");
        if let Some(out) = &self.out {
            let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
            o.tables.push(s);
            o.write_report().or_else(|e| fail(e, pos))?;
        }
        Ok(())
    }
}

/// A module resolver that only loads `.rhai` files under `scripts/`
/// ([`Folders::importable`]: no `..`, no absolute paths, no links out).
struct ScriptsOnly(rhai::module_resolvers::FileModuleResolver, Folders);

impl rhai::ModuleResolver for ScriptsOnly {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<rhai::Shared<rhai::Module>, Box<EvalAltResult>> {
        let file = self
            .1
            .importable(path)
            // Not ErrorModuleNotFound: rhai replaces its text with the bare path.
            .map_err(|e| Box::new(EvalAltResult::ErrorRuntime(e.into(), pos)))?;
        self.0.resolve(engine, None, &file.to_string_lossy(), pos)
    }
}

/// Build the sandboxed engine with the recipe API.
pub fn engine(session: Arc<Session>) -> Engine {
    engine_with_limits(session, &Limits::default())
}

/// [`engine`] under other resource limits.
pub fn engine_with_limits(session: Arc<Session>, limits: &Limits) -> Engine {
    let mut e = Engine::new();
    limits.apply(&mut e);
    let folders = session.folders();
    e.set_module_resolver(ScriptsOnly(
        rhai::module_resolvers::FileModuleResolver::new_with_path(folders.scripts()),
        folders,
    ));
    e.on_print(|s| println!("{s}"));

    e.register_type_with_name::<DataHandle>("Dataset");
    e.register_type_with_name::<ComponentSpec>("Component");
    e.register_type_with_name::<RunHandle>("Run");
    e.register_fn("to_string", |c: &mut ComponentSpec| {
        format!("{} {} {}", c.kind, c.name, c.params_ron)
    });
    e.register_fn("to_string", |r: &mut RunHandle| format!("run {}", r.name));
    e.register_get("name", |r: &mut RunHandle| r.name.clone());
    e.register_get("name", |c: &mut ComponentSpec| c.name.clone());

    let s = session.clone();
    e.register_fn("dataset", move |ctx: NativeCallContext, src: &str| {
        s.dataset(src, &Map::new(), ctx.call_position())
    });
    let s = session.clone();
    e.register_fn(
        "dataset",
        move |ctx: NativeCallContext, src: &str, o: Map| s.dataset(src, &o, ctx.call_position()),
    );
    e.register_fn("data_info", |d: &mut DataHandle| {
        let st = d.0.ds.stats();
        format!("{}\n{}", causalrec_datasets::DatasetStats::HEADER, st)
    });

    for (fname, kind) in [
        ("backbone", ComponentKind::Backbone),
        ("estimator", ComponentKind::Estimator),
        ("loss", ComponentKind::Loss),
    ] {
        let s = session.clone();
        e.register_fn(fname, move |ctx: NativeCallContext, name: &str| {
            s.component(kind, name, &Map::new(), ctx.call_position())
        });
        let s = session.clone();
        e.register_fn(fname, move |ctx: NativeCallContext, name: &str, p: Map| {
            s.component(kind, name, &p, ctx.call_position())
        });
    }

    let s = session.clone();
    e.register_fn(
        "train",
        move |ctx: NativeCallContext, d: DataHandle, b: ComponentSpec, est: ComponentSpec| {
            s.train(&d, vec![b], &est, &Map::new(), ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "train",
        move |ctx: NativeCallContext,
              d: DataHandle,
              b: ComponentSpec,
              est: ComponentSpec,
              o: Map| { s.train(&d, vec![b], &est, &o, ctx.call_position()) },
    );
    let s = session.clone();
    e.register_fn(
        "train",
        move |ctx: NativeCallContext, d: DataHandle, b: Array, est: ComponentSpec, o: Map| {
            let pos = ctx.call_position();
            let bs: Vec<ComponentSpec> = b
                .into_iter()
                .map(|x| x.try_cast::<ComponentSpec>().ok_or(()))
                .collect::<Result<_, _>>()
                .or_else(|_| {
                    fail(
                        "train(): the backbone array must hold backbone(..) values",
                        pos,
                    )
                })?;
            s.train(&d, bs, &est, &o, pos)
        },
    );

    let s = session.clone();
    e.register_fn(
        "evaluate",
        move |ctx: NativeCallContext, r: RunHandle, p: &str| {
            s.evaluate(&r, p, &Map::new(), ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "evaluate",
        move |ctx: NativeCallContext, r: RunHandle, p: &str, o: Map| {
            s.evaluate(&r, p, &o, ctx.call_position())
        },
    );

    let s = session.clone();
    e.register_fn("run_stats", move |r: RunHandle| s.run_stats(&r));
    let s = session.clone();
    e.register_fn(
        "set_estimator",
        move |ctx: NativeCallContext, r: RunHandle, est: ComponentSpec| {
            s.set_estimator(&r, &est, ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "popularity",
        move |ctx: NativeCallContext, d: DataHandle, o: Map| {
            s.popularity(&d, &o, ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "grad_check",
        move |ctx: NativeCallContext, r: RunHandle, o: Map| {
            s.grad_check(&r, &o, ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "score_all_check",
        move |ctx: NativeCallContext, r: RunHandle, o: Map| {
            s.score_all_check(&r, &o, ctx.call_position())
        },
    );

    let s = session.clone();
    e.register_fn("print_table", move |ctx: NativeCallContext, rows: Array| {
        s.print_table("", rows, None, ctx.call_position())
    });
    let s = session.clone();
    e.register_fn(
        "print_table",
        move |ctx: NativeCallContext, t: &str, rows: Array| {
            s.print_table(t, rows, None, ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "print_table",
        move |ctx: NativeCallContext, t: &str, rows: Array, columns: Array| {
            s.print_table(t, rows, Some(columns), ctx.call_position())
        },
    );

    e.register_fn(
        "paired_t_test",
        |ctx: NativeCallContext, a: Array, b: Array| -> Res<Map> {
            let pos = ctx.call_position();
            let a = numbers(&Dynamic::from_array(a), "paired_t_test: a", pos)?;
            let b = numbers(&Dynamic::from_array(b), "paired_t_test: b", pos)?;
            let r = crate::stats::paired_t_test(&a, &b).or_else(|e| fail(e, pos))?;
            let mut m = Map::new();
            m.insert("t".into(), r.t.into());
            m.insert("p".into(), r.p.into());
            m.insert("mean_diff".into(), r.mean_diff.into());
            m.insert("n".into(), (r.n as i64).into());
            Ok(m)
        },
    );
    e.register_fn(
        "dcor",
        |ctx: NativeCallContext, xs: Array, ys: Array| -> Res<f64> {
            let pos = ctx.call_position();
            let (xs, ys) = (
                vectors(&xs, "dcor: xs", pos)?,
                vectors(&ys, "dcor: ys", pos)?,
            );
            crate::stats::distance_correlation(&xs, &ys).or_else(|e| fail(e, pos))
        },
    );
    let s = session.clone();
    e.register_fn(
        "item_embeddings",
        move |ctx: NativeCallContext, r: RunHandle, table: &str, ids: Array| {
            s.item_embeddings(&r, table, &ids, ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "plot_bars",
        move |ctx: NativeCallContext, file: &str, spec: Map| {
            s.plot_bars(file, &spec, ctx.call_position())
        },
    );

    let s = session.clone();
    e.register_fn(
        "representations",
        move |ctx: NativeCallContext, r: RunHandle, opts: Map| {
            s.representations(&r, &opts, ctx.call_position())
        },
    );
    let s = session.clone();
    e.register_fn(
        "plot_pca",
        move |ctx: NativeCallContext, file: &str, spec: Map| {
            s.plot_pca(file, &spec, ctx.call_position())
        },
    );

    e.register_fn("fmt", |x: f64, digits: i64| {
        format!("{x:.*}", digits.clamp(0, 17) as usize)
    });
    e.register_fn("fmt", |x: i64, digits: i64| {
        format!("{:.*}", digits.clamp(0, 17) as usize, x as f64)
    });

    let s = session.clone();
    e.register_fn(
        "setting",
        move |name: &str, default: Dynamic| -> Res<Dynamic> {
            let Some(raw) = s.cfg.settings.get(name) else {
                return Ok(default);
            };
            let parsed = if default.is_int() {
                raw.parse::<i64>()
                    .map(Dynamic::from_int)
                    .map_err(|_| format!("--set {name}={raw}: expected an integer"))
            } else if default.is_float() {
                raw.parse::<f64>()
                    .map(Dynamic::from_float)
                    .map_err(|_| format!("--set {name}={raw}: expected a number"))
            } else if default.is_bool() {
                raw.parse::<bool>()
                    .map(Dynamic::from_bool)
                    .map_err(|_| format!("--set {name}={raw}: expected true or false"))
            } else {
                Ok(Dynamic::from(raw.clone()))
            };
            parsed.or_else(|m| fail(m, Position::NONE))
        },
    );
    e
}

/// Format a script error as `file:line:column: message`.
pub fn format_error(file: &Path, err: &EvalAltResult) -> String {
    let pos = err.position();
    let mut inner = err;
    // Unwrap function-call wrappers to the innermost message, keeping the outer position.
    while let EvalAltResult::ErrorInFunctionCall(_, _, e, _)
    | EvalAltResult::ErrorInModule(_, e, _) = inner
    {
        inner = e;
    }
    let msg = match inner {
        EvalAltResult::ErrorRuntime(v, _) => v.to_string(),

        other => {
            let s = other.to_string();
            // Rhai appends " (line L, position C)"; the prefix carries it already.
            let s = match s.rfind(" (line ") {
                Some(i) => s[..i].to_string(),
                None => s,
            };
            match other {
                EvalAltResult::ErrorTooManyOperations(_)
                | EvalAltResult::ErrorStackOverflow(_)
                | EvalAltResult::ErrorDataTooLarge(..) => {
                    format!("{s}: a limit of the recipe sandbox (host::sandbox::Limits)")
                }
                _ => s,
            }
        }
    };
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}: {msg}", file.display()),
        (Some(l), None) => format!("{}:{l}: {msg}", file.display()),
        _ => format!("{}: {msg}", file.display()),
    }
}

/// Compile a recipe, reporting syntax errors with their position.
pub fn compile(engine: &Engine, file: &Path) -> Result<AST, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    engine.compile(&text).map_err(|e| {
        let pos = e.1;
        let msg = e.0.to_string();
        match (pos.line(), pos.position()) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: syntax error: {msg}", file.display()),
            _ => format!("{}: syntax error: {msg}", file.display()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(out: &Path) -> Arc<Session> {
        let cfg = SessionConfig {
            recipe: PathBuf::from("test.rhai"),
            repo_root: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
            out: out.to_path_buf(),
            seed: 7,
            device: "cpu".into(),
            settings: BTreeMap::new(),
            check_only: false,
        };
        Session::new(cfg, Arc::new(Registry::default()), Device::Cpu).unwrap()
    }

    #[test]
    fn ranking_options_statistics_and_plots_from_rhai() {
        let out = std::env::temp_dir().join(format!("causalrec-recipe-{}", std::process::id()));
        let s = session(&out);
        let e = engine(s.clone());
        let mut scope = rhai::Scope::new();
        e.run_with_scope(&mut scope, r#"let d = dataset("bundled");"#)
            .unwrap();
        let m: Map = e
            .eval_with_scope(
                &mut scope,
                r#"
                let m = popularity(d, #{k: [10, 20], groups: "auto", drift_thresholds: [0.0, 1],
                    rerank: #{method: "fairco", lambda: 0.1, candidates: 50}});
                print_table("drift", [m], ["recall@20|eta>1"]);
                let t = paired_t_test([2.0, 4, 6], [1, 2, 3]);
                let f = plot_bars("figs/f4.svg", #{title: "Figure 4", y_label: "recall",
                    categories: ["eta>0", "eta>1"], series: #{pop: [m["recall@20|eta>0"], m["recall@20|eta>1"]]}});
                plot_bars("ordered.svg", #{categories: ["a"], series: [#{name: "zeta", values: [1]}, #{name: "alpha", values: [2]}]});
                let a = popularity(d, #{k: [10], active_share: 0.4, time_subsets: 2, ratio_groups: #{}});
                #{ckl: m["ckl@20"], users: m["users"], u0: m["users|eta>0"], u1: m["users|eta>1"],
                  t: t.t, p: t.p, n: t.n, diff: t.mean_diff, file: f,
                  all: a["users"], act: a["users|active"], lact: a["users|less_active"],
                  p1: a["users|period1"], high: a["items|high_ratio"], low: a["items|low_ratio"]}
                "#,
            )
            .unwrap();
        let f = |k: &str| m[k].as_float().unwrap();
        assert!(f("ckl") > 0.0 && f("ckl").is_finite());
        assert!(f("users") >= f("u0") && f("u0") >= f("u1") && f("u1") > 0.0);
        assert!((f("t") - 12f64.sqrt()).abs() < 1e-12);
        assert!((f("p") - (1.0 - 12f64.sqrt() / 14f64.sqrt())).abs() < 1e-12);
        assert_eq!((m["n"].as_int().unwrap(), f("diff")), (3, 2.0));
        // Activity groups split the evaluated users; subsets and ratio
        // groups are there (their numbers: protocols::hcr_analyses).
        assert_eq!(f("act") + f("lact"), f("all"));
        assert!(f("act") > 0.0 && f("lact") > 0.0 && f("p1") > 0.0);
        assert!(f("high") > 0.0 && f("low") > f("high"));
        let svg_path = out.canonicalize().unwrap().join("figs").join("f4.svg");
        assert_eq!(m["file"].to_string(), svg_path.display().to_string());
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.contains("Figure 4"));
        // 2 bars + 1 legend swatch + background + legend fill and border
        assert_eq!(svg.matches("<rect").count(), 6);
        // Array series keep their order: zeta's colour comes first.
        let svg = std::fs::read_to_string(out.join("ordered.svg")).unwrap();
        let (z, a) = (svg.find(">\nzeta\n<"), svg.find(">\nalpha\n<"));
        assert!(z.is_some() && a.is_some() && z < a, "{svg}");
        assert!(svg.find("#1F77B4") < svg.find("#FF7F0E"));
        // The report escapes the `|` of drift metrics in Markdown tables.
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("| recall@20\\|eta>1 |"), "{md}");

        let mut err = |script: &str| -> String {
            let r = e.eval_with_scope::<Dynamic>(&mut scope, script);
            format_error(Path::new("t.rhai"), &r.unwrap_err())
        };
        for (script, want) in [
            (
                r#"popularity(d, #{rerank: #{method: "calibration", lambda: 0.5}})"#,
                "option 'rerank' needs item groups",
            ),
            (
                r#"popularity(d, #{drift_thresholds: [1]})"#,
                "option 'drift_thresholds' needs item groups",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: #{method: "mmr"}})"#,
                "unknown rerank method 'mmr'; valid methods: calibration, diversity, fairco",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: #{lambda: 0.5}})"#,
                "rerank needs 'method'",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: #{method: "diversity", lambda: 0.5}})"#,
                "rerank method 'diversity' takes 'factor', not 'lambda'",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: #{method: "fairco"}})"#,
                "rerank method 'fairco' needs 'lambda'",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: #{method: "calibration", lambda: 2}})"#,
                "rerank.lambda must be in [0, 1], got 2",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: #{method: "calibration", lambda: "x"}})"#,
                "rerank.lambda must be a number",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: #{method: "calibration", lambda: 0.5, topn: 5}})"#,
                "unknown option 'topn' for rerank; valid options: method, lambda, factor, candidates",
            ),
            (
                r#"popularity(d, #{k: [20], groups: "auto", rerank: #{method: "diversity", factor: 0.5, candidates: 10}})"#,
                "rerank.candidates (10) must be at least the largest k (20)",
            ),
            (
                r#"popularity(d, #{groups: "auto", rerank: "calibration"})"#,
                "option 'rerank' must be a map",
            ),
            (r#"popularity(d, #{groups: 3})"#, "option 'groups' must be a string"),
            (
                r#"popularity(d, #{groups: "year"})"#,
                "groups: no item column 'year'; item columns:",
            ),
            (
                r#"popularity(d, #{groups: "auto", drift_thresholds: [0.5, "x"]})"#,
                "option 'drift_thresholds'[1] must be a number",
            ),
            (
                r#"popularity(d, #{groups: "auto", drift_thresholds: 1})"#,
                "option 'drift_thresholds' must be an array of numbers",
            ),
            (
                r#"popularity(d, #{active: 0.4})"#,
                "unknown option 'active' for popularity(); valid options: k, split, groups, rerank, drift_thresholds, active_share, time_subsets, ratio_groups",
            ),
            (
                r#"popularity(d, #{active_share: 1.5})"#,
                "active_share must be a number in (0, 1), got 1.5",
            ),
            (
                r#"popularity(d, #{active_share: "40%"})"#,
                "option 'active_share' must be a number in (0, 1) (the share of users, by training interactions, in the active group), got string",
            ),
            (
                r#"popularity(d, #{time_subsets: 0})"#,
                "time_subsets.k must be an integer >= 1, got 0",
            ),
            (
                r#"popularity(d, #{time_subsets: #{k: 2, from: "train"}})"#,
                "time_subsets.from must be one of valid+test, valid, test, got 'train'",
            ),
            (
                r#"popularity(d, #{time_subsets: #{from: "test"}})"#,
                "time_subsets needs 'k'",
            ),
            (
                r#"popularity(d, #{time_subsets: #{k: 2, by: "time"}})"#,
                "unknown option 'by' for time_subsets; valid options: k, from",
            ),
            (
                r#"popularity(d, #{time_subsets: "4"})"#,
                "option 'time_subsets' must be an integer k or #{k: <integer>, from:",
            ),
            (
                r#"popularity(d, #{groups: "auto", time_subsets: 2, rerank: #{method: "calibration", lambda: 0.5}})"#,
                "time_subsets ranks each subset by score; it cannot be combined with rerank (calibration)",
            ),
            (
                r#"popularity(d, #{ratio_groups: #{high_share: 0}})"#,
                "ratio_groups.high_share must be a number in (0, 1), got 0",
            ),
            (
                r#"popularity(d, #{ratio_groups: #{num: "clicks"}})"#,
                "ratio_groups.num: no interaction column 'clicks' (a statistic is 'interactions', 'positives' or a numeric interaction column:",
            ),
            (
                r#"popularity(d, #{ratio_groups: #{den: 3}})"#,
                "ratio_groups.den must be a string",
            ),
            (
                r#"popularity(d, #{ratio_groups: #{ratio: 1}})"#,
                "unknown option 'ratio' for ratio_groups; valid options: num, den, high_share",
            ),
            (
                r#"popularity(d, #{ratio_groups: "like/click"})"#,
                "option 'ratio_groups' must be a map #{num, den, high_share}",
            ),
            (r#"paired_t_test([1], [2])"#, "at least 2 pairs, got 1"),
            (r#"paired_t_test([1, 2], [2, "a"])"#, "paired_t_test: b[1] must be a number"),
            (
                r#"plot_bars("../x.svg", #{categories: ["a"], series: #{s: [1]}})"#,
                "no '..'",
            ),
            (
                r#"plot_bars("/tmp/x.svg", #{categories: ["a"], series: #{s: [1]}})"#,
                "recipes may only write inside the output folder",
            ),
            (
                r#"plot_bars("x.png", #{categories: ["a"], series: #{s: [1]}})"#,
                "the file name must end in .svg",
            ),
            (
                r#"plot_bars("x.svg", #{categories: ["a", "b"], series: #{s: [1]}})"#,
                "series 's' has 1 values, expected one per category (2)",
            ),
            (r#"plot_bars("x.svg", #{series: #{s: [1]}})"#, "needs 'categories'"),
            (
                r#"plot_bars("x.svg", #{categories: ["a"], series: [#{name: "s"}]})"#,
                "series[0] needs 'values'",
            ),
            (
                r#"plot_bars("x.svg", #{categories: ["a"], series: 3})"#,
                "option 'series' must be a map #{name: [values]} or an array",
            ),
            (
                r#"plot_bars("x.svg", #{categories: ["a"], series: #{s: [1]}, colour: 1})"#,
                "unknown option 'colour' for plot_bars()",
            ),
        ] {
            let got = err(script);
            assert!(got.contains(want), "{script}: {got}");
        }
        std::fs::remove_dir_all(&out).ok();
    }
}
