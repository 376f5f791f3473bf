//! The component contracts.
//!
//! **Backbone** — stages with named hook points, after the structure every seed
//! paper assumes (embedding -> user encoder -> predictor):
//! - `embed(g)` -> [`Emb`]: `user` `[B,d]`, `item` `[B,d]` (the candidate), `history`
//!   `[B,L,d]` + `history_mask` `[B,L]`, biases, `modality:<name>`, and `fields`
//!   (one `[B,d]` per field) for field-interaction models;
//! - `encode_user(g, emb)` / `encode_item(g, emb)` -> representations;
//! - `predict(g, user, item, emb)` -> one logit per example;
//! - `predict_fields(g, emb)` -> one logit per example from `emb.fields` (FM, NFM, DCN);
//! - `score_all(g, user)` -> `[B, n_items]` where the model can score every item at once.
//!
//! An all-ranking batch (users only, at inference) carries the users' ids and
//! features and, when the data has item features, every item's as well, in
//! item id order, under `catalog.item.<field>` ([`catalog_input`]; with
//! `.mask` for bags): a
//! backbone whose score splits into a user part and an item part scores
//! every item with its features at once (FM does). A backbone that can
//! represent every item at once may add `all_item` and, per modality,
//! `all_modality:<m>` (`[n_items, d]`) to its `embed` map next to
//! `user_modality:<m>`, so an estimator that combines modality scores
//! (HCR) can score every item without per-pair graphs (MMGCN does).
//!
//! An estimator may rewrite the hook-point map between stages: replace `item`
//! and `history` (IV4Rec+ treatment reconstruction), append a field (DecRS's
//! backdoor field), call several backbones (HCR's f, h1, h2).
//!
//! **Estimator** — owns the training objective and the inference rule:
//! `train_step(g, backbones, loss)` -> named loss terms (the host sums them),
//! `score(g, backbones)` -> logits `[B]`, `score_all(g, backbones)` -> `[B, n_items]`.
//!
//! **Loss** — named predictions, labels, optional weights -> a scalar.
//!
//! Plugin authors implement the plain traits [`BackboneImpl`], [`EstimatorImpl`],
//! [`LossImpl`]; the SDK's adapters turn them into the `#[sabi_trait]` objects,
//! catch panics and check the sticky errors of [`Ctx`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RSlice, RString, RVec},
};

use crate::abi::{BackboneInfo, Emb, NamedVar, TrainData, VarId};
use crate::graph::GraphMut;
use crate::model::{Ctx, Result, Var};

/// The all-ranking batch input holding every item's values of feature
/// field `field` (`item.genre` -> `catalog.item.genre`; a bag's mask is
/// `<that>.mask`).
pub fn catalog_input(field: &str) -> String {
    format!("catalog.{field}")
}

