//! Training and inference of one run: components built from plugins, the
//! training loop (mini-batches with negative sampling, early stopping,
//! gradient clipping, checkpoints every `checkpoint_every` steps and at every
//! epoch end that a killed run resumes from, a guard that stops on a
//! non-finite loss or gradient naming the component, op and step, the last
//! finite checkpoint kept) and scoring for evaluation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RString, RVec};
use candle_core::{DType, Device, Tensor};
use causalrec_sdk::component::{Backbone, Backbone_TO, Loss, Loss_TO};
use causalrec_sdk::graph::GraphMut;
use causalrec_sdk::plugin::ComponentBox;
use causalrec_sdk::{
    BackboneInfo, BackboneRef, ComponentKind, Emb, EstimatorRef, LossRef, NamedVar, TrainData,
    VarId,
};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batches::Batcher;
use crate::checkpoint::Progress;
use crate::data::{Data, Part};
use crate::exec::store::OptimConfig;
use crate::exec::{Batch, HostGraph, Leaf, Model, Origin, TapeMeta};
use crate::history::HistoryOf;
use crate::plugins::Registry;
use crate::protocols::Scores;

/// Pairs per inference graph when a model without `score_all` scores every
/// item for a set of users (times the history length for history models;
/// at least one user per graph). Small graphs keep their tensors in cache
/// and in malloc's heap: ML-100K all-ranking through NFM took 4.4 s at
/// 2^15 pairs, 2.2-2.4 s at 2^12 (DCN 19.9 -> 12.0-12.9 s), with a peak
/// RSS of 1,060 -> 78 MB.
const PAIRS_PER_GRAPH: usize = 1 << 12;

/// A component chosen by a recipe: kind, name and parameters (RON text).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ComponentSpec {
    pub kind: String,
    pub name: String,
    pub params_ron: String,
    /// Embedding-sharing group (backbones only): tables are named `<share>/<table>`.
    pub share: Option<String>,
}

/// Training options (the recipe's `train(.., #{..})`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Negatives sampled per positive (uniform over items the user has not seen in training).
    pub negatives: usize,
    pub optim: OptimConfig,
    /// Patience in epochs for early stopping on the validation metric (0: off).
    pub early_stop: usize,
    /// Validation metric for early stopping, e.g. `ndcg@10`.
    pub metric: String,
    pub seed: u64,
    /// Compute with f64 (tests) instead of f32.
    pub f64: bool,
    /// How scores map to label predictions in pointwise evaluation:
    /// `logit` (sigmoid) or `identity` (MSE regression).
    #[serde(default = "default_link")]
    pub link: String,
    /// Write a resumable checkpoint every this many steps (0: at epoch ends only).
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Scale a step's gradients so that their global L2 norm (dense
    /// gradients and the touched rows' summed gradients) is at most this (0: off).
    #[serde(default)]
    pub clip_grad_norm: f64,
}

fn default_link() -> String {
    "logit".into()
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 1024,
            negatives: 1,
            optim: OptimConfig::default(),
            early_stop: 0,
            metric: "ndcg@10".into(),
            seed: 2024,
            f64: false,
            link: default_link(),
            checkpoint_every: 0,
            clip_grad_norm: 0.0,
        }
    }
}

/// One epoch's log line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochLog {
    pub run: String,
    pub epoch: usize,
    pub loss: f64,
    pub terms: BTreeMap<String, f64>,
    pub valid: BTreeMap<String, f64>,
    pub seconds: f64,
    pub examples_per_second: f64,
}

/// A backbone seen through its parameter scope (host side proxy).
struct ScopedBackbone {
    inner: BackboneRef,
    scope: String,
    label: String,
}

