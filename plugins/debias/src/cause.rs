//! CausE (Bonner and Vasile, "Causal embeddings for recommendation", RecSys
//! 2018), on any backbone with separate user and item encoders.
//!
//! The interactions come from two domains: control (biased, logged under
//! the production policy) and treatment (a small randomised part). Users
//! share one representation; items have a control representation (the
//! backbone's own item encoder) and a treatment representation (a table of
//! this estimator, `item_t`). The objective is
//!
//! `L = L_c(y_c, y) + L_t(y_t, y) + reg_tc * ||θ_t(i) - θ_c(i)||²
//!      + reg_c * ||θ_c(i)||² + reg_t * ||θ_t(i)||²`,
//!
//! where `L_c` / `L_t` are the recipe's loss averaged over the batch's
//! control / treatment rows and the penalties are averaged over the
//! batch's rows. Which rows are treatment is read from a token column of
//! the interaction table (`domain_field`, e.g. CTAR's `source` with value
//! `rct`). Inference uses the treatment representation (or the control
//! one with `infer: "control"`).

use std::sync::Mutex;

use causalrec_sdk::{
    BackboneHandle, Backbones, ComponentDef, Ctx, Emb, EstimatorImpl, Init, LossHandle, ParamSpec,
    Params, Result, TrainData, Var,
};

pub struct Cause {
    domain_field: String,
    treatment: String,
    reg_tc: f64,
    reg_c: f64,
    reg_t: f64,
    infer_treatment: bool,
    init_std: f64,
    /// Per token id of `domain_field`: 1.0 for the treatment token, set by `prepare`.
    is_treatment: Mutex<Option<Vec<f64>>>,
}

pub fn def() -> ComponentDef {
    ComponentDef::estimator(
        "cause",
        "CausE: control and treatment item representations tied by reg_tc * ||θ_t - θ_c||²",
        vec![
            ParamSpec::new(
                "domain_field",
                "source",
                "token column of the interactions telling the domain of each row",
            ),
            ParamSpec::new(
                "treatment",
                "rct",
                "the domain_field value of treatment (randomised) rows",
            ),
            ParamSpec::new("reg_tc", 0.1, "weight of the control-treatment distance"),
            ParamSpec::new("reg_c", 0.0, "L2 weight on control item representations"),
            ParamSpec::new("reg_t", 0.0, "L2 weight on treatment item representations"),
            ParamSpec::new(
                "infer",
                "treatment",
                "item representation used at inference: treatment or control",
            ),
            ParamSpec::new(
                "init_std",
                0.1,
                "standard deviation of the treatment table's initialisation",
            ),
        ],
        |p: &Params| {
            let infer_treatment = match p.string("infer")?.as_str() {
                "treatment" => true,
                "control" => false,
                o => return Err(format!("infer must be 'treatment' or 'control', got '{o}'")),
            };
            Ok(Cause {
                domain_field: p.string("domain_field")?,
                treatment: p.string("treatment")?,
                reg_tc: p.f64("reg_tc")?,
                reg_c: p.f64("reg_c")?,
                reg_t: p.f64("reg_t")?,
                infer_treatment,
                init_std: p.f64("init_std")?,
                is_treatment: Mutex::new(None),
            })
        },
    )
    .with_estimand(
        "the outcome under the randomised (treatment) policy, E[Y | do(uniform exposure)], learnt from a small randomised part tied to the large biased part",
    )
}