/// A backbone across the boundary.
#[sabi_trait]
pub trait Backbone: Send + Sync {
    fn info(&self) -> BackboneInfo;
    fn embed(&self, g: &mut GraphMut<'_>) -> RResult<Emb, RString>;
    fn encode_user(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString>;
    fn encode_item(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString>;
    fn predict(
        &self,
        g: &mut GraphMut<'_>,
        user: VarId,
        item: VarId,
        emb: &Emb,
    ) -> RResult<VarId, RString>;
    fn predict_fields(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString>;
    fn score_all(&self, g: &mut GraphMut<'_>, user: VarId) -> RResult<ROption<VarId>, RString>;
    /// Study the training data once before training (graphs, statistics).
    #[sabi(last_prefix_field)]
    fn prepare(&self, data: &TrainData) -> RResult<(), RString>;
}

/// An owned backbone object.
pub type BackboneRef = Backbone_TO<'static, RBox<()>>;

/// A loss across the boundary.
#[sabi_trait]
pub trait Loss: Send + Sync {
    #[sabi(last_prefix_field)]
    fn compute(
        &self,
        g: &mut GraphMut<'_>,
        preds: RSlice<'_, NamedVar>,
        labels: VarId,
        weights: ROption<VarId>,
    ) -> RResult<VarId, RString>;
}

/// An owned loss object.
pub type LossRef = Loss_TO<'static, RBox<()>>;

/// An estimator across the boundary.
#[sabi_trait]
pub trait Estimator: Send + Sync {
    /// The backbone roles it needs, in order (e.g. `["main"]`, HCR: `["f", "h1", "h2"]`).
    fn roles(&self) -> RVec<RString>;
    fn train_step(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
        loss: &LossRef,
    ) -> RResult<RVec<NamedVar>, RString>;
    fn score(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
    ) -> RResult<VarId, RString>;
    fn score_all(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
    ) -> RResult<ROption<VarId>, RString>;
    /// Study the training data once before training (propensities, priors).
    fn prepare(&self, data: &TrainData) -> RResult<(), RString>;
    /// Named per-example representations `[B, k]` of an inference batch,
    /// for diagnostics (CP2Rec's Figure 4: the proxy and purified embeddings).
    #[sabi(last_prefix_field)]
    fn represent(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
    ) -> RResult<RVec<NamedVar>, RString>;
}

/// An owned estimator object.
pub type EstimatorRef = Estimator_TO<'static, RBox<()>>;

// ---------------------------------------------------------------- plain traits

/// What a backbone author implements.
pub trait BackboneImpl: Send + Sync + 'static {
    /// Capabilities.
    fn info(&self) -> BackboneInfo;
    /// Embedding stage: the hook-point map.
    fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb>;
    /// User encoder; the default is the identity on the `user` hook point.
    fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        g.get(emb, "user")
    }
    /// Item encoder; the default is the identity on the `item` hook point.
    fn encode_item<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        g.get(emb, "item")
    }
    /// One logit per example.
    fn predict<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        user: Var<'c>,
        item: Var<'c>,
        emb: &Emb,
    ) -> Result<Var<'c>>;
    /// One logit per example from `emb.fields` (field-interaction models only).
    fn predict_fields<'c>(&self, _g: &'c Ctx<'_, '_>, _emb: &Emb) -> Result<Var<'c>> {
        Err("this backbone is not a field-interaction model (no predict_fields)".into())
    }
    /// Scores of every item for the batch's users, when the model allows it.
    /// Study the training data once before training (e.g. build a graph).
    /// Called again with the same data before evaluation of a resumed run,
    /// so state kept here must be a function of the data only.
    fn prepare(&self, _data: &TrainData) -> Result<()> {
        Ok(())
    }
    fn score_all<'c>(&self, _g: &'c Ctx<'_, '_>, _user: Var<'c>) -> Result<Option<Var<'c>>> {
        Ok(None)
    }
}

/// What a loss author implements.
pub trait LossImpl: Send + Sync + 'static {
    /// Scalar loss from named predictions (`logit` is the main one), labels, optional weights.
    fn compute<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        preds: &[(String, Var<'c>)],
        labels: Var<'c>,
        weights: Option<Var<'c>>,
    ) -> Result<Var<'c>>;
}

/// What an estimator author implements.
pub trait EstimatorImpl: Send + Sync + 'static {
    /// Backbone roles, in order.
    fn roles(&self) -> Vec<String> {
        vec!["main".into()]
    }
    /// One training step: named loss terms (summed by the host).
    ///
    /// The default is conventional training: the recipe's loss on the batch
    /// labels (and `weight` input, when present) of this estimator's `score`.
    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let logit = self.score(g, bb)?;
        Ok(vec![("loss".into(), loss.on_labels(g, logit)?)])
    }
    /// Inference: one score (logit) per example.
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>>;
    /// Inference over every item, where possible.
    fn score_all<'c>(&self, _g: &'c Ctx<'_, '_>, _bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        Ok(None)
    }
    /// Study the training data once before training (propensities, priors);
    /// the state must be a function of the data only (see [`BackboneImpl::prepare`]).
    fn prepare(&self, _data: &TrainData) -> Result<()> {
        Ok(())
    }
    /// Named per-example representations (`[B, k]` each) of an inference
    /// batch, for diagnostics such as embedding plots; none by default.
    fn represent<'c>(
        &self,
        _g: &'c Ctx<'_, '_>,
        _bb: &Backbones<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        Ok(Vec::new())
    }
}