impl ScopedBackbone {
    fn call<T>(
        &self,
        g: &mut GraphMut<'_>,
        f: impl FnOnce(&mut GraphMut<'_>) -> RResult<T, RString>,
    ) -> RResult<T, RString> {
        g.enter_scope(self.scope.as_str().into());
        let r = f(g);
        g.exit_scope();
        match r {
            RResult::RErr(e) => RResult::RErr(format!("{}: {e}", self.label).into()),
            ok => ok,
        }
    }
}

impl Backbone for ScopedBackbone {
    fn info(&self) -> BackboneInfo {
        self.inner.info()
    }
    fn embed(&self, g: &mut GraphMut<'_>) -> RResult<Emb, RString> {
        self.call(g, |g| self.inner.embed(g))
    }
    fn encode_user(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString> {
        self.call(g, |g| self.inner.encode_user(g, emb))
    }
    fn encode_item(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString> {
        self.call(g, |g| self.inner.encode_item(g, emb))
    }
    fn predict(
        &self,
        g: &mut GraphMut<'_>,
        u: VarId,
        i: VarId,
        emb: &Emb,
    ) -> RResult<VarId, RString> {
        self.call(g, |g| self.inner.predict(g, u, i, emb))
    }
    fn predict_fields(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString> {
        self.call(g, |g| self.inner.predict_fields(g, emb))
    }
    fn score_all(&self, g: &mut GraphMut<'_>, user: VarId) -> RResult<ROption<VarId>, RString> {
        self.call(g, |g| self.inner.score_all(g, user))
    }
    fn prepare(&self, data: &TrainData) -> RResult<(), RString> {
        match self.inner.prepare(data) {
            RResult::RErr(e) => RResult::RErr(format!("{}: {e}", self.label).into()),
            ok => ok,
        }
    }
}

/// A loss seen through the `loss` scope (host side proxy), so that its ops
/// are attributed to it.
struct ScopedLoss {
    inner: LossRef,
    label: String,
}

impl Loss for ScopedLoss {
    fn compute(
        &self,
        g: &mut GraphMut<'_>,
        preds: abi_stable::std_types::RSlice<'_, NamedVar>,
        labels: VarId,
        weights: ROption<VarId>,
    ) -> RResult<VarId, RString> {
        g.enter_scope("loss".into());
        let r = self.inner.compute(g, preds, labels, weights);
        g.exit_scope();
        match r {
            RResult::RErr(e) => RResult::RErr(format!("{}: {e}", self.label).into()),
            ok => ok,
        }
    }
}

/// The components of a run, constructed from plugins.
pub struct Components {
    pub backbones: RVec<BackboneRef>,
    pub estimator: EstimatorRef,
    pub loss: LossRef,
    pub label: String,
    pub shares: Vec<(String, String)>,
    /// Scope name (`estimator`, a backbone role, `loss`) -> component label.
    pub scopes: Vec<(String, String)>,
}

impl Components {
    /// Build from specs: one backbone per estimator role (the same spec is reused
    /// for every role when only one is given).
    pub fn build(
        reg: &Registry,
        backbones: &[ComponentSpec],
        estimator: &ComponentSpec,
        loss: &ComponentSpec,
    ) -> Result<Components, String> {
        let (est, label) = Self::estimator(reg, estimator)?;
        let roles: Vec<String> = est.roles().into_iter().map(|r| r.to_string()).collect();
        if backbones.is_empty() {
            return Err("train() needs a backbone".into());
        }
        if backbones.len() != 1 && backbones.len() != roles.len() {
            return Err(format!(
                "estimator '{}' takes {} backbone(s) (roles: {}), got {}",
                estimator.name,
                roles.len(),
                roles.join(", "),
                backbones.len()
            ));
        }
        let mut bbs = RVec::new();
        let mut shares = Vec::new();
        let mut scopes = vec![("estimator".to_string(), label.clone())];
        for (k, role) in roles.iter().enumerate() {
            let spec = &backbones[k.min(backbones.len() - 1)];
            let inner = match reg.create(ComponentKind::Backbone, &spec.name, &spec.params_ron)? {
                ComponentBox::Backbone(b) => b,
                _ => return Err(format!("'{}' is not a backbone", spec.name)),
            };
            let label = format!(
                "backbone '{}' (plugin {})",
                spec.name,
                reg.provider(ComponentKind::Backbone, &spec.name)
            );
            if let Some(s) = &spec.share {
                shares.push((role.clone(), s.clone()));
            }
            scopes.push((role.clone(), label.clone()));
            bbs.push(Backbone_TO::from_value(
                ScopedBackbone {
                    inner,
                    scope: role.clone(),
                    label,
                },
                TD_Opaque,
            ));
        }
        let loss_obj = match reg.create(ComponentKind::Loss, &loss.name, &loss.params_ron)? {
            ComponentBox::Loss(l) => l,
            _ => return Err(format!("'{}' is not a loss", loss.name)),
        };
        let loss_label = format!(
            "loss '{}' (plugin {})",
            loss.name,
            reg.provider(ComponentKind::Loss, &loss.name)
        );
        scopes.push(("loss".into(), loss_label.clone()));
        let loss_obj = Loss_TO::from_value(
            ScopedLoss {
                inner: loss_obj,
                label: loss_label,
            },
            TD_Opaque,
        );
        Ok(Components {
            backbones: bbs,
            estimator: est,
            loss: loss_obj,
            label,
            shares,
            scopes,
        })
    }
}

impl Components {
    /// An estimator from its spec, with the label errors name it by.
    pub fn estimator(
        reg: &Registry,
        spec: &ComponentSpec,
    ) -> Result<(EstimatorRef, String), String> {
        let est = match reg.create(ComponentKind::Estimator, &spec.name, &spec.params_ron)? {
            ComponentBox::Estimator(e) => e,
            _ => return Err(format!("'{}' is not an estimator", spec.name)),
        };
        let label = format!(
            "estimator '{}' (plugin {})",
            spec.name,
            reg.provider(ComponentKind::Estimator, &spec.name)
        );
        Ok((est, label))
    }
}

/// A step's total loss, its named terms' values, and the embedding leaves it gathered.
pub type StepLoss = (Tensor, BTreeMap<String, f64>, Vec<Leaf>);

/// A trained (or training) run.
pub struct Run {
    pub name: String,
    pub model: Model,
    pub comps: Components,
    pub cfg: TrainConfig,
    pub history: Vec<EpochLog>,
    pub best_epoch: usize,
    pub best_valid: Option<f64>,
    rng: ChaCha8Rng,
    /// The data set (its [`Data::id`]) the components were last `prepare`d on.
    prepared_for: Option<u64>,
    /// Some backbone reads the `history` input.
    needs_history: bool,
    /// Where to continue training from ([`Run::restore`]).
    resume_from: Option<ResumePoint>,
    /// The configuration hash written into checkpoints.
    config_hash: String,
    /// Seconds spent in [`Run::fit`] (over resumes).
    pub train_seconds: f64,
}

/// A restored training state [`Run::fit`] continues from.
struct ResumePoint {
    progress: Progress,
    order: Vec<usize>,
    best: Option<Snapshot>,
}

/// The prefix of a step error that is a non-finite loss or gradient.
const NON_FINITE: &str = "NON_FINITE:";
/// Separates what went non-finite from where, in a [`NON_FINITE`] error.
const SEP: char = '\u{1}';

/// A step's loss, its tape and, when probing, the zero probes (tape index, variable).
type Traced = (StepLoss, Trace, Vec<(u32, candle_core::Var)>);

/// A step's tape: tensors and where each came from.
struct Trace {
    tape: Vec<Tensor>,
    meta: Vec<TapeMeta>,
    scope_paths: Vec<String>,
}

/// A candle error as the host's error text.
pub(crate) fn te(e: candle_core::Error) -> String {
    e.to_string()
}

/// A tensor's values, flattened, as f32 (scores leaving the graph).
pub(crate) fn f32_values(t: &Tensor) -> Result<Vec<f32>, String> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1())
        .map_err(te)
}

impl Run {
    /// Put another estimator on a trained run, keeping every parameter: the
    /// same trained models under another inference rule (DecRS's `alpha`,
    /// "DecRS (w/o)"). The estimator must declare the same backbone roles;
    /// it is `prepare`d again before the next evaluation.
    pub fn set_estimator(&mut self, est: EstimatorRef, label: String) -> Result<(), String> {
        let (old, new): (Vec<String>, Vec<String>) = (
            self.comps
                .estimator
                .roles()
                .iter()
                .map(|r| r.to_string())
                .collect(),
            est.roles().iter().map(|r| r.to_string()).collect(),
        );
        if old != new {
            return Err(format!(
                "{label} declares backbone roles [{}], the run was trained with [{}]",
                new.join(", "),
                old.join(", ")
            ));
        }
        self.comps.estimator = est;
        self.comps.label = label;
        self.prepared_for = None;
        Ok(())
    }