/// The 0/1 indicator of the treatment token over a column's vocabulary.
pub fn treatment_indicator(data: &TrainData, field: &str, treatment: &str) -> Result<Vec<f64>> {
    let col = data.column(field)?;
    if col.vocab.is_empty() || !col.floats.is_empty() {
        return Err(format!("cause: '{field}' is not a token column"));
    }
    let id = col.token_id(treatment).ok_or_else(|| {
        format!(
            "cause: column '{field}' has no value '{treatment}' (values: {})",
            col.vocab
                .iter()
                .skip(1)
                .map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    let train = data.require_part("train")?;
    let n_t = train
        .iter()
        .filter(|&&r| col.tokens[r as usize] == id)
        .count();
    if n_t == 0 || n_t == train.len() {
        return Err(format!(
            "cause: the training rows must mix both domains; {n_t} of {} are '{treatment}' (train on both parts, e.g. train_part: \"train_obs+train_rct\")",
            train.len()
        ));
    }
    let mut ind = vec![0.0; col.vocab.len()];
    ind[id as usize] = 1.0;
    Ok(ind)
}

impl Cause {
    fn treatment_table<'c>(&self, g: &'c Ctx<'_, '_>, dim: usize) -> Var<'c> {
        g.embedding(
            "item_t",
            g.schema().n_items as usize,
            dim,
            Init::normal(self.init_std),
        );
        g.lookup("item_t", g.input("item"))
    }

    /// The backbone's hook-point map, user representation, and the control
    /// (backbone) and treatment (`item_t`) item representations of the batch.
    fn represent<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        b: &BackboneHandle<'_>,
    ) -> Result<(Emb, Var<'c>, Var<'c>, Var<'c>)> {
        if b.info().field_interaction {
            return Err("cause needs a backbone with separate user and item encoders".into());
        }
        let emb = b.embed(g)?;
        let user = b.encode_user(g, &emb)?;
        let item_c = b.encode_item(g, &emb)?;
        let item_t = self.treatment_table(g, item_c.dim(-1));
        Ok((emb, user, item_c, item_t))
    }
}

impl EstimatorImpl for Cause {
    fn prepare(&self, data: &TrainData) -> Result<()> {
        let ind = treatment_indicator(data, &self.domain_field, &self.treatment)?;
        *self
            .is_treatment
            .lock()
            .map_err(|_| "cause: poisoned lock".to_string())? = Some(ind);
        Ok(())
    }

    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let b = bb.main()?;
        let ind = self
            .is_treatment
            .lock()
            .map_err(|_| "cause: poisoned lock".to_string())?
            .clone()
            .ok_or("cause: prepare() was not called before training")?;
        let (emb, user, item_c, item_t) = self.represent(g, &b)?;
        let y_c = b.predict(g, user, item_c, &emb)?;
        let y_t = b.predict(g, user, item_t, &emb)?;
        let field = format!("inter.{}", self.domain_field);
        let dom = g
            .try_input(&field)
            .ok_or_else(|| format!("cause: the batch has no '{field}'"))?;
        let m = g.constant(&ind, &[ind.len()]).index_select(dom, 0);
        let n = y_c.dim(0) as f64;
        let label = g.input("label");
        // Mean over each domain's rows: mean(w * l) * n / sum(w).
        let per_domain = |y: Var<'c>, w: Var<'c>| -> Result<Var<'c>> {
            let l = loss.compute(g, &[("logit", y)], label, Some(w))?;
            Ok(l * n / (w.sum_all() + 1e-12))
        };
        let l_c = per_domain(y_c, m.affine(-1.0, 1.0))?;
        let l_t = per_domain(y_t, m)?;
        let sq = |v: Var<'c>| v.square().sum(-1).mean_all();
        let mut terms = vec![
            ("control".to_string(), l_c),
            ("treatment".to_string(), l_t),
            ("distance".to_string(), sq(item_t - item_c) * self.reg_tc),
        ];
        if self.reg_c > 0.0 {
            terms.push(("l2_control".into(), sq(item_c) * self.reg_c));
        }
        if self.reg_t > 0.0 {
            terms.push(("l2_treatment".into(), sq(item_t) * self.reg_t));
        }
        Ok(terms)
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        let b = bb.main()?;
        let (emb, user, item_c, item_t) = self.represent(g, &b)?;
        let item = if self.infer_treatment { item_t } else { item_c };
        b.predict(g, user, item, &emb)
    }
}
