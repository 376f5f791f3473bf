//! Test-only plugin (built separately from the backbones it drives):
//! - `toy_rewrite`: rewrites the candidate item embedding at the `embed` hook
//!   point, `item' = item_hat + alpha * (item - item_hat)` with a learned
//!   linear `item_hat` (the IV4Rec+ pattern), then calls the backbone's encoders
//!   and predictor on the rewritten map.
//! - `toy_field`: appends one learned field `M(u)` to `emb.fields` before
//!   `predict_fields` (the DecRS pattern).
//! - `toy_panic`: panics inside a stage (the boundary must report it).
//! - `toy_wrong_shape`: returns wrong shapes the host must catch: `mode`
//!   "score" gives a `[B, d]` score instead of `[B]`, "op" multiplies the
//!   user encoding `[B, d]` by a `[d + 1]` parameter.
//! - `toy_wrong_grad`: adds `<stop_gradient(user), item>` to the backbone's
//!   score, so its analytic gradient misses a term (`grad_check` must fail).
//! - loss `nan_after`: BCE for `steps` calls, then non-finite (tests the NaN
//!   guard): `mode` "scalar" multiplies by a NaN constant, "log" adds
//!   `ln(-1)` (the LOG op's output is the first NaN), "grad" adds `sqrt(bce - detach(bce))`
//!   (a finite loss whose gradient is infinite in SQRT's backward).

#![allow(non_local_definitions)]

use std::sync::atomic::{AtomicUsize, Ordering};

use causalrec_sdk::nn::Linear;
use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, Init, LossImpl, ParamSpec, Result, Var,
};

struct Rewrite {
    alpha: f64,
}

impl EstimatorImpl for Rewrite {
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let b = bb.main()?;
        let mut emb = b.embed(g)?;
        let item = g.get(&emb, "item")?;
        let d = item.dim(-1);
        let fitted = Linear::new("toy.proj", d, d).forward(g, item.detach());
        let rewritten = fitted + (item - fitted) * self.alpha;
        emb.set("item", rewritten.id);
        let u = b.encode_user(g, &emb)?;
        let i = b.encode_item(g, &emb)?;
        b.predict(g, u, i, &emb)
    }
}

struct AppendField;

impl EstimatorImpl for AppendField {
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let b = bb.main()?;
        if !b.info().field_interaction {
            return Err("toy_field needs a field-interaction backbone (fm, nfm)".into());
        }
        let mut emb = b.embed(g)?;
        let dim = b.info().dim as usize;
        let n_users = g.schema().n_users as usize;
        g.embedding("toy.m", n_users, dim, Init::normal(0.01));
        let m = g.lookup("toy.m", g.input("user"));
        emb.push_field("toy.m", m.id);
        b.predict_fields(g, &emb)
    }
}

/// A score whose analytic user gradient is wrong (a detached term).
struct WrongGrad;

impl EstimatorImpl for WrongGrad {
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let b = bb.main()?;
        let emb = b.embed(g)?;
        let u = b.encode_user(g, &emb)?;
        let i = b.encode_item(g, &emb)?;
        Ok(b.predict(g, u, i, &emb)? + (u.detach() * i).sum(-1))
    }
}

/// Panics inside `score` (the SDK must turn it into an error value).
struct Panics;

impl EstimatorImpl for Panics {
    fn score<'c>(&self, _g: &'c Ctx<'_, '_>, _bb: &Backbones<'_>) -> Result<Var<'c>> {
        panic!("toy estimator exploded")
    }
}

/// Wrong shapes on purpose (the host's shape checks must name them).
struct WrongShape {
    mode: String,
}

impl EstimatorImpl for WrongShape {
    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let b = bb.main()?;
        let emb = b.embed(g)?;
        let u = b.encode_user(g, &emb)?;
        let i = b.encode_item(g, &emb)?;
        if self.mode == "score" {
            return Ok(u * i);
        }
        let w = g.param("toy.w", &[u.dim(-1) + 1], Init::normal(0.1));
        Ok((u * w * i).sum(-1))
    }
}

struct NanAfter {
    steps: usize,
    mode: String,
    calls: AtomicUsize,
}

impl LossImpl for NanAfter {
    fn compute<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        preds: &[(String, Var<'c>)],
        labels: Var<'c>,
        _w: Option<Var<'c>>,
    ) -> Result<Var<'c>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let bce = preds[0].1.bce_with_logits(labels, None);
        if n < self.steps {
            return Ok(bce);
        }
        Ok(match self.mode.as_str() {
            "log" => bce + bce.affine(0.0, -1.0).log(),
            "grad" => bce + (bce - bce.detach()).sqrt(),
            _ => bce * g.scalar(f64::NAN),
        })
    }
}

fn components() -> Vec<ComponentDef> {
    vec![
        ComponentDef::estimator(
            "toy_wrong_grad",
            "Test: a score with a detached term (its gradient check must fail)",
            vec![],
            |_| Ok(WrongGrad),
        ),
        ComponentDef::estimator(
            "toy_rewrite",
            "Test: rewrites the item embedding at the embed hook point (IV4Rec+ pattern)",
            vec![ParamSpec::new("alpha", 0.5, "weight of the residual")],
            |p| {
                Ok(Rewrite {
                    alpha: p.f64("alpha")?,
                })
            },
        ),
        ComponentDef::estimator(
            "toy_field",
            "Test: appends a learned field before predict_fields (DecRS pattern)",
            vec![],
            |_| Ok(AppendField),
        ),
        ComponentDef::estimator("toy_panic", "Test: panics inside a stage", vec![], |_| {
            Ok(Panics)
        }),
        ComponentDef::estimator(
            "toy_wrong_shape",
            "Test: returns wrong shapes (a [B, d] score, or a [B, d] x [d + 1] product)",
            vec![ParamSpec::new("mode", "score", "score or op")],
            |p| {
                let mode = p.string("mode")?;
                if !["score", "op"].contains(&mode.as_str()) {
                    return Err(format!("mode must be score or op, got '{mode}'"));
                }
                Ok(WrongShape { mode })
            },
        ),
        ComponentDef::loss(
            "nan_after",
            "Test: BCE for `steps` calls, then NaN",
            vec![
                ParamSpec::new("steps", 3usize, "calls before the loss turns NaN"),
                ParamSpec::new(
                    "mode",
                    "scalar",
                    "how: scalar (times a NaN constant), log (ln(-1)), grad (sqrt(0): infinite gradient)",
                ),
            ],
            |p| {
                let mode = p.string("mode")?;
                if !["scalar", "log", "grad"].contains(&mode.as_str()) {
                    return Err(format!("mode must be scalar, log or grad, got '{mode}'"));
                }
                Ok(NanAfter {
                    steps: p.usize("steps")?,
                    mode,
                    calls: AtomicUsize::new(0),
                })
            },
        ),
    ]
}

causalrec_sdk::export_plugin!("toy", components);