    pub fn new(
        name: &str,
        comps: Components,
        cfg: TrainConfig,
        device: Device,
    ) -> Result<Run, String> {
        cfg.optim.validate()?;
        // epochs = 0 builds and prepares the model only (for checks).
        if cfg.batch_size == 0 {
            return Err("batch_size must be > 0".into());
        }
        let dtype = if cfg.f64 { DType::F64 } else { DType::F32 };
        if !(cfg.clip_grad_norm >= 0.0 && cfg.clip_grad_norm.is_finite()) {
            return Err(format!(
                "clip_grad_norm must be a number >= 0 (0: off), got {}",
                cfg.clip_grad_norm
            ));
        }
        let mut model = Model::new(cfg.seed, dtype, device, cfg.optim.clone());
        model.clip_grad_norm = (cfg.clip_grad_norm > 0.0).then_some(cfg.clip_grad_norm);
        for (role, share) in &comps.shares {
            model.table_namespace.insert(role.clone(), share.clone());
        }
        let needs_history = comps.backbones.iter().any(|b| b.info().needs_history);
        Ok(Run {
            name: name.into(),
            model,
            needs_history,
            comps,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed),
            cfg,
            history: Vec::new(),
            best_epoch: 0,
            best_valid: None,
            prepared_for: None,
            resume_from: None,
            config_hash: String::new(),
            train_seconds: 0.0,
        })
    }

    /// What this run assembles its training batches with.
    pub fn batcher(&self) -> Batcher {
        Batcher {
            negatives: self.cfg.negatives,
            device: self.model.device.clone(),
            needs_history: self.needs_history,
        }
    }

    /// One training batch from the training positives `idx` (indices into
    /// `data.train_pos`), negatives drawn from the run's stream
    /// ([`Batcher::pairs`]).
    pub fn make_batch(&mut self, data: &Data, idx: &[usize]) -> Result<Batch, String> {
        self.batcher().pairs(data, idx, &mut self.rng)
    }

    /// Let the backbones and the estimator study the training data
    /// (`prepare`); done once per data set, before training or evaluation.
    pub fn prepare(&mut self, data: &Data) -> Result<(), String> {
        if self.prepared_for == Some(data.id) {
            return Ok(());
        }
        let td = data.train_data();
        for b in self.comps.backbones.iter() {
            b.prepare(&td)
                .into_result()
                .map_err(|e| format!("prepare: {e}"))?;
        }
        self.comps
            .estimator
            .prepare(&td)
            .into_result()
            .map_err(|e| format!("{} prepare: {e}", self.comps.label))?;
        self.prepared_for = Some(data.id);
        Ok(())
    }

    /// The number of training examples an epoch walks: labelled rows in
    /// pointwise mode, else positives.
    pub(crate) fn n_train(&self, data: &Data) -> usize {
        if data.labels.is_some() {
            data.split.train.len()
        } else {
            data.train_pos.len()
        }
    }

    /// The batch of training examples `idx` (indices into the epoch's list).
    pub(crate) fn batch_of(&mut self, data: &Data, idx: &[usize]) -> Result<Batch, String> {
        self.batcher().batch_of(data, idx, &mut self.rng)
    }

    /// Validation metrics: pointwise (AUC, MSE, log-loss) on the labelled
    /// validation rows in pointwise mode, else all-ranking Recall/NDCG@10/20.
    /// Empty when there is nothing to validate on.
    fn validate(&mut self, data: &Data) -> Result<BTreeMap<String, f64>, String> {
        if data.labels.is_some() {
            if data.split.valid.is_empty() {
                return Ok(BTreeMap::new());
            }
            let rows = data.split.valid.clone();
            let link = crate::protocols::Link::parse(&self.cfg.link)?;
            crate::protocols::pointwise_eval(self, data, &rows, link)
        } else {
            // K = 10 and 20, and the K of the early-stopping metric (e.g. ndcg@50).
            let mut ks = vec![10, 20];
            if let Some(k) = self
                .cfg
                .metric
                .split_once('@')
                .and_then(|(_, k)| k.parse::<usize>().ok())
            {
                if k > 0 && !ks.contains(&k) {
                    ks.push(k);
                }
            }
            self.rank_eval(data, Part::Valid, &ks)
        }
    }

    /// One optimisation step; returns the total loss and its named terms.
    /// A non-finite loss or gradient is an error (prefix [`NON_FINITE`])
    /// naming the first op whose output, or whose backward, went non-finite;
    /// no parameter is updated then.
    pub fn step(
        &mut self,
        data: &Data,
        batch: &Batch,
    ) -> Result<(f64, BTreeMap<String, f64>), String> {
        let seed = self.rng.random();
        self.step_seeded(data, batch, seed)
    }

    /// One step on each of `chunks` (training example indices, as for
    /// [`Run::batch_of`]) in order, the batches assembled ahead on a worker
    /// thread ([`Batcher::for_each`]); `after(k)` runs after step k.
    pub fn steps(
        &mut self,
        data: &Data,
        chunks: &[&[usize]],
        mut after: impl FnMut(usize) -> Result<(), String>,
    ) -> Result<(), String> {
        let batcher = self.batcher();
        let stream = self.rng.clone();
        batcher.for_each(data, chunks, stream, |k, batch, seed, rng| {
            self.rng = rng.clone();
            self.step_seeded(data, batch, seed)?;
            after(k)
        })
    }