// ---------------------------------------------------------------- handles for estimators

/// A backbone as an estimator calls it.
#[derive(Clone, Copy)]
pub struct BackboneHandle<'r> {
    pub role: &'r str,
    inner: &'r BackboneRef,
}

impl<'r> BackboneHandle<'r> {
    /// Call one stage of the backbone with the raw graph; errors name the role and stage.
    fn stage<'g, R>(
        &self,
        g: &Ctx<'_, 'g>,
        stage: &str,
        f: impl FnOnce(&BackboneRef, &mut GraphMut<'g>) -> RResult<R, RString>,
    ) -> Result<R> {
        g.with_graph(|gr| f(self.inner, gr))
            .map_err(|e| format!("backbone '{}' {stage}: {e}", self.role))
    }
    /// Capabilities.
    pub fn info(&self) -> BackboneInfo {
        self.inner.info()
    }
    /// The `embed` stage.
    pub fn embed(&self, g: &Ctx<'_, '_>) -> Result<Emb> {
        self.stage(g, "embed", |b, gr| b.embed(gr))
    }
    /// The `encode_user` stage.
    pub fn encode_user<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        Ok(g.var(self.stage(g, "encode_user", |b, gr| b.encode_user(gr, emb))?))
    }
    /// The `encode_item` stage.
    pub fn encode_item<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        Ok(g.var(self.stage(g, "encode_item", |b, gr| b.encode_item(gr, emb))?))
    }
    /// The `predict` stage.
    pub fn predict<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        user: Var<'_>,
        item: Var<'_>,
        emb: &Emb,
    ) -> Result<Var<'c>> {
        Ok(g.var(self.stage(g, "predict", |b, gr| b.predict(gr, user.id, item.id, emb))?))
    }
    /// The `predict_fields` stage.
    pub fn predict_fields<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        Ok(g.var(self.stage(g, "predict_fields", |b, gr| b.predict_fields(gr, emb))?))
    }
    /// The `score_all` stage.
    pub fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, user: Var<'_>) -> Result<Option<Var<'c>>> {
        let id = self.stage(g, "score_all", |b, gr| b.score_all(gr, user.id))?;
        Ok(id.into_option().map(|id| g.var(id)))
    }
    /// The whole default path: embed, encode both sides, predict (or predict_fields
    /// for field-interaction models). Returns the logit and the hook-point map.
    pub fn forward<'c>(&self, g: &'c Ctx<'_, '_>) -> Result<(Var<'c>, Emb)> {
        let emb = self.embed(g)?;
        let logit = self.forward_from(g, &emb)?;
        Ok((logit, emb))
    }
    /// Every item's score along the default path (embed, encode the user,
    /// `score_all`), or `None` when the backbone cannot score all items at
    /// once (the host then scores (user, item) pairs).
    pub fn forward_all<'c>(&self, g: &'c Ctx<'_, '_>) -> Result<Option<Var<'c>>> {
        if !self.info().score_all {
            return Ok(None);
        }
        let emb = self.embed(g)?;
        let user = self.encode_user(g, &emb)?;
        self.score_all(g, user)
    }
    /// The default path from an (possibly rewritten) hook-point map.
    pub fn forward_from<'c>(&self, g: &'c Ctx<'_, '_>, emb: &Emb) -> Result<Var<'c>> {
        if self.info().field_interaction {
            self.predict_fields(g, emb)
        } else {
            let u = self.encode_user(g, emb)?;
            let i = self.encode_item(g, emb)?;
            self.predict(g, u, i, emb)
        }
    }
}

