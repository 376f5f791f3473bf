//! IPS and SNIPS: the recipe's loss weighted by inverse propensities.
//!
//! The propensities come from [`causalrec_sdk::propensity::Propensity`]
//! (sources `naive_bayes`, `column`, `group`, `popularity`, `position`; see
//! there for each and for which examples a source reweights). The weighted
//! loss is `mean_b w_b * l_b`; `snips` divides the weights by their batch
//! mean (self-normalised IPS). `clip` bounds propensities from below
//! (0 = no clipping).

use causalrec_sdk::propensity::Propensity;
use causalrec_sdk::{
    Backbones, ComponentDef, Ctx, EstimatorImpl, LossHandle, Params, Result, TrainData, Var,
};

pub struct Ips {
    propensity: Propensity,
    self_normalise: bool,
}

fn make(p: &Params, self_normalise: bool) -> Result<Ips> {
    Ok(Ips {
        propensity: Propensity::from_params(p)?,
        self_normalise,
    })
}

pub fn ips_def() -> ComponentDef {
    ComponentDef::estimator(
        "ips",
        "Inverse propensity scoring: the loss weighted by 1/propensity (naive-Bayes, logged, group, popularity or position propensities)",
        Propensity::param_specs(),
        |p| make(p, false),
    )
}

pub fn snips_def() -> ComponentDef {
    ComponentDef::estimator(
        "snips",
        "Self-normalised IPS: inverse-propensity weights divided by their batch mean",
        Propensity::param_specs(),
        |p| make(p, true),
    )
}

impl Ips {
    fn weights<'c>(&self, g: &'c Ctx<'_, '_>) -> Result<Var<'c>> {
        let w = self.propensity.weights(g)?;
        Ok(if self.self_normalise {
            w / w.mean_all()
        } else {
            w
        })
    }
}

impl EstimatorImpl for Ips {
    fn prepare(&self, data: &TrainData) -> Result<()> {
        self.propensity.prepare(data)
    }

    fn train_step<'c>(
        &self,
        g: &'c Ctx<'_, '_>,
        bb: &Backbones<'_>,
        loss: &LossHandle<'_>,
    ) -> Result<Vec<(String, Var<'c>)>> {
        let logit = self.score(g, bb)?;
        let w = self.weights(g)?;
        let l = loss.compute(g, &[("logit", logit)], g.input("label"), Some(w))?;
        Ok(vec![("loss".into(), l)])
    }

    fn score<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Var<'c>> {
        Ok(bb.main()?.forward(g)?.0)
    }

    fn score_all<'c>(&self, g: &'c Ctx<'_, '_>, bb: &Backbones<'_>) -> Result<Option<Var<'c>>> {
        bb.main()?.forward_all(g)
    }
}