    /// [`Run::step`] with the step's seed given (drawn by [`Batcher::for_each`]).
    pub fn step_seeded(
        &mut self,
        data: &Data,
        batch: &Batch,
        seed: u64,
    ) -> Result<(f64, BTreeMap<String, f64>), String> {
        let t0 = std::time::Instant::now();
        let ((loss, terms, leaves), trace) = self.forward_traced(data, batch, seed, false)?;
        self.model.timed("forward", t0);
        let value = loss
            .to_dtype(DType::F64)
            .and_then(|v| v.to_scalar::<f64>())
            .map_err(te)?;
        if !value.is_finite() {
            let at = crate::exec::first_non_finite(&trace.tape)
                .map(|k| self.describe(&trace, k, "the first non-finite value is the output of"))
                .unwrap_or_else(|| "no tape entry is non-finite".into());
            return Err(format!("{NON_FINITE}the loss became {value}{SEP}{at}"));
        }
        let t0 = std::time::Instant::now();
        let mut grads = self.model.grads(&loss, &leaves)?;
        self.model.timed("backward", t0);
        let (sq, bad) = grads.sq_norm()?;
        if !sq.is_finite() {
            let what = bad.unwrap_or_else(|| "a parameter".into());
            let at = match crate::exec::first_non_finite(&trace.tape) {
                Some(k) => self.describe(&trace, k, "the first non-finite value is the output of"),
                None => {
                    drop((loss, leaves, trace));
                    self.diagnose_backward(data, batch, seed)?
                }
            };
            return Err(format!(
                "{NON_FINITE}the gradient of {what} became non-finite{SEP}the loss is finite ({value}); {at}"
            ));
        }
        if let Some(c) = self.model.clip_grad_norm {
            grads.clip_norm(sq.sqrt(), c)?;
        }
        self.model.apply(grads)?;
        if let Some(p) = &mut self.model.phases {
            p.end_step();
        }
        Ok((value, terms))
    }

    /// Tape entry `k` in words: origin, component, scope.
    fn describe(&self, trace: &Trace, k: usize, lead: &str) -> String {
        let Some(m) = trace.meta.get(k) else {
            return format!("{lead} tape entry {k}");
        };
        let path = trace
            .scope_paths
            .get(m.scope as usize)
            .map(String::as_str)
            .unwrap_or("");
        // The innermost scope that names a component.
        let comp = path
            .rsplit('/')
            .find_map(|seg| {
                self.comps
                    .scopes
                    .iter()
                    .find(|(s, _)| s == seg)
                    .map(|(_, l)| l.clone())
            })
            .unwrap_or_else(|| self.comps.label.clone());
        let scope = if path.is_empty() { "(root)" } else { path };
        format!(
            "{lead} {} (tape entry {k}) in {comp}, scope {scope}",
            m.origin
        )
    }

    /// With a finite forward pass and a non-finite gradient: replay the step
    /// (same seed, parameters not yet updated) with a zero variable added to
    /// every op output, and name the op whose backward first produced a
    /// non-finite gradient (the consumer of the latest tape entry whose
    /// incoming gradient is non-finite).
    fn diagnose_backward(
        &mut self,
        data: &Data,
        batch: &Batch,
        seed: u64,
    ) -> Result<String, String> {
        let ((loss, _, _), trace, probes) = self.forward_probed(data, batch, seed)?;
        let grads = loss.backward().map_err(|e| format!("backward: {e}"))?;
        let bad = |t: &Tensor| grads.get(t).is_some_and(|g| !crate::exec::all_finite(g));
        // Candidates: probed op outputs and parameter entries.
        let mut worst: Option<usize> = None;
        for (k, z) in &probes {
            if bad(z.as_tensor()) {
                worst = worst.max(Some(*k as usize));
            }
        }
        for (k, m) in trace.meta.iter().enumerate() {
            if matches!(m.origin, Origin::Param(_)) && bad(&trace.tape[k]) {
                worst = worst.max(Some(k));
            }
        }
        let Some(j) = worst else {
            return Ok("no op's gradient was found non-finite in a replay".into());
        };
        let consumer = trace
            .meta
            .iter()
            .enumerate()
            .skip(j + 1)
            .find(|(_, m)| m.inputs.contains(&(j as u32)))
            .map(|(k, _)| k);
        Ok(match consumer {
            Some(k) => format!(
                "{}; its input {}",
                self.describe(
                    &trace,
                    k,
                    "the gradient first went non-finite in the backward of"
                ),
                self.describe(&trace, j, "is the output of")
            ),
            None => self.describe(
                &trace,
                j,
                "the first non-finite gradient flows into the output of",
            ),
        })
    }

    /// The training loss of a batch (the sum of the estimator's named
    /// terms), the terms' values and the embedding leaves the step gathered.
    /// `seed` drives the step's randomness (dropout), so a repeat is exact.
    pub fn forward_loss(
        &mut self,
        data: &Data,
        batch: &Batch,
        seed: u64,
    ) -> Result<StepLoss, String> {
        self.forward_traced(data, batch, seed, false)
            .map(|(l, _)| l)
    }

    fn forward_traced(
        &mut self,
        data: &Data,
        batch: &Batch,
        seed: u64,
        probe: bool,
    ) -> Result<(StepLoss, Trace), String> {
        let (l, t, _) = self.forward_with(data, batch, seed, probe)?;
        Ok((l, t))
    }

    fn forward_probed(&mut self, data: &Data, batch: &Batch, seed: u64) -> Result<Traced, String> {
        self.forward_with(data, batch, seed, true)
    }