/// The backbones an estimator was given, by role.
pub struct Backbones<'r> {
    roles: Vec<String>,
    items: RSlice<'r, BackboneRef>,
}

impl<'r> Backbones<'r> {
    /// Pair roles with backbone objects.
    pub fn new(roles: Vec<String>, items: RSlice<'r, BackboneRef>) -> Self {
        Backbones { roles, items }
    }
    /// The backbone of a role.
    pub fn get(&self, role: &str) -> Result<BackboneHandle<'_>> {
        let i = self.roles.iter().position(|r| r == role).ok_or_else(|| {
            format!(
                "no backbone role '{role}' (roles: {})",
                self.roles.join(", ")
            )
        })?;
        let inner = self
            .items
            .get(i)
            .ok_or_else(|| format!("backbone role '{role}' was not given a backbone"))?;
        Ok(BackboneHandle {
            role: &self.roles[i],
            inner,
        })
    }
    /// The first backbone.
    pub fn main(&self) -> Result<BackboneHandle<'_>> {
        let role = self
            .roles
            .first()
            .ok_or("the estimator declares no backbone role")?;
        self.get(role)
    }
    /// How many backbones.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// True when none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The loss an estimator was given.
pub struct LossHandle<'r> {
    inner: &'r LossRef,
}

impl<'r> LossHandle<'r> {
    /// Wrap a loss object.
    pub fn new(inner: &'r LossRef) -> Self {
        LossHandle { inner }
    }
    /// Compute the loss of named predictions against labels.
    pub fn compute<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        preds: &[(&str, Var<'_>)],
        labels: Var<'_>,
        weights: Option<Var<'_>>,
    ) -> Result<Var<'c>> {
        let preds: RVec<NamedVar> = preds
            .iter()
            .map(|(n, v)| NamedVar {
                name: (*n).into(),
                var: v.id,
            })
            .collect();
        let w = ROption::from(weights.map(|w| w.id));
        let id = g
            .with_graph(|gr| self.inner.compute(gr, preds.as_rslice(), labels.id, w))
            .map_err(|e| format!("loss: {e}"))?;
        Ok(g.var(id))
    }
    /// The loss of one logit against the batch's `label` input, weighted
    /// by its `weight` input when there is one (conventional training).
    pub fn on_labels<'c>(&self, g: &'c Ctx<'_, '_>, logit: Var<'_>) -> Result<Var<'c>> {
        self.compute(
            g,
            &[("logit", logit)],
            g.input("label"),
            g.try_input("weight"),
        )
    }
}

// ---------------------------------------------------------------- adapters

/// Run `f`, turning a panic into an error value naming the stage.
pub fn guard<T>(stage: &str, f: impl FnOnce() -> Result<T>) -> RResult<T, RString> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            RResult::RErr(format!("panicked in {stage}: {msg}").into())
        }
    }
}

fn with_ctx<T>(
    stage: &str,
    g: &mut GraphMut<'_>,
    f: impl FnOnce(&Ctx<'_, '_>) -> Result<T>,
) -> RResult<T, RString> {
    guard(stage, || {
        let ctx = Ctx::new(g);
        let r = f(&ctx);
        ctx.finish(r)
    })
}

/// Turns a [`BackboneImpl`] into a boundary object.
pub struct BackboneAdapter<T>(pub T);