    fn forward_with(
        &mut self,
        data: &Data,
        batch: &Batch,
        seed: u64,
        probe: bool,
    ) -> Result<Traced, String> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        {
            let mut g = HostGraph::new(&mut self.model, batch, &data.schema, true, &mut rng);
            g.probe = probe;
            let named: RVec<NamedVar> = {
                let mut gm: GraphMut<'_> = causalrec_sdk::Graph_TO::from_ptr(&mut g, TD_Opaque);
                // The estimator's own parameters live in the `estimator` namespace;
                // backbone proxies push their role on top.
                gm.enter_scope("estimator".into());
                let r = self.comps.estimator.train_step(
                    &mut gm,
                    self.comps.backbones.as_rslice(),
                    &self.comps.loss,
                );
                gm.exit_scope();
                match r {
                    RResult::ROk(v) => v,
                    RResult::RErr(e) => {
                        return Err(format!("{} train_step: {e}", self.comps.label))
                    }
                }
            };
            if named.is_empty() {
                return Err(format!("{} returned no loss terms", self.comps.label));
            }
            let mut total: Option<Tensor> = None;
            let mut terms = BTreeMap::new();
            for nv in named.iter() {
                let t = g.get(nv.var)?.clone();
                if t.elem_count() != 1 {
                    return Err(format!(
                        "loss term '{}' is not a scalar (shape {:?})",
                        nv.name,
                        t.dims()
                    ));
                }
                let t = t.reshape(()).map_err(te)?;
                terms.insert(
                    nv.name.to_string(),
                    t.to_dtype(DType::F64)
                        .and_then(|v| v.to_scalar::<f64>())
                        .map_err(te)?,
                );
                total = Some(match total {
                    None => t,
                    Some(s) => (s + t).map_err(te)?,
                });
            }
            let leaves = std::mem::take(&mut g.leaves);
            let trace = Trace {
                tape: std::mem::take(&mut g.tape),
                meta: std::mem::take(&mut g.meta),
                scope_paths: std::mem::take(&mut g.scope_paths),
            };
            let probes = std::mem::take(&mut g.probes);
            Ok(((total.expect("non-empty"), terms, leaves), trace, probes))
        }
    }

    /// Train for the configured epochs, or what is left of them after
    /// [`Run::restore`]. `on_epoch` receives each log (for metrics.jsonl).
    /// With `ckpt_dir`, the training state is written to
    /// `<ckpt_dir>/<run>-last.safetensors` every `checkpoint_every` steps and
    /// at every epoch end ([`crate::checkpoint`]).
    pub fn fit(
        &mut self,
        data: &Data,
        ckpt_dir: Option<&Path>,
        mut on_epoch: impl FnMut(&EpochLog),
    ) -> Result<(), String> {
        let started = std::time::Instant::now();
        let before = self.train_seconds;
        let r = self.fit_inner(data, ckpt_dir, &mut on_epoch, started, before);
        self.train_seconds = before + started.elapsed().as_secs_f64();
        r
    }

    /// The path of the run's resumable checkpoint in `dir`.
    pub fn last_checkpoint(&self, dir: &Path) -> PathBuf {
        dir.join(format!(
            "{}-last.safetensors",
            crate::report::file_stem(&self.name)
        ))
    }

    /// The configuration hash checkpoints carry: set by the caller (the
    /// recipe's training key); empty when unset.
    pub fn set_config_hash(&mut self, h: String) {
        self.config_hash = h;
    }

    /// Load a training state written by [`Run::fit`] (or [`Run::save_final`]):
    /// parameters, optimizer state, random generator, epoch logs, early
    /// stopping; the next [`Run::fit`] continues from it. A checkpoint of
    /// another configuration is refused.
    pub fn restore(&mut self, path: &Path) -> Result<(), String> {
        let st = crate::checkpoint::load_state(path)?;
        if st.progress.config_hash != self.config_hash {
            return Err(format!(
                "{}: the checkpoint was written for configuration {}, run '{}' has {}",
                path.display(),
                st.progress.config_hash,
                self.name,
                self.config_hash
            ));
        }
        st.restore_model(&mut self.model, path)?;
        let p = &st.progress;
        let seed = decode_hex32(&p.rng_seed)
            .ok_or_else(|| format!("{}: bad random generator seed", path.display()))?;
        let pos: u128 = p
            .rng_word_pos
            .parse()
            .map_err(|_| format!("{}: bad random generator position", path.display()))?;
        self.rng = ChaCha8Rng::from_seed(seed);
        self.rng.set_stream(p.rng_stream);
        self.rng.set_word_pos(pos);
        self.history = p.history.clone();
        self.best_epoch = p.best_epoch;
        self.best_valid = p.best_valid;
        self.train_seconds = p.train_seconds;
        let best = st
            .best
            .clone()
            .map(|(dense, tables)| Snapshot { dense, tables });
        self.resume_from = Some(ResumePoint {
            progress: st.progress,
            order: st.order,
            best,
        });
        Ok(())
    }

    /// Whether the restored state (if any) is a finished training.
    pub fn finished(&self) -> bool {
        self.resume_from
            .as_ref()
            .is_some_and(|r| r.progress.finished)
    }

    /// The epoch the restored state (if any) has logged up to.
    pub fn logged_epochs(&self) -> usize {
        self.history.len()
    }

    fn progress(
        &self,
        epoch: usize,
        batches_done: usize,
        epoch_done: bool,
        finished: bool,
    ) -> Progress {
        Progress {
            config_hash: self.config_hash.clone(),
            epoch,
            batches_done,
            epoch_done,
            finished,
            rng_seed: self
                .rng
                .get_seed()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            rng_stream: self.rng.get_stream(),
            rng_word_pos: self.rng.get_word_pos().to_string(),
            dense_step: self.model.dense_opt.export_state().0,
            history: self.history.clone(),
            best_epoch: self.best_epoch,
            best_valid: self.best_valid,
            ..Progress::default()
        }
    }

    /// Write the trained model with its logs and early-stopping result
    /// (no optimizer state): what a resumed recipe loads for a training
    /// that had finished.
    pub fn save_final(&self, path: &Path) -> Result<(), String> {
        let ep = self.history.len();
        let mut p = self.progress(ep, 0, true, true);
        p.train_seconds = self.train_seconds;
        crate::checkpoint::save_state(path, &self.model, false, &p, &[], None)
    }

    fn fit_inner(
        &mut self,
        data: &Data,
        ckpt_dir: Option<&Path>,
        on_epoch: &mut impl FnMut(&EpochLog),
        started: std::time::Instant,
        before: f64,
    ) -> Result<(), String> {
        self.prepare(data)?;
        let pointwise = data.labels.is_some();
        if pointwise && self.cfg.negatives > 0 {
            tracing::debug!("pointwise training on labelled rows: negatives are not sampled");
        }
        let mut order: Vec<usize> = (0..self.n_train(data)).collect();
        if order.is_empty() {
            return Err(format!("run '{}': no training examples", self.name));
        }
        if pointwise && self.cfg.early_stop > 0 && data.split.valid.is_empty() {
            return Err(format!(
                "run '{}': early_stop needs a validation part, and data set '{}' has none",
                self.name, data.name
            ));
        }
        let bs = self.cfg.batch_size;
        let n_batches = order.len().div_ceil(bs);
        let resume = self.resume_from.take();
        let mut best_snapshot: Option<Snapshot> = None;
        let mut since_best = 0;
        let mut first_epoch = 1;
        // Within the first epoch of a resume: batches done and partial sums.
        let mut partial: Option<Progress> = None;
        let mut last_ckpt: Option<PathBuf> = None;
        if let Some(r) = resume {
            best_snapshot = r.best;
            since_best = r.progress.since_best;
            last_ckpt = ckpt_dir.map(|d| self.last_checkpoint(d));
            if r.progress.finished {
                if let Some(s) = best_snapshot {
                    s.restore(&mut self.model)?;
                }
                return Ok(());
            }
            if r.progress.epoch_done {
                first_epoch = r.progress.epoch + 1;
            } else {
                if r.order.len() != order.len() {
                    return Err(format!(
                        "run '{}': the checkpoint's epoch walks {} examples, the data has {}",
                        self.name,
                        r.order.len(),
                        order.len()
                    ));
                }
                first_epoch = r.progress.epoch;
                order = r.order;
                partial = Some(r.progress);
            }
        }
        let bar = ProgressBar::new((self.cfg.epochs * n_batches) as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or(ProgressStyle::default_bar()),
        );
        bar.set_prefix(self.name.clone());
        if std::env::var_os("CAUSALREC_NO_PROGRESS").is_some() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_position(((first_epoch - 1) * n_batches) as u64);
        let every = self.cfg.checkpoint_every;
        for epoch in first_epoch..=self.cfg.epochs {
            let t0 = std::time::Instant::now();
            let (mut sum, mut count, mut skip) = (0.0, 0usize, 0usize);
            let mut term_sums: BTreeMap<String, f64> = BTreeMap::new();
            match partial.take() {
                Some(p) => {
                    (sum, count, term_sums, skip) = (p.sum, p.count, p.term_sums, p.batches_done)
                }
                None => order.shuffle(&mut self.rng),
            }
            bar.inc(skip as u64);
            let chunks: Vec<&[usize]> = order.chunks(bs).skip(skip).collect();
            let batcher = self.batcher();
            let stream = self.rng.clone();
            batcher.for_each(data, &chunks, stream, |k, batch, seed, after| {
                let b = skip + k;
                // the stream as a sequential loop leaves it after this step's draws
                self.rng = after.clone();
                let (l, terms) = match self.step_seeded(data, batch, seed) {
                    Ok(v) => v,
                    Err(e) if e.starts_with(NON_FINITE) => {
                        bar.abandon();
                        let kept = match &last_ckpt {
                            Some(p) => {
                                format!("the last finite checkpoint is kept at {}", p.display())
                            }
                            None => "no finite checkpoint exists yet".into(),
                        };
                        let e = &e[NON_FINITE.len()..];
                        let (what, detail) = e.split_once(SEP).unwrap_or((e, ""));
                        return Err(format!(
                            "run '{}': {what} at epoch {epoch}, step {}: {detail}; training stopped; {kept}",
                            self.name,
                            b + 1
                        ));
                    }
                    Err(e) => return Err(e),
                };
                sum += l;
                count += 1;
                for (k, v) in terms {
                    *term_sums.entry(k).or_default() += v;
                }
                bar.inc(1);
                let global = (epoch - 1) * n_batches + b + 1;
                if let Some(dir) = ckpt_dir {
                    if every > 0 && global.is_multiple_of(every) && b + 1 < n_batches {
                        let mut p = self.progress(epoch, b + 1, false, false);
                        (p.sum, p.count, p.term_sums) = (sum, count, term_sums.clone());
                        p.since_best = since_best;
                        p.train_seconds = before + started.elapsed().as_secs_f64();
                        last_ckpt =
                            Some(self.write_state(dir, &p, &order, best_snapshot.as_ref())?);
                    }
                }
                Ok(())
            })?;
            let secs = t0.elapsed().as_secs_f64();
            let loss = sum / count.max(1) as f64;
            bar.set_message(format!("epoch {epoch} loss {loss:.4}"));
            let valid = if self.cfg.early_stop > 0 || epoch == self.cfg.epochs {
                self.validate(data)?
            } else {
                BTreeMap::new()
            };
            let log = EpochLog {
                run: self.name.clone(),
                epoch,
                loss,
                terms: term_sums
                    .into_iter()
                    .map(|(k, v)| (k, v / count.max(1) as f64))
                    .collect(),
                valid: valid.clone(),
                seconds: secs,
                examples_per_second: (order.len()
                    * if pointwise { 1 } else { 1 + self.cfg.negatives })
                    as f64
                    / secs.max(1e-9),
            };
            on_epoch(&log);
            self.history.push(log);
            let mut stop = false;
            if self.cfg.early_stop > 0 {
                let v = *valid.get(&self.cfg.metric).ok_or_else(|| {
                    format!(
                        "early-stop metric '{}' unknown (have: {})",
                        self.cfg.metric,
                        valid.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })?;
                // The early-stop metric is maximised; error metrics are minimised.
                let better = |v: f64, b: f64| {
                    if lower_is_better(&self.cfg.metric) {
                        v < b
                    } else {
                        v > b
                    }
                };
                if self.best_valid.is_none_or(|b| better(v, b)) {
                    self.best_valid = Some(v);
                    self.best_epoch = epoch;
                    best_snapshot = Some(Snapshot::take(&self.model));
                    since_best = 0;
                } else {
                    since_best += 1;
                    if since_best >= self.cfg.early_stop {
                        tracing::info!(
                            "{}: early stop at epoch {epoch}, best epoch {}",
                            self.name,
                            self.best_epoch
                        );
                        stop = true;
                    }
                }
            } else {
                self.best_epoch = epoch;
            }
            if let Some(dir) = ckpt_dir {
                let finished = stop || epoch == self.cfg.epochs;
                let mut p = self.progress(epoch, n_batches, true, finished);
                p.since_best = since_best;
                p.train_seconds = before + started.elapsed().as_secs_f64();
                last_ckpt = Some(self.write_state(dir, &p, &order, best_snapshot.as_ref())?);
            }
            if stop {
                break;
            }
        }
        bar.finish_and_clear();
        if let Some(s) = best_snapshot {
            s.restore(&mut self.model)?;
        }
        Ok(())
    }

    /// Write the resumable checkpoint; returns its path.
    fn write_state(
        &self,
        dir: &Path,
        p: &Progress,
        order: &[usize],
        best: Option<&Snapshot>,
    ) -> Result<PathBuf, String> {
        let path = self.last_checkpoint(dir);
        let best = best.map(|s| (s.dense.as_slice(), s.tables.as_slice()));
        crate::checkpoint::save_state(&path, &self.model, true, p, order, best)
            .map_err(|e| format!("run '{}': checkpoint: {e}", self.name))?;
        Ok(path)
    }

    fn infer_graph<R>(
        &mut self,
        data: &Data,
        batch: &Batch,
        f: impl FnOnce(&mut GraphMut<'_>, &Components) -> RResult<R, RString>,
    ) -> Result<(R, HostGraphOut), String> {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut g = HostGraph::new(&mut self.model, batch, &data.schema, false, &mut rng);
        let r = {
            let mut gm: GraphMut<'_> = causalrec_sdk::Graph_TO::from_ptr(&mut g, TD_Opaque);
            gm.enter_scope("estimator".into());
            let r = f(&mut gm, &self.comps);
            gm.exit_scope();
            r.into_result()
                .map_err(|e| format!("{}: {e}", self.comps.label))?
        };
        Ok((
            r,
            HostGraphOut {
                tape: std::mem::take(&mut g.tape),
            },
        ))
    }

    /// An inference batch of (user, item) pairs: ids and features, the
    /// context fields of `rows` when given, each user's latest history.
    fn inference_batch(
        &self,
        data: &Data,
        users: &[u32],
        items: &[u32],
        rows: Option<&[usize]>,
    ) -> Result<Batch, String> {
        let dev = &self.model.device;
        let mut batch = data.pair_batch(users, items, dev)?;
        if let Some(rows) = rows {
            data.add_context(&mut batch, rows, dev)?;
        }
        self.add_latest_history(data, &mut batch, users)?;
        Ok(batch)
    }

    /// Inference batches: each user's latest training history, when a backbone reads it.
    fn add_latest_history(
        &self,
        data: &Data,
        batch: &mut Batch,
        users: &[u32],
    ) -> Result<(), String> {
        if !self.needs_history {
            return Ok(());
        }
        let keys: Vec<HistoryOf> = users.iter().map(|&u| HistoryOf::Latest(u)).collect();
        data.histories.add_to(batch, &keys, &self.model.device)
    }

    /// Run `f` as one evaluation (the parameters do not change in it):
    /// inference ops that read no batch input are computed once for all its
    /// blocks of users ([`crate::exec::Model::eval_memo`]).
    /// `CAUSALREC_EVAL_MEMO=0` turns the memo off.
    pub fn with_eval_memo<R>(&mut self, f: impl FnOnce(&mut Run) -> R) -> R {
        if !crate::switched_off("CAUSALREC_EVAL_MEMO") {
            self.model.eval_memo = Some(Default::default());
        }
        let r = f(self);
        self.model.eval_memo = None;
        r
    }

    /// Scores of every item for `users`: `[users.len() * n_items]`, row-major.
    pub fn score_users(&mut self, data: &Data, users: &[u32]) -> Result<Scores, String> {
        if let Some(all) = self.score_all_only(data, users)? {
            return Ok(Scores::Tensor(all));
        }
        // Fallback: score every (user, item) pair, about PAIRS_PER_GRAPH
        // pairs (times the history length for history models) per graph.
        let n = data.ds.n_items;
        let per_pair = if self.needs_history {
            1 + data.schema.history_len as usize
        } else {
            1
        };
        let mut all = Vec::with_capacity(users.len() * n);
        for us in users.chunks((PAIRS_PER_GRAPH / (n * per_pair).max(1)).max(1)) {
            let pu: Vec<u32> = us.iter().flat_map(|&u| std::iter::repeat_n(u, n)).collect();
            let pi: Vec<u32> = us.iter().flat_map(|_| 0..n as u32).collect();
            all.extend(self.score_pairs(data, &pu, &pi)?);
        }
        Ok(Scores::Values(all))
    }

    /// The estimator's `score_all` for `users` (`[users.len(), n_items]`),
    /// `None` when it has none.
    pub fn score_all_only(&mut self, data: &Data, users: &[u32]) -> Result<Option<Tensor>, String> {
        self.prepare(data)?;
        let dev = self.model.device.clone();
        let mut batch = data.user_batch(users, &dev)?;
        self.add_latest_history(data, &mut batch, users)?;
        let (opt, out) = self
            .infer_graph(data, &batch, |g, c| {
                c.estimator.score_all(g, c.backbones.as_rslice())
            })
            .map_err(|e| with_context_hint(data, e))?;
        let ROption::RSome(v) = opt else {
            return Ok(None);
        };
        let n = data.ds.n_items;
        let t = out.get(v)?;
        if t.dims() != [users.len(), n] {
            return Err(format!(
                "{}: score_all returned shape {:?}, expected [{}, {n}]",
                self.comps.label,
                t.dims(),
                users.len()
            ));
        }
        Ok(Some(t.clone()))
    }

    /// One score per (user, item) pair.
    pub fn score_pairs(
        &mut self,
        data: &Data,
        users: &[u32],
        items: &[u32],
    ) -> Result<Vec<f32>, String> {
        self.score_pairs_of(data, users, items, None)
    }

    /// One score per interaction row: its (user, item) pair with the row's
    /// context fields (`dataset(.., #{context})`), as in training.
    pub fn score_rows(&mut self, data: &Data, rows: &[usize]) -> Result<Vec<f32>, String> {
        let (u, i) = (data.ds.user_col(), data.ds.item_col());
        let users: Vec<u32> = rows.iter().map(|&r| u[r]).collect();
        let items: Vec<u32> = rows.iter().map(|&r| i[r]).collect();
        self.score_pairs_of(data, &users, &items, Some(rows))
    }

    /// [`Run::score_pairs`], with the context fields of `rows` when given.
    fn score_pairs_of(
        &mut self,
        data: &Data,
        users: &[u32],
        items: &[u32],
        rows: Option<&[usize]>,
    ) -> Result<Vec<f32>, String> {
        self.prepare(data)?;
        let batch = self.inference_batch(data, users, items, rows)?;
        let (v, out) = self
            .infer_graph(data, &batch, |g, c| {
                c.estimator.score(g, c.backbones.as_rslice())
            })
            .map_err(|e| match rows {
                None => with_context_hint(data, e),
                Some(_) => e,
            })?;
        let t = out.get(v)?;
        if t.elem_count() != users.len() {
            return Err(format!(
                "{}: score returned shape {:?}, expected [{}]",
                self.comps.label,
                t.dims(),
                users.len()
            ));
        }
        f32_values(t)
    }

    /// The estimator's named representations ([`causalrec_sdk::EstimatorImpl::represent`])
    /// of interaction rows: per name, one vector per row (each row's
    /// (user, item) pair with its context fields, as in scoring).
    pub fn represent_rows(
        &mut self,
        data: &Data,
        rows: &[usize],
    ) -> Result<Representations, String> {
        self.prepare(data)?;
        let (uc, ic) = (data.ds.user_col(), data.ds.item_col());
        let mut out: Representations = Vec::new();
        for chunk in rows.chunks(4096) {
            let users: Vec<u32> = chunk.iter().map(|&r| uc[r]).collect();
            let items: Vec<u32> = chunk.iter().map(|&r| ic[r]).collect();
            let batch = self.inference_batch(data, &users, &items, Some(chunk))?;
            let (named, g) = self.infer_graph(data, &batch, |g, c| {
                c.estimator.represent(g, c.backbones.as_rslice())
            })?;
            if named.is_empty() {
                return Err(format!(
                    "{}: the estimator offers no representations (represent)",
                    self.comps.label
                ));
            }
            for (k, nv) in named.iter().enumerate() {
                let t = g.get(nv.var)?;
                let dims = t.dims().to_vec();
                if dims.len() != 2 || dims[0] != chunk.len() {
                    return Err(format!(
                        "{}: representation '{}' has shape {dims:?}, expected [{}, k]",
                        self.comps.label,
                        nv.name,
                        chunk.len()
                    ));
                }
                let flat = f32_values(t)?;
                let vecs = flat.chunks(dims[1]).map(<[f32]>::to_vec);
                match out.get_mut(k) {
                    Some((_, v)) => v.extend(vecs),
                    None => out.push((nv.name.to_string(), vecs.collect())),
                }
            }
        }
        Ok(out)
    }

    /// All-ranking Recall/NDCG@K on a part of the split.
    pub fn rank_eval(
        &mut self,
        data: &Data,
        part: Part,
        ks: &[usize],
    ) -> Result<BTreeMap<String, f64>, String> {
        self.with_eval_memo(|run| {
            crate::protocols::all_ranking(data, part, ks, |us| run.score_users(data, us))
        })
    }

    /// [`Run::rank_eval`] with groups, a re-ranker or drift groups.
    pub fn rank_eval_with(
        &mut self,
        data: &Data,
        part: Part,
        ks: &[usize],
        opts: crate::protocols::RankingOptions,
    ) -> Result<BTreeMap<String, f64>, String> {
        self.with_eval_memo(|run| {
            crate::protocols::all_ranking_with(data, part, ks, opts, |us| run.score_users(data, us))
        })
    }
}

/// Whether a smaller value of `metric` is better (errors and losses).
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "mse" | "mae" | "rmse" | "logloss")
}