impl<T: BackboneImpl> Backbone for BackboneAdapter<T> {
    fn info(&self) -> BackboneInfo {
        self.0.info()
    }
    fn embed(&self, g: &mut GraphMut<'_>) -> RResult<Emb, RString> {
        with_ctx("embed", g, |c| self.0.embed(c))
    }
    fn encode_user(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString> {
        with_ctx("encode_user", g, |c| {
            self.0.encode_user(c, emb).map(|v| v.id)
        })
    }
    fn encode_item(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString> {
        with_ctx("encode_item", g, |c| {
            self.0.encode_item(c, emb).map(|v| v.id)
        })
    }
    fn predict(
        &self,
        g: &mut GraphMut<'_>,
        user: VarId,
        item: VarId,
        emb: &Emb,
    ) -> RResult<VarId, RString> {
        with_ctx("predict", g, |c| {
            self.0
                .predict(c, c.var(user), c.var(item), emb)
                .map(|v| v.id)
        })
    }
    fn predict_fields(&self, g: &mut GraphMut<'_>, emb: &Emb) -> RResult<VarId, RString> {
        with_ctx("predict_fields", g, |c| {
            self.0.predict_fields(c, emb).map(|v| v.id)
        })
    }
    fn score_all(&self, g: &mut GraphMut<'_>, user: VarId) -> RResult<ROption<VarId>, RString> {
        with_ctx("score_all", g, |c| {
            self.0
                .score_all(c, c.var(user))
                .map(|v| v.map(|v| v.id).into())
        })
    }
    fn prepare(&self, data: &TrainData) -> RResult<(), RString> {
        guard("prepare", || self.0.prepare(data))
    }
}

/// Turns a [`LossImpl`] into a boundary object.
pub struct LossAdapter<T>(pub T);

impl<T: LossImpl> Loss for LossAdapter<T> {
    fn compute(
        &self,
        g: &mut GraphMut<'_>,
        preds: RSlice<'_, NamedVar>,
        labels: VarId,
        weights: ROption<VarId>,
    ) -> RResult<VarId, RString> {
        with_ctx("loss", g, |c| {
            let p: Vec<(String, Var<'_>)> = preds
                .iter()
                .map(|n| (n.name.to_string(), c.var(n.var)))
                .collect();
            let w = weights.into_option().map(|w| c.var(w));
            self.0.compute(c, &p, c.var(labels), w).map(|v| v.id)
        })
    }
}

/// Turns an [`EstimatorImpl`] into a boundary object.
pub struct EstimatorAdapter<T>(pub T);

impl<T: EstimatorImpl> Estimator for EstimatorAdapter<T> {
    fn roles(&self) -> RVec<RString> {
        self.0.roles().into_iter().map(RString::from).collect()
    }
    fn train_step(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
        loss: &LossRef,
    ) -> RResult<RVec<NamedVar>, RString> {
        let bb = Backbones::new(self.0.roles(), backbones);
        let lh = LossHandle::new(loss);
        with_ctx("train_step", g, |c| {
            let terms = self.0.train_step(c, &bb, &lh)?;
            Ok(terms
                .into_iter()
                .map(|(name, v)| NamedVar {
                    name: name.into(),
                    var: v.id,
                })
                .collect())
        })
    }
    fn score(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
    ) -> RResult<VarId, RString> {
        let bb = Backbones::new(self.0.roles(), backbones);
        with_ctx("score", g, |c| self.0.score(c, &bb).map(|v| v.id))
    }
    fn score_all(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
    ) -> RResult<ROption<VarId>, RString> {
        let bb = Backbones::new(self.0.roles(), backbones);
        with_ctx("score_all", g, |c| {
            self.0.score_all(c, &bb).map(|v| v.map(|v| v.id).into())
        })
    }
    fn prepare(&self, data: &TrainData) -> RResult<(), RString> {
        guard("prepare", || self.0.prepare(data))
    }
    fn represent(
        &self,
        g: &mut GraphMut<'_>,
        backbones: RSlice<'_, BackboneRef>,
    ) -> RResult<RVec<NamedVar>, RString> {
        let bb = Backbones::new(self.0.roles(), backbones);
        with_ctx("represent", g, |c| {
            Ok(self
                .0
                .represent(c, &bb)?
                .into_iter()
                .map(|(name, v)| NamedVar {
                    name: name.into(),
                    var: v.id,
                })
                .collect())
        })
    }
}