/// The tape of a finished inference graph.
/// Named per-example vectors: (name, one vector per row).
pub type Representations = Vec<(String, Vec<Vec<f32>>)>;

struct HostGraphOut {
    tape: Vec<Tensor>,
}

impl HostGraphOut {
    fn get(&self, v: VarId) -> Result<&Tensor, String> {
        self.tape
            .get(v.0 as usize)
            .ok_or_else(|| format!("handle {} out of range", v.0))
    }
}

/// 32 bytes from 64 hex digits.
fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (k, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * k..2 * k + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A copy of parameter values (best epoch for early stopping).
#[derive(Clone)]
struct Snapshot {
    dense: Vec<(String, Tensor)>,
    tables: Vec<(String, Vec<f32>)>,
}

impl Snapshot {
    fn take(m: &Model) -> Snapshot {
        Snapshot {
            dense: m
                .dense
                .params
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_tensor()
                            .copy()
                            .unwrap_or_else(|_| v.as_tensor().clone()),
                    )
                })
                .collect(),
            tables: m
                .tables
                .tables
                .iter()
                .map(|(k, t)| (k.clone(), t.data().to_vec()))
                .collect(),
        }
    }
    fn restore(self, m: &mut Model) -> Result<(), String> {
        for (k, t) in self.dense {
            if let Some(v) = m.dense.params.get(&k) {
                let t = t.to_dtype(v.dtype()).and_then(|t| t.to_device(v.device()));
                v.set(&t.map_err(te)?).map_err(te)?;
            }
        }
        for (k, d) in self.tables {
            if let Some(t) = m.tables.tables.get_mut(&k) {
                t.set_data(d).map_err(|e| format!("table '{k}': {e}"))?;
            }
        }
        Ok(())
    }
}

/// A scoring error of a batch without interaction rows (all-ranking,
/// plain pairs), with a hint when the data has context fields: such
/// batches do not carry them, so a backbone whose shapes count the fields
/// (DCN) sees fewer than in training.
fn with_context_hint(data: &Data, e: String) -> String {
    if data.config.context.is_empty() {
        return e;
    }
    format!(
        "{e} (the data set has context fields {}, which batches without interaction rows, \
         all-ranking and plain (user, item) pairs, do not carry; evaluate on rows: \
         \"pointwise\", \"impressions\" or \"auc\")",
        data.config
            .context
            .iter()
            .map(|c| format!("inter.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
